//! Recording chosen rooms: which rooms are recorded, and one writer thread
//! per recording that owns its file.
//!
//! A plugin call on a recorded room hands its line to the writer over a
//! bounded channel and never waits: a line that finds the channel full is
//! dropped and counted, and the count is in the listing and the file's
//! last line. With nothing recorded, a call asks [`Recorder::recording`]
//! and pays one atomic load.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use switchboard_recording::{Call, End, Entry, FORMAT_VERSION, Header, Line};

use crate::ids::RoomId;
use crate::plugins::{Chain, unix_millis};

/// Lines a recording's writer may fall behind by before calls' lines are
/// dropped.
const QUEUE_LINES: usize = 4096;
/// Recordings at once: each is a thread and an open file.
pub(crate) const MAX_RECORDINGS: usize = 16;

pub(crate) struct Recorder {
    /// Where files go.
    dir: PathBuf,
    /// How many recordings are active: the only thing a call on a room
    /// that is not recorded reads.
    active: AtomicUsize,
    recordings: RwLock<Vec<Arc<Recording>>>,
    next_id: AtomicU64,
}

/// One active recording.
pub(crate) struct Recording {
    pub(crate) id: u64,
    rooms: HashSet<RoomId>,
    path: PathBuf,
    started_at: u64,
    tally: Arc<Tally>,
    lines: SyncSender<Message>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Tally {
    /// Lines handed to the writer.
    queued: AtomicU64,
    /// Lines that found the writer's queue full, or the writer gone.
    dropped: AtomicU64,
}

enum Message {
    Call(Box<Call>),
    End,
}

/// A recording as the admin API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Summary {
    pub(crate) id: u64,
    pub(crate) path: String,
    /// Sorted.
    pub(crate) rooms: Vec<String>,
    pub(crate) started_at: u64,
    pub(crate) calls: u64,
    pub(crate) dropped: u64,
}

/// Why a recording did not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    #[error("room `{0}` is already being recorded")]
    AlreadyRecorded(RoomId),
    #[error("{MAX_RECORDINGS} recordings are running; stop one first")]
    TooMany,
    #[error("creating the recording file: {0:#}")]
    File(anyhow::Error),
}

impl Recorder {
    pub(crate) fn new(dir: PathBuf) -> Recorder {
        Recorder {
            dir,
            active: AtomicUsize::new(0),
            recordings: RwLock::default(),
            next_id: AtomicU64::new(1),
        }
    }

    /// The recording `room` is in, if any.
    pub(crate) fn recording(&self, room: &RoomId) -> Option<Arc<Recording>> {
        if self.active.load(Relaxed) == 0 {
            return None;
        }
        let recordings = self.recordings.read();
        recordings.iter().find(|r| r.rooms.contains(room)).cloned()
    }

    /// Starts recording `rooms` to a new file, its header naming `chain`.
    /// Creates the file, so not on an async worker.
    pub(crate) fn start(
        &self,
        rooms: HashSet<RoomId>,
        chain: &Chain,
    ) -> Result<Summary, StartError> {
        let mut recordings = self.recordings.write();
        if recordings.len() >= MAX_RECORDINGS {
            return Err(StartError::TooMany);
        }
        let mut taken = recordings.iter().flat_map(|r| &r.rooms);
        if let Some(room) = taken.find(|room| rooms.contains(*room)) {
            return Err(StartError::AlreadyRecorded(room.clone()));
        }
        let id = self.next_id.fetch_add(1, Relaxed);
        let started_at = unix_millis();
        let path = self.dir.join(format!("recording-{started_at}-{id}.jsonl"));
        let file = create(&self.dir, &path).map_err(StartError::File)?;
        let mut sorted: Vec<String> = rooms.iter().map(RoomId::to_string).collect();
        sorted.sort_unstable();
        let header = Header {
            format: FORMAT_VERSION,
            started_at,
            rooms: sorted,
            chain: chain.plugins.iter().map(|p| entry(p)).collect(),
        };
        let (lines, queue) = mpsc::sync_channel(QUEUE_LINES);
        let tally = Arc::new(Tally::default());
        let writer = spawn_writer(id, file, header, queue, Arc::clone(&tally), &path)
            .map_err(|e| StartError::File(e.into()))?;
        let recording = Arc::new(Recording {
            id,
            rooms,
            path,
            started_at,
            tally,
            lines,
            writer: Mutex::new(Some(writer)),
        });
        let summary = recording.summary();
        recordings.push(recording);
        self.active.store(recordings.len(), Relaxed);
        tracing::info!(id, path = %summary.path, rooms = ?summary.rooms, "recording started");
        Ok(summary)
    }

    pub(crate) fn list(&self) -> Vec<Summary> {
        self.recordings.read().iter().map(|r| r.summary()).collect()
    }

    /// Stops a recording and closes its file once its writer has written
    /// every line queued and the end; `None` if there is no such
    /// recording. Waits for the writer, so not on an async worker.
    pub(crate) fn stop(&self, id: u64) -> Option<Summary> {
        let recording = {
            let mut recordings = self.recordings.write();
            let at = recordings.iter().position(|r| r.id == id)?;
            let recording = recordings.remove(at);
            self.active.store(recordings.len(), Relaxed);
            recording
        };
        // Calls already holding the recording may still queue a line; the
        // end waits behind them.
        let _ = recording.lines.send(Message::End);
        if let Some(writer) = recording.writer.lock().take() {
            let _ = writer.join();
        }
        let summary = recording.summary();
        tracing::info!(
            id,
            calls = summary.calls,
            dropped = summary.dropped,
            "recording stopped"
        );
        Some(summary)
    }

    /// Stops every recording (at shutdown), so each file has its end.
    pub(crate) fn stop_all(&self) {
        let ids: Vec<u64> = self.recordings.read().iter().map(|r| r.id).collect();
        for id in ids {
            self.stop(id);
        }
    }
}

impl Recording {
    /// Hands a call's line to the writer, or counts it dropped.
    pub(crate) fn write(&self, call: Call) {
        let counter = match self.lines.try_send(Message::Call(Box::new(call))) {
            Ok(()) => &self.tally.queued,
            Err(_) => &self.tally.dropped,
        };
        counter.fetch_add(1, Relaxed);
    }

    fn summary(&self) -> Summary {
        let mut rooms: Vec<String> = self.rooms.iter().map(RoomId::to_string).collect();
        rooms.sort_unstable();
        Summary {
            id: self.id,
            path: self.path.display().to_string(),
            rooms,
            started_at: self.started_at,
            calls: self.tally.queued.load(Relaxed),
            dropped: self.tally.dropped.load(Relaxed),
        }
    }
}

fn entry(plugin: &crate::plugins::Plugin) -> Entry {
    Entry {
        name: plugin.name.to_string(),
        version: plugin.descriptor.version.clone(),
        hash: plugin.hash.clone(),
        config: plugin.config().to_owned(),
        env: plugin.env_names(),
    }
}

fn create(dir: &Path, path: &Path) -> anyhow::Result<File> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    File::create_new(path).with_context(|| format!("creating {}", path.display()))
}

fn spawn_writer(
    id: u64,
    file: File,
    header: Header,
    queue: Receiver<Message>,
    tally: Arc<Tally>,
    path: &Path,
) -> io::Result<JoinHandle<()>> {
    let path = path.to_owned();
    std::thread::Builder::new()
        .name(format!("recording-{id}"))
        .spawn(move || {
            if let Err(e) = write_all(file, header, &queue, &tally) {
                // The queue's receiver goes with this thread: later lines
                // count as dropped.
                tracing::warn!(id, path = %path.display(), "recording stopped writing: {e}");
            }
        })
}

/// The writer: the header, each call as it comes, numbered, and the end.
/// Flushes whenever it has caught up, so a file read while it is being
/// written is current to within a moment.
fn write_all(
    file: File,
    header: Header,
    queue: &Receiver<Message>,
    tally: &Tally,
) -> io::Result<()> {
    let mut out = BufWriter::new(file);
    write_line(&mut out, &Line::Header(header))?;
    let mut written = 0;
    loop {
        let message = match queue.try_recv() {
            Ok(message) => message,
            Err(TryRecvError::Empty) => {
                out.flush()?;
                match queue.recv() {
                    Ok(message) => message,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        match message {
            Message::Call(mut call) => {
                written += 1;
                call.seq = written;
                write_line(&mut out, &Line::Call(call))?;
            }
            Message::End => break,
        }
    }
    let end = End {
        ended_at: unix_millis(),
        calls: written,
        dropped: tally.dropped.load(Relaxed),
    };
    write_line(&mut out, &Line::End(end))?;
    out.flush()
}

fn write_line(out: &mut impl Write, line: &Line) -> io::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use switchboard_recording::{Decision, Input, Recording as File, Ruling, View};

    use super::*;

    fn rooms(ids: &[&str]) -> HashSet<RoomId> {
        ids.iter().map(|id| RoomId::parse(id).unwrap()).collect()
    }

    fn call(room: &str, tag: &str) -> Call {
        Call {
            seq: 0,
            room: room.into(),
            entry: "room-ttl".into(),
            hash: "h".into(),
            input: Input::Timer {
                room: room.into(),
                tag: tag.into(),
            },
            view: View::default(),
            decision: Decision {
                outcome: Ruling::Done,
                effects: Vec::new(),
            },
        }
    }

    #[test]
    fn a_recording_writes_its_rooms_calls_in_order_and_ends_with_the_counts() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Recorder::new(dir.path().join("made-on-start"));
        let r1 = RoomId::parse("r1").unwrap();
        assert!(recorder.recording(&r1).is_none());
        let chain = Chain::new(Vec::new()).unwrap();
        let started = recorder.start(rooms(&["r1", "r2"]), &chain).unwrap();
        let conflict = recorder.start(rooms(&["r2", "r3"]), &chain);
        assert!(
            matches!(conflict, Err(StartError::AlreadyRecorded(room)) if room.as_str() == "r2")
        );
        assert!(recorder.recording(&RoomId::parse("r3").unwrap()).is_none());

        let recording = recorder.recording(&r1).unwrap();
        for tag in ["a", "b", "c"] {
            recording.write(call("r1", tag));
        }
        assert_eq!(recorder.list()[0].calls, 3);
        let stopped = recorder.stop(started.id).unwrap();
        assert_eq!((stopped.calls, stopped.dropped), (3, 0));
        assert!(
            recorder.recording(&r1).is_none(),
            "a stopped recording takes no calls"
        );
        assert!(recorder.stop(started.id).is_none());

        let file = File::read(&started.path).unwrap();
        assert_eq!(file.header.rooms, ["r1", "r2"]);
        let tags: Vec<(u64, String)> = file
            .calls
            .iter()
            .map(|call| match &call.input {
                Input::Timer { tag, .. } => (call.seq, tag.clone()),
                other => panic!("read back {other:?}"),
            })
            .collect();
        assert_eq!(tags, [(1, "a".into()), (2, "b".into()), (3, "c".into())]);
        let end = file.end.unwrap();
        assert_eq!((end.calls, end.dropped), (3, 0));
    }

    #[test]
    fn a_line_that_finds_the_writer_behind_is_dropped_and_counted_never_waited_for() {
        // A writer that reads nothing: the queue holds one line.
        let (lines, _unread) = mpsc::sync_channel(1);
        let recording = Recording {
            id: 1,
            rooms: rooms(&["r1"]),
            path: PathBuf::from("unused"),
            started_at: 0,
            tally: Arc::default(),
            lines,
            writer: Mutex::new(None),
        };
        for tag in ["a", "b", "c"] {
            recording.write(call("r1", tag));
        }
        let summary = recording.summary();
        assert_eq!((summary.calls, summary.dropped), (1, 2));
    }

    #[test]
    fn a_recording_that_cannot_create_its_file_does_not_start() {
        let dir = tempfile::tempdir().unwrap();
        let occupied = dir.path().join("a-file");
        std::fs::write(&occupied, "").unwrap();
        let recorder = Recorder::new(occupied);
        let chain = Chain::new(Vec::new()).unwrap();
        let error = recorder.start(rooms(&["r1"]), &chain).err().unwrap();
        assert!(error.to_string().contains("a-file"), "{error}");
        assert!(recorder.list().is_empty());
    }
}
