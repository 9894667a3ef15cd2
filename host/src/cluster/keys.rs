//! Every key and channel a cluster uses, under its prefix, and the scripts
//! that change room ownership atomically. docs/CLUSTER.md has the table.

use redis::Cmd;

use super::NodeId;
use crate::ids::RoomId;

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
  redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
  redis.call('SREM', KEYS[2], ARGV[2])
  redis.call('SREM', KEYS[5], ARGV[2])
end
return 0
"#;

/// Ends a dead node's rooms that no live node has a member in: nobody is
/// left to take them over, so their keys would stay forever. Rooms with a
/// live member are left for a survivor to claim. The node's clients leave
/// the client directory.
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
      redis.call('DEL', base .. ':owner', base .. ':members', base .. ':kv')
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
  end
end
return reaped
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

    /// The rooms a node owns, for reaping them when it dies.
    fn node_rooms(&self, node: &NodeId) -> String {
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

    /// Open rooms, for `max_rooms`.
    fn rooms(&self) -> String {
        format!("{}:rooms", self.prefix)
    }

    fn owner(&self, room: &RoomId) -> String {
        format!("{}:room:{room}:owner", self.prefix)
    }

    pub(crate) fn members(&self, room: &RoomId) -> String {
        format!("{}:room:{room}:members", self.prefix)
    }

    pub(crate) fn kv(&self, room: &RoomId) -> String {
        format!("{}:room:{room}:kv", self.prefix)
    }

    /// A node's channel: everything addressed to it.
    pub(crate) fn channel(&self, node: &NodeId) -> String {
        format!("{}:to:{node}", self.prefix)
    }

    /// Hot swaps and rollbacks, for every node.
    pub(crate) fn swaps(&self) -> String {
        format!("{}:swaps", self.prefix)
    }

    /// The live version's hash of a chain entry.
    pub(crate) fn plugin(&self, name: &str) -> String {
        format!("{}:plugin:{name}", self.prefix)
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
            .arg(5)
            .arg(self.owner(room))
            .arg(self.rooms())
            .arg(self.members(room))
            .arg(self.kv(room))
            .arg(self.node_rooms(me))
            .arg(me.as_str())
            .arg(room.as_str());
        cmd
    }

    pub(crate) fn reap(&self, dead: &NodeId) -> Cmd {
        let mut cmd = Cmd::new();
        cmd.arg("EVAL")
            .arg(REAP)
            .arg(3)
            .arg(self.node_rooms(dead))
            .arg(self.rooms())
            .arg(self.clients())
            .arg(&self.prefix)
            .arg(dead.as_str());
        cmd
    }
}
