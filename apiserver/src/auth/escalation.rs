//! RBAC escalation prevention, as upstream: a user may only create or change a Role or
//! ClusterRole whose rules they already hold (or with the `escalate` verb on it), and may only
//! bind a role whose rules they hold (or with the `bind` verb on it). Members of
//! `system:masters` skip the checks. The requesting user is carried in a task-local set by the
//! request dispatcher, so the write paths need no extra argument.

use serde_json::Value;

use super::rbac::{self, Attributes};
use super::User;
use crate::error::{ApiError, ApiResult, Subject};
use crate::resources::ResourceType;
use crate::storage::Store;

const RBAC: &str = "rbac.authorization.k8s.io";

tokio::task_local! {
    /// The user of the request being served.
    pub static REQUESTER: User;
}

/// Check a write of `new` (replacing `old`, if any) to an RBAC object.
pub fn check(
    store: &Store,
    rt: &ResourceType,
    namespace: &str,
    new: &Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    if rt.group != RBAC {
        return Ok(());
    }
    let Ok(user) = REQUESTER.try_with(User::clone) else {
        return Ok(());
    };
    if user.is_master() {
        return Ok(());
    }
    let name = crate::registry::name_of(new).to_string();
    let unchanged =
        |fields: &[&str]| old.is_some_and(|o| fields.iter().all(|f| o.get(*f) == new.get(*f)));
    let allowed = |verb: &str, resource: &str, name: &str| {
        rbac::authorize(
            store,
            &user,
            &Attributes {
                verb: verb.into(),
                resource: resource.into(),
                group: RBAC.into(),
                namespace: namespace.into(),
                name: name.into(),
                ..Default::default()
            },
        )
        .allowed
    };
    let subject = Subject::new(&rt.plural, &rt.group, &name);
    match rt.kind.as_str() {
        "Role" | "ClusterRole" => {
            if unchanged(&["rules", "aggregationRule"]) || allowed("escalate", &rt.plural, &name) {
                return Ok(());
            }
            if new.get("aggregationRule").is_some_and(|a| !a.is_null()) {
                return Err(ApiError::ForbiddenFor(
                    subject,
                    "must have cluster-admin privileges to use the aggregationRule".into(),
                ));
            }
            let rules = new
                .get("rules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            no_escalation(store, &user, namespace, &rules, subject)
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            if unchanged(&["subjects", "roleRef"]) {
                return Ok(());
            }
            let kind = new
                .pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let role = new
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let plural = if kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            if allowed("bind", plural, role) {
                return Ok(());
            }
            let rules = rbac::referenced_rules(store, kind, namespace, role).ok_or_else(|| {
                ApiError::ForbiddenFor(
                    subject.clone(),
                    format!("{plural}.{RBAC} \"{role}\" not found"),
                )
            })?;
            no_escalation(store, &user, namespace, &rules, subject)
        }
        _ => Ok(()),
    }
}

/// Upstream's `ConfirmNoEscalation`: every rule must be covered by the user's own rules in
/// `namespace` ("" = cluster-wide bindings only).
fn no_escalation(
    store: &Store,
    user: &User,
    namespace: &str,
    rules: &[Value],
    subject: Subject,
) -> ApiResult<()> {
    let (mut owner, non_resource) = rbac::rules(store, user, namespace);
    owner.extend(non_resource);
    let missing = rbac::uncovered(&owner, rules);
    if missing.is_empty() {
        return Ok(());
    }
    let mut lines: Vec<String> = missing.iter().map(rbac::compact_rule).collect();
    lines.sort();
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    Err(ApiError::ForbiddenFor(
        subject,
        format!(
            "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
            user.name,
            groups.join(" "),
            lines.join("\n")
        ),
    ))
}
