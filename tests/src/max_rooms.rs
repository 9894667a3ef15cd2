//! The `limits.max_rooms = 2` scenario, run on one server and across the
//! nodes of a cluster (where the claim script counts the rooms).

use serde_json::json;

use crate::{Client, Server};

/// Rooms `one` (opened on `servers[0]`) and `two` (on `servers[1]`) fill
/// the two places; a third room opened on `servers[2]` is `ROOM_FULL`,
/// joining `one` from there still works, and then `one` empties. Returns
/// the client holding room `two`, and the third client, in no room, for
/// the caller to open `three` in the place `one` freed.
pub async fn fill_then_free_one(servers: [&Server; 3]) -> (Client, Client) {
    let mut a = Client::joined(servers[0], "a", "one").await;
    let b = Client::joined(servers[1], "b", "two").await;
    let mut c = Client::authed(servers[2], "c").await;
    c.send_json(json!({ "event": "room:join", "id": "j", "data": { "roomId": "three" } }))
        .await;
    c.expect_error("ROOM_FULL", Some("j"), Some("room:join"))
        .await;
    c.join("one").await;
    a.expect_event("room:peer-joined").await;
    a.send_json(json!({ "event": "room:leave", "id": "l" }))
        .await;
    a.expect_reply("room:left", "l").await;
    c.expect_event("room:peer-left").await;
    c.send_json(json!({ "event": "room:leave", "id": "l" }))
        .await;
    c.expect_reply("room:left", "l").await;
    (b, c)
}
