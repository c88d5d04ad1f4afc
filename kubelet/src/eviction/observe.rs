//! What the eviction manager measures each cycle, as upstream derives its signals:
//! `memory.available` is the node's capacity minus the working set of everything on it
//! (in use minus inactive file pages, from /proc/meminfo like cAdvisor's root container);
//! `nodefs.*` come from statvfs of the data directory, `imagefs.*` of the runtime's
//! directory (the same numbers when both live on one filesystem).

use std::collections::BTreeMap;
use std::path::Path;

use super::threshold::Signal;

/// One signal's available amount and the capacity it is measured against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub available: u64,
    pub capacity: u64,
}

pub type Observations = BTreeMap<Signal, Observation>;

/// `MemTotal`, and the working set (in use minus `Inactive(file)`), in bytes.
fn memory_from_meminfo(text: &str) -> Option<(u64, u64)> {
    let kb = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let total = kb("MemTotal:")?;
    let free = kb("MemFree:")?;
    let inactive_file = kb("Inactive(file):").unwrap_or(0);
    let working_set = total.saturating_sub(free).saturating_sub(inactive_file);
    Some((total * 1024, working_set * 1024))
}

/// (bytes available to unprivileged users, bytes total, inodes free, inodes total).
fn filesystem(path: &Path) -> Option<(u64, u64, u64, u64)> {
    let mut cur = path;
    while !cur.exists() {
        cur = cur.parent()?;
    }
    let s = nix::sys::statvfs::statvfs(cur).ok()?;
    let frsize = s.fragment_size() as u64;
    Some((
        s.blocks_available() as u64 * frsize,
        s.blocks() as u64 * frsize,
        s.files_free() as u64,
        s.files() as u64,
    ))
}

/// Measures every signal; `memory_capacity` is the node's (as in its Node object).
pub fn observe(memory_capacity: u64, data_dir: &Path, image_dir: &Path) -> Observations {
    let mut out = Observations::new();
    if let Some((_, working_set)) = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| memory_from_meminfo(&t))
    {
        out.insert(
            Signal::MemoryAvailable,
            Observation {
                available: memory_capacity.saturating_sub(working_set),
                capacity: memory_capacity,
            },
        );
    }
    for (dir, bytes, inodes) in [
        (data_dir, Signal::NodeFsAvailable, Signal::NodeFsInodesFree),
        (
            image_dir,
            Signal::ImageFsAvailable,
            Signal::ImageFsInodesFree,
        ),
    ] {
        if let Some((avail, total, ifree, itotal)) = filesystem(dir) {
            out.insert(
                bytes,
                Observation {
                    available: avail,
                    capacity: total,
                },
            );
            // Filesystems without inode limits (btrfs, tmpfs with nr_inodes=0) report 0.
            if itotal > 0 {
                out.insert(
                    inodes,
                    Observation {
                        available: ifree,
                        capacity: itotal,
                    },
                );
            }
        }
    }
    out
}

/// Bytes allocated to the files under `dir` (not following symlinks, not crossing into
/// other filesystems), at most `max_entries` looked at: a pod's share of the node's disk.
pub fn dir_usage(dir: &Path, max_entries: usize) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(root) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let dev = root.dev();
    let mut total = root.blocks() * 512;
    let mut todo = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            seen += 1;
            if seen > max_entries {
                return total;
            }
            let Ok(m) = e.metadata() else { continue };
            if m.dev() != dev {
                continue;
            }
            total += m.blocks() * 512;
            if m.is_dir() {
                todo.push(e.path());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_set_leaves_out_inactive_file_pages() {
        let text = "MemTotal:        1000 kB\nMemFree:          200 kB\nMemAvailable:     600 kB\nInactive(file):   300 kB\n";
        assert_eq!(memory_from_meminfo(text), Some((1000 * 1024, 500 * 1024)));
    }

    #[test]
    fn observes_this_machine() {
        let dir = std::env::temp_dir();
        let o = observe(1 << 40, &dir, &dir.join("missing/below"));
        let mem = o[&Signal::MemoryAvailable];
        assert!(mem.available > 0 && mem.available <= 1 << 40);
        let fs = o[&Signal::NodeFsAvailable];
        assert!(fs.available <= fs.capacity && fs.capacity > 0);
        assert_eq!(o[&Signal::ImageFsAvailable].capacity, fs.capacity);
    }
}
