//! Importing archives into the store: OCI layout (gzip layer) and docker save (plain layer).

use crate::common::{docker_archive, Fixture};
use crate::require_root;

#[tokio::test]
async fn oci_and_docker_archives_import_with_normalised_names() {
    require_root!();
    let f = Fixture::new().await;
    let st =
        f.rt.image_status("busybox:test")
            .await
            .expect("status")
            .expect("imported");
    assert_eq!(
        st.repo_tags,
        vec!["docker.io/library/busybox:test".to_string()]
    );
    assert_eq!(st.cmd, vec!["sh".to_string()]);
    assert!(st.env.contains(&"IMAGE_VAR=from-image".to_string()));
    let d = docker_archive(f.dir.path(), "example.com/team/bb:v1");
    let imported = f.rt.import_image(&d).await.expect("import docker archive");
    assert_eq!(imported.len(), 1);
    // Same layer and config: same image id, now with both names.
    assert_eq!(imported[0].id, st.id);
    let again =
        f.rt.image_status(&st.id)
            .await
            .expect("status")
            .expect("by id");
    assert!(
        again
            .repo_tags
            .contains(&"example.com/team/bb:v1".to_string()),
        "{:?}",
        again.repo_tags
    );
    assert_eq!(f.rt.list_images().await.expect("list").len(), 1);
    f.rt.remove_image("example.com/team/bb:v1")
        .await
        .expect("untag");
    assert!(f
        .rt
        .image_status("example.com/team/bb:v1")
        .await
        .expect("status")
        .is_none());
    assert!(f
        .rt
        .image_status("busybox:test")
        .await
        .expect("status")
        .is_some());
}
