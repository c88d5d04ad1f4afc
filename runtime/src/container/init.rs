//! The container's first process, from clone to exec: runs in the child the shim clones
//! with new mount and PID namespaces. It builds the rootfs, reports readiness, then drops to
//! the container identity (`prepare_exec`) while the shim answers the creation and the start
//! request travels, waits for the start signal and execs. A failure of that preparation is
//! reported at start, as a failed exec is. `finish_and_exec` is shared with the exec helper.
//! Errors travel to the shim as text over close-on-exec pipes.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{
    dup2_stderr, dup2_stdin, dup2_stdout, execve, setgroups, setresgid, setresuid, Gid, Uid,
};

use crate::container::spec::ContainerSpec;
use crate::container::{caps, rootfs, seccomp, user};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Exit code of a container whose process could not be started (as runc/containerd).
pub const START_ERROR_EXIT: i32 = 128;

/// The child's ends of the pipes the shim created.
pub struct InitPipes {
    pub ready_w: OwnedFd,
    pub start_r: OwnedFd,
    pub exec_err_w: OwnedFd,
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// The container cgroup's `Cgroups::self_move_files`: the child moves itself in first.
    pub cgroup: Vec<std::fs::File>,
}

/// Undo what the shim's (and Rust's) signal setup would leak into the container: the shim
/// blocks SIGCHLD for its signalfd and Rust ignores SIGPIPE; both are inherited over exec.
#[allow(unsafe_code)]
pub fn reset_signals() {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    for sig in [
        Signal::SIGPIPE,
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        // SAFETY: restoring the default disposition installs no Rust handler; the process is
        // single-threaded here (a fresh clone/fork of the single-threaded shim).
        let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) };
    }
}

/// Body of the cloned child; returns the exit code the child exits with on failure.
pub fn child_main(spec: &ContainerSpec, etc_dir: &Path, pipes: InitPipes) -> isize {
    reset_signals();
    let _ = nix::unistd::setsid();
    // Non-dumpable until exec: the container cannot open /proc/<pid>/exe of this (host)
    // binary while we are still it (CVE-2019-5736).
    let _ = nix::sys::prctl::set_dumpable(false);
    umask(Mode::empty());
    let InitPipes {
        ready_w,
        start_r,
        exec_err_w,
        stdin,
        stdout,
        stderr,
        cgroup,
    } = pipes;
    let mut ready = std::fs::File::from(ready_w);
    // Before anything is charged to the pod: into the container's cgroup, by the cheap path
    // for a single thread (see `Cgroups::self_move_files`).
    if let Err(e) = crate::cgroups::Cgroups::join(&cgroup) {
        let _ = ready.write_all(format!("ERR join the container cgroup: {e}").as_bytes());
        return 1;
    }
    drop(cgroup);
    let stdio = dup2_stdin(&stdin)
        .and_then(|_| dup2_stdout(&stdout))
        .and_then(|_| dup2_stderr(&stderr));
    drop((stdin, stdout, stderr));
    let stdio = stdio.map_err(|e| e.to_string()).and_then(|_| {
        if spec.config.tty {
            controlling_tty()
        } else {
            Ok(())
        }
    });
    if let Err(e) = stdio {
        let _ = ready.write_all(format!("ERR set up stdio: {e}").as_bytes());
        return 1;
    }
    let pivot = match rootfs::setup(spec, etc_dir) {
        Ok(p) => p,
        Err(msg) => {
            let _ = ready.write_all(format!("ERR {msg}").as_bytes());
            return 1;
        }
    };
    if ready.write_all(b"OK").is_err() {
        return 1;
    }
    drop(ready);
    // Off the critical path: the shim replies to the creation and the start request comes
    // meanwhile. The pivot into the rootfs, seccomp, the identity and the capabilities are
    // in place before the wait, which needs only read and close (as runc's init waits on its
    // exec fifo); a failure there is reported at start.
    let prepared = rootfs::finish(spec, pivot).and_then(|()| prepare_exec(spec, &spec.argv));
    let mut b = [0u8; 1];
    let mut start = std::fs::File::from(start_r);
    if !matches!(start.read(&mut b), Ok(1)) {
        return 1; // the shim gave up on us before start
    }
    drop(start);
    let msg = match prepared {
        Ok(p) => p.exec(),
        Err(e) => e,
    };
    let mut errp = std::fs::File::from(exec_err_w);
    let _ = errp.write_all(msg.as_bytes());
    START_ERROR_EXIT as isize
}

/// Makes the pty on stdin the controlling terminal of the new session.
#[allow(unsafe_code)]
fn controlling_tty() -> Result<(), String> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal) and touches no memory.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(format!(
            "set controlling tty: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Finds `argv0` like Go's exec.LookPath in the container's PATH; messages match runc's.
pub fn look_path(argv0: &str, env: &[String]) -> Result<PathBuf, String> {
    let is_exec = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if argv0.contains('/') {
        return match Path::new(argv0).metadata() {
            Ok(_) => Ok(PathBuf::from(argv0)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "exec: \"{argv0}\": stat {argv0}: no such file or directory"
            )),
            Err(e) => Err(format!("exec: \"{argv0}\": stat {argv0}: {e}")),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(argv0);
        if is_exec(&cand) {
            return Ok(cand);
        }
    }
    Err(format!(
        "exec: \"{argv0}\": executable file not found in $PATH"
    ))
}

#[allow(unsafe_code)]
fn cloexec_from_3() {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on our own descriptors;
    // no memory is passed. Leaked host fds then cannot survive exec (CVE-2024-21626).
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
}

/// Writes the container's `oom_score_adj` (as runc does from `process.oomScoreAdj`); the
/// shim inherits the daemon's low score, which a container must never keep.
fn set_oom_score_adj(adj: Option<i32>) -> Result<(), String> {
    let Some(adj) = adj else { return Ok(()) };
    std::fs::write("/proc/self/oom_score_adj", adj.to_string())
        .map_err(|e| format!("set oom_score_adj to {adj}: {e}"))
}

/// oom_score_adj, identity, cwd, capabilities, no_new_privs, env, exec. Returns only with an
/// error message.
pub fn finish_and_exec(spec: &ContainerSpec, argv: &[String]) -> String {
    match prepare_exec(spec, argv) {
        Ok(p) => p.exec(),
        Err(e) => e,
    }
}

/// A process ready to exec: everything but the exec itself is done.
pub struct Prepared {
    argv0: String,
    path: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
}

impl Prepared {
    /// Returns only with an error message.
    pub fn exec(self) -> String {
        let err = execve(&self.path, &self.argv, &self.env)
            .err()
            .map(|e| e.desc())
            .unwrap_or("unknown error");
        format!("exec: \"{}\": {}", self.argv0, err.to_lowercase())
    }
}

/// oom_score_adj, identity, cwd, seccomp, capabilities, no_new_privs, umask, and the
/// resolved command and environment for `Prepared::exec`; or an error message.
pub fn prepare_exec(spec: &ContainerSpec, argv: &[String]) -> Result<Prepared, String> {
    let Some(argv0) = argv.first() else {
        return Err("no command specified".to_string());
    };
    set_oom_score_adj(spec.resources.oom_score_adj)?;
    let id = user::resolve(&spec.image_user, spec.run_as_user, spec.run_as_group)?
        .with_groups(&spec.supplemental_groups);
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!(
            "HOME={}",
            id.home
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "/".into())
        ));
    }
    let cwd = if spec.cwd.is_empty() {
        "/"
    } else {
        spec.cwd.as_str()
    };
    if let Err(e) = std::fs::create_dir_all(cwd) {
        if !Path::new(cwd).is_dir() {
            return Err(format!("mkdir {cwd}: {e}"));
        }
    }
    if let Err(e) = nix::unistd::chdir(cwd) {
        return Err(format!(
            "chdir to cwd ({cwd:?}) set in config.json failed: {e}"
        ));
    }
    // A cwd outside our root (leaked fd, /proc/self/fd/N) has no path from "/".
    match nix::unistd::getcwd() {
        Ok(p) if p.starts_with("/") => {}
        _ => {
            return Err(format!(
                "current working directory {cwd:?} is outside of container root"
            ))
        }
    }
    let path = look_path(argv0, &env)?;
    cloexec_from_3();
    // Compiled before any privilege is dropped; installed while we still hold
    // CAP_SYS_ADMIN, so it works without no_new_privs too. It does not deny the
    // identity and capability syscalls that follow.
    if spec.seccomp {
        seccomp::runtime_default(&spec.capabilities).and_then(|p| seccomp::apply(&p))?;
    }
    caps::limit_bounding(&spec.capabilities)?;
    let groups: Vec<Gid> = id.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    let ident = nix::sys::prctl::set_keepcaps(true)
        .and_then(|_| setgroups(&groups))
        .and_then(|_| {
            setresgid(
                Gid::from_raw(id.gid),
                Gid::from_raw(id.gid),
                Gid::from_raw(id.gid),
            )
        })
        .and_then(|_| {
            setresuid(
                Uid::from_raw(id.uid),
                Uid::from_raw(id.uid),
                Uid::from_raw(id.uid),
            )
        })
        .and_then(|_| nix::sys::prctl::set_keepcaps(false));
    ident.map_err(|e| format!("set user {}:{}: {e}", id.uid, id.gid))?;
    caps::apply(&spec.capabilities)?;
    if spec.no_new_privs {
        if let Err(e) = nix::sys::prctl::set_no_new_privs() {
            return Err(format!("set no_new_privs: {e}"));
        }
    }
    umask(Mode::from_bits_truncate(0o022));
    let cstr = |s: &str| CString::new(s).map_err(|_| format!("argument {s:?} contains NUL"));
    let (p, a, e) = match (
        cstr(&path.to_string_lossy()),
        argv.iter().map(|s| cstr(s)).collect::<Result<Vec<_>, _>>(),
        env.iter().map(|s| cstr(s)).collect::<Result<Vec<_>, _>>(),
    ) {
        (Ok(p), Ok(a), Ok(e)) => (p, a, e),
        (Err(m), _, _) | (_, Err(m), _) | (_, _, Err(m)) => return Err(m),
    };
    Ok(Prepared {
        argv0: argv0.clone(),
        path: p,
        argv: a,
        env: e,
    })
}
