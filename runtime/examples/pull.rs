//! Pulls one image into an image store and prints what was downloaded, for measuring pull
//! throughput: `cargo run --release -p runtime --example pull -- DATA_DIR REFERENCE`.
//! Loopback registries are plain HTTP; `K1S_REGISTRY_USER`/`_PASSWORD` give credentials.

use std::sync::Arc;

use runtime::image::{pull, ImageStore, PullOptions, RegistryAuth, RegistryConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, reference] = &args[..] else {
        anyhow::bail!("usage: pull DATA_DIR REFERENCE");
    };
    let store = Arc::new(ImageStore::open(std::path::Path::new(dir))?);
    let auth = match (
        std::env::var("K1S_REGISTRY_USER"),
        std::env::var("K1S_REGISTRY_PASSWORD"),
    ) {
        (Ok(u), Ok(p)) => Some(RegistryAuth::new(u, p)),
        _ => None,
    };
    let rep = pull::pull(
        store,
        reference,
        &RegistryConfig::default(),
        &PullOptions { auth },
    )
    .await?;
    let secs = rep.elapsed.as_secs_f64();
    println!(
        "{} {}: {} blobs, {} bytes in {secs:.3} s = {:.1} MB/s (download, verify, unpack)",
        reference,
        rep.record.id,
        rep.downloaded_blobs,
        rep.downloaded_bytes,
        rep.downloaded_bytes as f64 / secs / 1e6
    );
    Ok(())
}
