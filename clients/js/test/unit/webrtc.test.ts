import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PeerLink } from '../../src/index.js';
import { connected, tick } from './fake-server.js';

/** Just enough of an RTCPeerConnection for what PeerLink does outside negotiation. */
class FakePeerConnection extends EventTarget {
  readonly restartIce = vi.fn();
  readonly close = vi.fn();
  readonly addIceCandidate = vi.fn(() => Promise.resolve());
  signalingState: RTCSignalingState = 'stable';
  iceGatheringState: RTCIceGatheringState = 'complete';
}

const asPc = (pc: FakePeerConnection): RTCPeerConnection => pc as unknown as RTCPeerConnection;

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('PeerLink', () => {
  it('the side with the greater client id is polite unless told otherwise', async () => {
    const { client } = await connected({}, 'b0');
    expect(new PeerLink(client, asPc(new FakePeerConnection()), 'a0').polite).toBe(true);
    expect(new PeerLink(client, asPc(new FakePeerConnection()), 'c0').polite).toBe(false);
    expect(new PeerLink(client, asPc(new FakePeerConnection()), 'c0', { polite: true }).polite).toBe(true);
  });

  it('applies only its own peer’s candidates, and sends local ones to that peer', async () => {
    const { client, socket } = await connected({}, 'a1');
    const pc = new FakePeerConnection();
    new PeerLink(client, asPc(pc), 'b2');
    socket().push('ice:candidate', { from: 'c3', candidate: { candidate: 'from c3' } });
    socket().push('ice:candidate', { from: 'b2', candidate: { candidate: 'from b2' } });
    await tick();
    expect(pc.addIceCandidate.mock.calls).toEqual([[{ candidate: 'from b2' }]]);
    const candidate = { toJSON: () => ({ candidate: 'local', sdpMid: '0', sdpMLineIndex: 0 }) };
    pc.dispatchEvent(Object.assign(new Event('icecandidate'), { candidate }));
    expect(socket().last('ice:candidate').data).toEqual({ to: 'b2', candidate: { candidate: 'local', sdpMid: '0', sdpMLineIndex: 0 } });
  });

  it('restarts ICE after a session that could not be resumed, and close() stops listening', async () => {
    const { client, socket } = await connected({ getToken: () => 'fresh' }, 'a1');
    const pc = new FakePeerConnection();
    const link = new PeerLink(client, asPc(pc), 'b2');
    const loseSession = async (newId: string): Promise<void> => {
      socket().drop();
      await vi.advanceTimersByTimeAsync(20_000);
      socket().hello(newId, `resume-${newId}`);
      await tick();
      socket().push('error', { code: 'RESUME_FAILED', message: 'expired' }, socket().last('session:resume').id);
      await tick();
      socket().answer('auth:request', 'auth:response', { success: true, userId: 'alice' });
      await tick();
    };
    await loseSession('a9');
    expect(pc.restartIce).toHaveBeenCalledTimes(1);
    link.close();
    expect(pc.close).toHaveBeenCalledTimes(1);
    await loseSession('a10');
    expect(pc.restartIce).toHaveBeenCalledTimes(1);
  });
});
