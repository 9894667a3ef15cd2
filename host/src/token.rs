//! Minting HS256 tokens for development (`switchboard token`, and the token
//! `serve` prints when it makes an ephemeral secret). Verification is the
//! `auth-jwt` plugin's job, not the host's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

pub(crate) struct Claims<'a> {
    pub(crate) user: &'a str,
    pub(crate) room: Option<&'a str>,
    pub(crate) role: Option<&'a str>,
    pub(crate) ttl_secs: u64,
}

pub(crate) fn mint(secret: &[u8], claims: &Claims, now_secs: u64) -> String {
    let header = json!({ "alg": "HS256", "typ": "JWT" });
    let mut body = json!({ "sub": claims.user, "exp": now_secs + claims.ttl_secs });
    if let Some(room) = claims.room {
        body["room"] = room.into();
    }
    if let Some(role) = claims.role {
        body["role"] = role.into();
    }
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(body.to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// A random secret for a server started without one.
pub(crate) fn ephemeral_secret() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_three_parts_and_the_claims() {
        let claims = Claims {
            user: "ada",
            room: Some("r"),
            role: None,
            ttl_secs: 60,
        };
        let token = mint(b"k", &claims, 1000);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let body: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(body, json!({ "sub": "ada", "exp": 1060, "room": "r" }));
    }
}
