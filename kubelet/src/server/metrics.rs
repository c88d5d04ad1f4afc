//! `GET /metrics`: the kubelet's Prometheus metrics (see `crate::metrics`), with the pod and
//! container gauges read from the runtime now.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{cri_error, Ctx};
use crate::cri::RunState;
use crate::metrics::{render, Snapshot};

pub(crate) async fn metrics(State(ctx): State<Ctx>) -> Response {
    let sandboxes = match ctx.cri.list_sandboxes().await {
        Ok(s) => s,
        Err(e) => return cri_error(e),
    };
    let mut snap = Snapshot::default();
    for state in ["created", "running", "exited", "unknown"] {
        snap.containers.insert(state, 0);
    }
    for sb in &sandboxes {
        if sb.ready {
            snap.running_pods += 1;
        }
        let containers = ctx.cri.list_containers(&sb.id).await.unwrap_or_default();
        let mut latest: BTreeMap<&str, u32> = BTreeMap::new();
        for c in &containers {
            let state = match c.state {
                RunState::Created => "created",
                RunState::Running { .. } => "running",
                RunState::Exited { .. } => "exited",
            };
            *snap.containers.entry(state).or_default() += 1;
            let a = latest.entry(c.name.as_str()).or_default();
            *a = (*a).max(c.attempt);
        }
        for (name, attempt) in latest {
            let key = (sb.namespace.clone(), sb.name.clone(), name.to_string());
            snap.restarts.insert(key, attempt as u64);
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&snap),
    )
        .into_response()
}
