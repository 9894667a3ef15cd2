//! PROTOCOL.md, "Transport": the upgrade, HTTP answers, frame types and
//! the message size limit.

use serde_json::json;
use switchboard_e2e::http::{plain_request, status_of, upgrade_request};
use switchboard_e2e::{Client, Server};

const SMALL_LIMIT: &str = "[limits]\nmax_message_bytes = 1024\n";

/// A `ping` envelope with id `id`, padded to exactly `size` bytes.
fn ping_of_size(id: &str, size: usize) -> String {
    let empty = json!({ "event": "ping", "id": id, "data": { "pad": "" } }).to_string();
    assert!(
        size >= empty.len(),
        "size {size} below the envelope's own {}",
        empty.len()
    );
    let padded =
        json!({ "event": "ping", "id": id, "data": { "pad": "x".repeat(size - empty.len()) } })
            .to_string();
    assert_eq!(padded.len(), size);
    padded
}

#[tokio::test]
async fn upgrades_on_ws() {
    let server = Server::start_default().await;
    let mut client = Client::connect_path(&server, "/ws").await;
    client.assert_open().await;
}

#[tokio::test]
async fn upgrades_on_ws_with_query_string() {
    let server = Server::start_default().await;
    let mut client = Client::connect_path(&server, "/ws?x=1").await;
    client.assert_open().await;
}

#[tokio::test]
async fn upgrade_request_on_other_paths_is_404() {
    let server = Server::start_default().await;
    for path in ["/", "/ws/", "/other", "/ws/x", "/wss"] {
        let status = status_of(server.addr(), &upgrade_request("GET", path, server.addr())).await;
        assert_eq!(status, 404, "upgrade request on {path}");
    }
}

#[tokio::test]
async fn plain_get_on_other_paths_is_404() {
    let server = Server::start_default().await;
    for path in ["/", "/ws/", "/other"] {
        let status = status_of(server.addr(), &plain_request("GET", path, server.addr())).await;
        assert_eq!(status, 404, "plain GET {path}");
    }
}

#[tokio::test]
async fn plain_get_on_ws_without_upgrade_is_426() {
    let server = Server::start_default().await;
    let status = status_of(server.addr(), &plain_request("GET", "/ws", server.addr())).await;
    assert_eq!(status, 426);
}

#[tokio::test]
async fn other_methods_on_ws_are_405() {
    let server = Server::start_default().await;
    for method in ["POST", "PUT", "DELETE"] {
        let status = status_of(server.addr(), &plain_request(method, "/ws", server.addr())).await;
        assert_eq!(status, 405, "plain {method} /ws");
        let status = status_of(
            server.addr(),
            &upgrade_request(method, "/ws", server.addr()),
        )
        .await;
        assert_eq!(status, 405, "{method} /ws with upgrade headers");
    }
}

#[tokio::test]
async fn upgrade_on_ws_answers_101() {
    let server = Server::start_default().await;
    let status = status_of(server.addr(), &upgrade_request("GET", "/ws", server.addr())).await;
    assert_eq!(status, 101);
}

#[tokio::test]
async fn binary_frame_is_invalid_message_and_connection_stays_open() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    // Even a valid envelope is refused when it comes as a binary frame; the
    // frame type is checked before the JSON is parsed, so no id is echoed.
    client
        .send_binary(
            json!({ "event": "ping", "id": "b1" })
                .to_string()
                .into_bytes(),
        )
        .await;
    client.expect_error("INVALID_MESSAGE", None, None).await;
    client.assert_open().await;
}

#[tokio::test]
async fn binary_frame_after_auth_is_invalid_message() {
    let server = Server::start_default().await;
    let mut client = Client::authed(&server, "alice").await;
    client.send_binary(vec![0u8, 1, 2, 3]).await;
    client.expect_error("INVALID_MESSAGE", None, None).await;
    client.assert_open().await;
}

#[tokio::test]
async fn message_of_exactly_the_limit_is_accepted() {
    let server = Server::start(SMALL_LIMIT).await;
    let mut client = Client::connect(&server).await;
    client.send_text(ping_of_size("exact", 1024)).await;
    client.expect_reply("pong", "exact").await;
    client.assert_open().await;
}

#[tokio::test]
async fn message_of_the_default_limit_is_accepted() {
    let server = Server::start_default().await;
    let mut client = Client::connect(&server).await;
    client.send_text(ping_of_size("exact", 65536)).await;
    client.expect_reply("pong", "exact").await;
}

#[tokio::test]
async fn message_one_byte_over_the_limit_closes_with_1009() {
    let server = Server::start(SMALL_LIMIT).await;
    let mut client = Client::connect(&server).await;
    client.send_text(ping_of_size("over", 1025)).await;
    client.expect_close(1009).await;
}

#[tokio::test]
async fn message_one_byte_over_the_default_limit_closes_with_1009() {
    let server = Server::start_default().await;
    let mut client = Client::authed(&server, "alice").await;
    client.send_text(ping_of_size("over", 65537)).await;
    client.expect_close(1009).await;
}

#[tokio::test]
async fn fragmented_message_within_the_limit_is_reassembled() {
    let server = Server::start(SMALL_LIMIT).await;
    let mut client = Client::connect(&server).await;
    let message = ping_of_size("frag", 900);
    let (a, rest) = message.split_at(300);
    let (b, c) = rest.split_at(300);
    client.send_fragmented_text(&[a, b, c]).await;
    client.expect_reply("pong", "frag").await;
}

#[tokio::test]
async fn fragmented_message_of_exactly_the_limit_is_accepted() {
    let server = Server::start(SMALL_LIMIT).await;
    let mut client = Client::connect(&server).await;
    let message = ping_of_size("frag", 1024);
    let (a, b) = message.split_at(512);
    client.send_fragmented_text(&[a, b]).await;
    client.expect_reply("pong", "frag").await;
}

#[tokio::test]
async fn fragmented_message_over_the_limit_closes_with_1009() {
    let server = Server::start(SMALL_LIMIT).await;
    let mut client = Client::connect(&server).await;
    // Each frame is well under the limit; the reassembled message is not.
    let message = ping_of_size("frag", 1500);
    let (a, rest) = message.split_at(500);
    let (b, c) = rest.split_at(500);
    client.send_fragmented_text(&[a, b, c]).await;
    client.expect_close(1009).await;
}

#[tokio::test]
async fn fragmented_message_one_byte_over_the_limit_closes_with_1009() {
    let server = Server::start(SMALL_LIMIT).await;
    let mut client = Client::connect(&server).await;
    let message = ping_of_size("frag", 1025);
    let (a, b) = message.split_at(512);
    client.send_fragmented_text(&[a, b]).await;
    client.expect_close(1009).await;
}

#[tokio::test]
async fn oversized_message_closes_only_its_own_connection() {
    let server = Server::start(SMALL_LIMIT).await;
    let mut other = Client::connect(&server).await;
    let mut client = Client::connect(&server).await;
    client.send_text(ping_of_size("over", 4096)).await;
    client.expect_close(1009).await;
    other.assert_open().await;
    Client::connect(&server).await.assert_open().await;
}
