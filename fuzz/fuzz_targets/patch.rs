//! Patch application: `original\0patch` as two JSON documents, applied as a strategic merge
//! patch (with the real merge keys of Pod and Deployment), a JSON merge patch and a JSON patch.
//! Errors must be 4xx; no panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == 0);
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
        return;
    };
    let (Ok(original), Ok(patch)) = (
        serde_json::from_slice::<Value>(a),
        serde_json::from_slice::<Value>(b),
    ) else {
        return;
    };
    for kind in ["Pod", "Deployment", "ConfigMap"] {
        if let Err(e) = apiserver::patch::strategic_merge(kind, &original, &patch) {
            assert!(e.code().is_client_error(), "strategic: {e}");
        }
    }
    let _ = apiserver::patch::merge_patch(&original, &patch);
    if let Err(e) = apiserver::patch::json_patch(&original, &patch) {
        assert!(e.code().is_client_error(), "json patch: {e}");
    }
});
