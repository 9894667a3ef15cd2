/**
 * The default room policy, `plugins/rooms`, in TypeScript: `room:join`,
 * `room:leave` and `room:state`, answered and refused as the Rust plugin
 * does, plus a role check. It is a drop-in replacement for the chain's
 * `rooms` entry, and is hot-swapped with the Rust plugin under load by the
 * end-to-end suite (tests/tests/e2e/js_rooms.rs).
 *
 * Membership itself lives in the host; this plugin decides who may join
 * and answers with the room's view. The host sends `room:peer-joined` and
 * `room:peer-left` to the others itself.
 *
 * A join is refused, in this order: `ALREADY_IN_ROOM` for a client in a
 * room; `FORBIDDEN` for a room other than the token's `room` claim, and for
 * a role the config does not allow; `ROOM_FULL` for a room at capacity;
 * then with whatever the host refuses it with (`limits.max_rooms`). Leaving
 * and `room:state` are not role-checked: a client that joined under an
 * earlier policy can still see its room and leave it.
 *
 * Config, every key optional:
 * - `capacity`: the most members a room may have, at least 1 (default 16).
 * - `allowed_roles`: the roles (the token's `role` claim) that may join a
 *   room, at least one. A client whose token has another role, or none, is
 *   `FORBIDDEN`. Without it anyone may join, as with the Rust plugin, which
 *   has no role check and ignores the key, so one config serves both.
 *
 * Any other key is refused, so that a misspelt one is not silently ignored.
 *
 * It describes itself as `rooms-js` 1.0.0, so that `GET /admin/plugins`
 * tells it from the Rust plugin (the workspace's version) by its version.
 */
import {
  configTable,
  ErrorCode,
  pass,
  reject,
  reply,
  type ClientInfo,
  type Host,
  type Json,
  type JsonObject,
  type Outcome,
  type Peer,
  type Plugin,
} from '@switchboard/plugin';

export const ROOM_JOIN = 'room:join';
export const ROOM_LEAVE = 'room:leave';
export const ROOM_STATE = 'room:state';

export const DEFAULT_CAPACITY = 16;

/** Who may join a room, from the config. */
interface Policy {
  capacity: number;
  /** Undefined: any role, or none. */
  allowedRoles: ReadonlySet<string> | undefined;
}

export const rooms: Plugin = {
  describe: () => ({
    name: 'rooms-js',
    version: '1.0.0',
    events: [{ name: ROOM_JOIN }, { name: ROOM_LEAVE }, { name: ROOM_STATE }],
  }),

  create(config) {
    const policy = policyOf(config);
    return {
      onEvent(host, client, event, data) {
        switch (event) {
          case ROOM_JOIN:
            return join(host, client, data, policy);
          case ROOM_LEAVE:
            return leave(host, client);
          case ROOM_STATE:
            return state(host, client);
          default:
            return pass();
        }
      },
    };
  },
};

function join(host: Host, client: ClientInfo, data: string, policy: Policy): Outcome {
  const request = joinOf(data);
  if ('error' in request) {
    return reject(ErrorCode.INVALID_MESSAGE, request.error);
  }
  const { roomId, metadata } = request;
  if (client.room !== undefined) {
    return reject(ErrorCode.ALREADY_IN_ROOM, 'already in a room; leave it first');
  }
  if (client.roomClaim !== undefined && client.roomClaim !== roomId) {
    return reject(ErrorCode.FORBIDDEN, 'the token does not allow this room');
  }
  if (policy.allowedRoles !== undefined && !(client.role !== undefined && policy.allowedRoles.has(client.role))) {
    const who = client.role === undefined ? 'a token without a role' : `the role \`${client.role}\``;
    return reject(ErrorCode.FORBIDDEN, `${who} may not join a room`);
  }
  if (host.roomMembers(roomId).length >= policy.capacity) {
    return reject(ErrorCode.ROOM_FULL, 'the room is full');
  }
  const joined = host.joinRoom(client.id, roomId, metadata);
  if (!joined.ok) {
    return reject(joined.error, 'could not join the room');
  }
  // A client without a user id (auth disabled) shows its client id, as the
  // host does: a peer always has one.
  const self = { clientId: client.id, userId: client.userId ?? client.id, metadata };
  return reply('room:joined', { roomId, peers: joined.peers.map(peerJson), self });
}

function leave(host: Host, client: ClientInfo): Outcome {
  if (client.room === undefined) {
    return notInRoom();
  }
  const room = host.leaveRoom(client.id);
  return room === undefined ? notInRoom() : reply('room:left', { roomId: room });
}

function state(host: Host, client: ClientInfo): Outcome {
  const room = client.room;
  if (room === undefined) {
    return notInRoom();
  }
  const peers = host.roomMembers(room).filter((peer) => peer.clientId !== client.id);
  return reply(ROOM_STATE, { roomId: room, peers: peers.map(peerJson) });
}

function notInRoom(): Outcome {
  return reject(ErrorCode.NOT_IN_ROOM, 'not in a room');
}

/** A peer as the protocol shows it: its metadata an object, not JSON text. */
function peerJson(peer: Peer): JsonObject {
  return { clientId: peer.clientId, userId: peer.userId, metadata: JSON.parse(peer.metadata) as Json };
}

/**
 * `room:join` data as the host normalised it: the room, and the metadata
 * (`{}` when there is none); or why it is refused. Present, metadata must
 * be an object, `null` included.
 */
function joinOf(data: string): { roomId: string; metadata: JsonObject } | { error: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch (error) {
    return { error: `${ROOM_JOIN}: ${(error as Error).message}` };
  }
  if (!isObject(parsed)) {
    return { error: `${ROOM_JOIN}: expected an object` };
  }
  const { roomId, metadata } = parsed;
  if (typeof roomId !== 'string') {
    return { error: `${ROOM_JOIN}: \`roomId\` must be a string` };
  }
  if (metadata !== undefined && !isObject(metadata)) {
    return { error: `${ROOM_JOIN}: \`metadata\` must be an object` };
  }
  return { roomId, metadata: (metadata ?? {}) as JsonObject };
}

/** The policy the config sets; throws, refusing the config, with what is wrong. */
function policyOf(config: string): Policy {
  const { capacity = DEFAULT_CAPACITY, allowed_roles: allowedRoles } = configTable('rooms', config, [
    'capacity',
    'allowed_roles',
  ]);
  if (typeof capacity !== 'number' || !Number.isSafeInteger(capacity) || capacity < 1) {
    throw new Error(`rooms config: \`capacity\` must be a whole number of at least 1, not ${JSON.stringify(capacity)}`);
  }
  if (allowedRoles === undefined) {
    return { capacity, allowedRoles: undefined };
  }
  if (!isRoleList(allowedRoles)) {
    throw new Error(`rooms config: \`allowed_roles\` must be a list of role names, not ${JSON.stringify(allowedRoles)}`);
  }
  // An empty list would refuse every join: more likely a mistake than a
  // policy.
  if (allowedRoles.length === 0) {
    throw new Error('rooms config: `allowed_roles` must name at least one role');
  }
  return { capacity, allowedRoles: new Set(allowedRoles) };
}

function isRoleList(value: unknown): value is string[] {
  return Array.isArray(value) && (value as unknown[]).every((role) => typeof role === 'string');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
