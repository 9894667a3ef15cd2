export { Client } from './client.js';
export type {
  ClientEvents,
  ClientOptions,
  ConnectionState,
  CustomMessage,
  EventDataMap,
  NetworkEvents,
  SessionLost,
  SocketConstructor,
  SocketLike,
} from './client.js';
export { Backoff } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { RateLimitedError, SwitchboardError, TimeoutError } from './errors.js';
export type { ClientErrorCode, ErrorCode } from './errors.js';
export { PeerLink } from './webrtc.js';
export type { PeerLinkEvents, PeerLinkOptions, Signaling } from './webrtc.js';
export { CloseCode } from './protocol.js';
export type * from './protocol.js';
