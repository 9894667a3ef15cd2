//! The plugin chain: which plugins run, in which order, for which events.
//!
//! A [`Chain`] is immutable; the registry holds the current one behind one
//! pointer so a new chain (one plugin swapped) replaces it atomically while
//! calls in flight finish on the one they started with.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, bail};
use jsonschema::Validator;
use serde_json::Value;

use super::wasm::Plugin;
use crate::ids::EventName;
use crate::schema;
use crate::vocab::RelayEvent;

pub struct Chain {
    pub(crate) plugins: Vec<Arc<Plugin>>,
    /// For each declared event, the plugins that declared it, in chain order.
    routes: HashMap<String, Vec<Arc<Plugin>>>,
    /// The routes of the relay events, by [`RelayEvent`]: every relayed
    /// message looks its route up, and a match on the name is cheaper than
    /// hashing it.
    relay_routes: [Vec<Arc<Plugin>>; RelayEvent::ALL.len()],
    /// The `data` schemas of custom events, from the first plugin in the
    /// chain that gave one.
    schemas: HashMap<String, Validator>,
}

impl Chain {
    pub(crate) fn new(plugins: Vec<Arc<Plugin>>) -> anyhow::Result<Chain> {
        let mut routes: HashMap<String, Vec<Arc<Plugin>>> = HashMap::new();
        let mut schemas = HashMap::new();
        for plugin in &plugins {
            for event in &plugin.descriptor.events {
                if EventName::parse(&event.name).is_none() {
                    bail!(
                        "plugin `{}` declares an invalid event name {:?}",
                        plugin.name,
                        event.name
                    );
                }
                routes
                    .entry(event.name.clone())
                    .or_default()
                    .push(Arc::clone(plugin));
                if let Some(schema) = &event.schema
                    && !schema::is_protocol_event(&event.name)
                    && !schemas.contains_key(&event.name)
                {
                    let validator = compile_schema(schema).with_context(|| {
                        format!("plugin `{}`, schema of `{}`", plugin.name, event.name)
                    })?;
                    schemas.insert(event.name.clone(), validator);
                }
            }
        }
        let relay_routes =
            RelayEvent::ALL.map(|event| routes.remove(event.as_str()).unwrap_or_default());
        Ok(Chain {
            plugins,
            routes,
            relay_routes,
            schemas,
        })
    }

    /// The plugins that handle `event`, in order; empty if none declares it.
    pub(crate) fn route(&self, event: &str) -> &[Arc<Plugin>] {
        if let Some(relay) = RelayEvent::parse(event) {
            return &self.relay_routes[relay as usize];
        }
        self.routes
            .get(event)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Checks a custom event's data against its declared schema; the error
    /// names the failing path.
    pub(crate) fn validate(&self, event: &str, data: &Value) -> Result<(), String> {
        let Some(validator) = self.schemas.get(event) else {
            return Ok(());
        };
        validator.validate(data).map_err(|e| {
            let path = e.instance_path().to_string();
            format!("`data{path}`: {e}")
        })
    }

    pub fn find(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.iter().find(|p| &*p.name == name)
    }

    pub(crate) fn with_hook(
        &self,
        hook: impl Fn(&Plugin) -> bool,
    ) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.iter().filter(move |p| hook(p))
    }

    pub(crate) fn check_auth(&self, required: bool) -> anyhow::Result<()> {
        if required && self.with_hook(|p| p.descriptor.hooks.auth).next().is_none() {
            bail!(
                "`auth.required` is true but no plugin in the chain handles auth (add `auth-jwt`)"
            );
        }
        Ok(())
    }
}

fn compile_schema(text: &str) -> anyhow::Result<Validator> {
    let schema: Value = serde_json::from_str(text).context("the schema is not JSON")?;
    jsonschema::validator_for(&schema).map_err(|e| anyhow::anyhow!("invalid JSON Schema: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::load_builtin;

    fn chain(names: &[(&str, &str)]) -> anyhow::Result<Chain> {
        let plugins = names
            .iter()
            .map(|(name, config)| load_builtin(name, config).map(Arc::new))
            .collect::<anyhow::Result<_>>()?;
        Chain::new(plugins)
    }

    #[test]
    fn an_event_routes_to_its_plugins_in_chain_order() {
        let chain = chain(&[("room-ttl", r#"{"ttl_ms":1000}"#), ("rooms", "{}")]).unwrap();
        let names: Vec<&str> = chain.route("room:join").iter().map(|p| &*p.name).collect();
        assert_eq!(names, ["room-ttl", "rooms"]);
        assert!(chain.route("sdp:offer").is_empty());
        assert!(chain.find("rooms").is_some() && chain.find("signaling").is_none());
        let relays = self::chain(&[("signaling", "{}")]).unwrap();
        for event in RelayEvent::ALL {
            let names: Vec<&str> = relays
                .route(event.as_str())
                .iter()
                .map(|p| &*p.name)
                .collect();
            assert_eq!(names, ["signaling"]);
        }
    }

    #[test]
    fn custom_event_data_is_checked_against_the_declared_schema() {
        let chain = chain(&[("chat", "{}")]).unwrap();
        assert_eq!(
            chain.validate("chat:message", &serde_json::json!({"text": "hi"})),
            Ok(())
        );
        let error = chain
            .validate("chat:message", &serde_json::json!({"text": ""}))
            .unwrap_err();
        assert!(error.starts_with("`data/text`"), "{error}");
        assert_eq!(chain.validate("room:join", &serde_json::json!({})), Ok(()));
    }

    #[test]
    fn auth_required_needs_an_auth_plugin() {
        let chain = chain(&[("rooms", "{}")]).unwrap();
        let error = chain.check_auth(true).unwrap_err().to_string();
        assert!(error.contains("auth-jwt"), "{error}");
        assert!(chain.check_auth(false).is_ok());
    }
}
