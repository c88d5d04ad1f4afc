//! The content-addressed image store on disk: blobs by sha256, one record per image (keyed by
//! its config digest), a name -> image map, and unpacked layer snapshots keyed by diff id.
//! All methods block (file I/O); the async `Runtime` calls them through `spawn_blocking`,
//! except `resolve_cached`, which only stats files whose parsed contents it keeps.
//! Importing archives lives in `import`, unpacking in `unpack`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::debug;

use crate::cri::ImageStatus;
use crate::error::{Error, Result};
use crate::image::unpack::unpack_layer;
use crate::image::{decompress, reference};

/// Largest total file size one layer may unpack to.
pub const DEFAULT_LAYER_LIMIT: u64 = 32 << 30;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the blob as stored (possibly compressed).
    pub blob: String,
    /// Digest of the uncompressed tar.
    pub diff_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `sha256:<hex>` of the config blob.
    pub id: String,
    pub repo_tags: Vec<String>,
    /// `domain/repository@sha256:<manifest or index digest>` names of pulled images.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Bottom layer first.
    pub layers: Vec<LayerRecord>,
    pub config: ImageConfig,
    pub size: u64,
}

impl ImageRecord {
    pub fn status(&self) -> ImageStatus {
        ImageStatus {
            id: self.id.clone(),
            repo_tags: self.repo_tags.clone(),
            repo_digests: self.repo_digests.clone(),
            size_bytes: self.size,
            entrypoint: self.config.entrypoint.clone(),
            cmd: self.config.cmd.clone(),
            env: self.config.env.clone(),
            working_dir: self.config.working_dir.clone(),
            user: self.config.user.clone(),
        }
    }
}

pub struct ImageStore {
    pub(super) root: PathBuf,
    pub(super) snapshots: PathBuf,
    layer_limit: u64,
    /// Serialises read-modify-write of refs.json and image records.
    lock: Mutex<()>,
    /// Blob digests being downloaded by a pull in this process: a second pull needing the
    /// same blob waits for the first instead of downloading it again.
    downloads: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// refs.json and image records as last parsed, each with the stamp of the file it came
    /// from (see `Stamp`).
    parsed: Mutex<Parsed>,
}

/// One version of a file. Writers never change refs.json or a record in place: they write a
/// new file and rename it over the old one (`write_atomic`). So while a path still shows the
/// same inode, size and times, it holds what was parsed from it, and a lookup costs one
/// `stat` instead of a read and a JSON parse, whichever process (server or CLI) wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

type Refs = BTreeMap<String, String>;

#[derive(Default)]
struct Parsed {
    refs: Option<(Stamp, Arc<Refs>)>,
    /// By image id.
    records: BTreeMap<String, (Stamp, Arc<ImageRecord>)>,
}

/// Records kept parsed at most; past that the cache starts again (each image has one).
const PARSED_RECORDS_MAX: usize = 1024;

/// The answer of a lookup that may be told not to read files.
#[derive(Debug)]
pub enum Found<T> {
    Yes(T),
    No,
    /// Answering needs a file read, which the caller did not allow.
    NotCached,
}

pub(crate) fn hex_of(digest: &str) -> Result<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        })
        .ok_or_else(|| Error::InvalidArchive {
            path: PathBuf::new(),
            reason: format!("bad digest {digest:?}"),
        })
}

/// Writes `bytes` to `path` through a temporary file, fsync and rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = fs::File::create(&tmp).map_err(Error::io("create", &tmp))?;
    f.write_all(bytes).map_err(Error::io("write", &tmp))?;
    f.sync_all().map_err(Error::io("sync", &tmp))?;
    fs::rename(&tmp, path).map_err(Error::io("rename into place", path))
}

/// Replaces `path` with `bytes` through a temporary file and a rename, without fsync: atomic
/// for readers and across a crash of the writer (the page cache survives it), not across a
/// power loss. For records that a reboot makes moot anyway: the shim's container states (no
/// container survives a reboot; an unreadable state then reads as lost, see `mark_lost`), the
/// sandbox records and container configs (a cut one is discarded at open). Saves an fsync on
/// each sandbox's creation and each container's create, start and exit.
pub(crate) fn write_replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, bytes).map_err(Error::io("write", &tmp))?;
    fs::rename(&tmp, path).map_err(Error::io("rename into place", path))
}

pub(crate) fn to_json<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|source| Error::EncodeJson { what, source })
}

/// A reader that hashes what passes through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    pub count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    pub fn digest(self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

impl ImageStore {
    pub fn open(data_dir: &Path) -> Result<ImageStore> {
        let root = data_dir.join("images");
        let snapshots = data_dir.join("snapshots");
        for d in [
            root.join("blobs/sha256"),
            root.join("records"),
            root.join("tmp"),
            snapshots.clone(),
        ] {
            fs::create_dir_all(&d).map_err(Error::io("create directory", &d))?;
        }
        remove_stale_tmp(&root.join("tmp"));
        Ok(ImageStore {
            root,
            snapshots,
            layer_limit: DEFAULT_LAYER_LIMIT,
            lock: Mutex::new(()),
            downloads: Mutex::new(BTreeMap::new()),
            parsed: Mutex::new(Parsed::default()),
        })
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.root.join("blobs/sha256").join(hex_of(digest)?))
    }

    pub fn snapshot_path(&self, diff_id: &str) -> Result<PathBuf> {
        Ok(self.snapshots.join(hex_of(diff_id)?))
    }

    /// Stores everything `reader` yields as a blob; returns its digest and size.
    pub fn write_blob(&self, reader: impl Read) -> Result<(String, u64)> {
        let tmp = self.tmp_path("blob");
        let mut out = fs::File::create(&tmp).map_err(Error::io("create", &tmp))?;
        let mut hr = HashingReader::new(reader);
        io::copy(&mut hr, &mut out).map_err(Error::io("write blob", &tmp))?;
        out.sync_all().map_err(Error::io("sync", &tmp))?;
        let size = hr.count;
        let digest = hr.digest();
        let dst = self.blob_path(&digest)?;
        fs::rename(&tmp, &dst).map_err(Error::io("rename blob into place", &dst))?;
        Ok((digest, size))
    }

    /// True if the blob is already stored (a pull then skips downloading it).
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.is_file())
    }

    /// Holds the download slot of `digest` until the guard is dropped (see `downloads`).
    pub(crate) async fn download_slot(&self, digest: &str) -> DownloadSlot<'_> {
        let m = {
            let mut map = self.downloads.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(digest.to_string()).or_default().clone()
        };
        let guard = m.clone().lock_owned().await;
        DownloadSlot {
            store: self,
            digest: digest.to_string(),
            _guard: guard,
        }
    }

    /// A fresh path in the store's temporary directory (same file system as the blobs).
    pub(crate) fn tmp_path(&self, kind: &str) -> PathBuf {
        self.root.join("tmp").join(format!(
            "{kind}-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ))
    }

    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest)?;
        fs::read(&p).map_err(Error::io("read blob", &p))
    }

    /// Unpacks a layer blob into its snapshot directory unless already there; verifies that
    /// the uncompressed stream hashes to `diff_id`. Returns the snapshot path.
    /// Whether `layer` is unpacked already (its snapshot directory exists).
    pub fn is_unpacked(&self, layer: &LayerRecord) -> Result<bool> {
        Ok(self.snapshot_path(&layer.diff_id)?.is_dir())
    }

    pub fn unpack(&self, layer: &LayerRecord) -> Result<PathBuf> {
        let dst = self.snapshot_path(&layer.diff_id)?;
        if self.is_unpacked(layer)? {
            return Ok(dst);
        }
        let blob = self.blob_path(&layer.blob)?;
        let mut f = fs::File::open(&blob).map_err(Error::io("open blob", &blob))?;
        let mut magic = [0u8; 4];
        let n = f.read(&mut magic).map_err(Error::io("read blob", &blob))?;
        let f = fs::File::open(&blob).map_err(Error::io("open blob", &blob))?;
        let plain = decompress::layer_reader(&magic[..n], io::BufReader::new(f));
        let tmp = self.snapshots.join(format!(
            "tmp-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        fs::create_dir(&tmp).map_err(Error::io("create directory", &tmp))?;
        let result = (|| {
            let mut hr = HashingReader::new(plain);
            unpack_layer(&mut hr, &tmp, &layer.diff_id, self.layer_limit)?;
            io::copy(&mut hr, &mut io::sink()).map_err(Error::io("read layer", &blob))?;
            let actual = hr.digest();
            if actual != layer.diff_id {
                return Err(Error::DigestMismatch {
                    expected: layer.diff_id.clone(),
                    actual,
                });
            }
            match fs::rename(&tmp, &dst) {
                Ok(()) => Ok(()),
                Err(_) if dst.is_dir() => {
                    fs::remove_dir_all(&tmp).map_err(Error::io("remove", &tmp))
                }
                Err(e) => Err(Error::io("rename snapshot into place", &dst)(e)),
            }
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result?;
        debug!(diff_id = %layer.diff_id, path = %dst.display(), "layer snapshot ready");
        Ok(dst)
    }

    fn refs_path(&self) -> PathBuf {
        self.root.join("refs.json")
    }

    fn parsed(&self) -> std::sync::MutexGuard<'_, Parsed> {
        self.parsed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The file at `p` parsed, through `cached` when its stamp still matches; reads (one
    /// descriptor for stamp and contents, so they agree) only when `may_read`. A missing file
    /// is `Found::No`.
    fn parse_file<T: serde::de::DeserializeOwned>(
        p: &Path,
        what: &'static str,
        cached: Option<(Stamp, Arc<T>)>,
        may_read: bool,
    ) -> Result<Found<(Stamp, Arc<T>)>> {
        let meta = match fs::metadata(p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::No),
            Err(e) => return Err(Error::io("stat", p)(e)),
        };
        if let Some((stamp, v)) = cached {
            if stamp == Stamp::of(&meta) {
                return Ok(Found::Yes((stamp, v)));
            }
        }
        if !may_read {
            return Ok(Found::NotCached);
        }
        let mut f = match fs::File::open(p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::No),
            Err(e) => return Err(Error::io("read", p)(e)),
        };
        let stamp = Stamp::of(&f.metadata().map_err(Error::io("stat", p))?);
        let mut b = Vec::new();
        f.read_to_end(&mut b).map_err(Error::io("read", p))?;
        let v = serde_json::from_slice(&b).map_err(|source| Error::DecodeJson {
            what,
            path: p.to_path_buf(),
            source,
        })?;
        Ok(Found::Yes((stamp, Arc::new(v))))
    }

    /// The name -> image id map (empty when refs.json does not exist yet); None when it
    /// must be read and `may_read` is false.
    fn refs(&self, may_read: bool) -> Result<Option<Arc<Refs>>> {
        let cached = self.parsed().refs.clone();
        Ok(
            match Self::parse_file(&self.refs_path(), "image refs", cached, may_read)? {
                Found::Yes((stamp, refs)) => {
                    self.parsed().refs = Some((stamp, refs.clone()));
                    Some(refs)
                }
                Found::No => Some(Arc::new(Refs::new())),
                Found::NotCached => None,
            },
        )
    }

    fn load_refs(&self) -> Result<Refs> {
        // Reading is allowed, so there is always an answer.
        Ok(self
            .refs(true)?
            .map(|r| r.as_ref().clone())
            .unwrap_or_default())
    }

    fn record_path(&self, id: &str) -> Result<PathBuf> {
        Ok(self
            .root
            .join("records")
            .join(format!("{}.json", hex_of(id)?)))
    }

    fn record(&self, id: &str, may_read: bool) -> Result<Found<Arc<ImageRecord>>> {
        let p = self.record_path(id)?;
        let cached = self.parsed().records.get(id).cloned();
        Ok(
            match Self::parse_file(&p, "image record", cached, may_read)? {
                Found::Yes((stamp, rec)) => {
                    let mut parsed = self.parsed();
                    if parsed.records.len() >= PARSED_RECORDS_MAX {
                        parsed.records.clear();
                    }
                    parsed.records.insert(id.to_string(), (stamp, rec.clone()));
                    Found::Yes(rec)
                }
                Found::No => {
                    self.parsed().records.remove(id);
                    Found::No
                }
                Found::NotCached => Found::NotCached,
            },
        )
    }

    fn load_record(&self, id: &str) -> Result<Option<ImageRecord>> {
        match self.record(id, true)? {
            Found::Yes(rec) => Ok(Some(rec.as_ref().clone())),
            // NotCached is not returned when reading is allowed.
            Found::No | Found::NotCached => Ok(None),
        }
    }

    /// Records an image (merging names with an existing record) and points `names` at it.
    /// Names pinned to a digest (`repo@sha256:...`) go to `repo_digests`, others to
    /// `repo_tags`.
    pub fn put(&self, mut record: ImageRecord, names: &[String]) -> Result<ImageRecord> {
        let _g = self.lock.lock().map_err(|_| Error::Join {
            op: "image store lock",
        })?;
        let mut refs = self.load_refs()?;
        for n in names {
            if let Some(old) = refs.insert(n.clone(), record.id.clone()) {
                if old != record.id {
                    // Untag the previous holder of the name.
                    if let Some(mut prev) = self.load_record(&old)? {
                        prev.repo_tags.retain(|t| t != n);
                        prev.repo_digests.retain(|t| t != n);
                        let bytes = to_json("image record", &prev)?;
                        write_atomic(&self.record_path(&old)?, &bytes)?;
                    }
                }
            }
        }
        if let Some(existing) = self.load_record(&record.id)? {
            merge(&mut record.repo_tags, existing.repo_tags);
            merge(&mut record.repo_digests, existing.repo_digests);
        }
        let (digests, tags): (Vec<String>, Vec<String>) =
            names.iter().cloned().partition(|n| n.contains('@'));
        merge(&mut record.repo_tags, tags);
        merge(&mut record.repo_digests, digests);
        let bytes = to_json("image record", &record)?;
        write_atomic(&self.record_path(&record.id)?, &bytes)?;
        let refs_bytes = to_json("image refs", &refs)?;
        write_atomic(&self.refs_path(), &refs_bytes)?;
        Ok(record)
    }

    /// Finds an image by name (normalised), by `sha256:<id>`, or by a unique id prefix.
    pub fn resolve(&self, reference_or_id: &str) -> Result<Option<ImageRecord>> {
        Ok(match self.resolve_with(reference_or_id, true)? {
            Found::Yes(rec) => Some(rec.as_ref().clone()),
            // NotCached is not returned when reading is allowed.
            Found::No | Found::NotCached => None,
        })
    }

    /// `resolve` from what is already parsed, checked with a `stat` per file and without
    /// reading any (`Found::NotCached` when a file must be read, or for an id prefix).
    pub fn resolve_cached(&self, reference_or_id: &str) -> Result<Found<Arc<ImageRecord>>> {
        self.resolve_with(reference_or_id, false)
    }

    fn resolve_with(
        &self,
        reference_or_id: &str,
        may_read: bool,
    ) -> Result<Found<Arc<ImageRecord>>> {
        let Some(refs) = self.refs(may_read)? else {
            return Ok(Found::NotCached);
        };
        let r = reference_or_id.trim();
        if let Some(hexpart) = r
            .strip_prefix("sha256:")
            .or_else(|| (r.len() >= 12 && r.bytes().all(|b| b.is_ascii_hexdigit())).then_some(r))
        {
            if hexpart.len() == 64 {
                return self.record(&format!("sha256:{hexpart}"), may_read);
            }
            if !may_read {
                return Ok(Found::NotCached);
            }
            let matches: Vec<_> = self
                .list()?
                .into_iter()
                .filter(|i| i.id[7..].starts_with(hexpart))
                .collect();
            if let [one] = matches.as_slice() {
                return Ok(Found::Yes(Arc::new(one.clone())));
            }
        }
        let Ok(name) = reference::normalize(r) else {
            return Ok(Found::No);
        };
        match refs.get(&name) {
            Some(id) => self.record(id, may_read),
            None => Ok(Found::No),
        }
    }

    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        let dir = self.root.join("records");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(Error::io("read directory", &dir))? {
            let e = e.map_err(Error::io("read directory", &dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(h) = name.strip_suffix(".json") {
                if let Some(r) = self.load_record(&format!("sha256:{h}"))? {
                    out.push(r);
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Removes a name, or (given an id) the image and all its names. Blobs and snapshots are
    /// kept: containers may use them (`prune` collects the ones nothing uses).
    pub fn remove(&self, reference_or_id: &str) -> Result<()> {
        let Some(rec) = self.resolve(reference_or_id)? else {
            return Err(Error::ImageNotFound {
                reference: reference_or_id.to_string(),
            });
        };
        let _g = self.lock.lock().map_err(|_| Error::Join {
            op: "image store lock",
        })?;
        let mut refs = self.load_refs()?;
        let by_name = reference::normalize(reference_or_id)
            .ok()
            .filter(|n| refs.get(n) == Some(&rec.id));
        let (tags, digests) = match &by_name {
            Some(n) => {
                refs.remove(n);
                let tags: Vec<String> = rec.repo_tags.iter().filter(|t| *t != n).cloned().collect();
                let mut digests: Vec<String> = rec
                    .repo_digests
                    .iter()
                    .filter(|t| *t != n)
                    .cloned()
                    .collect();
                if tags.is_empty() {
                    // Like `docker rmi`: untagging the last tag drops the digest names too.
                    for d in digests.drain(..) {
                        refs.remove(&d);
                    }
                }
                (tags, digests)
            }
            None => {
                refs.retain(|_, id| *id != rec.id);
                (Vec::new(), Vec::new())
            }
        };
        let refs_bytes = to_json("image refs", &refs)?;
        write_atomic(&self.refs_path(), &refs_bytes)?;
        let rp = self.record_path(&rec.id)?;
        if tags.is_empty() && digests.is_empty() {
            fs::remove_file(&rp).map_err(Error::io("remove", &rp))?;
        } else {
            let rec = ImageRecord {
                repo_tags: tags,
                repo_digests: digests,
                ..rec
            };
            let bytes = to_json("image record", &rec)?;
            write_atomic(&rp, &bytes)?;
        }
        Ok(())
    }
}

/// Removes temporary files nobody has written to for an hour: downloads or imports cut short
/// by a crash. (Live ones, also of another process on the same store, are written to
/// continuously.)
fn remove_stale_tmp(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(3600));
        if stale && e.file_type().is_ok_and(|t| t.is_file()) {
            debug!(path = %e.path().display(), "removing stale temporary file");
            let _ = fs::remove_file(e.path());
        }
    }
}

pub(crate) struct DownloadSlot<'a> {
    store: &'a ImageStore,
    digest: String,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for DownloadSlot<'_> {
    fn drop(&mut self) {
        let mut map = self
            .store
            .downloads
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Forget the slot unless another pull holds a handle to it (it is waiting on it).
        if map
            .get(&self.digest)
            .is_some_and(|m| Arc::strong_count(m) <= 2)
        {
            map.remove(&self.digest);
        }
    }
}

fn merge(into: &mut Vec<String>, more: Vec<String>) {
    for n in more {
        if !into.contains(&n) {
            into.push(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id_hex: char) -> ImageRecord {
        ImageRecord {
            id: format!("sha256:{}", id_hex.to_string().repeat(64)),
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            layers: Vec::new(),
            config: ImageConfig {
                cmd: vec!["sh".into()],
                ..Default::default()
            },
            size: 1,
        }
    }

    fn cached(store: &ImageStore, r: &str) -> &'static str {
        match store.resolve_cached(r).expect("resolve_cached") {
            Found::Yes(_) => "yes",
            Found::No => "no",
            Found::NotCached => "not cached",
        }
    }

    /// A lookup answered from the parsed cache must follow every replacement of refs.json
    /// or a record, whoever made it (here another store on the same directory, as the CLI
    /// beside a running server).
    #[test]
    fn cached_lookups_follow_files_replaced_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = ImageStore::open(dir.path()).expect("open store");
        let cli = ImageStore::open(dir.path()).expect("open store");
        // No refs.json yet: nothing to read, so a name is known to be absent.
        assert_eq!(cached(&server, "busybox"), "no");
        cli.put(record('a'), &["docker.io/library/busybox:latest".into()])
            .expect("put");
        // refs.json appeared: it must be read first.
        assert_eq!(cached(&server, "busybox"), "not cached");
        let rec = server.resolve("busybox").expect("resolve").expect("found");
        assert_eq!(rec.config.cmd, vec!["sh".to_string()]);
        assert_eq!(cached(&server, "busybox"), "yes");
        assert_eq!(cached(&server, "docker.io/library/busybox:latest"), "yes");
        assert_eq!(cached(&server, "alpine"), "no");
        // The CLI retags the name to another image: refs.json is replaced.
        cli.put(record('b'), &["docker.io/library/busybox:latest".into()])
            .expect("put");
        assert_eq!(cached(&server, "busybox"), "not cached");
        let rec = server.resolve("busybox").expect("resolve").expect("found");
        assert_eq!(rec.id, record('b').id);
        // ... and removes it: the name is gone without any read.
        cli.remove(&record('b').id).expect("remove");
        assert_eq!(cached(&server, "busybox"), "not cached");
        assert!(server.resolve("busybox").expect("resolve").is_none());
        assert_eq!(cached(&server, "busybox"), "no");
        assert_eq!(cached(&server, &record('b').id), "no");
    }
}
