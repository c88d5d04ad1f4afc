//! ServiceAccount tokens: compact JWS (ES256) signed with a P-256 key generated on first start
//! and kept in `<data-dir>/tls/service-account.key` (PKCS#8, mode 0600). The claims follow
//! upstream's bound tokens: `iss`, `sub` (`system:serviceaccount:<ns>:<name>`), `aud`, `exp`,
//! `iat`, `nbf`, `jti` and a private `kubernetes.io` claim naming the namespace, the
//! ServiceAccount (name, uid) and the object the token is bound to (a Pod or a Secret).
//! Only this server verifies them, so only its own signature is accepted.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde::{Deserialize, Serialize};

use crate::pki::PkiError;

/// The issuer and default audience of every token (upstream's default with k3s).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// A name and uid, as in the `kubernetes.io` claim.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ref {
    pub name: String,
    pub uid: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct K8sClaim {
    pub namespace: String,
    pub serviceaccount: Ref,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub k8s: K8sClaim,
}

impl Claims {
    /// A token for the ServiceAccount named in `k8s` (its subject), valid from `now` (Unix
    /// seconds) for `lifetime` seconds, with a fresh `jti`.
    pub fn new(k8s: K8sClaim, aud: Vec<String>, now: i64, lifetime: i64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: format!(
                "{}{}:{}",
                super::SA_PREFIX,
                k8s.namespace,
                k8s.serviceaccount.name
            ),
            aud,
            exp: now + lifetime,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            k8s,
        }
    }
}

pub struct TokenSigner {
    key: EcdsaKeyPair,
    public: Vec<u8>,
    key_id: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn pki_err(path: &Path, what: &str) -> PkiError {
    PkiError::Invalid(format!("{}: {what}", path.display()))
}

impl TokenSigner {
    /// Load the signing key from `dir/service-account.key`, creating it on first start.
    pub fn load_or_create(dir: &Path) -> Result<TokenSigner, PkiError> {
        let path = dir.join("service-account.key");
        let rng = SystemRandom::new();
        let der = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| pki_err(&path, "cannot generate a P-256 key"))?;
                crate::pki::write_private(&path, doc.as_ref(), 0o600)?;
                doc.as_ref().to_vec()
            }
            Err(source) => return Err(PkiError::Read { path, source }),
        };
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
            .map_err(|_| pki_err(&path, "not a PKCS#8 P-256 key"))?;
        let public = key.public_key().as_ref().to_vec();
        // Key id: like upstream, derived from the public key (here: a SHA-256 of it).
        let digest = ring::digest::digest(&ring::digest::SHA256, &public);
        let key_id = URL_SAFE_NO_PAD.encode(digest.as_ref());
        Ok(TokenSigner {
            key,
            public,
            key_id,
            rng,
        })
    }

    /// Sign `claims` into a compact JWS.
    pub fn issue(&self, claims: &Claims) -> Result<String, String> {
        let header = serde_json::json!({"alg": "ES256", "kid": self.key_id});
        let payload = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let sig = self
            .key
            .sign(&self.rng, out.as_bytes())
            .map_err(|_| "signing failed".to_string())?;
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
        Ok(out)
    }

    /// Check the signature and the time window of `token` (at unix time `now`) and that one
    /// of its audiences is ours. Whether the ServiceAccount still exists is the caller's check.
    pub fn verify(&self, token: &str, now: i64) -> Option<Claims> {
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || token.len() > 16 * 1024 {
            return None;
        }
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("ES256") {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
        let signed = &token[..h.len() + 1 + p.len()];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.public)
            .verify(signed.as_bytes(), &sig)
            .ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
        // Upstream allows 60 s of clock skew on both ends.
        if claims.iss != ISSUER || now > claims.exp + 60 || now + 60 < claims.nbf {
            return None;
        }
        if !claims.aud.iter().any(|a| a == ISSUER) {
            return None;
        }
        Some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "system:serviceaccount:demo:robot".into(),
            aud: vec![ISSUER.into()],
            exp,
            iat: 1000,
            nbf: 1000,
            jti: "j".into(),
            k8s: K8sClaim {
                namespace: "demo".into(),
                serviceaccount: Ref {
                    name: "robot".into(),
                    uid: "u1".into(),
                },
                pod: None,
                secret: None,
            },
        }
    }

    #[test]
    fn sign_verify_tamper_expire_and_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = TokenSigner::load_or_create(dir.path()).expect("signer");
        let tok = s.issue(&claims(5000)).expect("issue");
        assert_eq!(s.verify(&tok, 2000), Some(claims(5000)));
        // Expired (beyond the skew), not yet valid.
        assert!(s.verify(&tok, 5061).is_none());
        assert!(s.verify(&tok, 900).is_none());
        // A changed payload breaks the signature.
        let mut forged = claims(5000);
        forged.k8s.namespace = "kube-system".into();
        let parts: Vec<&str> = tok.split('.').collect();
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"));
        let tampered = format!("{}.{}.{}", parts[0], body, parts[2]);
        assert!(s.verify(&tampered, 2000).is_none());
        assert!(s.verify("a.b", 2000).is_none());
        assert!(s.verify("not a token", 2000).is_none());
        // The key survives a restart; a different key does not verify.
        let again = TokenSigner::load_or_create(dir.path()).expect("reload");
        assert!(again.verify(&tok, 2000).is_some());
        let other_dir = tempfile::tempdir().expect("tempdir");
        let other = TokenSigner::load_or_create(other_dir.path()).expect("other");
        assert!(other.verify(&tok, 2000).is_none());
        let mode = std::fs::metadata(dir.path().join("service-account.key"))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .expect("meta");
        assert_eq!(mode, 0o600);
    }
}
