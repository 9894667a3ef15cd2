//! HS256 JSON Web Tokens for the default auth policy (`auth-jwt`), minted
//! with the secret every test server gets in `SWITCHBOARD_JWT_SECRET`.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Sha256, Sha512};

/// The secret [`crate::Server`] passes in `SWITCHBOARD_JWT_SECRET`.
pub const JWT_SECRET: &str = "switchboard-e2e-secret-not-for-production";

/// Lifetime of the tokens minted by [`token`].
const TTL_SECS: i64 = 3600;

/// Now, in unix seconds.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_secs() as i64
}

/// Now, in unix milliseconds.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_millis() as i64
}

/// A valid token for `sub`, any room, valid for an hour.
pub fn token(sub: &str) -> String {
    sign(&json!({ "sub": sub, "exp": now_secs() + TTL_SECS }))
}

/// A valid token for `sub` whose `room` claim is `room` (`"*"` means any).
pub fn token_for_room(sub: &str, room: &str) -> String {
    sign(&json!({ "sub": sub, "exp": now_secs() + TTL_SECS, "room": room }))
}

/// A valid token for `sub`, any room, whose `role` claim is `role`.
pub fn token_with_role(sub: &str, role: &str) -> String {
    sign(&json!({ "sub": sub, "exp": now_secs() + TTL_SECS, "role": role }))
}

/// A correctly signed token for `sub` whose `exp` passed `secs_ago` seconds ago.
pub fn token_expired_since(sub: &str, secs_ago: i64) -> String {
    sign(&json!({ "sub": sub, "exp": now_secs() - secs_ago }))
}

/// A token for `sub`, otherwise valid, signed with another secret.
pub fn wrongly_signed_token(sub: &str) -> String {
    let header = json!({ "alg": "HS256", "typ": "JWT" });
    let claims = json!({ "sub": sub, "exp": now_secs() + TTL_SECS });
    let input = signing_input(&header, &claims);
    let mut mac = Hmac::<Sha256>::new_from_slice(b"some-other-secret").expect("any key length");
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// An unsigned token (`"alg": "none"`, empty signature) for `sub`.
pub fn alg_none_token(sub: &str) -> String {
    let header = json!({ "alg": "none", "typ": "JWT" });
    let claims = json!({ "sub": sub, "exp": now_secs() + TTL_SECS });
    format!("{}.", signing_input(&header, &claims))
}

/// A token for `sub` signed with the right secret but HS512, an algorithm
/// the default policy does not accept.
pub fn hs512_token(sub: &str) -> String {
    let header = json!({ "alg": "HS512", "typ": "JWT" });
    let claims = json!({ "sub": sub, "exp": now_secs() + TTL_SECS });
    let input = signing_input(&header, &claims);
    let mut mac = Hmac::<Sha512>::new_from_slice(JWT_SECRET.as_bytes()).expect("any key length");
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Signs any claims set with HS256 and the test secret.
pub fn sign(claims: &Value) -> String {
    let header = json!({ "alg": "HS256", "typ": "JWT" });
    let input = signing_input(&header, claims);
    let mut mac = Hmac::<Sha256>::new_from_slice(JWT_SECRET.as_bytes()).expect("any key length");
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}
