//! RBAC authorization as upstream evaluates it: members of `system:masters` may do everything;
//! anyone else needs a rule of a Role or ClusterRole bound to them (by User, Group or
//! ServiceAccount subject) through a ClusterRoleBinding, or a RoleBinding in the namespace of
//! the request. Aggregated ClusterRoles (`aggregationRule`) contribute the rules of every
//! ClusterRole their selectors match, evaluated at request time.

use serde_json::Value;

use crate::storage::Store;

use super::User;

const RBAC: &str = "rbac.authorization.k8s.io";

/// What a request wants to do.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    pub verb: String,
    /// Empty for a non-resource request.
    pub resource: String,
    pub subresource: String,
    pub group: String,
    pub namespace: String,
    pub name: String,
    /// Set for non-resource requests (`/version`, `/apis`...).
    pub path: String,
}

impl Attributes {
    pub fn is_resource(&self) -> bool {
        !self.resource.is_empty()
    }

    /// Upstream's denial message, e.g. `User "x" cannot list resource "pods" in API group ""
    /// in the namespace "default"`.
    pub fn denial(&self, user: &str) -> String {
        if !self.is_resource() {
            return format!(
                "User \"{user}\" cannot {} path \"{}\"",
                self.verb, self.path
            );
        }
        let mut res = self.resource.clone();
        if !self.subresource.is_empty() {
            res = format!("{res}/{}", self.subresource);
        }
        let scope = if self.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{}\"", self.namespace)
        };
        format!(
            "User \"{user}\" cannot {} resource \"{res}\" in API group \"{}\" {scope}",
            self.verb, self.group
        )
    }
}

/// The result of an authorization check, with upstream-style reasons.
#[derive(Debug, Clone)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

fn strs(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn has(list: &[&str], want: &str) -> bool {
    list.iter().any(|x| *x == "*" || *x == want)
}

/// Does one PolicyRule allow `a`?
pub fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    if !has(&strs(rule.get("verbs")), &a.verb) {
        return false;
    }
    if !a.is_resource() {
        return strs(rule.get("nonResourceURLs")).iter().any(|u| {
            *u == "*" || *u == a.path || u.strip_suffix('*').is_some_and(|p| a.path.starts_with(p))
        });
    }
    if !has(&strs(rule.get("apiGroups")), &a.group) {
        return false;
    }
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let resource_ok = strs(rule.get("resources")).iter().any(|r| {
        *r == "*"
            || *r == combined
            || (!a.subresource.is_empty() && r.strip_prefix("*/") == Some(a.subresource.as_str()))
    });
    if !resource_ok {
        return false;
    }
    let names = strs(rule.get("resourceNames"));
    names.is_empty() || (!a.name.is_empty() && names.contains(&a.name.as_str()))
}

fn subject_matches(s: &Value, user: &User, binding_ns: &str) -> bool {
    let name = s.get("name").and_then(Value::as_str).unwrap_or("");
    match s.get("kind").and_then(Value::as_str).unwrap_or("") {
        "User" => name == user.name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = s
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_ns);
            user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    if let Some(m) = selector.get("matchLabels").and_then(Value::as_object) {
        if !m.iter().all(|(k, v)| label(k) == v.as_str()) {
            return false;
        }
    }
    for e in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let values = strs(e.get("values"));
        let ok = match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => label(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => label(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => label(key).is_some(),
            "DoesNotExist" => label(key).is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// The rules of a role object, expanding a ClusterRole's aggregationRule.
fn role_rules(
    store: &Store,
    role: &Value,
    all_cluster_roles: &mut Option<Vec<Value>>,
) -> Vec<Value> {
    let mut rules: Vec<Value> = role
        .get("rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let selectors = role
        .pointer("/aggregationRule/clusterRoleSelectors")
        .and_then(Value::as_array);
    if let Some(sels) = selectors {
        if all_cluster_roles.is_none() {
            *all_cluster_roles = Some(
                store
                    .list(&format!("/{RBAC}/clusterroles/"), None, None, |_| true)
                    .map(|p| p.items)
                    .unwrap_or_default(),
            );
        }
        let me = role.pointer("/metadata/name");
        for cr in all_cluster_roles.iter().flatten() {
            if cr.pointer("/metadata/name") == me || cr.get("aggregationRule").is_some() {
                continue;
            }
            let labels = cr.pointer("/metadata/labels").cloned().unwrap_or_default();
            if sels.iter().any(|s| labels_match(s, &labels)) {
                rules.extend(
                    cr.get("rules")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
    }
    rules
}

/// A binding that applies to the user, with the rules of its role.
struct Grant {
    binding_kind: &'static str,
    binding: String,
    role_kind: String,
    role: String,
    rules: Vec<Value>,
}

/// Every grant that applies to `user` in `namespace` ("" = cluster bindings only).
fn grants(store: &Store, user: &User, namespace: &str) -> Vec<Grant> {
    let mut out = Vec::new();
    let mut all_cluster_roles = None;
    let mut scan = |prefix: String, binding_kind: &'static str, ns: &str| {
        let Ok(page) = store.list(&prefix, None, None, |_| true) else {
            return;
        };
        for b in page.items {
            let subjects = b.get("subjects").and_then(Value::as_array);
            if !subjects
                .into_iter()
                .flatten()
                .any(|s| subject_matches(s, user, ns))
            {
                continue;
            }
            let role_kind = b
                .pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let role = b
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let key = match role_kind.as_str() {
                "ClusterRole" => format!("/{RBAC}/clusterroles/{role}"),
                "Role" if !ns.is_empty() => format!("/{RBAC}/roles/{ns}/{role}"),
                _ => continue,
            };
            let Ok(Some(obj)) = store.get(&key) else {
                continue;
            };
            out.push(Grant {
                binding_kind,
                binding: crate::registry::name_of(&b).to_string(),
                role_kind,
                role,
                rules: role_rules(store, &obj, &mut all_cluster_roles),
            });
        }
    };
    scan(
        format!("/{RBAC}/clusterrolebindings/"),
        "ClusterRoleBinding",
        "",
    );
    if !namespace.is_empty() {
        scan(
            format!("/{RBAC}/rolebindings/{namespace}/"),
            "RoleBinding",
            namespace,
        );
    }
    out
}

/// The effective rules of the Role (in `namespace`) or ClusterRole `name`, aggregation
/// included; None when it does not exist.
pub fn referenced_rules(
    store: &Store,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Option<Vec<Value>> {
    let key = match kind {
        "ClusterRole" => format!("/{RBAC}/clusterroles/{name}"),
        "Role" => format!("/{RBAC}/roles/{namespace}/{name}"),
        _ => return None,
    };
    let role = store.get(&key).ok().flatten()?;
    Some(role_rules(store, &role, &mut None))
}

/// What a compacted rule is about: (field, value) pairs such as ("Resources", "pods").
type RuleKey = Vec<(&'static str, String)>;

/// The parts of `servant` rules that no `owner` rule covers (upstream's `Covers`): each servant
/// rule is broken down into one verb, group, resource and name at a time, and each piece must
/// be allowed by some owner rule taking wildcards literally (a `*` is only covered by a `*`).
/// The result is compacted back: one rule per group/resource/name (or URL) with its verbs.
pub fn uncovered(owner: &[Value], servant: &[Value]) -> Vec<Value> {
    let mut missing: Vec<(RuleKey, Vec<String>)> = Vec::new();
    let mut add = |what: RuleKey, verb: &str| match missing.iter_mut().find(|(w, _)| *w == what) {
        Some((_, verbs)) => {
            if !verbs.iter().any(|v| v == verb) {
                verbs.push(verb.to_string());
            }
        }
        None => missing.push((what, vec![verb.to_string()])),
    };
    for rule in servant {
        let verbs = strs(rule.get("verbs"));
        let urls = strs(rule.get("nonResourceURLs"));
        for verb in &verbs {
            for url in &urls {
                let a = Attributes {
                    verb: verb.to_string(),
                    path: url.to_string(),
                    ..Default::default()
                };
                if !owner.iter().any(|o| rule_allows(o, &a)) {
                    add(vec![("NonResourceURLs", url.to_string())], verb);
                }
            }
            let names = strs(rule.get("resourceNames"));
            let names: Vec<&str> = if names.is_empty() { vec![""] } else { names };
            for group in strs(rule.get("apiGroups")) {
                for resource in strs(rule.get("resources")) {
                    let (res, sub) = resource.split_once('/').unwrap_or((resource, ""));
                    for name in &names {
                        let a = Attributes {
                            verb: verb.to_string(),
                            resource: res.to_string(),
                            subresource: sub.to_string(),
                            group: group.to_string(),
                            name: name.to_string(),
                            ..Default::default()
                        };
                        if !owner.iter().any(|o| rule_allows(o, &a)) {
                            let mut what = vec![
                                ("APIGroups", group.to_string()),
                                ("Resources", resource.to_string()),
                            ];
                            if !name.is_empty() {
                                what.push(("ResourceNames", name.to_string()));
                            }
                            add(what, verb);
                        }
                    }
                }
            }
        }
    }
    missing
        .into_iter()
        .map(|(what, verbs)| {
            let mut rule = serde_json::Map::new();
            for (field, value) in what {
                rule.insert(field.into(), serde_json::json!([value]));
            }
            rule.insert("Verbs".into(), serde_json::json!(verbs));
            Value::Object(rule)
        })
        .collect()
}

/// Upstream's compact text of a rule: `{APIGroups:["apps"], Resources:["deployments"],
/// Verbs:["get" "list"]}`.
pub fn compact_rule(rule: &Value) -> String {
    let parts: Vec<String> = [
        "APIGroups",
        "Resources",
        "NonResourceURLs",
        "ResourceNames",
        "Verbs",
    ]
    .iter()
    .filter_map(|field| {
        let values = strs(rule.get(*field));
        (!values.is_empty()).then(|| {
            let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
            format!("{field}:[{}]", quoted.join(" "))
        })
    })
    .collect();
    format!("{{{}}}", parts.join(", "))
}

/// May `user` do `a`?
pub fn authorize(store: &Store, user: &User, a: &Attributes) -> Decision {
    if user.is_master() {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    for g in grants(store, user, &a.namespace) {
        if g.rules.iter().any(|r| rule_allows(r, a)) {
            let subject = subject_text(user);
            let ns = if g.binding_kind == "RoleBinding" {
                format!(" in namespace \"{}\"", a.namespace)
            } else {
                String::new()
            };
            return Decision {
                allowed: true,
                reason: format!(
                    "RBAC: allowed by {} \"{}\" of {} \"{}\" to {subject}{ns}",
                    g.binding_kind, g.binding, g.role_kind, g.role
                ),
            };
        }
    }
    Decision {
        allowed: false,
        reason: String::new(),
    }
}

fn subject_text(user: &User) -> String {
    match user.name.strip_prefix("system:serviceaccount:") {
        Some(rest) => match rest.split_once(':') {
            Some((ns, name)) => format!("ServiceAccount \"{name}/{ns}\""),
            None => format!("User \"{}\"", user.name),
        },
        None => format!("User \"{}\"", user.name),
    }
}

/// The rules that apply to `user` in `namespace` (SelfSubjectRulesReview): resource rules and
/// non-resource rules, as JSON PolicyRules.
pub fn rules(store: &Store, user: &User, namespace: &str) -> (Vec<Value>, Vec<Value>) {
    if user.is_master() {
        return (
            vec![serde_json::json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})],
            vec![serde_json::json!({"verbs": ["*"], "nonResourceURLs": ["*"]})],
        );
    }
    let mut res = Vec::new();
    let mut non = Vec::new();
    for g in grants(store, user, namespace) {
        for r in g.rules {
            if r.get("nonResourceURLs").is_some() {
                non.push(r);
            } else {
                res.push(r);
            }
        }
    }
    (res, non)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(verb: &str, group: &str, res: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource: res.into(),
            subresource: sub.into(),
            group: group.into(),
            namespace: "demo".into(),
            name: name.into(),
            path: String::new(),
        }
    }

    #[test]
    fn rule_matching() {
        let r =
            json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]});
        assert!(rule_allows(&r, &attrs("get", "", "pods", "", "x")));
        assert!(rule_allows(&r, &attrs("list", "", "pods", "", "")));
        assert!(rule_allows(&r, &attrs("get", "", "pods", "log", "x")));
        assert!(!rule_allows(&r, &attrs("create", "", "pods", "", "")));
        assert!(!rule_allows(&r, &attrs("get", "apps", "pods", "", "x")));
        assert!(!rule_allows(&r, &attrs("create", "", "pods", "exec", "x")));
        let star_sub = json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*/status"]});
        assert!(rule_allows(
            &star_sub,
            &attrs("update", "apps", "deployments", "status", "d")
        ));
        assert!(!rule_allows(
            &star_sub,
            &attrs("update", "apps", "deployments", "", "d")
        ));
        let named = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"]});
        assert!(rule_allows(
            &named,
            &attrs("get", "", "configmaps", "", "cfg")
        ));
        assert!(!rule_allows(
            &named,
            &attrs("get", "", "configmaps", "", "other")
        ));
        assert!(!rule_allows(
            &named,
            &attrs("list", "", "configmaps", "", "")
        ));
        let non = json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*", "/version"]});
        let path = |p: &str| Attributes {
            verb: "get".into(),
            path: p.into(),
            ..Default::default()
        };
        assert!(rule_allows(&non, &path("/version")));
        assert!(rule_allows(&non, &path("/apis/apps/v1")));
        assert!(!rule_allows(&non, &path("/healthz")));
    }

    #[test]
    fn selectors_and_subjects() {
        let labels = json!({"rbac.authorization.k8s.io/aggregate-to-view": "true", "x": "1"});
        assert!(labels_match(
            &json!({"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}),
            &labels
        ));
        assert!(!labels_match(&json!({"matchLabels": {"x": "2"}}), &labels));
        assert!(labels_match(
            &json!({"matchExpressions": [{"key": "x", "operator": "In", "values": ["1", "3"]}]}),
            &labels
        ));
        let sa = User {
            name: "system:serviceaccount:demo:robot".into(),
            groups: vec!["system:serviceaccounts".into()],
            ..Default::default()
        };
        assert!(subject_matches(
            &json!({"kind": "ServiceAccount", "name": "robot", "namespace": "demo"}),
            &sa,
            "other"
        ));
        assert!(subject_matches(
            &json!({"kind": "ServiceAccount", "name": "robot"}),
            &sa,
            "demo"
        ));
        assert!(!subject_matches(
            &json!({"kind": "ServiceAccount", "name": "robot", "namespace": "x"}),
            &sa,
            "demo"
        ));
        assert!(subject_matches(
            &json!({"kind": "Group", "name": "system:serviceaccounts"}),
            &sa,
            ""
        ));
        assert_eq!(
            attrs("list", "", "pods", "", "").denial(&sa.name),
            "User \"system:serviceaccount:demo:robot\" cannot list resource \"pods\" in API group \"\" in the namespace \"demo\""
        );
    }

    #[test]
    fn coverage_takes_wildcards_literally_and_compacts() {
        let owner = vec![
            json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]}),
            json!({"verbs": ["*"], "apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"]}),
            json!({"verbs": ["get"], "nonResourceURLs": ["/logs/*"]}),
        ];
        let held = vec![
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}),
            json!({"verbs": ["delete"], "apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"]}),
            json!({"verbs": ["get"], "nonResourceURLs": ["/logs/kern"]}),
        ];
        assert!(uncovered(&owner, &held).is_empty());
        let more = vec![
            json!({"verbs": ["get", "delete", "watch"], "apiGroups": [""], "resources": ["pods"]}),
            json!({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"]}),
            json!({"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]}),
        ];
        let missing: Vec<String> = uncovered(&owner, &more).iter().map(compact_rule).collect();
        assert_eq!(
            missing,
            vec![
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete" "watch" "*"]}"#,
                r#"{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}"#,
            ]
        );
    }
}
