//! Containers of pods with a `runc`/`crun` RuntimeClass handler. The shim prepares the same
//! overlay rootfs, writes an OCI bundle (`container::bundle`), and on start runs
//! `<bin> run --detach`; the container init is then reparented to the shim (subreaper), so
//! reaping, logs, exit records and OOM detection are shared with the built-in path.

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::Utc;
use nix::fcntl::OFlag;
use nix::unistd::{pipe2, Pid};

use crate::container::bundle;
use crate::container::init::START_ERROR_EXIT;
use crate::container::rootfs::mount_overlay;
use crate::container::spec::ContainerSpec;
use crate::cri::{ContainerState, NetMode, REASON_START_ERROR};
use crate::shim::log::{self, LogStream};
use crate::shim::proto::Response;
use crate::shim::server::{Ctr, Shim, Stream};

/// The last error the OCI runtime logged (`--log-format json`).
fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error")
        .find_map(|v| v["msg"].as_str().map(str::to_string))
}

impl Shim {
    fn oci_cmd(&self, bin: &Path, id: &str) -> Command {
        let mut c = Command::new(bin);
        c.arg("--root")
            .arg(self.paths.oci_root())
            .arg("--log")
            .arg(self.paths.bundle(id).join("runtime.log"))
            .arg("--log-format")
            .arg("json");
        c
    }

    pub(crate) fn create_oci(
        &mut self,
        id: &str,
        spec: ContainerSpec,
        bin: &Path,
    ) -> Result<ContainerState, String> {
        mount_overlay(&spec, &spec.rootfs())?;
        // The pod's namespaces are this shim's: the handler runs as its child, so they are
        // reached through it (only the network namespace is pinned, see `serve_sandbox`).
        let own = |name: &str| PathBuf::from(format!("/proc/{}/ns/{name}", std::process::id()));
        let mut ns: Vec<(&str, PathBuf)> = vec![("ipc", own("ipc"))];
        if self.config.net == NetMode::Pod {
            ns.push(("network", own("net")));
            ns.push(("uts", own("uts")));
        }
        let ns_refs: Vec<(&str, &Path)> = ns.iter().map(|(k, p)| (*k, p.as_path())).collect();
        let result = (|| {
            let oci = bundle::oci_spec(&spec, &self.paths.etc(), &ns_refs)?;
            let dir = self.paths.bundle(id);
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("create bundle {}: {e}", dir.display()))?;
            oci.save(dir.join("config.json"))
                .map_err(|e| format!("write bundle config: {e}"))
        })();
        if let Err(e) = result {
            let _ = nix::mount::umount2(&spec.rootfs(), nix::mount::MntFlags::MNT_DETACH);
            return Err(e);
        }
        let log_file = match &spec.log_path {
            Some(p) => Some(log::open(p).map_err(|e| format!("open log {}: {e}", p.display()))?),
            None => None,
        };
        tracing::debug!(container = id, runtime = %bin.display(), "bundle written");
        let ctr = Ctr {
            spec,
            input: None,
            pty: None,
            attachers: Vec::new(),
            state: ContainerState::Created,
            pid: None,
            start_w: None,
            exec_err_r: None,
            streams: vec![],
            log: log_file,
            oom_before: 0,
            mnt_ns: None,
        };
        self.containers.insert(id.to_string(), ctr);
        self.persist(id);
        Ok(ContainerState::Created)
    }

    #[allow(unsafe_code)]
    pub(crate) fn start_oci(&mut self, id: &str, bin: &Path) -> Response {
        if !matches!(
            self.containers.get(id).map(|c| &c.state),
            Some(ContainerState::Created)
        ) {
            return Response::err(format!("container {id} is not in created state"));
        }
        let p = || pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"));
        let (out, err): ((OwnedFd, OwnedFd), (OwnedFd, OwnedFd)) = match (p(), p()) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return Response::err(e),
        };
        let bundle = self.paths.bundle(id);
        let pid_file = bundle.join("pid");
        let mut cmd = self.oci_cmd(bin, id);
        cmd.args(["run", "--detach", "--bundle"])
            .arg(&bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out.1))
            .stderr(Stdio::from(err.1));
        // SAFETY: runs in the forked child before exec; reset_signals only calls sigprocmask
        // and signal(SIG_DFL), both async-signal-safe, and the shim is single-threaded anyway.
        unsafe {
            cmd.pre_exec(|| {
                crate::container::init::reset_signals();
                Ok(())
            });
        }
        let started_at = Utc::now();
        let status = cmd.status();
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        let Some(c) = self.containers.get_mut(id) else {
            return Response::err(format!("container {id} not found"));
        };
        match (status, pid) {
            (Ok(s), Some(pid)) if s.success() => {
                c.pid = Some(Pid::from_raw(pid));
                c.state = ContainerState::Running {
                    pid: pid as u32,
                    started_at,
                };
                for fd in [&out.0, &err.0] {
                    let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
                }
                c.streams = vec![
                    Stream {
                        fd: out.0,
                        log: LogStream::new("stdout"),
                    },
                    Stream {
                        fd: err.0,
                        log: LogStream::new("stderr"),
                    },
                ];
                self.persist(id);
                // The init may already have exited and been reparented to us.
                self.reap();
                let state = self.containers.get(id).map(|c| c.state.clone());
                Response {
                    state,
                    ..Response::ok()
                }
            }
            (status, _) => {
                let msg = last_error(&bundle.join("runtime.log"))
                    .unwrap_or_else(|| format!("{} run failed: {status:?}", bin.display()));
                c.state = ContainerState::Exited {
                    exit_code: START_ERROR_EXIT,
                    reason: REASON_START_ERROR.to_string(),
                    message: msg.clone(),
                    started_at: None,
                    finished_at: Utc::now(),
                };
                self.persist(id);
                self.publish(id);
                let state = self.containers.get(id).map(|c| c.state.clone());
                Response {
                    state,
                    ..Response::err(msg)
                }
            }
        }
    }

    /// `<bin> delete --force` and unmount the rootfs; errors are logged only.
    pub(crate) fn cleanup_oci(&self, id: &str, spec: &ContainerSpec) {
        let Some(bin) = &self.handler else { return };
        match self
            .oci_cmd(bin, id)
            .args(["delete", "--force", id])
            .stdin(Stdio::null())
            .output()
        {
            Ok(o) if !o.status.success() => {
                eprintln!("delete {id}: {}", String::from_utf8_lossy(&o.stderr).trim())
            }
            Err(e) => eprintln!("delete {id}: {e}"),
            _ => {}
        }
        let _ = nix::mount::umount2(&spec.rootfs(), nix::mount::MntFlags::MNT_DETACH);
    }
}
