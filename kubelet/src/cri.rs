//! What the kubelet needs from a container runtime, in CRI vocabulary and without Kubernetes
//! types. `runtime_adapter` implements it on k1s's own runtime; the pod workers only see this.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use k8s_openapi::jiff::Timestamp;
use tokio::io::{AsyncRead, AsyncWrite};

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, Default)]
pub struct SandboxSpec {
    pub pod_uid: String,
    pub name: String,
    pub namespace: String,
    pub hostname: String,
    pub host_network: bool,
    pub resolv_conf: String,
    /// Lines appended to the managed /etc/hosts (the pod's hostAliases).
    pub hosts: String,
    /// `<subdomain>.<namespace>.svc.<cluster domain>` for a pod with a subdomain: its hosts
    /// entry is then the FQDN and the hostname.
    pub domain: Option<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Sandbox {
    pub id: String,
    pub pod_uid: String,
    pub name: String,
    pub namespace: String,
    pub ip: Option<String>,
    pub ready: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Mount {
    pub host_path: String,
    pub container_path: String,
    pub readonly: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub mounts: Vec<Mount>,
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    /// The pod's supplementalGroups, then its fsGroup, as upstream adds them.
    pub supplemental_groups: Vec<u32>,
    pub privileged: bool,
    /// no_new_privs: set unless the container is privileged or asks for
    /// `allowPrivilegeEscalation: true` (k1s's default is upstream's restricted setting).
    pub no_new_privs: bool,
    /// `seccompProfile: Unconfined` (container's, else the pod's): no filter. Otherwise the
    /// runtime's default filter, as with the kubelet's `seccompDefault`.
    pub seccomp_unconfined: bool,
    pub read_only_rootfs: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    pub cpu_shares: Option<u64>,
    pub cpu_quota_us: Option<i64>,
    pub memory_limit: Option<u64>,
    /// `oom_score_adj` of the container's processes (see `qos`).
    pub oom_score_adj: Option<i32>,
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Created,
    Running {
        pid: u32,
        started_at: Timestamp,
    },
    Exited {
        code: i32,
        reason: String,
        message: Option<String>,
        started_at: Option<Timestamp>,
        finished_at: Timestamp,
    },
}

#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub sandbox_id: String,
    pub name: String,
    pub attempt: u32,
    pub image: String,
    pub image_id: String,
    pub state: RunState,
    pub log_path: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CriError {
    #[error("{0}")]
    ImagePull(String),
    #[error("{0}")]
    InvalidImage(String),
    #[error("{0}")]
    CreateContainer(String),
    #[error("{0}")]
    StartContainer(String),
    #[error("{0}")]
    Sandbox(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Other(String),
}

/// What an exec asks for.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub command: Vec<String>,
    /// Allocate a terminal: stdin/stdout/stderr are one pty (no separate stderr).
    pub tty: bool,
    pub stdin: bool,
    /// Initial terminal size (columns, rows).
    pub size: Option<(u16, u16)>,
}

pub type Reader = Pin<Box<dyn AsyncRead + Send>>;
pub type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// A running exec: its streams, a terminal resize function and its exit code. Dropping it kills
/// the process.
pub struct ExecStreams {
    pub stdin: Option<Writer>,
    pub stdout: Reader,
    pub stderr: Option<Reader>,
    pub resize: Box<dyn Fn(u16, u16) + Send + Sync>,
    /// Resolves to the exit code (128 + signal when killed by a signal).
    pub exit: BoxFut<'static, Result<i32, CriError>>,
}

/// The runtime operations the kubelet uses.
pub trait Cri: Send + Sync + 'static {
    /// Make sure `image` is present; pull it when `always` or missing. Returns the image ID.
    /// Make `image` present (pulling when absent, or always with `always`); `pull_secrets`
    /// are the `.dockerconfigjson` (or `.dockercfg`) documents of the pod's imagePullSecrets,
    /// the first with an entry for the image's registry is used.
    fn ensure_image<'a>(
        &'a self,
        image: &'a str,
        always: bool,
        pull_secrets: &'a [Vec<u8>],
    ) -> BoxFut<'a, Result<String, CriError>>;
    /// Whether `image` is already in the local store.
    fn image_present(&self, image: &str) -> BoxFut<'_, bool>;
    /// The images in the local store: their names (digests, then tags) and size.
    fn images(&self) -> BoxFut<'_, Vec<(Vec<String>, u64)>>;
    /// The `User` of `image`'s config ("" when it sets none); None when it is not in the store.
    fn image_user(&self, image: &str) -> BoxFut<'_, Option<String>>;
    fn run_sandbox(&self, spec: SandboxSpec) -> BoxFut<'_, Result<Sandbox, CriError>>;
    fn stop_sandbox(&self, id: &str) -> BoxFut<'_, Result<(), CriError>>;
    fn remove_sandbox(&self, id: &str) -> BoxFut<'_, Result<(), CriError>>;
    fn list_sandboxes(&self) -> BoxFut<'_, Result<Vec<Sandbox>, CriError>>;
    /// The kubelet's sandbox of the pod `pod_uid`, if there is one.
    fn find_sandbox<'a>(
        &'a self,
        pod_uid: &'a str,
    ) -> BoxFut<'a, Result<Option<Sandbox>, CriError>>;
    fn create_container(
        &self,
        sandbox: &str,
        spec: ContainerSpec,
    ) -> BoxFut<'_, Result<String, CriError>>;
    fn start_container(&self, id: &str) -> BoxFut<'_, Result<(), CriError>>;
    /// SIGTERM, then SIGKILL after `grace_secs`.
    fn stop_container(&self, id: &str, grace_secs: i64) -> BoxFut<'_, Result<(), CriError>>;
    fn remove_container(&self, id: &str) -> BoxFut<'_, Result<(), CriError>>;
    fn list_containers(&self, sandbox: &str) -> BoxFut<'_, Result<Vec<Container>, CriError>>;
    /// One container, by ID (state and log path).
    fn container(&self, id: &str) -> BoxFut<'_, Result<Container, CriError>>;
    /// Starts a command in a running container.
    fn exec(&self, id: &str, req: ExecRequest) -> BoxFut<'_, Result<ExecStreams, CriError>>;
    /// Attaches to the main process of a running container (its stdio; `exit` resolves when
    /// the container ends). Dropping the streams detaches; the container keeps running.
    fn attach(&self, id: &str) -> BoxFut<'_, Result<ExecStreams, CriError>>;
    /// Connects to `port` on the loopback of the pod's network namespace (port-forward).
    fn connect_port(
        &self,
        pod_uid: &str,
        port: u16,
    ) -> BoxFut<'_, Result<tokio::net::TcpStream, CriError>>;
    /// Cumulative CPU time (ns) and memory working set (bytes) of a container's cgroup.
    fn container_stats(&self, id: &str) -> BoxFut<'_, Result<(u64, u64), CriError>>;
    /// The directory holding a container's writable layer (what it wrote to its rootfs),
    /// for the eviction manager's disk accounting.
    fn writable_layer(&self, sandbox: &str, id: &str) -> std::path::PathBuf;
    /// The sandbox of every container exit, in order (an empty id when some were lost).
    /// Waited on with `next_exit`.
    fn exits(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<str>>;
}

/// Returns at the next exit of a container of `sandbox`, or of any container when `sandbox`
/// is None or exits were lost; never once the runtime is gone. A pod worker follows its own
/// sandbox only: were every worker woken by every exit, deleting n pods beside others would
/// sync n^2 times.
pub async fn next_exit(
    exits: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<str>>,
    sandbox: Option<&str>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match exits.recv().await {
            Ok(id) if !id.is_empty() && sandbox.is_some_and(|s| s != &*id) => {}
            Ok(_) | Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::broadcast;

    use super::next_exit;

    async fn wakes(rx: &mut broadcast::Receiver<Arc<str>>, sandbox: Option<&str>) -> bool {
        tokio::time::timeout(Duration::from_millis(100), next_exit(rx, sandbox))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_worker_wakes_for_its_own_exits_only() {
        let (tx, mut rx) = broadcast::channel::<Arc<str>>(2);
        tx.send("other".into()).expect("send");
        assert!(
            !wakes(&mut rx, Some("mine")).await,
            "woken by another pod's exit"
        );
        tx.send("other".into()).expect("send");
        tx.send("mine".into()).expect("send");
        assert!(wakes(&mut rx, Some("mine")).await);
        // Before its sandbox exists, or when exits were lost, any exit counts.
        tx.send("other".into()).expect("send");
        assert!(wakes(&mut rx, None).await);
        tx.send("".into()).expect("send");
        assert!(wakes(&mut rx, Some("mine")).await);
        for _ in 0..3 {
            tx.send("other".into()).expect("send");
        }
        assert!(
            wakes(&mut rx, Some("mine")).await,
            "a lagged receiver must wake"
        );
    }
}
