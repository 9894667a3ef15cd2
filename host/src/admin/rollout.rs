//! Versions and rollouts of a chain entry: uploading a version without
//! making it live, listing the loaded ones, and the canary policy.
//! Promote and abort answer like a swap (`super::live`).

use std::collections::HashSet;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::http::{Reply, error, json_reply, percent_decode};
use super::{Admin, PluginInfo, blocking, body, component, refused};
use crate::ids::RoomId;
use crate::plugins::{Budget, Canary, EntryRollout, Policy, Role, RolledBack, Tally};

/// The largest rollout policy `PUT /admin/plugins/{name}/rollout` takes.
const MAX_POLICY_BYTES: usize = 1 << 20;
/// The most rooms a policy may list.
const MAX_LISTED_ROOMS: usize = 10_000;

/// A loaded version as `/admin/plugins/{name}/versions` shows it.
#[derive(Serialize)]
struct VersionInfo {
    #[serde(flatten)]
    plugin: PluginInfo,
    role: Role,
}

/// A canary as `/admin/plugins/{name}/rollout` shows it.
#[derive(Serialize)]
struct CanaryInfo {
    #[serde(flatten)]
    plugin: PluginInfo,
    percent: u8,
    /// Sorted.
    rooms: Vec<String>,
    budget: Option<BudgetInfo>,
    /// Calls and failed calls since it became the canary.
    spent: SpentInfo,
}

impl CanaryInfo {
    fn of(canary: &Canary) -> CanaryInfo {
        let mut rooms: Vec<String> = canary.rooms.iter().map(|r| r.to_string()).collect();
        rooms.sort_unstable();
        CanaryInfo {
            plugin: PluginInfo::of(&canary.plugin),
            percent: canary.percent,
            rooms,
            budget: canary.budget.map(BudgetInfo::from),
            spent: SpentInfo::of(canary.spent()),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BudgetInfo {
    error_percent: f64,
    min_calls: u64,
}

impl From<Budget> for BudgetInfo {
    fn from(budget: Budget) -> BudgetInfo {
        BudgetInfo {
            error_percent: budget.error_percent,
            min_calls: budget.min_calls,
        }
    }
}

#[derive(Serialize)]
struct SpentInfo {
    calls: u64,
    errors: u64,
}

impl SpentInfo {
    fn of(tally: Tally) -> SpentInfo {
        SpentInfo {
            calls: tally.calls,
            errors: tally.errors,
        }
    }
}

/// The last canary of an entry its budget ended.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RolledBackInfo {
    #[serde(flatten)]
    plugin: PluginInfo,
    budget: BudgetInfo,
    spent: SpentInfo,
    /// Unix milliseconds.
    rolled_back_at: u64,
    reason: String,
}

impl RolledBackInfo {
    fn of(rolled: &RolledBack) -> RolledBackInfo {
        RolledBackInfo {
            plugin: PluginInfo::of(&rolled.canary),
            budget: rolled.budget.into(),
            spent: SpentInfo::of(rolled.spent),
            rolled_back_at: rolled.at,
            reason: rolled.to_string(),
        }
    }
}

/// Reads `PUT /admin/plugins/{name}/rollout`'s body:
/// `{"canary": HASH, "percent": 0..=100, "rooms": [ROOM, ...], "budget":
/// {"errorPercent": 0..=100, "minCalls": N} | null}`, with `percent`,
/// `rooms` or both; without `budget`, the default budget. The error names
/// the field that is wrong.
fn policy(body: &[u8]) -> Result<Policy, String> {
    let fields: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| format!("the rollout policy is not a JSON object: {e}"))?;
    if let Some(unknown) = fields
        .keys()
        .find(|k| !["canary", "percent", "rooms", "budget"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown field `{unknown}`: a policy has `canary`, `percent`, `rooms` and `budget`"
        ));
    }
    let canary = match fields.get("canary") {
        Some(Value::String(hash)) => hash.clone(),
        Some(other) => return Err(format!("`canary` must be a version's hash, not {other}")),
        None => return Err("`canary` is missing: the hash of an uploaded version".into()),
    };
    let percent = match fields.get("percent") {
        None => None,
        Some(value) => match value.as_u64().and_then(|p| u8::try_from(p).ok()) {
            Some(percent) if percent <= 100 => Some(percent),
            _ => {
                return Err(format!(
                    "`percent` must be a whole number from 0 to 100, not {value}"
                ));
            }
        },
    };
    let listed = match fields.get("rooms") {
        None => None,
        Some(Value::Array(listed)) => Some(listed),
        Some(other) => return Err(format!("`rooms` must be a list of room ids, not {other}")),
    };
    if percent.is_none() && listed.is_none() {
        return Err("give `percent` (0 to 100), `rooms` (room ids) or both".into());
    }
    let listed = listed.map(Vec::as_slice).unwrap_or_default();
    if listed.len() > MAX_LISTED_ROOMS {
        return Err(format!(
            "`rooms` lists {} rooms: at most {MAX_LISTED_ROOMS}",
            listed.len()
        ));
    }
    let rooms = listed
        .iter()
        .map(|id| {
            id.as_str()
                .and_then(RoomId::parse)
                .ok_or_else(|| format!("`rooms`: {id} is not a room id"))
        })
        .collect::<Result<HashSet<RoomId>, String>>()?;
    Ok(Policy {
        canary,
        percent: percent.unwrap_or(0),
        rooms,
        budget: budget(fields.get("budget"))?,
    })
}

/// A policy's `budget`: absent is the default one, `null` none.
fn budget(value: Option<&Value>) -> Result<Option<Budget>, String> {
    let fields = match value {
        None => return Ok(Some(Budget::default())),
        Some(Value::Null) => return Ok(None),
        Some(Value::Object(fields)) => fields,
        Some(other) => {
            return Err(format!(
                "`budget` must be {{\"errorPercent\", \"minCalls\"}} or null, not {other}"
            ));
        }
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !["errorPercent", "minCalls"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown field `budget.{unknown}`: a budget has `errorPercent` and `minCalls`"
        ));
    }
    let mut budget = Budget::default();
    if let Some(value) = fields.get("errorPercent") {
        budget.error_percent = value
            .as_f64()
            .filter(|percent| (0.0..=100.0).contains(percent))
            .ok_or_else(|| {
                format!("`budget.errorPercent` must be a number from 0 to 100, not {value}")
            })?;
    }
    if let Some(value) = fields.get("minCalls") {
        budget.min_calls = value.as_u64().filter(|calls| *calls > 0).ok_or_else(|| {
            format!("`budget.minCalls` must be a whole number above 0, not {value}")
        })?;
    }
    Ok(Some(budget))
}

/// Reads a room move's body, `{"runs": "canary" | "stable"}`: true for
/// the canary.
fn runs(body: &[u8]) -> Result<bool, String> {
    let fields: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| format!("the move is not a JSON object: {e}"))?;
    if let Some(unknown) = fields.keys().find(|k| *k != "runs") {
        return Err(format!("unknown field `{unknown}`: a move has `runs`"));
    }
    match fields.get("runs").and_then(Value::as_str) {
        Some("canary") => Ok(true),
        Some("stable") => Ok(false),
        _ => Err("`runs` must be \"canary\" or \"stable\"".into()),
    }
}

fn rollout_reply(name: &str, rollout: &EntryRollout) -> Reply {
    json_reply(
        StatusCode::OK,
        &json!({
            "name": name,
            "stable": PluginInfo::of(&rollout.stable),
            "canary": rollout.canary.as_deref().map(CanaryInfo::of),
            "rolledBack": rollout.rolled_back.as_ref().map(RolledBackInfo::of),
        }),
    )
}

impl Admin {
    pub(super) fn versions(&self, name: &str) -> Reply {
        match self.registry.versions(name) {
            Ok(versions) => {
                let versions: Vec<VersionInfo> = versions
                    .iter()
                    .map(|(plugin, role)| VersionInfo {
                        plugin: PluginInfo::of(plugin),
                        role: *role,
                    })
                    .collect();
                json_reply(
                    StatusCode::OK,
                    &json!({ "name": name, "versions": versions }),
                )
            }
            Err(e) => refused(&e),
        }
    }

    /// 201 with the version when it is new to the entry's uploads, 200
    /// when those bytes were uploaded before.
    pub(super) async fn upload(&self, name: String, request: Request<Incoming>) -> Reply {
        let source = match component(request).await {
            Ok(source) => source,
            Err(reply) => return reply,
        };
        let swapper = Arc::clone(&self.swapper);
        let upload = move || swapper.upload(&name, source);
        blocking(upload, |(plugin, added)| {
            let role = match self.registry.versions(&plugin.name) {
                Ok(versions) => versions
                    .iter()
                    .find(|(p, _)| Arc::ptr_eq(p, &plugin))
                    .map_or(Role::Idle, |(_, role)| *role),
                Err(e) => return refused(&e),
            };
            let status = if added {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let info = VersionInfo {
                plugin: PluginInfo::of(&plugin),
                role,
            };
            json_reply(status, &info)
        })
        .await
    }

    pub(super) fn rollout(&self, name: &str) -> Reply {
        match self.registry.rollout(name) {
            Ok(rollout) => rollout_reply(name, &rollout),
            Err(e) => refused(&e),
        }
    }

    /// `PUT /admin/plugins/{name}/rollout/rooms/{room}` `{"runs": "canary"
    /// | "stable"}`: moves one open room of this node, between two of its
    /// events, onto `name`'s canary or back to its stable version.
    pub(super) async fn move_room(
        &self,
        name: &str,
        room: &str,
        request: Request<Incoming>,
    ) -> Reply {
        let to_canary = match body(request, MAX_POLICY_BYTES, "the move").await {
            Ok(bytes) => match runs(&bytes) {
                Ok(to_canary) => to_canary,
                Err(message) => return error(StatusCode::BAD_REQUEST, &message),
            },
            Err(reply) => return reply,
        };
        let Some(room) = percent_decode(room).as_deref().and_then(RoomId::parse) else {
            return error(StatusCode::NOT_FOUND, "no such room");
        };
        // Under the room's lock: its events run under it too, so the room
        // moves between two of them.
        let moved = {
            let _guard = self.hub.lock_room(&room);
            let Some(pin) = self.hub.pin_of(&room) else {
                let message = format!(
                    "room `{room}` is not open on this node (in a cluster, ask the node \
                     GET /admin/rooms/{room} names as its owner)"
                );
                return error(StatusCode::NOT_FOUND, &message);
            };
            self.registry
                .repin(name, pin, to_canary)
                .map(|(moved, runs)| {
                    self.hub.pin(&room, moved);
                    runs
                })
        };
        match moved {
            Ok(runs) => {
                let to = if to_canary { "canary" } else { "stable" };
                tracing::info!(plugin = name, %room, to, hash = %runs.hash, "room moved");
                json_reply(
                    StatusCode::OK,
                    &json!({ "room": room.as_str(), "runs": to, "version": PluginInfo::of(&runs) }),
                )
            }
            Err(e) => refused(&e),
        }
    }

    pub(super) async fn set_rollout(&self, name: String, request: Request<Incoming>) -> Reply {
        let policy = match body(request, MAX_POLICY_BYTES, "the rollout policy").await {
            Ok(bytes) => match policy(&bytes) {
                Ok(policy) => policy,
                Err(message) => return error(StatusCode::BAD_REQUEST, &message),
            },
            Err(reply) => return reply,
        };
        let swapper = Arc::clone(&self.swapper);
        let task_name = name.clone();
        let set = move || swapper.set_rollout(&task_name, policy);
        blocking(set, |_| self.rollout(&name)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(body: &str) -> String {
        policy(body.as_bytes()).err().unwrap_or_default()
    }

    #[test]
    fn a_policy_needs_a_canary_and_a_percentage_or_rooms() {
        let read = policy(br#"{"canary": "h", "percent": 10, "rooms": ["a", "b", "a"]}"#).unwrap();
        assert_eq!((read.canary.as_str(), read.percent), ("h", 10));
        assert_eq!(read.rooms.len(), 2);
        assert_eq!(read.budget, Some(Budget::default()), "the default budget");
        let rooms_only = policy(br#"{"canary": "h", "rooms": ["a"]}"#).unwrap();
        assert_eq!(rooms_only.percent, 0);
        let unguarded = policy(br#"{"canary": "h", "percent": 5, "budget": null}"#).unwrap();
        assert_eq!(unguarded.budget, None);
        let budget =
            r#"{"canary": "h", "percent": 5, "budget": {"errorPercent": 2.5, "minCalls": 40}}"#;
        assert_eq!(
            policy(budget.as_bytes()).unwrap().budget,
            Some(Budget {
                error_percent: 2.5,
                min_calls: 40
            })
        );
        let partial = r#"{"canary": "h", "percent": 5, "budget": {"minCalls": 7}}"#;
        let partial = policy(partial.as_bytes()).unwrap().budget.unwrap();
        assert_eq!(
            (partial.error_percent, partial.min_calls),
            (Budget::default().error_percent, 7)
        );
        assert_eq!(
            policy(br#"{"canary": "h", "percent": 100}"#)
                .unwrap()
                .percent,
            100
        );
        assert!(refusal(r#"{"canary": "h"}"#).contains("`percent`"));
        assert!(refusal(r#"{"percent": 10}"#).contains("`canary` is missing"));
    }

    #[test]
    fn a_move_runs_the_canary_or_stable() {
        assert_eq!(runs(br#"{"runs": "canary"}"#), Ok(true));
        assert_eq!(runs(br#"{"runs": "stable"}"#), Ok(false));
        for body in [r#"{"runs": "beta"}"#, "{}", r#"{"runs": 1}"#] {
            assert!(
                runs(body.as_bytes()).unwrap_err().contains("`runs`"),
                "{body}"
            );
        }
        assert!(
            runs(br#"{"runs": "canary", "to": 1}"#)
                .unwrap_err()
                .contains("`to`")
        );
        assert!(runs(b"nope").unwrap_err().contains("not a JSON object"));
    }

    #[test]
    fn a_bad_policy_says_which_field_is_wrong() {
        for (body, names) in [
            (r#"{"canary": 7, "percent": 1}"#, "`canary`"),
            (r#"{"canary": "h", "percent": 101}"#, "`percent`"),
            (r#"{"canary": "h", "percent": -1}"#, "`percent`"),
            (r#"{"canary": "h", "percent": 300}"#, "`percent`"),
            (r#"{"canary": "h", "percent": 1.5}"#, "`percent`"),
            (r#"{"canary": "h", "percent": "10"}"#, "`percent`"),
            (r#"{"canary": "h", "rooms": [""]}"#, "`rooms`"),
            (r#"{"canary": "h", "rooms": [1]}"#, "`rooms`"),
            (r#"{"canary": "h", "rooms": "a"}"#, "`rooms`"),
            (r#"{"canary": "h", "percent": 1, "pct": 2}"#, "`pct`"),
            (r#"{"canary": "h", "percent": 1, "budget": 5}"#, "`budget`"),
            (
                r#"{"canary": "h", "percent": 1, "budget": {"errorPercent": 101}}"#,
                "`budget.errorPercent`",
            ),
            (
                r#"{"canary": "h", "percent": 1, "budget": {"errorPercent": "1"}}"#,
                "`budget.errorPercent`",
            ),
            (
                r#"{"canary": "h", "percent": 1, "budget": {"minCalls": 0}}"#,
                "`budget.minCalls`",
            ),
            (
                r#"{"canary": "h", "percent": 1, "budget": {"rate": 1}}"#,
                "`budget.rate`",
            ),
            ("not json", "not a JSON object"),
            ("[]", "not a JSON object"),
        ] {
            let refused = refusal(body);
            assert!(refused.contains(names), "{body}: {refused:?}");
        }
    }
}
