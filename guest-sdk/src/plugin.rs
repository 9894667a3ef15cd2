use crate::{AuthOutcome, ClientInfo, Descriptor, Host, Outcome, RelayTarget};

/// A Switchboard plugin. Export it with [`export_plugin!`](crate::export_plugin).
///
/// The host builds one value per instance with [`Plugin::new`] and may run
/// several instances, recycle them, or swap in a new version at any time, so
/// state that must outlive one call belongs in the host's storage
/// ([`Host::kv_set`]), not in `self`.
///
/// The host calls the `on_*` methods only for the events and
/// [`Hook`](crate::Hook)s that [`Plugin::describe`] declares; the defaults do
/// nothing (and `on_auth`/`on_event` pass to the next plugin in the chain).
pub trait Plugin: Sized + Send + Sync + 'static {
    /// The plugin's name, version, events and hooks. Called before `new`.
    fn describe() -> Descriptor;

    /// Builds the plugin from its config: the JSON text of the plugin's
    /// table in the host config, `{}` when there is none. The error is shown
    /// to the operator.
    fn new(config: &str) -> Result<Self, String>;

    fn on_connect(&self, _host: &dyn Host, _client: &ClientInfo) {}

    /// Decides about an `auth:request`; `room_id` is its optional `roomId`.
    fn on_auth(
        &self,
        _host: &dyn Host,
        _client: &ClientInfo,
        _token: &str,
        _room_id: Option<&str>,
    ) -> AuthOutcome {
        AuthOutcome::Pass
    }

    /// Decides about one declared event. `data` is the JSON text of an
    /// object that the host has already validated against the event's
    /// schema.
    fn on_event(
        &self,
        _host: &dyn Host,
        _client: &ClientInfo,
        _event: &str,
        _data: &str,
    ) -> Outcome {
        Outcome::Pass
    }

    /// Decides about a relay event (`sdp:offer`, `sdp:answer`,
    /// `ice:candidate`) the plugin declared. `target` is the client its
    /// `data.to` names, as the host knows it now, so a plugin that only
    /// routes parses nothing and calls nothing; the host forwards the
    /// payload itself on [`Outcome::Relay`]. By default this is
    /// [`on_event`](Plugin::on_event) with the same `data`.
    fn on_relay(
        &self,
        host: &dyn Host,
        client: &ClientInfo,
        event: &str,
        data: &str,
        _target: &RelayTarget,
    ) -> Outcome {
        self.on_event(host, client, event, data)
    }

    fn on_disconnect(&self, _host: &dyn Host, _client: &ClientInfo) {}

    /// A timer set with [`Host::set_timer`] fired.
    fn on_timer(&self, _host: &dyn Host, _room: &str, _tag: &str) {}
}
