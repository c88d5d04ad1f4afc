//! `Runtime`: the async, in-daemon side of the runtime. Holds the index of sandboxes and
//! containers, spawns one shim per sandbox (`<shim_exe> shim start ...`, never a fork), talks
//! to shims over their sockets, and re-adopts shims found on disk at start-up. Split by
//! verb: `sandbox` (run/stop/remove/status), `container` (create/start/stop/remove/status/
//! exec), `images`, `cri_impl` (the `ContainerRuntime` trait).

mod container;
pub use exec::{resize_pty, ExecOptions, ExecSession};
mod attach;
pub use attach::AttachSession;
mod cri_impl;
mod exec;
mod images;
mod sandbox;
pub mod shim_client;
mod spare;
mod trash;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use tracing::{debug, info, warn};

use crate::cgroups::Cgroups;
use crate::container::spec::ContainerSpec;
use crate::cri::{ContainerExitEvent, ContainerState};
use crate::error::{Error, Result};
use crate::image::{ImageStore, RegistryConfig};
use crate::layout::{SandboxPaths, SandboxRecord};
use crate::shim::proto::Request;

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Root of everything the runtime stores (see the crate docs for the layout).
    pub data_dir: PathBuf,
    /// Binary run as `<shim_exe> shim start|exec ...`: the k1s binary itself in production
    /// (`/proc/self/exe`), a test helper in tests.
    pub shim_exe: PathBuf,
    /// Cgroup parent for pods without their own `cgroup_parent`.
    pub cgroup_parent: String,
    /// RuntimeClass handler name -> OCI runtime binary (`runc`, `crun`).
    pub handlers: BTreeMap<String, PathBuf>,
    /// Registry settings for pulls (insecure registries, timeouts, parallelism).
    pub registry: RegistryConfig,
    /// Keep one shim started ahead of need for the next pod-network sandbox (see
    /// `daemon::spare`). For the long-running owner of the data dir only; off by default.
    pub spare_shim: bool,
    /// For a command about to exit (the CLI): removals only rename into the trash, which
    /// no thread of this process deletes, and a removed sandbox's cgroups, and the wait for
    /// its shim's exit that their removal needs, go to the trash with its record
    /// (`Trash::release_sandbox`). `Runtime::trash_after_exit` then leaves all of it to the
    /// command's exit helper, after its exit. Off by default: the server deletes the trash in
    /// a background thread and removes a sandbox's cgroups before its removal returns.
    pub deferred_cleanup: bool,
}

impl RuntimeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> RuntimeConfig {
        RuntimeConfig {
            data_dir: data_dir.into(),
            shim_exe: PathBuf::from("/proc/self/exe"),
            cgroup_parent: "k1s".to_string(),
            handlers: ["runc", "crun"]
                .iter()
                .filter_map(|h| {
                    [
                        "/usr/local/sbin",
                        "/usr/local/bin",
                        "/usr/sbin",
                        "/usr/bin",
                        "/sbin",
                        "/bin",
                    ]
                    .iter()
                    .map(|d| Path::new(d).join(h))
                    .find(|p| p.is_file())
                    .map(|p| (h.to_string(), p))
                })
                .collect(),
            registry: RegistryConfig::default(),
            spare_shim: false,
            deferred_cleanup: false,
        }
    }
}

pub(crate) struct SandboxEntry {
    pub record: SandboxRecord,
    pub shim_pid: u32,
    /// The shim told to shut down and not waited for (deferred clean-up): its exit is waited
    /// for before the pod cgroup's removal.
    pub exiting_shim: u32,
    /// `stop_pod_sandbox` ran to its end: nothing of the pod runs any more, and a second stop
    /// (`remove_pod_sandbox` stops first) has nothing to do. It read every container
    /// cgroup's process list for leftovers again: 0.1 ms of each `run --rm`.
    pub stopped: bool,
    pub containers: BTreeSet<String>,
}

#[derive(Default)]
pub(crate) struct Index {
    pub sandboxes: BTreeMap<String, SandboxEntry>,
    pub containers: BTreeMap<String, Arc<ContainerSpec>>,
}

pub struct Runtime {
    pub(crate) cfg: RuntimeConfig,
    pub(crate) images: Arc<ImageStore>,
    pub(crate) cgroups: Cgroups,
    pub(crate) index: Mutex<Index>,
    pub(crate) events: ExitEvents,
    pub(crate) trash: trash::Trash,
    pub(crate) spares: Option<Arc<spare::Spares>>,
    /// A spare shim forked by this (CLI) process before it started threads, for its sandbox.
    pub(crate) preforked: Mutex<Option<crate::shim::Preforked>>,
}

/// The exit events of every shim this runtime subscribed to, and the final state each
/// carried. Exited is final (a restart is a new container), so a container whose exit was seen
/// needs no shim call to tell its state.
#[derive(Clone)]
pub(crate) struct ExitEvents {
    tx: broadcast::Sender<ContainerExitEvent>,
    exited: Arc<Mutex<BTreeMap<String, ContainerState>>>,
}

impl ExitEvents {
    fn new() -> ExitEvents {
        ExitEvents {
            tx: broadcast::channel(1024).0,
            exited: Arc::default(),
        }
    }

    fn exited_map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ContainerState>> {
        self.exited.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ContainerExitEvent> {
        self.tx.subscribe()
    }

    /// Records the event's state, then tells the subscribers.
    pub fn publish(&self, ev: ContainerExitEvent) {
        if matches!(ev.state, ContainerState::Exited { .. }) {
            self.exited_map()
                .insert(ev.container_id.0.clone(), ev.state.clone());
        }
        let _ = self.tx.send(ev);
    }

    /// The final state of container `id`, if its exit event came.
    pub fn exited(&self, id: &str) -> Option<ContainerState> {
        self.exited_map().get(id).cloned()
    }

    /// Forgets removed container `id`.
    pub fn forget(&self, id: &str) {
        self.exited_map().remove(id);
    }
}

pub(crate) fn random_id() -> String {
    hex::encode(random_bytes::<32>())
}

/// `N` bytes from the kernel's random source (one `getrandom` call). Not `rand::random`: the
/// first use of the thread's generator detects the CPU's vector features, about ten CPUID
/// instructions, and a KVM guest traps each one (6 us here): 0.05 ms of a `runtime run`.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::TryRngCore;
    let mut b = [0u8; N];
    if rand::rngs::OsRng.try_fill_bytes(&mut b).is_err() {
        b = rand::random();
    }
    b
}

/// Deletes the removed containers and sandboxes waiting in the trash of the runtime rooted at
/// `runtime_dir`, now (what `k1s runtime purge-trash` runs).
pub fn purge_trash(runtime_dir: &Path) {
    trash::Trash::new(runtime_dir, Cgroups::detect()).purge();
}

/// Runs `f`, a short piece of file or cgroup work, off the async threads: on a blocking-pool
/// thread under a multi-thread runtime (the server). Under a current-thread runtime (a CLI
/// command, which waits for each step before the next) it runs in place: the hop to a pool
/// thread and back cost two thread switches, and the first one the thread's creation.
pub(crate) async fn blocking<T: Send + 'static>(
    op: &'static str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let single = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
    if single {
        return f();
    }
    blocking_wait(op, f).await
}

/// Like `blocking`, but always on a pool thread: for work that waits on another process (a
/// child to start, a connection from it), which must not stop the caller's other tasks.
pub(crate) async fn blocking_wait<T: Send + 'static>(
    op: &'static str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::Join { op })?
}

impl Runtime {
    /// Opens the runtime at `cfg.data_dir`, re-adopting every sandbox found on disk: live
    /// shims are reconnected (same PIDs), containers of dead shims report their last state.
    /// Must be called inside a tokio runtime.
    pub async fn new(cfg: RuntimeConfig) -> Result<Runtime> {
        let dir = cfg.data_dir.clone();
        let images = blocking("open image store", move || ImageStore::open(&dir)).await?;
        let state = crate::layout::open_state_dir(&cfg.data_dir).map_err(Error::io(
            "open state directory",
            crate::layout::state_dir(&cfg.data_dir),
        ))?;
        let sbx = crate::layout::sandboxes_dir(&cfg.data_dir);
        crate::layout::create_spread_dir(&sbx).map_err(Error::io("create directory", &sbx))?;
        let rw = cfg.data_dir.join("rw");
        crate::layout::create_spread_dir(&rw).map_err(Error::io("create directory", &rw))?;
        crate::layout::ensure_mountpoints_layer(&cfg.data_dir).map_err(Error::io(
            "create",
            crate::layout::mountpoints_layer(&cfg.data_dir),
        ))?;
        debug!(state = %state.display(), "runtime state");
        let events = ExitEvents::new();
        let cgroups = Cgroups::detect();
        let trash =
            trash::Trash::new(&cfg.data_dir, cgroups.clone()).with_thread(!cfg.deferred_cleanup);
        let spares = cfg
            .spare_shim
            .then(|| spare::Spares::new(cfg.data_dir.clone(), cfg.shim_exe.clone()));
        let rt = Runtime {
            cfg,
            images: Arc::new(images),
            cgroups,
            index: Mutex::new(Index::default()),
            events,
            trash,
            spares,
            preforked: Mutex::new(None),
        };
        if rt.trash.pending() {
            rt.trash.purge_in_background();
        }
        rt.readopt().await?;
        rt.discard_orphaned_layers();
        if let Some(s) = &rt.spares {
            s.open().await;
        }
        Ok(rt)
    }

    /// Gives the runtime a shim pre-forked by this process (`shim::prefork`): the next
    /// pod-network sandbox adopts it instead of starting a shim.
    pub fn use_preforked_shim(&self, p: crate::shim::Preforked) {
        *self.preforked.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
    }

    /// Shuts down the spare shim, if any (call when the daemon stops; pods keep running).
    pub async fn stop_spare_shim(&self) {
        if let Some(s) = &self.spares {
            s.stop().await;
        }
    }

    /// The pid of the spare shim the next pod-network sandbox would adopt, if one is ready.
    pub fn ready_spare_shim(&self) -> Option<u32> {
        self.spares.as_ref().and_then(|s| s.ready())
    }

    /// Whether removed containers or sandboxes are still being deleted in the background
    /// (a process about to exit hands that work on, see `purge_trash`).
    pub fn trash_pending(&self) -> bool {
        self.trash.pending()
    }

    /// Leaves the deletion of what waits in the trash (and of the cgroups of the sandboxes
    /// removed with `RuntimeConfig::deferred_cleanup`) to after this process's exit (see
    /// `memory::after_exit`, made by the helper of `memory::hand_off_address_space`).
    pub fn trash_after_exit(&self) {
        crate::memory::after_exit(self.trash.exit_plan());
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.cfg
    }

    pub(crate) fn paths(&self, sandbox: &str) -> SandboxPaths {
        SandboxPaths::new(&self.cfg.data_dir, sandbox)
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        // A poisoned index only means a panic elsewhere; the data is still consistent
        // enough to read, and panics are bugs we want to surface, not mask as errors here.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Throws away the writable layers of sandboxes that are gone: all of them after a reboot
    /// emptied `state`. A sandbox's directory is made before its first layer and removed
    /// before its layers, so a layer directory without one is an orphan even while other
    /// processes create and remove sandboxes.
    fn discard_orphaned_layers(&self) {
        let sbx = crate::layout::sandboxes_dir(&self.cfg.data_dir);
        let Ok(rd) = std::fs::read_dir(self.cfg.data_dir.join("rw")) else {
            return;
        };
        for e in rd.flatten() {
            if !crate::layout::is_spare_rw_dir(&e.file_name()) && !sbx.join(e.file_name()).exists()
            {
                info!(layers = %e.path().display(), "discarding the writable layers of a sandbox that is gone");
                if let Err(err) = self.trash.discard(&e.path()) {
                    warn!(layers = %e.path().display(), error = %err, "cannot discard writable layers");
                }
            }
        }
    }

    async fn readopt(&self) -> Result<()> {
        let sbx = crate::layout::sandboxes_dir(&self.cfg.data_dir);
        let rd = std::fs::read_dir(&sbx).map_err(Error::io("read directory", &sbx))?;
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let paths = self.paths(&id);
            let record: SandboxRecord = match read_json(&paths.config(), "sandbox record") {
                Ok(r) => r,
                Err(err) => {
                    // The record is written whole by a rename, without fsync: one that is
                    // there but unreadable was cut by a power loss, and with no shim
                    // answering (none survives a reboot) the sandbox is only litter. A missing
                    // record may be one being created by another process: left alone.
                    let cut = paths.config().exists();
                    if cut
                        && shim_client::call(&id, &paths.socket(), &Request::Ping)
                            .await
                            .is_err()
                    {
                        warn!(sandbox = %id, error = %err, "discarding a sandbox whose record was cut");
                        let _ = self.trash.discard(&paths.dir);
                    } else {
                        warn!(sandbox = %id, error = %err, "skipping unreadable sandbox");
                    }
                    continue;
                }
            };
            let mut containers = BTreeSet::new();
            if let Ok(rd) = std::fs::read_dir(paths.containers()) {
                for c in rd.flatten() {
                    let cid = c.file_name().to_string_lossy().into_owned();
                    match read_json::<ContainerSpec>(
                        &paths.container_config(&cid),
                        "container config",
                    ) {
                        Ok(spec) => {
                            self.lock().containers.insert(cid.clone(), Arc::new(spec));
                            containers.insert(cid);
                        }
                        Err(err) => {
                            warn!(container = %cid, error = %err, "skipping unreadable container")
                        }
                    }
                }
            }
            let alive = shim_client::call(&id, &paths.socket(), &Request::Ping).await;
            let shim_pid = match alive {
                Ok(r) => {
                    if let Err(err) =
                        shim_client::subscribe(id.clone(), paths.socket(), self.events.clone())
                            .await
                    {
                        warn!(sandbox = %id, error = %err, "cannot subscribe to shim events");
                    }
                    info!(sandbox = %id, shim_pid = r.pid, "re-adopted sandbox");
                    r.pid
                }
                Err(_) => {
                    for cid in &containers {
                        mark_lost(&paths, cid);
                    }
                    0
                }
            };
            self.lock().sandboxes.insert(
                id,
                SandboxEntry {
                    record,
                    shim_pid,
                    exiting_shim: 0,
                    stopped: false,
                    containers,
                },
            );
        }
        Ok(())
    }
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<T> {
    let b = std::fs::read(path).map_err(Error::io("read", path))?;
    serde_json::from_slice(&b).map_err(|source| Error::DecodeJson {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// A container whose shim is gone while it was running cannot have exited cleanly as far as
/// we know: record exit 255 rather than a lying 0 (moby#45800). So is one whose state cannot be
/// read (the state file is written without fsync: after a power loss it may be empty).
pub(crate) fn mark_lost(paths: &SandboxPaths, cid: &str) {
    let p = paths.container_state(cid);
    let started_at = match read_json::<ContainerState>(&p, "container state") {
        Ok(ContainerState::Running { started_at, .. }) => Some(started_at),
        Ok(ContainerState::Created) => None,
        Ok(ContainerState::Exited { .. }) => return,
        // Never created by the shim: nothing was lost.
        Err(Error::Io { ref source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return
        }
        Err(_) => None,
    };
    let lost = ContainerState::Exited {
        exit_code: 255,
        reason: crate::cri::REASON_ERROR.to_string(),
        message: "container shim exited unexpectedly".to_string(),
        started_at,
        finished_at: chrono::Utc::now(),
    };
    if let Ok(b) = serde_json::to_vec(&lost) {
        let _ = crate::image::store::write_atomic(&p, &b);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_64_hex_digits_and_never_repeat() {
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| super::random_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids
            .iter()
            .all(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())));
        let words: std::collections::HashSet<[u8; 4]> =
            (0..100).map(|_| super::random_bytes::<4>()).collect();
        assert!(words.len() > 90, "{} distinct of 100", words.len());
    }
}
