//! Images: reference names, the content-addressed store, archive import, registry pulls
//! (`registry` speaks the distribution API, `pull` drives it into the store, `credentials`
//! picks auth out of dockerconfigjson) and safe layer unpacking.

pub mod credentials;
pub mod decompress;
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
pub use pull::{PullOptions, PullReport};
pub use registry::RegistryConfig;
pub use store::{ImageConfig, ImageRecord, ImageStore, LayerRecord};
