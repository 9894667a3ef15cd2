//! Recordings of rooms' plugin calls: start one for chosen rooms (the
//! server names the file, under `[recordings] dir`), list them with their
//! counts, stop one (its file closed with its last line). The request's
//! JSON is checked into a 400 that says what is wrong. In cluster mode
//! the node that starts a recording writes its file, every node sends it
//! its calls about the rooms, and any node lists or stops it.

use std::collections::HashSet;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Map, Value, json};

use super::http::{Reply, error, json_reply};
use super::{Admin, body};
use crate::ids::RoomId;
use crate::record::{MAX_RECORDINGS, StartError};

/// The largest body `POST /admin/recordings` takes.
const MAX_REQUEST_BYTES: usize = 1 << 20;
/// The most rooms one recording may name.
const MAX_ROOMS: usize = 1_000;

/// Reads `POST /admin/recordings`'s body: `{"rooms": [ROOM, ...]}`.
fn rooms(body: &[u8]) -> Result<HashSet<RoomId>, String> {
    let fields: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| format!("the request is not a JSON object: {e}"))?;
    if let Some(unknown) = fields.keys().find(|k| k.as_str() != "rooms") {
        return Err(format!(
            "unknown field `{unknown}`: a recording has `rooms`"
        ));
    }
    let listed = match fields.get("rooms") {
        Some(Value::Array(listed)) => listed,
        Some(other) => return Err(format!("`rooms` must be a list of room ids, not {other}")),
        None => return Err("`rooms` is missing: the ids of the rooms to record".into()),
    };
    if listed.is_empty() || listed.len() > MAX_ROOMS {
        return Err(format!(
            "`rooms` lists {} rooms: from 1 to {MAX_ROOMS}",
            listed.len()
        ));
    }
    listed
        .iter()
        .map(|id| {
            id.as_str()
                .and_then(RoomId::parse)
                .ok_or_else(|| format!("`rooms`: {id} is not a room id"))
        })
        .collect()
}

impl Admin {
    pub(super) async fn start_recording(&self, request: Request<Incoming>) -> Reply {
        let body = match body(request, MAX_REQUEST_BYTES, "the recording request").await {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let rooms = match rooms(&body) {
            Ok(rooms) => rooms,
            Err(message) => return error(StatusCode::BAD_REQUEST, &message),
        };
        let recorder = std::sync::Arc::clone(self.router.recorder());
        let id = match &self.cluster {
            Some(cluster) => match cluster.recording_id().await {
                Ok(id) => id,
                Err(e) => {
                    let message = format!("numbering the recording in Redis: {e}");
                    return error(StatusCode::SERVICE_UNAVAILABLE, &message);
                }
            },
            None => recorder.next_id(),
        };
        let node = self.cluster.as_ref().map(|cluster| cluster.me().clone());
        let chain = self.registry.chain();
        // It creates the file.
        let started =
            tokio::task::spawn_blocking(move || recorder.start(id, rooms, &chain, node.as_ref()))
                .await;
        match started {
            Ok(Ok(summary)) => {
                if let Some(cluster) = &self.cluster {
                    cluster.recording_started(&summary.listing);
                }
                json_reply(StatusCode::CREATED, &summary)
            }
            Ok(Err(e @ (StartError::AlreadyRecorded(_) | StartError::TooMany))) => {
                error(StatusCode::CONFLICT, &e.to_string())
            }
            Ok(Err(e @ StartError::File(_))) => {
                error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
            }
            Err(e) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("recording task failed: {e}"),
            ),
        }
    }

    pub(super) fn recordings(&self) -> Reply {
        let recordings = self.router.recorder().list();
        json_reply(
            StatusCode::OK,
            &json!({ "recordings": recordings, "max": MAX_RECORDINGS }),
        )
    }

    pub(super) async fn stop_recording(&self, id: &str) -> Reply {
        let Ok(id) = id.parse::<u64>() else {
            return error(StatusCode::NOT_FOUND, "no such recording");
        };
        let recorder = std::sync::Arc::clone(self.router.recorder());
        // It waits for the writer to finish the file.
        match tokio::task::spawn_blocking(move || recorder.stop(id)).await {
            Ok(Some(summary)) => {
                let me = self.cluster.as_ref().map(|cluster| cluster.me());
                if let Some(cluster) = &self.cluster {
                    cluster.recording_stopped(id);
                }
                // Another node writes the file: it closes it when it
                // hears.
                let status = match summary.written_by(me) {
                    true => StatusCode::OK,
                    false => StatusCode::ACCEPTED,
                };
                json_reply(status, &summary)
            }
            Ok(None) => error(StatusCode::NOT_FOUND, "no such recording"),
            Err(e) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("recording task failed: {e}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rooms;

    #[test]
    fn a_request_names_one_or_more_valid_rooms_and_nothing_else() {
        let read = |body: &str| rooms(body.as_bytes());
        assert_eq!(read(r#"{"rooms":["r1","r2","r1"]}"#).unwrap().len(), 2);
        let wrong = [
            ("[]", "not a JSON object"),
            (r#"{"room":["r1"]}"#, "unknown field `room`"),
            ("{}", "`rooms` is missing"),
            (r#"{"rooms":"r1"}"#, "must be a list of room ids"),
            (r#"{"rooms":[]}"#, "from 1 to"),
            (r#"{"rooms":[""]}"#, "is not a room id"),
            (r#"{"rooms":[7]}"#, "7 is not a room id"),
        ];
        for (body, expected) in wrong {
            let message = read(body).unwrap_err();
            assert!(message.contains(expected), "{body}: {message}");
        }
    }
}
