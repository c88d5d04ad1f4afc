//! One container's process: the resolved spec the daemon hands to the shim, rootfs setup
//! (overlayfs, /proc, /dev, /sys, masks, binds, pivot_root), identity and capabilities, and
//! the final exec. Everything but `spec` runs inside a freshly cloned child of the
//! single-threaded shim (or of the exec helper), never in the daemon.

pub mod bundle;
pub mod caps;
pub mod init;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod user;

pub use spec::ContainerSpec;
