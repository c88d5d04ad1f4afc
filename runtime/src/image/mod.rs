//! Images: reference names, the content-addressed store, archive import, registry pulls
//! (`registry` speaks the distribution API, `pull` drives it into the store, `credentials`
//! picks auth out of dockerconfigjson), safe layer unpacking and garbage collection (`gc`).

pub mod credentials;
pub mod decompress;
pub mod gc;
pub mod import;
pub mod pull;
pub mod reference;
pub mod registry;
mod registry_auth;
pub mod store;
pub mod unpack;

#[cfg(test)]
mod unpack_tests;

pub use credentials::RegistryAuth;
pub use gc::{Lease, PruneOptions, PruneReport};
pub use pull::{PullOptions, PullReport};
pub use registry::RegistryConfig;
pub use store::{ImageConfig, ImageRecord, ImageStore, LayerRecord};
