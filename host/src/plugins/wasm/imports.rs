//! The host interface plugins import (`interface host` in the WIT). Every
//! call is synchronous and only reads or changes the call's world (the hub,
//! or a scratch world) or queues an [`Effect`]. A call whose arguments break
//! the contract traps (`contract::Breach`). During a traced call each
//! step that sends, schedules or changes something is also written down, as
//! the plugin asked it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use serde_json::value::RawValue;
use switchboard_recording::Step;

use super::bindings::switchboard::plugin::host::Host;
use super::bindings::types::{self, ErrorCode, LogLevel};
use super::contract;
use super::outcome::error_code;
use super::state::{Effect, PluginState, Tracing};
use crate::envelope::{self, Frame};
use crate::ids::{ClientId, RoomId};
use crate::plugins::world::World;
use crate::state::{self, Hub, JoinError};

impl types::Host for PluginState {}

impl Host for PluginState {
    fn send(&mut self, client: String, event: String, data: String) -> wasmtime::Result<()> {
        let frame = frame(&event, &data)?;
        let to = ClientId::parse(&client);
        self.journal(|| Step::Send {
            to: client,
            event,
            data: json(&data),
        });
        if let Some(to) = to {
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
        let except_id = except.as_deref().and_then(ClientId::parse);
        let Some(room_id) = RoomId::parse(&room) else {
            self.journal(|| Step::Broadcast {
                room,
                event,
                data: json(&data),
                except,
                to: Vec::new(),
            });
            return Ok(());
        };
        let to = self.world().member_ids(&room_id, except_id);
        self.journal(|| Step::Broadcast {
            room,
            event,
            data: json(&data),
            except,
            to: to.iter().map(ClientId::to_string).collect(),
        });
        self.effects.push(Effect::Broadcast { to, frame });
        Ok(())
    }

    fn join_room(
        &mut self,
        client: String,
        room: String,
        metadata: String,
    ) -> wasmtime::Result<Result<Vec<types::Peer>, ErrorCode>> {
        let joined = self.join_named(&client, &room, &metadata)?;
        self.journal(|| Step::JoinRoom {
            client,
            room,
            metadata: json(&metadata),
            refused: joined
                .as_ref()
                .err()
                .map(|&code| error_code(code).to_string()),
        });
        Ok(joined)
    }

    fn leave_room(&mut self, client: String) -> Option<String> {
        let left = ClientId::parse(&client).and_then(|id| self.leave(id));
        self.journal(|| Step::LeaveRoom {
            client,
            left: left.clone(),
        });
        left
    }

    fn room_members(&mut self, room: String) -> Vec<types::Peer> {
        let Some(room) = RoomId::parse(&room) else {
            return Vec::new();
        };
        self.world().members(&room).iter().map(wit_peer).collect()
    }

    fn lookup_client(&mut self, client: String) -> Option<types::ClientInfo> {
        let info = self.world().client_info(ClientId::parse(&client)?)?;
        Some(super::outcome::wit_client_info(&info))
    }

    fn kv_get(&mut self, room: String, key: String) -> Option<String> {
        let room = RoomId::parse(&room)?;
        world(&self.hub, &mut self.tracing).kv_get(&room, &self.plugin, &key)
    }

    fn kv_set(&mut self, room: String, key: String, value: String) {
        self.journal(|| Step::KvSet {
            room: room.clone(),
            key: key.clone(),
            value: value.clone(),
        });
        if let Some(room) = RoomId::parse(&room) {
            world(&self.hub, &mut self.tracing).kv_set(&room, &self.plugin, key, value);
        }
    }

    fn kv_delete(&mut self, room: String, key: String) {
        if let Some(id) = RoomId::parse(&room) {
            world(&self.hub, &mut self.tracing).kv_delete(&id, &self.plugin, &key);
        }
        self.journal(|| Step::KvDelete { room, key });
    }

    fn set_timer(&mut self, room: String, delay_ms: u32, tag: String) {
        self.journal(|| Step::Timer {
            room: room.clone(),
            delay_ms,
            tag: tag.clone(),
        });
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
        self.journal(|| Step::Kick {
            client: client.clone(),
            reason: reason.clone(),
        });
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
        match &self.tracing {
            Some(tracing) => tracing.now,
            None => unix_millis(),
        }
    }

    fn relay_data(&mut self) -> String {
        self.relay_data.clone()
    }
}

impl PluginState {
    fn world(&mut self) -> World<'_> {
        world(&self.hub, &mut self.tracing)
    }

    /// Writes a step down if the call is traced; `step` runs only then.
    fn journal(&mut self, step: impl FnOnce() -> Step) {
        if let Some(tracing) = &mut self.tracing {
            tracing.steps.push(step());
        }
    }

    /// Queues `frame` for the room's members now, but `except`.
    fn queue_broadcast(&mut self, room: &RoomId, frame: Frame, except: Option<ClientId>) {
        let to = self.world().member_ids(room, except);
        self.effects.push(Effect::Broadcast { to, frame });
    }

    fn join_named(
        &mut self,
        client: &str,
        room: &str,
        metadata: &str,
    ) -> wasmtime::Result<Result<Vec<types::Peer>, ErrorCode>> {
        let Some(id) = ClientId::parse(client) else {
            return Ok(Err(ErrorCode::PeerNotFound));
        };
        let Some(room) = RoomId::parse(room) else {
            return Ok(Err(ErrorCode::InvalidMessage));
        };
        let metadata = Arc::from(contract::object(metadata)?);
        Ok(self.join(id, room, metadata))
    }

    fn join(
        &mut self,
        id: ClientId,
        room: RoomId,
        metadata: Arc<RawValue>,
    ) -> Result<Vec<types::Peer>, ErrorCode> {
        let (others, joined) = self
            .world()
            .join(id, &room, metadata)
            .map_err(|e| match e {
                JoinError::AlreadyInRoom => ErrorCode::AlreadyInRoom,
                JoinError::UnknownClient => ErrorCode::NotAuthenticated,
                JoinError::TooManyRooms => ErrorCode::RoomFull,
            })?;
        let to = others.iter().map(|peer| peer.client_id).collect();
        let frame = state::peer_joined(&room, &joined);
        self.effects.push(Effect::Broadcast { to, frame });
        Ok(others.iter().map(wit_peer).collect())
    }

    fn leave(&mut self, id: ClientId) -> Option<String> {
        let room = self.world().leave(id)?;
        self.queue_broadcast(&room, state::peer_left(&room, id, "left"), None);
        Some(room.to_string())
    }
}

/// The world a call's imports reach: a traced call's scratch world if it
/// has one, the hub otherwise. Takes the two fields rather than the state,
/// so the caller may still read the others.
fn world<'a>(hub: &'a Hub, tracing: &'a mut Option<Box<Tracing>>) -> World<'a> {
    match tracing
        .as_mut()
        .and_then(|tracing| tracing.scratch.as_mut())
    {
        Some(scratch) => World::Scratch(scratch),
        None => World::Hub(hub),
    }
}

/// Data a plugin handed over, already checked to be an object, as a step
/// holds it.
fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
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
