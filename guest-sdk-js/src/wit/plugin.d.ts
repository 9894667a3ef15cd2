/// <reference path="./interfaces/switchboard-plugin-guest.d.ts" />
/// <reference path="./interfaces/switchboard-plugin-host.d.ts" />
/// <reference path="./interfaces/switchboard-plugin-types.d.ts" />
declare module 'switchboard:plugin/plugin@0.3.0' {
  export type * as SwitchboardPluginHost030 from 'switchboard:plugin/host@0.3.0'; // import switchboard:plugin/host@0.3.0
  export type * as SwitchboardPluginTypes030 from 'switchboard:plugin/types@0.3.0'; // import switchboard:plugin/types@0.3.0
  export * as guest from 'switchboard:plugin/guest@0.3.0'; // export switchboard:plugin/guest@0.3.0
}
