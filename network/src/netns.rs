//! Running code inside another network namespace. `setns(2)` changes the namespace of the
//! calling thread only, so each job gets a fresh OS thread that enters the namespace, runs, and
//! exits; no runtime worker thread ever changes namespace. Async jobs get a current-thread Tokio
//! runtime of their own on that thread, so sockets they open (netlink included) belong to the
//! target namespace. This module does not create or destroy namespaces.

use std::{
    fs::File,
    future::Future,
    path::{Path, PathBuf},
    thread,
};

use nix::sched::{setns, CloneFlags};
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// Opens a network namespace file (`/proc/<pid>/ns/net`, `/run/netns/<name>`, a bind mount).
pub fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|source| Error::OpenNetns {
        path: path.to_owned(),
        source,
    })
}

/// Whether `path` still names a namespace (a bind mount of one, or a live `/proc/<pid>/ns/*`):
/// false once the sandbox's pin is unmounted and its process gone.
pub fn is_pinned(path: &Path) -> bool {
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 == NSFS_MAGIC)
}

/// Runs the blocking `job` on a new thread inside the network namespace at `path` and returns
/// its result. Sockets opened by `job` stay in that namespace after it returns. Meant for the
/// runtime and tests too (port-forward, probes, listeners inside a pod).
pub fn run_blocking<T, F>(path: &Path, job: F) -> Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let netns = open(path)?;
    let owned = path.to_owned();
    let thread = thread::Builder::new()
        .name("k1s-netns".to_owned())
        .spawn(move || -> Result<T> {
            enter(&netns, &owned)?;
            Ok(job())
        })
        .map_err(|source| Error::NetnsThread {
            path: path.to_owned(),
            source,
        })?;
    thread.join().map_err(|_| Error::NetnsThreadDied {
        path: path.to_owned(),
    })?
}

/// Runs the async `job` inside the network namespace at `path`, on a dedicated thread with its
/// own current-thread runtime, and awaits its output without blocking the caller's runtime.
/// The outer error is about reaching the namespace; `job`'s own errors are inside `T`.
pub async fn run_async<T, F, Fut>(path: &Path, job: F) -> Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let netns = open(path)?;
    let owned: PathBuf = path.to_owned();
    let (tx, rx) = oneshot::channel();
    thread::Builder::new()
        .name("k1s-netns".to_owned())
        .spawn(move || {
            let result = enter(&netns, &owned).and_then(|()| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|source| Error::NetnsThread {
                        path: owned.clone(),
                        source,
                    })?;
                Ok(runtime.block_on(job()))
            });
            let _ = tx.send(result);
        })
        .map_err(|source| Error::NetnsThread {
            path: path.to_owned(),
            source,
        })?;
    rx.await.map_err(|_| Error::NetnsThreadDied {
        path: path.to_owned(),
    })?
}

/// Moves the calling thread into `netns`.
fn enter(netns: &File, path: &Path) -> Result<()> {
    setns(netns, CloneFlags::CLONE_NEWNET).map_err(|source| Error::EnterNetns {
        path: path.to_owned(),
        source,
    })
}
