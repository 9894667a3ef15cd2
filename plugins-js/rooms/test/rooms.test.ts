import { ErrorCode, pass, reject, type Handlers, type Json, type Outcome } from '@switchboard/plugin';
import { TestHost, rejection } from '@switchboard/plugin/testing';
import { describe, expect, test } from 'vitest';
import { ROOM_JOIN, ROOM_LEAVE, ROOM_STATE, rooms } from '../src/rooms.js';

/** Calls `onEvent` the way the host does: with the client as it is now. */
function call(plugin: Handlers, host: TestHost, client: string, event: string, data: Json): Outcome {
  return plugin.onEvent?.(host, host.client(client), event, JSON.stringify(data)) ?? pass();
}

function join(plugin: Handlers, host: TestHost, client: string, room: string): Outcome {
  return call(plugin, host, client, ROOM_JOIN, { roomId: room });
}

/** The event and data of a reply; throws for any other outcome. */
function replied(outcome: Outcome): [string, Json] {
  if (outcome.tag !== 'reply') {
    throw new Error(`expected a reply, got ${JSON.stringify(outcome)}`);
  }
  return [outcome.val.event, JSON.parse(outcome.val.data) as Json];
}

/** A host with these clients connected and authenticated, each with `role` if given. */
function hostWith(clients: [string, string | undefined][]): TestHost {
  const host = new TestHost();
  for (const [id, role] of clients) {
    host.connect(id);
    host.authenticate(id, role === undefined ? { userId: id } : { userId: id, role });
  }
  return host;
}

const fresh = (): Handlers => rooms.create('{}');

test('the first joiner gets no peers and itself with its metadata', () => {
  const host = new TestHost();
  host.addClient('c1', 'alice');

  const outcome = call(fresh(), host, 'c1', ROOM_JOIN, { roomId: 'standup', metadata: { name: 'Alice' } });

  expect(replied(outcome)).toEqual([
    'room:joined',
    { roomId: 'standup', peers: [], self: { clientId: 'c1', userId: 'alice', metadata: { name: 'Alice' } } },
  ]);
  expect(host.client('c1').room).toBe('standup');
});

test('a later joiner gets the others oldest first, and they hear of it', () => {
  const plugin = fresh();
  const host = new TestHost();
  for (const [id, user] of [['c1', 'alice'], ['c2', 'bob'], ['c3', 'carol']] as const) {
    host.addClient(id, user);
  }
  join(plugin, host, 'c1', 'r');
  join(plugin, host, 'c2', 'r');

  const [, data] = replied(join(plugin, host, 'c3', 'r'));

  expect(data).toEqual({
    roomId: 'r',
    peers: [
      { clientId: 'c1', userId: 'alice', metadata: {} },
      { clientId: 'c2', userId: 'bob', metadata: {} },
    ],
    self: { clientId: 'c3', userId: 'carol', metadata: {} },
  });
  expect(host.sentTo('c2')).toEqual([
    ['room:peer-joined', { roomId: 'r', peer: { clientId: 'c3', userId: 'carol', metadata: {} } }],
  ]);
  expect(host.sentTo('c3')).toEqual([]);
});

test('a join while in a room is ALREADY_IN_ROOM before FORBIDDEN', () => {
  const plugin = rooms.create('{"allowed_roles": ["host"]}');
  const host = hostWith([['c1', 'host']]);
  join(plugin, host, 'c1', 'r');
  host.authenticate('c1', { userId: 'c1', role: 'guest', roomClaim: 'r' });

  expect(rejection(join(plugin, host, 'c1', 'other'))).toBe(ErrorCode.ALREADY_IN_ROOM);
});

test("the token's room claim allows its room only, and is FORBIDDEN before ROOM_FULL", () => {
  const plugin = rooms.create('{"capacity": 1}');
  const host = new TestHost();
  host.addClient('c1', 'alice');
  host.addClient('c2', 'bob');
  join(plugin, host, 'c1', 'full');
  host.authenticate('c2', { userId: 'bob', roomClaim: 'mine' });

  expect(join(plugin, host, 'c2', 'full')).toEqual(reject(ErrorCode.FORBIDDEN, 'the token does not allow this room'));
  expect(replied(join(plugin, host, 'c2', 'mine'))[0]).toBe('room:joined');
});

test('a room at capacity is ROOM_FULL and nobody hears of the attempt', () => {
  const plugin = rooms.create('{"capacity": 2}');
  const host = hostWith([['c1', undefined], ['c2', undefined], ['c3', undefined]]);
  join(plugin, host, 'c1', 'r');
  join(plugin, host, 'c2', 'r');
  const heardBefore = host.sent().length;

  expect(join(plugin, host, 'c3', 'r')).toEqual(reject(ErrorCode.ROOM_FULL, 'the room is full'));
  expect(host.roomMembers('r')).toHaveLength(2);
  expect(host.sent()).toHaveLength(heardBefore);
  // Capacity is per room.
  expect(replied(join(plugin, host, 'c3', 'other'))[0]).toBe('room:joined');
});

test('the default capacity is sixteen', () => {
  const plugin = fresh();
  const host = new TestHost();
  for (let i = 0; i < 17; i++) {
    host.addClient(`c${i}`, 'u');
  }
  for (let i = 0; i < 16; i++) {
    expect(replied(join(plugin, host, `c${i}`, 'r'))[0]).toBe('room:joined');
  }
  expect(rejection(join(plugin, host, 'c16', 'r'))).toBe(ErrorCode.ROOM_FULL);
});

test("the host's refusal is passed on", () => {
  const plugin = fresh();
  const host = new TestHost();
  host.addClient('c1', 'alice');
  const beforeJoining = host.client('c1');
  join(plugin, host, 'c1', 'r');

  const outcome = plugin.onEvent?.(host, beforeJoining, ROOM_JOIN, '{"roomId": "other"}');

  expect(outcome).toEqual(reject(ErrorCode.ALREADY_IN_ROOM, 'could not join the room'));
});

test("past the server's max rooms a new room is the host's ROOM_FULL", () => {
  const host = new TestHost();
  host.addClient('c1', 'alice');
  host.setMaxRooms(0);
  expect(join(fresh(), host, 'c1', 'r')).toEqual(reject(ErrorCode.ROOM_FULL, 'could not join the room'));
});

test('leave replies with the room and the others hear of it', () => {
  const plugin = fresh();
  const host = new TestHost();
  host.addClient('c1', 'alice');
  host.addClient('c2', 'bob');
  join(plugin, host, 'c1', 'r');
  join(plugin, host, 'c2', 'r');

  expect(replied(call(plugin, host, 'c2', ROOM_LEAVE, {}))).toEqual(['room:left', { roomId: 'r' }]);
  expect(host.sentTo('c1').at(-1)).toEqual(['room:peer-left', { roomId: 'r', clientId: 'c2', reason: 'left' }]);
  expect(host.client('c2').room).toBeUndefined();
});

test('leave and state outside a room are NOT_IN_ROOM', () => {
  const host = new TestHost();
  host.addClient('c1', 'alice');
  for (const event of [ROOM_LEAVE, ROOM_STATE]) {
    expect(call(fresh(), host, 'c1', event, {}), event).toEqual(reject(ErrorCode.NOT_IN_ROOM, 'not in a room'));
  }
});

test('state lists the others oldest first, with their metadata', () => {
  const plugin = fresh();
  const host = new TestHost();
  for (const id of ['c1', 'c2', 'c3']) {
    host.addClient(id, `user-${id}`);
    call(plugin, host, id, ROOM_JOIN, { roomId: 'r', metadata: { n: id } });
  }

  expect(replied(call(plugin, host, 'c2', ROOM_STATE, {}))).toEqual([
    ROOM_STATE,
    {
      roomId: 'r',
      peers: [
        { clientId: 'c1', userId: 'user-c1', metadata: { n: 'c1' } },
        { clientId: 'c3', userId: 'user-c3', metadata: { n: 'c3' } },
      ],
    },
  ]);
});

test('malformed join data is INVALID_MESSAGE and joins nothing', () => {
  const plugin = fresh();
  const host = new TestHost();
  const client = host.addClient('c1', 'alice');
  for (const data of ['', '[]', '{}', '{"roomId": 7}', '{"roomId": "r", "metadata": []}', '{"roomId": "r", "metadata": null}']) {
    const outcome = plugin.onEvent?.(host, client, ROOM_JOIN, data) ?? pass();
    expect(rejection(outcome), data).toBe(ErrorCode.INVALID_MESSAGE);
  }
  expect(host.client('c1').room).toBeUndefined();
});

test('other events pass', () => {
  const host = new TestHost();
  const client = host.addClient('c1', 'alice');
  for (const event of ['sdp:offer', 'chat:message', 'room:joined']) {
    expect(fresh().onEvent?.(host, client, event, '{}'), event).toEqual(pass());
  }
});

describe('allowed_roles', () => {
  const guarded = (): Handlers => rooms.create('{"allowed_roles": ["host", "member"]}');

  test('without it, any role and none may join', () => {
    const plugin = fresh();
    const host = hostWith([['c1', 'guest'], ['c2', undefined], ['c3', 'host']]);
    for (const id of ['c1', 'c2', 'c3']) {
      expect(replied(join(plugin, host, id, 'r'))[0], id).toBe('room:joined');
    }
  });

  test('a listed role joins', () => {
    const plugin = guarded();
    const host = hostWith([['c1', 'host'], ['c2', 'member']]);
    expect(replied(join(plugin, host, 'c1', 'r'))[0]).toBe('room:joined');
    expect(replied(join(plugin, host, 'c2', 'r'))[0]).toBe('room:joined');
  });

  test('another role, or none, is FORBIDDEN with what was refused, and nobody hears of it', () => {
    const plugin = guarded();
    const host = hostWith([['c1', 'member'], ['c2', 'guest'], ['c3', undefined], ['c4', 'Member']]);
    join(plugin, host, 'c1', 'r');

    expect(join(plugin, host, 'c2', 'r')).toEqual(reject(ErrorCode.FORBIDDEN, 'the role `guest` may not join a room'));
    expect(join(plugin, host, 'c3', 'r')).toEqual(reject(ErrorCode.FORBIDDEN, 'a token without a role may not join a room'));
    expect(rejection(join(plugin, host, 'c4', 'r')), 'roles are case-sensitive').toBe(ErrorCode.FORBIDDEN);
    expect(host.roomMembers('r').map((peer) => peer.clientId)).toEqual(['c1']);
    expect(host.sent()).toEqual([]);
  });

  test('a refused role is FORBIDDEN before ROOM_FULL', () => {
    const plugin = rooms.create('{"capacity": 1, "allowed_roles": ["member"]}');
    const host = hostWith([['c1', 'member'], ['c2', 'guest'], ['c3', 'member']]);
    join(plugin, host, 'c1', 'r');
    expect(rejection(join(plugin, host, 'c2', 'r'))).toBe(ErrorCode.FORBIDDEN);
    expect(rejection(join(plugin, host, 'c3', 'r'))).toBe(ErrorCode.ROOM_FULL);
  });

  test('a member whose role is not allowed, let in by an earlier policy, still sees its room and leaves it', () => {
    const host = hostWith([['c1', 'guest'], ['c2', 'member']]);
    join(fresh(), host, 'c1', 'r');
    join(fresh(), host, 'c2', 'r');
    const plugin = guarded();

    expect(replied(call(plugin, host, 'c1', ROOM_STATE, {}))[0]).toBe(ROOM_STATE);
    expect(replied(call(plugin, host, 'c1', ROOM_LEAVE, {}))).toEqual(['room:left', { roomId: 'r' }]);
  });
});

describe('config', () => {
  test('capacity and allowed_roles together', () => {
    const plugin = rooms.create('{"capacity": 1, "allowed_roles": ["member"]}');
    const host = hostWith([['c1', 'member'], ['c2', 'member']]);
    expect(replied(join(plugin, host, 'c1', 'r'))[0]).toBe('room:joined');
    expect(rejection(join(plugin, host, 'c2', 'r'))).toBe(ErrorCode.ROOM_FULL);
  });

  test.each([
    '{"capacity": 0}',
    '{"capacity": -1}',
    '{"capacity": 2.5}',
    '{"capacity": "3"}',
    '{"capacity": null}',
    '{"allowed_roles": []}',
    '{"allowed_roles": "member"}',
    '{"allowed_roles": ["member", 7]}',
    '{"allowed_role": ["member"]}',
    '[]',
    '',
    'null',
  ])('%j is refused with a message naming the rooms config', (config) => {
    expect(() => rooms.create(config)).toThrow(/^rooms config/);
  });

  test('an unknown key is named', () => {
    expect(() => rooms.create('{"capcity": 4}')).toThrow('rooms config: unknown field `capcity`, expected `capacity` or `allowed_roles`');
  });
});

test('describes itself as rooms-js with the three room events and no hooks', () => {
  expect(rooms.describe()).toEqual({
    name: 'rooms-js',
    version: '1.0.0',
    events: [{ name: ROOM_JOIN }, { name: ROOM_LEAVE }, { name: ROOM_STATE }],
  });
});
