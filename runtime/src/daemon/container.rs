//! Container verbs: resolve a `ContainerConfig` against its image into a `ContainerSpec`,
//! hand it to the sandbox's shim, and read states back (from the shim, or from `state.json`
//! when the shim is gone). Also exec_sync (through the `shim exec` helper) and stats.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use crate::container::caps;
use crate::container::spec::{BindMount, ContainerSpec};
use crate::cri::{
    ContainerConfig, ContainerId, ContainerState, ContainerStats, ContainerStatus, SandboxId,
};
use crate::daemon::{blocking, random_id, read_json, shim_client, Runtime};
use crate::error::{Error, Result};
use crate::image::store::{to_json, write_replace, Found};
use crate::image::{ImageRecord, Lease};
use crate::shim::proto::Request;

pub(crate) fn state_name(s: &ContainerState) -> &'static str {
    match s {
        ContainerState::Created => "created",
        ContainerState::Running { .. } => "running",
        ContainerState::Exited { .. } => "exited",
    }
}

/// Kubernetes' rule: command replaces Entrypoint (and drops Cmd); args replace Cmd.
fn argv(config: &ContainerConfig, image: &ImageRecord) -> Vec<String> {
    if !config.command.is_empty() {
        config
            .command
            .iter()
            .chain(config.args.iter())
            .cloned()
            .collect()
    } else {
        let tail = if config.args.is_empty() {
            &image.config.cmd
        } else {
            &config.args
        };
        image
            .config
            .entrypoint
            .iter()
            .chain(tail.iter())
            .cloned()
            .collect()
    }
}

fn env(config: &ContainerConfig, image: &ImageRecord, hostname: &str) -> Vec<String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| match out.iter_mut().find(|(ek, _)| ek == k) {
        Some(e) => e.1 = v.to_string(),
        None => out.push((k.to_string(), v.to_string())),
    };
    set("PATH", crate::container::init::DEFAULT_PATH);
    set("HOSTNAME", hostname);
    for e in &image.config.env {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        set(k, v);
    }
    for (k, v) in &config.env {
        set(k, v);
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

impl Runtime {
    pub async fn create_container(
        &self,
        sandbox: &SandboxId,
        config: &ContainerConfig,
    ) -> Result<ContainerId> {
        let record = {
            let idx = self.lock();
            idx.sandboxes
                .get(&sandbox.0)
                .ok_or_else(|| Error::SandboxNotFound {
                    id: sandbox.0.clone(),
                })?
                .record
                .clone()
        };
        // The lease keeps image garbage collection off the layers until the container's
        // config, which names them, is on disk.
        let (image, lease) = match self.image_at_hand(&config.image)? {
            Some(found) => found,
            None => {
                let images = self.images.clone();
                let reference = config.image.clone();
                blocking("resolve image", move || {
                    let lease = images.lease()?;
                    let img = images
                        .resolve(&reference)?
                        .ok_or(Error::ImageNotFound { reference })?;
                    for l in &img.layers {
                        images.unpack(l)?;
                    }
                    Ok((img, lease))
                })
                .await?
            }
        };
        // Top first: the mount points' layer over the image's (see `mountpoints_layer`).
        let mut lower_dirs = vec![crate::layout::mountpoints_layer(&self.cfg.data_dir)];
        for l in image.layers.iter().rev() {
            lower_dirs.push(self.images.snapshot_path(&l.diff_id)?);
        }
        let id = random_id();
        let paths = self.paths(&sandbox.0);
        let dir = paths.container(&id);
        let hostname = if record.config.hostname.is_empty() {
            record.config.name.clone()
        } else {
            record.config.hostname.clone()
        };
        let sec = &config.security;
        let spec = ContainerSpec {
            id: id.clone(),
            sandbox_id: sandbox.0.clone(),
            name: config.name.clone(),
            image: image
                .repo_tags
                .first()
                .cloned()
                .unwrap_or_else(|| config.image.clone()),
            image_id: image.id.clone(),
            lower_dirs,
            dir: dir.clone(),
            rw_dir: Some(crate::layout::rw_container_dir(
                &self.cfg.data_dir,
                &sandbox.0,
                &id,
            )),
            argv: argv(config, &image),
            env: env(config, &image, &hostname),
            cwd: config
                .working_dir
                .clone()
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| {
                    if image.config.working_dir.is_empty() {
                        "/".to_string()
                    } else {
                        image.config.working_dir.clone()
                    }
                }),
            image_user: image.config.user.clone(),
            run_as_user: sec.run_as_user.or(config.user.map(|u| u.0)),
            run_as_group: sec.run_as_group.or(config.user.map(|u| u.1)),
            supplemental_groups: sec.supplemental_groups.clone(),
            capabilities: caps::resolve(sec.privileged, &sec.cap_add, &sec.cap_drop),
            privileged: sec.privileged,
            no_new_privs: sec.no_new_privs,
            seccomp: !sec.privileged && sec.seccomp == crate::cri::SeccompProfile::RuntimeDefault,
            read_only_rootfs: sec.read_only_rootfs,
            mounts: config
                .mounts
                .iter()
                .map(|m| BindMount {
                    source: m.host_path.clone(),
                    destination: m.container_path.clone(),
                    readonly: m.readonly,
                })
                .collect(),
            tty: config.tty,
            resources: config.resources.clone(),
            cgroup: format!("{}/{}", record.cgroup, id),
            log_path: config.log_path.clone(),
            config: config.clone(),
            created_at: Utc::now(),
        };
        std::fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
        // No fsync: no container outlives a reboot, and an unreadable config only hides the
        // container of a dead sandbox.
        write_replace(
            &paths.container_config(&id),
            &to_json("container config", &spec)?,
        )?;
        drop(lease);
        if let Err(e) = shim_client::call_ok(
            &sandbox.0,
            &paths.socket(),
            &Request::Create { id: id.clone() },
            "create container",
        )
        .await
        {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        // A first container took a spare `rw/<sandbox>`: made again now by the trash thread,
        // off this path, while the container starts and runs.
        self.trash.purge_in_background();
        let mut idx = self.lock();
        idx.containers.insert(id.clone(), Arc::new(spec));
        if let Some(e) = idx.sandboxes.get_mut(&sandbox.0) {
            e.containers.insert(id.clone());
        }
        Ok(ContainerId(id))
    }

    /// The image and a lease on it when nothing needs to wait or read: no collection
    /// running, the image looked up before (the kubelet's pull check just did) and every
    /// layer unpacked. That costs a non-blocking flock and a few stats, so it is done here
    /// rather than on a blocking thread; None sends the caller the slow way.
    fn image_at_hand(&self, reference: &str) -> Result<Option<(ImageRecord, Lease)>> {
        let Some(lease) = self.images.try_lease()? else {
            return Ok(None);
        };
        let Found::Yes(img) = self.images.resolve_cached(reference)? else {
            return Ok(None);
        };
        for l in &img.layers {
            if !self.images.is_unpacked(l)? {
                return Ok(None);
            }
        }
        Ok(Some((img.as_ref().clone(), lease)))
    }

    pub(crate) fn spec(&self, id: &ContainerId) -> Result<Arc<ContainerSpec>> {
        self.lock()
            .containers
            .get(&id.0)
            .cloned()
            .ok_or_else(|| Error::ContainerNotFound { id: id.0.clone() })
    }

    /// The container as resolved at creation (argv, env, layers, cgroup, log path), for
    /// debugging tools such as `k1s runtime inspect`.
    pub fn container_spec(&self, id: &ContainerId) -> Result<Arc<ContainerSpec>> {
        self.spec(id)
    }

    pub async fn start_container(&self, id: &ContainerId) -> Result<()> {
        let spec = self.spec(id)?;
        let sock = self.paths(&spec.sandbox_id).socket();
        shim_client::call_ok(
            &spec.sandbox_id,
            &sock,
            &Request::Start { id: id.0.clone() },
            "start container",
        )
        .await?;
        Ok(())
    }

    /// Current state: the final one of its exit event if that came, else from the shim when
    /// it is alive, else from `state.json`.
    pub(crate) async fn state(&self, spec: &ContainerSpec) -> Result<ContainerState> {
        if let Some(st) = self.events.exited(&spec.id) {
            return Ok(st);
        }
        let paths = self.paths(&spec.sandbox_id);
        match shim_client::call(
            &spec.sandbox_id,
            &paths.socket(),
            &Request::Status {
                id: spec.id.clone(),
            },
        )
        .await
        {
            Ok(r) if r.ok => Ok(r.state.unwrap_or(ContainerState::Created)),
            _ => {
                crate::daemon::mark_lost(&paths, &spec.id);
                read_json(&paths.container_state(&spec.id), "container state")
            }
        }
    }

    async fn kill(&self, spec: &ContainerSpec, signal: nix::sys::signal::Signal) -> Result<()> {
        let sock = self.paths(&spec.sandbox_id).socket();
        let req = Request::Kill {
            id: spec.id.clone(),
            signal: signal as i32,
        };
        shim_client::call_ok(&spec.sandbox_id, &sock, &req, "kill container")
            .await
            .map(|_| ())
    }

    /// SIGTERM, then SIGKILL after `timeout`; returns when the container has exited. Waits on
    /// the exit event stream, not by polling.
    pub async fn stop_container(&self, id: &ContainerId, timeout: Duration) -> Result<()> {
        use nix::sys::signal::Signal;
        let spec = self.spec(id)?;
        let mut rx = self.events.subscribe();
        match self.state(&spec).await? {
            ContainerState::Exited { .. } => return Ok(()),
            ContainerState::Created => {
                // Never started: there is no process to signal gracefully.
                return self.kill(&spec, Signal::SIGKILL).await;
            }
            ContainerState::Running { .. } => {}
        }
        for (sig, wait) in [
            (Signal::SIGTERM, timeout),
            (Signal::SIGKILL, Duration::from_secs(30)),
        ] {
            if sig == Signal::SIGTERM && timeout.is_zero() {
                continue;
            }
            self.kill(&spec, sig).await?;
            let deadline = Instant::now() + wait;
            loop {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Ok(ev)) if ev.container_id == *id => return Ok(()),
                    Ok(Ok(_)) => continue,
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                        if matches!(self.state(&spec).await?, ContainerState::Exited { .. }) {
                            return Ok(());
                        }
                    }
                    Ok(Err(_)) | Err(_) => break,
                }
            }
            if matches!(self.state(&spec).await?, ContainerState::Exited { .. }) {
                return Ok(());
            }
        }
        Err(Error::InvalidContainerState {
            op: "stop",
            id: id.0.clone(),
            state: "running",
        })
    }

    /// Removes a container (killing it first if needed) with its rootfs, cgroup and records.
    pub async fn remove_container(&self, id: &ContainerId) -> Result<()> {
        let Ok(spec) = self.spec(id) else {
            return Ok(());
        };
        if matches!(self.state(&spec).await?, ContainerState::Running { .. }) {
            self.stop_container(id, Duration::ZERO).await?;
        }
        let paths = self.paths(&spec.sandbox_id);
        // A shim that deleted the container removed its cgroup too (or failed to say so).
        let shim_deleted = match shim_client::call_ok(
            &spec.sandbox_id,
            &paths.socket(),
            &Request::Delete { id: id.0.clone() },
            "delete container",
        )
        .await
        {
            Ok(_) => true,
            Err(Error::ShimUnreachable { .. }) => false,
            Err(e) => return Err(e),
        };
        let cgroups = self.cgroups.clone();
        let cg = spec.cgroup.clone();
        let dir = paths.container(&id.0);
        let rw = spec.rw_dir.clone();
        let trash = self.trash.clone();
        blocking("remove container", move || {
            if !shim_deleted {
                cgroups.remove(&cg)?;
            }
            trash.discard(&dir).map_err(Error::io("remove", &dir))?;
            match rw {
                Some(rw) => trash.discard(&rw).map_err(Error::io("remove", &rw)),
                None => Ok(()),
            }
        })
        .await?;
        self.events.forget(&id.0);
        let mut idx = self.lock();
        idx.containers.remove(&id.0);
        if let Some(e) = idx.sandboxes.get_mut(&spec.sandbox_id) {
            e.containers.remove(&id.0);
        }
        Ok(())
    }

    /// CRI ReopenContainerLog: after the kubelet renamed the log file for rotation, new
    /// output goes to a fresh file at `log_path`.
    pub async fn reopen_container_log(&self, id: &ContainerId) -> Result<()> {
        let spec = self.spec(id)?;
        let sock = self.paths(&spec.sandbox_id).socket();
        shim_client::call_ok(
            &spec.sandbox_id,
            &sock,
            &Request::ReopenLog { id: id.0.clone() },
            "reopen container log",
        )
        .await?;
        Ok(())
    }

    pub async fn container_status(&self, id: &ContainerId) -> Result<ContainerStatus> {
        let spec = self.spec(id)?;
        let state = self.state(&spec).await?;
        Ok(ContainerStatus {
            id: id.clone(),
            sandbox_id: SandboxId(spec.sandbox_id.clone()),
            name: spec.name.clone(),
            image: spec.image.clone(),
            image_id: spec.image_id.clone(),
            state,
            created_at: spec.created_at,
            log_path: spec.log_path.clone(),
            labels: spec.config.labels.clone(),
        })
    }

    pub async fn list_containers(&self) -> Result<Vec<ContainerStatus>> {
        let ids: Vec<String> = self.lock().containers.keys().cloned().collect();
        self.statuses(ids).await
    }

    /// The containers of one sandbox: asks only that sandbox's shim, so its cost does not grow
    /// with the number of pods.
    pub async fn list_sandbox_containers(
        &self,
        sandbox: &SandboxId,
    ) -> Result<Vec<ContainerStatus>> {
        let ids: Vec<String> = self
            .lock()
            .containers
            .iter()
            .filter(|(_, spec)| spec.sandbox_id == sandbox.0)
            .map(|(id, _)| id.clone())
            .collect();
        self.statuses(ids).await
    }

    async fn statuses(&self, ids: Vec<String>) -> Result<Vec<ContainerStatus>> {
        let mut out = Vec::new();
        for id in ids {
            match self.container_status(&ContainerId(id)).await {
                Ok(s) => out.push(s),
                Err(Error::ContainerNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    pub async fn container_stats(&self, id: &ContainerId) -> Result<ContainerStats> {
        let spec = self.spec(id)?;
        Ok(self.cgroups.stats(&spec.cgroup))
    }
}
