use serde_json::{Value, json};
use switchboard_sdk::testing::TestHost;

use super::*;

const SECRET: &str = "test-secret";
/// 2023-11-14T22:13:20Z, in unix seconds.
const NOW: u64 = 1_700_000_000;

fn plugin() -> AuthJwt {
    AuthJwt::with_env(&json!({ "secret": SECRET }).to_string(), None).unwrap()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A token with the given header and claims, signed with `secret`.
fn mint_with(secret: &str, header: &Value, claims: &Value) -> String {
    let signed = format!("{}.{}", b64(header), b64(claims));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signed}.{signature}")
}

fn mint(claims: &Value) -> String {
    mint_with(SECRET, &json!({ "alg": "HS256", "typ": "JWT" }), claims)
}

fn valid_claims() -> Value {
    json!({ "sub": "alice", "exp": NOW + 60 })
}

/// What the plugin answers at `NOW`, through the SDK's `on_auth`.
fn auth(token: &str, room_id: Option<&str>) -> AuthOutcome {
    let host = TestHost::new();
    host.set_now(NOW * 1000);
    let client = host.connect("c1");
    plugin().on_auth(&host, &client, token, room_id)
}

fn rejection(token: &str, room_id: Option<&str>) -> String {
    match auth(token, room_id) {
        AuthOutcome::Reject(reason) => reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn accepts_a_valid_token_with_all_claims() {
    let claims = json!({ "sub": "alice", "exp": NOW + 60, "room": "standup", "role": "moderator" });
    assert_eq!(
        auth(&mint(&claims), None),
        AuthOutcome::Accept(Identity {
            user_id: "alice".into(),
            role: Some("moderator".into()),
            room_claim: Some("standup".into()),
        })
    );
}

#[test]
fn room_star_or_absent_means_any_room() {
    for claims in [
        valid_claims(),
        json!({ "sub": "alice", "exp": NOW + 60, "room": "*" }),
    ] {
        let AuthOutcome::Accept(identity) = auth(&mint(&claims), Some("anywhere")) else {
            panic!("{claims} rejected");
        };
        assert_eq!(identity.room_claim, None);
        assert_eq!(identity.role, None);
    }
}

#[test]
fn room_id_must_match_the_room_claim() {
    let token = mint(&json!({ "sub": "alice", "exp": NOW + 60, "room": "standup" }));
    assert!(matches!(
        auth(&token, Some("standup")),
        AuthOutcome::Accept(_)
    ));
    assert_eq!(
        rejection(&token, Some("other")),
        "token is not valid for room \"other\""
    );
}

#[test]
fn expiry_allows_less_than_thirty_seconds_of_skew() {
    let at = |exp: f64| auth(&mint(&json!({ "sub": "alice", "exp": exp })), None);
    let now = NOW as f64;
    assert!(matches!(at(now), AuthOutcome::Accept(_)));
    assert!(matches!(at(now - 29.0), AuthOutcome::Accept(_)));
    assert!(matches!(at(now - 29.999), AuthOutcome::Accept(_)));
    assert_eq!(at(now - 30.0), AuthOutcome::Reject("token expired".into()));
    assert_eq!(at(-1.0), AuthOutcome::Reject("token expired".into()));
}

#[test]
fn only_hs256_is_accepted() {
    let claims = valid_claims();
    for alg in ["none", "HS512", "hs256", "RS256", ""] {
        let token = mint_with(SECRET, &json!({ "alg": alg }), &claims);
        assert_eq!(
            rejection(&token, None),
            "unsupported algorithm: only HS256 is accepted",
            "alg {alg:?}"
        );
    }
    let unsigned = format!("{}.{}.", b64(&json!({ "alg": "none" })), b64(&claims));
    assert!(rejection(&unsigned, None).starts_with("unsupported algorithm"));
}

#[test]
fn a_wrong_key_or_a_tampered_payload_is_a_bad_signature() {
    let header = json!({ "alg": "HS256" });
    let other_key = mint_with("another-secret", &header, &valid_claims());
    assert_eq!(rejection(&other_key, None), "bad signature");

    let token = mint(&valid_claims());
    let (_, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let forged = json!({ "sub": "mallory", "exp": NOW + 60 });
    let tampered = format!("{}.{}.{signature}", b64(&header), b64(&forged));
    assert_eq!(rejection(&tampered, None), "bad signature");
}

#[test]
fn claims_need_a_string_sub_and_a_numeric_exp() {
    let cases = [
        (json!({ "exp": NOW + 60 }), "`sub`"),
        (json!({ "sub": "", "exp": NOW + 60 }), "`sub`"),
        (json!({ "sub": 7, "exp": NOW + 60 }), "`sub`"),
        (json!({ "sub": "alice" }), "`exp`"),
        (json!({ "sub": "alice", "exp": "tomorrow" }), "`exp`"),
        (
            json!({ "sub": "alice", "exp": NOW + 60, "room": 5 }),
            "`room`",
        ),
        (
            json!({ "sub": "alice", "exp": NOW + 60, "role": ["admin"] }),
            "`role`",
        ),
    ];
    for (claims, named) in cases {
        let reason = rejection(&mint(&claims), None);
        assert!(reason.contains(named), "{claims}: {reason}");
    }
}

#[test]
fn claims_that_are_not_an_object_are_malformed() {
    for claims in [json!([1, 2]), json!("alice"), json!(7), json!(null)] {
        assert_eq!(
            rejection(&mint(&claims), None),
            "malformed claims",
            "{claims}"
        );
    }
}

#[test]
fn malformed_tokens_are_rejected_without_panicking() {
    let valid = mint(&valid_claims());
    let padded = {
        let (signed, signature) = valid.rsplit_once('.').unwrap();
        format!("{signed}.{signature}=")
    };
    let cases = [
        "garbage".to_owned(),
        "a.b".to_owned(),
        "a.b.c.d".to_owned(),
        format!("{valid}.extra"),
        "..".to_owned(),
        "!!!.???.***".to_owned(),
        format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("not json")),
        padded,
        "é.é.é".to_owned(),
        "\0.\0.\0".to_owned(),
    ];
    for token in &cases {
        assert!(
            matches!(auth(token, None), AuthOutcome::Reject(_)),
            "{token:?}"
        );
    }
    assert_eq!(rejection("", None), "empty token");
    assert_eq!(rejection("a.b", None), MALFORMED);
}

#[test]
fn random_noise_never_panics_or_passes() {
    // A fixed linear congruential generator: reproducible noise.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (state >> 33) as u8
    };
    let alphabet = b"ab.-_=+/eyJ0{}\"";
    for _ in 0..2000 {
        let len = usize::from(next() % 64);
        let token: String = (0..len)
            .map(|_| char::from(alphabet[usize::from(next()) % alphabet.len()]))
            .collect();
        assert!(
            matches!(auth(&token, None), AuthOutcome::Reject(_)),
            "{token:?}"
        );
    }
}

#[test]
fn every_one_character_change_breaks_a_token() {
    let valid = mint(&valid_claims());
    for at in 0..valid.len() {
        let mut token = valid.clone().into_bytes();
        token[at] = if token[at] == b'A' { b'B' } else { b'A' };
        let token = String::from_utf8(token).unwrap();
        assert!(
            matches!(auth(&token, None), AuthOutcome::Reject(_)),
            "{token:?}"
        );
    }
}

#[test]
fn secret_comes_from_config_then_environment() {
    let token = mint(&valid_claims());
    let host = TestHost::new();
    host.set_now(NOW * 1000);
    let client = host.connect("c1");
    let accepts = |plugin: AuthJwt| {
        matches!(
            plugin.on_auth(&host, &client, &token, None),
            AuthOutcome::Accept(_)
        )
    };

    assert!(accepts(
        AuthJwt::with_env("{}", Some(SECRET.into())).unwrap()
    ));
    let config = json!({ "secret": SECRET }).to_string();
    assert!(accepts(
        AuthJwt::with_env(&config, Some("env-secret".into())).unwrap()
    ));
    let wrong = json!({ "secret": "config-secret" }).to_string();
    assert!(!accepts(
        AuthJwt::with_env(&wrong, Some(SECRET.into())).unwrap()
    ));
}

#[test]
fn a_missing_or_empty_secret_is_a_config_error() {
    let empty = json!({ "secret": "" }).to_string();
    for (config, env) in [
        ("{}", None),
        ("{}", Some(String::new())),
        (empty.as_str(), Some("x".into())),
    ] {
        let error = AuthJwt::with_env(config, env)
            .err()
            .expect("no secret accepted");
        assert!(error.contains(SECRET_VAR), "{error}");
    }
    assert!(AuthJwt::with_env("not json", Some("x".into())).is_err());
    assert!(AuthJwt::with_env(r#"{"secret": 5}"#, None).is_err());
}

#[test]
fn declares_the_auth_hook_and_no_events() {
    let descriptor = AuthJwt::describe();
    assert_eq!(descriptor.name, "auth-jwt");
    assert!(descriptor.events.is_empty());
    assert_eq!(descriptor.hooks, [Hook::Auth]);
}
