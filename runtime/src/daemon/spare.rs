//! One spare shim kept ready (`RuntimeConfig::spare_shim`): a new pod-network sandbox adopts
//! it instead of starting a shim, which takes the 5-7 ms of a process start (exec of the
//! binary, dynamic loading, namespace creation) out of the pod's start. A new spare is started
//! in the background right after one is taken. Spares live under `<data_dir>/spares/<id>/`;
//! at open, one found alive is kept and any other is shut down. A spare whose directory is
//! deleted behind its back (the whole data dir wiped, say) exits within a minute. Only the
//! daemon that owns the data dir (`k1s server`) enables this: CLI commands never touch the
//! spares.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing::{debug, warn};

use crate::daemon::{random_id, sandbox::wait_gone, shim_client};
use crate::error::{Error, Result};
use crate::shim::proto::Request;
use crate::shim::Preforked;

#[derive(Default)]
struct State {
    /// The spare ready to be adopted: (id, pid).
    ready: Option<(String, u32)>,
    /// A spare is being started.
    starting: bool,
    /// `stop` ran: a spare that finishes starting is shut down at once.
    stopped: bool,
}

pub(crate) struct Spares {
    data_dir: PathBuf,
    shim_exe: PathBuf,
    state: Mutex<State>,
}

impl Spares {
    pub(crate) fn new(data_dir: PathBuf, shim_exe: PathBuf) -> Arc<Spares> {
        Arc::new(Spares {
            data_dir,
            shim_exe,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn socket(&self, id: &str) -> PathBuf {
        crate::shim::spare_dir(&self.data_dir, id).join("shim.sock")
    }

    /// Keeps a spare left by a previous daemon if one answers, shuts down the others, removes
    /// what dead ones left, and makes sure a spare is on its way.
    pub(crate) async fn open(self: &Arc<Self>) {
        let dir = crate::layout::spares_dir(&self.data_dir);
        // One directory per spare below: spread over the filesystem (see create_spread_dir).
        if let Err(e) = crate::layout::create_spread_dir(&dir) {
            warn!(dir = %dir.display(), error = %e, "could not create the spares directory");
        }
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let alive = shim_client::call(&id, &self.socket(&id), &Request::Ping).await;
                match alive {
                    Ok(r) if self.lock().ready.is_none() => {
                        debug!(spare = %id, pid = r.pid, "kept the spare shim found at start-up");
                        self.lock().ready = Some((id, r.pid));
                    }
                    Ok(r) => self.shut_down(&id, r.pid).await,
                    Err(_) => {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        self.refill();
    }

    /// The ready spare's pid.
    pub(crate) fn ready(&self) -> Option<u32> {
        self.lock().ready.as_ref().map(|(_, pid)| *pid)
    }

    /// Hands the ready spare, if any, the sandbox `sandbox_id` (its record written); the
    /// adopted shim's pid, or None when there was no spare or it failed (the caller starts a
    /// shim). Starts the next spare either way.
    pub(crate) async fn adopt(self: &Arc<Self>, sandbox_id: &str) -> Option<u32> {
        let taken = self.lock().ready.take();
        self.refill();
        let (id, pid) = taken?;
        // Back to the normal policy before it is asked anything: under SCHED_IDLE it would
        // only read the request once a CPU has nothing else to do.
        if pid != 0 {
            if let Err(e) = crate::shim::normal_policy(pid as i32) {
                debug!(pid, error = %e, "could not restore a spare's policy");
            }
        }
        let req = Request::Adopt {
            sandbox: sandbox_id.to_string(),
            runtime_dir: None,
            subscribe: false,
        };
        match shim_client::call_ok(&id, &self.socket(&id), &req, "adopt").await {
            Ok(r) => Some(r.pid),
            Err(e) => {
                warn!(spare = %id, sandbox = %sandbox_id, error = %e, "a spare shim failed to adopt a sandbox");
                let _ = std::fs::remove_dir_all(crate::shim::spare_dir(&self.data_dir, &id));
                None
            }
        }
    }

    /// Starts a spare in the background unless one is ready or starting.
    fn refill(self: &Arc<Self>) {
        {
            let mut st = self.lock();
            if st.ready.is_some() || st.starting || st.stopped {
                return;
            }
            st.starting = true;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let started = me.start_one().await;
            let extra = {
                let mut st = me.lock();
                st.starting = false;
                match started {
                    Ok(spare) if st.stopped || st.ready.is_some() => Some(spare),
                    Ok(spare) => {
                        st.ready = Some(spare);
                        None
                    }
                    Err(e) => {
                        // No retry loop: the next sandbox starts its own shim and asks again.
                        warn!(error = %e, "failed to start a spare shim");
                        None
                    }
                }
            };
            if let Some((id, pid)) = extra {
                me.shut_down(&id, pid).await;
            }
        });
    }

    async fn start_one(&self) -> Result<(String, u32)> {
        let id = random_id();
        let dir = crate::shim::spare_dir(&self.data_dir, &id);
        std::fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
        let failed = |reason: String| Error::StartShim {
            exe: self.shim_exe.clone(),
            sandbox: format!("spare {id}"),
            reason,
        };
        let mut cmd = std::process::Command::new(&self.shim_exe);
        cmd.arg("shim")
            .arg("spare")
            .arg(&self.data_dir)
            .arg(&id)
            .stdin(std::process::Stdio::null());
        // A spare is started while a pod is being started: it runs (exec, loading, namespace
        // creation) only when the CPUs have nothing else to do, and takes the normal policy
        // back when adopted.
        let out = crate::daemon::blocking_wait("start a spare shim", move || {
            let _idle = IdleThread::enter();
            Ok(cmd.output())
        })
        .await?
        .map_err(|e| failed(e.to_string()))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(failed(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        let pid = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        debug!(spare = %id, pid, "spare shim ready");
        Ok((id, pid))
    }

    async fn shut_down(&self, id: &str, pid: u32) {
        let _ = shim_client::call(
            id,
            &self.socket(id),
            &Request::Shutdown {
                keep_cgroups: false,
            },
        )
        .await;
        if pid != 0 {
            wait_gone(pid).await;
        }
        let _ = std::fs::remove_dir_all(crate::shim::spare_dir(&self.data_dir, id));
    }

    /// Shuts the ready spare down and starts no other (the daemon is stopping).
    pub(crate) async fn stop(&self) {
        self.lock().stopped = true;
        // A spare still starting is shut down by its starter: wait for that.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while self.lock().starting && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let ready = self.lock().ready.take();
        if let Some((id, pid)) = ready {
            self.shut_down(&id, pid).await;
        }
    }
}

/// Hands a pre-forked spare (`shim::prefork`) the sandbox `sandbox_id` (its record written
/// under `runtime_dir`); the shim's pid, or None when it failed (the caller starts a shim).
/// The connection then carries the shim's exit events into `events`: the caller need not
/// subscribe.
pub(crate) async fn adopt_preforked(
    p: Preforked,
    runtime_dir: &Path,
    sandbox_id: &str,
    events: crate::daemon::ExitEvents,
) -> Option<u32> {
    p.reap();
    let what = Path::new("pre-forked shim connection");
    let req = Request::Adopt {
        sandbox: sandbox_id.to_string(),
        runtime_dir: Some(runtime_dir.to_path_buf()),
        subscribe: true,
    };
    let answer = match p
        .conn
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(p.conn))
    {
        // It answers at once or not at all (it exits if it failed): a shorter wait than for
        // a serving shim.
        Ok(conn) => {
            let wait = std::time::Duration::from_secs(10);
            shim_client::call_then_forward(sandbox_id, what, conn, &req, wait, events).await
        }
        Err(source) => Err(Error::ShimUnreachable {
            sandbox: sandbox_id.to_string(),
            socket: what.to_path_buf(),
            source,
        }),
    };
    match answer {
        Ok(r) if r.ok => Some(r.pid),
        Ok(r) => {
            warn!(sandbox = %sandbox_id, error = ?r.error, "the pre-forked shim failed to adopt a sandbox");
            None
        }
        Err(e) => {
            warn!(sandbox = %sandbox_id, error = %e, "the pre-forked shim failed to adopt a sandbox");
            None
        }
    }
}

/// The calling thread under `SCHED_IDLE` (processes it starts inherit it) until dropped.
struct IdleThread {
    policy: libc::c_int,
    param: libc::sched_param,
}

impl IdleThread {
    #[allow(unsafe_code)]
    fn enter() -> Option<IdleThread> {
        let mut param = libc::sched_param { sched_priority: 0 };
        // SAFETY: plain syscalls on the calling thread (pid 0) with a valid sched_param.
        unsafe {
            let policy = libc::sched_getscheduler(0);
            if policy < 0 || libc::sched_getparam(0, &mut param) != 0 {
                return None;
            }
            let idle = libc::sched_param { sched_priority: 0 };
            (libc::sched_setscheduler(0, libc::SCHED_IDLE, &idle) == 0)
                .then_some(IdleThread { policy, param })
        }
    }
}

impl Drop for IdleThread {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: as in `enter`; restores what the thread had.
        unsafe {
            libc::sched_setscheduler(0, self.policy, &self.param);
        }
    }
}
