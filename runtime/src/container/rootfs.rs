//! Building a container's root filesystem inside its new mount namespace (`setup`), then
//! masking and pivot_root (`finish`).
//!
//! Every mount target is created and opened relative to the rootfs fd (`safe_path`) and the
//! mount is made on `/proc/self/fd/N`, so a symlink swapped in by the image or a racing
//! container can never redirect a mount to the host (CVE-2021-30465). /proc, /dev and /sys
//! targets must not be symlinks at all (CVE-2023-28642, CVE-2026-41579); /dev is a fresh
//! tmpfs whose nodes we create, and masking binds our own verified /dev/null
//! (CVE-2025-31133/52565). Runs in the cloned child; errors are strings reported to the shim.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, makedev, mkdirat, mknodat, Mode, SFlag};
use nix::unistd::{chdir, pivot_root, symlinkat};

use crate::container::spec::ContainerSpec;
use crate::safe_path::{clean_components, ensure_dir, open_in_root, open_no_symlinks};

pub const MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

type R<T> = Result<T, String>;

fn fdpath(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn do_mount(
    src: Option<&str>,
    target: &OwnedFd,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    what: &str,
) -> R<()> {
    mount(src, fdpath(target).as_str(), fstype, flags, data)
        .map_err(|e| format!("mount {what}: {e}"))
}

/// Creates `path` inside root as a directory (if missing) and opens it without symlinks.
fn dir_target(root: &OwnedFd, path: &str, strict: bool) -> R<OwnedFd> {
    let comps = clean_components(Path::new(path))
        .ok_or_else(|| format!("mount destination {path:?} contains '..'"))?;
    ensure_dir(root, &comps, 0o755).map_err(|e| format!("create mount point {path}: {e}"))?;
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    let fd = if strict {
        open_no_symlinks(root, Path::new(path), flags)
    } else {
        open_in_root(root, Path::new(path), flags)
    };
    fd.map_err(|e| match e {
        Errno::ELOOP | Errno::EXDEV => format!("mount destination {path} is a symlink: refusing"),
        e => format!("open mount point {path}: {e}"),
    })
}

/// Creates `path` inside root as an empty file (if missing) and opens it.
fn file_target(root: &OwnedFd, path: &str) -> R<OwnedFd> {
    let comps = clean_components(Path::new(path))
        .ok_or_else(|| format!("mount destination {path:?} contains '..'"))?;
    let (name, parent) = comps
        .split_last()
        .ok_or_else(|| format!("mount destination {path:?} is the root"))?;
    let pfd =
        ensure_dir(root, parent, 0o755).map_err(|e| format!("create parent of {path}: {e}"))?;
    match openat(
        &pfd,
        *name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    ) {
        Ok(_) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(format!("create mount point {path}: {e}")),
    }
    open_in_root(root, Path::new(path), OFlag::O_PATH)
        .map_err(|e| format!("open mount point {path}: {e}"))
}

fn open_root(rootfs: &Path) -> R<OwnedFd> {
    nix::fcntl::open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open rootfs {}: {e}", rootfs.display()))
}

/// What is left of the set-up after `setup`: masking, the pivot into the rootfs and the
/// detaching of the old root (`finish`).
pub struct Pivot {
    root: OwnedFd,
    rootfs: std::path::PathBuf,
}

/// Mounts everything the container's spec asks for (what can fail on its account: an
/// image's symlinked mount point, a volume's missing source). `etc_dir` holds
/// hosts/hostname/resolv.conf. What is left (`finish`) can only fail on the host's account.
pub fn setup(spec: &ContainerSpec, etc_dir: &Path) -> R<Pivot> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("make mounts private: {e}"))?;
    let rootfs = spec.rootfs();
    mount_overlay(spec, &rootfs)?;
    let root = open_root(&rootfs)?;
    let nosuid_noexec_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;

    let proc_fd = dir_target(&root, "/proc", true)?;
    do_mount(
        Some("proc"),
        &proc_fd,
        Some("proc"),
        nosuid_noexec_nodev,
        None,
        "/proc",
    )?;
    setup_dev(&root)?;
    let sys_fd = dir_target(&root, "/sys", true)?;
    let sys_flags = nosuid_noexec_nodev
        | if spec.privileged {
            MsFlags::empty()
        } else {
            MsFlags::MS_RDONLY
        };
    if do_mount(
        Some("sysfs"),
        &sys_fd,
        Some("sysfs"),
        sys_flags,
        None,
        "/sys",
    )
    .is_err()
    {
        do_mount(
            Some("/sys"),
            &sys_fd,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
            "/sys (bind)",
        )?;
        if !spec.privileged {
            let sys_fd = dir_target(&root, "/sys", true)?;
            do_mount(
                None,
                &sys_fd,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | sys_flags,
                None,
                "/sys read-only",
            )?;
        }
    }
    for m in &spec.mounts {
        bind(&root, &m.source, &m.destination, m.readonly)?;
    }
    for f in ["hosts", "hostname", "resolv.conf"] {
        let src = etc_dir.join(f);
        if src.exists()
            && !spec
                .mounts
                .iter()
                .any(|m| m.destination == format!("/etc/{f}"))
        {
            bind(&root, &src, &format!("/etc/{f}"), false)?;
        }
    }
    drop((proc_fd, sys_fd));
    Ok(Pivot { root, rootfs })
}

/// Masks and read-only paths (but for a privileged container), then pivots into the rootfs
/// and detaches the old root (the detach waits for an RCU grace period, 0.1-0.2 ms): done
/// after the container is reported created, while the start request travels.
pub fn finish(spec: &ContainerSpec, pivot: Pivot) -> R<()> {
    let Pivot { root, rootfs } = pivot;
    if !spec.privileged {
        mask_paths(&root)?;
    }
    drop(root);
    chdir(&rootfs).map_err(|e| format!("chdir to rootfs: {e}"))?;
    pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detach old root: {e}"))?;
    chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    if spec.read_only_rootfs {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| format!("remount rootfs read-only: {e}"))?;
    }
    Ok(())
}

pub(crate) fn mount_overlay(spec: &ContainerSpec, rootfs: &Path) -> R<()> {
    // Explicit modes: this runs with umask 0, and the container's `/` takes the upper dir's
    // mode (0755, as containerd makes it; it was 0777, writable by any container user). The
    // directories above it and the work dir are the host's business: 0700.
    let upper = spec.upper();
    let rw = upper.parent().unwrap_or(Path::new("/")).to_path_buf();
    // The sandbox's first container: its `rw/<sandbox>` from a spare if there is one.
    if let Some(sandbox_rw) = rw.parent().filter(|d| !d.exists()) {
        crate::layout::take_spare_rw_dir(sandbox_rw);
    }
    for (d, mode) in [
        (rw, 0o700),
        (spec.work(), 0o700),
        (upper, 0o755),
        (rootfs.to_path_buf(), 0o755),
    ] {
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), mode)
            .create(&d)
            .map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    if spec.lower_dirs.is_empty() {
        return Err("image has no layers".into());
    }
    let lower: Vec<String> = spec
        .lower_dirs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    for p in spec.lower_dirs.iter().chain([&spec.upper(), &spec.work()]) {
        let s = p.display().to_string();
        if s.contains(',') || s.contains(':') {
            return Err(format!("overlay path {s} contains ',' or ':'"));
        }
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        spec.upper().display(),
        spec.work().display()
    );
    let overlay = |data: &str| {
        mount(
            Some("overlay"),
            rootfs,
            Some("overlay"),
            MsFlags::empty(),
            Some(data),
        )
    };
    // `volatile` (Linux 5.10): no sync of the upper layer, at unmount or ever. A writable
    // layer never outlives its container, nor a reboot (see `Runtime::discard_orphaned_layers`),
    // so its durability buys nothing, and the sync made every container exit wait for the
    // disk. Older kernels refuse the option: mount without it.
    overlay(&format!("{data},volatile"))
        .or_else(|e| match e {
            nix::errno::Errno::EINVAL => overlay(&data),
            e => Err(e),
        })
        .map_err(|e| format!("mount overlay at {}: {e}", rootfs.display()))
}

fn setup_dev(root: &OwnedFd) -> R<()> {
    let dev = dir_target(root, "/dev", true)?;
    do_mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
        "/dev",
    )?;
    // Reopen: the fd above is the directory under the mount.
    let dev = open_no_symlinks(
        root,
        Path::new("/dev"),
        OFlag::O_DIRECTORY | OFlag::O_RDONLY,
    )
    .map_err(|e| format!("open /dev: {e}"))?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        mknodat(
            &dev,
            name,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .map_err(|e| format!("mknod /dev/{name}: {e}"))?;
    }
    for (name, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        symlinkat(target, &dev, name).map_err(|e| format!("symlink /dev/{name}: {e}"))?;
    }
    let sub = |name: &str, mode: u32| -> R<OwnedFd> {
        mkdirat(&dev, name, Mode::from_bits_truncate(mode))
            .map_err(|e| format!("mkdir /dev/{name}: {e}"))?;
        open_no_symlinks(&dev, Path::new(name), OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(|e| format!("open /dev/{name}: {e}"))
    };
    let pts = sub("pts", 0o755)?;
    do_mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
        "/dev/pts",
    )?;
    let shm = sub("shm", 0o1777)?;
    do_mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
        Some("mode=1777,size=65536k"),
        "/dev/shm",
    )?;
    let mq = sub("mqueue", 0o755)?;
    do_mount(
        Some("mqueue"),
        &mq,
        Some("mqueue"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
        None,
        "/dev/mqueue",
    )?;
    Ok(())
}

fn bind(root: &OwnedFd, source: &Path, dest: &str, readonly: bool) -> R<()> {
    let src = nix::fcntl::open(source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| format!("open mount source {}: {e}", source.display()))?;
    let is_dir = fstat(&src)
        .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
        .map_err(|e| format!("stat {}: {e}", source.display()))?;
    let target = if is_dir {
        dir_target(root, dest, false)?
    } else {
        file_target(root, dest)?
    };
    refuse_kernel_fs(&target, dest)?;
    do_mount(
        Some(fdpath(&src).as_str()),
        &target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
        dest,
    )?;
    if readonly {
        let t = open_in_root(root, Path::new(dest), OFlag::O_PATH)
            .map_err(|e| format!("reopen {dest}: {e}"))?;
        do_mount(
            None,
            &t,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
            None,
            &format!("{dest} read-only"),
        )?;
    }
    Ok(())
}

/// A bind target that resolved into procfs or sysfs (for example through an image symlink
/// `/etc/hosts -> /proc/sys/kernel/core_pattern`) would turn our bind into a write path to
/// kernel knobs (CVE-2025-52565 family): refuse it.
fn refuse_kernel_fs(target: &OwnedFd, dest: &str) -> R<()> {
    use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC, SYSFS_MAGIC};
    let fs = fstatfs(target).map_err(|e| format!("statfs mount point {dest}: {e}"))?;
    let t = fs.filesystem_type();
    if t == PROC_SUPER_MAGIC || t == SYSFS_MAGIC {
        return Err(format!(
            "mount destination {dest} resolves into procfs or sysfs: refusing"
        ));
    }
    Ok(())
}

fn mask_paths(root: &OwnedFd) -> R<()> {
    let null = open_no_symlinks(root, Path::new("/dev/null"), OFlag::O_PATH)
        .map_err(|e| format!("open /dev/null: {e}"))?;
    let st = fstat(&null).map_err(|e| format!("stat /dev/null: {e}"))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR
        || st.st_rdev != makedev(1, 3)
    {
        return Err("/dev/null is not the null device: refusing to mask with it".into());
    }
    for p in MASKED_PATHS {
        let fd = match open_no_symlinks(root, Path::new(p), OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(format!("open masked path {p}: {e}")),
        };
        let is_dir = fstat(&fd)
            .map(|s| SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
            .unwrap_or(false);
        if is_dir {
            do_mount(
                Some("tmpfs"),
                &fd,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0"),
                p,
            )?;
        } else {
            do_mount(
                Some(fdpath(&null).as_str()),
                &fd,
                None,
                MsFlags::MS_BIND,
                None,
                p,
            )?;
        }
    }
    for p in READONLY_PATHS {
        let fd = match open_no_symlinks(root, Path::new(p), OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(format!("open read-only path {p}: {e}")),
        };
        do_mount(
            Some(fdpath(&fd).as_str()),
            &fd,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
            p,
        )?;
        let fd = open_no_symlinks(root, Path::new(p), OFlag::O_PATH)
            .map_err(|e| format!("reopen {p}: {e}"))?;
        do_mount(
            None,
            &fd,
            None,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_REC
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None,
            &format!("{p} read-only"),
        )?;
    }
    Ok(())
}
