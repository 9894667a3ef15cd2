use crate::{AuthOutcome, ClientInfo, Descriptor, Host, Outcome, Relay, RelayOutcome};

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
    /// `ice:candidate`) the plugin declared. Every relayed message takes
    /// this call, so [`Relay`] holds only what routing takes: a plugin that
    /// only routes parses nothing and calls nothing, and the host forwards
    /// the payload itself on [`RelayOutcome::Deliver`].
    ///
    /// By default this is [`on_event`](Plugin::on_event) with the sender's
    /// [`ClientInfo`] and the event's data, both asked of the host.
    fn on_relay(&self, host: &dyn Host, relay: &Relay) -> RelayOutcome {
        let Some(client) = host.client_info(&relay.sender) else {
            return RelayOutcome::Pass;
        };
        let outcome = self.on_event(host, &client, relay.event.as_str(), &host.relay_data());
        RelayOutcome::from_event_outcome(outcome, relay)
    }

    fn on_disconnect(&self, _host: &dyn Host, _client: &ClientInfo) {}

    /// A timer set with [`Host::set_timer`] fired.
    fn on_timer(&self, _host: &dyn Host, _room: &str, _tag: &str) {}
}
