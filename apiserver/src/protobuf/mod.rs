//! Decoding of `application/vnd.kubernetes.protobuf` request bodies into JSON objects.

use serde_json::Value;

use crate::error::ApiError;

/// Decode a protobuf request body (the `k8s\0` envelope around `runtime.Unknown`).
pub fn decode(_raw: &[u8]) -> Result<Value, ApiError> {
    Err(ApiError::UnsupportedMediaType(
        "protobuf request bodies are not supported yet".into(),
    ))
}
