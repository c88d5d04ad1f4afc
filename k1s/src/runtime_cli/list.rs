//! `k1s runtime sandboxes|ps|inspect`: tables with crictl's columns, and JSON.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use runtime::cri::{ContainerState, SandboxState};

use super::{resolve_container, resolve_sandbox};

const ATTEMPT: &str = "io.kubernetes.container.attempt";
const SANDBOX_ATTEMPT: &str = "io.kubernetes.pod.attempt";

/// crictl prints 13 characters of an ID.
pub(crate) fn short(id: &str) -> &str {
    &id[..id.len().min(13)]
}

/// "3 seconds ago", "About a minute ago", "2 hours ago": Docker's human durations.
pub(crate) fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    let text = match s {
        0 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".to_string(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".to_string(),
        7200..=172_799 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86_400),
    };
    format!("{text} ago")
}

fn label<'a>(labels: &'a [(String, String)], key: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub async fn sandboxes(rt: &runtime::Runtime) -> anyhow::Result<ExitCode> {
    let mut list = rt.list_pod_sandboxes().await?;
    list.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    let now = Utc::now();
    println!(
        "{:<13}  {:<24}  {:<8}  {:<30}  {:<20}  {:<7}  RUNTIME",
        "POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT"
    );
    for s in list {
        let state = match s.state {
            SandboxState::Ready => "Ready",
            SandboxState::NotReady => "NotReady",
        };
        let handler = s
            .config
            .runtime_handler
            .as_deref()
            .filter(|h| !h.is_empty())
            .unwrap_or("k1s");
        println!(
            "{:<13}  {:<24}  {:<8}  {:<30}  {:<20}  {:<7}  {handler}",
            short(&s.id.0),
            ago(s.created_at, now),
            state,
            s.config.name,
            s.config.namespace,
            label(&s.config.labels, SANDBOX_ATTEMPT).unwrap_or("0"),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn state_word(s: &ContainerState) -> &'static str {
    match s {
        ContainerState::Created => "Created",
        ContainerState::Running { .. } => "Running",
        ContainerState::Exited { .. } => "Exited",
    }
}

pub async fn ps(rt: &runtime::Runtime, all: bool, quiet: bool) -> anyhow::Result<ExitCode> {
    let mut list = rt.list_containers().await?;
    list.retain(|c| all || matches!(c.state, ContainerState::Running { .. }));
    list.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    if quiet {
        for c in list {
            println!("{}", c.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let now = Utc::now();
    println!(
        "{:<13}  {:<30}  {:<24}  {:<7}  {:<20}  {:<7}  POD ID",
        "CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT"
    );
    for c in list {
        let name = label(&c.labels, "io.kubernetes.container.name").unwrap_or(&c.name);
        println!(
            "{:<13}  {:<30}  {:<24}  {:<7}  {:<20}  {:<7}  {}",
            short(&c.id.0),
            c.image,
            ago(c.created_at, now),
            state_word(&c.state),
            name,
            label(&c.labels, ATTEMPT).unwrap_or("0"),
            short(&c.sandbox_id.0),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A container: `{"status": ..., "info": {"config": <resolved spec>}}` like `crictl inspect`;
/// a sandbox: `{"status": ...}` like `crictl inspectp`.
pub async fn inspect(rt: &runtime::Runtime, id: &str) -> anyhow::Result<ExitCode> {
    let out = match resolve_container(rt, id).await {
        Ok(cid) => {
            let status = rt.container_status(&cid).await?;
            let spec = rt.container_spec(&cid)?;
            serde_json::json!({"status": status, "info": {"config": &*spec}})
        }
        Err(container_err) => match resolve_sandbox(rt, id).await {
            Ok(sid) => {
                let status = rt.pod_sandbox_status(&sid).await?;
                serde_json::json!({"status": status})
            }
            Err(_) => return Err(container_err.context("no such container or sandbox")),
        },
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::ago;
    use chrono::{Duration, Utc};

    #[test]
    fn human_ages() {
        let now = Utc::now();
        assert_eq!(ago(now, now), "Less than a second ago");
        assert_eq!(ago(now - Duration::seconds(5), now), "5 seconds ago");
        assert_eq!(ago(now - Duration::seconds(90), now), "About a minute ago");
        assert_eq!(ago(now - Duration::minutes(5), now), "5 minutes ago");
        assert_eq!(ago(now - Duration::hours(3), now), "3 hours ago");
        assert_eq!(ago(now - Duration::days(4), now), "4 days ago");
    }
}
