/// <reference path="./switchboard-plugin-types.d.ts" />
declare module 'switchboard:plugin/guest@0.3.0' {
  export function describe(): Descriptor;
  /**
   * Called once per instance before any other call but `describe`;
   * `config` is the JSON text of the plugin's table in the host config.
   */
  export function init(config: string): void;
  export function onConnect(client: ClientInfo): void;
  export function onAuth(client: ClientInfo, token: string, roomId: string | undefined): AuthOutcome;
  /**
   * One event the plugin declared, but for the relay events; `data` is
   * the JSON text of its `data`.
   */
  export function onEvent(client: ClientInfo, event: string, data: string): Outcome;
  /**
   * One relay event the plugin declared (`sdp:offer`, `sdp:answer`,
   * `ice:candidate`). Every relayed message takes this call, so it is
   * kept to scalars.
   */
  export function onRelay(relay: Relay): RelayOutcome;
  export function onDisconnect(client: ClientInfo): void;
  export function onTimer(room: RoomId, tag: string): void;
  export type ClientInfo = import('switchboard:plugin/types@0.3.0').ClientInfo;
  export type RoomId = import('switchboard:plugin/types@0.3.0').RoomId;
  export type Relay = import('switchboard:plugin/types@0.3.0').Relay;
  export type Outcome = import('switchboard:plugin/types@0.3.0').Outcome;
  export type RelayOutcome = import('switchboard:plugin/types@0.3.0').RelayOutcome;
  export type AuthOutcome = import('switchboard:plugin/types@0.3.0').AuthOutcome;
  export type Descriptor = import('switchboard:plugin/types@0.3.0').Descriptor;
}
