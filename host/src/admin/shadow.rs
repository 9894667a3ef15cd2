//! Shadow runs of a chain entry: start one with an uploaded version as
//! the candidate, read what its comparisons found, stop it. In cluster
//! mode a shadow started or stopped on one node is on every node, and its
//! figures are every node's.

use std::fmt::Write as _;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Map, Value, json};

use super::http::{Reply, error, json_reply};
use super::{Admin, PluginInfo, body, refused};
use crate::metrics;
use crate::plugins::SwapError;
use crate::record::{EventFigures, Report, Shadow};

/// The largest body `PUT /admin/plugins/{name}/shadow` takes.
const MAX_REQUEST_BYTES: usize = 4096;

/// Reads `PUT /admin/plugins/{name}/shadow`'s body: `{"candidate": HASH}`.
fn candidate(body: &[u8]) -> Result<String, String> {
    let fields: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| format!("the request is not a JSON object: {e}"))?;
    if let Some(unknown) = fields.keys().find(|k| k.as_str() != "candidate") {
        return Err(format!(
            "unknown field `{unknown}`: a shadow has `candidate`"
        ));
    }
    match fields.get("candidate") {
        Some(Value::String(hash)) => Ok(hash.clone()),
        Some(other) => Err(format!("`candidate` must be a version's hash, not {other}")),
        None => Err("`candidate` is missing: the hash of a loaded version".into()),
    }
}

/// A shadow as the admin API shows it, with the figures of the other
/// nodes' shadows of the same candidate, as they last reported them.
fn shadow_reply(name: &str, shadow: &Shadow, others: Vec<Report>) -> Reply {
    let mut figures = shadow.figures();
    let mut dropped = shadow.dropped();
    let nodes = 1 + others.len();
    for report in others {
        figures.merge(report.figures);
        dropped += report.dropped;
    }
    json_reply(
        StatusCode::OK,
        &json!({
            "name": name,
            "candidate": PluginInfo::of(&shadow.candidate),
            "nodes": nodes,
            "calls": figures.calls,
            "differences": figures.differences,
            "dropped": dropped,
            "events": figures.events,
            "sample": figures.sample,
        }),
    )
}

impl Admin {
    /// `switchboard_shadow_calls_total` and `_differences_total` by plugin
    /// and event, and `_dropped_total` by plugin.
    pub(super) fn render_shadows(&self, out: &mut String) {
        let shadows = self.router.shadows().list();
        let figures: Vec<_> = (shadows.iter())
            .map(|(name, s)| (name, s.figures(), s.dropped()))
            .collect();
        for (family, of) in [
            (
                "switchboard_shadow_calls_total",
                (|e| e.calls) as fn(&EventFigures) -> u64,
            ),
            ("switchboard_shadow_differences_total", |e| e.differences),
        ] {
            metrics::family(out, family, "counter");
            for (name, figures, _) in &figures {
                for (event, counts) in &figures.events {
                    let labels = format!(
                        "plugin=\"{}\",event=\"{}\"",
                        metrics::escape(name),
                        metrics::escape(event)
                    );
                    let _ = writeln!(out, "{family}{{{labels}}} {}", of(counts));
                }
            }
        }
        let family = "switchboard_shadow_dropped_total";
        metrics::family(out, family, "counter");
        for (name, _, dropped) in &figures {
            let _ = writeln!(
                out,
                "{family}{{plugin=\"{}\"}} {dropped}",
                metrics::escape(name)
            );
        }
    }

    pub(super) async fn start_shadow(&self, name: &str, request: Request<Incoming>) -> Reply {
        let hash = match body(request, MAX_REQUEST_BYTES, "the shadow request").await {
            Ok(body) => match candidate(&body) {
                Ok(hash) => hash,
                Err(message) => return error(StatusCode::BAD_REQUEST, &message),
            },
            Err(reply) => return reply,
        };
        if let Err(e) = self.registry.versions(name) {
            return refused(&e);
        }
        let Some(candidate) = self.registry.loaded(name, &hash) else {
            let e = SwapError::UnknownVersion {
                name: name.to_owned(),
                hash,
            };
            return refused(&e);
        };
        let shadows = self.router.shadows();
        if let Err(e) = shadows.start(Arc::clone(&candidate)) {
            let message = format!("starting the shadow's thread: {e:#}");
            return error(StatusCode::INTERNAL_SERVER_ERROR, &message);
        }
        tracing::info!(plugin = name, candidate = %hash, "shadow started");
        if let Some(cluster) = &self.cluster {
            let bytes = self.registry.component(name, &hash);
            cluster.shadow_started(name, &hash, bytes.as_deref());
        }
        match shadows.of(name) {
            Some(shadow) => shadow_reply(name, &shadow, Vec::new()),
            None => error(StatusCode::CONFLICT, "the shadow was stopped meanwhile"),
        }
    }

    pub(super) async fn shadow(&self, name: &str) -> Reply {
        match self.router.shadows().of(name) {
            Some(shadow) => {
                let others = self.other_reports(name, &shadow).await;
                shadow_reply(name, &shadow, others)
            }
            None => no_shadow(name),
        }
    }

    /// Stops the shadow (on every node) and answers with its last figures.
    pub(super) async fn stop_shadow(&self, name: &str) -> Reply {
        let Some(shadow) = self.router.shadows().stop(name, &self.registry) else {
            return no_shadow(name);
        };
        tracing::info!(plugin = name, candidate = %shadow.candidate.hash, "shadow stopped");
        let others = self.other_reports(name, &shadow).await;
        if let Some(cluster) = &self.cluster {
            cluster.shadow_stopped(name);
        }
        shadow_reply(name, &shadow, others)
    }

    /// In cluster mode, what the other nodes' shadows of `shadow`'s
    /// candidate last reported.
    async fn other_reports(&self, name: &str, shadow: &Shadow) -> Vec<Report> {
        let Some(cluster) = &self.cluster else {
            return Vec::new();
        };
        match cluster.shadow_reports(name, &shadow.candidate.hash).await {
            Ok(reports) => reports,
            Err(e) => {
                tracing::warn!(plugin = name, "reading other nodes' shadow figures: {e}");
                Vec::new()
            }
        }
    }
}

fn no_shadow(name: &str) -> Reply {
    error(
        StatusCode::NOT_FOUND,
        &format!("plugin `{name}` has no shadow"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shadow_needs_a_candidate_hash() {
        assert_eq!(candidate(br#"{"candidate": "abc"}"#), Ok("abc".into()));
        for (body, names) in [
            ("{}", "`candidate` is missing"),
            (r#"{"candidate": 1}"#, "`candidate`"),
            (r#"{"candidate": "a", "x": 1}"#, "`x`"),
            ("nope", "not a JSON object"),
        ] {
            let refused = candidate(body.as_bytes()).unwrap_err();
            assert!(refused.contains(names), "{body}: {refused}");
        }
    }
}
