//! HS256 verification: the signature and the `sub` claim, nothing more (the
//! baseline validates no further than parsing).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

/// The token's `sub` when its HS256 signature matches `secret`.
pub fn verify(secret: &[u8], token: &str) -> Option<String> {
    let (signing_input, signature) = token.rsplit_once('.')?;
    let (_header, payload) = signing_input.split_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(signing_input.as_bytes());
    mac.verify_slice(&signature).ok()?;
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    Some(claims.sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], body: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(body)
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn accepts_a_signed_token_and_reads_sub() {
        let token = sign(b"k", r#"{"sub":"ada","exp":1}"#);
        assert_eq!(verify(b"k", &token).as_deref(), Some("ada"));
    }

    #[test]
    fn rejects_another_secret_garbage_and_no_sub() {
        assert_eq!(verify(b"other", &sign(b"k", r#"{"sub":"ada"}"#)), None);
        assert_eq!(verify(b"k", "not-a-token"), None);
        assert_eq!(verify(b"k", &sign(b"k", r#"{"exp":1}"#)), None);
    }
}
