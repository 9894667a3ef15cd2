//! Validated identifiers. Each type can only hold a value the protocol
//! allows, so code past the parser never re-checks them.

use std::fmt;
use std::sync::Arc;

/// A connection's id. Shown to clients as 16 lowercase hex digits; plugins
/// get it as the number those stand for where no string should be copied.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(u64);

impl ClientId {
    pub const fn from_u64(number: u64) -> ClientId {
        ClientId(number)
    }

    /// The number the 16 hex digits stand for.
    pub const fn to_u64(self) -> u64 {
        self.0
    }

    /// Checks and reads the digits in one pass: the host reads the `to` of
    /// every relayed message.
    pub fn parse(text: &str) -> Option<ClientId> {
        let digits: &[u8; 16] = text.as_bytes().try_into().ok()?;
        let mut number = 0;
        for &digit in digits {
            let value = match digit {
                b'0'..=b'9' => digit - b'0',
                b'a'..=b'f' => digit - b'a' + 10,
                _ => return None,
            };
            number = number << 4 | u64::from(value);
        }
        Some(ClientId(number))
    }

    /// The id as clients see it, in one allocation of its size, without
    /// the formatting machinery `to_string` goes through: the guest SDK
    /// writes two with every relayed message. (Filling an array of digits
    /// first, as `Display` does, cost a wasm guest 600 more instructions
    /// per id.)
    pub fn to_hex(self) -> String {
        let mut id = String::with_capacity(16);
        for shift in (0..16).rev().map(|i| 4 * i) {
            id.push(char::from(HEX_DIGITS[(self.0 >> shift & 0xf) as usize]));
        }
        id
    }

    /// Appends the id as clients see it: the host writes one into every
    /// relayed frame, in the frame's own buffer. Natively, filling the
    /// digits first and appending them at once is the cheaper way round.
    pub fn push_hex(self, out: &mut String) {
        let digits = self.digits();
        out.push_str(std::str::from_utf8(&digits).unwrap_or_default());
    }

    fn digits(self) -> [u8; 16] {
        let mut hex = [0u8; 16];
        for (i, digit) in hex.iter_mut().enumerate() {
            *digit = HEX_DIGITS[(self.0 >> (60 - 4 * i) & 0xf) as usize];
        }
        hex
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for ClientId {
    /// By hand rather than `{:016x}`, which goes through the formatting
    /// machinery: ids are written for every relayed message and plugin call.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.digits()).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Counts Unicode scalar values, the protocol's unit for lengths.
pub fn char_len(text: &str) -> usize {
    text.chars().count()
}

/// A room id: 1..=128 characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(Arc<str>);

impl RoomId {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(text: &str) -> Option<RoomId> {
        (1..=Self::MAX_CHARS)
            .contains(&char_len(text))
            .then(|| RoomId(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// An event name: 1..=64 chars of `[a-z0-9:._-]`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EventName(Arc<str>);

impl EventName {
    pub fn parse(text: &str) -> Option<EventName> {
        let valid = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b':' | b'.' | b'_' | b'-'));
        valid.then(|| EventName(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// A correlation id: 1..=64 characters.
#[derive(Clone, PartialEq, Eq)]
pub struct CorrelationId(Box<str>);

impl CorrelationId {
    pub fn parse(text: &str) -> Option<CorrelationId> {
        (1..=64)
            .contains(&char_len(text))
            .then(|| CorrelationId(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_16_lowercase_hex_digits_and_round_trip() {
        for n in [0, 1, 0xabc, u64::MAX, 0x0123_4567_89ab_cdef] {
            let id = ClientId::from_u64(n);
            assert_eq!(id.to_string(), format!("{n:016x}"));
            assert_eq!(id.to_hex(), id.to_string());
            let mut pushed = String::from("x");
            id.push_hex(&mut pushed);
            assert_eq!(pushed, format!("x{id}"));
            assert_eq!(ClientId::parse(&id.to_string()), Some(id));
            assert_eq!(id.to_u64(), n);
        }
        assert_eq!(ClientId::parse("0123"), None);
        assert_eq!(ClientId::parse("0123456789ABCDEF"), None);
        assert_eq!(ClientId::parse("+123456789abcdef"), None);
        assert_eq!(ClientId::parse("0123456789abcdeg"), None);
        assert_eq!(ClientId::parse("0123456789abcdé"), None);
    }

    #[test]
    fn lengths_count_scalar_values() {
        assert!(RoomId::parse(&"é".repeat(128)).is_some());
        assert!(RoomId::parse(&"é".repeat(129)).is_none());
        assert!(RoomId::parse("").is_none());
        assert!(CorrelationId::parse(&"😀".repeat(64)).is_some());
        assert!(CorrelationId::parse(&"a".repeat(65)).is_none());
    }

    #[test]
    fn event_names_use_a_narrow_alphabet() {
        assert!(EventName::parse("room:join").is_some());
        assert!(EventName::parse("a.b_c-1").is_some());
        assert!(EventName::parse("Room:join").is_none());
        assert!(EventName::parse(&"a".repeat(65)).is_none());
        assert!(EventName::parse("").is_none());
    }
}
