//! Write verbs: create, update (incl. status), patch (strategic, merge, JSON, apply),
//! delete (graceful, finalizers, preconditions), deletecollection, pod binding and scale.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::body::Decoded;
use super::read::{load, present, scale_of, subject};
use super::{json_response, store_err, Query, Shared};
use crate::error::{ApiError, ApiResult, Cause, Subject};
use crate::handlers::path::Target;
use crate::managed;
use crate::patch;
use crate::registry::{self, WriteScope};
use crate::resources::ResourceType;
use crate::storage::{object_rev, StoreError};

fn dry_run(q: &Query) -> bool {
    q.get("dryRun") == Some("All")
}

fn field_manager(q: &Query, default: &str) -> String {
    q.get("fieldManager")
        .filter(|m| !m.is_empty())
        .unwrap_or(default)
        .to_string()
}

/// Namespaced writes need an existing, non-terminating namespace.
fn check_namespace(
    state: &Shared,
    rt: &ResourceType,
    ns: Option<&str>,
    creating: bool,
) -> ApiResult<()> {
    if !rt.namespaced {
        return Ok(());
    }
    let ns = ns.unwrap_or("default");
    let key = format!("//namespaces/{ns}");
    let found = state
        .store
        .get(&key)
        .map_err(|e| store_err(e, Subject::new("namespaces", "", ns)))?;
    match found {
        None => Err(ApiError::NotFound(Subject::new("namespaces", "", ns))),
        Some(n) if creating && n.pointer("/metadata/deletionTimestamp").is_some() => {
            Err(ApiError::NamespaceTerminating(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                rt.plural,
                "",
            )))
        }
        _ => Ok(()),
    }
}

/// Store a new object prepared from `obj` (shared by POST and create-on-apply).
async fn create_object(
    state: &Shared,
    t: &Target,
    q: &Query,
    obj: Value,
    manager: &str,
    operation: &str,
) -> ApiResult<(Value, Vec<String>)> {
    let ns = t.namespace.as_deref();
    check_namespace(state, &t.rt, ns, true)?;
    let mode = crate::schema::FieldValidation::from_query(q.get("fieldValidation"))?;
    let (obj, mut warnings) =
        crate::schema::check(&t.rt.group, &t.rt.version, &t.rt.kind, obj, mode)?;
    let sent = obj.clone();
    let mut obj = registry::prepare_create(&t.rt, ns, obj)?;
    warnings.extend(crate::warnings::unimplemented_fields(&t.rt.kind, &obj));
    crate::allocate::on_create(state, &t.rt, &mut obj).await?;
    if t.rt.kind == "Pod" && t.rt.group.is_empty() {
        crate::admission::pod(state, ns.unwrap_or("default"), &mut obj)?;
    }
    if t.rt.kind == "Secret" && t.rt.group.is_empty() {
        warnings.extend(crate::admission::secret(
            state,
            ns.unwrap_or("default"),
            &mut obj,
        )?);
    }
    if t.rt.kind == "PersistentVolumeClaim" && t.rt.group.is_empty() {
        crate::admission::persistent_volume_claim(state, &mut obj)?;
    }
    managed::record(
        &mut obj,
        None,
        Some(&sent),
        manager,
        operation,
        &t.rt.api_version(),
        None,
    );
    let name = registry::name_of(&obj).to_string();
    if name.is_empty() {
        return Err(ApiError::Invalid {
            kind: t.rt.kind.clone(),
            group: t.rt.group.clone(),
            name: String::new(),
            causes: vec![Cause {
                reason: "FieldValueRequired",
                message: "name or generateName is required".into(),
                field: "metadata.name".into(),
            }],
        });
    }
    crate::auth::escalation::check(&state.store, &t.rt, ns.unwrap_or(""), &obj, None)?;
    if dry_run(q) {
        return Ok((obj, warnings));
    }
    let key = t.rt.key(ns.unwrap_or("default"), &name);
    let stored = state
        .store
        .create(&key, obj)
        .await
        .map_err(|e| store_err(e, Subject::new(&t.rt.plural, &t.rt.group, &name)))?;
    if t.rt.kind == "Namespace" && t.rt.group.is_empty() {
        if let Err(e) = crate::admission::namespace_defaults(state, &name).await {
            tracing::warn!(namespace = %name, error = %e, "cannot create the namespace's default ServiceAccount");
        }
    }
    Ok((stored, warnings))
}

pub async fn create(state: &Shared, t: &Target, q: &Query, body: Decoded) -> ApiResult<Response> {
    let manager = field_manager(q, "kubectl");
    let (obj, warnings) = create_object(state, t, q, body.value, &manager, "Update").await?;
    Ok(json_response(
        StatusCode::CREATED,
        &present(&t.rt, obj),
        &warnings,
    ))
}

/// Replace the object at `t` with `new` (already decoded), honouring its resourceVersion.
pub async fn update(state: &Shared, t: &Target, q: &Query, body: Decoded) -> ApiResult<Response> {
    let scope = if t.sub.as_deref() == Some("status") {
        WriteScope::Status
    } else {
        WriteScope::Main
    };
    let mode = crate::schema::FieldValidation::from_query(q.get("fieldValidation"))?;
    let (new, mut warnings) =
        crate::schema::check(&t.rt.group, &t.rt.version, &t.rt.kind, body.value, mode)?;
    let expected = new
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion: {s}")))
        })
        .transpose()?;
    let manager = field_manager(q, "kubectl");
    let current = match load(state, t) {
        Ok(c) => c,
        Err(ApiError::NotFound(_)) if scope == WriteScope::Main && t.sub.is_none() => {
            // PUT creates when the object is absent (upstream allows create-on-update for
            // most kinds).
            let (obj, w) = create_object(state, t, q, new, &manager, "Update").await?;
            return Ok(json_response(StatusCode::CREATED, &present(&t.rt, obj), &w));
        }
        Err(e) => return Err(e),
    };
    let finalize = t.sub.as_deref() == Some("finalize");
    let mut prepared = if finalize {
        let mut c = current.clone();
        c["spec"]["finalizers"] = new
            .pointer("/spec/finalizers")
            .cloned()
            .unwrap_or(json!([]));
        c
    } else {
        registry::prepare_update(&t.rt, &current, new, scope)?
    };
    warnings.extend(crate::warnings::unimplemented_fields(&t.rt.kind, &prepared));
    managed::record(
        &mut prepared,
        Some(&current),
        None,
        &manager,
        "Update",
        &t.rt.api_version(),
        t.sub.as_deref(),
    );
    let stored = commit_update(
        state,
        t,
        &current,
        prepared,
        expected.or(Some(object_rev(&current))),
        q,
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &present(&t.rt, stored),
        &warnings,
    ))
}

/// Write `prepared` over `current`; deletes instead when it finished its deletion.
async fn commit_update(
    state: &Shared,
    t: &Target,
    current: &Value,
    prepared: Value,
    expected: Option<u64>,
    q: &Query,
) -> ApiResult<Value> {
    crate::auth::escalation::check(
        &state.store,
        &t.rt,
        t.namespace.as_deref().unwrap_or(""),
        &prepared,
        Some(current),
    )?;
    if dry_run(q) {
        return Ok(prepared);
    }
    let key = t.rt.key(
        t.namespace.as_deref().unwrap_or(""),
        registry::name_of(current),
    );
    if registry::ready_to_vanish(&prepared) && !needs_kubelet(&t.rt, &prepared) {
        return state
            .store
            .delete(&key, expected)
            .await
            .map_err(|e| store_err(e, subject(t)));
    }
    if prepared == *current {
        return Ok(current.clone());
    }
    state
        .store
        .update(&key, prepared, expected)
        .await
        .map_err(|e| store_err(e, subject(t)))
}

/// Scheduled pods being deleted stay until the kubelet confirms termination.
fn needs_kubelet(rt: &ResourceType, obj: &Value) -> bool {
    rt.kind == "Pod"
        && rt.group.is_empty()
        && obj.pointer("/spec/nodeName").is_some()
        && obj
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0
}

pub async fn update_scale(state: &Shared, t: &Target, body: Decoded) -> ApiResult<Response> {
    let replicas = body
        .value
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::BadRequest("spec.replicas is required".into()))?;
    let (stored, _) = guaranteed_update(
        state,
        t,
        None,
        |cur| {
            let mut n = cur.clone();
            n["spec"]["replicas"] = json!(replicas);
            Ok(n)
        },
        "kubectl",
        &Query::default(),
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &scale_of(&t.rt, &stored),
        &[],
    ))
}

/// Read-modify-write with retries on conflict (unless the caller pinned a resourceVersion).
async fn guaranteed_update(
    state: &Shared,
    t: &Target,
    pinned: Option<u64>,
    mut mutate: impl FnMut(&Value) -> ApiResult<Value>,
    manager: &str,
    q: &Query,
) -> ApiResult<(Value, Vec<String>)> {
    let scope = if t.sub.as_deref() == Some("status") {
        WriteScope::Status
    } else {
        WriteScope::Main
    };
    for _ in 0..16 {
        let current = load(state, t)?;
        if let Some(p) = pinned {
            if p != object_rev(&current) {
                return Err(store_err(
                    StoreError::Conflict {
                        key: String::new(),
                        expected: p,
                        actual: object_rev(&current),
                    },
                    subject(t),
                ));
            }
        }
        let patched = mutate(&current)?;
        let mode = crate::schema::FieldValidation::from_query(q.get("fieldValidation"))?;
        let (patched, warnings) = if t.sub.as_deref() == Some("scale") {
            (patched, vec![])
        } else {
            crate::schema::check(&t.rt.group, &t.rt.version, &t.rt.kind, patched, mode)?
        };
        let mut prepared = registry::prepare_update(&t.rt, &current, patched, scope)?;
        managed::record(
            &mut prepared,
            Some(&current),
            None,
            manager,
            "Update",
            &t.rt.api_version(),
            t.sub.as_deref(),
        );
        match commit_update(state, t, &current, prepared, Some(object_rev(&current)), q).await {
            Err(ApiError::Conflict(..)) if pinned.is_none() => continue,
            other => return other.map(|v| (v, warnings)),
        }
    }
    Err(ApiError::Conflict(
        subject(t),
        "too many concurrent updates; please retry".into(),
    ))
}

pub async fn patch(
    state: &Shared,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: Decoded,
) -> ApiResult<Response> {
    let _ = headers;
    let p = body.value;
    let rt = t.rt.clone();
    if body.content_type == "application/apply-patch+yaml" {
        return apply(state, t, q, p).await;
    }
    let pinned = p
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<u64>().ok());
    let ct = body.content_type.clone();
    if ct == "application/strategic-merge-patch+json" && rt.custom {
        return Err(ApiError::UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
        ));
    }
    let is_scale = t.sub.as_deref() == Some("scale");
    let manager = field_manager(q, "kubectl");
    let mut json_pinned = None;
    let (stored, mut warnings) = guaranteed_update(
        state,
        t,
        pinned,
        |cur| {
            let base = if is_scale { scale_of(&rt, cur) } else { present(&rt, cur.clone()) };
            let out = match ct.as_str() {
                "application/strategic-merge-patch+json" => patch::strategic_merge(&rt.kind, &base, &p)?,
                "application/merge-patch+json" => patch::merge_patch(&base, &p),
                "application/json-patch+json" => {
                    let o = patch::json_patch(&base, &p)?;
                    json_pinned = o
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<u64>().ok())
                        .filter(|r| *r != object_rev(cur));
                    o
                }
                other => {
                    return Err(ApiError::UnsupportedMediaType(format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other})"
                    )))
                }
            };
            if let Some(r) = json_pinned {
                return Err(store_err(
                    StoreError::Conflict { key: String::new(), expected: r, actual: object_rev(cur) },
                    subject(t),
                ));
            }
            if is_scale {
                let mut n = cur.clone();
                n["spec"]["replicas"] = out.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
                return Ok(n);
            }
            // managedFields may be rewritten by clients (kubectl's SSA migration).
            Ok(out)
        },
        &manager,
        q,
    )
    .await?;
    warnings.extend(crate::warnings::unimplemented_fields(&rt.kind, &stored));
    if is_scale {
        return Ok(json_response(
            StatusCode::OK,
            &scale_of(&rt, &stored),
            &warnings,
        ));
    }
    Ok(json_response(
        StatusCode::OK,
        &present(&rt, stored),
        &warnings,
    ))
}

/// Server-side apply: create when absent (201), otherwise merge with field ownership.
async fn apply(state: &Shared, t: &Target, q: &Query, cfg: Value) -> ApiResult<Response> {
    let Some(manager) = q
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .map(str::to_string)
    else {
        return Err(ApiError::BadRequest(
            "PATCH request: fieldManager is required for apply requests".into(),
        ));
    };
    if !cfg.is_object() {
        return Err(ApiError::BadRequest(
            "apply configuration must be an object".into(),
        ));
    }
    registry::check_type(&t.rt, &cfg)?;
    if let Some(n) = cfg.pointer("/metadata/name").and_then(Value::as_str) {
        if Some(n) != t.name.as_deref() {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({n}) does not match the name on the URL ({})",
                t.name.as_deref().unwrap_or("")
            )));
        }
    }
    let force = q.flag("force");
    let rt = t.rt.clone();
    let api_version = rt.api_version();
    match load(state, t) {
        Err(ApiError::NotFound(_)) => {
            let mut obj = cfg.clone();
            if let Some(md) = registry::meta_mut(&mut obj) {
                md.insert("name".into(), json!(t.name.clone().unwrap_or_default()));
            }
            let (mut created, w) = create_object(state, t, q, obj, &manager, "Apply").await?;
            // create_object recorded an Update entry; turn it into the Apply entry.
            managed::set_apply(&mut created, &manager, &api_version, &cfg, &rt.kind);
            let key = rt.key(
                t.namespace.as_deref().unwrap_or(""),
                registry::name_of(&created),
            );
            let stored = if dry_run(q) {
                created
            } else {
                let r = object_rev(&created);
                state
                    .store
                    .update(&key, created, Some(r))
                    .await
                    .map_err(|e| store_err(e, subject(t)))?
            };
            Ok(json_response(
                StatusCode::CREATED,
                &present(&rt, stored),
                &w,
            ))
        }
        Err(e) => Err(e),
        Ok(_) => {
            let (stored, mut warnings) = guaranteed_update(
                state,
                t,
                None,
                |cur| managed::apply(&rt.kind, cur, &cfg, &manager, &api_version, force),
                &manager,
                q,
            )
            .await?;
            warnings.extend(crate::warnings::unimplemented_fields(&rt.kind, &stored));
            Ok(json_response(
                StatusCode::OK,
                &present(&rt, stored),
                &warnings,
            ))
        }
    }
}

/// Options of a DELETE, from its body or query.
struct DeleteOptions {
    grace: Option<i64>,
    propagation: Option<String>,
    uid: Option<String>,
    rv: Option<u64>,
    dry_run: bool,
}

fn delete_options(q: &Query, body: Option<Decoded>) -> ApiResult<DeleteOptions> {
    let b = body.map(|b| b.value).unwrap_or(json!({}));
    if !b.is_object() {
        return Err(ApiError::BadRequest(
            "DeleteOptions must be an object".into(),
        ));
    }
    let grace = b
        .get("gracePeriodSeconds")
        .and_then(Value::as_i64)
        .or_else(|| q.get("gracePeriodSeconds").and_then(|s| s.parse().ok()));
    let mut propagation = b
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| q.get("propagationPolicy").map(str::to_string));
    if b.get("orphanDependents") == Some(&Value::Bool(true)) || q.flag("orphanDependents") {
        propagation = Some("Orphan".into());
    }
    if let Some(p) = &propagation {
        if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
            return Err(ApiError::Invalid {
                kind: "DeleteOptions".into(),
                group: String::new(),
                name: String::new(),
                causes: vec![Cause::unsupported(
                    "propagationPolicy",
                    p,
                    &["Foreground", "Background", "Orphan"],
                )],
            });
        }
    }
    let dry = b
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v == "All"))
        || q.get("dryRun") == Some("All");
    Ok(DeleteOptions {
        grace,
        propagation,
        uid: b
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        rv: b
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok()),
        dry_run: dry,
    })
}

pub async fn delete(
    state: &Shared,
    t: &Target,
    q: &Query,
    body: Option<Decoded>,
) -> ApiResult<Response> {
    let opts = delete_options(q, body)?;
    let (code, v) = delete_one(state, t, &opts).await?;
    Ok(json_response(code, &v, &[]))
}

fn success_status(rt: &ResourceType, obj: &Value) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
           "details": {"name": registry::name_of(obj), "group": rt.group, "kind": rt.plural,
                       "uid": obj.pointer("/metadata/uid")}})
}

async fn delete_one(
    state: &Shared,
    t: &Target,
    opts: &DeleteOptions,
) -> ApiResult<(StatusCode, Value)> {
    let rt = t.rt.clone();
    for _ in 0..16 {
        let cur = load(state, t)?;
        let rev = object_rev(&cur);
        if let Some(uid) = &opts.uid {
            if cur.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid) {
                return Err(ApiError::Conflict(
                    subject(t),
                    format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        cur.pointer("/metadata/uid")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                    ),
                ));
            }
        }
        if let Some(want) = opts.rv {
            if want != rev {
                return Err(ApiError::Conflict(
                    subject(t),
                    format!("Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rev}"),
                ));
            }
        }
        let key = rt.key(
            t.namespace.as_deref().unwrap_or(""),
            registry::name_of(&cur),
        );
        let mut next = cur.clone();
        let md = registry::meta_mut(&mut next)
            .ok_or_else(|| ApiError::Internal("object without metadata".into()))?;
        let mut finalizers: Vec<Value> = md
            .get("finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // Propagation policies other than Background are carried out by the garbage
        // collector, through these upstream finalizers.
        match opts.propagation.as_deref() {
            Some("Foreground") if !finalizers.contains(&json!("foregroundDeletion")) => {
                finalizers.push(json!("foregroundDeletion"))
            }
            Some("Orphan") if !finalizers.contains(&json!("orphan")) => {
                finalizers.push(json!("orphan"))
            }
            _ => {}
        }
        let is_pod = rt.kind == "Pod" && rt.group.is_empty();
        let scheduled = cur.pointer("/spec/nodeName").is_some();
        let pod_grace = if is_pod && scheduled {
            let g = opts.grace.unwrap_or_else(|| {
                cur.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(30)
            });
            let terminal = matches!(
                cur.pointer("/status/phase").and_then(Value::as_str),
                Some("Succeeded") | Some("Failed")
            );
            if terminal {
                0
            } else {
                g.max(0)
            }
        } else {
            0
        };
        let is_ns = rt.kind == "Namespace" && rt.group.is_empty();
        if finalizers.is_empty() && pod_grace == 0 && !is_ns {
            if opts.dry_run {
                return Ok((StatusCode::OK, success_status(&rt, &cur)));
            }
            match state.store.delete(&key, Some(rev)).await {
                Ok(last) => {
                    if rt.kind == "CustomResourceDefinition" {
                        crate::crd::delete_instances(state, &last).await;
                    }
                    if is_pod {
                        return Ok((StatusCode::OK, present(&rt, last)));
                    }
                    return Ok((StatusCode::OK, success_status(&rt, &last)));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_err(e, subject(t))),
            }
        }
        // Graceful: mark for deletion, keep until finalizers are gone / kubelet is done.
        let already = md.contains_key("deletionTimestamp");
        if already {
            let cur_grace = md
                .get("deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if !(is_pod && pod_grace < cur_grace) {
                return Ok((StatusCode::OK, present(&rt, cur)));
            }
        }
        let when = chrono::Utc::now() + chrono::Duration::seconds(pod_grace);
        md.insert(
            "deletionTimestamp".into(),
            json!(when.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        );
        md.insert("deletionGracePeriodSeconds".into(), json!(pod_grace));
        if !finalizers.is_empty() {
            md.insert("finalizers".into(), Value::Array(finalizers));
        }
        if is_ns {
            next["status"]["phase"] = json!("Terminating");
        }
        if opts.dry_run {
            return Ok((StatusCode::OK, present(&rt, next)));
        }
        match state.store.update(&key, next, Some(rev)).await {
            Ok(stored) => return Ok((StatusCode::OK, present(&rt, stored))),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_err(e, subject(t))),
        }
    }
    Err(ApiError::Conflict(
        subject(t),
        "too many concurrent updates; please retry".into(),
    ))
}

pub async fn delete_collection(
    state: &Shared,
    t: &Target,
    q: &Query,
    body: Option<Decoded>,
) -> ApiResult<Response> {
    let opts = delete_options(q, body)?;
    let labels = crate::selectors::LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?;
    let fields =
        crate::selectors::FieldSelector::parse(q.get("fieldSelector").unwrap_or(""), &t.rt.kind)?;
    let prefix = t.rt.ns_prefix(t.namespace.as_deref());
    let page = state
        .store
        .list(&prefix, None, None, |o| {
            labels.matches(o) && fields.matches(o)
        })
        .map_err(|e| store_err(e, subject(t)))?;
    let mut deleted = Vec::new();
    for obj in page.items {
        let mut one = t.clone();
        one.name = Some(registry::name_of(&obj).to_string());
        one.namespace = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        match delete_one(state, &one, &opts).await {
            Ok(_) | Err(ApiError::NotFound(_)) => deleted.push(present(&t.rt, obj)),
            Err(e) => return Err(e),
        }
    }
    let list = json!({"kind": t.rt.list_kind(), "apiVersion": t.rt.api_version(),
                      "metadata": {"resourceVersion": state.store.revision().to_string()}, "items": deleted});
    Ok(json_response(StatusCode::OK, &list, &[]))
}

/// POST pods/<name>/binding: set spec.nodeName once.
pub async fn bind(state: &Shared, t: &Target, body: Decoded) -> ApiResult<Response> {
    let node = body
        .value
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::BadRequest("binding target name is required".into()))?
        .to_string();
    let mut main = t.clone();
    main.sub = None;
    for _ in 0..16 {
        let cur = load(state, &main)?;
        if cur
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty())
        {
            return Err(ApiError::Conflict(
                subject(t),
                format!(
                    "pod {} is already assigned to node \"{}\"",
                    registry::name_of(&cur),
                    cur.pointer("/spec/nodeName")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                ),
            ));
        }
        if cur.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::Conflict(
                subject(t),
                "pod is being deleted".into(),
            ));
        }
        let mut next = cur.clone();
        next["spec"]["nodeName"] = json!(node);
        let now = registry::now_rfc3339();
        let conds = next["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut conds: Vec<Value> = conds
            .into_iter()
            .filter(|c| c["type"] != "PodScheduled")
            .collect();
        conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
        next["status"]["conditions"] = Value::Array(conds);
        let key = t.rt.key(
            t.namespace.as_deref().unwrap_or(""),
            registry::name_of(&cur),
        );
        match state.store.update(&key, next, Some(object_rev(&cur))).await {
            Ok(_) => {
                return Ok(json_response(
                    StatusCode::CREATED,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                    &[],
                ));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_err(e, subject(t))),
        }
    }
    Err(ApiError::Conflict(
        subject(t),
        "too many concurrent updates; please retry".into(),
    ))
}

/// Background deletion used by namespace cleanup and the garbage collector.
pub async fn delete_for_gc(state: &Shared, t: &Target) -> ApiResult<()> {
    let opts = DeleteOptions {
        grace: None,
        propagation: Some("Background".into()),
        uid: None,
        rv: None,
        dry_run: false,
    };
    delete_one(state, t, &opts).await.map(|_| ())
}
