//! The kubelet's `Cri` on k1s's own runtime (`runtime::Runtime`) and pod network
//! (`network::PodNetwork`): a sandbox is the runtime's sandbox plus a veth and an IP; container
//! attempts are told apart by a label; runtime exit events wake the pod workers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use runtime::cri::{
    ContainerConfig, ContainerId, ContainerState, Mount as RMount, NetMode, PodSandboxConfig,
    Resources, SandboxId, SandboxState, SeccompProfile, SecurityConfig,
};

use crate::cri::{
    BoxFut, Container, ContainerSpec, Cri, CriError, ExecRequest, ExecStreams, RunState, Sandbox,
    SandboxSpec,
};

const ATTEMPT: &str = "io.kubernetes.container.attempt";
const NAME: &str = "io.kubernetes.container.name";
const POD_UID: &str = "io.kubernetes.pod.uid";

/// Exits kept for pod workers that are busy syncing; one that falls further behind syncs
/// anyway (see `Cri::exits`).
const EXITS_BUFFER: usize = 1024;

pub struct Adapter {
    rt: Arc<runtime::Runtime>,
    net: Option<Arc<network::PodNetwork>>,
    runtime_dir: PathBuf,
    pods_dir: PathBuf,
    exits: tokio::sync::broadcast::Sender<Arc<str>>,
    /// Pod network attachments still being made, by sandbox: a sandbox gets its IP at once,
    /// and its veth is wired while its first container is created (see `run_sandbox`).
    attaching: std::sync::Mutex<HashMap<String, Attaching>>,
}

type Attaching = tokio::task::JoinHandle<Result<(), String>>;

fn ts(t: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp::from_nanosecond(t.timestamp_nanos_opt().unwrap_or(0) as i128)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

fn label<'a>(labels: &'a [(String, String)], key: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Whether a runtime sandbox is a pod's: others on the same runtime (`k1s runtime run`) are
/// not the kubelet's, and orphan clean-up must leave them alone.
fn is_pod_sandbox(s: &runtime::cri::PodSandboxStatus) -> bool {
    label(&s.config.labels, POD_UID).is_some()
}

fn to_sandbox(s: runtime::cri::PodSandboxStatus, ip: Option<String>) -> Sandbox {
    Sandbox {
        ip,
        pod_uid: s.config.uid,
        name: s.config.name,
        namespace: s.config.namespace,
        ready: s.state == SandboxState::Ready,
        id: s.id.0,
    }
}

impl Adapter {
    /// `net` is None when pods run without their own network (tests, `--disable-network`).
    pub fn new(
        rt: Arc<runtime::Runtime>,
        net: Option<Arc<network::PodNetwork>>,
        runtime_dir: PathBuf,
        pods_dir: PathBuf,
    ) -> Arc<Self> {
        let (exits, _) = tokio::sync::broadcast::channel(EXITS_BUFFER);
        let a = Arc::new(Adapter {
            rt: rt.clone(),
            net,
            runtime_dir,
            pods_dir,
            exits,
            attaching: Default::default(),
        });
        let weak = Arc::downgrade(&a);
        let mut events = rt.events();
        tokio::spawn(async move {
            loop {
                // A lost event could be anyone's: an empty sandbox id wakes every waiter.
                let sandbox: Arc<str> = match events.recv().await {
                    Ok(e) => e.sandbox_id.0.into(),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => "".into(),
                    Err(_) => return,
                };
                let Some(a) = weak.upgrade() else { return };
                let _ = a.exits.send(sandbox);
            }
        });
        a
    }

    fn hosts_path(&self, id: &str) -> PathBuf {
        runtime::layout::SandboxPaths::new(&self.runtime_dir, id)
            .etc()
            .join("hosts")
    }
}

fn to_container(c: runtime::cri::ContainerStatus) -> Container {
    Container {
        attempt: label(&c.labels, ATTEMPT)
            .and_then(|a| a.parse().ok())
            .unwrap_or(0),
        name: label(&c.labels, NAME)
            .map(str::to_string)
            .unwrap_or(c.name.clone()),
        state: match c.state {
            ContainerState::Created => RunState::Created,
            ContainerState::Running { pid, started_at } => RunState::Running {
                pid,
                started_at: ts(started_at),
            },
            ContainerState::Exited {
                exit_code,
                reason,
                message,
                started_at,
                finished_at,
            } => RunState::Exited {
                code: exit_code,
                reason,
                message: if message.is_empty() {
                    None
                } else {
                    Some(message)
                },
                started_at: started_at.map(ts),
                finished_at: ts(finished_at),
            },
        },
        id: c.id.0,
        sandbox_id: c.sandbox_id.0,
        image: c.image,
        image_id: c.image_id,
        log_path: c
            .log_path
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    }
}

fn err_other(e: runtime::Error) -> CriError {
    CriError::Other(e.to_string())
}

/// The pod's /etc/hosts as upstream's kubelet writes it: localhost entries, the pod's own
/// address (with its FQDN first when it has a subdomain), then the hostAliases lines; a
/// host-network pod gets the node's /etc/hosts and the hostAliases lines.
fn hosts_file(ip: Option<&str>, spec: &SandboxSpec) -> String {
    if spec.host_network {
        let mut s = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        if !s.is_empty() && !s.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&spec.hosts);
        return s;
    }
    let mut s = String::from("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n");
    let hostname = &spec.hostname;
    if let Some(ip) = ip {
        match &spec.domain {
            Some(d) => s.push_str(&format!("{ip}\t{hostname}.{d}\t{hostname}\n")),
            None => s.push_str(&format!("{ip}\t{hostname}\n")),
        }
    }
    s.push_str(&spec.hosts);
    s
}

impl Adapter {
    fn lock_attaching(&self) -> std::sync::MutexGuard<'_, HashMap<String, Attaching>> {
        self.attaching.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the pod network attachment of `sandbox` started by `run_sandbox`, if one is
    /// still pending; its error if it failed.
    async fn join_network(&self, sandbox: &str) -> Result<(), String> {
        let task = self.lock_attaching().remove(sandbox);
        match task {
            Some(t) => t.await.map_err(|e| e.to_string())?,
            None => Ok(()),
        }
    }
}

impl Cri for Adapter {
    fn ensure_image<'a>(
        &'a self,
        image: &'a str,
        always: bool,
        pull_secrets: &'a [Vec<u8>],
    ) -> BoxFut<'a, Result<String, CriError>> {
        Box::pin(async move {
            let local = self
                .rt
                .image_status(image)
                .await
                .map_err(|e| CriError::InvalidImage(e.to_string()))?;
            if let (Some(img), false) = (&local, always) {
                return Ok(img.id.clone());
            }
            let mut options = runtime::cri::PullOptions::default();
            for doc in pull_secrets {
                match runtime::image::credentials::credentials_for(doc, image) {
                    Ok(Some(auth)) => {
                        options.auth = Some(auth);
                        break;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "ignoring an unreadable image pull secret")
                    }
                }
            }
            match self.rt.pull_image_with(image, &options).await {
                Ok(img) => Ok(img.id),
                // Offline: a policy of Always still runs an image that is already here.
                Err(_) if local.is_some() => Ok(local.map(|i| i.id).unwrap_or_default()),
                Err(e) => Err(CriError::ImagePull(e.to_string())),
            }
        })
    }

    fn image_present(&self, image: &str) -> BoxFut<'_, bool> {
        let image = image.to_string();
        Box::pin(async move { matches!(self.rt.image_status(&image).await, Ok(Some(_))) })
    }

    fn images(&self) -> BoxFut<'_, Vec<(Vec<String>, u64)>> {
        Box::pin(async move {
            self.rt
                .list_images()
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|i| {
                    let mut names = i.repo_digests;
                    names.extend(i.repo_tags);
                    (names, i.size_bytes)
                })
                .collect()
        })
    }

    fn image_user(&self, image: &str) -> BoxFut<'_, Option<String>> {
        let image = image.to_string();
        Box::pin(async move {
            self.rt
                .image_status(&image)
                .await
                .ok()
                .flatten()
                .map(|s| s.user)
        })
    }

    fn run_sandbox(&self, spec: SandboxSpec) -> BoxFut<'_, Result<Sandbox, CriError>> {
        Box::pin(async move {
            let cfg = PodSandboxConfig {
                name: spec.name.clone(),
                namespace: spec.namespace.clone(),
                uid: spec.pod_uid.clone(),
                hostname: spec.hostname.clone(),
                log_dir: Some(self.pods_dir.join(&spec.pod_uid).join("logs")),
                dns: spec.resolv_conf.clone(),
                hosts: hosts_file(None, &spec),
                cgroup_parent: None,
                net: if spec.host_network {
                    NetMode::Host
                } else {
                    NetMode::Pod
                },
                labels: vec![(POD_UID.to_string(), spec.pod_uid.clone())],
                ..Default::default()
            };
            let id = self
                .rt
                .run_pod_sandbox(&cfg)
                .await
                .map_err(|e| CriError::Sandbox(e.to_string()))?;
            let mut ip = None;
            if !spec.host_network {
                if let Some(net) = &self.net {
                    let st = self
                        .rt
                        .pod_sandbox_status(&id)
                        .await
                        .map_err(|e| CriError::Sandbox(e.to_string()))?;
                    if let Some(ns) = st.netns_path {
                        // The address now (for the hosts file and the downward API); the veth,
                        // eth0 and routes while the first container is created, which waits
                        // for them (`join_network`) before it counts as created.
                        match net.ipam().allocate(&id.0) {
                            Ok(addr) => ip = Some(addr.to_string()),
                            Err(e) => {
                                let _ = self.rt.remove_pod_sandbox(&id).await;
                                return Err(CriError::Sandbox(format!(
                                    "failed to set up the pod network: {e}"
                                )));
                            }
                        }
                        let (net, sid) = (net.clone(), id.0.clone());
                        let task = tokio::spawn(async move {
                            net.setup_pod(&sid, &ns)
                                .await
                                .map(drop)
                                .map_err(|e| e.to_string())
                        });
                        self.lock_attaching().insert(id.0.clone(), task);
                    }
                }
            }
            if let Err(e) = std::fs::write(self.hosts_path(&id.0), hosts_file(ip.as_deref(), &spec))
            {
                tracing::debug!(error = %e, "failed to write the pod's hosts file");
            }
            Ok(Sandbox {
                id: id.0,
                pod_uid: spec.pod_uid,
                name: spec.name,
                namespace: spec.namespace,
                ip,
                ready: true,
            })
        })
    }

    fn stop_sandbox(&self, id: &str) -> BoxFut<'_, Result<(), CriError>> {
        let id = SandboxId(id.to_string());
        Box::pin(async move { self.rt.stop_pod_sandbox(&id).await.map_err(err_other) })
    }

    fn remove_sandbox(&self, id: &str) -> BoxFut<'_, Result<(), CriError>> {
        let id = SandboxId(id.to_string());
        Box::pin(async move {
            // An attachment still being made must not race the teardown.
            let _ = self.join_network(&id.0).await;
            if let Some(net) = &self.net {
                let ns = self
                    .rt
                    .pod_sandbox_status(&id)
                    .await
                    .ok()
                    .and_then(|s| s.netns_path);
                if let Err(e) = net.teardown_pod(&id.0, ns.as_deref()).await {
                    tracing::warn!(sandbox = %id.0, error = %e, "failed to tear down the pod network");
                }
            }
            self.rt.remove_pod_sandbox(&id).await.map_err(err_other)
        })
    }

    fn list_sandboxes(&self) -> BoxFut<'_, Result<Vec<Sandbox>, CriError>> {
        Box::pin(async move {
            let list = self.rt.list_pod_sandboxes().await.map_err(err_other)?;
            // One read of the IPAM records for all sandboxes (not one per sandbox).
            let ips: HashMap<String, String> = self
                .net
                .as_ref()
                .and_then(|n| n.ipam().allocations().ok())
                .unwrap_or_default()
                .into_iter()
                .map(|(ip, owner)| (owner, ip.to_string()))
                .collect();
            Ok(list
                .into_iter()
                .filter(is_pod_sandbox)
                .map(|s| {
                    let ip = ips.get(&s.id.0).cloned();
                    to_sandbox(s, ip)
                })
                .collect())
        })
    }

    fn find_sandbox<'a>(
        &'a self,
        pod_uid: &'a str,
    ) -> BoxFut<'a, Result<Option<Sandbox>, CriError>> {
        Box::pin(async move {
            // A new pod has none: that answer needs no read of the IPAM records, nor a status
            // check of every other sandbox.
            let found = self
                .rt
                .pod_sandbox_by_uid(pod_uid)
                .await
                .map_err(err_other)?;
            let Some(s) = found.filter(is_pod_sandbox) else {
                return Ok(None);
            };
            let ip = self
                .net
                .as_ref()
                .and_then(|n| n.ipam().lookup(&s.id.0).ok().flatten())
                .map(|ip| ip.to_string());
            Ok(Some(to_sandbox(s, ip)))
        })
    }

    fn create_container(
        &self,
        sandbox: &str,
        spec: ContainerSpec,
    ) -> BoxFut<'_, Result<String, CriError>> {
        let sandbox = SandboxId(sandbox.to_string());
        Box::pin(async move {
            let st = self
                .rt
                .pod_sandbox_status(&sandbox)
                .await
                .map_err(|e| CriError::CreateContainer(e.to_string()))?;
            let log_path = self
                .pods_dir
                .join(&st.config.uid)
                .join("logs")
                .join(&spec.name)
                .join(format!("{}.log", spec.attempt));
            let cfg = ContainerConfig {
                name: spec.name.clone(),
                image: spec.image.clone(),
                command: spec.command.clone(),
                args: spec.args.clone(),
                env: spec.env.clone(),
                working_dir: spec.working_dir.clone(),
                mounts: spec
                    .mounts
                    .iter()
                    .map(|m| RMount {
                        host_path: PathBuf::from(&m.host_path),
                        container_path: m.container_path.clone(),
                        readonly: m.readonly,
                    })
                    .collect(),
                user: None,
                tty: spec.tty,
                stdin: spec.stdin,
                stdin_once: spec.stdin_once,
                resources: Resources {
                    cpu_shares: spec.cpu_shares,
                    cpu_quota: spec.cpu_quota_us,
                    cpu_period: spec.cpu_quota_us.map(|_| 100_000),
                    memory_limit_bytes: spec.memory_limit,
                    pids_limit: None,
                    oom_score_adj: spec.oom_score_adj,
                },
                security: SecurityConfig {
                    privileged: spec.privileged,
                    cap_add: spec.cap_add.clone(),
                    cap_drop: spec.cap_drop.clone(),
                    read_only_rootfs: spec.read_only_rootfs,
                    no_new_privs: spec.no_new_privs,
                    run_as_user: spec.run_as_user,
                    run_as_group: spec.run_as_group,
                    supplemental_groups: spec.supplemental_groups.clone(),
                    seccomp: if spec.seccomp_unconfined {
                        SeccompProfile::Unconfined
                    } else {
                        SeccompProfile::RuntimeDefault
                    },
                },
                log_path: Some(log_path),
                labels: vec![
                    (NAME.into(), spec.name.clone()),
                    (ATTEMPT.into(), spec.attempt.to_string()),
                ],
            };
            let t0 = std::time::Instant::now();
            let created = self.rt.create_container(&sandbox, &cfg).await;
            let t1 = std::time::Instant::now();
            let joined = self.join_network(&sandbox.0).await;
            tracing::debug!(
                sandbox = %sandbox.0,
                create_ms = (t1 - t0).as_secs_f64() * 1e3,
                network_wait_ms = t1.elapsed().as_secs_f64() * 1e3,
                "container created"
            );
            if let Err(e) = joined {
                // The sandbox is unusable: remove it; the kubelet makes a new one.
                if let Ok(cid) = &created {
                    let _ = self.rt.remove_container(cid).await;
                }
                let _ = Cri::remove_sandbox(self, &sandbox.0).await;
                return Err(CriError::Sandbox(format!(
                    "failed to set up the pod network: {e}"
                )));
            }
            match created {
                Ok(id) => Ok(id.0),
                Err(e @ runtime::Error::ShimUnreachable { .. }) => {
                    // The sandbox's shim is gone (k1s was killed while it was being set up,
                    // or the shim died): the kubelet replaces the sandbox.
                    let _ = Cri::remove_sandbox(self, &sandbox.0).await;
                    Err(CriError::Sandbox(e.to_string()))
                }
                Err(e) => Err(CriError::CreateContainer(e.to_string())),
            }
        })
    }

    fn start_container(&self, id: &str) -> BoxFut<'_, Result<(), CriError>> {
        let id = ContainerId(id.to_string());
        Box::pin(async move {
            self.rt
                .start_container(&id)
                .await
                .map_err(|e| CriError::StartContainer(e.to_string()))
        })
    }

    fn stop_container(&self, id: &str, grace_secs: i64) -> BoxFut<'_, Result<(), CriError>> {
        let id = ContainerId(id.to_string());
        Box::pin(async move {
            self.rt
                .stop_container(&id, Duration::from_secs(grace_secs.max(0) as u64))
                .await
                .map_err(err_other)
        })
    }

    fn remove_container(&self, id: &str) -> BoxFut<'_, Result<(), CriError>> {
        let id = ContainerId(id.to_string());
        Box::pin(async move { self.rt.remove_container(&id).await.map_err(err_other) })
    }

    fn list_containers(&self, sandbox: &str) -> BoxFut<'_, Result<Vec<Container>, CriError>> {
        let sandbox = sandbox.to_string();
        Box::pin(async move {
            let all = self
                .rt
                .list_sandbox_containers(&SandboxId(sandbox))
                .await
                .map_err(err_other)?;
            Ok(all.into_iter().map(to_container).collect())
        })
    }

    fn container(&self, id: &str) -> BoxFut<'_, Result<Container, CriError>> {
        let id = ContainerId(id.to_string());
        Box::pin(async move {
            match self.rt.container_status(&id).await {
                Ok(c) => Ok(to_container(c)),
                Err(runtime::Error::ContainerNotFound { .. }) => Err(CriError::NotFound(format!(
                    "container not found (\"{}\")",
                    id.0
                ))),
                Err(e) => Err(err_other(e)),
            }
        })
    }

    fn exec(&self, id: &str, req: ExecRequest) -> BoxFut<'_, Result<ExecStreams, CriError>> {
        let id = ContainerId(id.to_string());
        Box::pin(async move {
            let opts = runtime::ExecOptions {
                tty: req.tty,
                stdin: req.stdin,
                size: req.size,
            };
            let session = match self.rt.exec(&id, &req.command, opts).await {
                Ok(s) => s,
                Err(e @ runtime::Error::InvalidContainerState { .. })
                | Err(e @ runtime::Error::ContainerNotFound { .. }) => {
                    return Err(CriError::NotFound(e.to_string()))
                }
                Err(e) => return Err(err_other(e)),
            };
            exec_streams(session, req.stdin).map_err(|e| CriError::Other(e.to_string()))
        })
    }

    fn attach(&self, id: &str) -> BoxFut<'_, Result<ExecStreams, CriError>> {
        let id = ContainerId(id.to_string());
        Box::pin(async move {
            let s = match self.rt.attach(&id).await {
                Ok(s) => s,
                Err(e @ runtime::Error::ContainerNotFound { .. }) => {
                    return Err(CriError::NotFound(e.to_string()))
                }
                Err(e) => return Err(err_other(e)),
            };
            let resize = s.resize;
            let exit = s.exit;
            Ok(ExecStreams {
                stdin: s.stdin.map(|w| Box::pin(w) as crate::cri::Writer),
                stdout: Box::pin(s.stdout),
                stderr: s.stderr.map(|r| Box::pin(r) as crate::cri::Reader),
                resize: Box::new(move |cols, rows| {
                    let _ = resize.send((cols, rows));
                }),
                // The session may end before the container (the shim went away): report 0,
                // like an attach that simply ended.
                exit: Box::pin(async move { Ok(exit.await.unwrap_or(0)) }),
            })
        })
    }

    fn connect_port(
        &self,
        pod_uid: &str,
        port: u16,
    ) -> BoxFut<'_, Result<tokio::net::TcpStream, CriError>> {
        let pod_uid = pod_uid.to_string();
        Box::pin(async move {
            let sb = self
                .rt
                .pod_sandbox_by_uid(&pod_uid)
                .await
                .map_err(err_other)?
                .filter(|s| s.state == SandboxState::Ready)
                .ok_or_else(|| {
                    CriError::NotFound(format!("no running sandbox for pod {pod_uid}"))
                })?;
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let connect =
                move || std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5));
            let stream = match sb.netns_path {
                Some(ns) => {
                    tokio::task::spawn_blocking(move || network::netns::run_blocking(&ns, connect))
                        .await
                        .map_err(|e| CriError::Other(e.to_string()))?
                        .map_err(|e| {
                            let cause = std::error::Error::source(&e).map(|s| format!(": {s}"));
                            CriError::Other(format!("{e}{}", cause.unwrap_or_default()))
                        })?
                }
                None => tokio::task::spawn_blocking(connect)
                    .await
                    .map_err(|e| CriError::Other(e.to_string()))?,
            }
            .map_err(|e| {
                CriError::Other(format!(
                    "failed to connect to localhost:{port} inside namespace of pod {pod_uid}: {e}"
                ))
            })?;
            stream
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpStream::from_std(stream))
                .map_err(|e| CriError::Other(e.to_string()))
        })
    }

    fn writable_layer(&self, sandbox: &str, id: &str) -> PathBuf {
        runtime::layout::rw_container_dir(&self.runtime_dir, sandbox, id).join("upper")
    }

    fn container_stats(&self, id: &str) -> BoxFut<'_, Result<(u64, u64), CriError>> {
        let id = ContainerId(id.to_string());
        Box::pin(async move {
            let s = self.rt.container_stats(&id).await.map_err(err_other)?;
            Ok((s.cpu_usage_ns, s.memory_working_set_bytes))
        })
    }

    fn exits(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        self.exits.subscribe()
    }
}

/// Splits a runtime exec session into the kubelet's streams.
fn exec_streams(session: runtime::ExecSession, want_stdin: bool) -> std::io::Result<ExecStreams> {
    let runtime::ExecSession { mut child, pty } = session;
    let code = |st: std::process::ExitStatus| {
        use std::os::unix::process::ExitStatusExt;
        st.code().or(st.signal().map(|s| 128 + s)).unwrap_or(255)
    };
    if let Some(pty) = pty {
        let reader = tokio::fs::File::from_std(pty.try_clone()?);
        let writer = want_stdin
            .then(|| pty.try_clone().map(tokio::fs::File::from_std))
            .transpose()?;
        let resize_pty = pty;
        let resize = move |cols: u16, rows: u16| {
            if let Err(e) = runtime::resize_pty(&resize_pty, cols, rows) {
                tracing::debug!(error = %e, "failed to resize an exec terminal");
            }
        };
        let exit = Box::pin(async move {
            child
                .wait()
                .await
                .map(code)
                .map_err(|e| CriError::Other(e.to_string()))
        });
        return Ok(ExecStreams {
            stdin: writer.map(|w| Box::pin(w) as crate::cri::Writer),
            stdout: Box::pin(reader),
            stderr: None,
            resize: Box::new(resize),
            exit,
        });
    }
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let exit = Box::pin(async move {
        child
            .wait()
            .await
            .map(code)
            .map_err(|e| CriError::Other(e.to_string()))
    });
    Ok(ExecStreams {
        stdin: stdin.map(|w| Box::pin(w) as crate::cri::Writer),
        stdout: match stdout {
            Some(o) => Box::pin(o),
            None => Box::pin(tokio::io::empty()),
        },
        stderr: stderr.map(|e| Box::pin(e) as crate::cri::Reader),
        resize: Box::new(|_, _| {}),
        exit,
    })
}
