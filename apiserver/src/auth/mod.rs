//! Authentication (the admin bearer token and ServiceAccount tokens), impersonation
//! (`Impersonate-User`/`-Group`/`-Uid`/`-Extra-*`, as `kubectl --as`/`--as-group` send them)
//! and RBAC authorization.

pub mod escalation;
pub mod policy;
pub mod rbac;
pub mod token;

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::storage::Store;

pub const MASTERS: &str = "system:masters";
pub const AUTHENTICATED: &str = "system:authenticated";
pub const SA_PREFIX: &str = "system:serviceaccount:";

/// Who a request is from (after impersonation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl User {
    /// The identity of the admin kubeconfig (and of k1s's own components).
    pub fn admin() -> User {
        User {
            name: "system:admin".into(),
            uid: String::new(),
            groups: vec![MASTERS.into(), AUTHENTICATED.into()],
            extra: BTreeMap::new(),
        }
    }

    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS)
    }

    /// `(namespace, name)` when this is a ServiceAccount.
    pub fn service_account(&self) -> Option<(&str, &str)> {
        self.name.strip_prefix(SA_PREFIX)?.split_once(':')
    }

    /// As `userInfo` in reviews.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"username": self.name, "groups": self.groups});
        if !self.uid.is_empty() {
            v["uid"] = json!(self.uid);
        }
        if !self.extra.is_empty() {
            v["extra"] = json!(self.extra);
        }
        v
    }
}

/// The groups every ServiceAccount is in.
pub fn sa_groups(namespace: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{namespace}"),
        AUTHENTICATED.into(),
    ]
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Turns a bearer token into a user.
pub struct Authenticator {
    pub admin_token: String,
    pub signer: token::TokenSigner,
}

impl Authenticator {
    pub fn authenticate(&self, store: &Store, bearer: &str) -> Option<User> {
        if constant_time_eq(bearer.as_bytes(), self.admin_token.as_bytes()) {
            return Some(User::admin());
        }
        let claims = self.signer.verify(bearer, chrono::Utc::now().timestamp())?;
        let k = &claims.k8s;
        // The ServiceAccount (and the object the token is bound to) must still exist with the
        // same uid: deleting it revokes its tokens.
        let live_uid = |key: String| {
            store.get(&key).ok().flatten().and_then(|o| {
                let deleting = o.pointer("/metadata/deletionTimestamp").is_some();
                let uid = o.pointer("/metadata/uid")?.as_str()?.to_string();
                (!deleting).then_some(uid)
            })
        };
        let sa_uid = live_uid(format!(
            "//serviceaccounts/{}/{}",
            k.namespace, k.serviceaccount.name
        ))?;
        if sa_uid != k.serviceaccount.uid {
            return None;
        }
        let mut extra = BTreeMap::new();
        if let Some(p) = &k.pod {
            if live_uid(format!("//pods/{}/{}", k.namespace, p.name))? != p.uid {
                return None;
            }
            extra.insert(
                "authentication.kubernetes.io/pod-name".into(),
                vec![p.name.clone()],
            );
            extra.insert(
                "authentication.kubernetes.io/pod-uid".into(),
                vec![p.uid.clone()],
            );
        }
        if let Some(s) = &k.secret {
            if live_uid(format!("//secrets/{}/{}", k.namespace, s.name))? != s.uid {
                return None;
            }
        }
        extra.insert(
            "authentication.kubernetes.io/credential-id".into(),
            vec![format!("JTI={}", claims.jti)],
        );
        Some(User {
            name: format!("{SA_PREFIX}{}:{}", k.namespace, k.serviceaccount.name),
            uid: sa_uid,
            groups: sa_groups(&k.namespace),
            extra,
        })
    }
}

/// Apply `Impersonate-*` headers: the requester must be allowed to `impersonate` each of the
/// user, groups, uid and extras (upstream's checks); the result is the impersonated user.
pub fn impersonate(store: &Store, requester: User, headers: &HeaderMap) -> Result<User, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let user = values("impersonate-user").into_iter().next();
    let groups = values("impersonate-group");
    let uid = values("impersonate-uid").into_iter().next();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in headers {
        if let Some(key) = k.as_str().strip_prefix("impersonate-extra-") {
            if let Ok(v) = v.to_str() {
                let key = crate::handlers::percent_decode(key);
                extra.entry(key).or_default().push(v.to_string());
            }
        }
    }
    let Some(user) = user else {
        if groups.is_empty() && uid.is_none() && extra.is_empty() {
            return Ok(requester);
        }
        return Err(ApiError::BadRequest(
            "requested impersonation of groups, uid or extra without impersonating a user".into(),
        ));
    };
    let check = |a: rbac::Attributes, what: String| -> Result<(), ApiError> {
        if rbac::authorize(store, &requester, &a).allowed {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{what} is forbidden: User \"{}\" cannot impersonate resource \"{}\" in API group \"{}\"{}",
                requester.name,
                a.resource,
                a.group,
                if a.namespace.is_empty() { " at the cluster scope".to_string() } else { format!(" in the namespace \"{}\"", a.namespace) }
            )))
        }
    };
    let imp = |resource: &str, group: &str, namespace: &str, name: &str| rbac::Attributes {
        verb: "impersonate".into(),
        resource: resource.into(),
        group: group.into(),
        namespace: namespace.into(),
        name: name.into(),
        ..Default::default()
    };
    let sa = user
        .strip_prefix(SA_PREFIX)
        .and_then(|r| r.split_once(':'))
        .map(|(ns, n)| (ns.to_string(), n.to_string()));
    match &sa {
        Some((ns, n)) => check(
            imp("serviceaccounts", "", ns, n),
            format!("serviceaccounts \"{n}\""),
        )?,
        None => check(imp("users", "", "", &user), format!("users \"{user}\""))?,
    }
    for g in &groups {
        check(imp("groups", "", "", g), format!("groups \"{g}\""))?;
    }
    if let Some(u) = &uid {
        check(
            imp("uids", "authentication.k8s.io", "", u),
            format!("uids.authentication.k8s.io \"{u}\""),
        )?;
    }
    for (k, vs) in &extra {
        for v in vs {
            let mut a = imp("userextras", "authentication.k8s.io", "", v);
            a.subresource = k.clone();
            check(a, format!("userextras.authentication.k8s.io/{k} \"{v}\""))?;
        }
    }
    let mut all_groups = groups;
    if let Some((ns, _)) = &sa {
        if all_groups.is_empty() {
            all_groups = sa_groups(ns);
        }
    }
    if user != "system:anonymous" && !all_groups.iter().any(|g| g == AUTHENTICATED) {
        all_groups.push(AUTHENTICATED.into());
    }
    Ok(User {
        name: user,
        uid: uid.unwrap_or_default(),
        groups: all_groups,
        extra,
    })
}
