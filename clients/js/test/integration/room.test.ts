// Two Node clients through a real switchboard: rooms, relays, chat, errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Client, RateLimitedError, SwitchboardError, type ConnectionState } from '../../src/index.js';
import { chatLog, next, nodeClient, until } from '../support/clients.js';
import { chatConfig, startServer, type Server } from '../support/server.js';
import { token } from '../support/token.js';

let server: Server;
beforeAll(async () => {
  server = await startServer(chatConfig());
});
afterAll(async () => {
  await server.stop();
});

describe('two clients in a room', () => {
  it('join, relay with to->from, chat, state, ping, leave', async () => {
    const alice = nodeClient(server.url, 'alice');
    const bob = nodeClient(server.url, 'bob');
    await Promise.all([alice.connect(), bob.connect()]);
    expect(alice.state).toMatchObject({ status: 'connected', userId: 'alice' });

    const joinedA = await alice.join('standup', { name: 'Alice' });
    expect(joinedA).toMatchObject({ roomId: 'standup', peers: [], self: { clientId: alice.clientId, userId: 'alice' } });
    const bobArrives = next(alice, 'room:peer-joined');
    const joinedB = await bob.join('standup');
    expect(joinedB.peers).toEqual([{ clientId: alice.clientId, userId: 'alice', metadata: { name: 'Alice' } }]);
    expect((await bobArrives).peer).toMatchObject({ clientId: bob.clientId, userId: 'bob' });

    const bobId = bob.clientId ?? '';
    const offer = next(bob, 'sdp:offer');
    const answer = next(alice, 'sdp:answer');
    const candidate = next(bob, 'ice:candidate');
    alice.sendOffer(bobId, 'v=0 offer');
    alice.sendCandidate(bobId, { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 });
    expect(await offer).toEqual({ from: alice.clientId, sdp: 'v=0 offer' });
    expect(await candidate).toEqual({
      from: alice.clientId,
      candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 },
    });
    bob.sendAnswer(alice.clientId ?? '', 'v=0 answer');
    expect(await answer).toEqual({ from: bobId, sdp: 'v=0 answer' });

    const heard = chatLog(bob);
    for (const text of ['one', 'two', 'three']) alice.send('chat:message', { text });
    await until(() => heard.length === 3, 'three chat messages');
    expect(heard).toEqual(['one', 'two', 'three']);

    expect(await bob.roomState()).toEqual({ roomId: 'standup', peers: joinedB.peers });
    const pong = await alice.ping();
    expect(Math.abs(pong.serverTime - Date.now())).toBeLessThan(5_000);

    const left = next(alice, 'room:peer-left');
    expect(await bob.leave()).toEqual({ roomId: 'standup' });
    expect(await left).toEqual({ roomId: 'standup', clientId: bobId, reason: 'left' });
    bob.disconnect();
    alice.disconnect();
  });

  it('disconnect() closes cleanly: the room hears peer-left at once', async () => {
    const alice = nodeClient(server.url, 'alice');
    const bob = nodeClient(server.url, 'bob');
    await Promise.all([alice.connect(), bob.connect()]);
    await alice.join('quick-exit');
    await bob.join('quick-exit');
    const left = next(alice, 'room:peer-left', () => true, 2_000);
    const bobId = bob.clientId;
    bob.disconnect();
    expect(await left).toEqual({ roomId: 'quick-exit', clientId: bobId, reason: 'disconnected' });
    expect(bob.state).toEqual({ status: 'disconnected', code: 1000, reason: 'disconnect() called' });
    alice.disconnect();
  });

  it('server errors reject requests with their code, or come as error events naming the event', async () => {
    const alice = nodeClient(server.url, 'alice');
    await alice.connect();
    const outside = await alice.roomState().catch((e: unknown) => e);
    expect(outside).toBeInstanceOf(SwitchboardError);
    expect(outside).toMatchObject({ code: 'NOT_IN_ROOM', event: 'room:state' });
    await alice.join('errors');
    await expect(alice.join('errors')).rejects.toMatchObject({ code: 'ALREADY_IN_ROOM', event: 'room:join' });

    const errors: Error[] = [];
    const quiet = new Client({ url: server.url, WebSocket, token: token('carol') });
    quiet.on('error', (e) => errors.push(e));
    await quiet.connect();
    await quiet.join('errors');
    quiet.sendOffer('no-such-client', 'v=0');
    await until(() => errors.length === 1, 'the relay error');
    expect(errors[0]).toMatchObject({ code: 'PEER_NOT_FOUND', event: 'sdp:offer' });
    quiet.disconnect();
    alice.disconnect();
  });

  it('a refused token rejects connect() with AUTH_FAILED and ends there', async () => {
    const states: ConnectionState[] = [];
    const mallory = nodeClient(server.url, 'mallory', { token: 'not-a-jwt' });
    mallory.on('state', (s) => states.push(s));
    await expect(mallory.connect()).rejects.toMatchObject({ code: 'AUTH_FAILED', event: 'auth:request' });
    await new Promise((done) => setTimeout(done, 700));
    expect(states.map((s) => s.status)).toEqual(['connecting', 'disconnected']);
  });

  it('an operator kick (4009) disconnects for good', async () => {
    const alice = nodeClient(server.url, 'alice', { backoff: { initialMs: 50, maxMs: 50 } });
    await alice.connect();
    const gone = next(alice, 'state', (s) => s.status !== 'connected');
    const response = await fetch(`${server.adminUrl}/admin/clients/${alice.clientId ?? ''}`, { method: 'DELETE' });
    expect(response.ok).toBe(true);
    expect(await gone).toMatchObject({ status: 'disconnected', code: 4009 });
    await new Promise((done) => setTimeout(done, 300));
    expect(alice.state).toMatchObject({ status: 'disconnected', code: 4009 });
  });
});

describe('rate limits', () => {
  let limited: Server;
  beforeAll(async () => {
    limited = await startServer('[limits]\nrate_per_sec = 1\nrate_burst = 3\n');
  });
  afterAll(async () => {
    await limited.stop();
  });

  it('an id-less RATE_LIMITED rejects the request it answers with RateLimitedError', async () => {
    const alice = nodeClient(limited.url, 'alice');
    await alice.connect(); // auth:request takes one token of the burst
    const results = await Promise.allSettled([alice.ping(), alice.ping(), alice.ping(), alice.ping()]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected']);
    for (const result of results.slice(2)) {
      if (result.status !== 'rejected') throw new Error('expected a rejection');
      expect(result.reason).toBeInstanceOf(RateLimitedError);
      expect(result.reason).toMatchObject({ code: 'RATE_LIMITED', event: 'ping' });
    }
    alice.disconnect();
  });
});
