//! End-to-end tests of k1s through the real kubectl and helm. One binary, one module per
//! area; each test starts its own server (see `harness`).

mod auth;
mod backoff;
mod eviction;
mod harness;
mod helm;
mod kubectl_api;
mod node_agent;
mod pods;
mod probes;
mod pull;
mod restore;
mod runtime_cli;
mod sidecars;
mod storage;
mod streaming;
mod volumes;
