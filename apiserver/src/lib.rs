//! k1s API server: the Kubernetes REST API on durable sled storage.
//!
//! Owns HTTP serving (TLS, auth), discovery, OpenAPI, CRUD, watch, patch and Table output.
//! Depends on no other workspace crate; every other component talks to it over HTTPS.

pub mod error;
pub mod resources;
pub mod storage;
