//! Create-only review resources: SelfSubjectAccessReview (`kubectl auth can-i`),
//! SelfSubjectRulesReview, SelfSubjectReview (`kubectl auth whoami`). The admin identity is
//! allowed everything; RBAC for other identities is evaluated in `auth`.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::handlers::path::Target;
use crate::handlers::{json_response, Shared};

pub fn create(_state: &Shared, t: &Target, body: Value) -> ApiResult<Response> {
    let mut out = body;
    if let Some(m) = out.as_object_mut() {
        m.insert("apiVersion".into(), json!(t.rt.api_version()));
        m.insert("kind".into(), json!(t.rt.kind));
        m.entry("metadata").or_insert(json!({}));
    }
    match t.rt.kind.as_str() {
        "SelfSubjectAccessReview" | "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            out["status"] =
                json!({"allowed": true, "reason": "k1s: the admin identity may do everything"});
        }
        "SelfSubjectRulesReview" => {
            out["status"] = json!({
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": false});
        }
        "SelfSubjectReview" => {
            out["status"] = json!({"userInfo": {"username": "system:admin", "groups": ["system:masters", "system:authenticated"]}});
        }
        _ => {
            out["status"] =
                json!({"authenticated": false, "error": "token reviews are not supported"});
        }
    }
    Ok(json_response(StatusCode::CREATED, &out, &[]))
}
