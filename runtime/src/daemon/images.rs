//! Image verbs on the runtime: thin async wrappers over the blocking `ImageStore`.

use std::path::Path;

use crate::cri::ImageStatus;
use crate::daemon::{blocking, Runtime};
use crate::error::Result;
use crate::image::pull::{self, PullOptions, PullReport};
use crate::image::store::Found;
use crate::image::{PruneOptions, PruneReport};

impl Runtime {
    /// Pulls `reference` anonymously (see `pull_image_with`).
    pub async fn pull_image(&self, reference: &str) -> Result<ImageStatus> {
        self.pull_image_with(reference, &PullOptions::default())
            .await
    }

    /// Pulls `reference` from its registry with `options` (credentials); insecure registries,
    /// timeouts and parallelism come from `RuntimeConfig::registry`.
    pub async fn pull_image_with(
        &self,
        reference: &str,
        options: &PullOptions,
    ) -> Result<ImageStatus> {
        Ok(self
            .pull_image_report(reference, options)
            .await?
            .record
            .status())
    }

    /// Like `pull_image_with`, returning what was downloaded.
    pub async fn pull_image_report(
        &self,
        reference: &str,
        options: &PullOptions,
    ) -> Result<PullReport> {
        pull::pull(self.images.clone(), reference, &self.cfg.registry, options).await
    }

    /// Imports a `docker save` or OCI layout archive (optionally gzipped).
    pub async fn import_image(&self, archive: &Path) -> Result<Vec<ImageStatus>> {
        let images = self.images.clone();
        let archive = archive.to_path_buf();
        let recs = blocking("import image", move || images.import_archive(&archive)).await?;
        Ok(recs.iter().map(|r| r.status()).collect())
    }

    pub async fn image_status(&self, reference: &str) -> Result<Option<ImageStatus>> {
        // The usual case, an image already looked up, costs a stat or two of files in the
        // dentry cache: answered here, without the round trip through a blocking thread (which
        // took about 0.5 ms of a pod's start on a busy 2-core machine).
        match self.images.resolve_cached(reference)? {
            Found::Yes(rec) => return Ok(Some(rec.status())),
            Found::No => return Ok(None),
            Found::NotCached => {}
        }
        let images = self.images.clone();
        let r = reference.to_string();
        Ok(blocking("image status", move || images.resolve(&r))
            .await?
            .map(|r| r.status()))
    }

    pub async fn list_images(&self) -> Result<Vec<ImageStatus>> {
        let images = self.images.clone();
        Ok(blocking("list images", move || images.list())
            .await?
            .iter()
            .map(|r| r.status())
            .collect())
    }

    /// Image garbage collection (see `image::gc`): the kubelet's image GC and `k1s image
    /// prune` call it.
    pub async fn prune_images(&self, opts: PruneOptions) -> Result<PruneReport> {
        let images = self.images.clone();
        let sandboxes = crate::layout::sandboxes_dir(&self.cfg.data_dir);
        blocking("prune images", move || images.prune(&sandboxes, opts)).await
    }

    pub async fn remove_image(&self, reference: &str) -> Result<()> {
        let images = self.images.clone();
        let r = reference.to_string();
        blocking("remove image", move || images.remove(&r)).await
    }
}
