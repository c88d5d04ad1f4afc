//! Deferred deletion of removed containers and sandboxes. Removing a container's directory
//! (upper layer, work dir, rootfs mount point, logs) is a dozen `rmdir`s and `unlink`s, and on
//! some disks each `rmdir` waits for the journal (2-3 ms with ext4 mounted `discard`). So a
//! removal renames the directory into a trash (one rename on the same file system: `trash/`
//! for writable layers, `state/trash/` for what is below `state`) and one background thread
//! deletes what is there. A CLI command starts no such thread: it leaves the deletion to its
//! exit helper (`exit_plan`, `memory::after_exit`). Whatever is left anyway (deeper than the
//! helper goes, a cgroup that could not go) is deleted by the next server, command or `k1s
//! runtime purge-trash` that purges.
//!
//! Entries only disappear once they are in the trash, so several processes may delete the
//! same tree at once (each ignores what another already removed).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use tracing::warn;

use crate::cgroups::Cgroups;
use crate::layout::{SandboxPaths, SandboxRecord};

#[derive(Debug, Clone)]
pub(crate) struct Trash {
    /// One trash per file system a removal may rename from: `state/trash` (sandbox and
    /// container records, on a tmpfs when `state` is in `/run`) and `trash` (writable layers,
    /// on the data dir's disk).
    dirs: [PathBuf; 2],
    /// Whether a purge thread is running, and its end.
    running: Arc<(Mutex<bool>, Condvar)>,
    /// Whether discards start the purge thread (else they wait for `purge` or `exit_plan`).
    thread: bool,
    /// For the cgroups of sandboxes discarded with them (`discard_sandbox`).
    cgroups: Cgroups,
}

/// The name prefix of a sandbox's directory in the trash whose record still names cgroups to
/// remove before it goes (`Trash::discard_sandbox`).
const HOLDS_CGROUPS: &str = "cg-";

impl Trash {
    /// The trash of the runtime rooted at `runtime_dir`.
    pub(crate) fn new(runtime_dir: &Path, cgroups: Cgroups) -> Trash {
        Trash {
            dirs: [
                crate::layout::state_dir(runtime_dir).join("trash"),
                runtime_dir.join("trash"),
            ],
            running: Arc::new((Mutex::new(false), Condvar::new())),
            thread: true,
            cgroups,
        }
    }

    /// This trash, starting its purge thread or never (`thread` false).
    pub(crate) fn with_thread(mut self, thread: bool) -> Trash {
        self.thread = thread;
        self
    }

    /// Takes `path` (a directory) away at once and deletes it in the background. A missing
    /// `path` is fine; if it cannot be renamed (another file system), it is deleted here.
    pub(crate) fn discard(&self, path: &Path) -> std::io::Result<()> {
        self.discard_as(path, "")
    }

    /// `discard` of a sandbox's directory whose pod cgroup (named in its record,
    /// `sandbox.json`) is still there, and maybe its shim `shim` (0: none), exiting: its
    /// deletion first waits for that shim's exit and removes those cgroups
    /// (`release_sandbox`), and stops short of the record if they cannot go, so that a later
    /// purge tries again. The entry's name carries the shim's pid: `cg-<pid>-<random>`.
    pub(crate) fn discard_sandbox(&self, path: &Path, shim: u32) -> std::io::Result<()> {
        self.discard_as(path, &format!("{HOLDS_CGROUPS}{shim}-"))
    }

    fn discard_as(&self, path: &Path, prefix: &str) -> std::io::Result<()> {
        // The trash next to what holds `path`: `state/trash` for what is below `state`.
        let dir = self
            .dirs
            .iter()
            .find(|d| d.parent().is_some_and(|p| path.starts_with(p)))
            .unwrap_or(&self.dirs[1]);
        std::fs::create_dir_all(dir)?;
        let to = dir.join(format!("{prefix}{}", super::random_id()));
        match std::fs::rename(path, &to) {
            Ok(()) => {
                self.purge_in_background();
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => {
                warn!(path = %path.display(), error = %e, "cannot move to the trash; deleting in place");
                match std::fs::remove_dir_all(path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                }
            }
        }
    }

    /// Whether something is waiting in the trash.
    pub(crate) fn pending(&self) -> bool {
        self.pending_except(&HashSet::new())
    }

    /// Starts the purge thread unless one is running; it also makes missing spare `rw/`
    /// directories (`layout::ensure_spare_rw_dirs`).
    pub(crate) fn purge_in_background(&self) {
        if !self.thread {
            return;
        }
        {
            let mut running = self.running.0.lock().unwrap_or_else(|p| p.into_inner());
            if *running {
                return;
            }
            *running = true;
        }
        let trash = self.clone();
        let spawned = std::thread::Builder::new()
            .name("trash".into())
            .spawn(move || loop {
                // Also replaces the spare directories new sandboxes took (kicked after each
                // container creation and by removals).
                if let Some(runtime_dir) = trash.dirs[1].parent() {
                    crate::layout::ensure_spare_rw_dirs(runtime_dir);
                }
                let failed = trash.purge_once();
                let mut running = trash.running.0.lock().unwrap_or_else(|p| p.into_inner());
                // Checked under the lock: a discard that saw `running` set counts on this
                // thread to delete its entry. Entries that could not be deleted stay for the
                // next purge instead of keeping this thread spinning.
                if !trash.pending_except(&failed) {
                    *running = false;
                    trash.running.1.notify_all();
                    return;
                }
                drop(running);
            });
        if spawned.is_err() {
            *self.running.0.lock().unwrap_or_else(|p| p.into_inner()) = false;
            self.purge();
        }
    }

    /// Waits up to `timeout` for the purge thread to finish; whether the trash is empty then.
    #[cfg(test)]
    pub(crate) fn wait_purged(&self, timeout: std::time::Duration) -> bool {
        let (lock, done) = &*self.running;
        let running = lock.lock().unwrap_or_else(|p| p.into_inner());
        let (running, _) = done
            .wait_timeout_while(running, timeout, |r| *r)
            .unwrap_or_else(|p| p.into_inner());
        drop(running);
        !self.pending()
    }

    /// What waits in the trash, but for the entries in `failed`.
    fn entries_except<'a>(
        &'a self,
        failed: &'a HashSet<PathBuf>,
    ) -> impl Iterator<Item = std::fs::DirEntry> + 'a {
        self.dirs
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flat_map(|rd| rd.flatten())
            .filter(|e| !failed.contains(&e.path()))
    }

    fn pending_except(&self, failed: &HashSet<PathBuf>) -> bool {
        self.entries_except(failed).next().is_some()
    }

    /// Everything in the trash as deletions for after this process's exit
    /// (`memory::after_exit`): each entry's whole tree (`ExitOp::RmTree`: the helper lists
    /// it, not this process), after the cgroups a sandbox's record names (`discard_sandbox`),
    /// whose failure keeps the entry. Then the spare `rw/` directories the purge thread would
    /// make.
    pub(crate) fn exit_plan(&self) -> Vec<crate::memory::ExitOp> {
        use crate::memory::ExitOp;
        let mut ops = Vec::new();
        for e in self.entries_except(&HashSet::new()) {
            let path = e.path();
            let first = ops.len();
            if e.file_name().to_string_lossy().starts_with(HOLDS_CGROUPS) {
                self.release_ops(&path, &mut ops);
            }
            ops.push(ExitOp::RmTree(path));
            // A cgroup that cannot go keeps the rest of the entry, its record above all.
            let end = ops.len();
            for (i, op) in ops.iter_mut().enumerate().skip(first) {
                if let ExitOp::RmdirElseSkip(_, skip) = op {
                    *skip = end - i - 1;
                }
            }
        }
        if let Some(runtime_dir) = self.dirs[1].parent() {
            for p in crate::layout::missing_spare_rw_dirs(runtime_dir) {
                ops.push(ExitOp::Mkdir(p, crate::layout::SPARE_RW_MODE));
            }
        }
        ops
    }

    /// The wait for the shim and the removal of the cgroups of `entry`, a sandbox discarded
    /// with them, as exit ops (their skips set by the caller): each hierarchy's pod cgroup
    /// after its children (the containers', v2's `shim`).
    fn release_ops(&self, entry: &Path, ops: &mut Vec<crate::memory::ExitOp>) {
        use crate::memory::ExitOp;
        let Some((cgroup, shim)) = trashed_sandbox(entry) else {
            return;
        };
        if let Some(pid) = shim {
            ops.push(ExitOp::WaitExit(pid));
        }
        // The network namespace's pin, which the shim unmounts after it was told to go
        // without waiting for its answer (`stop_pod_sandbox`), if it could not.
        ops.push(ExitOp::Detach(pin_of(entry)));
        for (_, d) in self.cgroups.dirs(&cgroup) {
            if let Ok(rd) = std::fs::read_dir(&d) {
                for c in rd.flatten() {
                    if c.file_type().is_ok_and(|t| t.is_dir()) {
                        ops.push(ExitOp::RmdirElseSkip(c.path(), 0));
                    }
                }
                ops.push(ExitOp::RmdirElseSkip(d, 0));
            }
        }
    }

    /// For `entry`, a sandbox discarded with its cgroups (`discard_sandbox`): waits for its
    /// shim's exit and removes the cgroups, killing what is left in them. False if they are
    /// still there, and the entry must stay.
    fn release_sandbox(&self, entry: &Path) -> bool {
        let Some((cgroup, shim)) = trashed_sandbox(entry) else {
            return true;
        };
        if let Some(pid) = shim {
            crate::memory::wait_exit(pid as libc::pid_t);
        }
        let _ = nix::mount::umount2(&pin_of(entry), nix::mount::MntFlags::MNT_DETACH);
        match self.cgroups.remove_made(&cgroup, false) {
            Ok(()) => true,
            Err(e) => {
                warn!(entry = %entry.display(), error = %e, "cannot remove the cgroups of a removed sandbox");
                false
            }
        }
    }

    /// Deletes everything in the trash now, until it is empty or only holds entries that
    /// cannot be deleted (a mount point still busy); those are logged and left.
    pub(crate) fn purge(&self) {
        self.purge_once();
    }

    /// `purge`, returning the entries it could not delete.
    fn purge_once(&self) -> HashSet<PathBuf> {
        let mut failed = HashSet::new();
        loop {
            let entries: Vec<_> = self.entries_except(&failed).collect();
            if entries.is_empty() {
                return failed;
            }
            for e in entries {
                let path = e.path();
                if e.file_name().to_string_lossy().starts_with(HOLDS_CGROUPS)
                    && !self.release_sandbox(&path)
                {
                    failed.insert(path);
                    continue;
                }
                let res = match e.file_type() {
                    Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
                    _ => std::fs::remove_file(&path),
                };
                match res {
                    Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                        warn!(path = %path.display(), error = %err, "cannot delete from the trash");
                        failed.insert(path);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The network namespace pin of `entry`, a trashed sandbox directory.
fn pin_of(entry: &Path) -> PathBuf {
    SandboxPaths {
        dir: entry.to_path_buf(),
    }
    .ns("net")
}

/// The pod cgroup named by the record in `entry`, a sandbox's directory in the trash
/// (`Trash::discard_sandbox`), and the pid of its shim if it was exiting; None without a
/// readable record (nothing to release).
fn trashed_sandbox(entry: &Path) -> Option<(String, Option<u32>)> {
    let paths = SandboxPaths {
        dir: entry.to_path_buf(),
    };
    let record: SandboxRecord =
        serde_json::from_slice(&std::fs::read(paths.config()).ok()?).ok()?;
    let shim = entry
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(HOLDS_CGROUPS))
        .and_then(|n| n.split_once('-'))
        .and_then(|(pid, _)| pid.parse().ok())
        .filter(|p| *p > 0);
    Some((record.cgroup, shim))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cgroups whose root is an empty directory of the test's.
    fn no_cgroups(tmp: &tempfile::TempDir) -> Cgroups {
        Cgroups::detect_at(&tmp.path().join("no-cgroups"))
    }

    fn tree(root: &Path) {
        for d in ["a/b/c", "a/d", "e"] {
            std::fs::create_dir_all(root.join(d)).expect("test setup");
        }
        std::fs::write(root.join("a/b/c/f"), b"x").expect("test setup");
        std::fs::write(root.join("e/g"), b"y").expect("test setup");
        std::os::unix::fs::symlink("/etc", root.join("a/link")).expect("test setup");
    }

    #[test]
    fn discarded_directories_vanish_at_once_and_are_deleted_in_the_background() {
        let tmp = tempfile::tempdir().expect("test setup");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).expect("test setup");
        std::fs::write(outside.join("keep"), b"k").expect("test setup");
        let trash = Trash::new(&tmp.path().join("runtime"), no_cgroups(&tmp));
        let mut victims = Vec::new();
        for i in 0..20 {
            let v = tmp.path().join(format!("victim{i}"));
            tree(&v);
            // A symlink to a directory outside must be removed, never followed.
            std::os::unix::fs::symlink(&outside, v.join("out")).expect("test setup");
            victims.push(v);
        }
        for v in &victims {
            trash.discard(v).expect("test setup");
            assert!(!v.exists(), "{} still there after discard", v.display());
        }
        trash
            .discard(&tmp.path().join("never-existed"))
            .expect("test setup");
        assert!(
            trash.wait_purged(std::time::Duration::from_secs(20)),
            "trash not emptied"
        );
        assert!(!trash.pending());
        assert_eq!(
            std::fs::read(outside.join("keep")).expect("test setup"),
            b"k"
        );
    }

    #[test]
    fn an_entry_that_cannot_be_deleted_stops_the_purge_thread() {
        if !nix::unistd::Uid::effective().is_root() {
            return;
        }
        let tmp = tempfile::tempdir().expect("test setup");
        let runtime = tmp.path().join("runtime");
        let trash = Trash::new(&runtime, no_cgroups(&tmp));
        let busy = runtime.join("trash").join("busy");
        let mnt = busy.join("mnt");
        std::fs::create_dir_all(&mnt).expect("test setup");
        // A mount point cannot be removed while mounted.
        nix::mount::mount(
            Some("tmpfs"),
            &mnt,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=64k"),
        )
        .expect("mount tmpfs");
        trash.purge_in_background();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let stopped = loop {
            if !*trash.running.0.lock().expect("lock") {
                break true;
            }
            if std::time::Instant::now() > deadline {
                break false;
            }
            std::thread::yield_now();
        };
        let left = mnt.exists();
        // The thread is done, the trash is not: no waiting for what cannot be deleted.
        let t = std::time::Instant::now();
        let purged = trash.wait_purged(std::time::Duration::from_secs(5));
        let waited = t.elapsed();
        nix::mount::umount2(&mnt, nix::mount::MntFlags::MNT_DETACH).expect("umount");
        assert!(
            !purged,
            "the trash with a busy mount point was called empty"
        );
        assert!(
            waited < std::time::Duration::from_secs(1),
            "waited {waited:?}"
        );
        assert!(
            stopped,
            "the purge thread kept running on an entry it cannot delete"
        );
        assert!(left, "the busy mount point was removed");
        trash.purge();
        assert!(!trash.pending());
    }

    #[test]
    fn concurrent_purges_of_the_same_trees_all_succeed() {
        let tmp = tempfile::tempdir().expect("test setup");
        let runtime = tmp.path().join("runtime");
        let trash = Trash::new(&runtime, no_cgroups(&tmp));
        std::fs::create_dir_all(runtime.join("trash")).expect("test setup");
        for i in 0..10 {
            tree(&runtime.join("trash").join(format!("t{i}")));
        }
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let t = Trash::new(&runtime, no_cgroups(&tmp));
                std::thread::spawn(move || t.purge())
            })
            .collect();
        for t in threads {
            t.join().expect("test setup");
        }
        assert!(!trash.pending());
    }

    #[test]
    fn the_trash_left_to_after_the_exit_is_all_deleted_and_the_spares_made() {
        let tmp = tempfile::tempdir().expect("test setup");
        let runtime = tmp.path().join("runtime");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).expect("test setup");
        std::fs::write(outside.join("keep"), b"k").expect("test setup");
        std::fs::create_dir_all(runtime.join("rw")).expect("test setup");
        let trash = Trash::new(&runtime, no_cgroups(&tmp)).with_thread(false);
        for i in 0..3 {
            let v = runtime.join("rw").join(format!("victim{i}"));
            tree(&v);
            std::os::unix::fs::symlink(&outside, v.join("out")).expect("test setup");
            trash.discard(&v).expect("test setup");
        }
        // No thread: the discards only renamed.
        assert!(trash.pending());
        let ops = trash.exit_plan();
        crate::memory::run_plan(crate::memory::plan(ops));
        assert!(!trash.pending(), "the trash is not empty");
        assert!(outside.join("keep").exists(), "a symlink was followed");
        assert!(crate::layout::missing_spare_rw_dirs(&runtime).is_empty());
    }

    #[test]
    fn a_sandbox_discarded_with_its_cgroups_keeps_its_record_until_they_are_gone() {
        let tmp = tempfile::tempdir().expect("test setup");
        let runtime = tmp.path().join("runtime");
        // A cgroup tree of plain directories (one v1 hierarchy: all on one device): a
        // container's cgroup that a file keeps from going, as a process would.
        let cg_root = tmp.path().join("cg");
        let pod = cg_root.join("cpu/k1s/pod1");
        std::fs::create_dir_all(pod.join("ctr")).expect("test setup");
        std::fs::write(pod.join("ctr/busy"), b"").expect("test setup");
        let cgroups = Cgroups::detect_at(&cg_root);
        let sandbox = crate::layout::SandboxPaths::new(&runtime, "s1");
        std::fs::create_dir_all(sandbox.dir.join("containers/ctr")).expect("test setup");
        let record = SandboxRecord {
            id: "s1".into(),
            config: Default::default(),
            created_at: chrono::Utc::now(),
            cgroup: "k1s/pod1".into(),
            handler_bin: None,
        };
        std::fs::write(sandbox.config(), serde_json::to_vec(&record).expect("json"))
            .expect("test setup");
        let trash = Trash::new(&runtime, cgroups).with_thread(false);
        // A shim already gone: its exit is not waited for.
        let gone = std::process::Command::new("true").spawn().expect("spawn");
        let gone_pid = gone.id();
        let _ = gone.wait_with_output();
        trash
            .discard_sandbox(&sandbox.dir, gone_pid)
            .expect("discard");
        assert!(!sandbox.dir.exists());
        let ops = trash.exit_plan();
        assert!(
            ops.contains(&crate::memory::ExitOp::WaitExit(gone_pid)),
            "{ops:?}"
        );
        crate::memory::run_plan(crate::memory::plan(ops));
        // The container's cgroup could not go: neither did the pod's, nor the record.
        assert!(pod.join("ctr").exists());
        let left: Vec<_> = trash.entries_except(&HashSet::new()).collect();
        assert_eq!(left.len(), 1, "the entry went");
        assert!(
            left[0].path().join("sandbox.json").exists(),
            "the record went"
        );
        // Once it can, the next purge removes the cgroups, then the entry.
        std::fs::remove_file(pod.join("ctr/busy")).expect("test setup");
        trash.purge();
        assert!(!trash.pending(), "the trash is not empty");
        assert!(!pod.exists(), "the pod cgroup is left");
        assert!(cg_root.join("cpu/k1s").exists(), "the parent went too");
    }
}
