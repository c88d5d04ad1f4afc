//! The runtime's one error type. Each variant names the operation that failed and carries its
//! inputs; messages are lowercase without a trailing period.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to {op} {path}: {source}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("failed to decode {what} from {path}: {source}")]
    DecodeJson {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to encode {what}: {source}")]
    EncodeJson {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        reference: String,
        reason: &'static str,
    },
    #[error("image {reference:?} not found")]
    ImageNotFound { reference: String },
    #[error("invalid image archive {path}: {reason}")]
    InvalidArchive { path: PathBuf, reason: String },
    #[error("blob {expected} has digest {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("failed to unpack layer {digest}: {reason}")]
    UnpackLayer { digest: String, reason: String },
    #[error("layer {digest} unpacks to more than {limit} bytes")]
    LayerTooLarge { digest: String, limit: u64 },
    #[error("failed to pull {reference}: registry {registry} is unreachable: {reason}")]
    RegistryUnreachable {
        reference: String,
        registry: String,
        reason: String,
    },
    #[error("failed to pull {reference}: {what} from {registry} timed out after {timeout_ms} ms")]
    RegistryTimeout {
        reference: String,
        registry: String,
        what: String,
        timeout_ms: u64,
    },
    #[error("failed to pull {reference}: not found")]
    ManifestNotFound { reference: String },
    #[error("failed to pull {reference}: unauthorized: {reason}")]
    RegistryUnauthorized { reference: String, reason: String },
    #[error(
        "failed to pull {reference}: registry {registry} answered {status} to {what}: {message}"
    )]
    Registry {
        reference: String,
        registry: String,
        what: String,
        status: u16,
        message: String,
    },
    #[error("failed to pull {reference}: unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType {
        reference: String,
        what: &'static str,
        media_type: String,
    },
    #[error("failed to pull {reference}: no manifest for {platform} in the image index")]
    NoMatchingPlatform { reference: String, platform: String },
    #[error("failed to pull {reference}: invalid manifest: {reason}")]
    InvalidManifest { reference: String, reason: String },
    #[error("failed to pull {reference}: blob {digest}: {reason}")]
    BadBlob {
        reference: String,
        digest: String,
        reason: String,
    },
    #[error(
        "failed to pull {reference}: digest mismatch: content of {expected} has digest {actual}"
    )]
    PullDigestMismatch {
        reference: String,
        expected: String,
        actual: String,
    },
    #[error("invalid registry credentials: {reason}")]
    InvalidCredentials { reason: String },
    #[error("failed to set up TLS for registries: {reason}")]
    RegistryTls { reason: String },
    #[error("no runtime handler {handler:?} is configured")]
    UnknownRuntimeHandler { handler: String },
    #[error("pod sandbox {id:?} not found")]
    SandboxNotFound { id: String },
    #[error("container {id:?} not found")]
    ContainerNotFound { id: String },
    #[error("container name {name:?} already in use in sandbox {sandbox}")]
    ContainerNameInUse { name: String, sandbox: String },
    #[error("cannot {op} container {id}: it is {state}")]
    InvalidContainerState {
        op: &'static str,
        id: String,
        state: &'static str,
    },
    #[error("failed to start shim {exe} for sandbox {sandbox}: {reason}")]
    StartShim {
        exe: PathBuf,
        sandbox: String,
        reason: String,
    },
    #[error("shim of sandbox {sandbox} at {socket} is unreachable: {source}")]
    ShimUnreachable {
        sandbox: String,
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("shim of sandbox {sandbox} failed to {op}: {message}")]
    Shim {
        sandbox: String,
        op: String,
        message: String,
    },
    #[error("failed to {op} cgroup {path}: {source}")]
    Cgroup {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("exec {cmd:?} in container {id} timed out after {timeout_ms} ms")]
    ExecTimeout {
        id: String,
        cmd: Vec<String>,
        timeout_ms: u64,
    },
    #[error("{what} is not implemented")]
    NotImplemented { what: &'static str },
    #[error("blocking task for {op} panicked or was cancelled")]
    Join { op: &'static str },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
    pub(crate) fn sys(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(nix::errno::Errno) -> Error {
        let path = path.into();
        move |source| Error::Sys { op, path, source }
    }
}
