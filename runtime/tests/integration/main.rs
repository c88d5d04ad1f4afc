//! Runtime integration tests: real namespaces, overlayfs and cgroups; root required.
//! One binary made of modules (linking dominates on small machines).

mod common;
mod containers;
mod gc;
mod hardening;
mod images;
mod lifecycle;
mod oracle;
mod pull;
mod test_registry;
