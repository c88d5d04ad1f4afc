//! Upstream's atomic writer for API-backed volumes (configMap, secret, downwardAPI,
//! projected): the files live in a timestamped directory `..<time>`, a symlink `..data` points
//! at it and each user-visible top-level name is a symlink through `..data`. An update writes a
//! new timestamped directory and renames a fresh `..data_tmp` symlink over `..data`, so a
//! reader inside the container sees either the old or the new set of files, never a mix.
//! It does not fetch anything; `volumes` builds the payload.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

/// One file of a volume: its bytes and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// The files of a volume, by relative path (`a`, `dir/b`).
pub type Payload = BTreeMap<String, File>;

/// A relative path a payload may use: no `..` element, no empty element, not starting with
/// `..` (names reserved for the writer's own entries), not absolute.
pub fn valid_path(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.starts_with("..")
        && rel.split('/').all(|p| !p.is_empty() && p != "..")
}

/// Make `dir` hold exactly `payload`. Returns whether anything changed on disk.
pub fn write(dir: &Path, payload: &Payload) -> io::Result<bool> {
    if let Some(bad) = payload.keys().find(|p| !valid_path(p)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid path {bad:?} in volume item"),
        ));
    }
    std::fs::create_dir_all(dir)?;
    let old = std::fs::read_link(dir.join(DATA)).ok();
    let current = old.as_ref().and_then(|o| read_tree(&dir.join(o)).ok());
    let unchanged = current.as_ref() == Some(payload);
    if !unchanged {
        let ts = new_timestamp_dir(dir)?;
        for (rel, f) in payload {
            let p = dir.join(&ts).join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&p, &f.data)?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(f.mode))?;
        }
        let tmp = dir.join(DATA_TMP);
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&ts, &tmp)?;
        std::fs::rename(&tmp, dir.join(DATA))?;
    }
    let top: std::collections::BTreeSet<&str> = payload
        .keys()
        .map(|k| k.split('/').next().unwrap_or(k))
        .collect();
    let mut changed = !unchanged;
    for name in &top {
        let p = dir.join(name);
        let target = Path::new(DATA).join(name);
        if std::fs::read_link(&p).ok().as_deref() == Some(target.as_path()) {
            continue;
        }
        // A file or directory from before the atomic layout, or a stale link.
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p)?,
            Ok(_) => std::fs::remove_file(&p)?,
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&target, &p)?;
        changed = true;
    }
    // User-visible names no longer in the payload, and old timestamped directories.
    let keep = std::fs::read_link(dir.join(DATA))?;
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name == DATA || Path::new(&name) == keep || top.contains(name.as_str()) {
            continue;
        }
        let p = e.path();
        let res = match e.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
            _ => std::fs::remove_file(&p),
        };
        if let Err(err) = res {
            tracing::warn!(path = %p.display(), error = %err, "failed to remove a stale volume entry");
        }
    }
    Ok(changed)
}

/// A fresh `..YYYY_MM_DD_HH_MM_SS.<n>` directory in `dir` (mode 0755); returns its name.
fn new_timestamp_dir(dir: &Path) -> io::Result<String> {
    let now = chrono::Utc::now();
    let base = now.format("..%Y_%m_%d_%H_%M_%S.").to_string();
    let mut n = now.timestamp_subsec_nanos();
    loop {
        let name = format!("{base}{n}");
        match std::fs::create_dir(dir.join(&name)) {
            Ok(()) => {
                std::fs::set_permissions(dir.join(&name), std::fs::Permissions::from_mode(0o755))?;
                return Ok(name);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n = n.wrapping_add(1),
            Err(e) => return Err(e),
        }
    }
}

/// The files under `root`, as a payload.
fn read_tree(root: &Path) -> io::Result<Payload> {
    let mut out = Payload::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root.join(&rel))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().to_string();
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let md = e.metadata()?;
            if md.is_dir() {
                stack.push(child);
            } else {
                let data = std::fs::read(e.path())?;
                let mode = md.permissions().mode() & 0o7777;
                out.insert(child, File { data, mode });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(items: &[(&str, &str)]) -> Payload {
        items
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    File {
                        data: v.as_bytes().to_vec(),
                        mode: 0o644,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn writes_swaps_and_prunes() -> io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let d = tmp.path();
        assert!(write(d, &payload(&[("a", "1"), ("dir/b", "2")]))?);
        assert_eq!(std::fs::read_to_string(d.join("a"))?, "1");
        assert_eq!(std::fs::read_to_string(d.join("dir/b"))?, "2");
        assert_eq!(std::fs::read_link(d.join("a"))?, Path::new("..data/a"));
        let first = std::fs::read_link(d.join(DATA))?;
        // Same content: nothing is rewritten.
        assert!(!write(d, &payload(&[("a", "1"), ("dir/b", "2")]))?);
        assert_eq!(std::fs::read_link(d.join(DATA))?, first);
        // New content: a new timestamped directory, the old one and the dropped key gone.
        assert!(write(d, &payload(&[("a", "3")]))?);
        assert_eq!(std::fs::read_to_string(d.join("a"))?, "3");
        assert_ne!(std::fs::read_link(d.join(DATA))?, first);
        assert!(!d.join(&first).exists());
        assert!(std::fs::symlink_metadata(d.join("dir")).is_err());
        let entries = std::fs::read_dir(d)?.count();
        assert_eq!(entries, 3, "a, ..data and one timestamped directory");
        Ok(())
    }

    #[test]
    fn replaces_plain_files_and_rejects_escapes() -> io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let d = tmp.path();
        std::fs::write(d.join("a"), "old")?;
        write(d, &payload(&[("a", "new")]))?;
        assert_eq!(std::fs::read_to_string(d.join("a"))?, "new");
        for bad in ["../x", "a/../../x", "/etc/x", "..data", ""] {
            assert!(write(d, &payload(&[(bad, "x")])).is_err(), "{bad}");
        }
        Ok(())
    }
}
