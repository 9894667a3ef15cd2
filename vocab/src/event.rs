//! The names of the events PROTOCOL.md defines, in both directions.
//! Plugins may declare further (custom) events; these are the ones the
//! protocol itself fixes.

/// The server's first message on a new connection.
pub const CONNECTED: &str = "connected";
pub const PING: &str = "ping";
/// The answer to `ping`.
pub const PONG: &str = "pong";

pub const AUTH_REQUEST: &str = "auth:request";
pub const AUTH_RESPONSE: &str = "auth:response";
pub const SESSION_RESUME: &str = "session:resume";
pub const SESSION_RESUMED: &str = "session:resumed";

pub const ROOM_JOIN: &str = "room:join";
pub const ROOM_JOINED: &str = "room:joined";
pub const ROOM_LEAVE: &str = "room:leave";
pub const ROOM_LEFT: &str = "room:left";
/// Both the request and its reply.
pub const ROOM_STATE: &str = "room:state";
/// What the other members of a room hear when a client joins it.
pub const ROOM_PEER_JOINED: &str = "room:peer-joined";
/// What the other members of a room hear when a client leaves it.
pub const ROOM_PEER_LEFT: &str = "room:peer-left";

// The relay events, which `RelayEvent` names as an enum.
pub const SDP_OFFER: &str = "sdp:offer";
pub const SDP_ANSWER: &str = "sdp:answer";
pub const ICE_CANDIDATE: &str = "ice:candidate";

/// A protocol error; its `data.code` is an [`ErrorCode`](crate::ErrorCode).
pub const ERROR: &str = "error";
