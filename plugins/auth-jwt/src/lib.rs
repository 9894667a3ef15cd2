//! The default auth policy: HS256 JSON Web Tokens.
//!
//! Accepts a token signed with HMAC-SHA256 under the configured secret and
//! no other algorithm (`none` included). Claims: `sub` (required, the user
//! id), `exp` (required, unix seconds, with 30 s of allowed clock skew),
//! `room` (optional, the only room the token may join; `"*"` means any) and
//! `role` (optional, passed on to plugins).
//!
//! Config: `{"secret": "..."}`; without it the secret comes from the
//! environment variable `SWITCHBOARD_JWT_SECRET`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use sha2::Sha256;
use switchboard_sdk::{AuthOutcome, ClientInfo, Descriptor, Hook, Host, Identity, Plugin};

const SECRET_VAR: &str = "SWITCHBOARD_JWT_SECRET";
/// A token whose `exp` passed less than this long ago is still accepted.
const CLOCK_SKEW_MS: f64 = 30_000.0;
const MALFORMED: &str = "malformed token";

pub struct AuthJwt {
    /// Keyed once at start-up; each check works on a clone.
    mac: Hmac<Sha256>,
}

#[derive(Deserialize)]
struct Config {
    secret: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

impl Plugin for AuthJwt {
    fn describe() -> Descriptor {
        Descriptor {
            name: "auth-jwt".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            events: vec![],
            hooks: vec![Hook::Auth],
        }
    }

    fn new(config: &str) -> Result<Self, String> {
        AuthJwt::with_env(config, std::env::var(SECRET_VAR).ok())
    }

    fn on_auth(
        &self,
        host: &dyn Host,
        _client: &ClientInfo,
        token: &str,
        room_id: Option<&str>,
    ) -> AuthOutcome {
        match self.verify(token, host.now(), room_id) {
            Ok(identity) => AuthOutcome::Accept(identity),
            Err(reason) => AuthOutcome::Reject(reason),
        }
    }
}

impl AuthJwt {
    /// `new` with the environment's secret passed in, so tests need not
    /// touch the process environment.
    fn with_env(config: &str, env_secret: Option<String>) -> Result<Self, String> {
        let config: Config =
            serde_json::from_str(config).map_err(|e| format!("auth-jwt config: {e}"))?;
        let secret = config.secret.or(env_secret).unwrap_or_default();
        if secret.is_empty() {
            return Err(format!(
                "auth-jwt: no secret; set `secret` in the plugin config or {SECRET_VAR}"
            ));
        }
        let mac = Hmac::new_from_slice(secret.as_bytes()).map_err(|e| format!("auth-jwt: {e}"))?;
        Ok(AuthJwt { mac })
    }

    /// Checks a token at `now_ms` (unix milliseconds) for joining `room_id`;
    /// the error is the client-facing reason.
    fn verify(&self, token: &str, now_ms: u64, room_id: Option<&str>) -> Result<Identity, String> {
        if token.is_empty() {
            return Err("empty token".into());
        }
        let payload = self.verified_payload(token)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| "malformed claims")?;
        let identity = identity(&claims, now_ms)?;
        if let (Some(wanted), Some(claim)) = (room_id, &identity.room_claim)
            && wanted != claim
        {
            return Err(format!("token is not valid for room {wanted:?}"));
        }
        Ok(identity)
    }

    /// The decoded payload of a well-formed HS256 token whose signature
    /// checks out.
    fn verified_payload(&self, token: &str) -> Result<Vec<u8>, String> {
        let (signed, signature) = token.rsplit_once('.').ok_or(MALFORMED)?;
        let (header, payload) = signed.split_once('.').ok_or(MALFORMED)?;
        if payload.contains('.') {
            return Err(MALFORMED.into());
        }
        let header: Header = decode_json(header).ok_or(MALFORMED)?;
        if header.alg != "HS256" {
            return Err("unsupported algorithm: only HS256 is accepted".into());
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| MALFORMED)?;
        let mut mac = self.mac.clone();
        mac.update(signed.as_bytes());
        // `verify_slice` compares in constant time.
        mac.verify_slice(&signature).map_err(|_| "bad signature")?;
        URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| "malformed claims".into())
    }
}

/// The claims this plugin reads, each as the JSON text it came as, so that
/// a claim of the wrong type gets its own message; the others are skipped
/// without being built. `null` reads as absent.
#[derive(Deserialize)]
struct Claims<'a> {
    #[serde(borrow)]
    sub: Option<&'a RawValue>,
    #[serde(borrow)]
    exp: Option<&'a RawValue>,
    #[serde(borrow)]
    room: Option<&'a RawValue>,
    #[serde(borrow)]
    role: Option<&'a RawValue>,
}

/// The identity the claims grant, if they are valid and not expired.
fn identity(claims: &Claims, now_ms: u64) -> Result<Identity, String> {
    let user_id = claims
        .sub
        .and_then(|sub| serde_json::from_str::<String>(sub.get()).ok())
        .filter(|sub| !sub.is_empty())
        .ok_or("the token needs a non-empty string `sub` claim")?;
    let exp = claims
        .exp
        .and_then(|exp| serde_json::from_str::<f64>(exp.get()).ok())
        .ok_or("the token needs a numeric `exp` claim")?;
    if now_ms as f64 - exp * 1000.0 >= CLOCK_SKEW_MS {
        return Err("token expired".into());
    }
    let room = optional_string(claims.room, "room")?;
    Ok(Identity {
        user_id,
        role: optional_string(claims.role, "role")?,
        room_claim: room.filter(|room| room != "*"),
    })
}

fn optional_string(claim: Option<&RawValue>, name: &str) -> Result<Option<String>, String> {
    claim
        .map(|value| serde_json::from_str(value.get()))
        .transpose()
        .map_err(|_| format!("the `{name}` claim must be a string"))
}

/// One base64url (unpadded) segment holding JSON.
fn decode_json<T: DeserializeOwned>(segment: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

switchboard_sdk::export_plugin!(AuthJwt);

#[cfg(test)]
mod tests;
