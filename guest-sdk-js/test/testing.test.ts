import { describe, expect, test } from 'vitest';
import { TestHost } from '../src/testing.js';

function twoInARoom(): TestHost {
  const host = new TestHost();
  host.addClient('c1', 'alice');
  host.addClient('c2', 'bob');
  host.joinRoom('c1', 'r');
  host.joinRoom('c2', 'r');
  return host;
}

describe('TestHost answers as the host does', () => {
  test('join returns the others oldest first and tells them', () => {
    const host = twoInARoom();
    host.addClient('c3', 'carol');
    const joined = host.joinRoom('c3', 'r', { name: 'Carol' });
    expect(joined.ok && joined.peers.map((p) => p.clientId)).toEqual(['c1', 'c2']);
    expect(host.roomMembers('r')).toHaveLength(3);
    expect(host.sentTo('c1').at(-1)).toEqual([
      'room:peer-joined',
      { roomId: 'r', peer: { clientId: 'c3', userId: 'carol', metadata: { name: 'Carol' } } },
    ]);
    expect(host.sentTo('c3')).toEqual([]);
    expect(host.client('c3').room).toBe('r');
  });

  test('join refuses in the host order', () => {
    const host = twoInARoom();
    host.connect('c4');
    expect(host.joinRoom('c1', 'other')).toEqual({ ok: false, error: 'already-in-room' });
    expect(host.joinRoom('c4', 'r')).toEqual({ ok: false, error: 'not-authenticated' });
    expect(host.joinRoom('0123456789abcdef', 'r')).toEqual({ ok: false, error: 'not-authenticated' });
    expect(host.joinRoom('ghost', 'r')).toEqual({ ok: false, error: 'peer-not-found' });
    expect(host.joinRoom('c1', '')).toEqual({ ok: false, error: 'invalid-message' });
    expect(host.joinRoom('c1', 'é'.repeat(129))).toEqual({ ok: false, error: 'invalid-message' });
    expect(host.joinRoom('c1', '🎉'.repeat(128))).toEqual({ ok: false, error: 'already-in-room' });
    expect(host.roomMembers('other')).toEqual([]);
  });

  test('a join that would open a room beyond the limit is room-full, before the identity', () => {
    const host = new TestHost();
    host.setMaxRooms(1);
    host.addClient('c1', 'a');
    host.addClient('c2', 'b');
    host.connect('c3');
    expect(host.joinRoom('c1', 'r').ok).toBe(true);
    expect(host.joinRoom('c2', 's')).toEqual({ ok: false, error: 'room-full' });
    expect(host.joinRoom('c2', 'r').ok).toBe(true);
    expect(host.joinRoom('c3', 's')).toEqual({ ok: false, error: 'room-full' });
  });

  test('leave tells the others with reason left', () => {
    const host = twoInARoom();
    expect(host.leaveRoom('c2')).toBe('r');
    expect(host.sentTo('c1').at(-1)).toEqual(['room:peer-left', { roomId: 'r', clientId: 'c2', reason: 'left' }]);
    expect(host.client('c2').room).toBeUndefined();
    expect(host.leaveRoom('c2')).toBeUndefined();
  });

  test('storage ends with the room, and a room that does not exist keeps nothing', () => {
    const host = twoInARoom();
    host.kvSet('r', 'k', 'v');
    host.kvSet('nowhere', 'k', 'v');
    expect(host.kvGet('r', 'k')).toBe('v');
    expect(host.kvGet('nowhere', 'k')).toBeUndefined();
    host.leaveRoom('c1');
    expect(host.kvGet('r', 'k')).toBe('v');
    host.leaveRoom('c2');
    expect(host.kvGet('r', 'k')).toBeUndefined();
    host.kvDelete('r', 'k');
  });

  test('broadcast skips the excepted member; what is sent is a copy', () => {
    const host = twoInARoom();
    const data = { text: 'hi' };
    host.broadcast('r', 'chat:message', data, 'c1');
    data.text = 'changed';
    expect(host.sent()).toHaveLength(2);
    expect(host.sentTo('c2')).toEqual([['chat:message', { text: 'hi' }]]);
  });

  test('an invalid event name fails the test, even to no one', () => {
    const host = new TestHost();
    expect(() => { host.broadcast('nowhere', 'Chat', {}); }).toThrow('invalid event name');
    expect(() => { host.send('c1', '', {}); }).toThrow('invalid event name');
  });

  test('what the host drops is dropped', () => {
    const host = twoInARoom();
    const heard = host.sent().length;
    host.send('ghost', 'x', {});
    host.kick('ghost', 'spam');
    host.setTimer('', 500, 'tick');
    host.setTimer('r'.repeat(129), 500, 'tick');
    expect(host.sent()).toHaveLength(heard);
    expect(host.kicks()).toEqual([]);
    expect(host.timers()).toEqual([]);
  });

  test('records timers, kicks, logs and time', () => {
    const host = new TestHost();
    host.addClient('c1', 'alice');
    host.setTimer('r', 500, 'tick');
    host.kick('c1', 'spam');
    host.log('warn', 'careful');
    host.setNow(42);
    expect(host.timers()).toEqual([{ room: 'r', delayMs: 500, tag: 'tick' }]);
    expect(host.kicks()).toEqual([['c1', 'spam']]);
    expect(host.logs()).toEqual([['warn', 'careful']]);
    expect(host.now()).toBe(42);
  });

  test('authenticate replaces the identity, and a client is a copy', () => {
    const host = new TestHost();
    host.connect('c1');
    expect(host.authenticate('c1', { userId: 'u', role: 'moderator' })).toEqual({ id: 'c1', userId: 'u', role: 'moderator' });
    expect(host.authenticate('c1', { userId: 'v', roomClaim: 'r' })).toEqual({ id: 'c1', userId: 'v', roomClaim: 'r' });
    const seen = host.client('c1');
    seen.room = 'elsewhere';
    expect(host.client('c1').room).toBeUndefined();
    expect(() => host.client('nobody')).toThrow('unknown client');
  });

  test('relay describes the event as the host would', () => {
    const host = TestHost.withMembers([['a', 'r'], ['b', 'r'], ['c', 's']]);
    expect(host.relay('a', 'sdp-offer', 'b', '{"sdp":"x"}')).toEqual({
      event: 'sdp-offer', eventName: 'sdp:offer', sender: 'a', target: 'b', sameRoom: true,
    });
    expect(host.relayData()).toBe('{"sdp":"x"}');
    expect(host.relay('a', 'ice-candidate', 'c', '{}').sameRoom).toBe(false);
    expect(host.relay('a', 'ice-candidate', 'not an id', '{}').target).toBeUndefined();
  });
});
