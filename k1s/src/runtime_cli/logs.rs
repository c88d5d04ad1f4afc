//! `k1s runtime logs [-f]`: decodes a container's CRI log file (`<time> <stream> <P|F> <msg>`)
//! back into its stdout and stderr; `run` uses the same follower to show the output of the
//! container it runs.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::resolve_container;
use anyhow::Context;
use runtime::cri::{ContainerId, ContainerState};

/// How often a followed log file is read for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(50);
/// How often `logs -f` asks whether the container still runs.
const STATE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Reads a CRI log file from the start, incrementally. Plain blocking reads: the file is
/// local and each read returns at once, where async file I/O would hop to a pool thread and
/// back for every call.
pub struct LogFollower {
    file: Option<std::fs::File>,
    path: std::path::PathBuf,
    pending: Vec<u8>,
}

impl LogFollower {
    pub fn new(path: &Path) -> LogFollower {
        LogFollower {
            file: None,
            path: path.to_path_buf(),
            pending: Vec::new(),
        }
    }

    /// Writes every complete record appended since the last call to stdout or stderr.
    pub async fn pump(&mut self) -> anyhow::Result<()> {
        if self.file.is_none() {
            match std::fs::File::open(&self.path) {
                Ok(f) => self.file = Some(f),
                // The shim creates the file when the container is created; not there yet.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("failed to open {}", self.path.display()))
                }
            }
        }
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        let mut chunk = Vec::new();
        std::io::Read::read_to_end(f, &mut chunk)
            .with_context(|| format!("failed to read {}", self.path.display()))?;
        self.pending.extend_from_slice(&chunk);
        let Some(last_nl) = self.pending.iter().rposition(|b| *b == b'\n') else {
            return Ok(());
        };
        let rest = self.pending.split_off(last_nl + 1);
        let complete = std::mem::replace(&mut self.pending, rest);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        for line in complete.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if let Some((stream, content)) = decode(line) {
                let dst = if stream == "stderr" {
                    &mut err
                } else {
                    &mut out
                };
                dst.extend_from_slice(&content);
            }
        }
        if !out.is_empty() {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(&out).and_then(|()| o.flush());
        }
        if !err.is_empty() {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(&err).and_then(|()| e.flush());
        }
        Ok(())
    }
}

/// One CRI log record: (stream, content with its newline back for full lines).
pub fn decode(line: &[u8]) -> Option<(&str, std::borrow::Cow<'_, [u8]>)> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let _time = parts.next()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    let tag = parts.next()?;
    let content = parts.next().unwrap_or_default();
    if tag == b"P" {
        Some((stream, std::borrow::Cow::Borrowed(content)))
    } else {
        let mut full = content.to_vec();
        full.push(b'\n');
        Some((stream, std::borrow::Cow::Owned(full)))
    }
}

pub async fn logs(rt: &runtime::Runtime, id: &str, follow: bool) -> anyhow::Result<ExitCode> {
    let cid = resolve_container(rt, id).await?;
    let status = rt.container_status(&cid).await?;
    let Some(path) = status.log_path else {
        anyhow::bail!("container {} keeps no log", cid);
    };
    let mut events = rt.events();
    let mut f = LogFollower::new(&path);
    f.pump().await?;
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    // The exit event ends the loop; the state is also checked now and then in case the shim
    // went away without one.
    let mut next_check = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_check {
            if !is_running(rt, &cid).await {
                break;
            }
            next_check = tokio::time::Instant::now() + STATE_CHECK_INTERVAL;
        }
        tokio::select! {
            ev = events.recv() => {
                if matches!(&ev, Ok(e) if e.container_id == cid) {
                    break;
                }
            }
            _ = tokio::time::sleep(FOLLOW_INTERVAL) => {}
        }
        f.pump().await?;
    }
    f.pump().await?;
    Ok(ExitCode::SUCCESS)
}

async fn is_running(rt: &runtime::Runtime, id: &ContainerId) -> bool {
    matches!(
        rt.container_status(id).await.map(|s| s.state),
        Ok(ContainerState::Running { .. } | ContainerState::Created)
    )
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn cri_records() {
        let (s, c) = decode(b"2026-01-01T00:00:00.1Z stdout F hello world").expect("record");
        assert_eq!((s, &*c), ("stdout", &b"hello world\n"[..]));
        let (s, c) = decode(b"2026-01-01T00:00:00.1Z stderr P part").expect("record");
        assert_eq!((s, &*c), ("stderr", &b"part"[..]));
        let (_, c) = decode(b"2026-01-01T00:00:00.1Z stdout F ").expect("empty line");
        assert_eq!(&*c, b"\n");
        assert!(decode(b"garbage").is_none());
    }
}
