//! PROTOCOL.md, "Signaling relay": `sdp:offer`, `sdp:answer` and
//! `ice:candidate`.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::{Client, Server};

const QUIET: Duration = Duration::from_millis(300);

/// Two clients in room `r`, each past the other's `room:peer-joined`.
async fn pair(server: &Server) -> (Client, Client) {
    let mut a = Client::joined(server, "alice", "r").await;
    let b = Client::joined(server, "bob", "r").await;
    a.expect_event("room:peer-joined").await;
    (a, b)
}

#[tokio::test]
async fn sdp_offer_is_relayed_with_from_instead_of_to() {
    let server = Server::start_default().await;
    let (mut a, mut b) = pair(&server).await;
    let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n";
    a.send_json(
        json!({ "event": "sdp:offer", "id": "o1", "data": { "to": b.client_id, "sdp": sdp } }),
    )
    .await;
    assert_eq!(
        b.expect_event("sdp:offer").await,
        json!({ "from": a.client_id, "sdp": sdp })
    );
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn sdp_answer_is_relayed_with_from_instead_of_to() {
    let server = Server::start_default().await;
    let (mut a, mut b) = pair(&server).await;
    b.send_json(json!({ "event": "sdp:answer", "id": "a1", "data": { "to": a.client_id, "sdp": "v=0 answer" } }))
        .await;
    assert_eq!(
        a.expect_event("sdp:answer").await,
        json!({ "from": b.client_id, "sdp": "v=0 answer" })
    );
    b.expect_silence(QUIET).await;
}

#[tokio::test]
async fn ice_candidate_is_relayed_with_every_candidate_field() {
    let server = Server::start_default().await;
    let (mut a, mut b) = pair(&server).await;
    let candidate = json!({
        "candidate": "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "abcd",
    });
    a.send_json(json!({ "event": "ice:candidate", "id": "i1", "data": { "to": b.client_id, "candidate": candidate } }))
        .await;
    assert_eq!(
        b.expect_event("ice:candidate").await,
        json!({ "from": a.client_id, "candidate": candidate })
    );
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn ice_candidate_with_null_optional_fields_is_relayed() {
    let server = Server::start_default().await;
    let (mut a, mut b) = pair(&server).await;
    let candidate = json!({
        "candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host",
        "sdpMid": null,
        "sdpMLineIndex": null,
        "usernameFragment": null,
    });
    a.send_json(
        json!({ "event": "ice:candidate", "data": { "to": b.client_id, "candidate": candidate } }),
    )
    .await;
    let relayed = b.expect_event("ice:candidate").await;
    assert_eq!(relayed["from"], a.client_id.as_str());
    assert_eq!(relayed["candidate"]["candidate"], candidate["candidate"]);
    for field in ["sdpMid", "sdpMLineIndex", "usernameFragment"] {
        assert!(
            relayed["candidate"][field].is_null(),
            "{field} should be null or absent: {relayed}"
        );
    }
}

#[tokio::test]
async fn end_of_candidates_with_empty_candidate_string_is_relayed() {
    // WebRTC signals end-of-candidates with an empty `candidate` string;
    // PROTOCOL.md requires only a string.
    let server = Server::start_default().await;
    let (mut a, mut b) = pair(&server).await;
    let candidate = json!({ "candidate": "", "sdpMid": "0", "sdpMLineIndex": 0 });
    a.send_json(
        json!({ "event": "ice:candidate", "data": { "to": b.client_id, "candidate": candidate } }),
    )
    .await;
    assert_eq!(
        b.expect_event("ice:candidate").await,
        json!({ "from": a.client_id, "candidate": candidate })
    );
}

#[tokio::test]
async fn relay_goes_only_to_its_target() {
    let server = Server::start_default().await;
    let (mut a, mut b) = pair(&server).await;
    let mut c = Client::joined(&server, "carol", "r").await;
    a.expect_event("room:peer-joined").await;
    b.expect_event("room:peer-joined").await;
    a.send_json(json!({ "event": "sdp:offer", "data": { "to": c.client_id, "sdp": "for carol" } }))
        .await;
    assert_eq!(c.expect_event("sdp:offer").await["sdp"], "for carol");
    b.expect_silence(QUIET).await;
    a.expect_silence(Duration::ZERO).await;
}

#[tokio::test]
async fn relay_outside_a_room_is_not_in_room() {
    let server = Server::start_default().await;
    let (mut a, b) = pair(&server).await;
    let mut loner = Client::authed(&server, "lonely").await;
    let cases = [
        ("sdp:offer", json!({ "to": a.client_id, "sdp": "v=0" })),
        ("sdp:answer", json!({ "to": a.client_id, "sdp": "v=0" })),
        (
            "ice:candidate",
            json!({ "to": b.client_id, "candidate": { "candidate": "c" } }),
        ),
    ];
    for (event, data) in cases {
        loner
            .send_json(json!({ "event": event, "id": "x", "data": data }))
            .await;
        loner
            .expect_error("NOT_IN_ROOM", Some("x"), Some(event))
            .await;
    }
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn relay_to_unknown_client_id_is_peer_not_found() {
    let server = Server::start_default().await;
    let (mut a, _b) = pair(&server).await;
    let cases = [
        ("sdp:offer", json!({ "to": "no-such-client", "sdp": "v=0" })),
        (
            "sdp:answer",
            json!({ "to": "no-such-client", "sdp": "v=0" }),
        ),
        (
            "ice:candidate",
            json!({ "to": "no-such-client", "candidate": { "candidate": "c" } }),
        ),
    ];
    for (event, data) in cases {
        a.send_json(json!({ "event": event, "id": "x", "data": data }))
            .await;
        a.expect_error("PEER_NOT_FOUND", Some("x"), Some(event))
            .await;
    }
}

#[tokio::test]
async fn relay_to_self_is_peer_not_found() {
    let server = Server::start_default().await;
    let (mut a, _b) = pair(&server).await;
    let me = a.client_id.clone();
    let cases = [
        ("sdp:offer", json!({ "to": me, "sdp": "v=0" })),
        ("sdp:answer", json!({ "to": me, "sdp": "v=0" })),
        (
            "ice:candidate",
            json!({ "to": me, "candidate": { "candidate": "c" } }),
        ),
    ];
    for (event, data) in cases {
        a.send_json(json!({ "event": event, "id": "x", "data": data }))
            .await;
        a.expect_error("PEER_NOT_FOUND", Some("x"), Some(event))
            .await;
    }
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn relay_to_peer_in_other_room_is_peer_not_found() {
    let server = Server::start_default().await;
    let (mut a, _b) = pair(&server).await;
    let mut other = Client::joined(&server, "olga", "elsewhere").await;
    let cases = [
        ("sdp:offer", json!({ "to": other.client_id, "sdp": "v=0" })),
        ("sdp:answer", json!({ "to": other.client_id, "sdp": "v=0" })),
        (
            "ice:candidate",
            json!({ "to": other.client_id, "candidate": { "candidate": "c" } }),
        ),
    ];
    for (event, data) in cases {
        a.send_json(json!({ "event": event, "id": "x", "data": data }))
            .await;
        a.expect_error("PEER_NOT_FOUND", Some("x"), Some(event))
            .await;
    }
    other.expect_silence(QUIET).await;
}

#[tokio::test]
async fn relay_to_connected_client_in_no_room_is_peer_not_found() {
    let server = Server::start_default().await;
    let (mut a, _b) = pair(&server).await;
    let mut loner = Client::authed(&server, "lonely").await;
    a.send_json(
        json!({ "event": "sdp:offer", "id": "x", "data": { "to": loner.client_id, "sdp": "v=0" } }),
    )
    .await;
    a.expect_error("PEER_NOT_FOUND", Some("x"), Some("sdp:offer"))
        .await;
    loner.expect_silence(QUIET).await;
}

#[tokio::test]
async fn relay_to_peer_that_left_is_peer_not_found() {
    let server = Server::start_default().await;
    let (mut a, mut b) = pair(&server).await;
    b.send_json(json!({ "event": "room:leave", "id": "l" }))
        .await;
    b.expect_reply("room:left", "l").await;
    a.expect_event("room:peer-left").await;
    a.send_json(
        json!({ "event": "sdp:offer", "id": "x", "data": { "to": b.client_id, "sdp": "v=0" } }),
    )
    .await;
    a.expect_error("PEER_NOT_FOUND", Some("x"), Some("sdp:offer"))
        .await;
    b.expect_silence(QUIET).await;
}

#[tokio::test]
async fn malformed_relays_are_invalid_message() {
    let server = Server::start_default().await;
    let (mut a, mut b) = pair(&server).await;
    let to = b.client_id.clone();
    let cases: Vec<(&str, Value)> = vec![
        ("sdp:offer", json!({ "to": to, "sdp": "" })),
        ("sdp:offer", json!({ "to": to })),
        ("sdp:offer", json!({ "to": to, "sdp": 5 })),
        ("sdp:offer", json!({ "sdp": "v=0" })),
        ("sdp:offer", json!({ "to": "", "sdp": "v=0" })),
        ("sdp:offer", json!({ "to": 7, "sdp": "v=0" })),
        ("sdp:answer", json!({ "to": to, "sdp": "" })),
        ("sdp:answer", json!({ "sdp": "v=0" })),
        ("sdp:answer", json!({ "to": "", "sdp": "v=0" })),
        ("ice:candidate", json!({ "to": to })),
        ("ice:candidate", json!({ "to": to, "candidate": {} })),
        (
            "ice:candidate",
            json!({ "to": to, "candidate": { "sdpMid": "0" } }),
        ),
        (
            "ice:candidate",
            json!({ "to": to, "candidate": "candidate:1" }),
        ),
        (
            "ice:candidate",
            json!({ "to": to, "candidate": { "candidate": 5 } }),
        ),
        (
            "ice:candidate",
            json!({ "to": to, "candidate": { "candidate": "c", "sdpMLineIndex": "zero" } }),
        ),
        (
            "ice:candidate",
            json!({ "to": to, "candidate": { "candidate": "c", "sdpMLineIndex": 1.5 } }),
        ),
        (
            "ice:candidate",
            json!({ "to": to, "candidate": { "candidate": "c", "sdpMid": 0 } }),
        ),
        (
            "ice:candidate",
            json!({ "to": to, "candidate": { "candidate": "c", "usernameFragment": 1 } }),
        ),
        (
            "ice:candidate",
            json!({ "candidate": { "candidate": "c" } }),
        ),
        (
            "ice:candidate",
            json!({ "to": "", "candidate": { "candidate": "c" } }),
        ),
    ];
    for (i, (event, data)) in cases.into_iter().enumerate() {
        let id = format!("bad-{i}");
        a.send_json(json!({ "event": event, "id": id, "data": data }))
            .await;
        a.expect_error("INVALID_MESSAGE", Some(&id), Some(event))
            .await;
    }
    b.expect_silence(QUIET).await;
}

#[tokio::test]
async fn nothing_comes_back_to_the_sender() {
    let server = Server::start_default().await;
    let (mut a, mut b) = pair(&server).await;
    a.send_json(
        json!({ "event": "sdp:offer", "id": "o", "data": { "to": b.client_id, "sdp": "v=0" } }),
    )
    .await;
    a.send_json(json!({
        "event": "ice:candidate",
        "id": "i",
        "data": { "to": b.client_id, "candidate": { "candidate": "c" } },
    }))
    .await;
    b.expect_event("sdp:offer").await;
    b.expect_event("ice:candidate").await;
    a.expect_silence(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn two_hundred_relays_arrive_in_order() {
    let server = Server::start_default().await;
    let (mut a, mut b) = pair(&server).await;
    for i in 0..200 {
        let message = match i % 3 {
            0 => {
                json!({ "event": "sdp:offer", "data": { "to": b.client_id, "sdp": format!("sdp-{i}") } })
            }
            1 => {
                json!({ "event": "sdp:answer", "data": { "to": b.client_id, "sdp": format!("sdp-{i}") } })
            }
            _ => {
                json!({
                    "event": "ice:candidate",
                    "data": { "to": b.client_id, "candidate": { "candidate": format!("sdp-{i}") } },
                })
            }
        };
        a.send_json(message).await;
    }
    for i in 0..200 {
        let message = b.recv().await;
        let expected = format!("sdp-{i}");
        let got = match message["event"].as_str() {
            Some("sdp:offer" | "sdp:answer") => &message["data"]["sdp"],
            Some("ice:candidate") => &message["data"]["candidate"]["candidate"],
            _ => panic!("unexpected message #{i}: {message}"),
        };
        assert_eq!(
            got,
            expected.as_str(),
            "message #{i} out of order: {message}"
        );
        assert_eq!(message["data"]["from"], a.client_id.as_str());
    }
    a.expect_silence(Duration::ZERO).await;
}

#[tokio::test]
async fn relays_in_both_directions_keep_each_senders_order() {
    let server = Server::start_default().await;
    let (mut a, mut b) = pair(&server).await;
    for i in 0..50 {
        a.send_json(
            json!({ "event": "sdp:offer", "data": { "to": b.client_id, "sdp": format!("a{i}") } }),
        )
        .await;
        b.send_json(
            json!({ "event": "sdp:answer", "data": { "to": a.client_id, "sdp": format!("b{i}") } }),
        )
        .await;
    }
    for i in 0..50 {
        assert_eq!(b.expect_event("sdp:offer").await["sdp"], format!("a{i}"));
        assert_eq!(a.expect_event("sdp:answer").await["sdp"], format!("b{i}"));
    }
}

#[tokio::test]
async fn relay_sent_right_before_close_is_delivered_before_peer_left() {
    let server = Server::start_default().await;
    let (mut a, mut b) = pair(&server).await;
    let b_id = b.client_id.clone();
    b.send_json(
        json!({ "event": "sdp:offer", "data": { "to": a.client_id, "sdp": "last words" } }),
    )
    .await;
    b.send_json(json!({
        "event": "ice:candidate",
        "data": { "to": a.client_id, "candidate": { "candidate": "c" } },
    }))
    .await;
    b.close(1000).await;
    assert_eq!(
        a.expect_event("sdp:offer").await,
        json!({ "from": b_id, "sdp": "last words" })
    );
    a.expect_event("ice:candidate").await;
    assert_eq!(
        a.expect_event("room:peer-left").await,
        json!({ "roomId": "r", "clientId": b_id, "reason": "disconnected" })
    );
}

#[tokio::test]
async fn large_sdp_is_limited_only_by_the_message_limit() {
    let server = Server::start_default().await;
    let (mut a, mut b) = pair(&server).await;
    // An offer of exactly the default limit, 65 536 bytes, mostly sdp.
    let empty =
        json!({ "event": "sdp:offer", "data": { "to": b.client_id, "sdp": "" } }).to_string();
    let sdp = "a".repeat(65_536 - empty.len());
    let offer =
        json!({ "event": "sdp:offer", "data": { "to": b.client_id, "sdp": sdp } }).to_string();
    assert_eq!(offer.len(), 65_536);
    a.send_text(offer).await;
    assert_eq!(b.expect_event("sdp:offer").await["sdp"], sdp.as_str());
}

#[tokio::test]
async fn relays_in_different_rooms_do_not_cross() {
    let server = Server::start_default().await;
    let (mut a, mut b) = pair(&server).await;
    let mut c = Client::joined(&server, "carol", "r2").await;
    let mut d = Client::joined(&server, "dave", "r2").await;
    c.expect_event("room:peer-joined").await;
    a.send_json(json!({ "event": "sdp:offer", "data": { "to": b.client_id, "sdp": "ab" } }))
        .await;
    c.send_json(json!({ "event": "sdp:offer", "data": { "to": d.client_id, "sdp": "cd" } }))
        .await;
    assert_eq!(b.expect_event("sdp:offer").await["sdp"], "ab");
    assert_eq!(d.expect_event("sdp:offer").await["sdp"], "cd");
    for client in [&mut a, &mut b, &mut c, &mut d] {
        client.expect_silence(Duration::from_millis(100)).await;
    }
}
