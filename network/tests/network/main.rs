//! The network crate's one integration test binary. Tests that touch links, routes or nftables
//! need root and run in a fresh network and mount namespace of their own (the test re-executes
//! itself under `unshare --net --mount`), so the host's network is never changed; the "pods"
//! are namespaces bind-mounted inside that private mount namespace.

#[macro_use]
mod support;

mod egress;
mod host_port;
mod ipam;
mod pod_network;
