//! Writes applied to sled but not yet durable, so readers can see around them.
//!
//! The writer applies a batch's transaction and hands the fsync to the syncer thread, then
//! goes on with the next batch. sled shows the applied state at once; readers must only see
//! durable state, so before a transaction the writer records here each touched key's value as
//! it was before the batch (its pre-image). A reader that finds an entry newer than the durable
//! revision uses the oldest such pre-image instead of what sled holds. The syncer publishes a
//! batch's events and drops its entries under the same lock, so a reader always sees a
//! revision and a set of entries that agree.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use super::StoreError;

/// Pre-images by key: (revision of the batch that changed the key, the JSON text before it,
/// `None` when the key was absent), oldest first.
type PreImages = HashMap<String, VecDeque<(u64, Option<Bytes>)>>;

#[derive(Default)]
pub(crate) struct Pending {
    by_key: Mutex<PreImages>,
}

pub(crate) struct PendingView<'a> {
    guard: MutexGuard<'a, PreImages>,
    durable: u64,
}

impl Pending {
    /// Record the pre-images of a batch whose last revision is `rev`, before applying it.
    pub fn stage(&self, rev: u64, pre: Vec<(String, Option<Bytes>)>) -> Result<(), StoreError> {
        let mut m = self.by_key.lock().map_err(|_| StoreError::Closed)?;
        for (key, old) in pre {
            m.entry(key).or_default().push_back((rev, old));
        }
        Ok(())
    }

    /// Lock the overlay and read the durable revision under the lock (`durable` must be the
    /// hub's revision, which only the syncer advances while holding this lock).
    pub fn view(&self, durable: impl FnOnce() -> u64) -> Result<PendingView<'_>, StoreError> {
        let guard = self.by_key.lock().map_err(|_| StoreError::Closed)?;
        Ok(PendingView {
            guard,
            durable: durable(),
        })
    }

    /// Run `publish` and drop every entry of revision <= `rev`, atomically for readers. The
    /// map only holds the keys of batches in flight, so a full pass is cheap.
    pub fn release(&self, rev: u64, publish: impl FnOnce()) -> Result<(), StoreError> {
        let mut m = self.by_key.lock().map_err(|_| StoreError::Closed)?;
        publish();
        m.retain(|_, q| {
            while q.front().is_some_and(|(r, _)| *r <= rev) {
                q.pop_front();
            }
            !q.is_empty()
        });
        Ok(())
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_key.lock().map(|m| m.len()).unwrap_or(0)
    }
}

impl PendingView<'_> {
    /// The durable revision this view answers for.
    pub fn revision(&self) -> u64 {
        self.durable
    }

    /// `Some(pre-image)` when `key` changed after the durable revision: the durable state of
    /// the key (`None` = absent). `None` when sled's value is durable.
    pub fn durable_state(&self, key: &str) -> Option<Option<Bytes>> {
        self.guard.get(key).and_then(|q| {
            q.iter()
                .find(|(r, _)| *r > self.durable)
                .map(|(_, pre)| pre.clone())
        })
    }

    /// The durable states of every pending key under `prefix` sorted by key, for merging into
    /// a scan.
    pub fn under(&self, prefix: &str) -> BTreeMap<String, Option<Bytes>> {
        self.guard
            .keys()
            .filter(|k| k.starts_with(prefix))
            .filter_map(|k| self.durable_state(k).map(|s| (k.clone(), s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Option<Bytes> {
        Some(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn oldest_newer_than_durable_wins_and_release_drops() {
        let p = Pending::default();
        p.stage(5, vec![("/a".into(), None), ("/b".into(), b("b0"))])
            .expect("stage");
        p.stage(7, vec![("/a".into(), b("a5"))]).expect("stage");
        {
            let v = p.view(|| 4).expect("view");
            assert_eq!(v.durable_state("/a"), Some(None));
            assert_eq!(v.durable_state("/b"), Some(b("b0")));
            assert_eq!(v.durable_state("/c"), None);
            assert_eq!(v.under("/").len(), 2);
        }
        {
            let v = p.view(|| 5).expect("view");
            assert_eq!(v.durable_state("/a"), Some(b("a5")));
            assert_eq!(v.durable_state("/b"), None);
        }
        p.release(5, || {}).expect("release");
        assert_eq!(p.len(), 1);
        p.release(7, || {}).expect("release");
        assert_eq!(p.len(), 0);
    }
}
