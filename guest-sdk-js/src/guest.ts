/**
 * The component's exports over a {@link Plugin}: the WIT's `guest`
 * interface, with every call guarded so that a thrown error reaches the
 * server's log.
 */
import type * as witGuest from 'switchboard:plugin/guest@0.3.0';
import type * as wit from 'switchboard:plugin/types@0.3.0';
import {
  RELAY_EVENT_NAMES,
  deliver,
  pass,
  reject,
  type ClientId,
  type Handlers,
  type Host,
  type LogLevel,
  type Outcome,
  type Plugin,
  type Relay,
  type RelayOutcome,
} from './index.js';

/**
 * The exports a component's module must name `guest`: the WIT's, as jco
 * generates them, so a change to the WIT that the SDK misses fails to
 * compile.
 */
export type GuestExports = typeof witGuest;

/** A client id from its numeric form: 16 lowercase hex digits. */
export function clientIdFromBits(bits: bigint): ClientId {
  return bits.toString(16).padStart(16, '0');
}

/**
 * The WIT's exports for `plugin`, calling `host` for the host's side.
 *
 * A call that throws logs the error's message and stack at `error` through
 * the host, then throws on: the call traps, which the host answers with
 * `PLUGIN_ERROR` and by dropping what the call queued, as it does for a Rust
 * plugin's panic. Answering with an outcome instead would deliver the
 * half-done call's sends. `init` is the exception: its error is the result
 * the WIT gives it (`result<_, string>`), shown to the operator.
 */
export function guestExports(plugin: Plugin, host: Host): GuestExports {
  let handlers: Handlers | undefined;
  const name = (): string => {
    try {
      return plugin.describe().name;
    } catch {
      return 'plugin';
    }
  };
  const guarded = <T>(call: string, run: () => T): T => {
    try {
      return run();
    } catch (error) {
      host.log('error', `${name()}: ${call} threw ${describeError(error)}`);
      throw error;
    }
  };
  // The host calls `init` first; anything earlier is a host bug, answered
  // as one rather than with a crash inside the plugin.
  const instance = (call: string): Handlers => {
    if (handlers === undefined) {
      throw new Error(`${call} before init`);
    }
    return handlers;
  };

  return {
    describe: () => guarded('describe', () => descriptor(plugin)),
    init(config) {
      if (handlers !== undefined) {
        throw new Error('plugin already initialised');
      }
      try {
        handlers = plugin.create(config);
      } catch (error) {
        // componentize-qjs (as componentize-js) makes a thrown string the
        // `err` of the result; a thrown Error would trap instead, hiding
        // the message.
        // eslint-disable-next-line @typescript-eslint/only-throw-error
        throw error instanceof Error ? error.message : String(error);
      }
    },
    onConnect: (client) => {
      guarded('on-connect', () => instance('on-connect').onConnect?.(host, fromWit(client)));
    },
    onAuth: (client, token, roomId) =>
      guarded(
        'on-auth',
        () => instance('on-auth').onAuth?.(host, fromWit(client), token, some(roomId)) ?? pass(),
      ),
    onEvent: (client, event, data) =>
      guarded('on-event', () => instance('on-event').onEvent?.(host, fromWit(client), event, data) ?? pass()),
    onRelay: (relay) => guarded('on-relay', () => onRelay(instance('on-relay'), host, fromWitRelay(relay))),
    onDisconnect: (client) => {
      guarded('on-disconnect', () => instance('on-disconnect').onDisconnect?.(host, fromWit(client)));
    },
    onTimer: (room, tag) => {
      guarded('on-timer', () => instance('on-timer').onTimer?.(host, room, tag));
    },
  };
}

function descriptor(plugin: Plugin): wit.Descriptor {
  const { name, version, events, hooks } = plugin.describe();
  return {
    name,
    version,
    events: events.map((event) =>
      event.schema === undefined ? { name: event.name } : { name: event.name, schema: JSON.stringify(event.schema) },
    ),
    hooks: hooks ?? [],
  };
}

/**
 * A WIT `option` as the SDK's types have it. componentize-qjs lifts `none`
 * as `null`, where jco's types (and componentize-js) have `undefined`; a
 * plugin checks `=== undefined`, so every option the host hands the SDK
 * goes through here or {@link fromWit}.
 */
export function some<T>(value: T | null | undefined): T | undefined {
  return value ?? undefined;
}

/** A WIT record with each `none` field left out rather than `null`. */
export function fromWit<T extends object>(record: T): T {
  for (const key of Object.keys(record)) {
    if ((record as Record<string, unknown>)[key] === null) {
      Reflect.deleteProperty(record, key);
    }
  }
  return record;
}

function fromWitRelay(relay: wit.Relay): Relay {
  const converted: Relay = {
    event: relay.event,
    eventName: RELAY_EVENT_NAMES[relay.event],
    sender: clientIdFromBits(relay.sender),
    sameRoom: relay.sameRoom,
  };
  const target = some(relay.target);
  if (target !== undefined) {
    converted.target = clientIdFromBits(target);
  }
  return converted;
}

/**
 * `onRelay`, or by default `onEvent` with the sender's info and the data,
 * both asked of the host, as the Rust SDK does.
 */
export function onRelay(handlers: Handlers, host: Host, relay: Relay): RelayOutcome {
  if (handlers.onRelay !== undefined) {
    return handlers.onRelay(host, relay);
  }
  const client = host.clientInfo(relay.sender);
  if (client === undefined || handlers.onEvent === undefined) {
    return pass();
  }
  return relayOutcome(handlers.onEvent(host, client, relay.eventName, host.relayData()), relay);
}

/** An `onEvent` outcome as the answer to a relay event. */
function relayOutcome(outcome: Outcome, relay: Relay): RelayOutcome {
  if (outcome.tag !== 'relay') {
    return outcome;
  }
  if (relay.target === undefined || relay.target === outcome.val) {
    return deliver();
  }
  return reject('internal', 'a relay event goes only to the client its `to` names');
}

/** A `console` whose methods write to `host`'s log. */
export type HostConsole = Record<'trace' | 'debug' | 'log' | 'info' | 'warn' | 'error', (...values: unknown[]) => void>;

/**
 * A `console` that writes through `host.log`, one line per call, the values
 * joined by spaces as Node prints them: strings as they are, errors with
 * their stack, anything else as JSON. `log` is `info`; each other method
 * logs at the level of its name. The component installs it where the
 * JavaScript engine has no `console` of its own (QuickJS), so that
 * `console.log` reaches the server's log instead of failing the call.
 */
export function hostConsole(host: Host): HostConsole {
  const method =
    (level: LogLevel) =>
    (...values: unknown[]): void => {
      host.log(level, values.map(showValue).join(' '));
    };
  return {
    trace: method('trace'),
    debug: method('debug'),
    log: method('info'),
    info: method('info'),
    warn: method('warn'),
    error: method('error'),
  };
}

function showValue(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  if (value instanceof Error) {
    return describeError(value);
  }
  try {
    // `undefined` for undefined, a function or a symbol.
    const json = JSON.stringify(value) as string | undefined;
    return json ?? String(value);
  } catch {
    // A cycle or a BigInt.
    return String(value);
  }
}

/**
 * An error's name, message and stack, or the thrown value if it is no
 * error. Node's stack starts with the name and message; QuickJS's (and
 * StarlingMonkey's) has only the frames, and is empty when it has none.
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) {
    return String(error);
  }
  const stack = error.stack ?? '';
  const title = String(error);
  if (stack.startsWith(title)) {
    return stack;
  }
  return stack === '' ? title : `${title}\n${stack}`;
}
