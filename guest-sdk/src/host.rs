use crate::{ClientInfo, ErrorCode, LogLevel, Peer};

/// What the host offers a plugin: one method per host import of the WIT
/// world.
///
/// Every call is synchronous and cheap: sends are queued and go out after
/// the plugin returns, its reply first. Inside a component the
/// implementation forwards to the real host; in native tests it is
/// [`TestHost`](crate::testing::TestHost).
pub trait Host {
    /// Queue an event for one client. `data` is the JSON text of an object.
    fn send(&self, client: &str, event: &str, data: &str);

    /// Queue an event for every member of `room` but `except`.
    fn broadcast(&self, room: &str, event: &str, data: &str, except: Option<&str>);

    /// Add a client to a room with its metadata (JSON text of an object).
    ///
    /// The host itself sends `room:peer-joined` to the other members; the
    /// plugin never does. Returns those members, oldest first.
    fn join_room(&self, client: &str, room: &str, metadata: &str) -> Result<Vec<Peer>, ErrorCode>;

    /// Take a client out of its room and return that room (`None` if it was
    /// in none).
    ///
    /// The host itself sends `room:peer-left` with reason `left` to the
    /// others; the plugin never does.
    fn leave_room(&self, client: &str) -> Option<String>;

    /// The members of a room, oldest first; empty when it does not exist.
    fn room_members(&self, room: &str) -> Vec<Peer>;

    /// What the host knows about a client now; `None` if it is not
    /// connected. (The WIT import is `lookup-client`.)
    fn client_info(&self, client: &str) -> Option<ClientInfo>;

    /// Storage scoped to a room and to the calling plugin; it outlives
    /// instances and hot swaps, and ends with the room.
    fn kv_get(&self, room: &str, key: &str) -> Option<String>;
    fn kv_set(&self, room: &str, key: &str, value: &str);
    fn kv_delete(&self, room: &str, key: &str);

    /// Call this plugin's [`on_timer`](crate::Plugin::on_timer)`(room, tag)`
    /// after `delay_ms`, if the room still exists then.
    fn set_timer(&self, room: &str, delay_ms: u32, tag: &str);

    /// Close a client's connection with code 4009.
    fn kick(&self, client: &str, reason: &str);

    fn log(&self, level: LogLevel, message: &str);

    /// Unix time in milliseconds.
    fn now(&self) -> u64;

    /// The JSON text of the data of the relay event being decided, as
    /// [`Plugin::on_event`](crate::Plugin::on_event) would get it; empty
    /// outside [`Plugin::on_relay`](crate::Plugin::on_relay).
    fn relay_data(&self) -> String;
}
