//! Termination messages, as upstream: every container instance gets its own empty host file
//! (`<pod dir>/containers/<name>/<attempt>`, mode 0666) bind-mounted at its
//! `terminationMessagePath` (default `/dev/termination-log`). When the instance has exited,
//! the last 4096 bytes of that file become `state.terminated.message`; with
//! `terminationMessagePolicy: FallbackToLogsOnError`, a failed instance that wrote nothing
//! there gets the tail of its log instead (last 80 lines, at most 2048 bytes).

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Container as KContainer;

use crate::container_config::pod_dir;
use crate::cri::{Container, Mount, RunState};
use crate::KubeletConfig;

/// Upstream's `MaxContainerTerminationMessageLength`.
pub const MAX_MESSAGE_BYTES: u64 = 4096;
/// Upstream's `MaxContainerTerminationMessageLogLines` and `...LogLength`.
pub const MAX_LOG_LINES: usize = 80;
pub const MAX_LOG_BYTES: usize = 2048;

const DEFAULT_PATH: &str = "/dev/termination-log";

/// The host file of instance `attempt` of container `name`.
pub fn host_path(cfg: &KubeletConfig, pod_uid: &str, name: &str, attempt: u32) -> PathBuf {
    pod_dir(cfg, pod_uid)
        .join("containers")
        .join(name)
        .join(attempt.to_string())
}

fn container_path(c: &KContainer) -> Option<String> {
    match c.termination_message_path.as_deref() {
        None => Some(DEFAULT_PATH.into()),
        Some("") => None,
        Some(p) => Some(p.into()),
    }
}

/// Create the (empty) host file of a new instance and the mount that puts it in place.
pub fn prepare(
    cfg: &KubeletConfig,
    pod_uid: &str,
    c: &KContainer,
    attempt: u32,
) -> Result<Option<Mount>, String> {
    let Some(target) = container_path(c) else {
        return Ok(None);
    };
    let host = host_path(cfg, pod_uid, &c.name, attempt);
    let fail = |e: std::io::Error| {
        format!(
            "failed to create the termination message file {}: {e}",
            host.display()
        )
    };
    if let Some(dir) = host.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&host)
        .map_err(fail)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o666))
        .map_err(fail)?;
    Ok(Some(Mount {
        host_path: host.display().to_string(),
        container_path: target,
        readonly: false,
    }))
}

/// The last `max` bytes of the file at `path`; None when it does not exist.
fn read_tail(path: &Path, max: u64) -> Result<Option<Vec<u8>>, std::io::Error> {
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if len > max {
        f.seek(SeekFrom::Start(len - max))?;
    }
    let mut out = Vec::new();
    f.take(max).read_to_end(&mut out)?;
    Ok(Some(out))
}

/// The tail of a CRI log as plain text: the last `MAX_LOG_LINES` lines, then the last
/// `MAX_LOG_BYTES` bytes of those.
pub fn log_tail(log: &[u8]) -> String {
    let text = crate::server::logs::render_lines(log, &Default::default(), Some(MAX_LOG_LINES));
    let start = text.len().saturating_sub(MAX_LOG_BYTES);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// The termination message of exited instance `x` of container `c`: what it wrote to its
/// termination message file, or the tail of its log per `FallbackToLogsOnError`.
pub fn read(cfg: &KubeletConfig, pod_uid: &str, c: &KContainer, x: &Container) -> String {
    let RunState::Exited { code, reason, .. } = &x.state else {
        return String::new();
    };
    let fallback = c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError")
        && *code != 0
        && reason != "StartError"
        && reason != "ContainerCannotRun";
    let from_file = match container_path(c) {
        None => None,
        Some(_) => match read_tail(
            &host_path(cfg, pod_uid, &c.name, x.attempt),
            MAX_MESSAGE_BYTES,
        ) {
            Ok(data) => data,
            Err(e) => {
                return format!(
                    "Error on reading termination log {}: {e}",
                    host_path(cfg, pod_uid, &c.name, x.attempt).display()
                )
            }
        },
    };
    match from_file {
        Some(d) if !d.is_empty() => String::from_utf8_lossy(&d).into_owned(),
        _ if fallback && !x.log_path.is_empty() => match std::fs::read(&x.log_path) {
            Ok(log) => log_tail(&log),
            Err(e) => format!("Error on reading termination message from logs: {e}"),
        },
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_of_a_long_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("m");
        let data: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(&p, &data).expect("write");
        let got = read_tail(&p, MAX_MESSAGE_BYTES)
            .expect("read")
            .expect("exists");
        assert_eq!(got, data[data.len() - 4096..]);
        assert_eq!(read_tail(&dir.path().join("none"), 10).expect("read"), None);
    }

    #[test]
    fn log_tail_keeps_the_last_80_lines_and_2048_bytes() {
        let mut log = String::new();
        for i in 0..100 {
            log.push_str(&format!(
                "2026-01-01T00:00:00.000000000Z stdout F line {i}\n"
            ));
        }
        let t = log_tail(log.as_bytes());
        assert!(
            t.starts_with("line 20\n") && t.ends_with("line 99\n"),
            "{t}"
        );
        let long = format!(
            "2026-01-01T00:00:00.000000000Z stderr F {}\n2026-01-01T00:00:00.000000000Z stderr F end\n",
            "x".repeat(3000)
        );
        let t = log_tail(long.as_bytes());
        assert_eq!(t.len(), MAX_LOG_BYTES);
        assert!(t.ends_with("x\nend\n"));
    }
}
