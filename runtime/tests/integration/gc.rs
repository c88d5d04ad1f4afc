//! Image garbage collection on a real store with real containers: what no image and no
//! container uses goes, what a container still runs on stays even after its image was removed.

use std::collections::BTreeSet;
use std::path::Path;

use runtime::image::PruneOptions;

use crate::common::{oci_archive_with, Fixture};
use crate::require_root;

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn hex(digest: &str) -> String {
    digest.trim_start_matches("sha256:").to_string()
}

#[tokio::test]
async fn prune_keeps_what_images_and_containers_use() {
    require_root!();
    let f = Fixture::new().await;
    let blobs = f.data_dir().join("images/blobs/sha256");
    let snapshots = f.data_dir().join("snapshots");
    // A second image with a layer of its own.
    let other = oci_archive_with(f.dir.path(), "other:1", |b| {
        crate::common::symlink(b, "other-marker", "/bin/busybox")
    });
    f.rt.import_image(&other).await.expect("import other");
    let bb = f.rt.image_status("busybox:test").await.expect("status");
    let bb = bb.expect("busybox imported");
    let ot = f.rt.image_status("other:1").await.expect("status");
    let ot = ot.expect("other imported");
    let rec = |id: &str| {
        let p = f
            .data_dir()
            .join("images/records")
            .join(format!("{}.json", hex(id)));
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p).expect("record")).expect("record json");
        let layer = &v["layers"][0];
        (
            hex(layer["blob"].as_str().expect("blob")),
            hex(layer["diff_id"].as_str().expect("diff id")),
        )
    };
    let (bb_blob, bb_snap) = rec(&bb.id);
    let (ot_blob, ot_snap) = rec(&ot.id);

    // Import stored every archive file as a blob (index, manifests, oci-layout): garbage.
    let rep =
        f.rt.prune_images(PruneOptions::default())
            .await
            .expect("prune");
    assert!(rep.removed_blobs >= 4, "{rep:?}");
    assert_eq!(rep.removed_snapshots, 0);
    let want: BTreeSet<String> = [hex(&bb.id), bb_blob.clone(), hex(&ot.id), ot_blob.clone()]
        .into_iter()
        .collect();
    assert_eq!(names(&blobs), want);
    assert_eq!(
        names(&snapshots),
        [bb_snap.clone(), ot_snap.clone()].into_iter().collect()
    );

    // A running container of busybox, whose image then goes away.
    let sb = f.sandbox("gc").await;
    let cid =
        f.rt.create_container(&sb, &f.container("c", "sleep 600"))
            .await
            .expect("create");
    f.rt.start_container(&cid).await.expect("start");
    f.rt.remove_image(&bb.id).await.expect("remove busybox");
    f.rt.remove_image("other:1").await.expect("remove other");
    let rep =
        f.rt.prune_images(PruneOptions::default())
            .await
            .expect("prune");
    // Both layer blobs and the other config go; busybox's config stays with its container.
    assert_eq!(
        (rep.removed_blobs, rep.removed_snapshots),
        (3, 1),
        "{rep:?}"
    );
    assert!(rep.freed_bytes > 0);
    // The container's layers and image config stay; the other image is gone entirely.
    assert_eq!(names(&snapshots), [bb_snap.clone()].into_iter().collect());
    assert_eq!(names(&blobs), [hex(&bb.id)].into_iter().collect());
    let ex =
        f.rt.exec_sync(&cid, &["true".into()], std::time::Duration::from_secs(10))
            .await
            .expect("exec");
    assert_eq!(ex.exit_code, 0);

    // --all: an image no container uses goes; one a container uses stays.
    let again = crate::common::oci_archive(f.dir.path(), "busybox:test");
    f.rt.import_image(&again).await.expect("re-import busybox");
    f.rt.import_image(&other).await.expect("re-import other");
    let all = PruneOptions {
        unused_images: true,
    };
    let rep = f.rt.prune_images(all).await.expect("prune --all");
    assert_eq!(rep.removed_images, vec![ot.id.clone()], "{rep:?}");
    assert!(f
        .rt
        .image_status("busybox:test")
        .await
        .expect("st")
        .is_some());
    assert!(!names(&snapshots).contains(&ot_snap));

    // Once the container is gone, nothing holds busybox's layers but the image itself.
    f.rt.remove_pod_sandbox(&sb).await.expect("remove sandbox");
    f.rt.remove_image("busybox:test").await.expect("untag");
    let rep =
        f.rt.prune_images(PruneOptions::default())
            .await
            .expect("prune");
    assert_eq!(rep.removed_snapshots, 1, "{rep:?}");
    assert!(names(&snapshots).is_empty());
    assert!(names(&blobs).is_empty(), "{:?}", names(&blobs));
}
