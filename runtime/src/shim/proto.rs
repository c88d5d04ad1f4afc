//! The shim's wire protocol: one JSON object per line over `shim.sock`. A connection carries
//! one request and one response, except `Subscribe`, after which the shim pushes one
//! `ContainerExitEvent` per line for as long as the connection lives.

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
    Shutdown,
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
