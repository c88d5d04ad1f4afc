//! The single writer thread and the syncer behind it (group commit, pipelined).
//!
//! The writer batches requests, checks preconditions against the trees directly, assigns
//! revisions without races, records each touched key's pre-image in `Pending` and applies the
//! batch as one sled transaction over objects + event log + chunks + revision counter. It then
//! hands the batch to the syncer and goes on with the next one. The syncer makes everything
//! applied so far durable with one `flush` + `fdatasync` of the db file, publishes the watch
//! events, drops the pre-images and only then replies. So one fsync covers every batch that
//! arrived while the previous one was syncing, and readers never wait for an fsync. A batch
//! that only touches volatile keys changes the in-memory map and is published without sled
//! and without an fsync, after the batches before it.
//!
//! On any I/O error every waiting request fails, the `fatal` token is cancelled and both
//! threads stop: sled's background flusher dies after its first error, so the process must
//! restart rather than keep serving.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use serde_json::Value;
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::codec::{self, Encoded};
use super::pending::Pending;
use super::watch::{EventType, WatchEvent, WatchHub};
use super::{
    io, is_volatile, obj_chunk_prefix, object_rev, StoreError, Trees, Volatile, REV_KEY,
    VOLATILE_RESERVE,
};

pub(crate) enum Op {
    Create {
        key: String,
        obj: Value,
    },
    Update {
        key: String,
        obj: Value,
        expected: Option<u64>,
    },
    Delete {
        key: String,
        expected: Option<u64>,
    },
}

type Reply = oneshot::Sender<Result<Value, StoreError>>;
type Replies = Vec<(Reply, Result<Value, StoreError>)>;

pub(crate) struct WriteReq {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Value, StoreError>>,
}

pub(crate) struct Writer {
    pub trees: Arc<Trees>,
    pub gate: Arc<RwLock<Volatile>>,
    pub hub: Arc<WatchHub>,
    pub pending: Arc<Pending>,
    pub rx: mpsc::Receiver<WriteReq>,
    pub rev: u64,
    pub data_file: PathBuf,
    pub retention: u64,
    pub fatal: CancellationToken,
    /// Revisions handed out to volatile writes since the revision was last recorded in sled.
    pub volatile_since: u64,
}

const MAX_BATCH: usize = 512;

/// A batch applied, waiting for the syncer: its events (empty when every request of it
/// failed), its last revision, whether it wrote to sled (and so needs the fsync) and the
/// replies to send once durable.
struct Applied {
    events: Vec<WatchEvent>,
    rev: u64,
    sync: bool,
    replies: Replies,
}

struct Syncer {
    trees: Arc<Trees>,
    hub: Arc<WatchHub>,
    pending: Arc<Pending>,
    rx: std_mpsc::Receiver<Applied>,
    sync_file: File,
    fatal: CancellationToken,
}

pub(crate) fn spawn(w: Writer) -> Result<(), StoreError> {
    let sync_file = File::open(&w.data_file).map_err(|e| {
        StoreError::Io(format!(
            "cannot open the store data file {} for fdatasync: {e}",
            w.data_file.display()
        ))
    })?;
    let (tx, rx) = std_mpsc::channel();
    let syncer = Syncer {
        trees: w.trees.clone(),
        hub: w.hub.clone(),
        pending: w.pending.clone(),
        rx,
        sync_file,
        fatal: w.fatal.clone(),
    };
    std::thread::Builder::new()
        .name("k1s-store-sync".into())
        .spawn(move || syncer.run())
        .map_err(|e| StoreError::Io(format!("failed to start the store syncer: {e}")))?;
    std::thread::Builder::new()
        .name("k1s-store-writer".into())
        .spawn(move || w.run(tx))
        .map(|_| ())
        .map_err(|e| StoreError::Io(format!("failed to start the store writer: {e}")))
}

impl Syncer {
    fn run(self) {
        while let Ok(first) = self.rx.recv() {
            let mut items = vec![first];
            items.extend(self.rx.try_iter());
            if items.iter().any(|a| a.sync) {
                if let Err(e) = self.sync() {
                    tracing::error!(error = %e, "store sync failed; stopping so a supervisor can restart k1s");
                    self.fatal.cancel();
                    let msg = e.to_string();
                    for a in items {
                        fail_all(a.replies, &msg);
                    }
                    // Fail whatever the writer still sends until it sees `fatal` and stops.
                    while let Ok(a) = self.rx.recv() {
                        fail_all(a.replies, &msg);
                    }
                    return;
                }
            }
            for a in items {
                if !a.events.is_empty() {
                    let (events, rev) = (a.events, a.rev);
                    let released = self.pending.release(rev, || self.hub.publish(events, rev));
                    if let Err(e) = released {
                        tracing::error!(error = %e, "store state poisoned; stopping");
                        self.fatal.cancel();
                        fail_all(a.replies, &e.to_string());
                        continue;
                    }
                }
                for (tx, r) in a.replies {
                    let _ = tx.send(r);
                }
            }
        }
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.trees.db.flush().map_err(io)?;
        self.sync_file
            .sync_data()
            .map_err(|e| StoreError::Io(format!("fdatasync of the store failed: {e}")))
    }
}

fn event_chunk_prefix(rev: u64) -> Vec<u8> {
    let mut p = b"e".to_vec();
    p.extend_from_slice(&rev.to_be_bytes());
    p
}

fn encode_event(ev: &WatchEvent, body: &[u8]) -> Encoded {
    let enc = codec::encode(&event_chunk_prefix(ev.rev), body);
    let mut head = vec![ev.kind.to_byte()];
    head.extend_from_slice(&(ev.key.len() as u32).to_be_bytes());
    head.extend_from_slice(ev.key.as_bytes());
    head.extend_from_slice(&enc.head);
    Encoded {
        head,
        chunks: enc.chunks,
    }
}

fn decode_event(rev: u64, raw: &[u8], trees: &Trees) -> Result<WatchEvent, String> {
    let kind = raw
        .first()
        .and_then(|b| EventType::from_byte(*b))
        .ok_or("bad event type")?;
    if raw.len() < 5 {
        return Err("short event".into());
    }
    let klen = u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]) as usize;
    let key_end = 5 + klen;
    let key = raw.get(5..key_end).ok_or("short key")?;
    let body = codec::decode(&event_chunk_prefix(rev), &raw[key_end..], |k| {
        trees.chunks.get(k).map(|o| o.map(|v| v.to_vec()))
    })
    .map_err(|e| e.to_string())?;
    serde_json::from_slice::<serde::de::IgnoredAny>(&body).map_err(|e| e.to_string())?;
    let object = Bytes::from(body);
    Ok(WatchEvent {
        rev,
        kind,
        key: String::from_utf8_lossy(key).to_string(),
        object,
        prev: None,
    })
}

/// Seed the hub with the newest `window` events of the durable log.
pub(crate) fn load_recent_events(
    trees: &Trees,
    hub: &WatchHub,
    window: usize,
) -> Result<(), StoreError> {
    let mut out = Vec::new();
    for kv in trees.events.iter().rev() {
        let (k, v) = kv.map_err(io)?;
        if k.len() != 8 {
            continue;
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&k);
        let rev = u64::from_be_bytes(b);
        let ev = decode_event(rev, &v, trees).map_err(|reason| StoreError::Corrupt {
            key: format!("event {rev}"),
            reason,
        })?;
        out.push(ev);
        if out.len() >= window {
            break;
        }
    }
    out.reverse();
    hub.seed(out);
    Ok(())
}

/// Staged state of one key during a batch.
struct Staged {
    /// Chunk count of the value on disk before the batch (to delete its chunks).
    old_chunks: u32,
    /// The JSON text before the batch (None = absent), for `Pending`.
    pre: Option<Bytes>,
    /// Current value after the ops so far, parsed and as JSON text (None = deleted / absent).
    /// The text is serialized once and serves the objects tree, the event log, the watch ring
    /// and the next event's previous state.
    value: Option<(Value, Bytes)>,
    touched: bool,
}

fn to_bytes(v: &Value) -> Result<Bytes, StoreError> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| StoreError::Io(e.to_string()))
}

impl Writer {
    fn run(mut self, syncer: std_mpsc::Sender<Applied>) {
        let mut commits: u64 = 0;
        while let Some(first) = self.rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            if self.fatal.is_cancelled() {
                for r in batch {
                    let msg = "the store failed and is shutting down";
                    let _ = r.reply.send(Err(StoreError::Io(msg.into())));
                }
                return;
            }
            match self.commit(batch) {
                Ok(applied) => {
                    if let Err(std_mpsc::SendError(a)) = syncer.send(applied) {
                        fail_all(a.replies, "the store syncer stopped");
                        self.fatal.cancel();
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "store write failed; stopping so a supervisor can restart k1s");
                    self.fatal.cancel();
                    return;
                }
            }
            commits += 1;
            if commits.is_multiple_of(1024) {
                self.compact();
            }
        }
    }

    fn load(&self, key: &str) -> Result<Staged, StoreError> {
        if is_volatile(key) {
            let text = self
                .gate
                .read()
                .map_err(|_| StoreError::Closed)?
                .get(key)
                .map(|k| k.text.clone());
            let value = text
                .as_ref()
                .map(|t| {
                    serde_json::from_slice(t).map_err(|e| StoreError::Corrupt {
                        key: key.into(),
                        reason: e.to_string(),
                    })
                })
                .transpose()?;
            return Ok(Staged {
                old_chunks: 0,
                pre: text.clone(),
                value: value.zip(text),
                touched: false,
            });
        }
        match self.trees.objects.get(key.as_bytes()).map_err(io)? {
            None => Ok(Staged {
                old_chunks: 0,
                pre: None,
                value: None,
                touched: false,
            }),
            Some(head) => {
                let bytes = codec::decode(&obj_chunk_prefix(key), &head, |k| {
                    self.trees.chunks.get(k).map(|o| o.map(|v| v.to_vec()))
                })
                .map_err(|e| StoreError::Corrupt {
                    key: key.into(),
                    reason: e.to_string(),
                })?;
                let value = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    key: key.into(),
                    reason: e.to_string(),
                })?;
                let text = Bytes::from(bytes);
                Ok(Staged {
                    old_chunks: codec::chunk_count(&head),
                    pre: Some(text.clone()),
                    value: Some((value, text)),
                    touched: false,
                })
            }
        }
    }

    /// Apply one op to the staged state. Returns the reply value and the event, or a
    /// per-request error (which does not fail the batch).
    fn apply(
        &self,
        staged: &mut HashMap<String, Staged>,
        op: Op,
        rev: u64,
    ) -> Result<Result<(Value, WatchEvent), StoreError>, StoreError> {
        let key = match &op {
            Op::Create { key, .. } | Op::Update { key, .. } | Op::Delete { key, .. } => key.clone(),
        };
        if !staged.contains_key(&key) {
            let s = self.load(&key)?;
            staged.insert(key.clone(), s);
        }
        let Some(st) = staged.get_mut(&key) else {
            return Err(StoreError::Io("staged key vanished".into()));
        };
        let out = match op {
            Op::Create { mut obj, .. } => {
                if st.value.is_some() {
                    return Ok(Err(StoreError::AlreadyExists(key)));
                }
                set_rev(&mut obj, rev);
                let text = to_bytes(&obj)?;
                st.value = Some((obj.clone(), text.clone()));
                (obj, EventType::Added, text, None)
            }
            Op::Update {
                mut obj, expected, ..
            } => {
                let Some((cur, cur_text)) = st.value.as_ref() else {
                    return Ok(Err(StoreError::NotFound(key)));
                };
                let actual = object_rev(cur);
                if let Some(exp) = expected {
                    if exp != actual {
                        return Ok(Err(StoreError::Conflict {
                            key,
                            expected: exp,
                            actual,
                        }));
                    }
                }
                let prev = cur_text.clone();
                set_rev(&mut obj, rev);
                let text = to_bytes(&obj)?;
                st.value = Some((obj.clone(), text.clone()));
                (obj, EventType::Modified, text, Some(prev))
            }
            Op::Delete { expected, .. } => {
                let Some((cur, cur_text)) = st.value.take() else {
                    return Ok(Err(StoreError::NotFound(key)));
                };
                let actual = object_rev(&cur);
                if let Some(exp) = expected {
                    if exp != actual {
                        st.value = Some((cur, cur_text));
                        return Ok(Err(StoreError::Conflict {
                            key,
                            expected: exp,
                            actual,
                        }));
                    }
                }
                let mut last = cur;
                set_rev(&mut last, rev);
                let text = to_bytes(&last)?;
                (last, EventType::Deleted, text, None)
            }
        };
        st.touched = true;
        let (reply, kind, object, prev) = out;
        Ok(Ok((
            reply,
            WatchEvent {
                rev,
                kind,
                key,
                object,
                prev,
            },
        )))
    }

    /// Apply a batch to sled (not yet durable). On an I/O error every request of it fails and
    /// the error is returned.
    fn commit(&mut self, batch: Vec<WriteReq>) -> Result<Applied, StoreError> {
        let mut staged: HashMap<String, Staged> = HashMap::new();
        let mut rev = self.rev;
        let mut replies: Replies = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        let mut failure = None;
        for req in batch {
            if failure.is_some() {
                replies.push((req.reply, Err(StoreError::Io("batch aborted".into()))));
                continue;
            }
            match self.apply(&mut staged, req.op, rev + 1) {
                Ok(Ok((val, ev))) => {
                    rev += 1;
                    events.push(ev);
                    replies.push((req.reply, Ok(val)));
                }
                Ok(Err(e)) => replies.push((req.reply, Err(e))),
                Err(e) => {
                    failure = Some(e.to_string());
                    replies.push((req.reply, Err(e)));
                }
            }
        }
        if let Some(msg) = failure {
            fail_all(replies, &msg);
            return Err(StoreError::Io(msg));
        }
        let mut sync = false;
        if !events.is_empty() {
            let pre = staged
                .iter()
                .filter(|(_, s)| s.touched)
                .map(|(key, st)| (key.clone(), st.pre.clone()))
                .collect();
            let new_volatile = events.iter().filter(|e| is_volatile(&e.key)).count() as u64;
            // Record the revision in sled before the volatile writes since the last record
            // could reach the jump made at start-up.
            sync = new_volatile < events.len() as u64
                || self.volatile_since + new_volatile >= VOLATILE_RESERVE / 2;
            let result = self
                .pending
                .stage(rev, pre)
                .and_then(|()| self.write_batch(&staged, &events, rev, sync));
            if let Err(e) = result {
                fail_all(replies, &e.to_string());
                return Err(e);
            }
            self.rev = rev;
            self.volatile_since = if sync {
                0
            } else {
                self.volatile_since + new_volatile
            };
        }
        Ok(Applied {
            events,
            rev,
            sync,
            replies,
        })
    }

    /// Apply the batch: the volatile keys to the map and, with `to_sled`, the rest in one sled
    /// transaction; readers are kept out only while this runs.
    fn write_batch(
        &self,
        staged: &HashMap<String, Staged>,
        events: &[WatchEvent],
        rev: u64,
        to_sled: bool,
    ) -> Result<(), StoreError> {
        let touched = || staged.iter().filter(|(_, s)| s.touched);
        if !to_sled {
            let mut vol = self.gate.write().map_err(|_| StoreError::Closed)?;
            apply_volatile(&mut vol, touched());
            return Ok(());
        }
        // Encode outside the transaction closure (it may run more than once).
        let mut obj_writes: Vec<(&str, u32, Option<Encoded>)> = Vec::new();
        for (key, st) in touched().filter(|(k, _)| !is_volatile(k)) {
            let enc = st
                .value
                .as_ref()
                .map(|(_, text)| codec::encode(&obj_chunk_prefix(key), text));
            obj_writes.push((key.as_str(), st.old_chunks, enc));
        }
        let mut ev_writes = Vec::with_capacity(events.len());
        for ev in events.iter().filter(|e| !is_volatile(&e.key)) {
            let body = &ev.object;
            ev_writes.push((ev.rev, encode_event(ev, body)));
        }
        let mut vol = self.gate.write().map_err(|_| StoreError::Closed)?;
        apply_volatile(&mut vol, touched());
        let t = &self.trees;
        let res: Result<(), TransactionError<()>> = (&t.objects, &t.events, &t.chunks, &t.meta)
            .transaction(|(objects, evlog, chunks, meta)| {
                for (key, old_chunks, enc) in &obj_writes {
                    let prefix = obj_chunk_prefix(key);
                    for i in 0..*old_chunks {
                        chunks.remove(codec::chunk_key(&prefix, i))?;
                    }
                    match enc {
                        Some(e) => {
                            for (ck, cv) in &e.chunks {
                                chunks.insert(ck.as_slice(), cv.as_slice())?;
                            }
                            objects.insert(key.as_bytes(), e.head.as_slice())?;
                        }
                        None => {
                            objects.remove(key.as_bytes())?;
                        }
                    }
                }
                for (r, e) in &ev_writes {
                    for (ck, cv) in &e.chunks {
                        chunks.insert(ck.as_slice(), cv.as_slice())?;
                    }
                    evlog.insert(&r.to_be_bytes(), e.head.as_slice())?;
                }
                meta.insert(REV_KEY, &rev.to_be_bytes())?;
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        res.map_err(|e| StoreError::Io(format!("transaction failed: {e:?}")))
    }

    /// Drop event-log entries older than the retention window.
    fn compact(&self) {
        if self.rev <= self.retention {
            return;
        }
        let cutoff = self.rev - self.retention;
        let mut removed = 0u64;
        for kv in self.trees.events.range(..cutoff.to_be_bytes().to_vec()) {
            let Ok((k, v)) = kv else { break };
            let mut b = [0u8; 8];
            if k.len() != 8 {
                continue;
            }
            b.copy_from_slice(&k);
            let r = u64::from_be_bytes(b);
            let klen = if v.len() >= 5 {
                u32::from_be_bytes([v[1], v[2], v[3], v[4]]) as usize
            } else {
                0
            };
            let n = v.get(5 + klen..).map(codec::chunk_count).unwrap_or(0);
            for i in 0..n {
                let _ = self
                    .trees
                    .chunks
                    .remove(codec::chunk_key(&event_chunk_prefix(r), i));
            }
            let _ = self.trees.events.remove(&k);
            removed += 1;
        }
        tracing::debug!(removed, cutoff, "compacted the event log");
    }
}

fn apply_volatile<'a>(vol: &mut Volatile, touched: impl Iterator<Item = (&'a String, &'a Staged)>) {
    let at = std::time::Instant::now();
    for (key, st) in touched.filter(|(k, _)| is_volatile(k)) {
        match &st.value {
            Some((_, text)) => {
                let text = text.clone();
                vol.insert(key.clone(), super::Kept { text, at });
            }
            None => {
                vol.remove(key);
            }
        }
    }
}

/// Record `rev` as the store's revision, durably (at start-up, before the writer runs).
pub(crate) fn record_revision(
    trees: &Trees,
    rev: u64,
    data_file: &std::path::Path,
) -> Result<(), StoreError> {
    trees.meta.insert(REV_KEY, &rev.to_be_bytes()).map_err(io)?;
    trees.db.flush().map_err(io)?;
    File::open(data_file)
        .and_then(|f| f.sync_data())
        .map_err(|e| StoreError::Io(format!("fdatasync of the store failed: {e}")))
}

/// Move the volatile keys that an older k1s stored in sled into memory (and out of sled).
pub(crate) fn take_volatile(trees: &Trees) -> Result<Volatile, StoreError> {
    let mut vol = Volatile::new();
    let mut found: Vec<(sled::IVec, u32)> = Vec::new();
    for prefix in super::VOLATILE {
        for kv in trees.objects.scan_prefix(prefix.as_bytes()) {
            let (k, head) = kv.map_err(io)?;
            let key = String::from_utf8_lossy(&k).to_string();
            let text = codec::decode(&obj_chunk_prefix(&key), &head, |c| {
                trees.chunks.get(c).map(|o| o.map(|v| v.to_vec()))
            });
            // A corrupt Event is dropped: it is volatile data.
            if let Ok(text) = text {
                let text = Bytes::from(text);
                let at = std::time::Instant::now();
                vol.insert(key, super::Kept { text, at });
            }
            found.push((k, codec::chunk_count(&head)));
        }
    }
    if found.is_empty() {
        return Ok(vol);
    }
    let res: Result<(), TransactionError<()>> =
        (&trees.objects, &trees.chunks).transaction(|(objects, chunks)| {
            for (k, n) in &found {
                let prefix = obj_chunk_prefix(&String::from_utf8_lossy(k));
                for i in 0..*n {
                    chunks.remove(codec::chunk_key(&prefix, i))?;
                }
                objects.remove(k)?;
            }
            Ok::<(), ConflictableTransactionError<()>>(())
        });
    res.map_err(|e| StoreError::Io(format!("transaction failed: {e:?}")))?;
    trees.db.flush().map_err(io)?;
    Ok(vol)
}

fn fail_all(replies: Replies, msg: &str) {
    for (tx, _) in replies {
        let _ = tx.send(Err(StoreError::Io(msg.to_string())));
    }
}

fn set_rev(obj: &mut Value, rev: u64) {
    if let Some(m) = obj.as_object_mut() {
        let meta = m
            .entry("metadata")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(mm) = meta.as_object_mut() {
            mm.insert("resourceVersion".into(), Value::String(rev.to_string()));
        }
    }
}
