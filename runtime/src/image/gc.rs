//! Image garbage collection: removes the blobs and unpacked layer snapshots that no image
//! record and no existing container refers to (and, with `PruneOptions::unused_images`, first
//! the images no container uses, like `crictl rmi --prune`).
//!
//! Safe next to other users of the same store, in this process or another (`k1s server` and
//! `k1s image prune` side by side): whatever writes blobs or snapshots before recording who
//! uses them (import, pull, container creation) holds a `Lease`, a shared `flock` on
//! `images/gc.lock`, and collection takes that lock exclusively. Containers are found on
//! disk (`sandboxes/*/containers/*/config.json`), not in one process's index.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use tracing::{debug, info};

use crate::container::spec::ContainerSpec;
use crate::error::{Error, Result};
use crate::image::store::{hex_of, ImageStore};

/// Holds off garbage collection while it lives (a shared lock on `images/gc.lock`).
pub struct Lease {
    _lock: Flock<fs::File>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneOptions {
    /// Also remove images that no existing container uses (all their names go).
    pub unused_images: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneReport {
    /// `sha256:...` ids of the images removed (`unused_images` only).
    pub removed_images: Vec<String>,
    pub removed_blobs: usize,
    pub removed_snapshots: usize,
    /// Bytes of the removed files (blobs and snapshot contents).
    pub freed_bytes: u64,
}

/// What the containers on disk use: image ids and snapshot directory names.
#[derive(Default)]
struct InUse {
    images: BTreeSet<String>,
    snapshots: BTreeSet<String>,
}

fn lock(path: &Path, arg: FlockArg) -> Result<Flock<fs::File>> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(Error::io("open", path))?;
    Flock::lock(f, arg).map_err(|(_, e)| Error::sys("lock", path)(e))
}

/// Total size of the files under `path` (not following symlinks).
fn tree_size(path: &Path) -> u64 {
    let Ok(md) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| tree_size(&e.path())).sum())
        .unwrap_or(0)
}

/// Reads every container spec under `sandboxes`. A spec that cannot be read stops the
/// collection: better keep garbage than delete a running container's layers.
fn containers_in_use(sandboxes: &Path) -> Result<InUse> {
    let mut used = InUse::default();
    let Ok(rd) = fs::read_dir(sandboxes) else {
        return Ok(used);
    };
    for sb in rd.flatten() {
        let Ok(cs) = fs::read_dir(sb.path().join("containers")) else {
            continue;
        };
        for c in cs.flatten() {
            let p = c.path().join("config.json");
            let spec: ContainerSpec = match fs::read(&p) {
                Ok(b) => serde_json::from_slice(&b).map_err(|source| Error::DecodeJson {
                    what: "container config",
                    path: p.clone(),
                    source,
                })?,
                // Created but not written yet: its creator holds a lease.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("read", &p)(e)),
            };
            used.images.insert(spec.image_id.clone());
            used.snapshots.extend(
                spec.lower_dirs
                    .iter()
                    .filter_map(|d| d.file_name())
                    .map(|n| n.to_string_lossy().into_owned()),
            );
        }
    }
    Ok(used)
}

/// Removes the entries of `dir` whose names `keep` rejects; returns (count, bytes).
fn sweep(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<(usize, u64)> {
    let (mut n, mut bytes) = (0, 0);
    for e in fs::read_dir(dir).map_err(Error::io("read directory", dir))? {
        let e = e.map_err(Error::io("read directory", dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if keep(&name) {
            continue;
        }
        let p: PathBuf = e.path();
        let size = tree_size(&p);
        let removed = if e.file_type().is_ok_and(|t| t.is_dir()) {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
        removed.map_err(Error::io("remove", &p))?;
        debug!(path = %p.display(), size, "garbage collected");
        n += 1;
        bytes += size;
    }
    Ok((n, bytes))
}

impl ImageStore {
    fn gc_lock_path(&self) -> PathBuf {
        self.root.join("gc.lock")
    }

    /// A lease that keeps garbage collection away until dropped; blocks while a collection
    /// runs. Taken by import, pull and container creation.
    pub fn lease(&self) -> Result<Lease> {
        Ok(Lease {
            _lock: lock(&self.gc_lock_path(), FlockArg::LockShared)?,
        })
    }

    /// `lease` without waiting: None while a collection runs.
    pub fn try_lease(&self) -> Result<Option<Lease>> {
        match lock(&self.gc_lock_path(), FlockArg::LockSharedNonblock) {
            Ok(l) => Ok(Some(Lease { _lock: l })),
            Err(Error::Sys { source, .. }) if source == nix::errno::Errno::EWOULDBLOCK => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Collects garbage (see the module docs); `sandboxes` is the runtime's sandbox
    /// directory, where the containers that use images live. Blocks while leases are held.
    pub fn prune(&self, sandboxes: &Path, opts: PruneOptions) -> Result<PruneReport> {
        let _exclusive = lock(&self.gc_lock_path(), FlockArg::LockExclusive)?;
        let used = containers_in_use(sandboxes)?;
        let mut report = PruneReport::default();
        if opts.unused_images {
            for img in self.list()? {
                if !used.images.contains(&img.id) {
                    self.remove(&img.id)?;
                    report.removed_images.push(img.id);
                }
            }
        }
        let mut blobs = BTreeSet::new();
        let mut snapshots = used.snapshots;
        for img in self.list()? {
            blobs.insert(hex_of(&img.id)?.to_string());
            for l in &img.layers {
                blobs.insert(hex_of(&l.blob)?.to_string());
                snapshots.insert(hex_of(&l.diff_id)?.to_string());
            }
        }
        for id in &used.images {
            if let Ok(h) = hex_of(id) {
                blobs.insert(h.to_string());
            }
        }
        // Nobody holds a lease: whatever is in the temporary places is left from a crash.
        sweep(&self.root.join("tmp"), |_| false)?;
        let (n, b) = sweep(&self.root.join("blobs/sha256"), |name| blobs.contains(name))?;
        report.removed_blobs = n;
        report.freed_bytes += b;
        let (n, b) = sweep(&self.snapshots, |name| snapshots.contains(name))?;
        report.removed_snapshots = n;
        report.freed_bytes += b;
        info!(
            images = report.removed_images.len(),
            blobs = report.removed_blobs,
            snapshots = report.removed_snapshots,
            freed_bytes = report.freed_bytes,
            "image garbage collected"
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_shared_and_hold_off_collection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::open(dir.path()).expect("open store");
        let lease = store.lease().expect("lease");
        let second = store.lease().expect("a second lease");
        let exclusive = || lock(&store.gc_lock_path(), FlockArg::LockExclusiveNonblock).is_ok();
        assert!(!exclusive(), "collection ran under a lease");
        drop((lease, second));
        assert!(exclusive());
        let rep = store
            .prune(&dir.path().join("sandboxes"), PruneOptions::default())
            .expect("prune an empty store");
        assert_eq!(rep, PruneReport::default());
    }

    #[test]
    fn try_lease_gives_way_to_a_running_collection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::open(dir.path()).expect("open store");
        let collecting =
            lock(&store.gc_lock_path(), FlockArg::LockExclusive).expect("collection lock");
        assert!(store.try_lease().expect("try_lease").is_none());
        drop(collecting);
        let lease = store.try_lease().expect("try_lease");
        assert!(lease.is_some());
        assert!(
            store.try_lease().expect("try_lease").is_some(),
            "leases are shared"
        );
    }
}
