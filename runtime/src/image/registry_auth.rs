//! Registry authentication, the other half of `RegistryClient`: answering a `401`'s
//! `WWW-Authenticate` challenge with HTTP basic credentials, or with the bearer token flow
//! (GET the realm with `service` and `scope`, basic credentials if any, and use the returned
//! `token` or `access_token`). The token realm must be HTTPS unless its host is one the
//! registry config speaks plain HTTP to.

use std::collections::BTreeMap;

use hyper::StatusCode;

use crate::error::{Error, Result};
use crate::image::credentials::RegistryAuth;
use crate::image::registry::{url_authority, RegistryClient, Resource};

/// RFC 3986 percent-encoding of a query component.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses `Bearer realm="...",service="...",scope="..."` into its scheme and parameters.
pub(crate) fn parse_challenge(header: &str) -> (String, BTreeMap<String, String>) {
    let header = header.trim();
    let (scheme, mut rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = BTreeMap::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().to_ascii_lowercase();
        let (value, after) = if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            (v, &q[end.min(q.len())..])
        } else {
            let (v, a) = after.split_once(',').unwrap_or((after, ""));
            (v.trim().to_string(), a)
        };
        params.insert(key, value);
        rest = after;
    }
    (scheme.to_ascii_lowercase(), params)
}

impl RegistryClient {
    /// Learns how to authenticate from a 401's `WWW-Authenticate` headers.
    pub(crate) async fn answer_challenge(&self, challenges: &[String]) -> Result<()> {
        let unauthorized = |reason: String| Error::RegistryUnauthorized {
            reference: self.reference.clone(),
            reason,
        };
        let parsed: Vec<_> = challenges.iter().map(|c| parse_challenge(c)).collect();
        if let Some((_, params)) = parsed.iter().find(|(s, _)| s == "bearer") {
            let token = self.fetch_token(params).await?;
            self.set_authz(format!("Bearer {token}"));
            return Ok(());
        }
        if parsed.iter().any(|(s, _)| s == "basic") {
            return match &self.auth {
                Some(a) => {
                    self.set_authz(a.basic_header());
                    Ok(())
                }
                None => Err(unauthorized(format!(
                    "registry {} requires credentials and none were given",
                    self.registry
                ))),
            };
        }
        Err(unauthorized(format!(
            "registry {} answered 401 without a supported challenge ({challenges:?})",
            self.registry
        )))
    }

    /// The bearer token flow: GET the realm with service and scope (and basic credentials).
    async fn fetch_token(&self, params: &BTreeMap<String, String>) -> Result<String> {
        let unauthorized = |reason: String| Error::RegistryUnauthorized {
            reference: self.reference.clone(),
            reason,
        };
        let realm = params
            .get("realm")
            .ok_or_else(|| unauthorized("bearer challenge without a realm".into()))?;
        let plain_ok = self.cfg.is_insecure(url_authority(realm));
        if !(realm.starts_with("https://") || (realm.starts_with("http://") && plain_ok)) {
            return Err(unauthorized(format!(
                "token realm {realm:?} is not an https URL (or http on an insecure registry)"
            )));
        }
        let mut query = Vec::new();
        if let Some(s) = params.get("service") {
            query.push(format!("service={}", encode(s)));
        }
        let default_scope = format!("repository:{}:pull", self.repository);
        let scope = params.get("scope").unwrap_or(&default_scope);
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            query.push(format!("scope={}", encode(s)));
        }
        let sep = if realm.contains('?') { '&' } else { '?' };
        let url = format!("{realm}{sep}{}", query.join("&"));
        let authz = self.auth.as_ref().map(RegistryAuth::basic_header);
        let what = Resource::Token;
        let resp = self
            .send(&url, "application/json", authz.as_deref(), what)
            .await?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(unauthorized(match &self.auth {
                Some(a) => format!(
                    "token server {realm} rejected the credentials of {:?}",
                    a.username
                ),
                None => format!("token server {realm} requires credentials and none were given"),
            }));
        }
        if !status.is_success() {
            let m = self.error_message(resp).await;
            return Err(self.registry_error(what, status.as_u16(), m));
        }
        let body = self.read_body(resp, 1 << 20, what).await?;
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let t: Token = serde_json::from_slice(&body)
            .map_err(|e| unauthorized(format!("token server {realm} answered bad JSON: {e}")))?;
        let token = if t.token.is_empty() {
            t.access_token
        } else {
            t.token
        };
        if token.is_empty() {
            return Err(unauthorized(format!(
                "token server {realm} returned no token"
            )));
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/busybox:pull");
        let (s, p) = parse_challenge(r#"Basic realm="a \"quoted\" realm", charset=UTF-8"#);
        assert_eq!(s, "basic");
        assert_eq!(p["realm"], r#"a "quoted" realm"#);
        assert_eq!(p["charset"], "UTF-8");
    }

    #[test]
    fn query_components_are_percent_encoded() {
        assert_eq!(
            encode("repository:library/busybox:pull"),
            "repository%3Alibrary%2Fbusybox%3Apull"
        );
    }
}
