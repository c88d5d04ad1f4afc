//! The watch hub: a ring of recent committed events plus a broadcast channel.
//!
//! The writer publishes each committed batch here after it is durable. A watcher subscribes
//! and gets the ring's events after its start revision (replay) and then live events. A start
//! revision older than the ring's window is `Expired` (HTTP 410 inside the stream).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::broadcast;

use super::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
    pub fn to_byte(self) -> u8 {
        match self {
            EventType::Added => 0,
            EventType::Modified => 1,
            EventType::Deleted => 2,
        }
    }
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(EventType::Added),
            1 => Some(EventType::Modified),
            2 => Some(EventType::Deleted),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct WatchEvent {
    pub rev: u64,
    pub kind: EventType,
    pub key: String,
    /// The object as stored (JSON text): watchers without selectors splice it into their
    /// stream unparsed, and the ring stays small.
    pub object: bytes::Bytes,
    /// The state before this event (for MODIFIED), so selector watches can turn a change that
    /// leaves the selection into DELETED.
    pub prev: Option<bytes::Bytes>,
}

impl WatchEvent {
    fn size(&self) -> usize {
        self.object.len() + self.prev.as_ref().map_or(0, |p| p.len())
    }

    pub fn object_value(&self) -> Option<Value> {
        serde_json::from_slice(&self.object).ok()
    }
    pub fn prev_value(&self) -> Option<Value> {
        self.prev
            .as_ref()
            .and_then(|p| serde_json::from_slice(p).ok())
    }
}

struct Ring {
    events: VecDeque<Arc<WatchEvent>>,
    /// Every event with rev > this is in `events`.
    compacted: u64,
    /// Bytes of JSON text held by `events`.
    bytes: usize,
}

impl Ring {
    fn push(&mut self, e: Arc<WatchEvent>, cap: usize, budget: usize) {
        self.bytes += e.size();
        self.events.push_back(e);
        // Keep at least the newest event, however large.
        while self.events.len() > 1 && (self.events.len() > cap || self.bytes > budget) {
            if let Some(old) = self.events.pop_front() {
                self.bytes -= old.size();
                self.compacted = old.rev;
            }
        }
    }
}

pub struct WatchHub {
    ring: Mutex<Ring>,
    /// At most this many events...
    cap: usize,
    /// ...and this many bytes of JSON text are kept for resumption.
    budget: usize,
    tx: broadcast::Sender<Arc<WatchEvent>>,
    rev: AtomicU64,
}

/// What a new watcher gets: replayed events and the live receiver.
pub struct WatchStart {
    pub replay: Vec<Arc<WatchEvent>>,
    pub live: broadcast::Receiver<Arc<WatchEvent>>,
    pub prefix: String,
    /// Events with rev <= this were replayed or predate the watch; skip them when live.
    pub after: u64,
}

impl WatchHub {
    pub fn new(cap: usize, budget: usize, rev: u64) -> Self {
        // The channel keeps its last `capacity` events alive, so it stays smaller than the
        // ring; a watcher that falls further behind ends and resumes from the ring.
        let (tx, _) = broadcast::channel(cap.clamp(16, 1024));
        WatchHub {
            ring: Mutex::new(Ring {
                events: VecDeque::new(),
                compacted: rev,
                bytes: 0,
            }),
            cap,
            budget,
            tx,
            rev: AtomicU64::new(rev),
        }
    }

    pub fn revision(&self) -> u64 {
        self.rev.load(Ordering::Acquire)
    }

    /// Seed the ring at start-up from the durable event log (oldest first).
    pub(crate) fn seed(&self, events: Vec<WatchEvent>) {
        let Ok(mut ring) = self.ring.lock() else {
            return;
        };
        if let Some(first) = events.first() {
            ring.compacted = first.rev.saturating_sub(1);
        }
        for e in events {
            ring.push(Arc::new(e), self.cap, self.budget);
        }
    }

    /// Publish committed events (in revision order) and advance the revision.
    pub(crate) fn publish(&self, events: Vec<WatchEvent>, rev: u64) {
        let Ok(mut ring) = self.ring.lock() else {
            return;
        };
        for e in events {
            let e = Arc::new(e);
            ring.push(e.clone(), self.cap, self.budget);
            // No receivers is fine.
            let _ = self.tx.send(e);
        }
        self.rev.store(rev, Ordering::Release);
    }

    pub fn watch(&self, prefix: &str, from: Option<u64>) -> Result<WatchStart, StoreError> {
        let ring = self.ring.lock().map_err(|_| StoreError::Closed)?;
        let live = self.tx.subscribe();
        let now = self.rev.load(Ordering::Acquire);
        let from = match from {
            None => now,
            Some(f) => f,
        };
        if from < ring.compacted {
            return Err(StoreError::Expired {
                requested: from,
                oldest: ring.compacted + 1,
            });
        }
        let replay: Vec<Arc<WatchEvent>> = ring
            .events
            .iter()
            .filter(|e| e.rev > from && e.key.starts_with(prefix))
            .cloned()
            .collect();
        let after = ring.events.back().map(|e| e.rev).unwrap_or(now).max(from);
        Ok(WatchStart {
            replay,
            live,
            prefix: prefix.to_string(),
            after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(rev: u64, key: &str) -> WatchEvent {
        WatchEvent {
            rev,
            kind: EventType::Added,
            key: key.into(),
            object: bytes::Bytes::from_static(b"{}"),
            prev: None,
        }
    }

    #[test]
    fn replay_and_expiry() {
        let hub = WatchHub::new(3, 1 << 20, 0);
        hub.publish(vec![ev(1, "/a/1"), ev(2, "/b/1"), ev(3, "/a/2")], 3);
        let w = hub.watch("/a/", Some(0)).expect("watch");
        assert_eq!(
            w.replay.iter().map(|e| e.rev).collect::<Vec<_>>(),
            vec![1, 3]
        );
        hub.publish(vec![ev(4, "/a/3"), ev(5, "/a/4")], 5);
        assert!(matches!(
            hub.watch("/a/", Some(0)),
            Err(StoreError::Expired { .. })
        ));
        let w = hub.watch("/a/", Some(2)).expect("watch");
        assert_eq!(
            w.replay.iter().map(|e| e.rev).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
    }

    #[test]
    fn byte_budget_expires_old_events() {
        let hub = WatchHub::new(100, 5, 0);
        hub.publish(vec![ev(1, "/a/1"), ev(2, "/a/2"), ev(3, "/a/3")], 3);
        // Each event holds 2 bytes ("{}"): only the newest two fit in 5 bytes.
        assert!(matches!(
            hub.watch("/a/", Some(0)),
            Err(StoreError::Expired { .. })
        ));
        let w = hub.watch("/a/", Some(1)).expect("watch");
        assert_eq!(
            w.replay.iter().map(|e| e.rev).collect::<Vec<_>>(),
            vec![2, 3]
        );
    }
}
