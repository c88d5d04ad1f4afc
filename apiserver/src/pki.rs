//! The cluster's certificates and the admin credential: a CA and a serving certificate made on
//! first start and kept in `<data-dir>/tls` (keys mode 0600), an admin bearer token, and the
//! admin kubeconfig file.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, SanType,
};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("failed to write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid key material: {0}")]
    Invalid(String),
    #[error("failed to generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// PEM material the server needs.
pub struct Pki {
    pub ca_cert_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub admin_token: String,
    dir: PathBuf,
    ca_key_pem: String,
}

pub(crate) fn write_private(
    path: &Path,
    data: impl AsRef<[u8]>,
    mode: u32,
) -> Result<(), PkiError> {
    let tmp = path.with_extension("tmp");
    let w = |source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(w)?;
    f.write_all(data.as_ref()).map_err(w)?;
    f.sync_all().map_err(w)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(w)?;
    fs::rename(&tmp, path).map_err(w)?;
    Ok(())
}

fn read(path: &Path) -> Result<Option<String>, PkiError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "k1s-server-ca");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(p)
}

fn random_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

impl Pki {
    /// Load the PKI from `dir`, creating whatever is missing. `sans` are the serving
    /// certificate's names and IPs.
    pub fn load_or_create(dir: &Path, sans: &[String]) -> Result<Pki, PkiError> {
        fs::create_dir_all(dir).map_err(|source| PkiError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let ca_key_path = dir.join("server-ca.key");
        let ca_cert_path = dir.join("server-ca.crt");
        let (ca_key_pem, ca_cert_pem) = match (read(&ca_key_path)?, read(&ca_cert_path)?) {
            (Some(k), Some(c)) => (k, c),
            _ => {
                let key = KeyPair::generate()?;
                let cert = ca_params()?.self_signed(&key)?;
                write_private(&ca_key_path, key.serialize_pem(), 0o600)?;
                write_private(&ca_cert_path, cert.pem(), 0o644)?;
                (key.serialize_pem(), cert.pem())
            }
        };
        let mut pki = Pki {
            ca_cert_pem,
            serving_cert_pem: String::new(),
            serving_key_pem: String::new(),
            admin_token: String::new(),
            dir: dir.to_path_buf(),
            ca_key_pem,
        };
        let s_key = dir.join("serving.key");
        let s_cert = dir.join("serving.crt");
        let s_sans = dir.join("serving.sans");
        let want_sans = sans.join(",");
        match (read(&s_key)?, read(&s_cert)?, read(&s_sans)?) {
            (Some(k), Some(c), Some(s)) if s == want_sans => {
                pki.serving_key_pem = k;
                pki.serving_cert_pem = c;
            }
            _ => {
                let (c, k) = pki.issue("k1s", &[], sans, false)?;
                write_private(&s_key, &k, 0o600)?;
                write_private(&s_cert, &c, 0o644)?;
                write_private(&s_sans, &want_sans, 0o644)?;
                pki.serving_key_pem = k;
                pki.serving_cert_pem = c;
            }
        }
        let tok_path = dir.join("admin.token");
        pki.admin_token = match read(&tok_path)? {
            Some(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => {
                let t = random_token();
                write_private(&tok_path, &t, 0o600)?;
                t
            }
        };
        Ok(pki)
    }

    /// Issue a certificate signed by the cluster CA: returns (cert PEM, key PEM).
    pub fn issue(
        &self,
        cn: &str,
        orgs: &[&str],
        sans: &[String],
        client: bool,
    ) -> Result<(String, String), PkiError> {
        let ca_key = KeyPair::from_pem(&self.ca_key_pem)?;
        let issuer = Issuer::new(ca_params()?, ca_key);
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        for o in orgs {
            dn.push(DnType::OrganizationName, *o);
        }
        p.distinguished_name = dn;
        for s in sans {
            match s.parse::<std::net::IpAddr>() {
                Ok(ip) => p.subject_alt_names.push(SanType::IpAddress(ip)),
                Err(_) => p
                    .subject_alt_names
                    .push(SanType::DnsName(s.clone().try_into()?)),
            }
        }
        p.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        p.not_before = rcgen::date_time_ymd(2024, 1, 1);
        p.not_after = rcgen::date_time_ymd(2124, 1, 1);
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The admin kubeconfig text for a server at `server_url`.
    pub fn admin_kubeconfig(&self, server_url: &str) -> String {
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_cert_pem);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server_url}\n  name: default\ncontexts:\n- context:\n    cluster: default\n    user: default\n  name: default\ncurrent-context: default\npreferences: {{}}\nusers:\n- name: default\n  user:\n    token: {}\n",
            self.admin_token
        )
    }
}

/// Write the admin kubeconfig to `path` with `mode`.
pub fn write_kubeconfig(path: &Path, text: &str, mode: u32) -> Result<(), PkiError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|source| PkiError::Write {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    write_private(path, text, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_and_reloads() {
        let dir = tempfile::tempdir().expect("tmp");
        let sans = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let a = Pki::load_or_create(dir.path(), &sans).expect("create");
        let b = Pki::load_or_create(dir.path(), &sans).expect("reload");
        assert_eq!(a.ca_cert_pem, b.ca_cert_pem);
        assert_eq!(a.admin_token, b.admin_token);
        let mode = fs::metadata(dir.path().join("server-ca.key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(a
            .admin_kubeconfig("https://127.0.0.1:6443")
            .contains("token:"));
    }
}
