//! Registries for pull tests: the Debian docker-registry started by scripts/local-registry.sh
//! (stopped by its PID file on drop), and a tiny in-process one on 127.0.0.1 serving fixed
//! manifests and blobs behind the bearer token flow, counting blob downloads.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};

/// The script's registry; `None` (test skipped) without docker-registry/skopeo unless CI.
pub struct LocalRegistry {
    pub dir: tempfile::TempDir,
    pub addr: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/local-registry.sh")
}

impl LocalRegistry {
    pub fn start(auth: Option<(&str, &str)>) -> Option<LocalRegistry> {
        let have = |b: &str| {
            Command::new("sh")
                .args(["-c", &format!("command -v {b}")])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !have("docker-registry") || !have("skopeo") {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "docker-registry and skopeo are needed (scripts/install-test-deps.sh)"
            );
            eprintln!("skipping: docker-registry or skopeo missing");
            return None;
        }
        let dir = tempfile::tempdir_in("/var/tmp").expect("tempdir");
        let mut cmd = Command::new("bash");
        cmd.arg(script()).arg("start").arg(dir.path().join("reg"));
        cmd.env_remove("K1S_REGISTRY_USER")
            .env_remove("K1S_REGISTRY_PASSWORD");
        if let Some((u, p)) = auth {
            cmd.env("K1S_REGISTRY_USER", u)
                .env("K1S_REGISTRY_PASSWORD", p);
        }
        let out = cmd.output().expect("run local-registry.sh");
        assert!(
            out.status.success(),
            "local-registry.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let addr = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Some(LocalRegistry { dir, addr })
    }

    /// The archive the script pushed (the same image `import` reads).
    pub fn pushed_archive(&self) -> PathBuf {
        std::env::var("K1S_BUSYBOX_IMAGE")
            .ok()
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .unwrap_or_else(|| self.dir.path().join("reg/busybox.tar"))
    }
}

impl LocalRegistry {
    /// Pushes the archive again as `busybox:<tag>` with its layer recompressed to zstd by
    /// skopeo (another zstd encoder than the tests' own); returns the reference. Two steps, so
    /// skopeo cannot substitute the gzip blob the registry already has.
    pub fn push_zstd(&self, tag: &str) -> String {
        let r = format!("{}/busybox:{tag}", self.addr);
        let layout = format!("oci:{}/zstd-{tag}:latest", self.dir.path().display());
        let archive = format!("oci-archive:{}", self.pushed_archive().display());
        let docker = format!("docker://{r}");
        for args in [
            [
                "--dest-compress-format",
                "zstd",
                "--dest-compress",
                &archive,
                &layout,
            ],
            [
                "--preserve-digests",
                "--dest-tls-verify=false",
                "-q",
                &layout,
                &docker,
            ],
        ] {
            let out = Command::new("skopeo")
                .args(["copy", "-q"])
                .args(args)
                .output()
                .expect("run skopeo");
            assert!(
                out.status.success(),
                "skopeo copy failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        r
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path().join("reg"))
            .output();
    }
}

/// Path (`/v2/...`) -> (content type, body).
pub type Files = HashMap<String, (String, Vec<u8>)>;

/// What the in-process registry serves and has seen.
#[derive(Default)]
pub struct State {
    pub files: Files,
    /// Blob GETs answered, by path.
    pub blob_gets: Vec<String>,
    pub token_gets: usize,
    /// Held before answering a blob GET (to make concurrent pulls overlap).
    pub blob_delay: std::time::Duration,
    /// Token endpoint named in the bearer challenge.
    pub realm: String,
}

pub const TOKEN: &str = "test-token-0123";
pub const USER: &str = "puller";
pub const PASSWORD: &str = "s3cret";

pub struct TestRegistry {
    pub addr: String,
    pub state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn respond(status: StatusCode, headers: &[(&str, String)], body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    b.body(Full::new(Bytes::from(body)))
        .expect("valid response")
}

fn handle(state: &Mutex<State>, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{USER}:{PASSWORD}")
        )
    );
    let authz = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if path == "/token" {
        let q = req.uri().query().unwrap_or_default();
        let ok_query = q.contains("service=test-registry")
            && q.contains("scope=repository%3Amulti%2Fapp%3Apull");
        if authz != basic || !ok_query {
            return respond(StatusCode::UNAUTHORIZED, &[], b"{}".to_vec());
        }
        state.lock().expect("state").token_gets += 1;
        let body = serde_json::json!({"access_token": TOKEN}).to_string();
        return respond(
            StatusCode::OK,
            &[("content-type", "application/json".into())],
            body.into(),
        );
    }
    if authz != format!("Bearer {TOKEN}") {
        let realm = state.lock().expect("state").realm.clone();
        let challenge = format!(
            r#"Bearer realm="{realm}",service="test-registry",scope="repository:multi/app:pull""#
        );
        return respond(
            StatusCode::UNAUTHORIZED,
            &[("www-authenticate", challenge)],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
        );
    }
    let mut st = state.lock().expect("state");
    match st.files.get(&path).cloned() {
        Some((ct, body)) => {
            if path.contains("/blobs/") {
                st.blob_gets.push(path);
            }
            respond(StatusCode::OK, &[("content-type", ct)], body)
        }
        None => respond(
            StatusCode::NOT_FOUND,
            &[("content-type", "application/json".into())],
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec(),
        ),
    }
}

/// A CA and a serving certificate for 127.0.0.1 signed by it: (CA PEM, TLS acceptor).
fn tls_for_loopback() -> (String, tokio_rustls::TlsAcceptor) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).expect("CA cert").pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("server key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("server params");
    p.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    let cert = p.signed_by(&key, &issuer).expect("server cert");
    let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der");
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], der)
    .expect("server config");
    (ca_pem, tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

async fn serve<I>(io: I, state: Arc<Mutex<State>>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let r = handle(&state, &req);
        let delay = if req.uri().path().contains("/blobs/") {
            state.lock().expect("state").blob_delay
        } else {
            std::time::Duration::ZERO
        };
        async move {
            tokio::time::sleep(delay).await;
            Ok::<_, Infallible>(r)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), svc)
        .await;
}

impl TestRegistry {
    /// Plain HTTP on 127.0.0.1.
    pub async fn start(files: Files) -> TestRegistry {
        Self::start_with(files, None).await
    }

    /// HTTPS on 127.0.0.1 with a fresh CA; returns the CA's PEM too.
    pub async fn start_tls(files: Files) -> (TestRegistry, String) {
        let (ca, acceptor) = tls_for_loopback();
        (Self::start_with(files, Some(acceptor)).await, ca)
    }

    async fn start_with(files: Files, tls: Option<tokio_rustls::TlsAcceptor>) -> TestRegistry {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr").to_string();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(Mutex::new(State {
            files,
            realm: format!("{scheme}://{addr}/token"),
            ..Default::default()
        }));
        let s = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let (s, tls) = (s.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(t) => {
                            if let Ok(io) = t.accept(conn).await {
                                serve(io, s).await;
                            }
                        }
                        None => serve(conn, s).await,
                    }
                });
            }
        });
        TestRegistry { addr, state, task }
    }
}
