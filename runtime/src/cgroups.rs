//! Cgroups through cgroupfs, v1 (or the v1 side of a hybrid host) and v2.
//!
//! Owns pod and container cgroup directories, resource limits, joining, OOM-kill counters,
//! usage statistics and removal. A hybrid host whose cgroup2 mount carries no cpu/memory
//! controllers is treated as v1. Paths are relative to each hierarchy root:
//! `<parent>/pod<uid>[/<container id>]`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::cri::{ContainerStats, Resources};
use crate::error::{Error, Result};

const V1_CONTROLLERS: [&str; 4] = ["cpu", "cpuacct", "memory", "pids"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroups {
    /// v1 controllers under `<root>/<controller>`.
    V1 {
        root: PathBuf,
        hierarchies: Arc<V1Hierarchies>,
    },
    /// The unified hierarchy at `root`.
    V2 { root: PathBuf },
}

/// The v1 hierarchies under a root, found on first use and kept: every cgroup operation needs
/// them, and the mounts do not change under a running k1s. Each hierarchy is a mount of its
/// own, told apart by its root's device number (`cpu` and `cpuacct` are often symlinks to one
/// `cpu,cpuacct` mount).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct V1Hierarchies {
    /// The hierarchy of each controller we use, once per mount (`cpu` and `cpuacct` often
    /// share one).
    used: OnceLock<Vec<(&'static str, PathBuf)>>,
    /// Every mounted hierarchy.
    all: OnceLock<Vec<PathBuf>>,
}

fn read_trim(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

fn kv(p: &Path, key: &str) -> Option<u64> {
    let s = fs::read_to_string(p).ok()?;
    s.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

impl Cgroups {
    pub fn detect() -> Cgroups {
        Self::detect_at(Path::new("/sys/fs/cgroup"))
    }

    pub fn detect_at(root: &Path) -> Cgroups {
        let unified = read_trim(&root.join("cgroup.controllers"));
        match unified {
            Some(c)
                if c.split_whitespace().any(|x| x == "memory") || !root.join("memory").exists() =>
            {
                Cgroups::V2 {
                    root: root.to_path_buf(),
                }
            }
            _ => Cgroups::V1 {
                root: root.to_path_buf(),
                hierarchies: Default::default(),
            },
        }
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, Cgroups::V2 { .. })
    }

    /// One directory per hierarchy (v1 controllers that share a mount are listed once).
    pub fn dirs(&self, rel: &str) -> Vec<(&'static str, PathBuf)> {
        match self {
            Cgroups::V2 { root } => vec![("unified", root.join(rel))],
            Cgroups::V1 { root, hierarchies } => {
                let used = hierarchies.used.get_or_init(|| {
                    let mut seen = Vec::new();
                    let mut out = Vec::new();
                    for c in V1_CONTROLLERS {
                        let base = root.join(c);
                        match mount_dev(&base) {
                            Some(dev) if !seen.contains(&dev) => {
                                seen.push(dev);
                                out.push((c, base));
                            }
                            _ => {}
                        }
                    }
                    out
                });
                used.iter().map(|(c, base)| (*c, base.join(rel))).collect()
            }
        }
    }

    fn ctl(&self, rel: &str, controller: &str, file: &str) -> Option<PathBuf> {
        match self {
            Cgroups::V2 { root } => Some(root.join(rel).join(file)),
            Cgroups::V1 { root, .. } => {
                let p = root.join(controller).join(rel).join(file);
                p.exists().then_some(p)
            }
        }
    }

    fn write(path: &Path, value: &str) -> Result<()> {
        fs::write(path, value).map_err(|source| Error::Cgroup {
            op: "write",
            path: path.to_path_buf(),
            source,
        })
    }

    /// Creates the cgroup (and parents) and applies `res`.
    pub fn create(&self, rel: &str, res: &Resources) -> Result<()> {
        for (_, d) in self.dirs(rel) {
            fs::create_dir_all(&d).map_err(|source| Error::Cgroup {
                op: "create",
                path: d.clone(),
                source,
            })?;
        }
        if let Cgroups::V2 { root } = self {
            // Enable the controllers we use down to the parent of the leaf.
            let mut cur = root.clone();
            for comp in Path::new(rel)
                .parent()
                .into_iter()
                .flat_map(|p| p.components())
            {
                let avail = read_trim(&cur.join("cgroup.controllers")).unwrap_or_default();
                let want: Vec<String> = ["cpu", "memory", "pids"]
                    .iter()
                    .filter(|c| avail.split_whitespace().any(|a| a == **c))
                    .map(|c| format!("+{c}"))
                    .collect();
                if !want.is_empty() {
                    let _ = fs::write(cur.join("cgroup.subtree_control"), want.join(" "));
                }
                cur = cur.join(comp);
            }
            let avail = read_trim(&cur.join("cgroup.controllers")).unwrap_or_default();
            let want: Vec<String> = ["cpu", "memory", "pids"]
                .iter()
                .filter(|c| avail.contains(**c))
                .map(|c| format!("+{c}"))
                .collect();
            if !want.is_empty() && Path::new(rel).parent().is_some() {
                let _ = fs::write(cur.join("cgroup.subtree_control"), want.join(" "));
            }
        }
        self.apply(rel, res)
    }

    pub fn apply(&self, rel: &str, res: &Resources) -> Result<()> {
        let v2 = self.is_v2();
        if let Some(shares) = res.cpu_shares {
            let (file, val) = if v2 {
                (
                    "cpu.weight",
                    (1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142).to_string(),
                )
            } else {
                ("cpu.shares", shares.to_string())
            };
            if let Some(p) = self.ctl(rel, "cpu", file) {
                Self::write(&p, &val)?;
            }
        }
        if res.cpu_quota.is_some() || res.cpu_period.is_some() {
            let period = res.cpu_period.unwrap_or(100_000);
            let quota = res.cpu_quota.filter(|q| *q > 0);
            if v2 {
                if let Some(p) = self.ctl(rel, "cpu", "cpu.max") {
                    let q = quota.map_or("max".to_string(), |q| q.to_string());
                    Self::write(&p, &format!("{q} {period}"))?;
                }
            } else {
                if let Some(p) = self.ctl(rel, "cpu", "cpu.cfs_period_us") {
                    Self::write(&p, &period.to_string())?;
                }
                if let Some(p) = self.ctl(rel, "cpu", "cpu.cfs_quota_us") {
                    Self::write(&p, &quota.unwrap_or(-1).to_string())?;
                }
            }
        }
        if let Some(mem) = res.memory_limit_bytes {
            if v2 {
                if let Some(p) = self.ctl(rel, "memory", "memory.max") {
                    Self::write(&p, &mem.to_string())?;
                }
                if let Some(p) = self
                    .ctl(rel, "memory", "memory.swap.max")
                    .filter(|p| p.exists())
                {
                    let _ = Self::write(&p, "0");
                }
            } else if let Some(p) = self.ctl(rel, "memory", "memory.limit_in_bytes") {
                Self::write(&p, &mem.to_string())?;
                // No swap beyond the limit where swap accounting exists.
                if let Some(sw) = self.ctl(rel, "memory", "memory.memsw.limit_in_bytes") {
                    let _ = Self::write(&sw, &mem.to_string());
                }
                if let Some(sw) = self.ctl(rel, "memory", "memory.swappiness") {
                    let _ = Self::write(&sw, "0");
                }
            }
        }
        if let Some(pids) = res.pids_limit {
            if let Some(p) = self.ctl(rel, "pids", "pids.max") {
                let v = if pids > 0 {
                    pids.to_string()
                } else {
                    "max".to_string()
                };
                Self::write(&p, &v)?;
            }
        }
        Ok(())
    }

    /// Opens, in every hierarchy, the file through which a single-threaded process moves
    /// itself into the cgroup by writing "0" (`join`); the files may be handed to a child
    /// about to be cloned, which then moves itself.
    ///
    /// Why not `add_pid`: moving a whole process (`cgroup.procs`, or any pid other than the
    /// writer's own) write-locks the kernel's global threadgroup rwsem, which waits for an RCU
    /// grace period after a quiet spell: 6-12 ms each time on the development VM. A thread
    /// moving itself through v1's `tasks` file takes no such lock (Linux 5.17+: "0" there
    /// moves only the caller, which for a single-threaded process is all of it): 0.3 ms. On
    /// v2, `cgroup.procs` is the only way (threads of a domain cgroup cannot be split).
    pub fn self_move_files(&self, rel: &str) -> Result<Vec<fs::File>> {
        let file = match self {
            Cgroups::V1 { .. } => "tasks",
            Cgroups::V2 { .. } => "cgroup.procs",
        };
        self.dirs(rel)
            .into_iter()
            .map(|(_, d)| {
                let p = d.join(file);
                fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .map_err(|source| Error::Cgroup {
                        op: "open",
                        path: p,
                        source,
                    })
            })
            .collect()
    }

    /// Moves the calling process, which must be single-threaded, into the cgroups whose
    /// `self_move_files` these are.
    pub fn join(files: &[fs::File]) -> std::io::Result<()> {
        for mut f in files {
            std::io::Write::write_all(&mut f, b"0")?;
        }
        Ok(())
    }

    /// The cgroup the shim of pod cgroup `pod` runs in, and whether it is a child made for it:
    /// on v1 the pod's own (v1 lets a cgroup hold processes beside its children, and one
    /// cgroup fewer is four mkdirs and four rmdirs fewer per pod); on v2, whose pod cgroups
    /// hand their controllers down and so may hold no process, its child `shim`.
    pub fn shim_cgroup(&self, pod: &str) -> (String, bool) {
        match self {
            Cgroups::V1 { .. } => (pod.to_string(), false),
            Cgroups::V2 { .. } => (format!("{pod}/shim"), true),
        }
    }

    /// Moves the calling process, which must be single-threaded, into the cgroup in every
    /// hierarchy (see `self_move_files`).
    pub fn add_self(&self, rel: &str) -> Result<()> {
        let files = self.self_move_files(rel)?;
        Self::join(&files).map_err(|source| Error::Cgroup {
            op: "join",
            path: PathBuf::from(rel),
            source,
        })
    }

    /// Moves `pid` into the cgroup in every hierarchy.
    pub fn add_pid(&self, rel: &str, pid: i32) -> Result<()> {
        for (_, d) in self.dirs(rel) {
            Self::write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    pub fn procs(&self, rel: &str) -> Vec<i32> {
        let mut out = Vec::new();
        for (_, d) in self.dirs(rel) {
            for p in pids_in(&d) {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// OOM kills recorded for this cgroup so far.
    pub fn oom_kills(&self, rel: &str) -> u64 {
        match self {
            Cgroups::V2 { root } => {
                kv(&root.join(rel).join("memory.events"), "oom_kill").unwrap_or(0)
            }
            Cgroups::V1 { root, .. } => {
                let d = root.join("memory").join(rel);
                kv(&d.join("memory.oom_control"), "oom_kill").unwrap_or(0)
            }
        }
    }

    pub fn stats(&self, rel: &str) -> ContainerStats {
        let (cpu, mem, inactive, pids): (u64, u64, u64, u64) = match self {
            Cgroups::V2 { root } => {
                let d = root.join(rel);
                (
                    kv(&d.join("cpu.stat"), "usage_usec").unwrap_or(0) * 1000,
                    read_trim(&d.join("memory.current"))
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                    kv(&d.join("memory.stat"), "inactive_file").unwrap_or(0),
                    read_trim(&d.join("pids.current"))
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                )
            }
            Cgroups::V1 { root, .. } => (
                read_trim(&root.join("cpuacct").join(rel).join("cpuacct.usage"))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                read_trim(&root.join("memory").join(rel).join("memory.usage_in_bytes"))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                kv(
                    &root.join("memory").join(rel).join("memory.stat"),
                    "total_inactive_file",
                )
                .unwrap_or(0),
                read_trim(&root.join("pids").join(rel).join("pids.current"))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
            ),
        };
        ContainerStats {
            cpu_usage_ns: cpu,
            memory_working_set_bytes: mem.saturating_sub(inactive),
            pids,
        }
    }

    /// Every mounted hierarchy, not only the controllers we use: an OCI runtime (runc)
    /// creates the pod path in all of them (devices, freezer, cpuset, the hybrid unified...).
    fn all_hierarchies(&self, rel: &str) -> Vec<PathBuf> {
        match self {
            Cgroups::V2 { root } => vec![root.join(rel)],
            Cgroups::V1 { root, hierarchies } => {
                let all = hierarchies.all.get_or_init(|| {
                    let mut seen: Vec<(u64, PathBuf)> = Vec::new();
                    for e in fs::read_dir(root).into_iter().flatten().flatten() {
                        let p = e.path();
                        let Some(dev) = mount_dev(&p) else { continue };
                        if !seen.iter().any(|(d, _)| *d == dev) && p.join("cgroup.procs").exists() {
                            seen.push((dev, p));
                        }
                    }
                    seen.into_iter().map(|(_, p)| p).collect()
                });
                all.iter().map(|h| h.join(rel)).collect()
            }
        }
    }

    /// `remove` for a pod's or container's cgroup. An OCI runtime handler (`oci_runtime`)
    /// makes its cgroups in every v1 hierarchy; k1s only in those it uses, so without one
    /// only those are looked at: no look at every mounted hierarchy (two stats each, once per
    /// process) and no rmdirs that would find nothing.
    pub fn remove_made(&self, rel: &str, oci_runtime: bool) -> Result<()> {
        if oci_runtime {
            return self.remove(rel);
        }
        for (_, d) in self.dirs(rel) {
            remove_tree(&d)?;
        }
        Ok(())
    }

    /// Kills what is left inside and removes the cgroup in every hierarchy; absent is fine.
    pub fn remove(&self, rel: &str) -> Result<()> {
        // `remove_tree` kills what runs at each level before its rmdir.
        for d in self.all_hierarchies(rel) {
            remove_tree(&d)?;
        }
        Ok(())
    }
}

/// The device number of the directory `p` (symlinks followed): one per mounted hierarchy.
fn mount_dev(p: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(p).ok().filter(|m| m.is_dir()).map(|m| m.dev())
}

/// The processes listed in the cgroup directory `d` (none when it is gone).
fn pids_in(d: &Path) -> Vec<i32> {
    fs::read_to_string(d.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// rmdir children first, killing what runs in each (a pod's shim in `<pod>/shim` whose
/// socket is gone, say), retrying briefly while the last processes die.
fn remove_tree(d: &Path) -> Result<()> {
    // The usual case, a cgroup without children or processes (or none at all in this
    // hierarchy), takes one rmdir; the kernel refuses it (EBUSY) while either is left.
    match fs::remove_dir(d) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    if let Ok(rd) = fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path())?;
            }
        }
    }
    for p in pids_in(d) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    for attempt in 0..50 {
        match fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 49 => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(source) => {
                return Err(Error::Cgroup {
                    op: "remove",
                    path: d.to_path_buf(),
                    source,
                })
            }
        }
    }
    Ok(())
}
