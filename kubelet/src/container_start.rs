//! Starting one container instance: image pull per `imagePullPolicy` (Pulling, Pulled,
//! ErrImagePull, ImagePullBackOff, ErrImageNeverPull), its runtime config plus termination
//! message mount, create, start, postStart hook. Failures before the container exists become a
//! waiting reason retried with backoff (`wait_retry`). When to restart an exited instance is
//! `crash_loop`.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container as KContainer, Pod};

use crate::container_config;
use crate::cri::{CriError, Sandbox};
use crate::lifecycle::Hook;
use crate::sync_pod::{pod_grace, pod_ref, PodState, Waiting};
use crate::termination_message;

/// `involvedObject.fieldPath` of container `name` of `pod`.
pub(crate) fn field_path(pod: &Pod, name: &str) -> String {
    let init = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|i| i.iter().any(|c| c.name == name));
    if init {
        format!("spec.initContainers{{{name}}}")
    } else {
        format!("spec.containers{{{name}}}")
    }
}

impl PodState {
    /// The docker config documents (`.dockerconfigjson` / `.dockercfg`) of the pod's
    /// imagePullSecrets. Secrets that cannot be read are reported as upstream does and skipped.
    async fn pull_secrets(&self, pod: &Pod, rec: &crate::events::Recorder) -> Vec<Vec<u8>> {
        let names: Vec<String> = pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .filter(|n| !n.is_empty())
            .collect();
        if names.is_empty() {
            return Vec::new();
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(self.client.clone(), &ns);
        let mut docs = Vec::new();
        let mut missing = Vec::new();
        for name in names {
            match api.get_opt(&name).await {
                Ok(Some(secret)) => {
                    let data = secret.data.unwrap_or_default();
                    for key in [".dockerconfigjson", ".dockercfg"] {
                        if let Some(v) = data.get(key) {
                            docs.push(v.0.clone());
                        }
                    }
                }
                _ => missing.push(name),
            }
        }
        if !missing.is_empty() {
            rec.event(
                "Warning",
                "FailedToRetrieveImagePullSecret",
                &format!(
                    "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
                    missing.join(", ")
                ),
            )
            .await;
        }
        docs
    }

    /// Pull the image as the pull policy says, create instance `attempt` of `c` with its
    /// termination message file, start it and run its postStart hook. Returns when to try
    /// again after a failure that comes before the container exists.
    pub(crate) async fn start(
        &mut self,
        pod: &Pod,
        sb: &Sandbox,
        c: &KContainer,
        attempt: u32,
    ) -> Option<Duration> {
        if let Some(w) = self.waiting.get(&c.name) {
            if w.retry_at > Instant::now() {
                return Some(w.retry_at - Instant::now());
            }
        }
        let image = c.image.clone().unwrap_or_default();
        let always = c.image_pull_policy.as_deref() == Some("Always");
        let never = c.image_pull_policy.as_deref() == Some("Never");
        let rec = self.recorder(pod).clone();
        let field = field_path(pod, &c.name);
        let present = self.cri.image_present(&image).await;
        if present && !always {
            rec.event_for(
                "Normal",
                "Pulled",
                &format!("Container image \"{image}\" already present on machine"),
                &field,
            )
            .await;
        } else if never {
            let msg =
                format!("Container image \"{image}\" is not present with pull policy of Never");
            rec.event_for("Warning", "ErrImageNeverPull", &msg, &field)
                .await;
            return Some(self.wait_retry(&c.name, "ErrImageNeverPull", &msg));
        } else {
            rec.event_for(
                "Normal",
                "Pulling",
                &format!("Pulling image \"{image}\""),
                &field,
            )
            .await;
            let t0 = Instant::now();
            let secrets = self.pull_secrets(pod, &rec).await;
            if let Err(e) = self.cri.ensure_image(&image, always, &secrets).await {
                let (reason, msg) = match &e {
                    CriError::InvalidImage(m) => ("InvalidImageName", m.clone()),
                    other => ("ErrImagePull", other.to_string()),
                };
                rec.event_for(
                    "Warning",
                    "Failed",
                    &format!("Failed to pull image \"{image}\": {msg}"),
                    &field,
                )
                .await;
                return Some(self.wait_retry(&c.name, reason, &msg));
            }
            rec.event_for(
                "Normal",
                "Pulled",
                &format!(
                    "Successfully pulled image \"{image}\" in {}ms",
                    t0.elapsed().as_millis()
                ),
                &field,
            )
            .await;
        }
        if container_config::run_as_non_root(pod, c) {
            let user = self.cri.image_user(&image).await.unwrap_or_default();
            if let Err(msg) = container_config::verify_run_as_non_root(pod, c, &user) {
                rec.event_for("Warning", "Failed", &format!("Error: {msg}"), &field)
                    .await;
                return Some(self.wait_retry(&c.name, "CreateContainerConfigError", &msg));
            }
        }
        let built = container_config::build(&self.client, &self.cfg, pod, c, sb, attempt).await;
        let term = termination_message::prepare(&self.cfg, &self.uid, c, attempt);
        let spec = match built.and_then(|mut s| {
            s.mounts.extend(term?);
            Ok(s)
        }) {
            Ok(s) => s,
            Err(msg) => {
                rec.event_for("Warning", "Failed", &format!("Error: {msg}"), &field)
                    .await;
                return Some(self.wait_retry(&c.name, "CreateContainerConfigError", &msg));
            }
        };
        let t0 = Instant::now();
        let id = match self.cri.create_container(&sb.id, spec).await {
            Ok(id) => id,
            Err(e @ CriError::Sandbox(_)) => {
                // The sandbox could not be finished (its network) and is gone: a later sync
                // makes a new one, as after a failed sandbox creation.
                self.sandbox_failed(pod, &e).await;
                return Some(crate::sync_pod::SANDBOX_RETRY);
            }
            Err(e) => {
                rec.event_for("Warning", "Failed", &format!("Error: {e}"), &field)
                    .await;
                return Some(self.wait_retry(&c.name, "CreateContainerError", &e.to_string()));
            }
        };
        rec.event_for(
            "Normal",
            "Created",
            &format!("Created container: {}", c.name),
            &field,
        )
        .await;
        let created_ms = t0.elapsed().as_secs_f64() * 1e3;
        if let Err(e) = self.cri.start_container(&id).await {
            rec.event_for(
                "Warning",
                "Failed",
                &format!("Error: failed to start container \"{}\": {e}", c.name),
                &field,
            )
            .await;
            return None;
        }
        rec.event_for(
            "Normal",
            "Started",
            &format!("Started container {}", c.name),
            &field,
        )
        .await;
        tracing::debug!(
            pod = %pod_ref(pod),
            container = %c.name,
            create_ms = created_ms,
            start_ms = t0.elapsed().as_secs_f64() * 1e3 - created_ms,
            "container started"
        );
        self.waiting.remove(&c.name);
        let (pod_ip, pod_ref) = (self.pod_ip(pod, sb), pod_ref(pod));
        let hook = Hook {
            cri: self.cri.as_ref(),
            container: c,
            container_id: &id,
            pod_ip: &pod_ip,
            pod_ref: &pod_ref,
            events: &rec,
            field: &field,
        };
        if hook.post_start().await.is_err() {
            // The container is stopped and restarted per restartPolicy like any exit.
            hook.kill(pod_grace(pod), "FailedPostStartHook").await;
        }
        None
    }

    fn wait_retry(&mut self, name: &str, reason: &str, msg: &str) -> Duration {
        let delay = self
            .waiting
            .get(name)
            .map(|w| (w.delay * 2).min(self.cfg.backoff_max))
            .unwrap_or(self.cfg.backoff_base);
        let shown = if reason == "ErrImagePull"
            && self
                .waiting
                .get(name)
                .is_some_and(|w| w.reason == "ErrImagePull" || w.reason == "ImagePullBackOff")
        {
            "ImagePullBackOff"
        } else {
            reason
        };
        self.waiting.insert(
            name.to_string(),
            Waiting {
                reason: shown.into(),
                message: msg.into(),
                retry_at: Instant::now() + delay,
                delay,
            },
        );
        delay
    }
}
