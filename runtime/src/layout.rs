//! Where things live on disk under `data_dir` (see the crate docs for the tree). Shared by
//! the daemon side and the shim so both agree on every path.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPaths {
    pub dir: PathBuf,
}

/// `<runtime dir>/state`: what lives only as long as the machine is up (sandboxes, spare
/// shims, their trash). A symlink to `/run/k1s/<hash of the runtime dir>` where `/run` is a
/// tmpfs (see `open_state_dir`), else a directory of the data dir itself.
pub fn state_dir(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("state")
}

/// `state/sandboxes`: one directory per sandbox.
pub fn sandboxes_dir(runtime_dir: &Path) -> PathBuf {
    state_dir(runtime_dir).join("sandboxes")
}

/// `state/spares`: one directory per spare shim.
pub fn spares_dir(runtime_dir: &Path) -> PathBuf {
    state_dir(runtime_dir).join("spares")
}

/// `rw/<sandbox>`: the writable layers (overlay upper and work dirs) of a sandbox's
/// containers. On the data dir's disk, never in `state`: what a container writes to its root
/// file system must not fill a tmpfs (RAM) or count against its memory limit.
pub fn rw_sandbox_dir(runtime_dir: &Path, sandbox_id: &str) -> PathBuf {
    runtime_dir.join("rw").join(sandbox_id)
}

/// How many empty directories `rw/.spare-<n>` are kept ready to become a sandbox's `rw/<sandbox>`.
pub const SPARE_RW_DIRS: usize = 2;
const SPARE_RW_PREFIX: &str = ".spare-";

/// Whether `name`, an entry of `rw/`, is a spare directory (not a sandbox's).
pub fn is_spare_rw_dir(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.starts_with(SPARE_RW_PREFIX))
}

/// `rw/.spare-<n>`, below `rw`.
fn spare_rw_dir(rw: &Path, n: usize) -> PathBuf {
    rw.join(format!("{SPARE_RW_PREFIX}{n}"))
}

/// Makes the missing `rw/.spare-<n>`: empty 0700 directories, never used, which
/// `take_spare_rw_dir` renames into place. Making a directory under `rw` (ext4's Orlov
/// allocator, see `create_spread_dir`) cost a container start 0.2-0.3 ms on the development VM;
/// this runs in the background (the trash thread) instead. Does nothing without `rw`.
pub fn ensure_spare_rw_dirs(runtime_dir: &Path) {
    for p in missing_spare_rw_dirs(runtime_dir) {
        let _ =
            std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), SPARE_RW_MODE)
                .create(&p);
    }
}

/// The mode of a spare `rw/.spare-<n>`.
pub const SPARE_RW_MODE: u32 = 0o700;

/// The `rw/.spare-<n>` that `ensure_spare_rw_dirs` would make (none without `rw`).
pub fn missing_spare_rw_dirs(runtime_dir: &Path) -> Vec<PathBuf> {
    let rw = runtime_dir.join("rw");
    if !rw.is_dir() {
        return Vec::new();
    }
    (0..SPARE_RW_DIRS)
        .map(|n| spare_rw_dir(&rw, n))
        .filter(|p| !p.exists())
        .collect()
}

/// Makes `dir` (`rw/<sandbox>`, absent) out of a spare directory beside it if one is there:
/// one rename, which never replaces anything. False when none was taken (the caller makes
/// `dir` itself).
pub fn take_spare_rw_dir(dir: &Path) -> bool {
    use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
    let Some(rw) = dir.parent() else { return false };
    for n in 0..SPARE_RW_DIRS {
        let spare = spare_rw_dir(rw, n);
        match renameat2(
            AT_FDCWD,
            &spare,
            AT_FDCWD,
            dir,
            RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => return true,
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(_) => return false,
        }
    }
    false
}

/// `rw/<sandbox>/<container>`: one container's overlay `upper/` and `work/`.
pub fn rw_container_dir(runtime_dir: &Path, sandbox_id: &str, container_id: &str) -> PathBuf {
    rw_sandbox_dir(runtime_dir, sandbox_id).join(container_id)
}

/// `mountpoints/`: a read-only layer put above every image's layers, holding what a
/// container's set-up mounts over (`/proc`, `/dev`, `/sys`, `/etc/hosts`, `/etc/hostname`,
/// `/etc/resolv.conf`), as Docker's init layer does. Without it, each container created
/// those in its writable layer, seven inodes made and later deleted on disk per container.
pub fn mountpoints_layer(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("mountpoints")
}

/// Makes `mountpoints_layer` if it is not there yet (whole, through a rename: several
/// processes may try at once) and returns it.
pub fn ensure_mountpoints_layer(runtime_dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let layer = mountpoints_layer(runtime_dir);
    if layer.join("etc/resolv.conf").is_file() {
        return Ok(layer);
    }
    let tmp = runtime_dir.join(format!(".mountpoints-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for d in ["proc", "dev", "sys", "etc"] {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(tmp.join(d))?;
    }
    for f in ["hosts", "hostname", "resolv.conf"] {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(tmp.join("etc").join(f))?;
    }
    match std::fs::rename(&tmp, &layer) {
        Ok(()) => Ok(layer),
        // Another process was first (a non-empty directory is not replaced).
        Err(_) if layer.join("etc/resolv.conf").is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(layer)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Where `state` points when `/run` is a tmpfs: `/run/k1s`.
const RUN_STATE_ROOT: &str = "/run/k1s";

/// The directory under which `open_state_dir` makes `state` of a new runtime dir: `/run/k1s`
/// when `/run` is a tmpfs, as on systemd and Debian hosts; none otherwise (then `state` is a
/// plain directory of the data dir).
fn state_root() -> Option<PathBuf> {
    let fs = nix::sys::statfs::statfs("/run").ok()?;
    (fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC).then(|| PathBuf::from(RUN_STATE_ROOT))
}

/// Makes sure `<runtime dir>/state` leads to a directory (its `sandboxes` and `spares` are
/// made by their users), and returns it as it is named in the runtime dir. On first use, with `/run` a tmpfs, `state` becomes a symlink to
/// `/run/k1s/<first 16 hex digits of the SHA-256 of the runtime dir's canonical path>`
/// (mode 0700, with a `runtime-dir` file naming its owner). After a reboot the link is still
/// there and its target is made again, empty: no sandbox survives a reboot. Sandbox state is
/// small files, sockets and mount points written on every container start and stop; on a
/// tmpfs those cost no journal and no disk.
///
/// A `state` that is a directory is kept as it is. Safe to call from several processes at
/// once (they agree on the target; the link is put in place by a rename). Starts no thread.
pub fn open_state_dir(runtime_dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let state = state_dir(runtime_dir);
    let mkdir = |p: &Path| {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(p)
    };
    match std::fs::symlink_metadata(&state) {
        Ok(m) if m.file_type().is_symlink() => mkdir(&std::fs::read_link(&state)?)?,
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match state_root() {
            Some(root) => {
                std::fs::create_dir_all(runtime_dir)?;
                let canonical = std::fs::canonicalize(runtime_dir)?;
                let hash = <sha2::Sha256 as sha2::Digest>::digest(
                    canonical.as_os_str().as_encoded_bytes(),
                );
                let target = root.join(&hex::encode(hash)[..16]);
                mkdir(&target)?;
                std::fs::write(
                    target.join("runtime-dir"),
                    format!("{}\n", canonical.display()),
                )?;
                let tmp = runtime_dir.join(format!(".state-{}", std::process::id()));
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(&target, &tmp)?;
                std::fs::rename(&tmp, &state)?;
            }
            None => mkdir(&state)?,
        },
        Err(e) => return Err(e),
    }
    Ok(state)
}

/// Where `open_state_dir` put the state of `runtime_dir` outside it (the symlink's target),
/// if it did: what a caller that throws the runtime dir away (a test) deletes as well.
pub fn external_state_dir(runtime_dir: &Path) -> Option<PathBuf> {
    std::fs::read_link(state_dir(runtime_dir)).ok()
}

impl SandboxPaths {
    pub fn new(data_dir: &Path, sandbox_id: &str) -> SandboxPaths {
        SandboxPaths {
            dir: sandboxes_dir(data_dir).join(sandbox_id),
        }
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("sandbox.json")
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("shim.sock")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("shim.pid")
    }
    pub fn shim_log(&self) -> PathBuf {
        self.dir.join("shim.log")
    }
    pub fn ns_dir(&self) -> PathBuf {
        self.dir.join("ns")
    }
    pub fn ns(&self, name: &str) -> PathBuf {
        self.ns_dir().join(name)
    }
    pub fn etc(&self) -> PathBuf {
        self.dir.join("etc")
    }
    pub fn containers(&self) -> PathBuf {
        self.dir.join("containers")
    }
    pub fn container(&self, cid: &str) -> PathBuf {
        self.containers().join(cid)
    }
    pub fn container_config(&self, cid: &str) -> PathBuf {
        self.container(cid).join("config.json")
    }
    pub fn container_state(&self, cid: &str) -> PathBuf {
        self.container(cid).join("state.json")
    }
    /// OCI bundle directory (runc/crun handlers).
    pub fn bundle(&self, cid: &str) -> PathBuf {
        self.container(cid).join("bundle")
    }
    /// `--root` state directory of the OCI runtime binary, per data dir (`state/oci-runtime`).
    pub fn oci_root(&self) -> PathBuf {
        self.dir
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("/"))
            .join("oci-runtime")
    }
}

/// `sandbox.json`: written once by the daemon before the shim starts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    pub config: crate::cri::PodSandboxConfig,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Pod cgroup path relative to each hierarchy root.
    pub cgroup: String,
    /// OCI runtime binary for this pod's containers (`None` = built-in).
    #[serde(default)]
    pub handler_bin: Option<PathBuf>,
}

/// A path usable with `bind`/`connect` for a unix socket even when `path` is longer than
/// `sun_path` (108 bytes): the parent directory is opened and addressed through
/// `/proc/self/fd/N/`. Keep the returned fd alive while using the path.
pub fn socket_addr(path: &Path) -> std::io::Result<(Option<std::os::fd::OwnedFd>, PathBuf)> {
    if path.as_os_str().len() < 100 {
        return Ok((None, path.to_path_buf()));
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or_default();
    let dir = std::fs::File::open(parent)?;
    let fd: std::os::fd::OwnedFd = dir.into();
    let short = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ))
    .join(name);
    Ok((Some(fd), short))
}

/// Creates `dir` (and its parents) and marks it as the top of unrelated directory trees:
/// ext4's `FS_TOPDIR_FL` (`chattr +T`), so the allocator spreads its subdirectories (one per
/// pod or sandbox) over block groups instead of packing them next to their parent.
///
/// Why: on ext4 without a journal, allocating an inode scans past every inode of the group
/// freed in the last minute or more (`recently_deleted`). Pods create and free a few dozen
/// files each; packed into one group, each pod's creates got slower after a burst of
/// deletions (see docs/ARCHITECTURE.md, "Node"). The flag is only a placement hint:
/// filesystems without it (tmpfs, xfs, btrfs) refuse the ioctl, which is ignored.
pub fn create_spread_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let f = std::fs::File::open(dir)?;
    let _ = set_topdir_flag(&f);
    Ok(())
}

// FS_IOC_GETFLAGS / FS_IOC_SETFLAGS: declared with `long`, but the kernel reads and writes
// an int (as chattr does).
nix::ioctl_read_bad!(get_flags, 0x8008_6601, libc::c_int);
nix::ioctl_write_ptr_bad!(set_flags, 0x4008_6602, libc::c_int);
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

#[allow(unsafe_code)]
fn inode_flags(f: &std::fs::File) -> nix::Result<libc::c_int> {
    use std::os::fd::AsRawFd;
    let mut flags: libc::c_int = 0;
    // SAFETY: the ioctl writes one int into `flags`, which lives across the call.
    unsafe { get_flags(f.as_raw_fd(), &mut flags) }?;
    Ok(flags)
}

#[allow(unsafe_code)]
fn set_topdir_flag(f: &std::fs::File) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = inode_flags(f)?;
    if flags & FS_TOPDIR_FL == 0 {
        // SAFETY: the ioctl reads one int from a reference that lives across the call.
        unsafe { set_flags(f.as_raw_fd(), &(flags | FS_TOPDIR_FL)) }?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_rw_dirs_are_made_taken_once_and_never_replace_a_sandbox_dir() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let tmp = tempfile::tempdir().expect("temp dir");
        let runtime = tmp.path();
        // No `rw` yet: nothing is made.
        ensure_spare_rw_dirs(runtime);
        assert!(!runtime.join("rw").exists());
        std::fs::create_dir(runtime.join("rw")).expect("rw");
        ensure_spare_rw_dirs(runtime);
        let spares: Vec<PathBuf> = (0..SPARE_RW_DIRS)
            .map(|n| runtime.join(format!("rw/.spare-{n}")))
            .collect();
        for s in &spares {
            let m = std::fs::metadata(s).expect("spare made");
            assert_eq!(m.permissions().mode() & 0o777, 0o700);
            assert!(is_spare_rw_dir(s.file_name().expect("name")));
        }
        let first = std::fs::metadata(&spares[0]).expect("spare").ino();
        // A sandbox's dir is a spare renamed: same inode, the spare gone.
        let a = rw_sandbox_dir(runtime, "a");
        assert!(take_spare_rw_dir(&a));
        assert_eq!(std::fs::metadata(&a).expect("taken").ino(), first);
        assert!(!spares[0].exists());
        assert!(!is_spare_rw_dir(a.file_name().expect("name")));
        // An existing sandbox dir is never replaced, even an empty one.
        assert!(!take_spare_rw_dir(&a));
        assert_eq!(std::fs::metadata(&a).expect("kept").ino(), first);
        assert!(spares[1].exists());
        // When all are taken, the caller makes the directory itself.
        assert!(take_spare_rw_dir(&rw_sandbox_dir(runtime, "b")));
        assert!(!take_spare_rw_dir(&rw_sandbox_dir(runtime, "c")));
        ensure_spare_rw_dirs(runtime);
        assert!(spares.iter().all(|s| s.is_dir()));
    }

    #[test]
    fn spread_dirs_carry_the_topdir_flag_on_ext4() {
        let tmp = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
        let dir = tmp.path().join("a/sandboxes");
        create_spread_dir(&dir).expect("create");
        assert!(dir.is_dir());
        // Idempotent on an existing directory.
        create_spread_dir(&dir).expect("again");
        const EXT4_SUPER_MAGIC: i64 = 0xEF53;
        let fs = nix::sys::statfs::statfs(&dir).expect("statfs");
        if fs.filesystem_type().0 as i64 != EXT4_SUPER_MAGIC {
            eprintln!("temp dir is not on ext4: only creation checked");
            return;
        }
        let flags = inode_flags(&std::fs::File::open(&dir).expect("open")).expect("flags");
        assert_ne!(flags & FS_TOPDIR_FL, 0, "flags {flags:#x}");
        // The parent made on the way is left alone.
        let parent = inode_flags(&std::fs::File::open(tmp.path().join("a")).expect("open"));
        assert_eq!(parent.expect("flags") & FS_TOPDIR_FL, 0);
    }
}
