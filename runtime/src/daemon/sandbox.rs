//! Sandbox verbs: run (write the record and /etc files, create the pod cgroup, start the
//! shim), stop (kill containers, let the shim release the namespaces), remove, status, list.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use tracing::{debug, info};

use crate::cri::{
    ContainerId, NetMode, PodSandboxConfig, PodSandboxStatus, SandboxId, SandboxState,
};
use crate::daemon::{random_id, shim_client, Runtime, SandboxEntry};
use crate::error::{Error, Result};
use crate::image::store::{to_json, write_replace};
use crate::layout::SandboxRecord;
use crate::shim::proto::Request;

fn cgroup_name(uid: &str) -> String {
    let clean: String = uid
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("pod{clean}")
}

/// True while `pid` exists and is not a zombie.
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Waits (about 2 s at most) for a shim that was told to shut down to be gone. It usually
/// is within a millisecond or two: a pidfd says exactly when; without one (kernels before
/// 5.3), poll often at first, then back off.
#[allow(unsafe_code)]
pub(crate) async fn wait_gone(pid: u32) {
    const MAX_WAIT: Duration = Duration::from_secs(2);
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd >= 0 {
        // SAFETY: the descriptor was just returned to us and is owned by nothing else.
        let fd =
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        // SAFETY: an OwnedFd stays open, and is the same descriptor, for as long as the
        // AsyncFd owns it.
        let registered = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        };
        if let Ok(fd) = registered {
            // A pidfd becomes readable when the process exits.
            let _ = tokio::time::timeout(MAX_WAIT, fd.readable()).await;
            return;
        }
    } else if std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return;
    }
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    let mut pause = Duration::from_micros(250);
    while alive(pid) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

impl Runtime {
    pub async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<SandboxId> {
        let t0 = std::time::Instant::now();
        let ms = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1e3;
        let id = random_id();
        let paths = self.paths(&id);
        let parent = config
            .cgroup_parent
            .clone()
            .unwrap_or_else(|| self.cfg.cgroup_parent.clone());
        let handler_bin = match config.runtime_handler.as_deref() {
            None | Some("") => None,
            Some(h) => Some(self.cfg.handlers.get(h).cloned().ok_or_else(|| {
                Error::UnknownRuntimeHandler {
                    handler: h.to_string(),
                }
            })?),
        };
        let record = SandboxRecord {
            handler_bin,
            id: id.clone(),
            config: config.clone(),
            created_at: Utc::now(),
            cgroup: format!(
                "{}/{}",
                parent.trim_matches('/'),
                cgroup_name(if config.uid.is_empty() {
                    &id
                } else {
                    &config.uid
                })
            ),
        };
        std::fs::create_dir_all(paths.etc()).map_err(Error::io("create directory", paths.etc()))?;
        std::fs::create_dir_all(paths.containers())
            .map_err(Error::io("create directory", paths.containers()))?;
        let hostname = if config.hostname.is_empty() {
            config.name.clone()
        } else {
            config.hostname.clone()
        };
        for (f, content) in [
            ("hosts", config.hosts.clone()),
            ("hostname", format!("{hostname}\n")),
            ("resolv.conf", config.dns.clone()),
        ] {
            let p = paths.etc().join(f);
            std::fs::write(&p, content).map_err(Error::io("write", &p))?;
        }
        // No fsync: no sandbox outlives a reboot (see `Runtime::readopt` for a cut record).
        write_replace(&paths.config(), &to_json("sandbox record", &record)?)?;
        self.cgroups.create(&record.cgroup, &Default::default())?;
        let files_ms = ms(t0);
        let t1 = std::time::Instant::now();
        // A pod-network sandbox takes a shim started ahead of need if there is one. A
        // pre-forked one's connection becomes the event subscription.
        let mut subscribed = false;
        let adopted = if config.net == NetMode::Pod {
            let preforked = self
                .preforked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            match (preforked, &self.spares) {
                (Some(p), _) => {
                    let events = self.events.clone();
                    let pid =
                        crate::daemon::spare::adopt_preforked(p, &self.cfg.data_dir, &id, events)
                            .await;
                    subscribed = pid.is_some();
                    pid
                }
                (None, Some(s)) => s.adopt(&id).await,
                (None, None) => None,
            }
        } else {
            None
        };
        let shim_pid = match adopted {
            Some(pid) => pid,
            None => self.start_shim(&id, &record).await?,
        };
        let shim_ms = ms(t1);
        let t2 = std::time::Instant::now();
        if !subscribed {
            shim_client::subscribe(id.clone(), paths.socket(), self.events.clone()).await?;
        }
        debug!(sandbox = %id, files_ms, shim_ms, spare = adopted.is_some(), subscribe_ms = ms(t2), "sandbox timings");
        info!(sandbox = %id, pod = %format!("{}/{}", config.namespace, config.name), shim_pid, "pod sandbox running");
        self.lock().sandboxes.insert(
            id.clone(),
            SandboxEntry {
                record,
                shim_pid,
                exiting_shim: 0,
                stopped: false,
                containers: BTreeSet::new(),
            },
        );
        Ok(SandboxId(id))
    }

    /// Starts `shim start` for the sandbox `id` (record written, pod cgroup created); its pid.
    /// On failure the sandbox's cgroup and directory are removed.
    async fn start_shim(&self, id: &str, record: &SandboxRecord) -> Result<u32> {
        let out = tokio::process::Command::new(&self.cfg.shim_exe)
            .arg("shim")
            .arg("start")
            .arg(&self.cfg.data_dir)
            .arg(id)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| Error::StartShim {
                exe: self.cfg.shim_exe.clone(),
                sandbox: id.to_string(),
                reason: e.to_string(),
            })?;
        if !out.status.success() {
            let reason = String::from_utf8_lossy(&out.stderr).trim().to_string();
            let _ = self.cgroups.remove(&record.cgroup);
            let _ = std::fs::remove_dir_all(&self.paths(id).dir);
            return Err(Error::StartShim {
                exe: self.cfg.shim_exe.clone(),
                sandbox: id.to_string(),
                reason,
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0))
    }

    /// Kills every container (SIGKILL: the kubelet has already run graceful stops) and
    /// shuts the shim down, which releases the namespaces. Idempotent.
    pub async fn stop_pod_sandbox(&self, id: &SandboxId) -> Result<()> {
        let (containers, pid, deferred) = {
            let idx = self.lock();
            let e = idx
                .sandboxes
                .get(&id.0)
                .ok_or_else(|| Error::SandboxNotFound { id: id.0.clone() })?;
            if e.stopped {
                return Ok(());
            }
            (e.containers.clone(), e.shim_pid, self.defers_cgroups(e))
        };
        // Whatever the shim did or could not do, nothing of the pod may keep running: kill
        // what is left in the container cgroups (a dead shim leaves orphans behind).
        let leftovers: Vec<String> = {
            let idx = self.lock();
            containers
                .iter()
                .filter_map(|c| idx.containers.get(c))
                .map(|s| s.cgroup.clone())
                .collect()
        };
        let kill_leftovers = || {
            for cg in &leftovers {
                for p in self.cgroups.procs(cg) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        };
        let paths = self.paths(&id.0);
        let release_ns = || {
            // Only `net` is pinned now; `ipc` and `uts` too by the shims of an older k1s.
            for ns in ["net", "ipc", "uts"] {
                let _ = nix::mount::umount2(&paths.ns(ns), nix::mount::MntFlags::MNT_DETACH);
            }
        };
        if pid == 0 || !alive(pid) {
            kill_leftovers();
            release_ns();
            self.mark_stopped(id, 0);
            return Ok(());
        }
        // Every container's exit came, and the cgroups are left to whoever deletes the
        // sandbox's directory, who waits for the shim's exit first and unmounts the pin the
        // shim unmounts after a `Shutdown` (`Trash::release_ops`): the shim has nothing to
        // kill, only to go, and its answer is not waited for (0.1 ms of a `run --rm`).
        let all_exited = containers.iter().all(|c| self.events.exited(c).is_some());
        if deferred && all_exited {
            let shutdown = Request::Shutdown { keep_cgroups: true };
            if shim_client::send(&id.0, &paths.socket(), &shutdown)
                .await
                .is_ok()
            {
                self.mark_stopped(id, pid);
                return Ok(());
            }
        }
        for c in containers {
            self.stop_container(&ContainerId(c), Duration::ZERO).await?;
        }
        let shutdown = Request::Shutdown {
            keep_cgroups: deferred,
        };
        let shut = shim_client::call(&id.0, &paths.socket(), &shutdown).await;
        if let Err(e) = &shut {
            debug!(sandbox = %id, error = %e, "shim already gone");
        }
        release_ns();
        // A shim that answered has killed and reaped every container; with the clean-up
        // deferred, its exit is waited for by whoever removes the cgroups (the trash).
        let exiting = deferred && shut.is_ok();
        if !exiting {
            wait_gone(pid).await;
            kill_leftovers();
        }
        self.mark_stopped(id, if exiting { pid } else { 0 });
        Ok(())
    }

    /// Records the end of `stop_pod_sandbox`: no shim serves the sandbox any more, and
    /// `exiting_shim` (0: none) is the one told to go whose exit was not waited for.
    fn mark_stopped(&self, id: &SandboxId, exiting_shim: u32) {
        if let Some(e) = self.lock().sandboxes.get_mut(&id.0) {
            e.shim_pid = 0;
            e.exiting_shim = exiting_shim;
            e.stopped = true;
        }
    }

    pub async fn remove_pod_sandbox(&self, id: &SandboxId) -> Result<()> {
        if !self.lock().sandboxes.contains_key(&id.0) {
            return Ok(());
        }
        self.stop_pod_sandbox(id).await?;
        let entry = self.lock().sandboxes.remove(&id.0);
        let Some(entry) = entry else { return Ok(()) };
        {
            let mut idx = self.lock();
            for c in &entry.containers {
                idx.containers.remove(c);
                self.events.forget(c);
            }
        }
        let cg = entry.record.cgroup.clone();
        let handler = entry.record.handler_bin.is_some();
        let deferred = self.defers_cgroups(&entry);
        let exiting_shim = entry.exiting_shim;
        let cgroups = self.cgroups.clone();
        let dir = self.paths(&id.0).dir;
        let rw = crate::layout::rw_sandbox_dir(&self.cfg.data_dir, &id.0);
        let trash = self.trash.clone();
        crate::daemon::blocking("remove sandbox", move || {
            // The writable layers first (on disk, the slow part): the trash thread deletes
            // them while the cgroups go. The record stays until the cgroups are gone, so a
            // failure leaves a sandbox that a later start finds and removes again.
            trash.discard(&rw).map_err(Error::io("remove", &rw))?;
            // Deferred, the cgroups go into the trash with the record that names them
            // (`Trash::release_sandbox`).
            if !deferred {
                // A shim cgroup of its own first, so the pod's usually goes with one rmdir
                // (no walk through the control files of every hierarchy to find the child).
                // One of an older k1s's is found by that walk.
                if let (own, true) = cgroups.shim_cgroup(&cg) {
                    cgroups.remove(&own)?;
                }
                cgroups.remove_made(&cg, handler)?;
            }
            match deferred {
                true => trash.discard_sandbox(&dir, exiting_shim),
                false => trash.discard(&dir),
            }
            .map_err(Error::io("remove", &dir))
        })
        .await?;
        info!(sandbox = %id, "pod sandbox removed");
        Ok(())
    }

    /// Whether the removal of this sandbox's cgroups is left to the trash
    /// (`RuntimeConfig::deferred_cleanup`; not for the pods of an OCI handler, whose cgroups
    /// that handler made).
    fn defers_cgroups(&self, e: &SandboxEntry) -> bool {
        self.cfg.deferred_cleanup && e.record.handler_bin.is_none()
    }

    pub async fn pod_sandbox_status(&self, id: &SandboxId) -> Result<PodSandboxStatus> {
        let idx = self.lock();
        let e = idx
            .sandboxes
            .get(&id.0)
            .ok_or_else(|| Error::SandboxNotFound { id: id.0.clone() })?;
        Ok(self.sandbox_status(e))
    }

    /// The sandbox of the pod with UID `uid` (the newest if several), looked up without the
    /// per-sandbox status checks a full list makes: a new pod asks this once, whatever the
    /// number of pods.
    pub async fn pod_sandbox_by_uid(&self, uid: &str) -> Result<Option<PodSandboxStatus>> {
        let idx = self.lock();
        Ok(idx
            .sandboxes
            .values()
            .filter(|e| e.record.config.uid == uid)
            .max_by_key(|e| e.record.created_at)
            .map(|e| self.sandbox_status(e)))
    }

    pub async fn list_pod_sandboxes(&self) -> Result<Vec<PodSandboxStatus>> {
        let idx = self.lock();
        Ok(idx
            .sandboxes
            .values()
            .map(|e| self.sandbox_status(e))
            .collect())
    }

    fn sandbox_status(&self, e: &SandboxEntry) -> PodSandboxStatus {
        let alive = e.shim_pid != 0 && alive(e.shim_pid);
        let netns: Option<PathBuf> = (e.record.config.net == NetMode::Pod && alive).then(|| {
            // The bind mount lives in the mount namespace that created it; a daemon restarted
            // in another one (e.g. a fresh `unshare --mount`) sees a plain file there, so it
            // reaches the namespace through the shim, which holds it.
            let bound = self.paths(&e.record.id).ns("net");
            if is_nsfs(&bound) {
                bound
            } else {
                PathBuf::from(format!("/proc/{}/ns/net", e.shim_pid))
            }
        });
        PodSandboxStatus {
            id: SandboxId(e.record.id.clone()),
            config: e.record.config.clone(),
            state: if alive {
                SandboxState::Ready
            } else {
                SandboxState::NotReady
            },
            created_at: e.record.created_at,
            shim_pid: if alive { e.shim_pid } else { 0 },
            netns_path: netns,
        }
    }
}

/// Whether `path` is a namespace file (nsfs), i.e. the bind mount is visible here.
fn is_nsfs(path: &std::path::Path) -> bool {
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 == NSFS_MAGIC)
}
