// The WIT's types are ambient modules; this brings them along for every
// project that imports the SDK.
// eslint-disable-next-line @typescript-eslint/triple-slash-reference
/// <reference path="./wit/plugin.d.ts" />
/**
 * Write Switchboard plugins in TypeScript or JavaScript.
 *
 * A plugin is a {@link Plugin}: `describe()` and `create(config)`, which
 * returns the handlers of one instance. `exportPlugin` (from
 * `@switchboard/plugin/component`) turns it into the component's exports;
 * `TestHost` (from `@switchboard/plugin/testing`) runs the same handlers in
 * Node, without wasm.
 *
 * The types are the WIT's (`wit/switchboard.wit`, generated into `src/wit/`
 * by `npm run types`) where they read well in JS, with two changes made at
 * the seam: every client id is a string of 16 lowercase hex digits, also in
 * {@link Relay} where the WIT passes the number (JS would see a `bigint`),
 * and outbound `data` and metadata are objects, serialized by the SDK.
 */
import type * as wit from 'switchboard:plugin/types@0.3.0';

export type ClientId = wit.ClientId;
export type RoomId = wit.RoomId;
export type ErrorCode = wit.ErrorCode;
export type ClientInfo = wit.ClientInfo;
export type Peer = wit.Peer;
export type Identity = wit.Identity;
export type Hook = wit.Hook;
export type LogLevel = wit.LogLevel;
export type RelayEvent = wit.RelayEvent;
export type Outcome = wit.Outcome;
export type RelayOutcome = wit.RelayOutcome;
export type AuthOutcome = wit.AuthOutcome;

/** A JSON value, as `JSON.stringify` writes it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** The `data` of a message and a peer's metadata are JSON objects. */
export type JsonObject = { [key: string]: Json };

/**
 * The protocol's error codes a plugin may answer with, by the names
 * clients see on the wire (`NOT_IN_ROOM`), mapped to the WIT's cases.
 * `RATE_LIMITED`, `RESUME_FAILED` and `PLUGIN_ERROR` are the host's own.
 */
export const ErrorCode = {
  INVALID_MESSAGE: 'invalid-message',
  UNKNOWN_EVENT: 'unknown-event',
  NOT_AUTHENTICATED: 'not-authenticated',
  AUTH_FAILED: 'auth-failed',
  ALREADY_IN_ROOM: 'already-in-room',
  NOT_IN_ROOM: 'not-in-room',
  PEER_NOT_FOUND: 'peer-not-found',
  ROOM_FULL: 'room-full',
  FORBIDDEN: 'forbidden',
  INTERNAL: 'internal',
} as const satisfies Record<string, ErrorCode>;

/** A relay event (`sdp:offer`, `sdp:answer`, `ice:candidate`) to route. */
export interface Relay {
  event: RelayEvent;
  /** The wire name of `event`, as `onEvent` gets it. */
  eventName: string;
  sender: ClientId;
  /** The client `data.to` names; undefined when `to` is not a client id. */
  target?: ClientId;
  /** Whether the target is in the sender's room at the time of the call. */
  sameRoom: boolean;
}

export interface EventDecl {
  /** 1..64 characters of `[a-z0-9:._-]`. */
  name: string;
  /**
   * A JSON Schema for `data`: for custom events. The host knows the schemas
   * of the events PROTOCOL.md defines.
   */
  schema?: JsonObject;
}

export interface Descriptor {
  name: string;
  version: string;
  events: EventDecl[];
  hooks?: Hook[];
}

/** What `joinRoom` answers: the other members, oldest first, or why not. */
export type JoinResult = { ok: true; peers: Peer[] } | { ok: false; error: ErrorCode };

/**
 * What the host offers a plugin, one method per WIT import. Every call is
 * synchronous; sends are queued and go out after the plugin returns, its
 * answer first.
 */
export interface Host {
  send(client: ClientId, event: string, data: JsonObject): void;
  /** Every member of `room` but `except`. */
  broadcast(room: RoomId, event: string, data: JsonObject, except?: ClientId): void;
  /** The host itself tells the other members (`room:peer-joined`). */
  joinRoom(client: ClientId, room: RoomId, metadata?: JsonObject): JoinResult;
  /** The room the client left; the host tells the others (`room:peer-left`). */
  leaveRoom(client: ClientId): RoomId | undefined;
  /** Oldest first; empty when the room does not exist. */
  roomMembers(room: RoomId): Peer[];
  /** Undefined when the client is not connected (WIT: `lookup-client`). */
  clientInfo(client: ClientId): ClientInfo | undefined;
  /** Storage scoped to a room and this plugin; it ends with the room. */
  kvGet(room: RoomId, key: string): string | undefined;
  kvSet(room: RoomId, key: string, value: string): void;
  kvDelete(room: RoomId, key: string): void;
  /** Calls `onTimer(room, tag)` after `delayMs`, if the room still exists. */
  setTimer(room: RoomId, delayMs: number, tag: string): void;
  /** Closes the client's connection with code 4009. */
  kick(client: ClientId, reason: string): void;
  log(level: LogLevel, message: string): void;
  /** Unix time in milliseconds (a number: exact until the year 287396). */
  now(): number;
  /** The JSON text of the relay event's data; empty outside `onRelay`. */
  relayData(): string;
}

/**
 * One instance's handlers, built by {@link Plugin.create}. The host calls
 * only those of the events and hooks the descriptor declares; a missing
 * `onEvent` or `onAuth` passes, a missing `onRelay` is `onEvent` with the
 * sender's info and the data asked of the host.
 *
 * A handler that throws fails its call: the message and stack go to the
 * server's log, the sender gets `PLUGIN_ERROR`, and what the call queued is
 * dropped.
 */
export interface Handlers {
  onConnect?(host: Host, client: ClientInfo): void;
  onAuth?(host: Host, client: ClientInfo, token: string, roomId: string | undefined): AuthOutcome;
  /** `data` is JSON text of an object, already checked against the schema. */
  onEvent?(host: Host, client: ClientInfo, event: string, data: string): Outcome;
  onRelay?(host: Host, relay: Relay): RelayOutcome;
  onDisconnect?(host: Host, client: ClientInfo): void;
  onTimer?(host: Host, room: RoomId, tag: string): void;
}

/**
 * A plugin. The host may run several instances, recycle one after a fault
 * or swap in a new version at any time: state that must outlive a call
 * belongs in room storage (`kvSet`), not in the handlers' closure.
 */
export interface Plugin {
  describe(): Descriptor;
  /**
   * One instance from the JSON text of the plugin's config table (`{}` when
   * there is none). Throw to refuse it: the operator sees the message.
   */
  create(config: string): Handlers;
}

/**
 * The config table `create` was given, as an object, for a plugin that
 * takes only `keys`: throws, refusing the config, with what is wrong
 * ("chat config: unknown field `x`, expected `max_chars`"). What each
 * key must hold is the plugin's to check.
 */
export function configTable(plugin: string, config: string, keys: readonly string[]): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(config);
  } catch (error) {
    throw new Error(`${plugin} config: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${plugin} config: expected an object`);
  }
  const table = parsed as Record<string, unknown>;
  const extra = Object.keys(table).filter((key) => !keys.includes(key));
  if (extra.length > 0) {
    const expected = keys.map((key) => `\`${key}\``).join(' or ');
    throw new Error(`${plugin} config: unknown field \`${extra.join('`, `')}\`, expected ${expected}`);
  }
  return table;
}

// The helpers return the one case they build, which is also a case of each
// outcome type that has it (`pass()` is an `Outcome`, a `RelayOutcome` and
// an `AuthOutcome`).

/** Not mine: the next plugin in the chain decides. */
export function pass(): wit.OutcomePass {
  return { tag: 'pass' };
}

/** Done; nothing more is sent to the sender. */
export function handled(): wit.OutcomeHandled {
  return { tag: 'handled' };
}

/** Answers the sender; the host adds the correlation id. */
export function reply(event: string, data: JsonObject): wit.OutcomeReply {
  return { tag: 'reply', val: { event, data: JSON.stringify(data) } };
}

/** Answers the sender with a protocol error. */
export function reject(code: ErrorCode, message: string): wit.OutcomeReject {
  return { tag: 'reject', val: { code, message } };
}

/** Delivers the event to `client`, with `to` replaced by `from`. */
export function relayTo(client: ClientId): Outcome {
  return { tag: 'relay', val: client };
}

/** Delivers a relay event to its target, with `to` replaced by `from`. */
export function deliver(): RelayOutcome {
  return { tag: 'deliver' };
}

/** Accepts a token as this identity. */
export function accept(identity: Identity): AuthOutcome {
  return { tag: 'accept', val: identity };
}

/** Refuses a token; the reason is shown to the client. */
export function refuse(reason: string): AuthOutcome {
  return { tag: 'reject', val: reason };
}

export const RELAY_EVENT_NAMES: Readonly<Record<RelayEvent, string>> = {
  'sdp-offer': 'sdp:offer',
  'sdp-answer': 'sdp:answer',
  'ice-candidate': 'ice:candidate',
};
