/**
 * The entry a component's module imports: `export const guest =
 * exportPlugin(plugin);`. It imports the WIT host interface, which exists
 * only inside a component, so unit tests import the plugin and
 * `@switchboard/plugin/testing`, never this module.
 */
import * as imports from 'switchboard:plugin/host@0.3.0';
import type { ErrorCode, Host, JoinResult, Plugin } from './index.js';
import { fromWit, guestExports, hostConsole, some, type GuestExports } from './guest.js';

/** The real host, through the component's imports. */
const wasmHost: Host = {
  send: (client, event, data) => {
    imports.send(client, event, JSON.stringify(data));
  },
  broadcast: (room, event, data, except) => {
    imports.broadcast(room, event, JSON.stringify(data), except);
  },
  joinRoom(client, room, metadata = {}): JoinResult {
    try {
      return { ok: true, peers: imports.joinRoom(client, room, JSON.stringify(metadata)) };
    } catch (error) {
      // The bindings throw the `err` of a `result` import, as `payload`.
      return { ok: false, error: (error as { payload: ErrorCode }).payload };
    }
  },
  leaveRoom: (client) => some(imports.leaveRoom(client)),
  roomMembers: (room) => imports.roomMembers(room),
  clientInfo: (client) => {
    const info = some(imports.lookupClient(client));
    return info && fromWit(info);
  },
  kvGet: (room, key) => some(imports.kvGet(room, key)),
  kvSet: (room, key, value) => {
    imports.kvSet(room, key, value);
  },
  kvDelete: (room, key) => {
    imports.kvDelete(room, key);
  },
  setTimer: (room, delayMs, tag) => {
    imports.setTimer(room, delayMs, tag);
  },
  kick: (client, reason) => {
    imports.kick(client, reason);
  },
  log: (level, message) => {
    imports.log(level, message);
  },
  now: () => Number(imports.now()),
  relayData: () => imports.relayData(),
};

// QuickJS, the engine `npm run build` puts in the component, has no
// `console`: without this, `console.log` would throw and fail the call.
if (!('console' in globalThis)) {
  Object.defineProperty(globalThis, 'console', { value: hostConsole(wasmHost), writable: true, configurable: true });
}

/** The component's `guest` exports for `plugin`. */
export function exportPlugin(plugin: Plugin): GuestExports {
  return guestExports(plugin, wasmHost);
}
