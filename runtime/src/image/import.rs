//! Import of image archives: `docker save` tars (manifest.json) and OCI image-layout tars
//! (index.json + blobs/sha256), optionally gzip-compressed as a whole. Every file of the
//! archive is streamed into the blob store once; manifests are then read back by digest, so
//! a blob whose name lies about its content is simply not found. Layers are unpacked into
//! snapshots here too, so a container can start without further work.

use std::collections::HashMap;
use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::image::reference;
use crate::image::store::{hex_of, ImageConfig, ImageRecord, ImageStore, LayerRecord};

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

#[derive(Deserialize)]
struct OciIndex {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct OciManifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ContainerCfg {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

#[derive(Deserialize)]
struct ConfigBlob {
    #[serde(default)]
    config: Option<ContainerCfg>,
    rootfs: RootFs,
}

/// Files of the archive by cleaned path: blob digest, or symlink target.
#[derive(Default)]
struct ArchiveFiles {
    blobs: HashMap<String, String>,
    links: HashMap<String, String>,
}

impl ArchiveFiles {
    fn digest_of(&self, name: &str) -> Option<&String> {
        let mut name = clean(name);
        for _ in 0..8 {
            if let Some(d) = self.blobs.get(&name) {
                return Some(d);
            }
            let target = self.links.get(&name)?;
            let base = Path::new(&name).parent().unwrap_or(Path::new(""));
            name = clean(&base.join(target).to_string_lossy());
        }
        None
    }
}

fn clean(name: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

impl ImageStore {
    /// Imports every image in the archive at `path`; returns their records.
    pub fn import_archive(&self, path: &Path) -> Result<Vec<ImageRecord>> {
        // Blobs are written before the records that use them: keep garbage collection away.
        let _lease = self.lease()?;
        let bad = |reason: String| Error::InvalidArchive {
            path: path.to_path_buf(),
            reason,
        };
        let files = self.store_archive_files(path)?;
        let mut images = Vec::new();
        if let Some(d) = files.digest_of("manifest.json") {
            let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&self.read_blob(d)?)
                .map_err(|e| bad(format!("manifest.json: {e}")))?;
            for m in entries {
                let config = files
                    .digest_of(&m.config)
                    .ok_or_else(|| bad(format!("missing {}", m.config)))?
                    .clone();
                let layers = m
                    .layers
                    .iter()
                    .map(|l| {
                        files
                            .digest_of(l)
                            .cloned()
                            .ok_or_else(|| bad(format!("missing {l}")))
                    })
                    .collect::<Result<Vec<_>>>()?;
                images.push((config, layers, m.repo_tags.unwrap_or_default()));
            }
        } else if let Some(d) = files.digest_of("index.json") {
            let index: OciIndex = serde_json::from_slice(&self.read_blob(d)?)
                .map_err(|e| bad(format!("index.json: {e}")))?;
            self.collect_oci(path, &index.manifests, None, 0, &mut images)?;
        } else {
            return Err(bad("neither manifest.json nor index.json found".into()));
        }
        images
            .into_iter()
            .map(|(config, layers, names)| self.record_image(&config, &layers, &names, &bad))
            .collect()
    }

    fn store_archive_files(&self, path: &Path) -> Result<ArchiveFiles> {
        let mut f = fs::File::open(path).map_err(Error::io("open image archive", path))?;
        let mut magic = [0u8; 2];
        let n = f
            .read(&mut magic)
            .map_err(Error::io("read image archive", path))?;
        let f = fs::File::open(path).map_err(Error::io("open image archive", path))?;
        let reader: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f)))
        } else {
            Box::new(BufReader::new(f))
        };
        let mut archive = tar::Archive::new(reader);
        let mut files = ArchiveFiles::default();
        let bad = |e: std::io::Error| Error::InvalidArchive {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        for entry in archive.entries().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            let name = clean(&String::from_utf8_lossy(&entry.path_bytes()));
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let (digest, _) = self.write_blob(entry)?;
                    files.blobs.insert(name, digest);
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    if let Some(t) = entry.link_name_bytes() {
                        let t = String::from_utf8_lossy(&t).into_owned();
                        // Hard link names are archive-relative, symlinks relative to the link.
                        let t = if entry.header().entry_type() == tar::EntryType::Link {
                            format!("/{t}")
                        } else {
                            t
                        };
                        files.links.insert(name, t);
                    }
                }
                _ => {}
            }
        }
        // Absolute link targets are archive-relative.
        for t in files.links.values_mut() {
            if let Some(abs) = t.strip_prefix('/') {
                *t = format!("{}{}", "../".repeat(32), abs);
            }
        }
        Ok(files)
    }

    #[allow(clippy::type_complexity)]
    fn collect_oci(
        &self,
        path: &Path,
        descs: &[Descriptor],
        parent_name: Option<&str>,
        depth: u32,
        out: &mut Vec<(String, Vec<String>, Vec<String>)>,
    ) -> Result<()> {
        let bad = |reason: String| Error::InvalidArchive {
            path: path.to_path_buf(),
            reason,
        };
        if depth > 2 {
            return Err(bad("image index nested too deep".into()));
        }
        for d in descs {
            let name = d
                .annotations
                .get("io.containerd.image.name")
                .cloned()
                .or_else(|| {
                    d.annotations
                        .get("org.opencontainers.image.ref.name")
                        .cloned()
                })
                .or_else(|| parent_name.map(str::to_string));
            let blob = self
                .read_blob(&d.digest)
                .map_err(|_| bad(format!("blob {} missing", d.digest)))?;
            if INDEX_TYPES.contains(&d.media_type.as_str()) {
                let idx: OciIndex = serde_json::from_slice(&blob)
                    .map_err(|e| bad(format!("index {}: {e}", d.digest)))?;
                // Pick the linux/amd64-or-first manifest only: one image per name.
                let first = idx.manifests.iter().take(1).map(|m| Descriptor {
                    media_type: m.media_type.clone(),
                    digest: m.digest.clone(),
                    annotations: HashMap::new(),
                });
                let first: Vec<_> = first.collect();
                self.collect_oci(path, &first, name.as_deref(), depth + 1, out)?;
                continue;
            }
            let m: OciManifest = serde_json::from_slice(&blob)
                .map_err(|e| bad(format!("manifest {}: {e}", d.digest)))?;
            let names = name
                .into_iter()
                .filter(|n| n.contains(':') || n.contains('/'))
                .collect();
            out.push((
                m.config.digest,
                m.layers.into_iter().map(|l| l.digest).collect(),
                names,
            ));
        }
        Ok(())
    }

    /// Records an image whose config and layer blobs are stored, unpacking its layers; used by
    /// import and pull alike. `bad` builds the error for an invalid config.
    pub(crate) fn record_image(
        &self,
        config: &str,
        layers: &[String],
        names: &[String],
        bad: &dyn Fn(String) -> Error,
    ) -> Result<ImageRecord> {
        hex_of(config)?;
        let cfg: ConfigBlob = serde_json::from_slice(&self.read_blob(config)?)
            .map_err(|e| bad(format!("config {config}: {e}")))?;
        if cfg.rootfs.diff_ids.len() != layers.len() {
            return Err(bad(format!(
                "config {config} lists {} diff ids for {} layers",
                cfg.rootfs.diff_ids.len(),
                layers.len()
            )));
        }
        let mut size = 0;
        let mut recs = Vec::new();
        for (blob, diff_id) in layers.iter().zip(cfg.rootfs.diff_ids) {
            let p: PathBuf = self.blob_path(blob)?;
            size += fs::metadata(&p).map_err(Error::io("stat blob", &p))?.len();
            let rec = LayerRecord {
                blob: blob.clone(),
                diff_id,
            };
            self.unpack(&rec)?;
            recs.push(rec);
        }
        let c = cfg.config.unwrap_or_default();
        let names = names
            .iter()
            .map(|n| reference::normalize(n))
            .collect::<Result<Vec<_>>>()?;
        let record = ImageRecord {
            id: config.to_string(),
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            layers: recs,
            config: ImageConfig {
                entrypoint: c.entrypoint.unwrap_or_default(),
                cmd: c.cmd.unwrap_or_default(),
                env: c.env.unwrap_or_default(),
                working_dir: c.working_dir.unwrap_or_default(),
                user: c.user.unwrap_or_default(),
            },
            size,
        };
        self.put(record, &names)
    }
}
