//! Request body decoding: size limit, JSON and YAML (protobuf in `protobuf`), with the
//! content type recorded so patch handlers can pick their patch type.

use axum::body::Body;
use axum::http::{header, HeaderMap};
use serde_json::Value;

use crate::error::ApiError;

/// Kubernetes rejects request bodies above 3 MiB.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

pub struct Decoded {
    pub content_type: String,
    pub value: Value,
    pub raw: Vec<u8>,
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

async fn bytes(body: Body) -> Result<Vec<u8>, ApiError> {
    let b = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::TooLarge("the request body is larger than 3 MiB".into()))?;
    Ok(b.to_vec())
}

/// Parse raw bytes of the given media type into JSON.
pub fn parse(ct: &str, raw: &[u8]) -> Result<Value, ApiError> {
    match ct {
        "application/json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/json-patch+json"
        | "" => serde_json::from_slice(raw).map_err(|e| {
            ApiError::BadRequest(format!("error decoding request body: {e}"))
        }),
        "application/yaml" | "application/apply-patch+yaml" | "application/x-yaml" | "text/yaml" => {
            let text = std::str::from_utf8(raw)
                .map_err(|_| ApiError::BadRequest("the request body is not valid UTF-8".into()))?;
            serde_yaml::from_str::<Value>(text)
                .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))
        }
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(raw),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other})"
        ))),
    }
}

pub async fn read(body: Body, headers: &HeaderMap) -> Result<Decoded, ApiError> {
    let ct = content_type(headers);
    let raw = bytes(body).await?;
    if raw.is_empty() {
        return Err(ApiError::BadRequest("the request body is empty".into()));
    }
    let value = parse(&ct, &raw)?;
    Ok(Decoded {
        content_type: ct,
        value,
        raw,
    })
}

/// DELETE bodies are optional.
pub async fn read_optional(body: Body, headers: &HeaderMap) -> Result<Option<Decoded>, ApiError> {
    let ct = content_type(headers);
    let raw = bytes(body).await?;
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    let value = parse(&ct, &raw)?;
    Ok(Some(Decoded {
        content_type: ct,
        value,
        raw,
    }))
}
