//! The host interface plugins import (`interface host` in the WIT). Every
//! call is synchronous and only reads the hub or queues an [`Effect`]. A
//! call whose arguments break the contract traps (`contract::Breach`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::value::RawValue;

use super::bindings::switchboard::plugin::host::Host;
use super::bindings::types::{self, ErrorCode, LogLevel};
use super::contract;
use super::state::{Effect, PluginState};
use crate::envelope::{self, Frame};
use crate::ids::{ClientId, RoomId};
use crate::state::{self, JoinError};

impl types::Host for PluginState {}

impl Host for PluginState {
    fn send(&mut self, client: String, event: String, data: String) -> wasmtime::Result<()> {
        let frame = frame(&event, &data)?;
        if let Some(to) = ClientId::parse(&client) {
            self.effects.push(Effect::Send(to, frame));
        }
        Ok(())
    }

    fn broadcast(
        &mut self,
        room: String,
        event: String,
        data: String,
        except: Option<String>,
    ) -> wasmtime::Result<()> {
        let frame = frame(&event, &data)?;
        if let Some(room) = RoomId::parse(&room) {
            let except = except.as_deref().and_then(ClientId::parse);
            self.queue_broadcast(&room, frame, except);
        }
        Ok(())
    }

    fn join_room(
        &mut self,
        client: String,
        room: String,
        metadata: String,
    ) -> wasmtime::Result<Result<Vec<types::Peer>, ErrorCode>> {
        let Some(id) = ClientId::parse(&client) else {
            return Ok(Err(ErrorCode::PeerNotFound));
        };
        let Some(room) = RoomId::parse(&room) else {
            return Ok(Err(ErrorCode::InvalidMessage));
        };
        let metadata = Arc::from(contract::object(&metadata)?);
        Ok(self.join(id, room, metadata))
    }

    fn leave_room(&mut self, client: String) -> Option<String> {
        let id = ClientId::parse(&client)?;
        let room = self.hub.leave(id)?;
        self.queue_broadcast(&room, state::peer_left(&room, id, "left"), None);
        Some(room.to_string())
    }

    fn room_members(&mut self, room: String) -> Vec<types::Peer> {
        let Some(room) = RoomId::parse(&room) else {
            return Vec::new();
        };
        self.hub.members(&room).iter().map(wit_peer).collect()
    }

    fn lookup_client(&mut self, client: String) -> Option<types::ClientInfo> {
        let info = self.hub.client_info(ClientId::parse(&client)?)?;
        Some(super::outcome::wit_client_info(&info))
    }

    fn kv_get(&mut self, room: String, key: String) -> Option<String> {
        self.hub.kv_get(&RoomId::parse(&room)?, &self.plugin, &key)
    }

    fn kv_set(&mut self, room: String, key: String, value: String) {
        if let Some(room) = RoomId::parse(&room) {
            self.hub.kv_set(&room, &self.plugin, key, value);
        }
    }

    fn kv_delete(&mut self, room: String, key: String) {
        if let Some(room) = RoomId::parse(&room) {
            self.hub.kv_delete(&room, &self.plugin, &key);
        }
    }

    fn set_timer(&mut self, room: String, delay_ms: u32, tag: String) {
        if let Some(room) = RoomId::parse(&room) {
            let plugin = Arc::clone(&self.plugin);
            self.effects.push(Effect::Timer {
                plugin,
                room,
                delay_ms,
                tag,
            });
        }
    }

    fn kick(&mut self, client: String, reason: String) {
        if let Some(id) = ClientId::parse(&client) {
            self.effects.push(Effect::Kick(id, reason));
        }
    }

    fn log(&mut self, level: LogLevel, message: String) {
        let plugin = &*self.plugin;
        match level {
            LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn now(&mut self) -> u64 {
        unix_millis()
    }

    fn relay_data(&mut self) -> String {
        self.relay_data.clone()
    }
}

impl PluginState {
    /// Queues `frame` for the room's members now, but `except`.
    fn queue_broadcast(&mut self, room: &RoomId, frame: Frame, except: Option<ClientId>) {
        let to = self.hub.member_ids(room, except);
        self.effects.push(Effect::Broadcast { to, frame });
    }

    fn join(
        &mut self,
        id: ClientId,
        room: RoomId,
        metadata: Arc<RawValue>,
    ) -> Result<Vec<types::Peer>, ErrorCode> {
        let (others, joined) = self.hub.join(id, &room, metadata).map_err(|e| match e {
            JoinError::AlreadyInRoom => ErrorCode::AlreadyInRoom,
            JoinError::UnknownClient => ErrorCode::NotAuthenticated,
            JoinError::TooManyRooms => ErrorCode::RoomFull,
        })?;
        let to = others.iter().map(|peer| peer.client_id).collect();
        let frame = state::peer_joined(&room, &joined);
        self.effects.push(Effect::Broadcast { to, frame });
        Ok(others.iter().map(wit_peer).collect())
    }
}

/// An outbound frame from what a plugin handed over.
fn frame(event: &str, data: &str) -> Result<Frame, contract::Breach> {
    let (event, data) = contract::message(event, data)?;
    Ok(envelope::frame_raw(event.as_str(), None, &data))
}

fn wit_peer(peer: &state::Peer) -> types::Peer {
    types::Peer {
        client_id: peer.client_id.to_string(),
        user_id: peer.user_id.to_string(),
        metadata: peer.metadata.get().to_owned(),
    }
}

pub(crate) fn unix_millis() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.as_millis() as u64
}
