//! `k1s image`: import, pull, list, inspect, remove and prune images in the runtime's store under
//! `<data-dir>/runtime`. Works on the store directly, so it needs no running server (and is
//! safe next to one: blobs and records are written through temporary files and renames).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use runtime::image::{ImageStore, PullOptions, RegistryAuth, RegistryConfig};

use crate::agent::runtime_dir;

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// Import `docker save` or OCI archives.
    Import {
        #[arg(long, default_value = "/var/lib/k1s", env = "K1S_DATA_DIR")]
        data_dir: PathBuf,
        files: Vec<PathBuf>,
    },
    /// Pull an image from an OCI or Docker registry.
    Pull {
        #[arg(long, default_value = "/var/lib/k1s", env = "K1S_DATA_DIR")]
        data_dir: PathBuf,
        /// Registry spoken to over plain HTTP (`host:port`, `host` or a CIDR); repeatable.
        /// Loopback registries always are.
        #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
        insecure_registries: Vec<String>,
        /// PEM file of a CA to trust for HTTPS registries besides the system roots; repeatable.
        #[arg(long = "registry-ca", value_name = "FILE")]
        registry_cas: Vec<PathBuf>,
        /// Send a registry's API calls to another base URL (a mirror):
        /// `docker.io=https://mirror.lan:5000`; repeatable.
        #[arg(long = "registry-endpoint", value_name = "DOMAIN=URL")]
        registry_endpoints: Vec<String>,
        /// User name for the registry (basic auth or its token server).
        #[arg(long, env = "K1S_REGISTRY_USER")]
        username: Option<String>,
        #[arg(
            long,
            env = "K1S_REGISTRY_PASSWORD",
            hide_env_values = true,
            conflicts_with = "password_stdin"
        )]
        password: Option<String>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        /// Image reference: `busybox`, `registry:5000/app:v1`, `app@sha256:...`.
        reference: String,
    },
    /// List images.
    Ls {
        #[arg(long, default_value = "/var/lib/k1s", env = "K1S_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Remove image names (or, given an id, the image and all its names).
    Rm {
        #[arg(long, default_value = "/var/lib/k1s", env = "K1S_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(required = true)]
        references: Vec<String>,
    },
    /// Remove blobs and unpacked layers that no image and no container uses.
    Prune {
        #[arg(long, default_value = "/var/lib/k1s", env = "K1S_DATA_DIR")]
        data_dir: PathBuf,
        /// First remove every image that no container uses (like `crictl rmi --prune`).
        #[arg(short, long)]
        all: bool,
    },
    /// Print an image's record as JSON.
    Inspect {
        #[arg(long, default_value = "/var/lib/k1s", env = "K1S_DATA_DIR")]
        data_dir: PathBuf,
        reference: String,
    },
}

fn open_store(data_dir: &std::path::Path) -> anyhow::Result<ImageStore> {
    ImageStore::open(&runtime_dir(data_dir)).context("failed to open the image store")
}

pub fn image_main(cmd: ImageCmd) -> ExitCode {
    if matches!(cmd, ImageCmd::Pull { .. }) {
        // Per-blob progress lines come from the runtime's tracing events.
        crate::cli_logging("runtime=info,warn");
    }
    let rt = match crate::async_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("k1s: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cmd)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("k1s: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cmd: ImageCmd) -> anyhow::Result<()> {
    match cmd {
        ImageCmd::Import { data_dir, files } => {
            let r =
                runtime::Runtime::new(runtime::RuntimeConfig::new(runtime_dir(&data_dir))).await?;
            for f in files {
                let imgs = r
                    .import_image(&f)
                    .await
                    .with_context(|| format!("failed to import {}", f.display()))?;
                for i in imgs {
                    println!("imported {} {}", i.repo_tags.join(","), i.id);
                }
            }
        }
        ImageCmd::Pull {
            data_dir,
            insecure_registries,
            registry_cas,
            registry_endpoints,
            username,
            password,
            password_stdin,
            reference,
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("failed to read the password from stdin")?;
                Some(line.trim_end_matches(['\n', '\r']).to_string())
            } else {
                password
            };
            if username.is_some() != password.is_some() {
                anyhow::bail!("--username and --password (or --password-stdin) go together");
            }
            let mut endpoints = std::collections::BTreeMap::new();
            for e in registry_endpoints {
                let (domain, url) = e
                    .split_once('=')
                    .filter(|(_, u)| u.starts_with("https://") || u.starts_with("http://"))
                    .with_context(|| {
                        format!("--registry-endpoint {e:?} is not DOMAIN=http(s)://...")
                    })?;
                endpoints.insert(domain.to_string(), url.to_string());
            }
            let cfg = RegistryConfig {
                insecure_registries,
                ca_certs: registry_cas,
                endpoints,
                ..Default::default()
            };
            let store = Arc::new(open_store(&data_dir)?);
            let opts = PullOptions {
                auth: username.zip(password).map(|(u, p)| RegistryAuth::new(u, p)),
            };
            let rep = runtime::image::pull::pull(store, &reference, &cfg, &opts).await?;
            let secs = rep.elapsed.as_secs_f64().max(1e-6);
            println!(
                "pulled {} {} ({} of {} blobs downloaded, {:.1} MB in {:.2} s, {:.1} MB/s)",
                rep.record
                    .repo_tags
                    .first()
                    .or(rep.record.repo_digests.first())
                    .map_or("", String::as_str),
                rep.record.id,
                rep.downloaded_blobs,
                rep.downloaded_blobs + rep.reused_blobs,
                rep.downloaded_bytes as f64 / 1e6,
                secs,
                rep.downloaded_bytes as f64 / secs / 1e6,
            );
        }
        ImageCmd::Ls { data_dir } => {
            let store = open_store(&data_dir)?;
            println!("{:<50} {:<20} {:>10}", "IMAGE", "ID", "SIZE");
            for i in store.list()? {
                let id: String =
                    i.id.trim_start_matches("sha256:")
                        .chars()
                        .take(12)
                        .collect();
                let names = if i.repo_tags.is_empty() {
                    &i.repo_digests
                } else {
                    &i.repo_tags
                };
                for t in names {
                    println!("{t:<50} {id:<20} {:>10}", i.size);
                }
                if names.is_empty() {
                    println!("{:<50} {id:<20} {:>10}", "<none>", i.size);
                }
            }
        }
        ImageCmd::Rm {
            data_dir,
            references,
        } => {
            let store = open_store(&data_dir)?;
            for r in references {
                store
                    .remove(&r)
                    .with_context(|| format!("failed to remove {r}"))?;
                println!("removed {r}");
            }
        }
        ImageCmd::Prune { data_dir, all } => {
            let store = open_store(&data_dir)?;
            let sandboxes = runtime::layout::sandboxes_dir(&runtime_dir(&data_dir));
            let opts = runtime::image::PruneOptions { unused_images: all };
            let rep = tokio::task::spawn_blocking(move || store.prune(&sandboxes, opts))
                .await
                .context("image garbage collection panicked")??;
            for id in &rep.removed_images {
                println!("removed image {id}");
            }
            println!(
                "removed {} blobs and {} layer snapshots, {:.1} MB freed",
                rep.removed_blobs,
                rep.removed_snapshots,
                rep.freed_bytes as f64 / 1e6
            );
        }
        ImageCmd::Inspect {
            data_dir,
            reference,
        } => {
            let store = open_store(&data_dir)?;
            let rec = store
                .resolve(&reference)?
                .ok_or_else(|| anyhow::anyhow!("image {reference:?} not found"))?;
            println!("{}", serde_json::to_string_pretty(&rec)?);
        }
    }
    Ok(())
}
