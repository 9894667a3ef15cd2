//! Recording chosen rooms: which rooms are recorded, and one writer thread
//! per recording that owns its file.
//!
//! A plugin call on a recorded room hands its line to the writer over a
//! bounded channel and never waits: a line that finds the channel full is
//! dropped and counted, and the count is in the listing and the file's
//! last line. With nothing recorded, a call asks [`Recorder::recording`]
//! and pays one atomic load.
//!
//! In cluster mode one node writes a recording's file and every other node
//! *follows* it: its calls about the recording's rooms (the rooms it owns)
//! go, on the same kind of thread, to a sender the cluster gives, which
//! publishes them to the writing node; that node [`Recorder::take`]s them
//! into its file.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use switchboard_recording::{Call, End, Entry, FORMAT_VERSION, Header, Line};

use crate::ids::RoomId;
use crate::plugins::{Chain, unix_millis};
use crate::state::NodeId;

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

/// What names a recording, on every node that takes part in it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Listing {
    pub(crate) id: u64,
    /// The file, on the node that writes it.
    pub(crate) path: String,
    /// Sorted.
    pub(crate) rooms: Vec<String>,
    pub(crate) started_at: u64,
    /// Cluster mode: the node that writes the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) node: Option<String>,
}

/// Hands a followed recording's line to the node that writes its file.
pub(crate) type Forward = Box<dyn FnMut(&Call) + Send>;

/// One active recording.
pub(crate) struct Recording {
    listing: Listing,
    rooms: HashSet<RoomId>,
    /// Whether this node writes the file (else it follows the recording).
    writes: bool,
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

/// Where a recording's thread puts its lines.
enum Out {
    /// The file, its header first and its end last.
    File(File, Header),
    /// The node that writes the file.
    Node(Forward),
}

/// A recording as the admin API shows it: `calls` and `dropped` count the
/// lines this node wrote to the file or, following a recording another
/// node writes, sent to that node.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Summary {
    #[serde(flatten)]
    pub(crate) listing: Listing,
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

    /// An id for a new recording on a server of one node (a cluster
    /// numbers its recordings in Redis).
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Relaxed)
    }

    /// Starts recording `rooms` to a new file, its header naming `chain`;
    /// `node` is this node, in cluster mode. Creates the file, so not on
    /// an async worker.
    pub(crate) fn start(
        &self,
        id: u64,
        rooms: HashSet<RoomId>,
        chain: &Chain,
        node: Option<&NodeId>,
    ) -> Result<Summary, StartError> {
        let mut recordings = self.recordings.write();
        check_room_for(&recordings, &rooms)?;
        let started_at = unix_millis();
        let path = self.dir.join(format!("recording-{started_at}-{id}.jsonl"));
        let file = create(&self.dir, &path).map_err(StartError::File)?;
        let listing = Listing {
            id,
            path: path.display().to_string(),
            rooms: sorted(&rooms),
            started_at,
            node: node.map(NodeId::to_string),
        };
        let header = Header {
            format: FORMAT_VERSION,
            started_at,
            rooms: listing.rooms.clone(),
            chain: chain.plugins.iter().map(|p| entry(p)).collect(),
        };
        let recording = Recording::spawn(listing, rooms, Out::File(file, header))
            .map_err(|e| StartError::File(e.into()))?;
        let summary = recording.summary();
        tracing::info!(id, path = %summary.listing.path, rooms = ?summary.listing.rooms, "recording started");
        recordings.push(recording);
        self.active.store(recordings.len(), Relaxed);
        Ok(summary)
    }

    /// Cluster mode: takes part in a recording another node writes, this
    /// node's lines for it handed to `send`. Nothing if it takes part
    /// already.
    pub(crate) fn follow(&self, listing: Listing, send: Forward) -> Result<(), StartError> {
        let rooms: HashSet<RoomId> = listing
            .rooms
            .iter()
            .filter_map(|r| RoomId::parse(r))
            .collect();
        let mut recordings = self.recordings.write();
        if recordings.iter().any(|r| r.listing.id == listing.id) {
            return Ok(());
        }
        // Two recordings started at once on two nodes may share a room:
        // the one started first here gets its calls.
        let id = listing.id;
        let recording = Recording::spawn(listing, rooms, Out::Node(send))
            .map_err(|e| StartError::File(e.into()))?;
        recordings.push(recording);
        self.active.store(recordings.len(), Relaxed);
        tracing::debug!(id, "following a recording another node writes");
        Ok(())
    }

    /// Cluster mode: a line another node sent for a recording whose file
    /// this node writes; counted like the node's own.
    pub(crate) fn take(&self, id: u64, call: Call) {
        let recordings = self.recordings.read();
        if let Some(recording) = recordings.iter().find(|r| r.listing.id == id && r.writes) {
            recording.write(call);
        }
    }

    pub(crate) fn list(&self) -> Vec<Summary> {
        self.recordings.read().iter().map(|r| r.summary()).collect()
    }

    /// Stops a recording and, if this node writes it, closes its file once
    /// its writer has written every line queued and the end; `None` if
    /// there is no such recording. Waits for the writer, so not on an
    /// async worker.
    pub(crate) fn stop(&self, id: u64) -> Option<Summary> {
        let recording = {
            let mut recordings = self.recordings.write();
            let at = recordings.iter().position(|r| r.listing.id == id)?;
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
        for id in self.ids(|_| true) {
            self.stop(id);
        }
    }

    /// Cluster mode: stops following the recordings `node` writes (it has
    /// died or left).
    pub(crate) fn stop_following(&self, node: &NodeId) {
        let node = node.as_str();
        for id in self.ids(|r| r.listing.node.as_deref() == Some(node)) {
            self.stop(id);
        }
    }

    fn ids(&self, which: impl Fn(&Recording) -> bool) -> Vec<u64> {
        let recordings = self.recordings.read();
        recordings
            .iter()
            .filter(|r| which(r))
            .map(|r| r.listing.id)
            .collect()
    }
}

/// Refuses a recording beyond the limit, or of a room another records.
fn check_room_for(
    recordings: &[Arc<Recording>],
    rooms: &HashSet<RoomId>,
) -> Result<(), StartError> {
    if recordings.len() >= MAX_RECORDINGS {
        return Err(StartError::TooMany);
    }
    let mut taken = recordings.iter().flat_map(|r| &r.rooms);
    match taken.find(|room| rooms.contains(*room)) {
        Some(room) => Err(StartError::AlreadyRecorded(room.clone())),
        None => Ok(()),
    }
}

fn sorted(rooms: &HashSet<RoomId>) -> Vec<String> {
    let mut sorted: Vec<String> = rooms.iter().map(RoomId::to_string).collect();
    sorted.sort_unstable();
    sorted
}

impl Recording {
    /// A recording and its thread, which puts its lines to `out`.
    fn spawn(listing: Listing, rooms: HashSet<RoomId>, out: Out) -> io::Result<Arc<Recording>> {
        let (lines, queue) = mpsc::sync_channel(QUEUE_LINES);
        let tally = Arc::new(Tally::default());
        let writes = matches!(out, Out::File(..));
        let writer = spawn_writer(&listing, out, queue, Arc::clone(&tally))?;
        Ok(Arc::new(Recording {
            listing,
            rooms,
            writes,
            tally,
            lines,
            writer: Mutex::new(Some(writer)),
        }))
    }

    /// Hands a call's line to the writer, or counts it dropped.
    pub(crate) fn write(&self, call: Call) {
        let counter = match self.lines.try_send(Message::Call(Box::new(call))) {
            Ok(()) => &self.tally.queued,
            Err(_) => &self.tally.dropped,
        };
        counter.fetch_add(1, Relaxed);
    }

    fn summary(&self) -> Summary {
        Summary {
            listing: self.listing.clone(),
            calls: self.tally.queued.load(Relaxed),
            dropped: self.tally.dropped.load(Relaxed),
        }
    }
}

impl Summary {
    /// Whether the node that answers with it writes the file.
    pub(crate) fn written_by(&self, node: Option<&NodeId>) -> bool {
        self.listing.node.as_deref() == node.map(NodeId::as_str)
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
    listing: &Listing,
    out: Out,
    queue: Receiver<Message>,
    tally: Arc<Tally>,
) -> io::Result<JoinHandle<()>> {
    let (id, path) = (listing.id, listing.path.clone());
    std::thread::Builder::new()
        .name(format!("recording-{id}"))
        .spawn(move || {
            let written = match out {
                Out::File(file, header) => write_all(file, header, &queue, &tally),
                Out::Node(send) => {
                    send_all(send, &queue);
                    Ok(())
                }
            };
            if let Err(e) = written {
                // The queue's receiver goes with this thread: later lines
                // count as dropped.
                tracing::warn!(id, path, "recording stopped writing: {e}");
            }
        })
}

/// The next line queued; `None` at the end. `caught_up` runs before a
/// wait for more.
fn next(
    queue: &Receiver<Message>,
    caught_up: impl FnOnce() -> io::Result<()>,
) -> io::Result<Option<Box<Call>>> {
    let message = match queue.try_recv() {
        Ok(message) => message,
        Err(TryRecvError::Empty) => {
            caught_up()?;
            match queue.recv() {
                Ok(message) => message,
                Err(_) => return Ok(None),
            }
        }
        Err(TryRecvError::Disconnected) => return Ok(None),
    };
    Ok(match message {
        Message::Call(call) => Some(call),
        Message::End => None,
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
    while let Some(mut call) = next(queue, || out.flush())? {
        written += 1;
        call.seq = written;
        write_line(&mut out, &Line::Call(call))?;
    }
    let end = End {
        ended_at: unix_millis(),
        calls: written,
        dropped: tally.dropped.load(Relaxed),
    };
    write_line(&mut out, &Line::End(end))?;
    out.flush()
}

/// A follower's thread: each call as it comes to the writing node (which
/// numbers it).
fn send_all(mut send: Forward, queue: &Receiver<Message>) {
    while let Ok(Some(call)) = next(queue, || Ok(())) {
        send(&call);
    }
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
        let started = (recorder.start(1, rooms(&["r1", "r2"]), &chain, None)).unwrap();
        let conflict = recorder.start(2, rooms(&["r2", "r3"]), &chain, None);
        assert!(
            matches!(conflict, Err(StartError::AlreadyRecorded(room)) if room.as_str() == "r2")
        );
        assert!(recorder.recording(&RoomId::parse("r3").unwrap()).is_none());

        let recording = recorder.recording(&r1).unwrap();
        for tag in ["a", "b", "c"] {
            recording.write(call("r1", tag));
        }
        assert_eq!(recorder.list()[0].calls, 3);
        let stopped = recorder.stop(started.listing.id).unwrap();
        assert_eq!((stopped.calls, stopped.dropped), (3, 0));
        assert!(
            recorder.recording(&r1).is_none(),
            "a stopped recording takes no calls"
        );
        assert!(recorder.stop(started.listing.id).is_none());

        let file = File::read(&started.listing.path).unwrap();
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
            listing: Listing {
                id: 1,
                path: "unused".into(),
                rooms: vec!["r1".into()],
                started_at: 0,
                node: None,
            },
            rooms: rooms(&["r1"]),
            writes: true,
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
        let error = recorder
            .start(1, rooms(&["r1"]), &chain, None)
            .err()
            .unwrap();
        assert!(error.to_string().contains("a-file"), "{error}");
        assert!(recorder.list().is_empty());
    }

    #[test]
    fn a_followed_recording_sends_its_lines_and_the_writing_node_takes_them_into_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let chain = Chain::new(Vec::new()).unwrap();
        let writer_node = NodeId::parse("node-a").unwrap();
        let writing = Recorder::new(dir.path().to_owned());
        let started = (writing.start(7, rooms(&["r1"]), &chain, Some(&writer_node))).unwrap();
        assert!(started.written_by(Some(&writer_node)));

        // The other node: what it sends reaches the writing node as the
        // cluster would carry it, as JSON.
        let following = Recorder::new(dir.path().join("unused"));
        let (sent, arrived) = mpsc::channel::<String>();
        let send: Forward = Box::new(move |call: &Call| {
            let _ = sent.send(serde_json::to_string(call).unwrap());
        });
        following.follow(started.listing.clone(), send).unwrap();
        assert!(!following.list()[0].written_by(None));
        let room = RoomId::parse("r1").unwrap();
        following
            .recording(&room)
            .unwrap()
            .write(call("r1", "theirs"));
        let line = arrived
            .recv_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        writing.take(7, serde_json::from_str(&line).unwrap());
        writing.recording(&room).unwrap().write(call("r1", "mine"));

        let followed = following.stop(7).unwrap();
        assert_eq!(
            (followed.calls, followed.listing.node.as_deref()),
            (1, Some("node-a"))
        );
        assert!(!followed.written_by(None));
        assert_eq!(writing.stop(7).unwrap().calls, 2);
        let file = File::read(&started.listing.path).unwrap();
        let tags: Vec<&str> = (file.calls.iter())
            .map(|call| match &call.input {
                Input::Timer { tag, .. } => tag.as_str(),
                other => panic!("read back {other:?}"),
            })
            .collect();
        assert_eq!(tags, ["theirs", "mine"]);
    }
}
