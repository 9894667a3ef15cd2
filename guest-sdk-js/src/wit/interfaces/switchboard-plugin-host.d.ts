/// <reference path="./switchboard-plugin-types.d.ts" />
declare module 'switchboard:plugin/host@0.3.0' {
  /**
   * Queue an event for one client.
   */
  export function send(client: ClientId, event: string, data: string): void;
  /**
   * Queue an event for every member of a room but `except`.
   */
  export function broadcast(room: RoomId, event: string, data: string, except: ClientId | undefined): void;
  /**
   * Add a client to a room. The other members get `room:peer-joined`.
   * Returns them, oldest first.
   */
  export function joinRoom(client: ClientId, room: RoomId, metadata: string): Array<Peer>;
  /**
   * Take a client out of its room. The others get `room:peer-left` with
   * reason `left`. Returns the room it left.
   */
  export function leaveRoom(client: ClientId): RoomId | undefined;
  /**
   * The members of a room, oldest first (empty when it does not exist).
   */
  export function roomMembers(room: RoomId): Array<Peer>;
  /**
   * What the host knows about a client; none if it is not connected.
   */
  export function lookupClient(client: ClientId): ClientInfo | undefined;
  /**
   * Storage scoped to a room and to the calling plugin; it outlives
   * instances and swaps, and ends with the room.
   */
  export function kvGet(room: RoomId, key: string): string | undefined;
  export function kvSet(room: RoomId, key: string, value: string): void;
  export function kvDelete(room: RoomId, key: string): void;
  /**
   * Call this plugin's `on-timer(room, tag)` after `delay-ms`, if the room
   * still exists then.
   */
  export function setTimer(room: RoomId, delayMs: number, tag: string): void;
  /**
   * Close a client's connection with code 4009.
   */
  export function kick(client: ClientId, reason: string): void;
  export function log(level: LogLevel, message: string): void;
  /**
   * Unix time in milliseconds.
   */
  export function now(): bigint;
  /**
   * The JSON text of the `data` of the relay event being decided, as
   * `on-event` would get it; empty outside `on-relay`.
   */
  export function relayData(): string;
  export type ClientId = import('switchboard:plugin/types@0.3.0').ClientId;
  export type RoomId = import('switchboard:plugin/types@0.3.0').RoomId;
  export type ErrorCode = import('switchboard:plugin/types@0.3.0').ErrorCode;
  export type ClientInfo = import('switchboard:plugin/types@0.3.0').ClientInfo;
  export type Peer = import('switchboard:plugin/types@0.3.0').Peer;
  export type LogLevel = import('switchboard:plugin/types@0.3.0').LogLevel;
}
