declare module 'switchboard:plugin/types@0.3.0' {
  /**
   * A connection's opaque id, as its client sees it in `connected`.
   */
  export type ClientId = string;
  /**
   * A room id: 1..128 characters.
   */
  export type RoomId = string;
  /**
   * The protocol error codes a plugin may answer with.
   * # Variants
   * 
   * ## `"invalid-message"`
   * 
   * ## `"unknown-event"`
   * 
   * ## `"not-authenticated"`
   * 
   * ## `"auth-failed"`
   * 
   * ## `"already-in-room"`
   * 
   * ## `"not-in-room"`
   * 
   * ## `"peer-not-found"`
   * 
   * ## `"room-full"`
   * 
   * ## `"forbidden"`
   * 
   * ## `"internal"`
   */
  export type ErrorCode = 'invalid-message' | 'unknown-event' | 'not-authenticated' | 'auth-failed' | 'already-in-room' | 'not-in-room' | 'peer-not-found' | 'room-full' | 'forbidden' | 'internal';
  export interface ProtocolError {
    code: ErrorCode,
    message: string,
  }
  /**
   * What the host knows about one connection, at the time of the call.
   */
  export interface ClientInfo {
    id: ClientId,
    /**
     * The token's `sub`; none before a successful auth.
     */
    userId?: string,
    /**
     * The token's `role` claim.
     */
    role?: string,
    /**
     * The token's `room` claim; none means any room.
     */
    roomClaim?: string,
    /**
     * The room the client is in.
     */
    room?: RoomId,
  }
  /**
   * The events of PROTOCOL.md that one client sends to another.
   * # Variants
   * 
   * ## `"sdp-offer"`
   * 
   * ## `"sdp-answer"`
   * 
   * ## `"ice-candidate"`
   */
  export type RelayEvent = 'sdp-offer' | 'sdp-answer' | 'ice-candidate';
  /**
   * A relay event as the host knows it at the time of the call: what
   * deciding its route takes, in scalars, so that the call copies no
   * string into the plugin. Its `data` is there on request
   * (`relay-data`), and the sender's `client-info` too (`lookup-client`).
   * 
   * Ids are in their numeric form here: a `client-id` is the same number
   * written as 16 lowercase hex digits.
   */
  export interface Relay {
    event: RelayEvent,
    sender: bigint,
    /**
     * The client `data.to` names; none when `to` is not a client id.
     * It may not be connected (then `same-room` is false): the host
     * answers `PEER_NOT_FOUND` if it is gone when the event is
     * delivered.
     */
    target?: bigint,
    /**
     * Whether the target is in the sender's room; false when either
     * is in none.
     */
    sameRoom: boolean,
  }
  /**
   * A member of a room, as PROTOCOL.md's `Peer`.
   */
  export interface Peer {
    clientId: ClientId,
    userId: string,
    /**
     * JSON text of an object.
     */
    metadata: string,
  }
  /**
   * An outbound message: an event name and the JSON text of its `data`.
   */
  export interface Message {
    event: string,
    data: string,
  }
  /**
   * What a plugin decided about one event.
   */
  export type Outcome = OutcomePass | OutcomeReply | OutcomeRelay | OutcomeReject | OutcomeHandled;
  /**
   * Not mine: the next plugin in the chain decides.
   */
  export interface OutcomePass {
    tag: 'pass',
  }
  /**
   * Answer the sender; the host adds the correlation id.
   */
  export interface OutcomeReply {
    tag: 'reply',
    val: Message,
  }
  /**
   * Deliver the event to this client, with `to` replaced by `from`.
   */
  export interface OutcomeRelay {
    tag: 'relay',
    val: ClientId,
  }
  /**
   * Answer the sender with this protocol error.
   */
  export interface OutcomeReject {
    tag: 'reject',
    val: ProtocolError,
  }
  /**
   * Done; nothing more is sent to the sender.
   */
  export interface OutcomeHandled {
    tag: 'handled',
  }
  /**
   * What a plugin decided about a relay event.
   */
  export type RelayOutcome = RelayOutcomePass | RelayOutcomeDeliver | RelayOutcomeReply | RelayOutcomeReject | RelayOutcomeHandled;
  /**
   * Not mine: the next plugin in the chain decides.
   */
  export interface RelayOutcomePass {
    tag: 'pass',
  }
  /**
   * Deliver it to its target, with `to` replaced by `from`.
   */
  export interface RelayOutcomeDeliver {
    tag: 'deliver',
  }
  /**
   * Answer the sender; the host adds the correlation id.
   */
  export interface RelayOutcomeReply {
    tag: 'reply',
    val: Message,
  }
  /**
   * Answer the sender with this protocol error.
   */
  export interface RelayOutcomeReject {
    tag: 'reject',
    val: ProtocolError,
  }
  /**
   * Done; nothing more is sent to the sender.
   */
  export interface RelayOutcomeHandled {
    tag: 'handled',
  }
  /**
   * A verified identity, from an auth plugin.
   */
  export interface Identity {
    userId: string,
    role?: string,
    roomClaim?: string,
  }
  export type AuthOutcome = AuthOutcomePass | AuthOutcomeAccept | AuthOutcomeReject;
  /**
   * Not mine: the next auth plugin decides.
   */
  export interface AuthOutcomePass {
    tag: 'pass',
  }
  export interface AuthOutcomeAccept {
    tag: 'accept',
    val: Identity,
  }
  /**
   * The token is refused; the text is the client-facing reason.
   */
  export interface AuthOutcomeReject {
    tag: 'reject',
    val: string,
  }
  /**
   * Calls a plugin asks for besides the events it declares.
   * # Variants
   * 
   * ## `"connect"`
   * 
   * ## `"auth"`
   * 
   * ## `"disconnect"`
   * 
   * ## `"timer"`
   */
  export type Hook = 'connect' | 'auth' | 'disconnect' | 'timer';
  export interface EventDecl {
    /**
     * 1..64 chars of `[a-z0-9:._-]`.
     */
    name: string,
    /**
     * A JSON Schema for `data` (custom events only; the host knows the
     * schemas of the events PROTOCOL.md defines).
     */
    schema?: string,
  }
  export interface Descriptor {
    name: string,
    version: string,
    events: Array<EventDecl>,
    hooks: Array<Hook>,
  }
  /**
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}
