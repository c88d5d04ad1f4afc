//! Image reference normalisation, the way Docker and containerd spell names:
//! `busybox` -> `docker.io/library/busybox:latest`. Parsing only; no registry access.

use crate::error::{Error, Result};

/// Returns the fully qualified form of `reference`.
pub fn normalize(reference: &str) -> Result<String> {
    let invalid = |reason| Error::InvalidReference {
        reference: reference.to_string(),
        reason,
    };
    let r = reference.trim();
    if r.is_empty() {
        return Err(invalid("empty"));
    }
    if r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("contains whitespace"));
    }
    let (name, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    if let Some(d) = digest {
        let ok = d
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err(invalid("digest must be sha256:<64 hex>"));
        }
    }
    // A tag is a ':' after the last '/'.
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if repo.is_empty() || repo.starts_with('/') || repo.ends_with('/') || repo.contains("//") {
        return Err(invalid("bad repository name"));
    }
    if let Some(t) = tag {
        if t.is_empty()
            || t.len() > 128
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Err(invalid("bad tag"));
        }
    }
    let (domain, path) = match repo.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), repo.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io".to_string()
    } else {
        domain
    };
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(invalid("repository name must be lowercase"));
    }
    let path = if domain == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    let mut out = format!("{domain}/{path}");
    match (tag, digest) {
        (Some(t), _) => {
            out.push(':');
            out.push_str(t);
        }
        (None, None) => out.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    Ok(out)
}

/// A normalised reference split into the parts a registry client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The fully qualified name as `normalize` spells it.
    pub name: String,
    /// `docker.io`, `quay.io`, `127.0.0.1:5000`.
    pub domain: String,
    /// `library/busybox`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<hex>` when the reference pins a digest.
    pub digest: Option<String>,
}

impl Reference {
    /// Host (and port) to send registry API calls to: Docker Hub's API lives on
    /// `registry-1.docker.io`.
    pub fn api_host(&self) -> &str {
        if self.domain == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.domain
        }
    }

    /// What the manifest is fetched by: the digest if pinned, else the tag.
    pub fn target(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// `domain/repository@digest`, the name a pulled image is also known by.
    pub fn with_digest(&self, digest: &str) -> String {
        format!("{}/{}@{digest}", self.domain, self.repository)
    }
}

/// Normalises `reference` and splits it.
pub fn parse(reference: &str) -> Result<Reference> {
    let name = normalize(reference)?;
    let (rest, digest) = match name.split_once('@') {
        Some((n, d)) => (n.to_string(), Some(d.to_ascii_lowercase())),
        None => (name.clone(), None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (
            rest[..last_slash + i].to_string(),
            Some(rest[last_slash + i + 1..].to_string()),
        ),
        None => (rest.clone(), None),
    };
    let (domain, repository) = repo.split_once('/').ok_or(Error::InvalidReference {
        reference: reference.to_string(),
        reason: "no repository",
    })?;
    Ok(Reference {
        domain: domain.to_string(),
        repository: repository.to_string(),
        tag,
        digest,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::{normalize, parse};

    #[test]
    fn parses_into_registry_parts() {
        let r = parse("busybox").expect("valid");
        assert_eq!(
            (r.domain.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("docker.io", "library/busybox", Some("latest"))
        );
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let d = format!("sha256:{}", "b".repeat(64));
        let r = parse(&format!("127.0.0.1:5000/team/app@{d}")).expect("valid");
        assert_eq!(r.domain, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag, None);
        assert_eq!(r.target(), d);
        assert_eq!(r.with_digest(&d), format!("127.0.0.1:5000/team/app@{d}"));
        let r = parse("localhost:5000/app:v1").expect("valid");
        assert_eq!((r.api_host(), r.target()), ("localhost:5000", "v1"));
    }

    #[test]
    fn normalizes_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
            (
                "index.docker.io/library/alpine",
                "docker.io/library/alpine:latest",
            ),
            ("quay.io/coreos/etcd:v3.5", "quay.io/coreos/etcd:v3.5"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("localhost/app:v1", "localhost/app:v1"),
            ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input).expect("valid reference"), want, "{input}");
        }
        let d = format!("alpine@sha256:{}", "a".repeat(64));
        assert_eq!(
            normalize(&d).expect("valid digest reference"),
            format!("docker.io/library/alpine@sha256:{}", "a".repeat(64))
        );
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Busybox",
            "a b",
            "busybox:",
            "busybox@sha256:zz",
            "/x",
            "x//y",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }
}
