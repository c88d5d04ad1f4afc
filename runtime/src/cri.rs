//! CRI-shaped types and the `ContainerRuntime` trait the kubelet programs against.
//!
//! Owns the vocabulary (sandbox, container, image, state, exit reasons) and nothing else: no
//! Kubernetes types appear here, and no implementation. `crate::Runtime` implements the trait
//! with the built-in shim; tests and a future remote CRI client can implement it too.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::Error;
pub use crate::image::pull::PullOptions;
pub use crate::image::RegistryAuth;

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// Opaque sandbox identifier (64 hex characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SandboxId(pub String);

/// Opaque container identifier (64 hex characters), unique across sandboxes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContainerId(pub String);

impl std::fmt::Display for SandboxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::fmt::Display for ContainerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which network namespace the pod's containers live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum NetMode {
    /// A fresh network namespace with only `lo` (up); the network crate adds the rest.
    #[default]
    Pod,
    /// The host's network (and UTS) namespace: `hostNetwork: true`.
    Host,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodSandboxConfig {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub hostname: String,
    pub log_dir: Option<PathBuf>,
    /// Full content of the pod's /etc/resolv.conf.
    pub dns: String,
    /// Full content of the pod's /etc/hosts.
    pub hosts: String,
    /// Cgroup path (relative to each hierarchy root) under which the pod cgroup is created;
    /// `None` means `k1s`.
    pub cgroup_parent: Option<String>,
    pub net: NetMode,
    /// RuntimeClass handler: `None` (or "") = the built-in runtime; "runc"/"crun" run the
    /// same containers through an OCI bundle with that binary.
    pub runtime_handler: Option<String>,
    pub labels: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxState {
    Ready,
    NotReady,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodSandboxStatus {
    pub id: SandboxId,
    pub config: PodSandboxConfig,
    pub state: SandboxState,
    pub created_at: DateTime<Utc>,
    /// Pid of the shim that holds the namespaces (0 once it is gone).
    pub shim_pid: u32,
    /// Path to a file that refers to the pod's network namespace (bind-mounted nsfs file);
    /// `None` with `NetMode::Host`.
    pub netns_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub host_path: PathBuf,
    pub container_path: String,
    pub readonly: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// cgroup v1 `cpu.shares` (2..262144); converted to `cpu.weight` on v2.
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per `cpu_period`; `None` = unlimited.
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub pids_limit: Option<i64>,
    /// `/proc/<pid>/oom_score_adj` of the container's processes (-1000..=1000), set before
    /// exec; `None` keeps what the shim has (which inherits the daemon's, so the kubelet
    /// always sets it).
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
}

/// Seccomp profile of a container (Kubernetes `seccompProfile.type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeccompProfile {
    /// The runtime's default filter (see `container::seccomp`).
    #[default]
    RuntimeDefault,
    Unconfined,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityConfig {
    pub privileged: bool,
    /// Capability names with or without the `CAP_` prefix; `ALL` is understood.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub read_only_rootfs: bool,
    pub no_new_privs: bool,
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    /// Supplementary groups added to the user's own (Kubernetes supplementalGroups and
    /// fsGroup).
    #[serde(default)]
    pub supplemental_groups: Vec<u32>,
    /// Ignored (no filter) for privileged containers.
    pub seccomp: SeccompProfile,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub name: String,
    /// Image reference as the user wrote it (`busybox`, `docker.io/library/busybox:1.36`).
    pub image: String,
    /// Overrides the image Entrypoint (Kubernetes `command`).
    pub command: Vec<String>,
    /// Overrides the image Cmd (Kubernetes `args`).
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub mounts: Vec<Mount>,
    /// uid/gid from the image or pod; `security.run_as_*` wins when set.
    pub user: Option<(u32, u32)>,
    pub tty: bool,
    pub stdin: bool,
    /// Close stdin when the first attached client detaches (Kubernetes `stdinOnce`).
    #[serde(default)]
    pub stdin_once: bool,
    pub resources: Resources,
    pub security: SecurityConfig,
    /// CRI log file; its directory is created. `None` = logs discarded.
    pub log_path: Option<PathBuf>,
    pub labels: Vec<(String, String)>,
}

/// Exit reasons, spelled as Kubernetes reports them.
pub const REASON_COMPLETED: &str = "Completed";
pub const REASON_ERROR: &str = "Error";
pub const REASON_OOM_KILLED: &str = "OOMKilled";
pub const REASON_START_ERROR: &str = "StartError";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContainerState {
    Created,
    Running {
        pid: u32,
        started_at: DateTime<Utc>,
    },
    Exited {
        exit_code: i32,
        reason: String,
        message: String,
        started_at: Option<DateTime<Utc>>,
        finished_at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerStatus {
    pub id: ContainerId,
    pub sandbox_id: SandboxId,
    pub name: String,
    pub image: String,
    /// `sha256:<config digest>` of the image the container runs.
    pub image_id: String,
    pub state: ContainerState,
    pub created_at: DateTime<Utc>,
    pub log_path: Option<PathBuf>,
    pub labels: Vec<(String, String)>,
}

/// Emitted once per container exit, by the shim, as it happens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerExitEvent {
    pub sandbox_id: SandboxId,
    pub container_id: ContainerId,
    pub state: ContainerState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecResult {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStats {
    pub cpu_usage_ns: u64,
    pub memory_working_set_bytes: u64,
    pub pids: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageStatus {
    /// `sha256:<config digest>`.
    pub id: String,
    pub repo_tags: Vec<String>,
    /// `domain/repository@sha256:<digest>` of the manifest (or index) the image was pulled by.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    pub size_bytes: u64,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
}

/// What the kubelet needs from a container runtime. All calls are made by the kubelet's pod
/// workers (and its PLEG-like event loop for `events`).
pub trait ContainerRuntime: Send + Sync {
    /// Creates the pod's namespaces (held by a per-pod shim) and returns once they exist.
    fn run_pod_sandbox<'a>(&'a self, config: &'a PodSandboxConfig) -> BoxFut<'a, SandboxId>;
    /// Stops every container of the sandbox (SIGKILL after `timeout`), keeps records.
    fn stop_pod_sandbox<'a>(&'a self, id: &'a SandboxId) -> BoxFut<'a, ()>;
    /// Stops the sandbox if needed and removes everything it owns on disk and in cgroups.
    fn remove_pod_sandbox<'a>(&'a self, id: &'a SandboxId) -> BoxFut<'a, ()>;
    fn pod_sandbox_status<'a>(&'a self, id: &'a SandboxId) -> BoxFut<'a, PodSandboxStatus>;
    fn list_pod_sandboxes(&self) -> BoxFut<'_, Vec<PodSandboxStatus>>;

    fn create_container<'a>(
        &'a self,
        sandbox: &'a SandboxId,
        config: &'a ContainerConfig,
    ) -> BoxFut<'a, ContainerId>;
    fn start_container<'a>(&'a self, id: &'a ContainerId) -> BoxFut<'a, ()>;
    /// SIGTERM, then SIGKILL after `timeout`; returns once the container has exited.
    fn stop_container<'a>(
        &'a self,
        id: &'a ContainerId,
        timeout: std::time::Duration,
    ) -> BoxFut<'a, ()>;
    fn remove_container<'a>(&'a self, id: &'a ContainerId) -> BoxFut<'a, ()>;
    fn container_status<'a>(&'a self, id: &'a ContainerId) -> BoxFut<'a, ContainerStatus>;
    /// After the kubelet renamed the log file (rotation), writes go to a new file.
    fn reopen_container_log<'a>(&'a self, id: &'a ContainerId) -> BoxFut<'a, ()>;
    fn list_containers(&self) -> BoxFut<'_, Vec<ContainerStatus>>;
    fn container_stats<'a>(&'a self, id: &'a ContainerId) -> BoxFut<'a, ContainerStats>;
    fn exec_sync<'a>(
        &'a self,
        id: &'a ContainerId,
        cmd: &'a [String],
        timeout: std::time::Duration,
    ) -> BoxFut<'a, ExecResult>;
    /// Container exits, pushed by the shims (no polling).
    fn events(&self) -> broadcast::Receiver<ContainerExitEvent>;

    /// Pulls `reference` from its registry with `options` (credentials from the pod's
    /// imagePullSecrets; see `image::credentials::credentials_for`). Called by the pod worker
    /// when the image is missing or the pull policy is Always.
    fn pull_image<'a>(
        &'a self,
        reference: &'a str,
        options: &'a PullOptions,
    ) -> BoxFut<'a, ImageStatus>;
    fn import_image<'a>(&'a self, archive: &'a std::path::Path) -> BoxFut<'a, Vec<ImageStatus>>;
    fn image_status<'a>(&'a self, reference: &'a str) -> BoxFut<'a, Option<ImageStatus>>;
    fn list_images(&self) -> BoxFut<'_, Vec<ImageStatus>>;
    fn remove_image<'a>(&'a self, reference: &'a str) -> BoxFut<'a, ()>;
}
