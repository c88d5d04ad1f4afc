//! Runtime integration tests: real namespaces, overlayfs and cgroups; root required.
//! One binary made of modules (linking dominates on small machines).

mod common;
mod containers;
mod images;
mod hardening;
mod lifecycle;
mod oracle;
