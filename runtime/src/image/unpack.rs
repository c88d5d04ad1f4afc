//! Safe unpacking of one image layer (an uncompressed tar stream) into an empty directory.
//!
//! We never use `tar::Entry::unpack_in` (RUSTSEC-2018-0002, RUSTSEC-2021-0080,
//! CVE-2026-33055/33056): every entry is resolved with `safe_path` against a directory fd,
//! and the final component is created with `*at` calls that do not follow symlinks.
//! Entries with `..` are skipped, absolute names are made relative, hard links resolve inside
//! the layer only, and OCI whiteouts become overlayfs whiteouts (`.wh.x` -> char dev 0/0,
//! `.wh..wh..opq` -> `trusted.overlay.opaque=y`). Xattrs in the `trusted.overlay.` namespace
//! are never taken from the archive. Does not decompress or verify digests (see `store`).

use std::ffi::{CString, OsStr};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, futimens, mkdirat, mknodat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;
use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::safe_path::{clean_components, display, ensure_dir, open_in_root};

const WHITEOUT_PREFIX: &str = ".wh.";
const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    pub skipped: u64,
    pub bytes: u64,
}

/// Unpacks the tar stream `reader` into `dest` (an existing directory). `limit` caps the sum
/// of regular file sizes (decompression bombs). Entries that would escape are skipped.
pub fn unpack_layer(
    reader: impl Read,
    dest: &Path,
    digest: &str,
    limit: u64,
) -> Result<UnpackStats> {
    let root = nix::fcntl::open(
        dest,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(Error::sys("open layer directory", dest))?;
    let fail = |reason: String| Error::UnpackLayer {
        digest: digest.to_string(),
        reason,
    };
    let mut archive = tar::Archive::new(reader);
    let mut stats = UnpackStats::default();
    let entries = archive
        .entries()
        .map_err(|e| fail(format!("read tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| fail(format!("read tar entry: {e}")))?;
        let raw = entry.path_bytes().into_owned();
        let path = Path::new(OsStr::from_bytes(&raw));
        let Some(components) = clean_components(path) else {
            warn!(layer = digest, path = %path.display(), "skipping layer entry with '..'");
            stats.skipped += 1;
            continue;
        };
        let size = entry.header().size().unwrap_or(0);
        if entry.header().entry_type().is_file() {
            stats.bytes = stats.bytes.saturating_add(size);
            if stats.bytes > limit {
                return Err(Error::LayerTooLarge {
                    digest: digest.to_string(),
                    limit,
                });
            }
        }
        match unpack_entry(&root, &components, &mut entry) {
            Ok(true) => stats.entries += 1,
            Ok(false) => stats.skipped += 1,
            Err(e) => {
                warn!(layer = digest, path = %path.display(), error = %e, "skipping layer entry");
                stats.skipped += 1;
            }
        }
    }
    debug!(layer = digest, ?stats, "unpacked layer");
    Ok(stats)
}

/// Returns Ok(false) for entries deliberately ignored.
fn unpack_entry<R: Read>(
    root: &OwnedFd,
    components: &[&OsStr],
    entry: &mut tar::Entry<'_, R>,
) -> Result<bool> {
    let Some((name, parent)) = components.split_last() else {
        return Ok(false); // the layer root itself
    };
    let parent_fd = ensure_dir(root, parent, 0o755).map_err(Error::sys(
        "create parent directory",
        crate::safe_path::join(parent),
    ))?;
    let name_s = name.as_bytes();
    if name_s == WHITEOUT_OPAQUE.as_bytes() {
        set_xattr(&parent_fd, "trusted.overlay.opaque", b"y")?;
        return Ok(true);
    }
    if let Some(hidden) = name_s.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/') {
            return Ok(false);
        }
        let hidden = OsStr::from_bytes(hidden);
        remove_existing(&parent_fd, hidden)?;
        mknodat(&parent_fd, hidden, SFlag::S_IFCHR, Mode::empty(), 0)
            .map_err(Error::sys("create whiteout", display(hidden)))?;
        return Ok(true);
    }
    let header = entry.header().clone();
    let mode = Mode::from_bits_truncate(header.mode().unwrap_or(0o644) & 0o7777);
    let uid = Uid::from_raw(header.uid().unwrap_or(0) as u32);
    let gid = Gid::from_raw(header.gid().unwrap_or(0) as u32);
    let mtime = TimeSpec::new(header.mtime().unwrap_or(0) as i64, 0);
    let what = display(name);
    match header.entry_type() {
        EntryType::Directory => {
            match fstatat(&parent_fd, *name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st)
                    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR => {}
                Ok(_) => {
                    remove_existing(&parent_fd, name)?;
                    mkdirat(&parent_fd, *name, Mode::from_bits_truncate(0o700))
                        .map_err(Error::sys("create directory", &what))?;
                }
                Err(Errno::ENOENT) => {
                    mkdirat(&parent_fd, *name, Mode::from_bits_truncate(0o700))
                        .map_err(Error::sys("create directory", &what))?;
                }
                Err(e) => return Err(Error::sys("stat", &what)(e)),
            }
            let fd = openat(
                &parent_fd,
                *name,
                OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(Error::sys("open directory", &what))?;
            apply_xattrs(&fd, entry)?;
            fchown(&fd, Some(uid), Some(gid)).map_err(Error::sys("chown directory", &what))?;
            fchmod(&fd, mode).map_err(Error::sys("chmod directory", &what))?;
        }
        EntryType::Regular | EntryType::Continuous => {
            remove_existing(&parent_fd, name)?;
            let fd = openat(
                &parent_fd,
                *name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(Error::sys("create file", &what))?;
            let mut file = std::fs::File::from(fd);
            std::io::copy(entry, &mut file).map_err(Error::io("write file", &what))?;
            file.flush().map_err(Error::io("write file", &what))?;
            apply_xattrs(&file, entry)?;
            fchown(&file, Some(uid), Some(gid)).map_err(Error::sys("chown file", &what))?;
            // After chown, which clears set-id bits.
            fchmod(&file, mode).map_err(Error::sys("chmod file", &what))?;
            futimens(&file, &mtime, &mtime).map_err(Error::sys("set times of", &what))?;
        }
        EntryType::Symlink => {
            let target = entry.link_name_bytes().ok_or_else(|| Error::UnpackLayer {
                digest: String::new(),
                reason: format!("symlink {what} without target"),
            })?;
            remove_existing(&parent_fd, name)?;
            symlinkat(OsStr::from_bytes(&target), &parent_fd, *name)
                .map_err(Error::sys("create symlink", &what))?;
            fchownat(
                &parent_fd,
                *name,
                Some(uid),
                Some(gid),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(Error::sys("chown symlink", &what))?;
        }
        EntryType::Link => {
            let target = entry
                .link_name_bytes()
                .map(|t| t.into_owned())
                .unwrap_or_default();
            let target = Path::new(OsStr::from_bytes(&target));
            let Some(tcomp) = clean_components(target) else {
                return Ok(false);
            };
            let Some((tname, tparent)) = tcomp.split_last() else {
                return Ok(false);
            };
            // The link target's directory is resolved inside the layer; its last component is
            // not followed (linkat without AT_SYMLINK_FOLLOW).
            let tparent_fd = open_in_root(
                root,
                &crate::safe_path::join(tparent),
                OFlag::O_DIRECTORY | OFlag::O_RDONLY,
            )
            .map_err(Error::sys("open hard link target directory", target))?;
            remove_existing(&parent_fd, name)?;
            linkat(&tparent_fd, *tname, &parent_fd, *name, AtFlags::empty())
                .map_err(Error::sys("create hard link", &what))?;
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let kind = match header.entry_type() {
                EntryType::Char => SFlag::S_IFCHR,
                EntryType::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            remove_existing(&parent_fd, name)?;
            mknodat(
                &parent_fd,
                *name,
                kind,
                mode,
                nix::sys::stat::makedev(major.into(), minor.into()),
            )
            .map_err(Error::sys("create device node", &what))?;
            fchownat(
                &parent_fd,
                *name,
                Some(uid),
                Some(gid),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(Error::sys("chown device node", &what))?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Removes whatever `name` is in `dir` (a file, a symlink, an empty directory); absent is fine.
fn remove_existing(dir: &OwnedFd, name: &OsStr) -> Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) => match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(Error::sys("remove directory", display(name))(e)),
        },
        Err(e) => Err(Error::sys("remove", display(name))(e)),
    }
}

/// PAX `SCHILY.xattr.*` records, except the overlay namespace which would let an image forge
/// whiteouts, redirects or metacopy on the host's overlayfs.
fn apply_xattrs<R: Read>(fd: &impl AsFd, entry: &mut tar::Entry<'_, R>) -> Result<()> {
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return Ok(());
    };
    for ext in exts.flatten() {
        let Ok(key) = ext.key() else { continue };
        let Some(attr) = key.strip_prefix("SCHILY.xattr.") else {
            continue;
        };
        if attr.starts_with("trusted.overlay.")
            || !(attr.starts_with("user.")
                || attr.starts_with("security.")
                || attr.starts_with("trusted."))
        {
            continue;
        }
        if let Err(e) = set_xattr(fd, attr, ext.value_bytes()) {
            debug!(attr, error = %e, "ignoring xattr");
        }
    }
    Ok(())
}

#[allow(unsafe_code)]
fn set_xattr(fd: &impl AsFd, name: &str, value: &[u8]) -> Result<()> {
    let cname = CString::new(name).map_err(|_| Error::UnpackLayer {
        digest: String::new(),
        reason: format!("xattr name {name:?} has NUL"),
    })?;
    // SAFETY: fd is a live descriptor borrowed for the call; cname is NUL-terminated and value
    // points to value.len() readable bytes; the kernel does not keep either pointer.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_fd().as_raw_fd(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(Error::sys("set xattr", name)(Errno::last()));
    }
    Ok(())
}
