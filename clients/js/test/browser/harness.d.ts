// The in-page API of harness.js, as the tests call it through page.evaluate.
import type { ConnectionState } from '../../src/index.js';

export type LogEntry =
  | ({ kind: 'state'; at: number } & ConnectionState)
  | { kind: 'error' | 'link-error'; at: number; message: string }
  | { kind: 'negotiation-needed' | 'got-offer'; at: number };

export interface Snapshot {
  clientId: string | null;
  state: ConnectionState | null;
  connectionState: RTCPeerConnectionState | 'none';
  channelState: RTCDataChannelState | 'none';
  inboundVideoBytes: number;
  received: string[];
  remoteTracks: string[];
  log: LogEntry[];
}

export interface Harness {
  join(args: { url: string; token: string; roomId: string }): Promise<{ clientId: string; peers: string[] }>;
  call(remoteId: string, options: { video: boolean; channel: 'negotiated' | 'create' | 'accept'; at?: number }): Promise<void>;
  addVideo(): Promise<void>;
  send(text: string): void;
  snapshot(): Promise<Snapshot>;
}

declare global {
  interface Window {
    harness: Harness;
  }
}
