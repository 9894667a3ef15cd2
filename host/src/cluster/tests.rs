//! The wire format, and the ownership scripts run against the machine's
//! Redis (127.0.0.1:6379, as on every machine this runs on) under a prefix
//! of their own.

use std::collections::HashMap;

use redis::AsyncCommands;
use serde_json::value::RawValue;

use super::keys::Keys;
use super::wire::{self, Message};
use super::{Claimed, NodeId};
use crate::envelope::Frame;
use crate::ids::{ClientId, RoomId};

fn node(id: &str) -> NodeId {
    NodeId::parse(id).unwrap()
}

#[test]
fn a_batch_round_trips_with_frames_byte_for_byte_and_odd_room_ids() {
    let frame = Frame::from(r#"{"event":"x","data":{"a":"\"q\" é 😀","b":[1,2]}}"#.to_owned());
    let room = RoomId::parse("r \"quoted\" \\ é").unwrap();
    let messages = [
        Message::frame(ClientId::from_u64(7), &frame).unwrap(),
        Message::Placed {
            client: ClientId::from_u64(u64::MAX),
            room: Some(room.clone()),
            owner: node("n-1"),
        },
        Message::Gone {
            client: ClientId::from_u64(1),
        },
    ];
    let mut batch = Vec::new();
    for message in &messages {
        wire::push(&mut batch, message);
    }
    wire::finish(&mut batch);
    let decoded = wire::decode(&batch).unwrap();
    assert_eq!(decoded.len(), 3);
    match &decoded[0] {
        Message::Frame { to, frame: raw } => {
            assert_eq!(*to, ClientId::from_u64(7));
            assert_eq!(raw.get(), frame.as_str());
        }
        other => panic!("{other:?}"),
    }
    match &decoded[1] {
        Message::Placed {
            client,
            room: Some(r),
            owner,
        } => {
            assert_eq!(*client, ClientId::from_u64(u64::MAX));
            assert_eq!(r, &room);
            assert_eq!(owner, &node("n-1"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_batch_with_an_invalid_room_id_is_refused() {
    let text = r#"[{"placed":{"client":1,"room":"","owner":"n"}}]"#;
    assert!(wire::decode(text.as_bytes()).is_err());
    let frame = RawValue::from_string("{}".into()).unwrap();
    assert!(matches!(
        wire::decode(format!(r#"[{{"frame":{{"to":1,"frame":{frame}}}}}]"#).as_bytes()).unwrap()[0],
        Message::Frame { .. }
    ));
}

struct Scripts {
    redis: redis::aio::MultiplexedConnection,
    keys: Keys,
    prefix: String,
}

impl Scripts {
    async fn new(max_rooms: usize) -> Scripts {
        let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
        let redis = client
            .get_multiplexed_async_connection()
            .await
            .expect("these tests need Redis on 127.0.0.1:6379");
        let prefix = format!("sbunit-{:016x}", rand::random::<u64>());
        Scripts {
            redis,
            keys: Keys::new(&prefix, max_rooms),
            prefix,
        }
    }

    async fn alive(&mut self, node: &NodeId) {
        let _: () = self.redis.set(self.keys.node(node), "{}").await.unwrap();
    }

    async fn dead(&mut self, node: &NodeId) {
        let _: () = self.redis.del(self.keys.node(node)).await.unwrap();
    }

    async fn claim(&mut self, room: &str, by: &NodeId) -> Claimed {
        let room = RoomId::parse(room).unwrap();
        let answer = self
            .keys
            .claim(&room, by)
            .query_async(&mut self.redis)
            .await
            .unwrap();
        Claimed::from_script(&room, answer)
    }

    async fn keys(&mut self) -> Vec<String> {
        let mut keys: Vec<String> = self.redis.keys(format!("{}:*", self.prefix)).await.unwrap();
        keys.sort();
        keys
    }

    async fn sweep(mut self) {
        for key in self.keys().await {
            let _: () = self.redis.del(key).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_room_has_one_owner_while_its_lease_lives_and_a_dead_one_is_replaced() {
    let mut s = Scripts::new(100).await;
    let (a, b) = (node("a"), node("b"));
    s.alive(&a).await;
    s.alive(&b).await;
    assert_eq!(s.claim("r", &a).await, Claimed::Owner(a.clone()));
    assert_eq!(s.claim("r", &b).await, Claimed::Owner(a.clone()));
    assert_eq!(s.claim("r", &a).await, Claimed::Owner(a.clone()));
    s.dead(&a).await;
    assert_eq!(s.claim("r", &b).await, Claimed::TookOver);
    assert_eq!(s.claim("r", &a).await, Claimed::Owner(b.clone()));
    s.sweep().await;
}

#[tokio::test]
async fn only_the_owner_closes_a_room_and_a_closed_room_leaves_no_keys() {
    let mut s = Scripts::new(100).await;
    let (a, b) = (node("a"), node("b"));
    s.alive(&a).await;
    s.alive(&b).await;
    let room = RoomId::parse("r").unwrap();
    assert_eq!(s.claim("r", &a).await, Claimed::Owner(a.clone()));
    let _: () = s.redis.hset(s.keys.members(&room), 1, "{}").await.unwrap();
    let _: () = s
        .keys
        .close(&room, &b)
        .query_async(&mut s.redis)
        .await
        .unwrap();
    assert_eq!(s.claim("r", &b).await, Claimed::Owner(a.clone()));
    let _: () = s
        .keys
        .close(&room, &a)
        .query_async(&mut s.redis)
        .await
        .unwrap();
    let left = s.keys().await;
    assert_eq!(left, [s.keys.node(&a), s.keys.node(&b)], "{left:?}");
    s.sweep().await;
}

#[tokio::test]
async fn max_rooms_holds_across_nodes() {
    let mut s = Scripts::new(2).await;
    let (a, b) = (node("a"), node("b"));
    s.alive(&a).await;
    s.alive(&b).await;
    assert_eq!(s.claim("r1", &a).await, Claimed::Owner(a.clone()));
    assert_eq!(s.claim("r2", &b).await, Claimed::Owner(b.clone()));
    assert_eq!(s.claim("r3", &a).await, Claimed::Full);
    // An open room can still be joined.
    assert_eq!(s.claim("r2", &a).await, Claimed::Owner(b.clone()));
    s.sweep().await;
}

#[tokio::test]
async fn reaping_a_dead_node_ends_the_rooms_nobody_alive_is_in() {
    let mut s = Scripts::new(100).await;
    let (a, b) = (node("a"), node("b"));
    s.alive(&a).await;
    s.alive(&b).await;
    let (lonely, shared) = (
        RoomId::parse("lonely").unwrap(),
        RoomId::parse("shared").unwrap(),
    );
    s.claim("lonely", &a).await;
    s.claim("shared", &a).await;
    let seat = |node: &str| format!(r#"{{"seq":1,"node":"{node}","userId":"u","metadata":{{}}}}"#);
    let _: () = s
        .redis
        .hset(s.keys.members(&lonely), 1, seat("a"))
        .await
        .unwrap();
    let _: () = s
        .redis
        .hset(s.keys.members(&shared), 2, seat("a"))
        .await
        .unwrap();
    let _: () = s
        .redis
        .hset(s.keys.members(&shared), 3, seat("b"))
        .await
        .unwrap();
    let _: () = s.redis.hset(s.keys.clients(), 1, "a").await.unwrap();
    let _: () = s.redis.hset(s.keys.clients(), 3, "b").await.unwrap();
    let (one, three) = (ClientId::from_u64(1), ClientId::from_u64(3));
    for client in [one, three] {
        let record = s.keys.session(client);
        let _: () = s.redis.hset(record, "token", "t").await.unwrap();
    }
    s.dead(&a).await;
    let sessions_end = crate::plugins::unix_millis() + 60_000;
    let reap = s.keys.reap(&a, sessions_end);
    let reaped: i64 = reap.query_async(&mut s.redis).await.unwrap();
    assert_eq!(reaped, 1);
    let clients: Vec<String> = s.redis.hkeys(s.keys.clients()).await.unwrap();
    assert_eq!(clients, ["3"]);
    // The dead node's client's session record lasts as long as its grace.
    let ttl: i64 = s.redis.pttl(s.keys.session(one)).await.unwrap();
    assert!((1..=60_000).contains(&ttl), "{ttl}");
    let ttl: i64 = s.redis.pttl(s.keys.session(three)).await.unwrap();
    assert_eq!(ttl, -1, "a live node's client's record has no end");
    let _: () = s.redis.del(s.keys.session(three)).await.unwrap();
    // The shared room is left for b to take over.
    assert_eq!(s.claim("shared", &b).await, Claimed::TookOver);
    let members: i64 = s.redis.exists(s.keys.members(&lonely)).await.unwrap();
    assert_eq!(members, 0);
    s.sweep().await;
}

#[tokio::test]
async fn a_session_record_is_claimed_once_with_its_token() {
    let mut s = Scripts::new(10).await;
    let client = ClientId::from_u64(7);
    let record = s.keys.session(client);
    let _: () = s
        .redis
        .hset_multiple(
            &record,
            &[("token", "secret"), ("identity", "{}"), ("in:r", "1")],
        )
        .await
        .unwrap();
    let _: bool = s.redis.pexpire(&record, 60_000).await.unwrap();
    let claim = |token: &str| s.keys.claim_session(client, token);
    let wrong: Option<HashMap<String, String>> =
        claim("guess").query_async(&mut s.redis).await.unwrap();
    assert_eq!(wrong, None);
    let claimed: Option<HashMap<String, String>> =
        claim("secret").query_async(&mut s.redis).await.unwrap();
    let expected = HashMap::from([
        ("identity".to_owned(), "{}".to_owned()),
        ("in:r".to_owned(), "1".to_owned()),
    ]);
    assert_eq!(claimed, Some(expected));
    let again: Option<HashMap<String, String>> =
        claim("secret").query_async(&mut s.redis).await.unwrap();
    assert_eq!(again, None, "a token is used up");
    let ttl: i64 = s.redis.pttl(&record).await.unwrap();
    assert_eq!(ttl, -1, "a claimed record lasts until its new node ends it");
    let _: () = s.redis.del(&record).await.unwrap();
    s.sweep().await;
}
