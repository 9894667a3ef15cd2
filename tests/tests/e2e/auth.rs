//! PROTOCOL.md, "Auth": `auth:request` / `auth:response` with the default
//! HS256 JWT policy.

use serde_json::{Value, json};
use switchboard_e2e::token::{
    alg_none_token, hs512_token, now_secs, sign, token, token_expired_since, token_for_room,
    wrongly_signed_token,
};
use switchboard_e2e::{Client, Server};

/// Asserts `response` is exactly `{success: false, error: {code: AUTH_FAILED, message}}`.
fn assert_auth_failed(response: &Value) {
    assert_eq!(response["success"], false, "expected a failure: {response}");
    assert_eq!(
        response.as_object().unwrap().len(),
        2,
        "extra fields: {response}"
    );
    let error = &response["error"];
    assert_eq!(error["code"], "AUTH_FAILED", "{response}");
    assert!(
        error["message"].is_string(),
        "error without a message: {response}"
    );
    assert_eq!(
        error.as_object().unwrap().len(),
        2,
        "extra fields in error: {response}"
    );
}

/// Asserts the connection is still unauthenticated (and open).
async fn assert_not_authenticated(client: &mut Client) {
    client
        .send_json(json!({ "event": "room:state", "id": "gate" }))
        .await;
    client
        .expect_error("NOT_AUTHENTICATED", Some("gate"), Some("room:state"))
        .await;
}

#[tokio::test]
async fn valid_token_succeeds_with_exactly_success_and_user_id() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    let response = client.auth(json!({ "token": token("alice") })).await;
    assert_eq!(response, json!({ "success": true, "userId": "alice" }));
    client.join("r").await;
}

#[tokio::test]
async fn bad_tokens_fail_with_auth_failed() {
    let server = Server::start_default().await;
    let cases = [
        ("wrong signature", wrongly_signed_token("alice")),
        ("expired 60 s ago", token_expired_since("alice", 60)),
        ("alg none", alg_none_token("alice")),
        ("HS512", hs512_token("alice")),
        ("garbage", "not-a-jwt".to_owned()),
        ("three garbage parts", "a.b.c".to_owned()),
        ("empty", String::new()),
        ("no sub", sign(&json!({ "exp": now_secs() + 3600 }))),
        ("no exp", sign(&json!({ "sub": "alice" }))),
    ];
    for (what, token) in cases {
        // A fresh connection each time: the third failure closes one.
        let mut client = Client::connect(&server).await;
        let response = client.auth(json!({ "token": token })).await;
        assert_eq!(response["success"], false, "{what}: {response}");
        assert_auth_failed(&response);
        assert_not_authenticated(&mut client).await;
    }
}

#[tokio::test]
async fn token_expired_10_s_ago_is_accepted_within_the_clock_skew() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    let response = client
        .auth(json!({ "token": token_expired_since("alice", 10) }))
        .await;
    assert_eq!(response, json!({ "success": true, "userId": "alice" }));
}

#[tokio::test]
async fn role_claim_is_accepted() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    let token = sign(&json!({ "sub": "mod", "exp": now_secs() + 3600, "role": "moderator" }));
    let response = client.auth(json!({ "token": token })).await;
    assert_eq!(response, json!({ "success": true, "userId": "mod" }));
}

#[tokio::test]
async fn auth_request_without_token_is_invalid_message() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    for (id, data) in [
        ("a1", json!({})),
        ("a2", json!({ "token": 5 })),
        ("a3", json!({ "token": null })),
        ("a4", json!({ "token": token("alice"), "roomId": 7 })),
    ] {
        client
            .send_json(json!({ "event": "auth:request", "id": id, "data": data }))
            .await;
        client
            .expect_error("INVALID_MESSAGE", Some(id), Some("auth:request"))
            .await;
    }
    assert_not_authenticated(&mut client).await;
}

#[tokio::test]
async fn malformed_auth_request_is_not_an_attempt() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    assert_auth_failed(&client.auth(json!({ "token": "bad-1" })).await);
    assert_auth_failed(&client.auth(json!({ "token": "bad-2" })).await);
    for id in ["m1", "m2", "m3"] {
        client
            .send_json(json!({ "event": "auth:request", "id": id, "data": {} }))
            .await;
        client
            .expect_error("INVALID_MESSAGE", Some(id), Some("auth:request"))
            .await;
    }
    client.assert_open().await;
    // Still two failures: a valid token now succeeds.
    let response = client.auth(json!({ "token": token("alice") })).await;
    assert_eq!(response, json!({ "success": true, "userId": "alice" }));
}

#[tokio::test]
async fn third_auth_failure_is_answered_then_closes_with_4003() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    assert_auth_failed(&client.auth(json!({ "token": "bad-1" })).await);
    assert_auth_failed(&client.auth(json!({ "token": "" })).await);
    client
        .send_json(json!({ "event": "auth:request", "id": "m", "data": {} }))
        .await;
    client
        .expect_error("INVALID_MESSAGE", Some("m"), Some("auth:request"))
        .await;
    client.assert_open().await;
    assert_auth_failed(
        &client
            .auth(json!({ "token": wrongly_signed_token("alice") }))
            .await,
    );
    client.expect_close(4003).await;
}

#[tokio::test]
async fn failed_reauths_count_toward_the_limit_after_a_success() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    assert_auth_failed(&client.auth(json!({ "token": "bad-1" })).await);
    assert_eq!(
        client.auth(json!({ "token": token("alice") })).await["success"],
        true
    );
    assert_auth_failed(&client.auth(json!({ "token": "bad-2" })).await);
    client.assert_open().await;
    assert_auth_failed(&client.auth(json!({ "token": "bad-3" })).await);
    client.expect_close(4003).await;
}

#[tokio::test]
async fn room_id_naming_another_room_than_the_claim_fails() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    let response = client
        .auth(json!({ "token": token_for_room("alice", "standup"), "roomId": "retro" }))
        .await;
    assert_auth_failed(&response);
    assert_not_authenticated(&mut client).await;
}

#[tokio::test]
async fn room_id_matching_the_claim_succeeds() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    let response = client
        .auth(json!({ "token": token_for_room("alice", "standup"), "roomId": "standup" }))
        .await;
    assert_eq!(response, json!({ "success": true, "userId": "alice" }));
    client.join("standup").await;
}

#[tokio::test]
async fn room_id_without_a_room_claim_succeeds() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    let response = client
        .auth(json!({ "token": token("alice"), "roomId": "any" }))
        .await;
    assert_eq!(response, json!({ "success": true, "userId": "alice" }));
}

#[tokio::test]
async fn room_id_in_auth_request_does_not_join_the_room() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    let response = client
        .auth(json!({ "token": token("alice"), "roomId": "standup" }))
        .await;
    assert_eq!(response["success"], true);
    client
        .send_json(json!({ "event": "room:state", "id": "s" }))
        .await;
    client
        .expect_error("NOT_IN_ROOM", Some("s"), Some("room:state"))
        .await;
}

#[tokio::test]
async fn wildcard_room_claim_allows_any_room() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    let response = client
        .auth(json!({ "token": token_for_room("alice", "*"), "roomId": "retro" }))
        .await;
    assert_eq!(response, json!({ "success": true, "userId": "alice" }));
    client.join("standup").await;
}

#[tokio::test]
async fn reauth_with_same_sub_refreshes_the_claims() {
    let server = Server::start_default().await;
    let mut client = Client::authed(&server, "alice").await;
    let response = client
        .auth(json!({ "token": token_for_room("alice", "standup") }))
        .await;
    assert_eq!(response, json!({ "success": true, "userId": "alice" }));
    client
        .send_json(json!({ "event": "room:join", "id": "j", "data": { "roomId": "retro" } }))
        .await;
    client
        .expect_error("FORBIDDEN", Some("j"), Some("room:join"))
        .await;
    client.join("standup").await;
}

#[tokio::test]
async fn reauth_with_same_sub_can_widen_the_claims() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    assert_eq!(
        client
            .auth(json!({ "token": token_for_room("alice", "standup") }))
            .await["success"],
        true
    );
    assert_eq!(
        client.auth(json!({ "token": token("alice") })).await["success"],
        true
    );
    client.join("retro").await;
}

#[tokio::test]
async fn reauth_with_another_sub_fails_and_keeps_the_identity() {
    let server = Server::start_default().await;
    let mut client = Client::authed(&server, "alice").await;
    assert_auth_failed(&client.auth(json!({ "token": token("mallory") })).await);
    let joined = client.join("r").await;
    assert_eq!(joined["self"]["userId"], "alice");
}

#[tokio::test]
async fn failed_reauth_keeps_the_claims() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    assert_eq!(
        client
            .auth(json!({ "token": token_for_room("alice", "standup") }))
            .await["success"],
        true
    );
    // A failing token that would have widened the claims changes nothing.
    assert_auth_failed(
        &client
            .auth(json!({ "token": token_expired_since("alice", 120) }))
            .await,
    );
    assert_auth_failed(&client.auth(json!({ "token": token("mallory") })).await);
    client
        .send_json(json!({ "event": "room:join", "id": "j", "data": { "roomId": "retro" } }))
        .await;
    client
        .expect_error("FORBIDDEN", Some("j"), Some("room:join"))
        .await;
    let joined = client.join("standup").await;
    assert_eq!(joined["self"]["userId"], "alice");
}
