//! The session table and its resume tokens (PROTOCOL.md, Session resume).
//!
//! A session is a client id with its hub entry (identity, room) and its
//! outbound queue. It is *live* while a connection task writes its queue,
//! *suspended* after an unexpected disconnect: the queue is parked here and
//! keeps accepting messages, up to the replay limit, until a connection
//! resumes it or the grace period ends. Every state change happens under
//! one lock, so a resume, a disconnect and an expiry never see each other
//! half done.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::ids::ClientId;
use crate::memory;
use crate::metrics::Metrics;
use crate::net::{Inbox, Overflow, Signal};
use crate::state::NodeId;

/// An unguessable, single-use token naming one session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ResumeToken(String);

impl ResumeToken {
    /// In a cluster the token ends with `.`, the client's id, `.` and the
    /// node that issued it (base64url has no `.`), so that any node can
    /// find the session: from its issuer while that lives, from its record
    /// in Redis after the issuer died.
    fn new(node: Option<&NodeId>, id: ClientId) -> ResumeToken {
        use base64::Engine;
        let bytes: [u8; 24] = rand::random();
        let mut token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        if let Some(node) = node {
            token.push('.');
            token.push_str(&id.to_hex());
            token.push('.');
            token.push_str(node.as_str());
        }
        ResumeToken(token)
    }

    /// The client and the node a cluster token names.
    fn parts(token: &str) -> Option<(ClientId, NodeId)> {
        let (_, named) = token.split_once('.')?;
        let (client, node) = named.split_once('.')?;
        Some((ClientId::parse(client)?, NodeId::parse(node)?))
    }

    /// The node that issued a token, if a node did.
    pub(crate) fn issuer(token: &str) -> Option<NodeId> {
        Some(ResumeToken::parts(token)?.1)
    }

    /// The client whose session a token names, if a node issued it.
    pub(crate) fn client(token: &str) -> Option<ClientId> {
        Some(ResumeToken::parts(token)?.0)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

enum Slot {
    /// A connection task writes the queue; `takeover` asks it to hand the
    /// queue over.
    Live {
        token: ResumeToken,
        takeover: Arc<Signal>,
    },
    /// A resume asked the live connection for the queue and waits here.
    TakingOver { waiter: oneshot::Sender<Inbox> },
    /// Disconnected unexpectedly. Cancelling `grace` wakes the grace
    /// period's task, which ends the session if this slot, by its
    /// `generation`, is still here.
    Suspended {
        token: ResumeToken,
        queue: Inbox,
        grace: CancellationToken,
        generation: u64,
    },
}

#[derive(Default)]
struct Table {
    tokens: HashMap<ResumeToken, ClientId>,
    slots: HashMap<ClientId, Slot>,
    suspensions: u64,
}

/// What a successful [`Sessions::claim`] gives the resuming connection.
pub(crate) enum Claim {
    /// The session was suspended: here is its queue.
    Ready(ClientId, Inbox),
    /// Its old connection still looks open and has been asked to hand the
    /// queue over; it arrives here.
    Wait(ClientId, oneshot::Receiver<Inbox>),
}

/// How a connection's session ended when its connection did.
pub(crate) enum Released {
    /// The session is over: the client leaves its room now.
    Ended,
    /// Kept for a resume; the caller runs the grace period.
    Suspended(Suspension),
    /// Another connection resumed it and has the queue.
    HandedOver,
}

/// A suspended session's grace period: it runs until its time passes, the
/// queue overflows or `grace` is cancelled, then asks
/// [`Sessions::expire`] whether the session is still there to end.
pub(crate) struct Suspension {
    pub(crate) grace: CancellationToken,
    pub(crate) generation: u64,
    pub(crate) overflow: Overflow,
}

pub(crate) struct Sessions {
    table: Mutex<Table>,
    replay_limit: usize,
    metrics: Arc<Metrics>,
    /// Cluster mode: this node, named in every token.
    node: Option<NodeId>,
}

impl Sessions {
    pub(crate) fn new(
        replay_limit: usize,
        metrics: Arc<Metrics>,
        node: Option<NodeId>,
    ) -> Sessions {
        Sessions {
            table: Mutex::default(),
            replay_limit,
            metrics,
            node,
        }
    }

    /// Starts a live session for a new connection; returns its token and
    /// the signal its task watches for a takeover.
    pub(crate) fn open(&self, id: ClientId) -> (ResumeToken, Arc<Signal>) {
        let token = ResumeToken::new(self.node.as_ref(), id);
        let takeover = Arc::new(Signal::default());
        let slot = Slot::Live {
            token: token.clone(),
            takeover: Arc::clone(&takeover),
        };
        let mut table = self.table.lock();
        table.tokens.insert(token.clone(), id);
        table.slots.insert(id, slot);
        (token, takeover)
    }

    /// Uses a token up. `None` for an unknown, used or expired token, and
    /// for the claimant's own, which it cannot resume into itself.
    pub(crate) fn claim(&self, token: &str, claimant: ClientId) -> Option<Claim> {
        let mut table = self.table.lock();
        let token = ResumeToken(token.to_owned());
        let id = *table.tokens.get(&token)?;
        if id == claimant {
            return None;
        }
        memory::remove(&mut table.tokens, &token);
        match memory::remove(&mut table.slots, &id)? {
            Slot::Live { takeover, .. } => {
                let (waiter, receiver) = oneshot::channel();
                table.slots.insert(id, Slot::TakingOver { waiter });
                takeover.raise();
                Some(Claim::Wait(id, receiver))
            }
            Slot::Suspended { queue, grace, .. } => {
                grace.cancel();
                self.metrics.sessions_suspended.fetch_sub(1, Relaxed);
                Some(Claim::Ready(id, queue))
            }
            // Not reachable: a takeover removes the token it was claimed
            // with. Put back, the claim just fails.
            taking_over @ Slot::TakingOver { .. } => {
                table.slots.insert(id, taking_over);
                None
            }
        }
    }

    /// The token of a live session, for its record in Redis.
    pub(crate) fn token_of(&self, id: ClientId) -> Option<ResumeToken> {
        match self.table.lock().slots.get(&id)? {
            Slot::Live { token, .. } => Some(token.clone()),
            _ => None,
        }
    }

    /// Voids a connection's own session after it resumed another one.
    pub(crate) fn forget(&self, id: ClientId) {
        let mut table = self.table.lock();
        // A resume of this very connection, under way, fails when its
        // waiter is dropped.
        if let Some(Slot::Live { token, .. }) = memory::remove(&mut table.slots, &id) {
            memory::remove(&mut table.tokens, &token);
        }
    }

    /// Called when a connection ends. `keep` says whether the disconnect
    /// was unexpected and the session worth resuming; one whose queue is
    /// already past the replay limit ends anyway.
    pub(crate) fn release(&self, id: ClientId, queue: Inbox, keep: bool) -> Released {
        let mut table = self.table.lock();
        let token = match memory::remove(&mut table.slots, &id) {
            Some(Slot::TakingOver { waiter }) => {
                // A resumer that gave up has dropped its end: the session
                // then ends here.
                return match waiter.send(queue) {
                    Ok(()) => Released::HandedOver,
                    Err(_) => Released::Ended,
                };
            }
            Some(Slot::Live { token, .. }) => token,
            Some(Slot::Suspended { .. }) | None => return Released::Ended,
        };
        if !keep || queue.depth() > self.replay_limit {
            memory::remove(&mut table.tokens, &token);
            return Released::Ended;
        }
        queue.set_message_limit(self.replay_limit);
        let grace = CancellationToken::new();
        let overflow = queue.overflow();
        table.suspensions += 1;
        let generation = table.suspensions;
        table.slots.insert(
            id,
            Slot::Suspended {
                token,
                queue,
                grace: grace.clone(),
                generation,
            },
        );
        self.metrics.sessions_suspended.fetch_add(1, Relaxed);
        Released::Suspended(Suspension {
            grace,
            generation,
            overflow,
        })
    }

    /// Ends a suspended session now (a kick): wakes its grace period.
    /// False if `id` is not suspended.
    pub(crate) fn cut_short(&self, id: ClientId) -> bool {
        match self.table.lock().slots.get(&id) {
            Some(Slot::Suspended { grace, .. }) => {
                grace.cancel();
                true
            }
            _ => false,
        }
    }

    /// Ends the suspension `generation` of `id` when its grace period is
    /// over; false if a resume got there first.
    pub(crate) fn expire(&self, id: ClientId, generation: u64) -> bool {
        let mut table = self.table.lock();
        match memory::remove(&mut table.slots, &id) {
            Some(Slot::Suspended {
                token,
                generation: g,
                ..
            }) if g == generation => {
                memory::remove(&mut table.tokens, &token);
                self.metrics.sessions_suspended.fetch_sub(1, Relaxed);
                true
            }
            Some(other) => {
                table.slots.insert(id, other);
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Frame;
    use crate::net::{Outbound, QueueLimits, queue};
    use crate::session::ClientIds;

    fn sessions(replay_limit: usize) -> Sessions {
        Sessions::new(replay_limit, Arc::new(Metrics::default()), None)
    }

    fn inbox(frames: usize) -> Inbox {
        let (outbox, inbox) = queue(QueueLimits {
            messages: 100,
            bytes: 1 << 20,
        });
        for n in 0..frames {
            outbox.push(Outbound::Frame(Frame::from(n.to_string())));
        }
        inbox
    }

    fn suspended(released: Released) -> Suspension {
        match released {
            Released::Suspended(suspension) => suspension,
            _ => panic!("expected a suspension"),
        }
    }

    #[test]
    fn a_suspended_session_is_claimed_once_with_its_queue() {
        let (sessions, ids) = (sessions(8), ClientIds::new());
        let (old, new) = (ids.next(), ids.next());
        let (token, _) = sessions.open(old);
        let (own, _) = sessions.open(new);
        suspended(sessions.release(old, inbox(3), true));
        assert_eq!(sessions.metrics.sessions_suspended.load(Relaxed), 1);
        assert!(
            sessions.claim(own.as_str(), new).is_none(),
            "not into itself"
        );
        match sessions.claim(token.as_str(), new) {
            Some(Claim::Ready(id, queue)) => assert_eq!((id, queue.depth()), (old, 3)),
            _ => panic!("expected the suspended queue"),
        }
        assert!(sessions.claim(token.as_str(), new).is_none(), "single use");
        assert_eq!(sessions.metrics.sessions_suspended.load(Relaxed), 0);
    }

    #[test]
    fn a_live_session_is_handed_over_by_its_connection() {
        let (sessions, ids) = (sessions(8), ClientIds::new());
        let (old, new) = (ids.next(), ids.next());
        let (token, takeover) = sessions.open(old);
        let Some(Claim::Wait(id, mut handover)) = sessions.claim(token.as_str(), new) else {
            panic!("expected to wait for the live connection");
        };
        assert_eq!(id, old);
        // Raised for the connection task to find.
        assert!(takeover.is_raised());
        assert!(matches!(
            sessions.release(old, inbox(2), false),
            Released::HandedOver
        ));
        assert_eq!(handover.try_recv().unwrap().depth(), 2);
    }

    #[test]
    fn what_is_not_kept_ends() {
        let (sessions, ids) = (sessions(2), ClientIds::new());
        let (clean, full) = (ids.next(), ids.next());
        let (token, _) = sessions.open(clean);
        assert!(matches!(
            sessions.release(clean, inbox(0), false),
            Released::Ended
        ));
        assert!(sessions.claim(token.as_str(), ids.next()).is_none());
        sessions.open(full);
        assert!(matches!(
            sessions.release(full, inbox(3), true),
            Released::Ended
        ));
    }

    #[test]
    fn expiry_loses_to_a_resume_and_a_kick_cuts_the_grace_short() {
        let (sessions, ids) = (sessions(8), ClientIds::new());
        let id = ids.next();
        let (token, _) = sessions.open(id);
        let first = suspended(sessions.release(id, inbox(0), true));
        assert!(sessions.claim(token.as_str(), ids.next()).is_some());
        assert!(first.grace.is_cancelled());
        assert!(!sessions.expire(id, first.generation), "resumed first");

        sessions.open(id);
        let second = suspended(sessions.release(id, inbox(0), true));
        assert!(!sessions.expire(id, first.generation), "a stale timer");
        assert!(sessions.cut_short(id));
        assert!(second.grace.is_cancelled());
        assert!(sessions.expire(id, second.generation));
        assert!(!sessions.cut_short(id));
    }

    #[test]
    fn a_cluster_token_names_its_client_and_node() {
        let node = NodeId::parse("n1").unwrap();
        let metrics = Arc::new(Metrics::default());
        let sessions = Sessions::new(8, metrics, Some(node.clone()));
        let id = ClientIds::new().next();
        let (token, _) = sessions.open(id);
        assert_eq!(ResumeToken::issuer(token.as_str()), Some(node));
        assert_eq!(ResumeToken::client(token.as_str()), Some(id));
        assert_eq!(sessions.token_of(id), Some(token));
        let (plain, _) = self::sessions(8).open(id);
        assert_eq!(ResumeToken::issuer(plain.as_str()), None);
        assert_eq!(ResumeToken::client(plain.as_str()), None);
    }

    #[test]
    fn a_forgotten_session_has_no_token() {
        let (sessions, ids) = (sessions(8), ClientIds::new());
        let id = ids.next();
        let (token, _) = sessions.open(id);
        sessions.forget(id);
        assert!(sessions.claim(token.as_str(), ids.next()).is_none());
    }
}
