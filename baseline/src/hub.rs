//! Who is connected and who is in which room: one mutex over two maps. Every
//! operation is a few map lookups, so the lock is never held for long, and
//! nothing awaits under it (sends go to unbounded queues).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::value::RawValue;
use tokio::sync::mpsc::UnboundedSender;
use tokio_tungstenite::tungstenite::Message;

pub type Outbox = UnboundedSender<Message>;

#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<u64, Client>,
    rooms: HashMap<Arc<str>, Vec<u64>>,
}

struct Client {
    outbox: Outbox,
    room: Option<Arc<str>>,
    peer: Arc<RawValue>,
}

/// A join's result: the others' `Peer`s, oldest first, and their outboxes.
pub struct Joined {
    pub peers: Vec<Arc<RawValue>>,
    pub others: Vec<Outbox>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave these maps half-updated in a way
        // that matters more than stopping the whole server would.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn register(&self, id: u64, outbox: Outbox) {
        let peer = Arc::from(RawValue::from_string("{}".into()).unwrap_or_default());
        let client = Client {
            outbox,
            room: None,
            peer,
        };
        self.lock().clients.insert(id, client);
    }

    /// Adds `id` to `room`; the caller has checked it is in none.
    pub fn join(&self, id: u64, room: Arc<str>, peer: Box<RawValue>) -> Joined {
        let mut inner = self.lock();
        let Inner { clients, rooms } = &mut *inner;
        let members = rooms.entry(Arc::clone(&room)).or_default();
        let (peers, others) = members
            .iter()
            .filter_map(|m| clients.get(m))
            .map(|c| (Arc::clone(&c.peer), c.outbox.clone()))
            .unzip();
        members.push(id);
        if let Some(client) = clients.get_mut(&id) {
            client.room = Some(room);
            client.peer = Arc::from(peer);
        }
        Joined { peers, others }
    }

    /// Removes `id` from its room; the outboxes of those who remain.
    pub fn leave(&self, id: u64) -> Vec<Outbox> {
        let mut inner = self.lock();
        let Inner { clients, rooms } = &mut *inner;
        let Some(room) = clients.get_mut(&id).and_then(|c| c.room.take()) else {
            return Vec::new();
        };
        let Some(members) = rooms.get_mut(&room) else {
            return Vec::new();
        };
        members.retain(|m| *m != id);
        if members.is_empty() {
            rooms.remove(&room);
            return Vec::new();
        }
        members
            .iter()
            .filter_map(|m| clients.get(m).map(|c| c.outbox.clone()))
            .collect()
    }

    /// Leaves the room and forgets the client.
    pub fn unregister(&self, id: u64) -> Vec<Outbox> {
        let others = self.leave(id);
        self.lock().clients.remove(&id);
        others
    }

    /// The outbox of `to` if it is in `room`.
    pub fn target(&self, room: &str, to: u64) -> Option<Outbox> {
        let inner = self.lock();
        let client = inner.clients.get(&to)?;
        (client.room.as_deref() == Some(room)).then(|| client.outbox.clone())
    }
}
