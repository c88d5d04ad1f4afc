//! Decoding of `application/vnd.kubernetes.protobuf` request bodies into JSON objects.
//!
//! kubectl's `create <generator>`, `autoscale`, `auth can-i`, `create token`, `drain`, and helm's
//! release Secrets and their `DeleteOptions` arrive in protobuf only (KUBECTL.md §0.1, §1.2). The
//! body is the magic `k8s\0` followed by a `runtime.Unknown` {1 TypeMeta {1 apiVersion, 2 kind},
//! 2 raw, 3 contentEncoding, 4 contentType}; `raw` is the object encoded with the field numbers
//! of upstream `generated.proto`. We turn it into the object's JSON form (with `apiVersion` and
//! `kind`), so everything after the body parser sees one format.
//!
//! Layout: `wire` reads the wire format, `decode` walks it with the tables in `schema` (generated
//! from upstream by `gen_schema.py`), `types` renders Time, Quantity, IntOrString and raw JSON.
//! Encoding protobuf responses is not done here: every client we serve accepts JSON.

mod decode;
mod schema;
mod types;
mod wire;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::error::ApiError;

const MAGIC: &[u8; 4] = b"k8s\0";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// The `runtime.Unknown` wrapper, read but not yet interpreted.
#[derive(Default)]
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

/// Decode a protobuf request body (the `k8s\0` envelope around `runtime.Unknown`).
pub fn decode(raw: &[u8]) -> Result<Value, ApiError> {
    let body = raw
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad_request("body does not start with the protobuf magic \"k8s\\0\""))?;
    let env = envelope(body).map_err(|e| bad_request(format!("runtime.Unknown: {e}")))?;
    if !env.content_encoding.is_empty() {
        return Err(ApiError::UnsupportedMediaType(format!(
            "protobuf content encoding {:?} is not supported, use application/json",
            env.content_encoding
        )));
    }
    if !env.content_type.is_empty() && env.content_type != PROTOBUF {
        return Err(ApiError::UnsupportedMediaType(format!(
            "protobuf envelope content type {:?} is not supported, use application/json",
            env.content_type
        )));
    }
    if env.kind.is_empty() {
        return Err(bad_request("protobuf envelope has no kind"));
    }
    let msg = schema::top_level(&env.api_version, &env.kind).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "kind {} ({}) is not supported in protobuf by this server, use application/json",
            env.kind, env.api_version
        ))
    })?;
    let fields = decode::message(env.raw, msg, 0)
        .map_err(|e| bad_request(format!("{} {}: {e}", env.api_version, env.kind)))?;
    let mut obj = Map::with_capacity(fields.len() + 2);
    obj.insert("apiVersion".into(), Value::String(env.api_version));
    obj.insert("kind".into(), Value::String(env.kind));
    obj.extend(fields);
    Ok(Value::Object(obj))
}

fn envelope(body: &[u8]) -> Result<Envelope<'_>, decode::DecodeError> {
    let mut env = Envelope::default();
    for item in wire::fields(body) {
        match item? {
            (1, v) => {
                for item in wire::fields(decode::bytes(v)?) {
                    match item? {
                        (1, v) => env.api_version = decode::string(decode::bytes(v)?)?,
                        (2, v) => env.kind = decode::string(decode::bytes(v)?)?,
                        _ => {}
                    }
                }
            }
            (2, v) => env.raw = decode::bytes(v)?,
            (3, v) => env.content_encoding = decode::string(decode::bytes(v)?)?,
            (4, v) => env.content_type = decode::string(decode::bytes(v)?)?,
            _ => {}
        }
    }
    Ok(env)
}

fn bad_request(msg: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("invalid protobuf body: {msg}"))
}
