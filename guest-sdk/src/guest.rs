//! The seam between the WIT bindings and the SDK's own types: the host
//! imports behind [`Host`], and the plugin instance behind the exports.

use std::sync::OnceLock;

use switchboard_vocab::ids::ClientId;

use crate::__bindings::switchboard::plugin::host as imports;
use crate::__bindings::switchboard::plugin::types as wit;
use crate::{
    AuthOutcome, ClientInfo, Descriptor, ErrorCode, EventDecl, Hook, Identity, LogLevel, Outcome,
    Peer, Plugin, Relay, RelayEvent, RelayOutcome,
};

const NOT_INITIALISED: &str = "plugin not initialised";

/// The real host, reached through the component's imports. Only meaningful
/// inside a component: natively the imports are stubs that panic.
pub struct WasmHost;

impl crate::Host for WasmHost {
    fn send(&self, client: &str, event: &str, data: &str) {
        imports::send(client, event, data);
    }

    fn broadcast(&self, room: &str, event: &str, data: &str, except: Option<&str>) {
        imports::broadcast(room, event, data, except);
    }

    fn join_room(&self, client: &str, room: &str, metadata: &str) -> Result<Vec<Peer>, ErrorCode> {
        imports::join_room(client, room, metadata)
            .map(peers)
            .map_err(Into::into)
    }

    fn leave_room(&self, client: &str) -> Option<String> {
        imports::leave_room(client)
    }

    fn room_members(&self, room: &str) -> Vec<Peer> {
        peers(imports::room_members(room))
    }

    fn client_info(&self, client: &str) -> Option<ClientInfo> {
        imports::lookup_client(client).map(Into::into)
    }

    fn kv_get(&self, room: &str, key: &str) -> Option<String> {
        imports::kv_get(room, key)
    }

    fn kv_set(&self, room: &str, key: &str, value: &str) {
        imports::kv_set(room, key, value);
    }

    fn kv_delete(&self, room: &str, key: &str) {
        imports::kv_delete(room, key);
    }

    fn set_timer(&self, room: &str, delay_ms: u32, tag: &str) {
        imports::set_timer(room, delay_ms, tag);
    }

    fn kick(&self, client: &str, reason: &str) {
        imports::kick(client, reason);
    }

    fn log(&self, level: LogLevel, message: &str) {
        imports::log(level.into(), message);
    }

    fn now(&self) -> u64 {
        imports::now()
    }

    fn relay_data(&self) -> String {
        imports::relay_data()
    }
}

/// Sends panic messages to the host's log rather than to the component's
/// stderr, so that the host records them with the plugin's name and a trap
/// never depends on how the host wired up stdio.
pub fn log_panics_to_host() {
    std::panic::set_hook(Box::new(|info| {
        crate::Host::log(&WasmHost, LogLevel::Error, &info.to_string());
    }));
}

/// Flushes stdout when a call returns. `print!` without a newline stays
/// in std's line buffer, and the host logs a plugin's output once each call
/// is over: this way it lands with the call that wrote it. (`println!` and
/// all of stderr reach the host at once anyway.)
pub struct FlushStdout;

impl Drop for FlushStdout {
    fn drop(&mut self) {
        // Nothing to do about a failed flush: the host takes every write.
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }
}

/// The one plugin value of a component instance, built by `init`.
///
/// The host is expected to call `init` first; a call that comes earlier is
/// logged and answered with a refusal instead of trapping, and a second
/// `init` is refused so that a running plugin is never replaced under a
/// call.
pub struct Instance<P>(OnceLock<P>);

impl<P: Plugin> Instance<P> {
    #[expect(
        clippy::new_without_default,
        reason = "used in a static, which needs a const fn"
    )]
    pub const fn new() -> Self {
        Instance(OnceLock::new())
    }

    pub fn init(&self, config: &str) -> Result<(), String> {
        self.0
            .set(P::new(config)?)
            .map_err(|_| "plugin already initialised".to_owned())
    }

    pub fn on_connect(&self, host: &dyn crate::Host, client: wit::ClientInfo) {
        if let Some(plugin) = self.plugin(host) {
            plugin.on_connect(host, &client.into());
        }
    }

    pub fn on_auth(
        &self,
        host: &dyn crate::Host,
        client: wit::ClientInfo,
        token: &str,
        room_id: Option<&str>,
    ) -> wit::AuthOutcome {
        match self.plugin(host) {
            Some(plugin) => plugin.on_auth(host, &client.into(), token, room_id),
            None => AuthOutcome::Reject(NOT_INITIALISED.to_owned()),
        }
        .into()
    }

    pub fn on_event(
        &self,
        host: &dyn crate::Host,
        client: wit::ClientInfo,
        event: &str,
        data: &str,
    ) -> wit::Outcome {
        match self.plugin(host) {
            Some(plugin) => plugin.on_event(host, &client.into(), event, data),
            None => Outcome::reject(ErrorCode::Internal, NOT_INITIALISED),
        }
        .into()
    }

    pub fn on_relay(&self, host: &dyn crate::Host, relay: wit::Relay) -> wit::RelayOutcome {
        match self.plugin(host) {
            Some(plugin) => plugin.on_relay(host, &relay.into()),
            None => RelayOutcome::reject(ErrorCode::Internal, NOT_INITIALISED),
        }
        .into()
    }

    pub fn on_disconnect(&self, host: &dyn crate::Host, client: wit::ClientInfo) {
        if let Some(plugin) = self.plugin(host) {
            plugin.on_disconnect(host, &client.into());
        }
    }

    pub fn on_timer(&self, host: &dyn crate::Host, room: &str, tag: &str) {
        if let Some(plugin) = self.plugin(host) {
            plugin.on_timer(host, room, tag);
        }
    }

    fn plugin(&self, host: &dyn crate::Host) -> Option<&P> {
        let plugin = self.0.get();
        if plugin.is_none() {
            host.log(LogLevel::Error, NOT_INITIALISED);
        }
        plugin
    }
}

fn peers(peers: Vec<wit::Peer>) -> Vec<Peer> {
    peers.into_iter().map(Into::into).collect()
}

/// `From` both ways between an SDK enum and its WIT twin, whose variants
/// have the same names; the SDK's variants the WIT lacks, if any, become
/// the WIT variant named after `else`.
macro_rules! same_variants {
    ($sdk:ident <=> $wit:path { $($variant:ident),+ $(,)? } $(else $($only:ident)|+ => $fallback:ident)?) => {
        impl From<$sdk> for $wit {
            fn from(value: $sdk) -> Self {
                match value {
                    $($sdk::$variant => <$wit>::$variant,)+
                    $($($sdk::$only)|+ => <$wit>::$fallback,)?
                }
            }
        }

        impl From<$wit> for $sdk {
            fn from(value: $wit) -> Self {
                match value {
                    $(<$wit>::$variant => $sdk::$variant,)+
                }
            }
        }
    };
}

// The codes only the host answers with have no WIT case (see the re-export
// of `ErrorCode`).
same_variants!(ErrorCode <=> wit::ErrorCode {
    InvalidMessage, UnknownEvent, NotAuthenticated, AuthFailed, AlreadyInRoom,
    NotInRoom, PeerNotFound, RoomFull, Forbidden, Internal,
} else RateLimited | ResumeFailed | PluginError => Internal);
same_variants!(Hook <=> wit::Hook { Connect, Auth, Disconnect, Timer });
same_variants!(LogLevel <=> wit::LogLevel { Trace, Debug, Info, Warn, Error });
same_variants!(RelayEvent <=> wit::RelayEvent { SdpOffer, SdpAnswer, IceCandidate });

impl From<wit::ClientInfo> for ClientInfo {
    fn from(c: wit::ClientInfo) -> Self {
        ClientInfo {
            id: c.id,
            user_id: c.user_id,
            role: c.role,
            room_claim: c.room_claim,
            room: c.room,
        }
    }
}

impl From<wit::Relay> for Relay {
    fn from(r: wit::Relay) -> Self {
        Relay {
            event: r.event.into(),
            sender: ClientId::from_u64(r.sender).to_hex(),
            target: r.target.map(|target| ClientId::from_u64(target).to_hex()),
            same_room: r.same_room,
        }
    }
}

impl From<wit::Peer> for Peer {
    fn from(p: wit::Peer) -> Self {
        Peer {
            client_id: p.client_id,
            user_id: p.user_id,
            metadata: p.metadata,
        }
    }
}

impl From<Outcome> for wit::Outcome {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Pass => wit::Outcome::Pass,
            Outcome::Reply { event, data } => wit::Outcome::Reply(wit::Message { event, data }),
            Outcome::Relay(client) => wit::Outcome::Relay(client),
            Outcome::Reject(error) => wit::Outcome::Reject(wit::ProtocolError {
                code: error.code.into(),
                message: error.message,
            }),
            Outcome::Handled => wit::Outcome::Handled,
        }
    }
}

impl From<RelayOutcome> for wit::RelayOutcome {
    fn from(outcome: RelayOutcome) -> Self {
        match outcome {
            RelayOutcome::Pass => wit::RelayOutcome::Pass,
            RelayOutcome::Deliver => wit::RelayOutcome::Deliver,
            RelayOutcome::Reply { event, data } => {
                wit::RelayOutcome::Reply(wit::Message { event, data })
            }
            RelayOutcome::Reject(error) => wit::RelayOutcome::Reject(wit::ProtocolError {
                code: error.code.into(),
                message: error.message,
            }),
            RelayOutcome::Handled => wit::RelayOutcome::Handled,
        }
    }
}

impl From<AuthOutcome> for wit::AuthOutcome {
    fn from(outcome: AuthOutcome) -> Self {
        match outcome {
            AuthOutcome::Pass => wit::AuthOutcome::Pass,
            AuthOutcome::Accept(Identity {
                user_id,
                role,
                room_claim,
            }) => wit::AuthOutcome::Accept(wit::Identity {
                user_id,
                role,
                room_claim,
            }),
            AuthOutcome::Reject(reason) => wit::AuthOutcome::Reject(reason),
        }
    }
}

impl From<Descriptor> for wit::Descriptor {
    fn from(d: Descriptor) -> Self {
        wit::Descriptor {
            name: d.name,
            version: d.version,
            events: d
                .events
                .into_iter()
                .map(|EventDecl { name, schema }| wit::EventDecl { name, schema })
                .collect(),
            hooks: d.hooks.into_iter().map(Into::into).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestHost;
    use crate::{Host, event};

    /// Replies with its config, so a test can tell which value serves.
    struct Echo(String);

    impl Plugin for Echo {
        fn describe() -> Descriptor {
            Descriptor {
                name: "echo".into(),
                version: "1".into(),
                events: vec![EventDecl::new("echo")],
                hooks: vec![Hook::Auth],
            }
        }

        fn new(config: &str) -> Result<Self, String> {
            match config {
                "bad" => Err("bad config".into()),
                _ => Ok(Echo(config.into())),
            }
        }

        fn on_event(&self, _: &dyn Host, _: &ClientInfo, event: &str, _: &str) -> Outcome {
            Outcome::Reply {
                event: event.into(),
                data: self.0.clone(),
            }
        }
    }

    fn wit_client() -> wit::ClientInfo {
        wit::ClientInfo {
            id: "c1".into(),
            user_id: Some("u".into()),
            role: None,
            room_claim: None,
            room: Some("r".into()),
        }
    }

    #[test]
    fn calls_before_init_are_refused_and_logged() {
        let host = TestHost::new();
        let instance = Instance::<Echo>::new();

        let outcome = instance.on_event(&host, wit_client(), "echo", "{}");
        let wit::Outcome::Reject(error) = outcome else {
            panic!("expected a rejection, got {outcome:?}");
        };
        assert!(error.code == wit::ErrorCode::Internal);
        assert_eq!(error.message, NOT_INITIALISED);

        let auth = instance.on_auth(&host, wit_client(), "t", None);
        assert!(matches!(auth, wit::AuthOutcome::Reject(reason) if reason == NOT_INITIALISED));

        instance.on_timer(&host, "r", "tick");
        assert_eq!(host.logs().len(), 3);
    }

    #[test]
    fn init_builds_the_plugin_once() {
        let host = TestHost::new();
        let instance = Instance::<Echo>::new();

        assert_eq!(instance.init("bad"), Err("bad config".to_owned()));
        assert_eq!(instance.init("{}"), Ok(()));
        assert_eq!(
            instance.init("{}"),
            Err("plugin already initialised".to_owned())
        );

        let outcome = instance.on_event(&host, wit_client(), "echo", "{}");
        assert!(matches!(outcome, wit::Outcome::Reply(m) if m.event == "echo" && m.data == "{}"));
        assert!(host.logs().is_empty());
    }

    /// Delivers relays within a room and passes everything else.
    struct RouteOnly;

    impl Plugin for RouteOnly {
        fn describe() -> Descriptor {
            Echo::describe()
        }

        fn new(_: &str) -> Result<Self, String> {
            Ok(RouteOnly)
        }

        fn on_relay(&self, _: &dyn Host, relay: &Relay) -> RelayOutcome {
            match relay.same_room {
                true => RelayOutcome::Deliver,
                false => RelayOutcome::Pass,
            }
        }
    }

    fn wit_relay(same_room: bool) -> wit::Relay {
        wit::Relay {
            event: wit::RelayEvent::SdpOffer,
            sender: 0xc1,
            target: Some(0xc2),
            same_room,
        }
    }

    #[test]
    fn relay_ids_are_their_hex_form() {
        let relay: Relay = wit_relay(true).into();
        assert_eq!(relay.sender, "00000000000000c1");
        assert_eq!(relay.target.as_deref(), Some("00000000000000c2"));
        assert_eq!(relay.event, RelayEvent::SdpOffer);
    }

    #[test]
    fn on_relay_defaults_to_on_event_with_the_sender_and_data_asked_of_the_host() {
        let host = TestHost::with_members(&[
            ("00000000000000c1", Some("r")),
            ("00000000000000c2", Some("r")),
        ]);
        let relay = host.relay(
            "00000000000000c1",
            RelayEvent::SdpOffer,
            "00000000000000c2",
            "{}",
        );
        assert_eq!(Relay::from(wit_relay(true)), relay);
        let echo = Instance::<Echo>::new();
        echo.init("cfg").unwrap();
        let outcome = echo.on_relay(&host, wit_relay(true));
        assert!(
            matches!(outcome, wit::RelayOutcome::Reply(m) if m.event == event::SDP_OFFER && m.data == "cfg")
        );

        let route = Instance::<RouteOnly>::new();
        route.init("{}").unwrap();
        assert!(matches!(
            route.on_relay(&host, wit_relay(true)),
            wit::RelayOutcome::Deliver
        ));
        assert!(matches!(
            route.on_relay(&host, wit_relay(false)),
            wit::RelayOutcome::Pass
        ));
    }

    #[test]
    fn error_codes_the_wit_lacks_become_internal() {
        let host_only = [
            ErrorCode::RateLimited,
            ErrorCode::ResumeFailed,
            ErrorCode::PluginError,
        ];
        for code in ErrorCode::ALL {
            let wit = wit::ErrorCode::from(code);
            match host_only.contains(&code) {
                true => assert!(wit == wit::ErrorCode::Internal, "{code}"),
                false => assert_eq!(ErrorCode::from(wit), code),
            }
        }
    }

    #[test]
    fn descriptor_converts_field_by_field() {
        let d: wit::Descriptor = Echo::describe().into();
        assert_eq!(d.name, "echo");
        assert_eq!(d.events.len(), 1);
        assert_eq!(d.events[0].name, "echo");
        assert!(d.events[0].schema.is_none());
        assert!(matches!(d.hooks[..], [wit::Hook::Auth]));
    }
}
