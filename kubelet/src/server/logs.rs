//! `containerLogs`: a container's CRI log file (`<time> <stream> <P|F> <text>` per line) as
//! plain text, with upstream's options: follow, timestamps, tailLines, sinceSeconds,
//! sinceTime, limitBytes.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use super::{cri_error, status, Ctx, Params};
use crate::cri::{next_exit, RunState};

/// How often a follower looks for new lines when no exit wakes it first.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Default, Clone)]
pub(crate) struct LogOptions {
    pub follow: bool,
    pub timestamps: bool,
    pub tail_lines: Option<usize>,
    pub since: Option<DateTime<Utc>>,
    pub limit_bytes: Option<usize>,
}

impl LogOptions {
    pub fn parse(p: &Params) -> Result<LogOptions, String> {
        let num = |key: &str, min: i64| -> Result<Option<i64>, String> {
            match p.get(key) {
                None | Some("") => Ok(None),
                Some(v) => match v.parse::<i64>() {
                    Ok(n) if n >= min => Ok(Some(n)),
                    _ => Err(format!("{key}: Invalid value: \"{v}\": must be >= {min}")),
                },
            }
        };
        let since_seconds = num("sinceSeconds", 1)?;
        let since_time = match p.get("sinceTime") {
            None | Some("") => None,
            Some(v) => Some(
                DateTime::parse_from_rfc3339(v)
                    .map_err(|_| {
                        format!("sinceTime: Invalid value: \"{v}\": not an RFC 3339 time")
                    })?
                    .with_timezone(&Utc),
            ),
        };
        if since_seconds.is_some() && since_time.is_some() {
            return Err("at most one of `sinceTime` or `sinceSeconds` may be specified".into());
        }
        Ok(LogOptions {
            follow: p.flag("follow"),
            timestamps: p.flag("timestamps"),
            tail_lines: num("tailLines", 0)?.map(|n| n as usize),
            since: since_time
                .or_else(|| since_seconds.map(|s| Utc::now() - chrono::Duration::seconds(s))),
            limit_bytes: num("limitBytes", 1)?.map(|n| n as usize),
        })
    }
}

/// One parsed CRI log line.
#[derive(Debug, PartialEq)]
pub(crate) struct Record<'a> {
    pub time: Option<DateTime<Utc>>,
    pub time_text: &'a str,
    pub partial: bool,
    pub text: &'a [u8],
}

pub(crate) fn parse_line(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time_text = std::str::from_utf8(parts.next()?).ok()?;
    let _stream = parts.next()?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or(b"");
    Some(Record {
        time: DateTime::parse_from_rfc3339(time_text)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        time_text,
        partial: tag == b"P",
        text,
    })
}

/// Renders one record as the client sees it.
fn render(r: &Record<'_>, timestamps: bool, out: &mut Vec<u8>) {
    if timestamps {
        match r.time {
            Some(t) => {
                out.extend_from_slice(t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string().as_bytes())
            }
            None => out.extend_from_slice(r.time_text.as_bytes()),
        }
        out.push(b' ');
    }
    out.extend_from_slice(r.text);
    if !r.partial {
        out.push(b'\n');
    }
}

/// Renders the complete lines of `data` that pass the filters; returns the rendered bytes.
pub(crate) fn render_lines(data: &[u8], opts: &LogOptions, tail: Option<usize>) -> Vec<u8> {
    let records: Vec<Record<'_>> = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(parse_line)
        .filter(|r| match (opts.since, r.time) {
            (Some(since), Some(t)) => t >= since,
            _ => true,
        })
        .collect();
    let skip = tail.map_or(0, |n| records.len().saturating_sub(n));
    let mut out = Vec::new();
    for r in &records[skip..] {
        render(r, opts.timestamps, &mut out);
    }
    out
}

pub(crate) async fn container_logs(State(ctx): State<Ctx>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let opts = match LogOptions::parse(&p) {
        Ok(o) => o,
        Err(m) => return status(StatusCode::BAD_REQUEST, "BadRequest", m),
    };
    let Some(id) = p.get("containerID").map(str::to_string) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "containerID is required",
        );
    };
    let c = match ctx.cri.container(&id).await {
        Ok(c) => c,
        Err(e) => return cri_error(e),
    };
    if c.log_path.is_empty() {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("container {id} has no log file"),
        );
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(stream_log(ctx, id, c.log_path, opts, tx));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    (
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(body),
    )
        .into_response()
}

/// Sends the log (and, when following, every new line until the container has exited) to `tx`.
async fn stream_log(ctx: Ctx, id: String, path: String, opts: LogOptions, tx: mpsc::Sender<Bytes>) {
    let mut left = opts.limit_bytes.unwrap_or(usize::MAX);
    let mut send = |mut out: Vec<u8>| {
        let done = out.len() >= left;
        out.truncate(left);
        left -= out.len();
        (out, done)
    };
    let Ok(mut file) = tokio::fs::File::open(&path).await else {
        return;
    };
    let mut buf = Vec::new();
    if file.read_to_end(&mut buf).await.is_err() {
        return;
    }
    let mut offset = buf.len() as u64;
    // Keep an unfinished last line for the next read.
    let keep = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut pending = buf.split_off(keep);
    let (out, done) = send(render_lines(&buf, &opts, opts.tail_lines));
    if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
        return;
    }
    if done || !opts.follow {
        return;
    }
    let mut exits = ctx.cri.exits();
    let mut exited = false;
    loop {
        let len = tokio::fs::metadata(&path)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        if len < offset {
            // Truncated or replaced: start again from its beginning.
            offset = 0;
            pending.clear();
        }
        if len > offset {
            if file.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
                return;
            }
            let mut chunk = Vec::new();
            match (&mut file).take(len - offset).read_to_end(&mut chunk).await {
                Ok(n) => offset += n as u64,
                Err(_) => return,
            }
            pending.extend_from_slice(&chunk);
            let keep = pending
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            let rest = pending.split_off(keep);
            let complete = std::mem::replace(&mut pending, rest);
            let (out, done) = send(render_lines(&complete, &opts, None));
            if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
                return;
            }
            if done {
                return;
            }
            continue;
        }
        if exited {
            return;
        }
        match ctx.cri.container(&id).await {
            Ok(c) if matches!(c.state, RunState::Exited { .. }) => {
                // One more pass picks up what was written before the exit.
                exited = true;
                continue;
            }
            Ok(_) => {}
            Err(_) => return,
        }
        tokio::select! {
            () = next_exit(&mut exits, None) => {}
            () = tokio::time::sleep(FOLLOW_POLL) => {}
            () = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &[u8] = b"2026-11-22T11:21:19.717530000Z stdout F one\n\
2026-11-22T11:21:20.000000001Z stderr P two-\n\
2026-11-22T11:21:20.000000002Z stderr F parts\n\
2026-11-22T11:21:21Z stdout F three\n";

    #[test]
    fn renders_partials_tail_and_timestamps() {
        let o = LogOptions::default();
        assert_eq!(render_lines(LOG, &o, None), b"one\ntwo-parts\nthree\n");
        assert_eq!(render_lines(LOG, &o, Some(1)), b"three\n");
        assert_eq!(render_lines(LOG, &o, Some(0)), b"");
        let t = LogOptions {
            timestamps: true,
            ..Default::default()
        };
        let out = String::from_utf8(render_lines(LOG, &t, Some(1))).unwrap_or_default();
        assert_eq!(out, "2026-11-22T11:21:21.000000000Z three\n");
    }

    #[test]
    fn since_filters_by_line_time() {
        let o = LogOptions {
            since: DateTime::parse_from_rfc3339("2026-11-22T11:21:20Z")
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            ..Default::default()
        };
        assert_eq!(render_lines(LOG, &o, None), b"two-parts\nthree\n");
    }

    #[test]
    fn rejects_bad_options() {
        let p = Params::parse(Some("tailLines=-1"));
        assert!(LogOptions::parse(&p).is_err());
        let p = Params::parse(Some("sinceSeconds=5&sinceTime=2026-11-22T11:21:20Z"));
        assert!(LogOptions::parse(&p).is_err());
        let p = Params::parse(Some("limitBytes=0"));
        assert!(LogOptions::parse(&p).is_err());
        let p = Params::parse(Some("follow=true&tailLines=3&limitBytes=10"));
        let o = LogOptions::parse(&p).unwrap_or_default();
        assert!(o.follow);
        assert_eq!(o.tail_lines, Some(3));
        assert_eq!(o.limit_bytes, Some(10));
    }
}
