// The wire contract of docs/PROTOCOL.md (version 1), as TypeScript types.
// Names and shapes follow that document to the letter; the client never
// adds fields of its own to a frame.

/** Every frame, in both directions. */
export interface Envelope {
  event: string;
  id?: string;
  data: Record<string, unknown>;
}

export interface Peer {
  clientId: string;
  userId: string;
  metadata: Record<string, unknown>;
}

/** An ICE candidate as relayed (`RTCIceCandidateInit` with its optional fields). */
export interface IceCandidate {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

export interface Connected {
  clientId: string;
  protocol: number;
  heartbeatMs: number;
  resumeToken: string;
}

export interface AuthResponse {
  success: boolean;
  userId?: string;
  error?: { code: string; message: string };
}

export interface RoomJoined {
  roomId: string;
  peers: Peer[];
  self: Peer;
}

export interface RoomLeft {
  roomId: string;
}

export interface RoomState {
  roomId: string;
  peers: Peer[];
}

export interface PeerJoined {
  roomId: string;
  peer: Peer;
}

export interface PeerLeft {
  roomId: string;
  clientId: string;
  reason: 'left' | 'disconnected';
}

export interface SdpRelay {
  from: string;
  sdp: string;
}

export interface CandidateRelay {
  from: string;
  candidate: IceCandidate;
}

export interface Pong {
  serverTime: number;
}

export interface SessionResumed {
  clientId: string;
  roomId: string | null;
  replayed: number;
  resumeToken: string;
}

/** The codes an `error` frame (or a failed `auth:response`) carries. */
export type ServerErrorCode =
  | 'INVALID_MESSAGE'
  | 'UNKNOWN_EVENT'
  | 'NOT_AUTHENTICATED'
  | 'AUTH_FAILED'
  | 'ALREADY_IN_ROOM'
  | 'NOT_IN_ROOM'
  | 'PEER_NOT_FOUND'
  | 'ROOM_FULL'
  | 'FORBIDDEN'
  | 'RATE_LIMITED'
  | 'RESUME_FAILED'
  | 'PLUGIN_ERROR'
  | 'INTERNAL';

export interface ErrorData {
  code: ServerErrorCode;
  message: string;
  event?: string;
}

/** Close codes the server uses (PROTOCOL.md, Close codes). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  abnormal: 1006,
  messageTooBig: 1009,
  internal: 1011,
  replaced: 4000,
  authTimeout: 4001,
  authFailed: 4003,
  rateAbuse: 4008,
  kicked: 4009,
} as const;

/** The shipped `chat` plugin's events, for `Client<ChatIncoming, ChatOutgoing>`. */
export type ChatIncoming = {
  'chat:message': { from: string; text: string };
};
export type ChatOutgoing = {
  'chat:message': { text: string };
};
