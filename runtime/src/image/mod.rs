//! Images: reference names, the content-addressed store, archive import and safe layer
//! unpacking. Registry pulls are not here yet (`Runtime::pull_image` says so).

pub mod import;
pub mod reference;
pub mod store;
pub mod unpack;

#[cfg(test)]
mod unpack_tests;

pub use store::{ImageConfig, ImageRecord, ImageStore, LayerRecord};
