//! Pulling an image from a registry into the store: resolve the reference to a manifest
//! (picking linux/<host arch> out of an OCI index or Docker manifest list), download config and
//! layers a few at a time into temporary files while hashing them, verify size and digest,
//! rename into the blob store, then record and unpack the image exactly as `import` does, so a
//! pulled image is indistinguishable from an imported one. Blobs already stored are not
//! downloaded again. HTTP, auth and timeouts live in `registry`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{StreamExt, TryStreamExt};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tracing::{debug, info};

use crate::daemon::blocking;
use crate::error::{Error, Result};
use crate::image::credentials::RegistryAuth;
use crate::image::reference::{self, Reference};
use crate::image::registry::{RegistryClient, RegistryConfig, Resource};
use crate::image::store::{hex_of, ImageRecord, ImageStore};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";

const CONFIG_TYPES: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];
const LAYER_TYPES: [&str; 9] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// Largest manifest or index accepted (containerd uses the same bound).
const MAX_MANIFEST: usize = 4 << 20;

/// Per-pull settings; node-wide ones are in `RegistryConfig`.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Credentials for the image's registry (from imagePullSecrets, or the CLI).
    pub auth: Option<RegistryAuth>,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullReport {
    pub record: ImageRecord,
    /// Digest of the manifest (or index) the reference resolved to.
    pub manifest_digest: String,
    /// Blobs (config and layers) fetched from the registry, and their bytes.
    pub downloaded_blobs: usize,
    pub downloaded_bytes: u64,
    /// Blobs found in the store already.
    pub reused_blobs: usize,
    pub elapsed: Duration,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize, Clone, Debug)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyManifest {
    #[serde(default)]
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// The image manifest a reference resolved to.
struct Resolved {
    top_digest: String,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// `(architecture, variant)` of this machine, spelled as in OCI platforms.
pub fn host_platform() -> (&'static str, Option<&'static str>) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" => ("ppc64le", None),
        "riscv64" => ("riscv64", None),
        "s390x" => ("s390x", None),
        "loongarch64" => ("loong64", None),
        other => (other, None),
    }
}

/// Pulls `reference` into `store`; see the module docs.
pub async fn pull(
    store: Arc<ImageStore>,
    reference: &str,
    cfg: &RegistryConfig,
    opts: &PullOptions,
) -> Result<PullReport> {
    let started = Instant::now();
    let r = reference::parse(reference)?;
    let client = Arc::new(RegistryClient::new(&r, cfg, opts.auth.clone())?);
    info!(image = %r.name, "pulling image");
    // Blobs land before the record that uses them: keep garbage collection away meanwhile.
    let st = store.clone();
    let _lease = blocking("lease the image store", move || st.lease()).await?;
    let resolved = resolve(&client, &r).await?;
    let bad = |reason: String| Error::InvalidManifest {
        reference: r.name.clone(),
        reason,
    };
    if !CONFIG_TYPES.contains(&resolved.config.media_type.as_str()) {
        return Err(unsupported(&r, "image config", &resolved.config.media_type));
    }
    let mut wanted = vec![resolved.config.clone()];
    for l in &resolved.layers {
        if !LAYER_TYPES.contains(&l.media_type.as_str()) {
            return Err(unsupported(&r, "layer", &l.media_type));
        }
        wanted.push(l.clone());
    }
    let mut seen = HashSet::new();
    wanted.retain(|d| seen.insert(d.digest.clone()));
    for d in &wanted {
        hex_of(&d.digest).map_err(|_| bad(format!("unsupported digest {:?}", d.digest)))?;
    }
    let limit = cfg.max_blob_size;
    let jobs: Vec<_> = wanted
        .iter()
        .cloned()
        .map(|d| {
            let (client, store) = (client.clone(), store.clone());
            async move { fetch_blob(&client, &store, &d, limit).await }
        })
        .collect();
    let fetched: Vec<u64> = futures::stream::iter(jobs)
        .buffer_unordered(cfg.max_concurrent_downloads.max(1))
        .try_collect()
        .await?;
    let downloaded_blobs = fetched.iter().filter(|b| **b > 0).count();
    let downloaded_bytes: u64 = fetched.iter().sum();
    let mut names = vec![r.name.clone()];
    let by_digest = r.with_digest(&resolved.top_digest);
    if !names.contains(&by_digest) {
        names.push(by_digest);
    }
    let config = resolved.config.digest.clone();
    let layers: Vec<String> = resolved.layers.iter().map(|l| l.digest.clone()).collect();
    let name = r.name.clone();
    let st = store.clone();
    let record = blocking("record pulled image", move || {
        let bad = |reason: String| Error::InvalidManifest {
            reference: name.clone(),
            reason,
        };
        st.record_image(&config, &layers, &names, &bad)
    })
    .await?;
    let elapsed = started.elapsed();
    info!(
        image = %r.name,
        id = %record.id,
        downloaded_blobs,
        downloaded_bytes,
        reused_blobs = wanted.len() - downloaded_blobs,
        elapsed_ms = elapsed.as_millis() as u64,
        "pulled image"
    );
    Ok(PullReport {
        record,
        manifest_digest: resolved.top_digest,
        downloaded_blobs,
        downloaded_bytes,
        reused_blobs: wanted.len() - downloaded_blobs,
        elapsed,
    })
}

fn unsupported(r: &Reference, what: &'static str, media_type: &str) -> Error {
    Error::UnsupportedMediaType {
        reference: r.name.clone(),
        what,
        media_type: media_type.to_string(),
    }
}

/// Fetches the reference's manifest; an index or list is resolved to this platform's entry.
async fn resolve(client: &RegistryClient, r: &Reference) -> Result<Resolved> {
    let (top_digest, media_type, m) = fetch_manifest(client, r, r.target()).await?;
    let (media_type, m) = if media_type == OCI_INDEX || media_type == DOCKER_LIST {
        let entries = m.manifests.unwrap_or_default();
        let chosen = choose_platform(&entries).ok_or_else(|| {
            let (arch, variant) = host_platform();
            Error::NoMatchingPlatform {
                reference: r.name.clone(),
                platform: format!(
                    "linux/{arch}{}",
                    variant.map(|v| format!("/{v}")).unwrap_or_default()
                ),
            }
        })?;
        debug!(image = %r.name, manifest = %chosen.digest, "picked platform manifest");
        let (_, mt, child) = fetch_manifest(client, r, &chosen.digest).await?;
        (mt, child)
    } else {
        (media_type, m)
    };
    if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
        return Err(unsupported(r, "manifest", &media_type));
    }
    let config = m.config.ok_or_else(|| Error::InvalidManifest {
        reference: r.name.clone(),
        reason: "no config".into(),
    })?;
    Ok(Resolved {
        top_digest,
        config,
        layers: m.layers.unwrap_or_default(),
    })
}

/// linux + host architecture; the host's variant first, then none, then any other.
fn choose_platform(entries: &[Descriptor]) -> Option<&Descriptor> {
    let (arch, variant) = host_platform();
    let candidates: Vec<&Descriptor> = entries
        .iter()
        .filter(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        })
        .collect();
    let variant_of = |d: &Descriptor| d.platform.as_ref().and_then(|p| p.variant.clone());
    candidates
        .iter()
        .find(|d| variant.is_some() && variant_of(d).as_deref() == variant)
        .or_else(|| candidates.iter().find(|d| variant_of(d).is_none()))
        .or_else(|| candidates.first())
        .copied()
}

/// GETs a manifest by tag or digest; returns its digest, media type and content.
async fn fetch_manifest(
    client: &RegistryClient,
    r: &Reference,
    target: &str,
) -> Result<(String, String, AnyManifest)> {
    let accept = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST].join(", ");
    let res = Resource::Manifest(target);
    let resp = client.get(res, &accept).await?;
    let content_type = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
        .unwrap_or_default();
    let body = client.read_body(resp, MAX_MANIFEST, res).await?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
    if target.starts_with("sha256:") && digest != target {
        return Err(Error::PullDigestMismatch {
            reference: r.name.clone(),
            expected: target.to_string(),
            actual: digest,
        });
    }
    let m: AnyManifest = serde_json::from_slice(&body).map_err(|e| Error::InvalidManifest {
        reference: r.name.clone(),
        reason: format!("{res}: {e}"),
    })?;
    let media_type = match (&m.media_type, m.schema_version) {
        (_, 1) => DOCKER_SCHEMA1.to_string(),
        (Some(t), _) if !t.is_empty() => t.clone(),
        _ if !content_type.is_empty() && content_type != "application/json" => content_type,
        // OCI allows mediaType to be absent: tell index from manifest by shape.
        _ if m.manifests.is_some() => OCI_INDEX.to_string(),
        _ if m.config.is_some() => OCI_MANIFEST.to_string(),
        _ => content_type,
    };
    Ok((digest, media_type, m))
}

/// Removes a temporary download unless it was moved into place.
struct TmpFile(std::path::PathBuf);

impl Drop for TmpFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Downloads one blob into the store unless it is there; returns the bytes downloaded.
async fn fetch_blob(
    client: &RegistryClient,
    store: &ImageStore,
    d: &Descriptor,
    limit: u64,
) -> Result<u64> {
    let blob_err = |reason: String| Error::BadBlob {
        reference: client.reference().to_string(),
        digest: d.digest.clone(),
        reason,
    };
    let _slot = store.download_slot(&d.digest).await;
    if store.has_blob(&d.digest) {
        info!(image = client.reference(), blob = %d.digest, size = d.size, "blob already present");
        return Ok(0);
    }
    if d.size > limit {
        return Err(blob_err(format!(
            "size {} exceeds the limit of {limit} bytes",
            d.size
        )));
    }
    let started = Instant::now();
    info!(image = client.reference(), blob = %d.digest, size = d.size, "downloading blob");
    let res = Resource::Blob(&d.digest);
    let resp = client.get(res, "*/*").await?;
    let tmp = TmpFile(store.tmp_path("pull"));
    let file = tokio::fs::File::create(&tmp.0)
        .await
        .map_err(Error::io("create", &tmp.0))?;
    let mut out = tokio::io::BufWriter::with_capacity(256 << 10, file);
    let mut body = resp.into_body();
    let mut hasher = Sha256::new();
    let mut count: u64 = 0;
    while let Some(chunk) = client.next_chunk(&mut body, res).await? {
        count += chunk.len() as u64;
        if d.size > 0 && count > d.size {
            return Err(blob_err(format!(
                "registry sent more than the {} bytes its descriptor says",
                d.size
            )));
        }
        if count > limit {
            return Err(blob_err(format!("larger than the limit of {limit} bytes")));
        }
        hasher.update(&chunk);
        out.write_all(&chunk)
            .await
            .map_err(Error::io("write", &tmp.0))?;
    }
    if d.size > 0 && count != d.size {
        return Err(blob_err(format!(
            "registry sent {count} bytes, its descriptor says {}",
            d.size
        )));
    }
    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
    if actual != d.digest {
        return Err(Error::PullDigestMismatch {
            reference: client.reference().to_string(),
            expected: d.digest.clone(),
            actual,
        });
    }
    out.flush().await.map_err(Error::io("write", &tmp.0))?;
    let file = out.into_inner();
    file.sync_all().await.map_err(Error::io("sync", &tmp.0))?;
    drop(file);
    let dst = store.blob_path(&d.digest)?;
    tokio::fs::rename(&tmp.0, &dst)
        .await
        .map_err(Error::io("rename blob into place", &dst))?;
    let secs = started.elapsed().as_secs_f64().max(1e-6);
    info!(
        image = client.reference(),
        blob = %d.digest,
        size = count,
        elapsed_ms = started.elapsed().as_millis() as u64,
        mb_per_s = format!("{:.1}", count as f64 / secs / 1e6),
        "downloaded blob"
    );
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(arch: &str, variant: Option<&str>, digest: &str) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: digest.into(),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(str::to_string),
            }),
        }
    }

    #[test]
    fn picks_the_host_platform() {
        let (arch, _) = host_platform();
        let entries = vec![
            desc("s390x", None, "a"),
            desc(arch, None, "host"),
            Descriptor {
                platform: Some(Platform {
                    architecture: arch.into(),
                    os: "windows".into(),
                    variant: None,
                }),
                ..desc(arch, None, "windows")
            },
        ];
        assert_eq!(
            choose_platform(&entries).map(|d| d.digest.as_str()),
            Some("host")
        );
        assert!(choose_platform(&entries[..1]).is_none());
    }
}
