//! `ContainerSpec`: a container fully resolved by the daemon (image config merged with the
//! CRI config, layer paths known), written to `containers/<cid>/config.json` and read by the
//! shim and by the exec helper. Plain data; no behaviour.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cri::{ContainerConfig, Resources};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindMount {
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub destination: String,
    pub readonly: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub id: String,
    pub sandbox_id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    /// Lower layers, top-most first (overlayfs `lowerdir` order).
    pub lower_dirs: Vec<PathBuf>,
    /// `<container dir>` (below `state`): holds rootfs/, and upper/ and work/ unless
    /// `rw_dir` is set.
    pub dir: PathBuf,
    /// `rw/<sandbox>/<container>` (on disk): holds upper/ and work/. None in configs written
    /// before writable layers left the container dir.
    #[serde(default)]
    pub rw_dir: Option<PathBuf>,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// Docker-style user from the image (`1000`, `1000:1000`, `nobody`), may be empty.
    pub image_user: String,
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    /// Supplementary groups beyond the user's own (the pod's supplementalGroups, fsGroup).
    #[serde(default)]
    pub supplemental_groups: Vec<u32>,
    /// Final effective/permitted/bounding capability set, upper-case without `CAP_`.
    pub capabilities: Vec<String>,
    pub privileged: bool,
    pub no_new_privs: bool,
    /// Install the RuntimeDefault seccomp filter before exec.
    #[serde(default)]
    pub seccomp: bool,
    pub read_only_rootfs: bool,
    pub mounts: Vec<BindMount>,
    pub tty: bool,
    pub resources: Resources,
    /// Cgroup path relative to each hierarchy root, e.g. `k1s/pod<uid>/<cid>`.
    pub cgroup: String,
    pub log_path: Option<PathBuf>,
    pub config: ContainerConfig,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl ContainerSpec {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    fn rw(&self) -> &PathBuf {
        self.rw_dir.as_ref().unwrap_or(&self.dir)
    }
    pub fn upper(&self) -> PathBuf {
        self.rw().join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.rw().join("work")
    }
}
