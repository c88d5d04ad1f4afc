//! Label and field selector parsing and matching: `selector\0object` (object as JSON).
#![no_main]

use apiserver::selectors::{FieldSelector, LabelSelector};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == 0);
    let Some(sel) = parts.next().and_then(|s| std::str::from_utf8(s).ok()) else {
        return;
    };
    let obj = parts
        .next()
        .and_then(|o| serde_json::from_slice::<Value>(o).ok())
        .unwrap_or_else(|| json!({"metadata": {"name": "a", "labels": {"app": "web"}}}));
    match LabelSelector::parse(sel) {
        Ok(l) => {
            let _ = l.matches(&obj);
        }
        Err(e) => assert!(e.code().is_client_error(), "{e}"),
    }
    for kind in ["Pod", "Event", "Secret", "Namespace"] {
        match FieldSelector::parse(sel, kind) {
            Ok(f) => {
                let _ = f.matches(&obj);
                let _ = f.exact_name();
            }
            Err(e) => assert!(e.code().is_client_error(), "{e}"),
        }
    }
});
