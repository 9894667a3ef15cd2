//! The words Switchboard's host and its guest SDK share, defined once:
//! identifiers ([`ids`]), the event names of PROTOCOL.md ([`event`]), and
//! the codes both sides speak ([`ErrorCode`], [`RelayEvent`],
//! [`CloseCode`]). A plugin and the server that loads it must agree on
//! each of these to the letter, so neither keeps its own copy.

pub mod event;
pub mod ids;

use std::fmt;

/// An enum whose every value has one wire form: the enum, `ALL`, the wire
/// form and the reading back of it, all from one list, so that no value
/// lacks a wire form or is missing from `ALL`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident as $as_wire:ident -> $wire:ty, $from_wire:ident($input:ty) {
            $($(#[$variant_meta:meta])* $variant:ident = $form:expr,)+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($name::$variant),+].len()] = [$($name::$variant),+];

            /// The value as it appears on the wire.
            pub const fn $as_wire(self) -> $wire {
                match self {
                    $($name::$variant => $form,)+
                }
            }

            /// The value whose wire form is `wire`, if any.
            pub fn $from_wire(wire: $input) -> Option<$name> {
                $name::ALL.into_iter().find(|value| value.$as_wire() == wire)
            }
        }
    };
}

wire_enum! {
    /// A protocol error code (PROTOCOL.md, Errors).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ErrorCode as as_str -> &'static str, parse(&str) {
        /// Not JSON, not an object, a bad envelope, a binary frame, or
        /// `data` that fails its schema.
        InvalidMessage = "INVALID_MESSAGE",
        /// No handler declares the event.
        UnknownEvent = "UNKNOWN_EVENT",
        /// An event other than auth, ping or resume before auth.
        NotAuthenticated = "NOT_AUTHENTICATED",
        /// A bad, expired or mismatched token (inside `auth:response`).
        AuthFailed = "AUTH_FAILED",
        AlreadyInRoom = "ALREADY_IN_ROOM",
        NotInRoom = "NOT_IN_ROOM",
        PeerNotFound = "PEER_NOT_FOUND",
        RoomFull = "ROOM_FULL",
        Forbidden = "FORBIDDEN",
        RateLimited = "RATE_LIMITED",
        ResumeFailed = "RESUME_FAILED",
        /// A plugin trapped, ran out of time or memory, or returned
        /// garbage.
        PluginError = "PLUGIN_ERROR",
        Internal = "INTERNAL",
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The wire string, as error frames carry it.
impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

wire_enum! {
    /// The events of PROTOCOL.md that one client sends another through the
    /// host (Signaling relay).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum RelayEvent as as_str -> &'static str, parse(&str) {
        SdpOffer = event::SDP_OFFER,
        SdpAnswer = event::SDP_ANSWER,
        IceCandidate = event::ICE_CANDIDATE,
    }
}

wire_enum! {
    /// A WebSocket close code the server sends: those of PROTOCOL.md and
    /// the RFC 6455 ones it closes a broken connection with.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum CloseCode as as_u16 -> u16, from_u16(u16) {
        Normal = 1000,
        /// The server is shutting down.
        GoingAway = 1001,
        ProtocolError = 1002,
        /// A text message that is not UTF-8.
        InvalidData = 1007,
        /// A message or frame over `limits.max_message_bytes`.
        TooBig = 1009,
        InternalError = 1011,
        /// Replaced by a connection that resumed its session.
        TakenOver = 4000,
        /// Not authenticated within `auth.timeout_ms`.
        AuthTimeout = 4001,
        /// The third failed auth attempt.
        AuthFailures = 4003,
        /// More than 100 rate-limited messages within 10 s.
        RateAbuse = 4008,
        /// Removed by an operator or a plugin (`kick`).
        Kicked = 4009,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn error_codes_read_back_from_their_wire_form() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert_eq!(code.to_string(), code.as_str());
        }
        let forms: HashSet<_> = ErrorCode::ALL.map(ErrorCode::as_str).into();
        assert_eq!(forms.len(), 13, "PROTOCOL.md lists 13 codes");
        assert_eq!(ErrorCode::PeerNotFound.as_str(), "PEER_NOT_FOUND");
        assert_eq!(ErrorCode::parse("peer_not_found"), None);
        assert_eq!(ErrorCode::parse(""), None);
    }

    #[test]
    fn relay_events_read_back_from_their_wire_form() {
        for relay in RelayEvent::ALL {
            assert_eq!(RelayEvent::parse(relay.as_str()), Some(relay));
        }
        assert_eq!(
            RelayEvent::ALL.map(RelayEvent::as_str),
            ["sdp:offer", "sdp:answer", "ice:candidate"]
        );
        assert_eq!(RelayEvent::parse(event::ROOM_JOIN), None);
    }

    #[test]
    fn close_codes_read_back_from_their_number() {
        for code in CloseCode::ALL {
            assert_eq!(CloseCode::from_u16(code.as_u16()), Some(code));
        }
        let numbers: HashSet<_> = CloseCode::ALL.map(CloseCode::as_u16).into();
        assert_eq!(numbers.len(), CloseCode::ALL.len());
        assert_eq!(CloseCode::Kicked.as_u16(), 4009);
        assert_eq!(CloseCode::from_u16(4002), None);
    }
}
