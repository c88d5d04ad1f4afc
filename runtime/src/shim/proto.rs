//! The shim's wire protocol: one JSON object per line over `shim.sock`. A connection carries
//! one request and one response, except `Subscribe`, after which the shim pushes one
//! `ContainerExitEvent` per line for as long as the connection lives, and `Attach`, after
//! which the connection carries attach frames.

use serde::{Deserialize, Serialize};

use crate::cri::ContainerState;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Ping,
    /// Reads `containers/<id>/config.json`, builds the container, waits for start.
    Create {
        id: String,
    },
    Start {
        id: String,
    },
    Kill {
        id: String,
        signal: i32,
    },
    Status {
        id: String,
    },
    List,
    /// Forgets a non-running container and removes its cgroup.
    Delete {
        id: String,
    },
    Subscribe,
    /// Reopens the container's log file (after the kubelet rotated it).
    ReopenLog {
        id: String,
    },
    /// Kills all containers, releases the namespaces and exits.
    Shutdown {
        /// Leave the containers' cgroups to the caller, which removes them with the pod's
        /// after this shim is gone (`Runtime`'s deferred clean-up). A shim of an older k1s
        /// ignores it and removes them, which the caller tolerates.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        keep_cgroups: bool,
    },
    /// To a spare shim (`shim spare`): become the shim of this sandbox, whose record is
    /// written. Other shims refuse it.
    Adopt {
        sandbox: String,
        /// The runtime's data directory, for a shim forked before its caller knew it
        /// (`shim::prefork`); a spare started for a data directory keeps its own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        runtime_dir: Option<std::path::PathBuf>,
        /// After the answer, the connection carries the shim's exit events, as one that sent
        /// `Subscribe` does: a connection fewer for a caller that subscribes next.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        subscribe: bool,
    },
    /// Attaches to the container's stdio. After the response line the connection carries
    /// frames both ways (see `attach`): output out, stdin/resize/close-stdin in, and a last
    /// exit frame when the container ends.
    Attach {
        id: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ContainerState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<(String, ContainerState)>,
    #[serde(default)]
    pub pid: u32,
}

impl Response {
    pub fn ok() -> Response {
        Response {
            ok: true,
            pid: std::process::id(),
            ..Default::default()
        }
    }
    pub fn err(msg: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(msg.into()),
            pid: std::process::id(),
            ..Default::default()
        }
    }
}

/// Attach frames: `[kind u8][len u32 big-endian][payload]`.
pub mod attach {
    /// Client to shim: bytes for the container's stdin.
    pub const STDIN: u8 = 0;
    /// Shim to client: container output.
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    /// Client to shim: close the container's stdin. Shim to client: the container exited,
    /// payload = exit code (i32 big-endian); the shim closes the connection after it.
    pub const CLOSE: u8 = 3;
    /// Client to shim: terminal size, payload = columns u16 + rows u16 (big-endian).
    pub const RESIZE: u8 = 4;
    /// Largest payload accepted from a client.
    pub const MAX_PAYLOAD: usize = 1 << 20;

    pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(5 + payload.len());
        f.push(kind);
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// Splits complete frames off the front of `buf`.
    pub fn take_frames(buf: &mut Vec<u8>) -> Result<Vec<(u8, Vec<u8>)>, String> {
        let mut out = Vec::new();
        loop {
            if buf.len() < 5 {
                return Ok(out);
            }
            let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            if len > MAX_PAYLOAD {
                return Err(format!("attach frame of {len} bytes"));
            }
            if buf.len() < 5 + len {
                return Ok(out);
            }
            let rest = buf.split_off(5 + len);
            let f = std::mem::replace(buf, rest);
            out.push((f[0], f[5..].to_vec()));
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn frames_split_at_any_boundary() {
            let mut all = frame(STDIN, b"hello");
            all.extend(frame(RESIZE, &[0, 80, 0, 24]));
            for cut in 0..all.len() {
                let mut buf = all[..cut].to_vec();
                let mut got = take_frames(&mut buf).unwrap_or_default();
                buf.extend_from_slice(&all[cut..]);
                got.extend(take_frames(&mut buf).unwrap_or_default());
                assert_eq!(got.len(), 2, "cut at {cut}");
                assert_eq!(got[0], (STDIN, b"hello".to_vec()));
                assert_eq!(got[1], (RESIZE, vec![0, 80, 0, 24]));
                assert!(buf.is_empty());
            }
            let mut huge = vec![STDIN, 0xff, 0xff, 0xff, 0xff];
            assert!(take_frames(&mut huge).is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Request;

    /// The request as a shim of an older k1s knows it.
    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(tag = "op", rename_all = "snake_case")]
    enum OldRequest {
        Shutdown,
    }

    #[test]
    fn a_shutdown_reads_the_same_in_old_and_new_shims() {
        let keep = serde_json::to_string(&Request::Shutdown { keep_cgroups: true }).expect("json");
        let plain = serde_json::to_string(&Request::Shutdown {
            keep_cgroups: false,
        })
        .expect("json");
        assert_eq!(plain, r#"{"op":"shutdown"}"#);
        for line in [&keep, &plain] {
            let old: OldRequest = serde_json::from_str(line).expect("an older shim reads it");
            assert_eq!(old, OldRequest::Shutdown);
        }
        let new: Request = serde_json::from_str(r#"{"op":"shutdown"}"#).expect("from older k1s");
        assert_eq!(
            new,
            Request::Shutdown {
                keep_cgroups: false
            }
        );
    }

    #[test]
    fn an_adoption_without_subscription_reads_as_before() {
        let plain = Request::Adopt {
            sandbox: "s".into(),
            runtime_dir: None,
            subscribe: false,
        };
        let line = serde_json::to_string(&plain).expect("json");
        assert_eq!(line, r#"{"op":"adopt","sandbox":"s"}"#);
        let back: Request = serde_json::from_str(&line).expect("read back");
        assert_eq!(back, plain);
        let sub: Request =
            serde_json::from_str(r#"{"op":"adopt","sandbox":"s","subscribe":true}"#).expect("json");
        assert!(matches!(
            sub,
            Request::Adopt {
                subscribe: true,
                ..
            }
        ));
    }
}
