/**
 * An in-memory {@link Host} for unit tests of plugins in Node: no wasm.
 *
 * `TestHost` is the Rust SDK's `testing::TestHost` in TypeScript. It keeps
 * clients, rooms with ordered membership, storage and timers, and records
 * everything sent, kicked and logged, so a test calls a plugin's handlers
 * directly and asserts on what happened. Like the real host, `joinRoom` and
 * `leaveRoom` themselves tell the other members (`room:peer-joined`,
 * `room:peer-left`); it answers with the host's errors in the host's order,
 * and drops what the host drops (a send to or a kick of a client that is not
 * connected, a timer for an invalid room id, storage for a room that does
 * not exist). What makes the host fail the plugin's whole call (an invalid
 * event name) throws, which fails the test.
 *
 * One thing differs: any string names the client added with it ("c1" reads
 * better in a test than 16 hex digits).
 */
import type {
  ClientId,
  ClientInfo,
  ErrorCode,
  Handlers,
  Host,
  Identity,
  JoinResult,
  Json,
  JsonObject,
  LogLevel,
  Outcome,
  Peer,
  Relay,
  RelayEvent,
  RelayOutcome,
  RoomId,
} from './index.js';
import { RELAY_EVENT_NAMES } from './index.js';
import { onRelay } from './guest.js';

/** One message queued for a client. */
export interface Sent {
  to: ClientId;
  event: string;
  data: Json;
}

export interface Timer {
  room: RoomId;
  delayMs: number;
  tag: string;
}

export class TestHost implements Host {
  private readonly clients = new Map<ClientId, ClientInfo>();
  /** Members of each room, oldest first; a room exists while it has any. */
  private readonly rooms = new Map<RoomId, Peer[]>();
  /** Storage by room, then key. */
  private readonly storage = new Map<RoomId, Map<string, string>>();
  private readonly sentLog: Sent[] = [];
  private readonly timerLog: Timer[] = [];
  private readonly kickLog: [ClientId, string][] = [];
  private readonly logLines: [LogLevel, string][] = [];
  private clock = 0;
  private maxRooms = Infinity;
  private currentRelayData = '';

  /**
   * A host with these clients, each authenticated with its id as user id
   * and joined to its room (if any), in the order given.
   */
  static withMembers(members: [ClientId, RoomId | undefined][]): TestHost {
    const host = new TestHost();
    for (const [id, room] of members) {
      host.addClient(id, id);
      if (room !== undefined && !host.joinRoom(id, room).ok) {
        throw new Error(`TestHost: ${id} could not join ${room}`);
      }
    }
    return host;
  }

  /** A connected client that has not authenticated yet. */
  connect(id: ClientId): ClientInfo {
    const client: ClientInfo = { id };
    this.clients.set(id, client);
    return { ...client };
  }

  /** A connected client authenticated as `userId`, with no role or claim. */
  addClient(id: ClientId, userId: string): ClientInfo {
    this.connect(id);
    return this.authenticate(id, { userId });
  }

  /** Gives a known client an identity, as a successful auth does. */
  authenticate(id: ClientId, identity: Identity): ClientInfo {
    const client = this.known(id);
    const updated: ClientInfo = { ...client, userId: identity.userId };
    // Absent, not undefined: `exactOptionalPropertyTypes`, and what the host passes.
    delete updated.role;
    delete updated.roomClaim;
    if (identity.role !== undefined) {
      updated.role = identity.role;
    }
    if (identity.roomClaim !== undefined) {
      updated.roomClaim = identity.roomClaim;
    }
    this.clients.set(id, updated);
    return { ...updated };
  }

  /** The client as the host sees it now, as a plugin call gets it. */
  client(id: ClientId): ClientInfo {
    return { ...this.known(id) };
  }

  /**
   * A relay event from `from` to `to` as the real host describes it to
   * `onRelay`; `data` (JSON text) is then what `relayData()` returns.
   */
  relay(from: ClientId, event: RelayEvent, to: ClientId, data: string): Relay {
    this.currentRelayData = data;
    const room = this.clients.get(from)?.room;
    const relay: Relay = {
      event,
      eventName: RELAY_EVENT_NAMES[event],
      sender: from,
      sameRoom: room !== undefined && room === this.clients.get(to)?.room,
    };
    if (this.couldBeClient(to)) {
      relay.target = to;
    }
    return relay;
  }

  /** Calls `handlers` for a relay event the way the host does. */
  onRelay(handlers: Handlers, relay: Relay): RelayOutcome {
    return onRelay(handlers, this, relay);
  }

  /** Everything queued for one client, oldest first, as `[event, data]`. */
  sentTo(client: ClientId): [string, Json][] {
    return this.sentLog.filter((sent) => sent.to === client).map((sent) => [sent.event, sent.data]);
  }

  /** Everything queued for anyone, oldest first. */
  sent(): Sent[] {
    return [...this.sentLog];
  }

  timers(): Timer[] {
    return [...this.timerLog];
  }

  /** Every kick as `[client, reason]`. */
  kicks(): [ClientId, string][] {
    return [...this.kickLog];
  }

  logs(): [LogLevel, string][] {
    return [...this.logLines];
  }

  /** Sets the clock `now()` reads, in unix milliseconds. */
  setNow(unixMs: number): void {
    this.clock = unixMs;
  }

  /** The server's `limits.max_rooms`: a join opening one more is `ROOM_FULL`. */
  setMaxRooms(maxRooms: number): void {
    this.maxRooms = maxRooms;
  }

  send(client: ClientId, event: string, data: JsonObject): void {
    this.queue(client, checkedEvent('send', event), data);
  }

  broadcast(room: RoomId, event: string, data: JsonObject, except?: ClientId): void {
    checkedEvent('broadcast', event);
    for (const peer of this.rooms.get(room) ?? []) {
      if (peer.clientId !== except) {
        this.queue(peer.clientId, event, data);
      }
    }
  }

  /**
   * The host's checks in its order: `PEER_NOT_FOUND` for an id that cannot
   * be a client's, `INVALID_MESSAGE` for an invalid room id,
   * `NOT_AUTHENTICATED` for a client that is not connected,
   * `ALREADY_IN_ROOM`, `ROOM_FULL` past the max rooms, `NOT_AUTHENTICATED`
   * for a client without a user id.
   */
  joinRoom(client: ClientId, room: RoomId, metadata: JsonObject = {}): JoinResult {
    const refused = (error: ErrorCode): JoinResult => ({ ok: false, error });
    if (!this.couldBeClient(client)) {
      return refused('peer-not-found');
    }
    if (!validRoomId(room)) {
      return refused('invalid-message');
    }
    const info = this.clients.get(client);
    if (info === undefined) {
      return refused('not-authenticated');
    }
    if (info.room !== undefined) {
      return refused('already-in-room');
    }
    if (!this.rooms.has(room) && this.rooms.size >= this.maxRooms) {
      return refused('room-full');
    }
    if (info.userId === undefined) {
      return refused('not-authenticated');
    }
    info.room = room;
    const peer: Peer = { clientId: client, userId: info.userId, metadata: JSON.stringify(metadata) };
    const others = this.rooms.get(room) ?? [];
    this.rooms.set(room, [...others, peer]);
    const notice = { roomId: room, peer: { clientId: client, userId: info.userId, metadata } };
    this.broadcast(room, 'room:peer-joined', notice, client);
    return { ok: true, peers: others.map((p) => ({ ...p })) };
  }

  leaveRoom(client: ClientId): RoomId | undefined {
    const info = this.clients.get(client);
    const room = info?.room;
    if (info === undefined || room === undefined) {
      return undefined;
    }
    delete info.room;
    const members = (this.rooms.get(room) ?? []).filter((peer) => peer.clientId !== client);
    if (members.length === 0) {
      this.rooms.delete(room);
      this.storage.delete(room);
    } else {
      this.rooms.set(room, members);
    }
    this.broadcast(room, 'room:peer-left', { roomId: room, clientId: client, reason: 'left' });
    return room;
  }

  roomMembers(room: RoomId): Peer[] {
    return (this.rooms.get(room) ?? []).map((peer) => ({ ...peer }));
  }

  clientInfo(client: ClientId): ClientInfo | undefined {
    const info = this.clients.get(client);
    return info === undefined ? undefined : { ...info };
  }

  kvGet(room: RoomId, key: string): string | undefined {
    return this.storage.get(room)?.get(key);
  }

  /** Dropped for a room that does not exist, as on the host. */
  kvSet(room: RoomId, key: string, value: string): void {
    if (!this.rooms.has(room)) {
      return;
    }
    const values = this.storage.get(room) ?? new Map<string, string>();
    values.set(key, value);
    this.storage.set(room, values);
  }

  kvDelete(room: RoomId, key: string): void {
    this.storage.get(room)?.delete(key);
  }

  /** Recorded unless `room` is not a valid room id, which the host ignores. */
  setTimer(room: RoomId, delayMs: number, tag: string): void {
    if (validRoomId(room)) {
      this.timerLog.push({ room, delayMs, tag });
    }
  }

  kick(client: ClientId, reason: string): void {
    if (this.clients.has(client)) {
      this.kickLog.push([client, reason]);
    }
  }

  log(level: LogLevel, message: string): void {
    this.logLines.push([level, message]);
  }

  now(): number {
    return this.clock;
  }

  relayData(): string {
    return this.currentRelayData;
  }

  private known(id: ClientId): ClientInfo {
    const client = this.clients.get(id);
    if (client === undefined) {
      throw new Error(`TestHost: unknown client ${JSON.stringify(id)}`);
    }
    return client;
  }

  /** One of the clients here, or a well-formed id that names no one. */
  private couldBeClient(id: string): boolean {
    return this.clients.has(id) || /^[0-9a-f]{16}$/.test(id);
  }

  /** A send to a client that is not connected is dropped, as on the host. */
  private queue(to: ClientId, event: string, data: JsonObject): void {
    if (this.clients.has(to)) {
      // Through JSON, as the wire would: what the plugin keeps is not shared.
      this.sentLog.push({ to, event, data: JSON.parse(JSON.stringify(data)) as Json });
    }
  }
}

/** The code of a rejection, for assertions; throws for any other outcome. */
export function rejection(outcome: Outcome | RelayOutcome): ErrorCode {
  if (outcome.tag !== 'reject') {
    throw new Error(`expected a rejection, got ${JSON.stringify(outcome)}`);
  }
  return outcome.val.code;
}

/** An event name the host accepts: 1..64 characters of `[a-z0-9:._-]`. */
function checkedEvent(call: string, event: string): string {
  if (!/^[a-z0-9:._-]{1,64}$/.test(event)) {
    throw new Error(`TestHost: ${call} was passed an invalid event name ${JSON.stringify(event)}`);
  }
  return event;
}

/** 1..128 Unicode scalar values (code points, which spreading counts). */
function validRoomId(room: string): boolean {
  // eslint-disable-next-line @typescript-eslint/no-misused-spread
  const chars = [...room].length;
  return chars >= 1 && chars <= 128;
}

