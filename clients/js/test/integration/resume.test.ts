// Cuts a real connection (through a proxy the test severs) and checks the
// client resumes within the grace period with nothing lost, and falls back
// to a new session, re-authenticated and rejoined, after it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionState, PeerLeft, SessionLost } from '../../src/index.js';
import { chatLog, next, nodeClient, until } from '../support/clients.js';
import { Proxy } from '../support/proxy.js';
import { chatConfig, startServer, type Server } from '../support/server.js';
import { tokenSource } from '../support/token.js';

/** Quick retries keep the tests short; the backoff itself has unit tests. */
const backoff = { initialMs: 100, maxMs: 400 };

describe('within the grace period', () => {
  let server: Server;
  let proxy: Proxy;
  beforeAll(async () => {
    server = await startServer(chatConfig());
    proxy = await Proxy.start(server.addr);
  });
  afterAll(async () => {
    await proxy.close();
    await server.stop();
  });

  it('an abrupt cut mid-stream resumes: nothing lost either way, no peer-left, same client id', async () => {
    const alice = nodeClient(proxy.url(), 'alice', { backoff });
    const bob = nodeClient(server.url, 'bob');
    await Promise.all([alice.connect(), bob.connect()]);
    await alice.join('resume');
    await bob.join('resume');
    const aliceId = alice.clientId;
    const states: ConnectionState[] = [];
    alice.on('state', (s) => states.push(s));
    const peerLefts: PeerLeft[] = [];
    bob.on('room:peer-left', (p) => peerLefts.push(p));
    const aliceHeard = chatLog(alice);
    const bobHeard = chatLog(bob);
    // While alice is away she keeps talking; the client queues it.
    alice.on('state', (s) => {
      if (s.status === 'reconnecting' && s.attempt === 1) {
        for (let i = 1; i <= 5; i += 1) alice.send('chat:message', { text: `gap-${String(i)}` });
      }
    });

    // Bob streams to alice; the proxy cuts her off right after message 20
    // reached her, and bob goes on.
    const cut = proxy.severAfter('"text":"m20"');
    const sent: string[] = [];
    for (let i = 1; i <= 60; i += 1) {
      const text = `m${String(i)}`;
      bob.send('chat:message', { text });
      sent.push(text);
      await new Promise((done) => setTimeout(done, 15));
    }
    await cut;
    await until(() => aliceHeard.length >= 60 && bobHeard.length >= 5, 'both streams to arrive');
    await new Promise((done) => setTimeout(done, 200)); // and nothing twice after them

    expect(aliceHeard).toEqual(sent);
    expect(bobHeard).toEqual(['gap-1', 'gap-2', 'gap-3', 'gap-4', 'gap-5']);
    expect(states.map((s) => s.status)).toEqual(['reconnecting', 'resumed']);
    expect(states[0]).toMatchObject({ code: 1006 });
    expect(alice.clientId).toBe(aliceId);
    expect(peerLefts).toEqual([]);
    // The resumed connection carries on as the same member.
    expect((await bob.roomState()).peers.map((p) => p.clientId)).toEqual([aliceId]);
    alice.disconnect();
    bob.disconnect();
  });
});

describe('after the grace period', () => {
  let server: Server;
  let proxy: Proxy;
  beforeAll(async () => {
    server = await startServer(chatConfig('[session]\nresume_grace_ms = 300\n'));
    proxy = await Proxy.start(server.addr);
  });
  afterAll(async () => {
    await proxy.close();
    await server.stop();
  });

  it('the resume fails, so the client re-authenticates with a fresh token, rejoins and emits session-lost', async () => {
    const tokens = tokenSource('alice');
    const alice = nodeClient(proxy.url(), 'alice', { getToken: tokens.getToken, backoff });
    const bob = nodeClient(server.url, 'bob');
    await Promise.all([alice.connect(), bob.connect()]);
    await bob.join('fallback');
    await alice.join('fallback', { name: 'Alice' });
    const oldId = alice.clientId ?? '';

    proxy.refuse(true);
    const left = next(bob, 'room:peer-left');
    proxy.sever();
    expect(await left).toEqual({ roomId: 'fallback', clientId: oldId, reason: 'disconnected' });

    const lost = next(alice, 'session-lost');
    const joined = next(bob, 'room:peer-joined');
    proxy.refuse(false);
    const sessionLost: SessionLost = await lost;
    const newId = alice.clientId ?? '';
    expect(newId).not.toBe(oldId);
    expect(sessionLost).toEqual({
      previousClientId: oldId,
      clientId: newId,
      room: {
        roomId: 'fallback',
        peers: [{ clientId: bob.clientId, userId: 'bob', metadata: {} }],
        self: { clientId: newId, userId: 'alice', metadata: { name: 'Alice' } },
      },
      dropped: 0,
    });
    expect((await joined).peer).toEqual({ clientId: newId, userId: 'alice', metadata: { name: 'Alice' } });
    expect(alice.state).toEqual({ status: 'connected', clientId: newId, userId: 'alice' });
    expect(tokens.issued).toHaveLength(2);
    expect(new Set(tokens.issued).size).toBe(2);

    // The new session works both ways.
    const offer = next(alice, 'sdp:offer');
    bob.sendOffer(newId, 'v=0 again');
    expect(await offer).toEqual({ from: bob.clientId, sdp: 'v=0 again' });
    const bobHeard = chatLog(bob);
    alice.send('chat:message', { text: 'back' });
    await until(() => bobHeard.length === 1, 'the chat message');
    expect(bobHeard).toEqual(['back']);
    alice.disconnect();
    bob.disconnect();
  });
});
