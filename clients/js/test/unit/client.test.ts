import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RateLimitedError, SwitchboardError, TimeoutError, type RoomJoined } from '../../src/index.js';
import { connected, fakeClient, tick } from './fake-server.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const peer = (clientId: string) => ({ clientId, userId: `u-${clientId}`, metadata: {} });

describe('requests', () => {
  it('resolves each request by its correlation id, whatever the order of answers', async () => {
    const { client, socket } = await connected();
    const join = client.join('standup');
    const ping = client.ping();
    const [joinFrame, pingFrame] = socket().sent.slice(-2);
    expect(joinFrame).toMatchObject({ event: 'room:join', data: { roomId: 'standup' } });
    expect(joinFrame?.id).not.toBe(pingFrame?.id);
    socket().push('pong', { serverTime: 42 }, pingFrame?.id);
    socket().push('room:joined', { roomId: 'standup', peers: [], self: peer('a1') }, joinFrame?.id);
    await expect(ping).resolves.toEqual({ serverTime: 42 });
    await expect(join).resolves.toMatchObject({ roomId: 'standup', self: { clientId: 'a1' } });
    expect(client.roomId).toBe('standup');
  });

  it('rejects with a SwitchboardError carrying the protocol code, event and id', async () => {
    const { client, socket } = await connected();
    const join = client.join('full');
    const id = socket().last('room:join').id;
    socket().push('error', { code: 'ROOM_FULL', message: 'room is full', event: 'room:join' }, id);
    const error: unknown = await join.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SwitchboardError);
    expect(error).toMatchObject({ code: 'ROOM_FULL', event: 'room:join', requestId: id });
    expect(client.roomId).toBeUndefined();
  });

  it('rejects with a TimeoutError when no answer comes in time', async () => {
    const { client } = await connected({ requestTimeoutMs: 500 });
    const state = client.roomState();
    const failure = expect(state).rejects.toBeInstanceOf(TimeoutError);
    await vi.advanceTimersByTimeAsync(500);
    await failure;
    await expect(state).rejects.toMatchObject({ code: 'TIMEOUT', event: 'room:state' });
  });

  it('a RATE_LIMITED with an id (a per-event bucket) rejects that request as RateLimitedError', async () => {
    const { client, socket } = await connected();
    const ping = client.ping();
    socket().push('error', { code: 'RATE_LIMITED', message: 'slow down', event: 'ping' }, socket().last('ping').id);
    await expect(ping).rejects.toBeInstanceOf(RateLimitedError);
  });

  it('an id-less RATE_LIMITED rejects the oldest request when only requests are unanswered', async () => {
    const { client, socket } = await connected();
    const first = client.ping();
    const second = client.roomState();
    socket().push('error', { code: 'RATE_LIMITED', message: 'rate limit exceeded' });
    await expect(first).rejects.toMatchObject({ name: 'RateLimitedError', code: 'RATE_LIMITED', event: 'ping' });
    socket().push('error', { code: 'RATE_LIMITED', message: 'rate limit exceeded' });
    await expect(second).rejects.toMatchObject({ code: 'RATE_LIMITED', event: 'room:state' });
  });

  it('an id-less RATE_LIMITED that may answer a relay goes to the error event, not to a request', async () => {
    const { client, socket } = await connected();
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    client.sendOffer('b2', 'v=0');
    const ping = client.ping();
    socket().push('error', { code: 'RATE_LIMITED', message: 'rate limit exceeded' });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(RateLimitedError);
    socket().push('pong', { serverTime: 1 }, socket().last('ping').id);
    await expect(ping).resolves.toEqual({ serverTime: 1 });
    // Answered: the relay before it is behind us, so the next one is the ping's.
    const next = client.ping();
    socket().push('error', { code: 'RATE_LIMITED', message: 'rate limit exceeded' });
    await expect(next).rejects.toBeInstanceOf(RateLimitedError);
  });

  it('relays are written as PROTOCOL.md has them, with no id', async () => {
    const { client, socket } = await connected();
    client.sendOffer('b2', 'offer-sdp');
    client.sendAnswer('b2', 'answer-sdp');
    client.sendCandidate('b2', { candidate: 'candidate:1', sdpMid: '0', sdpMLineIndex: 0 });
    expect(socket().sent.slice(-3)).toEqual([
      { event: 'sdp:offer', data: { to: 'b2', sdp: 'offer-sdp' } },
      { event: 'sdp:answer', data: { to: 'b2', sdp: 'answer-sdp' } },
      { event: 'ice:candidate', data: { to: 'b2', candidate: { candidate: 'candidate:1', sdpMid: '0', sdpMLineIndex: 0 } } },
    ]);
  });
});

describe('connecting', () => {
  it('a refused token rejects connect() with AUTH_FAILED and does not retry', async () => {
    const { client, sockets, socket } = fakeClient({ token: 'bad' });
    const ready = client.connect();
    socket().hello('a1', 'r1');
    await tick();
    socket().answer('auth:request', 'auth:response', {
      success: false,
      error: { code: 'AUTH_FAILED', message: 'invalid signature' },
    });
    await expect(ready).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    expect(client.state).toMatchObject({ status: 'disconnected' });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sockets).toHaveLength(1);
  });

  it('an attempt that is not ready in time is abandoned with 3000 (keeping the session) and retried', async () => {
    const { client, sockets, socket } = fakeClient({ token: 't1', connectTimeoutMs: 1000 });
    void client.connect();
    await vi.advanceTimersByTimeAsync(1000);
    expect(sockets[0]?.closedWith?.code).toBe(3000);
    expect(client.state).toMatchObject({ status: 'reconnecting', attempt: 1, code: 1006 });
    await vi.advanceTimersByTimeAsync(500);
    expect(sockets).toHaveLength(2);
    socket().hello('a1', 'r1');
    await tick();
    expect(socket().sent.map((f) => f.event)).toEqual(['auth:request']);
  });

  it('messages sent before the connection is ready wait for it, in order', async () => {
    const { client, socket } = fakeClient({ token: 't1' });
    const ready = client.connect();
    client.sendOffer('b2', 'early');
    const ping = client.ping();
    socket().hello('a1', 'r1');
    await tick();
    expect(socket().sent.map((f) => f.event)).toEqual(['auth:request']);
    socket().answer('auth:request', 'auth:response', { success: true, userId: 'alice' });
    await ready;
    expect(socket().sent.map((f) => f.event)).toEqual(['auth:request', 'sdp:offer', 'ping']);
    socket().answer('ping', 'pong', { serverTime: 7 });
    await expect(ping).resolves.toEqual({ serverTime: 7 });
  });
});

describe('reconnect', () => {
  it('backs off with full jitter: fast first retry, doubling ceilings capped at 20 s, reset after success', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    const { client, socket, sockets, states } = await connected();
    const delays = (): number[] => states.flatMap((s) => (s.status === 'reconnecting' ? [s.delayMs] : []));
    for (let i = 0; i < 8; i += 1) {
      socket().drop();
      await vi.advanceTimersByTimeAsync(delays().at(-1) ?? 0);
    }
    expect(sockets).toHaveLength(9);
    expect(delays()).toEqual([499, 999, 1998, 3996, 7992, 15984, 19980, 19980]);
    socket().hello('a9', 'r9');
    await tick();
    socket().answer('session:resume', 'session:resumed', { clientId: 'a1', roomId: null, replayed: 0, resumeToken: 'r10' });
    await tick();
    expect(client.state).toMatchObject({ status: 'resumed' });
    socket().drop();
    expect(delays().at(-1)).toBe(499);
    expect(states.at(-1)).toMatchObject({ status: 'reconnecting', attempt: 1, code: 1006 });
  });

  it('retries at once when the browser says it is online again', async () => {
    const network = new EventTarget();
    const { sockets, socket } = await connected({ network, backoff: { initialMs: 10_000, maxMs: 10_000 } });
    vi.spyOn(Math, 'random').mockReturnValue(0.9);
    socket().drop();
    expect(sockets).toHaveLength(1);
    network.dispatchEvent(new Event('online'));
    expect(sockets).toHaveLength(2);
  });

  it.each([
    [4003, 'too many failed auth attempts'],
    [4008, 'rate limit abuse'],
    [4009, 'kicked'],
    [4000, 'replaced by a resumed connection'],
  ])('does not reconnect after close code %i', async (code, reason) => {
    const { client, sockets, socket } = await connected();
    const ping = client.ping();
    socket().drop(code, reason);
    expect(client.state).toEqual({ status: 'disconnected', code, reason });
    await expect(ping).rejects.toMatchObject({ code: 'DISCONNECTED' });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sockets).toHaveLength(1);
  });

  it('does not reconnect after disconnect(), which closes with 1000', async () => {
    const { client, sockets, socket } = await connected();
    client.disconnect();
    expect(socket().closedWith?.code).toBe(1000);
    socket().drop(1000);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sockets).toHaveLength(1);
    expect(client.state).toMatchObject({ status: 'disconnected', code: 1000 });
    expect(() => {
      client.sendOffer('b2', 'late');
    }).toThrow(SwitchboardError);
  });

  it('resumes with session:resume as the first frame, then sends what was queued in order and replays what came', async () => {
    const { client, socket, sockets } = await connected();
    const relays: string[] = [];
    client.on('sdp:offer', (m) => relays.push(m.sdp));
    const lost = vi.fn();
    client.on('session-lost', lost);
    const inFlight = client.roomState(); // written before the cut; its answer comes as a replay
    socket().drop();
    client.sendOffer('b2', 'queued-1');
    const queuedPing = client.ping();
    client.sendCandidate('b2', { candidate: 'queued-2' });
    await vi.advanceTimersByTimeAsync(500);
    expect(sockets).toHaveLength(2);
    socket().hello('a2', 'own-token');
    await tick();
    expect(socket().sent).toHaveLength(1);
    expect(socket().sent[0]).toMatchObject({ event: 'session:resume', data: { resumeToken: 'resume-a1' } });
    socket().answer('session:resume', 'session:resumed', { clientId: 'a1', roomId: 'standup', replayed: 3, resumeToken: 'resume-2' });
    socket().push('room:state', { roomId: 'standup', peers: [] }, sockets[0]?.last('room:state').id);
    socket().push('sdp:offer', { from: 'b2', sdp: 'replayed-1' });
    socket().push('sdp:offer', { from: 'b2', sdp: 'replayed-2' });
    await tick();
    expect(client.state).toEqual({ status: 'resumed', clientId: 'a1', replayed: 3 });
    expect(client.clientId).toBe('a1');
    await expect(inFlight).resolves.toEqual({ roomId: 'standup', peers: [] });
    expect(relays).toEqual(['replayed-1', 'replayed-2']);
    expect(socket().sent.map((f) => [f.event, f.data])).toEqual([
      ['session:resume', { resumeToken: 'resume-a1' }],
      ['sdp:offer', { to: 'b2', sdp: 'queued-1' }],
      ['ping', {}],
      ['ice:candidate', { to: 'b2', candidate: { candidate: 'queued-2' } }],
    ]);
    socket().answer('ping', 'pong', { serverTime: 3 });
    await expect(queuedPing).resolves.toEqual({ serverTime: 3 });
    expect(lost).not.toHaveBeenCalled();
    // The next cut resumes with the newest token.
    socket().drop();
    await vi.advanceTimersByTimeAsync(500);
    socket().hello('a3', 'own-token-3');
    await tick();
    expect(socket().sent[0]).toMatchObject({ event: 'session:resume', data: { resumeToken: 'resume-2' } });
  });

  it('when the resume fails it re-authenticates with a fresh token, rejoins and emits session-lost', async () => {
    let minted = 0;
    const getToken = vi.fn(() => {
      minted += 1;
      return Promise.resolve(`fresh-${minted}`);
    });
    const { client, socket } = await connected({ getToken });
    const join = client.join('standup', { name: 'Alice' });
    socket().answer('room:join', 'room:joined', { roomId: 'standup', peers: [peer('b2')], self: peer('a1') });
    await join;
    const lost = vi.fn();
    client.on('session-lost', lost);
    const inFlight = client.roomState().catch((e: unknown) => e);
    socket().drop();
    client.sendOffer('b2', 'stale offer');
    const queued = client.ping().catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(500);
    socket().hello('a2', 'resume-a2');
    await tick();
    socket().push('error', { code: 'RESUME_FAILED', message: 'unknown or expired token', event: 'session:resume' }, socket().last('session:resume').id);
    await tick();
    expect(await inFlight).toMatchObject({ code: 'SESSION_LOST', event: 'room:state' });
    expect(await queued).toMatchObject({ code: 'SESSION_LOST', event: 'ping' });
    expect(socket().last('auth:request').data).toEqual({ token: 'fresh-1' });
    socket().answer('auth:request', 'auth:response', { success: true, userId: 'alice' });
    await tick();
    expect(socket().last('room:join').data).toEqual({ roomId: 'standup', metadata: { name: 'Alice' } });
    const rejoined: RoomJoined = { roomId: 'standup', peers: [peer('b2')], self: peer('a2') };
    socket().answer('room:join', 'room:joined', rejoined as unknown as Record<string, unknown>);
    await tick();
    expect(lost).toHaveBeenCalledWith({ previousClientId: 'a1', clientId: 'a2', room: rejoined, dropped: 1 });
    expect(client.state).toEqual({ status: 'connected', clientId: 'a2', userId: 'alice' });
    expect(socket().sent.map((f) => f.event)).toEqual(['session:resume', 'auth:request', 'room:join']);
    // The next cut resumes the new session.
    socket().drop();
    await vi.advanceTimersByTimeAsync(500);
    socket().hello('a3', 'resume-a3');
    await tick();
    expect(socket().sent[0]).toMatchObject({ event: 'session:resume', data: { resumeToken: 'resume-a2' } });
  });

  it('a recovery cut short by another drop starts over on the next connection and reports once', async () => {
    let minted = 0;
    const getToken = vi.fn(() => `fresh-${String((minted += 1))}`);
    const { client, socket, sockets } = await connected({ getToken });
    const join = client.join('standup');
    socket().answer('room:join', 'room:joined', { roomId: 'standup', peers: [], self: peer('a1') });
    await join;
    const lost = vi.fn();
    client.on('session-lost', lost);
    socket().drop();
    await vi.advanceTimersByTimeAsync(500);
    socket().hello('a2', 'resume-a2');
    await tick();
    socket().push('error', { code: 'RESUME_FAILED', message: 'expired' }, socket().last('session:resume').id);
    await tick();
    socket().answer('auth:request', 'auth:response', { success: true, userId: 'alice' });
    await tick();
    expect(socket().last('room:join').data).toEqual({ roomId: 'standup' });
    socket().drop(); // before the rejoin is answered
    await vi.advanceTimersByTimeAsync(1000); // the second retry's ceiling
    expect(sockets).toHaveLength(3);
    socket().hello('a3', 'resume-a3');
    await tick();
    // The half-made session a2 is not resumed: the recovery starts over.
    expect(socket().sent.map((f) => [f.event, f.data])).toEqual([['auth:request', { token: 'fresh-2' }]]);
    socket().answer('auth:request', 'auth:response', { success: true, userId: 'alice' });
    await tick();
    socket().answer('room:join', 'room:joined', { roomId: 'standup', peers: [], self: peer('a3') });
    await tick();
    expect(lost).toHaveBeenCalledTimes(1);
    expect(lost).toHaveBeenCalledWith({
      previousClientId: 'a1',
      clientId: 'a3',
      room: { roomId: 'standup', peers: [], self: peer('a3') },
      dropped: 0,
    });
    expect(client.roomId).toBe('standup');
  });

  it('never sends a token twice when getToken is given', async () => {
    let minted = 0;
    const getToken = vi.fn(() => `fresh-${String((minted += 1))}`);
    const { client, socket } = await connected({ getToken });
    const sentTokens = (): unknown[] => [socket().last('auth:request').data.token];
    const all = [...sentTokens()];
    for (let round = 0; round < 3; round += 1) {
      socket().drop();
      await vi.advanceTimersByTimeAsync(20_000);
      socket().hello(`n${round}`, `r${round}`);
      await tick();
      socket().push('error', { code: 'RESUME_FAILED', message: 'expired' }, socket().last('session:resume').id);
      await tick();
      all.push(...sentTokens());
      socket().answer('auth:request', 'auth:response', { success: true, userId: 'alice' });
      await tick();
    }
    expect(all).toEqual(['t1', 'fresh-1', 'fresh-2', 'fresh-3']);
    expect(new Set(all).size).toBe(all.length);
    expect(client.state).toMatchObject({ status: 'connected', clientId: 'n2' });
  });
});
