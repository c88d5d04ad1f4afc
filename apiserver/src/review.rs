//! Create-only review resources, answered from RBAC and the authenticator:
//! SelfSubjectAccessReview (`kubectl auth can-i`), SubjectAccessReview,
//! LocalSubjectAccessReview, SelfSubjectRulesReview (`can-i --list`), SelfSubjectReview
//! (`kubectl auth whoami`) and TokenReview; plus the `serviceaccounts/<name>/token`
//! subresource (`kubectl create token`) that issues ServiceAccount tokens.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use crate::auth::rbac::{self, Attributes};
use crate::auth::token::{Claims, K8sClaim, Ref, ISSUER};
use crate::auth::User;
use crate::crd::strings;
use crate::error::{ApiError, ApiResult, Cause, Subject};
use crate::handlers::path::Target;
use crate::handlers::{json_response, Shared};

fn s(v: &Value, p: &str) -> String {
    v.pointer(p)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Attributes from a review's `spec` (resourceAttributes or nonResourceAttributes).
fn spec_attributes(spec: &Value, forced_ns: Option<&str>) -> ApiResult<Attributes> {
    if let Some(ra) = spec.get("resourceAttributes") {
        return Ok(Attributes {
            verb: s(ra, "/verb"),
            resource: s(ra, "/resource"),
            subresource: s(ra, "/subresource"),
            group: s(ra, "/group"),
            namespace: forced_ns.map_or_else(|| s(ra, "/namespace"), str::to_string),
            name: s(ra, "/name"),
            path: String::new(),
        });
    }
    if let Some(na) = spec.get("nonResourceAttributes") {
        return Ok(Attributes {
            verb: s(na, "/verb"),
            path: s(na, "/path"),
            ..Default::default()
        });
    }
    Err(ApiError::Invalid {
        kind: "SelfSubjectAccessReview.authorization.k8s.io".into(),
        group: "authorization.k8s.io".into(),
        name: String::new(),
        causes: vec![Cause::invalid(
            "spec.resourceAttributes",
            "null",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )],
    })
}

fn access_status(state: &Shared, user: &User, a: &Attributes) -> Value {
    let d = rbac::authorize(&state.store, user, a);
    let mut st = json!({"allowed": d.allowed});
    if !d.reason.is_empty() {
        st["reason"] = json!(d.reason);
    } else if d.allowed {
        st["reason"] = json!("k1s: members of system:masters may do everything");
    }
    st
}

fn user_from_spec(spec: &Value) -> User {
    let groups = strings(spec.get("groups"));
    let extra: BTreeMap<String, Vec<String>> = spec
        .get("extra")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    User {
        name: s(spec, "/user"),
        uid: s(spec, "/uid"),
        groups,
        extra,
    }
}

pub fn create(state: &Shared, user: &User, t: &Target, body: Value) -> ApiResult<Response> {
    let mut out = body;
    if let Some(m) = out.as_object_mut() {
        m.insert("apiVersion".into(), json!(t.rt.api_version()));
        m.insert("kind".into(), json!(t.rt.kind));
        m.entry("metadata").or_insert(json!({}));
    }
    let spec = out.get("spec").cloned().unwrap_or(json!({}));
    match t.rt.kind.as_str() {
        "SelfSubjectAccessReview" => {
            let a = spec_attributes(&spec, None)?;
            out["status"] = access_status(state, user, &a);
        }
        "SubjectAccessReview" => {
            let a = spec_attributes(&spec, None)?;
            out["status"] = access_status(state, &user_from_spec(&spec), &a);
        }
        "LocalSubjectAccessReview" => {
            let a = spec_attributes(&spec, t.namespace.as_deref())?;
            out["status"] = access_status(state, &user_from_spec(&spec), &a);
        }
        "SelfSubjectRulesReview" => {
            let ns = s(&spec, "/namespace");
            let (res, non) = rbac::rules(&state.store, user, &ns);
            out["status"] = json!({
                "resourceRules": res.iter().map(|r| json!({
                    "verbs": r.get("verbs").cloned().unwrap_or(json!([])),
                    "apiGroups": r.get("apiGroups").cloned().unwrap_or(json!([])),
                    "resources": r.get("resources").cloned().unwrap_or(json!([])),
                    "resourceNames": r.get("resourceNames").cloned().unwrap_or(json!([])),
                })).collect::<Vec<_>>(),
                "nonResourceRules": non.iter().map(|r| json!({
                    "verbs": r.get("verbs").cloned().unwrap_or(json!([])),
                    "nonResourceURLs": r.get("nonResourceURLs").cloned().unwrap_or(json!([])),
                })).collect::<Vec<_>>(),
                "incomplete": false});
        }
        "SelfSubjectReview" => {
            out["status"] = json!({"userInfo": user.to_json()});
        }
        "TokenReview" => {
            let token = s(&spec, "/token");
            out["status"] = match state.authn.authenticate(&state.store, &token) {
                Some(u) => {
                    json!({"authenticated": true, "user": u.to_json(), "audiences": [ISSUER]})
                }
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            };
        }
        other => {
            return Err(ApiError::MethodNotAllowed(format!(
                "{other} cannot be created here"
            )))
        }
    }
    Ok(json_response(StatusCode::CREATED, &out, &[]))
}

fn invalid_token_request(name: &str, field: &str, value: &str, why: &str) -> ApiError {
    ApiError::Invalid {
        kind: "TokenRequest.authentication.k8s.io".into(),
        group: "authentication.k8s.io".into(),
        name: name.into(),
        causes: vec![Cause::invalid(field, value, why)],
    }
}

/// `POST .../serviceaccounts/<name>/token`: issue a token for the ServiceAccount, optionally
/// bound to a Pod or Secret (the token dies with the object).
pub async fn token_request(state: &Shared, t: &Target, body: Value) -> ApiResult<Response> {
    let ns = t.namespace.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    let sa = state
        .store
        .get(&format!("//serviceaccounts/{ns}/{name}"))
        .map_err(|e| ApiError::Storage(e.to_string()))?
        .ok_or_else(|| ApiError::NotFound(Subject::new("serviceaccounts", "", &name)))?;
    let spec = body.get("spec").cloned().unwrap_or(json!({}));
    let requested = spec.get("expirationSeconds").and_then(Value::as_i64);
    let seconds = requested.unwrap_or(3600);
    if seconds < 600 {
        return Err(invalid_token_request(
            &name,
            "spec.expirationSeconds",
            &seconds.to_string(),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if seconds > 1 << 32 {
        return Err(invalid_token_request(
            &name,
            "spec.expirationSeconds",
            &seconds.to_string(),
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    let mut audiences = strings(spec.get("audiences"));
    if audiences.is_empty() {
        audiences.push(ISSUER.into());
    }
    let mut k8s = K8sClaim {
        namespace: ns.clone(),
        serviceaccount: Ref {
            name: name.clone(),
            uid: s(&sa, "/metadata/uid"),
        },
        pod: None,
        secret: None,
    };
    let mut lifetime = seconds;
    if let Some(bound) = spec.get("boundObjectRef").filter(|b| !b.is_null()) {
        let kind = s(bound, "/kind");
        let bname = s(bound, "/name");
        let (plural, key) = match kind.as_str() {
            "Pod" => ("pods", format!("//pods/{ns}/{bname}")),
            "Secret" => ("secrets", format!("//secrets/{ns}/{bname}")),
            other => {
                return Err(invalid_token_request(
                    &name,
                    "spec.boundObjectRef.kind",
                    other,
                    "supported values: \"Pod\", \"Secret\"",
                ))
            }
        };
        let obj = state
            .store
            .get(&key)
            .map_err(|e| ApiError::Storage(e.to_string()))?
            .ok_or_else(|| ApiError::NotFound(Subject::new(plural, "", &bname)))?;
        let uid = s(&obj, "/metadata/uid");
        let want = s(bound, "/uid");
        if !want.is_empty() && want != uid {
            return Err(ApiError::Conflict(
                Subject::new(plural, "", &bname),
                format!("the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"),
            ));
        }
        let r = Ref { name: bname, uid };
        if kind == "Pod" {
            k8s.pod = Some(r);
            // Like upstream's --service-account-extend-token-expiration: the kubelet's
            // projected tokens (3607 s) are valid for a year so a missed refresh is harmless.
            if seconds == 3607 {
                lifetime = 365 * 24 * 3600;
            }
        } else {
            k8s.secret = Some(r);
        }
    }
    let now = chrono::Utc::now();
    let claims = Claims::new(k8s, audiences.clone(), now.timestamp(), lifetime);
    let token = state
        .authn
        .signer
        .issue(&claims)
        .map_err(ApiError::Internal)?;
    let exp = chrono::DateTime::from_timestamp(now.timestamp() + seconds, 0)
        .unwrap_or(now)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let mut out_spec = spec.clone();
    out_spec["audiences"] = json!(audiences);
    out_spec["expirationSeconds"] = json!(seconds);
    let out = json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
        "spec": out_spec,
        "status": {"token": token, "expirationTimestamp": exp},
    });
    Ok(json_response(StatusCode::CREATED, &out, &[]))
}
