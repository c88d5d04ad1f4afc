//! Request body decoding: JSON, YAML (incl. alias bombs and multi-documents) and the protobuf
//! envelope must return a value or a 4xx error, never panic or run away. The first byte picks
//! the content type.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let ct = match sel % 3 {
        0 => "application/json",
        1 => "application/yaml",
        _ => "application/vnd.kubernetes.protobuf",
    };
    if let Err(e) = apiserver::handlers::body::parse(ct, body) {
        assert!(e.code().is_client_error(), "{ct}: {e} is not a 4xx");
    }
});
