//! k1s API server: the Kubernetes REST API on durable sled storage.
//!
//! Owns HTTP serving (TLS, auth), discovery, OpenAPI, CRUD, watch, patch and Table output.
//! Depends on no other workspace crate; every other component talks to it over HTTPS.

pub mod admission;
pub mod allocate;
pub mod auth;
pub mod bootstrap;
pub mod crd;
pub mod discovery;
pub mod error;
pub mod event_ttl;
pub mod handlers;
pub mod managed;
pub mod namespace_lifecycle;
pub mod node_proxy;
pub mod openapi;
pub mod patch;
pub mod pki;
pub mod protobuf;
pub mod registry;
pub mod resources;
pub mod review;
pub mod schema;
pub mod selectors;
pub mod server;
pub mod storage;
pub mod table;
pub mod warnings;

pub use server::{run, Running, ServerConfig, ServerError};
