//! Parsing of resource URLs (`/api/v1/namespaces/demo/pods/web/status`) into a target.

use std::sync::Arc;

use crate::error::ApiError;
use crate::resources::{Catalog, ResourceType};

#[derive(Debug, Clone)]
pub struct Target {
    pub rt: Arc<ResourceType>,
    /// The namespace from the URL (None: cluster-scoped or all namespaces).
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

/// Parse a path below `/api/v1` or `/apis/<group>/<version>`.
pub fn parse(catalog: &Catalog, path: &str) -> Result<Target, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::UnknownPath),
    };
    let find = |plural: &str| catalog.find(group, version, plural);
    let t = |rt, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| Target {
        rt,
        namespace: ns.map(str::to_string),
        name: name.map(str::to_string),
        sub: sub.map(str::to_string),
    };
    let target = match rest {
        [res] => t(find(res).ok_or(ApiError::UnknownPath)?, None, None, None),
        ["namespaces", ns, res] if find(res).is_some_and(|r| r.namespaced) => t(
            find(res).ok_or(ApiError::UnknownPath)?,
            Some(ns),
            None,
            None,
        ),
        ["namespaces", ns, res, name] if find(res).is_some_and(|r| r.namespaced) => t(
            find(res).ok_or(ApiError::UnknownPath)?,
            Some(ns),
            Some(name),
            None,
        ),
        ["namespaces", ns, res, name, sub] if find(res).is_some_and(|r| r.namespaced) => t(
            find(res).ok_or(ApiError::UnknownPath)?,
            Some(ns),
            Some(name),
            Some(sub),
        ),
        [res, name] => {
            let rt = find(res).ok_or(ApiError::UnknownPath)?;
            if rt.namespaced {
                return Err(ApiError::UnknownPath);
            }
            t(rt, None, Some(name), None)
        }
        [res, name, sub] => {
            let rt = find(res).ok_or(ApiError::UnknownPath)?;
            if rt.namespaced {
                return Err(ApiError::UnknownPath);
            }
            t(rt, None, Some(name), Some(sub))
        }
        // `nodes/<name>/proxy/<path on the node>`: the rest is the node's business.
        [res, name, "proxy", _, ..] if group.is_empty() && *res == "nodes" => t(
            find(res).ok_or(ApiError::UnknownPath)?,
            None,
            Some(name),
            Some("proxy"),
        ),
        _ => return Err(ApiError::UnknownPath),
    };
    if let Some(sub) = &target.sub {
        let known = (sub == "status" && target.rt.has_status)
            || (sub == "scale" && target.rt.has_scale)
            || target.rt.extra_subresources.iter().any(|(s, ..)| s == sub);
        if !known {
            return Err(ApiError::UnknownPath);
        }
    }
    if target.name.as_deref() == Some("") {
        return Err(ApiError::UnknownPath);
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let c = Catalog::default();
        let t = parse(&c, "/api/v1/namespaces/demo/pods/web/status").expect("ok");
        assert_eq!(
            (
                t.rt.plural.as_str(),
                t.namespace.as_deref(),
                t.name.as_deref(),
                t.sub.as_deref()
            ),
            ("pods", Some("demo"), Some("web"), Some("status"))
        );
        let t = parse(&c, "/api/v1/namespaces/demo").expect("ok");
        assert_eq!(
            (t.rt.plural.as_str(), t.name.as_deref()),
            ("namespaces", Some("demo"))
        );
        let t = parse(&c, "/api/v1/namespaces/demo/status").expect("ok");
        assert_eq!(t.sub.as_deref(), Some("status"));
        let t = parse(&c, "/apis/apps/v1/deployments").expect("ok");
        assert!(t.namespace.is_none());
        assert!(parse(&c, "/api/v1/namespaces/demo/widgets").is_err());
        assert!(parse(&c, "/api/v1/pods/x").is_err());
        assert!(parse(&c, "/api/v1/namespaces/d/pods/x/bogus").is_err());
    }
}
