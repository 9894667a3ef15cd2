//! Every key and channel a cluster uses, under its prefix, and the scripts
//! that change room ownership atomically. docs/CLUSTER.md has the table.

use redis::Cmd;

use super::NodeId;
use crate::ids::{ClientId, RoomId};

pub(crate) struct Keys {
    prefix: String,
    max_rooms: usize,
}

/// Claims a room: its owner stays its owner while that node's lease lives;
/// an owner whose lease has expired is replaced (a takeover); a room with
/// no owner is opened only while the cluster holds fewer than `max_rooms`.
/// Answers `{owner, took_over}`, or `{"", 0}` when the cluster is full.
const CLAIM: &str = r#"
local owner = redis.call('GET', KEYS[1])
if owner then
  if owner == ARGV[1] or redis.call('EXISTS', ARGV[2] .. owner) == 1 then
    return {owner, 0}
  end
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SREM', ARGV[2] .. owner .. ':rooms', ARGV[4])
  redis.call('SADD', KEYS[3], ARGV[4])
  return {ARGV[1], 1}
end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  return {'', 0}
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[4])
return {ARGV[1], 0}
"#;

/// Closes a room this node owns: its owner, mirror and place in the room
/// count go. A room another node has taken over is left alone.
const CLOSE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[6])
  redis.call('SREM', KEYS[2], ARGV[2])
  redis.call('SREM', KEYS[5], ARGV[2])
end
return 0
"#;

/// Ends a dead node's rooms that no live node has a member in: nobody is
/// left to take them over, so their keys would stay forever. Rooms with a
/// live member are left for a survivor to claim. The node's clients leave
/// the client directory; their session records stay until their sessions'
/// end (`ARGV[3]`, Unix ms), for a resume on another node.
const REAP: &str = r#"
local rooms = redis.call('SMEMBERS', KEYS[1])
local reaped = 0
for _, room in ipairs(rooms) do
  local base = ARGV[1] .. ':room:' .. room
  if redis.call('GET', base .. ':owner') == ARGV[2] then
    local alive = false
    for _, seat in ipairs(redis.call('HVALS', base .. ':members')) do
      local node = cjson.decode(seat)['node']
      if redis.call('EXISTS', ARGV[1] .. ':node:' .. node) == 1 then
        alive = true
        break
      end
    end
    if not alive then
      redis.call('DEL', base .. ':owner', base .. ':members', base .. ':kv', base .. ':timers')
      redis.call('SREM', KEYS[2], room)
      reaped = reaped + 1
    end
  end
end
redis.call('DEL', KEYS[1])
local clients = redis.call('HGETALL', KEYS[3])
for i = 1, #clients, 2 do
  if clients[i + 1] == ARGV[2] then
    redis.call('HDEL', KEYS[3], clients[i])
    redis.call('PEXPIREAT', ARGV[1] .. ':session:' .. clients[i], ARGV[3])
  end
end
return reaped
"#;

/// Takes over a room of a dead node (`ARGV[2]`) if it still owns it.
const TAKE: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
"#;

/// Takes a session whose node died for a resume: the record's token must
/// be the one given, and is used up. Answers the record (identity and
/// room), now kept until the resuming node ends it, or nil.
const CLAIM_SESSION: &str = r#"
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
  return false
end
redis.call('HDEL', KEYS[1], 'token')
redis.call('PERSIST', KEYS[1])
return redis.call('HGETALL', KEYS[1])
"#;

impl Keys {
    pub(crate) fn new(prefix: &str, max_rooms: usize) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
            max_rooms,
        }
    }

    /// The node's lease; holds its load.
    pub(crate) fn node(&self, node: &NodeId) -> String {
        format!("{}:node:{node}", self.prefix)
    }

    /// The rooms a node owns, for taking them over when it dies.
    pub(crate) fn node_rooms(&self, node: &NodeId) -> String {
        format!("{}:node:{node}:rooms", self.prefix)
    }

    /// Sorted set of node ids by last heartbeat.
    pub(crate) fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    /// Connected clients' edge nodes, by client id.
    pub(crate) fn clients(&self) -> String {
        format!("{}:clients", self.prefix)
    }

    /// A client's session record: its resume token, its identity, and the
    /// room it is in (a field `in:{room}`, written by the room's owner).
    pub(crate) fn session(&self, client: ClientId) -> String {
        format!("{}:session:{}", self.prefix, client.to_u64())
    }

    /// Open rooms, for `max_rooms`.
    fn rooms(&self) -> String {
        format!("{}:rooms", self.prefix)
    }

    pub(crate) fn owner(&self, room: &RoomId) -> String {
        format!("{}:room:{room}:owner", self.prefix)
    }

    pub(crate) fn members(&self, room: &RoomId) -> String {
        format!("{}:room:{room}:members", self.prefix)
    }

    pub(crate) fn kv(&self, room: &RoomId) -> String {
        format!("{}:room:{room}:kv", self.prefix)
    }

    /// A room's pending plugin timers, by id.
    pub(crate) fn timers(&self, room: &RoomId) -> String {
        format!("{}:room:{room}:timers", self.prefix)
    }

    /// A node's channel: everything addressed to it.
    pub(crate) fn channel(&self, node: &NodeId) -> String {
        format!("{}:to:{node}", self.prefix)
    }

    /// Hot swaps, rollbacks and rollout changes, for every node.
    pub(crate) fn swaps(&self) -> String {
        format!("{}:swaps", self.prefix)
    }

    /// The live version's hash of a chain entry.
    pub(crate) fn plugin(&self, name: &str) -> String {
        format!("{}:plugin:{name}", self.prefix)
    }

    /// A chain entry's canary policy (JSON), while it has one.
    pub(crate) fn rollout(&self, name: &str) -> String {
        format!("{}:rollout:{name}", self.prefix)
    }

    /// The running recordings, by id: a [`crate::record::Listing`] as
    /// JSON each.
    pub(crate) fn recordings(&self) -> String {
        format!("{}:recordings", self.prefix)
    }

    /// The candidate's hash of a chain entry's shadow, while it runs.
    pub(crate) fn shadow(&self, name: &str) -> String {
        format!("{}:shadow:{name}", self.prefix)
    }

    /// Each node's last report of a shadow's figures, by node.
    pub(crate) fn shadow_reports(&self, name: &str) -> String {
        format!("{}:shadow:{name}:reports", self.prefix)
    }

    /// The last recording id given out.
    pub(crate) fn recording_ids(&self) -> String {
        format!("{}:recording-ids", self.prefix)
    }

    /// A component's bytes, by hash.
    pub(crate) fn component(&self, hash: &str) -> String {
        format!("{}:component:{hash}", self.prefix)
    }

    pub(crate) fn claim(&self, room: &RoomId, me: &NodeId) -> Cmd {
        let mut cmd = Cmd::new();
        cmd.arg("EVAL")
            .arg(CLAIM)
            .arg(3)
            .arg(self.owner(room))
            .arg(self.rooms())
            .arg(self.node_rooms(me))
            .arg(me.as_str())
            .arg(format!("{}:node:", self.prefix))
            .arg(self.max_rooms)
            .arg(room.as_str());
        cmd
    }

    pub(crate) fn close(&self, room: &RoomId, me: &NodeId) -> Cmd {
        let mut cmd = Cmd::new();
        cmd.arg("EVAL")
            .arg(CLOSE)
            .arg(6)
            .arg(self.owner(room))
            .arg(self.rooms())
            .arg(self.members(room))
            .arg(self.kv(room))
            .arg(self.node_rooms(me))
            .arg(self.timers(room))
            .arg(me.as_str())
            .arg(room.as_str());
        cmd
    }

    pub(crate) fn take(&self, room: &RoomId, dead: &NodeId, me: &NodeId) -> Cmd {
        let mut cmd = Cmd::new();
        cmd.arg("EVAL")
            .arg(TAKE)
            .arg(3)
            .arg(self.owner(room))
            .arg(self.node_rooms(dead))
            .arg(self.node_rooms(me))
            .arg(me.as_str())
            .arg(dead.as_str())
            .arg(room.as_str());
        cmd
    }

    pub(crate) fn claim_session(&self, client: ClientId, token: &str) -> Cmd {
        let mut cmd = Cmd::new();
        cmd.arg("EVAL")
            .arg(CLAIM_SESSION)
            .arg(1)
            .arg(self.session(client))
            .arg(token);
        cmd
    }

    /// `sessions_end`: when the dead node's sessions end unresumed, in Unix
    /// milliseconds.
    pub(crate) fn reap(&self, dead: &NodeId, sessions_end: u64) -> Cmd {
        let mut cmd = Cmd::new();
        cmd.arg("EVAL")
            .arg(REAP)
            .arg(3)
            .arg(self.node_rooms(dead))
            .arg(self.rooms())
            .arg(self.clients())
            .arg(&self.prefix)
            .arg(dead.as_str())
            .arg(sessions_end);
        cmd
    }
}
