//! Path resolution confined to a root directory, by file descriptor.
//!
//! Used by layer unpacking and by rootfs setup. Every lookup goes through
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so `..`, absolute symlinks and symlink
//! chains resolve as if the root were `/` and can never leave it; the last component of a
//! path we create is always handled with `*at` calls on a parent fd without following it.
//! Paths are never canonicalised and then reused (CVE-2018-15664, CVE-2021-30465).

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

/// Splits a (possibly absolute) path into normal components; `None` if it contains `..`.
/// `.` and empty components are dropped, so `./a//b/` is `[a, b]` and `/` is `[]`.
pub fn clean_components(path: &Path) -> Option<Vec<&OsStr>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => return None,
        }
    }
    Some(out)
}

pub(crate) fn join(components: &[&OsStr]) -> PathBuf {
    components.iter().collect()
}

fn how(flags: OFlag, resolve: ResolveFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(resolve)
}

/// Opens `path` (relative to `root`, `..` clamped) with `flags`, symlinks resolved inside root.
pub fn open_in_root(root: impl AsFd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    openat2(
        root,
        rel,
        how(
            flags,
            ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        ),
    )
}

/// Opens `path` inside `root` refusing any symlink on the way (for /proc, /dev, /sys targets:
/// CVE-2023-28642, CVE-2026-41579).
pub fn open_no_symlinks(root: impl AsFd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    openat2(
        root,
        rel,
        how(
            flags,
            ResolveFlag::RESOLVE_IN_ROOT
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        ),
    )
}

/// `mkdir -p` inside `root`: every component is resolved in root, missing ones are created
/// with `mkdirat` on the already-resolved parent fd. Returns an `O_DIRECTORY` fd.
pub fn ensure_dir(root: &OwnedFd, components: &[&OsStr], mode: u32) -> nix::Result<OwnedFd> {
    let dir_flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY;
    if components.is_empty() {
        return open_in_root(root, Path::new("."), dir_flags);
    }
    match open_in_root(root, &join(components), dir_flags) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let mut cur = open_in_root(root, Path::new("."), dir_flags)?;
    for i in 0..components.len() {
        let prefix = join(&components[..=i]);
        cur = match open_in_root(root, &prefix, dir_flags) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                match mkdirat(&cur, components[i], Mode::from_bits_truncate(mode)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                open_in_root(root, &prefix, dir_flags)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

/// Lowercase name of a path component for logs.
pub(crate) fn display(c: &OsStr) -> String {
    String::from_utf8_lossy(c.as_bytes()).into_owned()
}
