//! Shared by the crash test and the API benchmark: an API-only `k1s server` on a loopback
//! port, killed when dropped, and a kube-rs client for it once it answers.

// Each includer (the crash test, the benchmark) uses a subset.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use kube::Client;

/// The runtime the tests and the benchmark drive the server with: two workers, like CI.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(16443)
}

/// Kills the server when dropped, so a failing assertion never leaves it running.
pub struct Server(Child);

impl Server {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    pub fn kill(&mut self) {
        let _ = self.0.kill(); // SIGKILL
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn start(dir: &Path, port: u16) -> Server {
    start_with(dir, port, &[])
}

/// `start` with extra `k1s server` flags.
pub fn start_with(dir: &Path, port: u16, extra: &[&str]) -> Server {
    let _ = std::fs::remove_file(dir.join("kc.yaml"));
    Server(
        Command::new(env!("CARGO_BIN_EXE_k1s"))
            .args([
                "server",
                "--disable-agent",
                "--https-listen-port",
                &port.to_string(),
                "--log",
                "warn",
            ])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--write-kubeconfig")
            .arg(dir.join("kc.yaml"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start k1s"),
    )
}

pub async fn client(dir: &Path) -> Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("kc.yaml")) {
            if let Ok(kc) = kube::config::Kubeconfig::from_yaml(&text) {
                if let Ok(cfg) = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await
                {
                    if let Ok(c) = Client::try_from(cfg) {
                        let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
                        if api.list(&ListParams::default().limit(1)).await.is_ok() {
                            return c;
                        }
                    }
                }
            }
        }
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
