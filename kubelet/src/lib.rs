//! The k1s kubelet: registers the node, keeps its lease, and runs the pods bound to it
//! through the container runtime, reporting their status like upstream's kubelet.

pub mod node;
pub mod status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {what}: {source}")]
    Api { what: String, source: kube::Error },
}
