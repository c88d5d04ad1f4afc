//! Durable object storage on sled 0.34 with a global revision (the resourceVersion).
//!
//! Owns: the sled trees (`objects`, `events`, `chunks`, `meta`), the single writer thread with
//! group commit, and the in-memory watch hub fed from commits. Does not own: any Kubernetes
//! semantics beyond "a JSON object with `metadata.resourceVersion`"; defaulting, validation and
//! preconditions other than resourceVersion live in the registry.
//!
//! Durability: a write is answered only after its batch is committed in one sled transaction,
//! `Db::flush()` returned, and the `db` file was `fdatasync`ed through our own descriptor
//! (sled's flush only does `sync_file_range`). Values are chunked below sled's blob threshold
//! (see `codec`) so every byte goes through that synced file. Reads see only acknowledged
//! state: batches applied but not yet synced are hidden behind their pre-images (see `pending`).
//!
//! Volatile keys (Events, see `VOLATILE`) live in memory only, as DESIGN allows: they take
//! revisions, watch events and preconditions like any key, but never touch sled, so a batch of
//! Events alone is acknowledged without an fsync. They are gone after a restart (upstream
//! expires them after an hour anyway); the revision then jumps past any a volatile write may
//! have handed out (`VOLATILE_RESERVE`), and a watch of them from before the restart gets 410
//! so the client lists again.

mod codec;
mod pending;
mod watch;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use pending::{Pending, PendingView};
pub use watch::{EventType, WatchEvent, WatchHub, WatchStart};
use writer::{Op, WriteReq};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    #[error("resourceVersion precondition failed for {key}: expected {expected}, have {actual}")]
    Conflict {
        key: String,
        expected: u64,
        actual: u64,
    },
    #[error("failed to open the store at {path}: {source}")]
    Open { path: PathBuf, source: sled::Error },
    #[error("store i/o failed: {0}")]
    Io(String),
    #[error("stored object {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("too old resource version: {requested} ({oldest})")]
    Expired { requested: u64, oldest: u64 },
    #[error("the store is shutting down")]
    Closed,
}

/// Tuning knobs; the defaults suit an edge device.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    /// sled page cache in bytes.
    pub cache_capacity: u64,
    /// Events kept in memory for watch resumption: at most this many...
    pub watch_window: usize,
    /// ...holding at most this many bytes of JSON.
    pub watch_window_bytes: usize,
    /// Events kept on disk (the event log); older ones are compacted away.
    pub event_log_retention: u64,
}

impl StoreConfig {
    pub fn new(path: &Path) -> Self {
        StoreConfig {
            path: path.to_path_buf(),
            cache_capacity: 4 * 1024 * 1024,
            watch_window: 4096,
            watch_window_bytes: 4 * 1024 * 1024,
            event_log_retention: 10_000,
        }
    }
}

pub(crate) struct Trees {
    pub db: sled::Db,
    pub objects: sled::Tree,
    pub events: sled::Tree,
    pub chunks: sled::Tree,
    pub meta: sled::Tree,
}

/// Key prefixes kept in memory only: core/v1 Events (events.k8s.io shares their storage).
const VOLATILE: &[&str] = &["//events/"];

/// How far the revision jumps at start-up: more than the volatile writes the writer lets pass
/// between two durable records of the revision (it forces one after half of this).
pub(crate) const VOLATILE_RESERVE: u64 = 1000;

pub(crate) fn is_volatile(key: &str) -> bool {
    VOLATILE.iter().any(|p| key.starts_with(p))
}

/// Whether a scan or watch of `prefix` can meet volatile keys.
fn reaches_volatile(prefix: &str) -> bool {
    VOLATILE
        .iter()
        .any(|p| prefix.starts_with(p) || p.starts_with(prefix))
}

/// A volatile object: its JSON text and when it was last written.
#[derive(Clone)]
pub(crate) struct Kept {
    pub text: Bytes,
    pub at: std::time::Instant,
}

/// The volatile objects by key.
pub(crate) type Volatile = BTreeMap<String, Kept>;

/// The store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    trees: Arc<Trees>,
    /// Readers take it shared; the writer holds it exclusively while it applies a batch, so a
    /// reader never sees half a batch. It guards the volatile objects.
    gate: Arc<RwLock<Volatile>>,
    /// Pre-images of applied batches that are not yet durable.
    pending: Arc<Pending>,
    tx: mpsc::Sender<WriteReq>,
    hub: Arc<WatchHub>,
    /// The revision at start-up: watches of volatile keys from before it are expired.
    boot_rev: u64,
}

pub(crate) const REV_KEY: &[u8] = b"revision";

fn obj_chunk_prefix(key: &str) -> Vec<u8> {
    let mut p = b"o".to_vec();
    p.extend_from_slice(key.as_bytes());
    p
}

impl Store {
    /// Open (or create) the store and start its writer thread. `fatal` is cancelled when the
    /// store hits an I/O error: the process must then stop and be restarted.
    pub fn open(cfg: StoreConfig, fatal: CancellationToken) -> Result<Store, StoreError> {
        std::fs::create_dir_all(&cfg.path).map_err(|e| StoreError::Io(e.to_string()))?;
        let db = open_db(&cfg)?;
        let open = |name: &str| {
            db.open_tree(name).map_err(|source| StoreError::Open {
                path: cfg.path.clone(),
                source,
            })
        };
        let trees = Arc::new(Trees {
            objects: open("objects")?,
            events: open("events")?,
            chunks: open("chunks")?,
            meta: open("meta")?,
            db: db.clone(),
        });
        let durable_rev = match trees.meta.get(REV_KEY).map_err(io)? {
            Some(v) if v.len() == 8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&v);
                u64::from_be_bytes(b)
            }
            _ => 0,
        };
        // Volatile writes after the last durable record of the revision are lost; never hand
        // out their revisions again.
        let rev = if durable_rev == 0 {
            0
        } else {
            durable_rev + VOLATILE_RESERVE
        };
        let volatile = writer::take_volatile(&trees)?;
        let data_file = cfg.path.join("db");
        if rev != durable_rev {
            writer::record_revision(&trees, rev, &data_file)?;
        }
        let hub = Arc::new(WatchHub::new(cfg.watch_window, cfg.watch_window_bytes, rev));
        writer::load_recent_events(&trees, &hub, cfg.watch_window)?;
        let gate = Arc::new(RwLock::new(volatile));
        let pending = Arc::new(Pending::default());
        let (tx, rx) = mpsc::channel(4096);
        writer::spawn(writer::Writer {
            trees: trees.clone(),
            gate: gate.clone(),
            hub: hub.clone(),
            pending: pending.clone(),
            rx,
            rev,
            data_file,
            retention: cfg.event_log_retention,
            fatal,
            volatile_since: 0,
        })?;
        Ok(Store {
            trees,
            gate,
            pending,
            tx,
            hub,
            boot_rev: rev,
        })
    }

    /// The revision of the last durable commit.
    pub fn revision(&self) -> u64 {
        self.hub.revision()
    }

    pub fn hub(&self) -> &Arc<WatchHub> {
        &self.hub
    }

    /// The stored JSON text of `key` (its chunks reassembled).
    fn read_raw(&self, key: &str, head: &[u8]) -> Result<Vec<u8>, StoreError> {
        codec::decode(&obj_chunk_prefix(key), head, |k| {
            self.trees.chunks.get(k).map(|o| o.map(|v| v.to_vec()))
        })
        .map_err(|e| StoreError::Corrupt {
            key: key.into(),
            reason: e.to_string(),
        })
    }

    fn read_value(&self, key: &str, head: &[u8]) -> Result<Value, StoreError> {
        let bytes = self.read_raw(key, head)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            key: key.into(),
            reason: e.to_string(),
        })
    }

    /// Read one object.
    pub fn get(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let parse = |text: &[u8]| {
            serde_json::from_slice(text).map_err(|e| StoreError::Corrupt {
                key: key.into(),
                reason: e.to_string(),
            })
        };
        let g = self.gate.read().map_err(|_| StoreError::Closed)?;
        let held = if is_volatile(key) {
            Held::Mem(g.get(key).map(|k| k.text.clone()))
        } else {
            Held::Sled(self.trees.objects.get(key.as_bytes()).map_err(io)?)
        };
        let view = self.view()?;
        if let Some(acked) = view.durable_state(key) {
            drop(view);
            return acked.map(|text| parse(&text)).transpose();
        }
        drop(view);
        // The gate stays held: a batch applied meanwhile could rewrite the chunks.
        match held {
            Held::Sled(Some(head)) => Ok(Some(self.read_value(key, &head)?)),
            Held::Mem(Some(text)) => Ok(Some(parse(&text)?)),
            Held::Sled(None) | Held::Mem(None) => Ok(None),
        }
    }

    fn view(&self) -> Result<PendingView<'_>, StoreError> {
        self.pending.view(|| self.hub.revision())
    }

    /// All objects whose key starts with `prefix`, in key order, starting after `start_after`,
    /// at most `limit` of them, plus the store revision they were read at.
    pub fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        mut keep: impl FnMut(&Value) -> bool,
    ) -> Result<ListPage, StoreError> {
        let page = self.scan(prefix, start_after, limit, |key, raw| {
            let obj: Value = serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt {
                key: key.into(),
                reason: e.to_string(),
            })?;
            Ok(keep(&obj).then_some(obj))
        })?;
        Ok(page)
    }

    /// As `list` without a filter, returning each object's stored JSON text unparsed (a plain
    /// LIST can splice it into the response).
    pub fn list_raw(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Page<Vec<u8>>, StoreError> {
        self.scan(prefix, start_after, limit, |_, raw| Ok(Some(raw.to_vec())))
    }

    fn scan<T>(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        mut take: impl FnMut(&str, &[u8]) -> Result<Option<T>, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        // The gate keeps transactions out and the view keeps the durable revision still for
        // the whole scan, so the page is exactly the durable state at `rev`.
        let vol = self.gate.read().map_err(|_| StoreError::Closed)?;
        let view = self.view()?;
        let rev = view.revision();
        let mut overlay = view.under(prefix);
        if let Some(s) = start_after {
            overlay.retain(|k, _| k.as_str() > s);
        }
        let range = match start_after {
            Some(s) => {
                let mut from = s.as_bytes().to_vec();
                from.push(0);
                self.trees.objects.range(from..)
            }
            None => self.trees.objects.range(prefix.as_bytes().to_vec()..),
        };
        let mem: Vec<(String, Bytes)> = if reaches_volatile(prefix) {
            let from = start_after.unwrap_or(prefix).to_string();
            vol.range(from..)
                .filter(|(k, _)| start_after.is_none_or(|s| k.as_str() > s))
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.text.clone()))
                .collect()
        } else {
            Vec::new()
        };
        let mut stored = Stored::new(range, mem, prefix)?;
        let mut items = Vec::new();
        let mut last_key = None;
        let mut more = false;
        loop {
            // Merge the stored keys with the pending ones, in key order.
            let stored_key = stored.peek_key().map(str::to_string);
            let pending_key = overlay.keys().next().cloned();
            let stored_first = match (&stored_key, &pending_key) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(sk), Some(pk)) => sk < pk,
            };
            let (key, raw) = if stored_first {
                match stored.next(self)? {
                    Some(kv) => kv,
                    None => break,
                }
            } else {
                let Some(pk) = pending_key else { break };
                if stored_key.as_ref() == Some(&pk) {
                    stored.skip()?;
                }
                match overlay.remove(&pk).flatten() {
                    Some(text) => (pk, text.to_vec()),
                    None => continue,
                }
            };
            let Some(item) = take(&key, &raw)? else {
                continue;
            };
            if let Some(l) = limit {
                if items.len() >= l {
                    more = true;
                    break;
                }
            }
            last_key = Some(key);
            items.push(item);
        }
        Ok(Page {
            items,
            revision: rev,
            continue_after: if more { last_key } else { None },
        })
    }

    async fn submit(&self, op: Op) -> Result<Value, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WriteReq { op, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Create `key`; fails with AlreadyExists. Returns the stored object (with resourceVersion).
    pub async fn create(&self, key: &str, obj: Value) -> Result<Value, StoreError> {
        self.submit(Op::Create {
            key: key.into(),
            obj,
        })
        .await
    }

    /// Replace `key` if its current revision equals `expected` (when given).
    pub async fn update(
        &self,
        key: &str,
        obj: Value,
        expected: Option<u64>,
    ) -> Result<Value, StoreError> {
        self.submit(Op::Update {
            key: key.into(),
            obj,
            expected,
        })
        .await
    }

    /// Delete `key` if its current revision equals `expected` (when given). Returns the last
    /// state, stamped with the deletion's revision.
    pub async fn delete(&self, key: &str, expected: Option<u64>) -> Result<Value, StoreError> {
        self.submit(Op::Delete {
            key: key.into(),
            expected,
        })
        .await
    }

    /// Volatile objects not written for `ttl`, with their revisions (for a delete with that
    /// precondition, so one written meanwhile stays).
    pub fn expired_volatile(&self, ttl: std::time::Duration) -> Vec<(String, u64)> {
        let Ok(vol) = self.gate.read() else {
            return Vec::new();
        };
        vol.iter()
            .filter(|(_, k)| k.at.elapsed() >= ttl)
            .map(|(key, k)| {
                let rev = serde_json::from_slice::<Value>(&k.text)
                    .map(|v| object_rev(&v))
                    .unwrap_or(0);
                (key.clone(), rev)
            })
            .collect()
    }

    /// Start watching keys under `prefix` after revision `from` (None = from now).
    pub fn watch(&self, prefix: &str, from: Option<u64>) -> Result<WatchStart, StoreError> {
        if let Some(f) = from.filter(|f| *f < self.boot_rev && reaches_volatile(prefix)) {
            // Volatile objects of before the restart are gone without DELETED events.
            return Err(StoreError::Expired {
                requested: f,
                oldest: self.boot_rev + 1,
            });
        }
        self.hub.watch(prefix, from)
    }
}

/// How long `open` waits for sled's lock on the data file.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Open sled, waiting up to `LOCK_WAIT` while its lock is taken: after a `kill -9`, a child
/// the old process was forking (a spare shim starts at idle priority) can hold a copy of the
/// locked descriptor until it execs.
fn open_db(cfg: &StoreConfig) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    let mut warned = false;
    loop {
        let res = sled::Config::new()
            .path(&cfg.path)
            .cache_capacity(cfg.cache_capacity)
            .flush_every_ms(None)
            .open();
        match res {
            // sled 0.34.7 reports a taken lock only in the message of an `Other` error.
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                if !warned {
                    tracing::warn!(path = %cfg.path.display(), "the store is locked; waiting for its holder to let go");
                    warned = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            res => {
                return res.map_err(|source| StoreError::Open {
                    path: cfg.path.clone(),
                    source,
                })
            }
        }
    }
}

/// An object as held by the store when a read starts.
enum Held {
    /// A sled head (chunks to reassemble).
    Sled(Option<sled::IVec>),
    /// The JSON text of a volatile object.
    Mem(Option<Bytes>),
}

/// The stored entries under a prefix, sled's and the volatile ones merged in key order (the
/// two never share a key).
struct Stored<'p> {
    sled: sled::Iter,
    sled_next: Option<(String, sled::IVec)>,
    mem: std::iter::Peekable<std::vec::IntoIter<(String, Bytes)>>,
    prefix: &'p str,
}

impl<'p> Stored<'p> {
    fn new(
        sled: sled::Iter,
        mem: Vec<(String, Bytes)>,
        prefix: &'p str,
    ) -> Result<Self, StoreError> {
        let mut s = Stored {
            sled,
            sled_next: None,
            mem: mem.into_iter().peekable(),
            prefix,
        };
        s.pull_sled()?;
        Ok(s)
    }

    fn pull_sled(&mut self) -> Result<(), StoreError> {
        self.sled_next = match self.sled.next().transpose().map_err(io)? {
            Some((k, v)) => {
                let k = String::from_utf8_lossy(&k).to_string();
                k.starts_with(self.prefix).then_some((k, v))
            }
            None => None,
        };
        Ok(())
    }

    fn sled_first(&mut self) -> Option<bool> {
        match (&self.sled_next, self.mem.peek()) {
            (None, None) => None,
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (Some((s, _)), Some((m, _))) => Some(s < m),
        }
    }

    fn peek_key(&mut self) -> Option<&str> {
        match self.sled_first()? {
            true => self.sled_next.as_ref().map(|(k, _)| k.as_str()),
            false => self.mem.peek().map(|(k, _)| k.as_str()),
        }
    }

    /// The next entry's key and JSON text.
    fn next(&mut self, store: &Store) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        match self.sled_first() {
            None => Ok(None),
            Some(true) => {
                let Some((k, head)) = self.sled_next.take() else {
                    return Ok(None);
                };
                self.pull_sled()?;
                let raw = store.read_raw(&k, &head)?;
                Ok(Some((k, raw)))
            }
            Some(false) => Ok(self.mem.next().map(|(k, v)| (k, v.to_vec()))),
        }
    }

    /// Pass over the next entry without reading it.
    fn skip(&mut self) -> Result<(), StoreError> {
        match self.sled_first() {
            Some(true) => self.pull_sled(),
            Some(false) => {
                self.mem.next();
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// A page of parsed objects.
pub type ListPage = Page<Value>;

pub struct Page<T> {
    pub items: Vec<T>,
    pub revision: u64,
    /// Key of the last item returned when more remain.
    pub continue_after: Option<String>,
}

pub(crate) fn io(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

/// The resourceVersion stored in an object, as a number.
pub fn object_rev(obj: &Value) -> u64 {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn revs(items: &[Value]) -> BTreeMap<String, u64> {
        items
            .iter()
            .map(|o| {
                let name = o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                (name, object_rev(o))
            })
            .collect()
    }

    /// While 8 writers create, update and delete overlapping keys (so batches overlap in the
    /// pipeline), every LIST must be a snapshot at its revision: no item newer than it, and its
    /// items plus the watch events after it give exactly the final state.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn lists_are_snapshots_while_batches_are_in_flight() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(StoreConfig::new(dir.path()), CancellationToken::new())?;
        let mut writers = Vec::new();
        for w in 0..8u64 {
            let s = store.clone();
            writers.push(tokio::spawn(async move {
                for i in 0..150u64 {
                    let name = format!("k{}", (w * 7 + i) % 40);
                    let key = format!("/t/{name}");
                    let body = json!({"metadata": {"name": name}, "v": w * 1000 + i});
                    match s.get(&key) {
                        Ok(Some(cur)) if i % 3 == 0 => {
                            let _ = s.delete(&key, Some(object_rev(&cur))).await;
                        }
                        Ok(Some(cur)) => {
                            let _ = s.update(&key, body, Some(object_rev(&cur))).await;
                        }
                        _ => {
                            let _ = s.create(&key, body).await;
                        }
                    }
                }
            }));
        }
        let mut snapshots = Vec::new();
        while !writers.iter().all(|w| w.is_finished()) {
            let page = store.list("/t/", None, None, |_| true)?;
            for o in &page.items {
                assert!(object_rev(o) <= page.revision, "item newer than its list");
            }
            snapshots.push((page.revision, revs(&page.items)));
            tokio::task::yield_now().await;
        }
        for w in writers {
            w.await?;
        }
        let last = store.list("/t/", None, None, |_| true)?;
        let want = revs(&last.items);
        assert!(snapshots.len() > 2, "too few lists taken during the writes");
        for (rev, mut state) in snapshots {
            let w = store.watch("/t/", Some(rev))?;
            for ev in w.replay.iter().filter(|e| e.rev <= last.revision) {
                let name = ev.key.trim_start_matches("/t/").to_string();
                match ev.kind {
                    EventType::Deleted => {
                        state.remove(&name);
                    }
                    _ => {
                        state.insert(name, ev.rev);
                    }
                }
            }
            assert_eq!(state, want, "list at {rev} + events != final state");
        }
        // Every acknowledged write is readable at once, and the store holds nothing pending.
        let created = store
            .create("/t/after", json!({"metadata": {"name": "after"}}))
            .await?;
        let got = store.get("/t/after")?.map(|o| object_rev(&o));
        assert_eq!(got, Some(object_rev(&created)));
        Ok(())
    }

    /// Open the store at `dir`, waiting (bounded) for a store dropped just before to let go
    /// of sled's lock.
    fn reopen(dir: &Path) -> anyhow::Result<Store> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Store::open(StoreConfig::new(dir), CancellationToken::new()) {
                Ok(s) => return Ok(s),
                Err(e) if std::time::Instant::now() > deadline => return Err(e.into()),
                Err(_) => std::thread::yield_now(),
            }
        }
    }

    /// Events live in memory: they read, list (merged with sled's keys), watch and expire
    /// like other keys, only touch sled to record the revision now and then, and are gone
    /// after a restart, where the revision jumps past every one handed out and watches of
    /// them from before the restart are expired.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn volatile_keys_stay_in_memory_and_vanish_on_restart() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(StoreConfig::new(dir.path()), CancellationToken::new())?;
        let ev = |n: &str| json!({"metadata": {"name": n, "namespace": "ns"}});
        let a = store.create("//events/ns/a", ev("a")).await?;
        store.create("//endpoints/ns/x", ev("x")).await?;
        store.create("//events/ns/b", ev("b")).await?;
        store.create("//events/nt/c", ev("c")).await?;
        let updated = store
            .update("//events/ns/a", ev("a"), Some(object_rev(&a)))
            .await?;
        let stale = store
            .update("//events/ns/a", ev("a"), Some(object_rev(&a)))
            .await;
        assert!(
            matches!(stale, Err(StoreError::Conflict { .. })),
            "{stale:?}"
        );
        let got = store.get("//events/ns/a")?.map(|o| object_rev(&o));
        assert_eq!(got, Some(object_rev(&updated)));
        assert!(
            store.trees.objects.get("//events/ns/a")?.is_none(),
            "an Event reached sled"
        );
        let names = |p: &ListPage| -> Vec<String> {
            p.items
                .iter()
                .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
                .collect()
        };
        let all = store.list("//", None, None, |_| true)?;
        assert_eq!(names(&all), ["x", "a", "b", "c"]);
        let ns = store.list("//events/ns/", None, Some(1), |_| true)?;
        assert_eq!(names(&ns), ["a"]);
        let rest = store.list("//events/ns/", ns.continue_after.as_deref(), None, |_| true)?;
        assert_eq!(names(&rest), ["b"]);
        // A long run of Events alone records the revision in sled before the start-up jump
        // could be overtaken.
        for i in 0..(VOLATILE_RESERVE * 3 / 4) {
            store.create(&format!("//events/ns/n{i}"), ev("n")).await?;
        }
        let recorded = store
            .trees
            .meta
            .get(REV_KEY)?
            .map(|v| u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])))
            .unwrap_or(0);
        let last = store.revision();
        assert!(
            recorded + VOLATILE_RESERVE > last,
            "sled records {recorded}, {last} handed out"
        );
        assert_eq!(
            store.expired_volatile(std::time::Duration::from_secs(3600)),
            vec![]
        );
        let expired = store.expired_volatile(std::time::Duration::ZERO);
        assert_eq!(expired.len() as u64, 3 + VOLATILE_RESERVE * 3 / 4);
        assert!(expired.contains(&("//events/ns/a".to_string(), object_rev(&updated))));
        // An Event stored in sled by an older k1s is taken into memory at the next start.
        store.trees.objects.insert(
            "//events/ns/old",
            &b"\0{\"metadata\":{\"name\":\"old\"}}"[..],
        )?;
        store.trees.db.flush()?;
        drop(store);
        let store = reopen(dir.path())?;
        assert!(
            store.revision() > last,
            "revision went back to {}",
            store.revision()
        );
        assert!(
            store.get("//events/ns/a")?.is_none(),
            "an Event survived a restart"
        );
        assert!(store.get("//endpoints/ns/x")?.is_some());
        assert!(store.get("//events/ns/old")?.is_some());
        assert!(store.trees.objects.get("//events/ns/old")?.is_none());
        assert!(matches!(
            store.watch("//events/", Some(last)),
            Err(StoreError::Expired { .. })
        ));
        assert!(store.watch("//endpoints/", Some(last)).is_ok());
        let next = store.create("//events/ns/a", ev("a")).await?;
        assert!(object_rev(&next) > last);
        Ok(())
    }

    /// A store whose lock is briefly held elsewhere (a child forked by a killed k1s, until it
    /// execs) opens once the holder lets go, instead of failing the restart.
    #[test]
    #[allow(unsafe_code)]
    fn open_waits_for_a_lock_held_elsewhere() -> anyhow::Result<()> {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir()?;
        let rt = tokio::runtime::Runtime::new()?;
        drop(rt.block_on(async {
            Store::open(StoreConfig::new(dir.path()), CancellationToken::new())
        })?);
        // The dropped store's threads let go of sled's lock on their own time: wait for it.
        let holder = std::fs::File::open(dir.path().join("db"))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // SAFETY: flock on a descriptor we own.
        while unsafe { libc::flock(holder.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the dropped store kept its lock"
            );
            std::thread::yield_now();
        }
        let t0 = std::time::Instant::now();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(holder);
        });
        let store = rt.block_on(async {
            Store::open(StoreConfig::new(dir.path()), CancellationToken::new())
        })?;
        assert!(
            t0.elapsed() >= std::time::Duration::from_millis(300),
            "opened while locked"
        );
        release
            .join()
            .map_err(|_| anyhow::anyhow!("release thread panicked"))?;
        drop(store);
        Ok(())
    }
}
