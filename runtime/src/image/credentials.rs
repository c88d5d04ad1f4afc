//! Registry credentials: the username/password a pull authenticates with, and picking them
//! out of a `kubernetes.io/dockerconfigjson` secret (`{"auths": {...}}`) or the legacy
//! `.dockercfg` map, matching keys the way the kubelet's keyring does: scheme and trailing
//! path ignored, `index.docker.io`/`registry-1.docker.io` meaning `docker.io`, `*` globs per
//! host label, and the longest path prefix winning. Does not talk to registries.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::image::reference;

/// Basic credentials for one registry (also sent to its token server).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl RegistryAuth {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> RegistryAuth {
        RegistryAuth {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The `Authorization` header value for HTTP basic auth.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

#[derive(Deserialize, Default)]
struct Entry {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    /// base64 of `user:password`.
    #[serde(default)]
    auth: Option<String>,
}

#[derive(Deserialize)]
struct DockerConfigJson {
    auths: BTreeMap<String, Entry>,
}

/// Returns the credentials in `config` (the decoded `.dockerconfigjson` or `.dockercfg`
/// value) that apply to `image`, or `None` if no entry matches.
pub fn credentials_for(config: &[u8], image: &str) -> Result<Option<RegistryAuth>> {
    let bad = |reason: String| Error::InvalidCredentials { reason };
    let entries: BTreeMap<String, Entry> = match serde_json::from_slice::<DockerConfigJson>(config)
    {
        Ok(c) => c.auths,
        Err(_) => serde_json::from_slice(config)
            .map_err(|e| bad(format!("not a docker config json: {e}")))?,
    };
    let r = reference::parse(image)?;
    let mut best: Option<(usize, &Entry)> = None;
    for (key, entry) in &entries {
        let (host, path) = split_key(key);
        if !host_matches(&host, &r.domain) {
            continue;
        }
        let repo = r.repository.as_str();
        let path_ok = path.is_empty()
            || repo == path
            || repo
                .strip_prefix(path.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
        if path_ok && best.is_none_or(|(len, _)| path.len() > len) {
            best = Some((path.len(), entry));
        }
    }
    let Some((_, e)) = best else {
        return Ok(None);
    };
    if let (Some(u), Some(p)) = (&e.username, &e.password) {
        if !u.is_empty() {
            return Ok(Some(RegistryAuth::new(u, p)));
        }
    }
    let Some(auth) = &e.auth else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|e| bad(format!("auth is not base64: {e}")))?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad("auth is not UTF-8".into()))?;
    let (u, p) = decoded
        .split_once(':')
        .ok_or_else(|| bad("auth is not user:password".into()))?;
    Ok(Some(RegistryAuth::new(u, p)))
}

/// `https://index.docker.io/v1/` -> (`docker.io`, ``); `reg.io:5000/team` -> (`reg.io:5000`, `team`).
fn split_key(key: &str) -> (String, String) {
    let k = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let (host, path) = k.split_once('/').unwrap_or((k, ""));
    let host = host.to_ascii_lowercase();
    let host = match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    };
    // Docker Hub's legacy key carries the API version as its path.
    let path = path.trim_matches('/');
    let path = if host == "docker.io" && (path == "v1" || path == "v2") {
        ""
    } else {
        path
    };
    (host, path.to_string())
}

/// Label-wise glob match (`*.example.com` matches `a.example.com`, not `a.b.example.com`);
/// ports must be equal.
fn host_matches(pattern: &str, host: &str) -> bool {
    let (pat_host, pat_port) = pattern.split_once(':').unwrap_or((pattern, ""));
    let (h, port) = host.split_once(':').unwrap_or((host, ""));
    if pat_port != port {
        return false;
    }
    let pl: Vec<&str> = pat_host.split('.').collect();
    let hl: Vec<&str> = h.split('.').collect();
    pl.len() == hl.len() && pl.iter().zip(&hl).all(|(p, l)| glob(p, l))
}

/// `*` matches any run of characters within one label.
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, tail)) => {
            let Some(rest) = s.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn picks_the_entry_for_the_image_registry() {
        let cfg = serde_json::json!({"auths": {
            "https://index.docker.io/v1/": {"auth": b64("hub:hubpw")},
            "registry.example.com:5000": {"username": "u", "password": "p"},
            "registry.example.com:5000/team/special": {"auth": b64("special:sp:w")},
            "*.corp.io": {"username": "corp", "password": "c"},
        }})
        .to_string();
        let get = |img: &str| credentials_for(cfg.as_bytes(), img).expect("valid config");
        assert_eq!(get("busybox"), Some(RegistryAuth::new("hub", "hubpw")));
        assert_eq!(
            get("registry.example.com:5000/team/app:v1"),
            Some(RegistryAuth::new("u", "p"))
        );
        assert_eq!(
            get("registry.example.com:5000/team/special/x"),
            Some(RegistryAuth::new("special", "sp:w"))
        );
        assert_eq!(get("eu.corp.io/app"), Some(RegistryAuth::new("corp", "c")));
        assert_eq!(get("a.eu.corp.io/app"), None);
        assert_eq!(get("registry.example.com/app"), None);
        assert_eq!(get("quay.io/x/y"), None);
    }

    #[test]
    fn legacy_dockercfg_and_bad_input() {
        let legacy = serde_json::json!({"quay.io": {"auth": b64("q:w")}}).to_string();
        assert_eq!(
            credentials_for(legacy.as_bytes(), "quay.io/a/b").expect("valid"),
            Some(RegistryAuth::new("q", "w"))
        );
        let bad = serde_json::json!({"auths": {"quay.io": {"auth": "%%%"}}}).to_string();
        let err = credentials_for(bad.as_bytes(), "quay.io/a/b").expect_err("bad base64");
        assert!(
            err.to_string().contains("invalid registry credentials"),
            "{err}"
        );
        assert!(credentials_for(b"[1]", "quay.io/a").is_err());
        let dbg = format!("{:?}", RegistryAuth::new("u", "secret"));
        assert!(!dbg.contains("secret"), "{dbg}");
    }
}
