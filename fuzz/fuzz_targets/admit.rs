//! The create/update path minus storage: strict field validation, defaulting and validation
//! of an arbitrary JSON object as each of several built-in kinds, then an update from the
//! result to the same input. Errors must be 4xx; no panics.
#![no_main]

use apiserver::registry::{prepare_create, prepare_update, WriteScope};
use apiserver::resources::Catalog;
use apiserver::schema::{check, FieldValidation};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(obj) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let catalog = Catalog::default();
    for (group, plural) in [
        ("", "pods"),
        ("", "services"),
        ("apps", "deployments"),
        ("batch", "jobs"),
        ("", "configmaps"),
        ("rbac.authorization.k8s.io", "roles"),
    ] {
        let Some(rt) = catalog.find(group, "v1", plural) else {
            continue;
        };
        let checked = match check(&rt.group, &rt.version, &rt.kind, obj.clone(), FieldValidation::Strict) {
            Ok((v, _)) => v,
            Err(e) => {
                assert!(e.code().is_client_error(), "{plural} check: {e}");
                continue;
            }
        };
        let ns = rt.namespaced.then_some("default");
        match prepare_create(&rt, ns, checked.clone()) {
            Ok(created) => {
                if let Err(e) = prepare_update(&rt, &created, checked, WriteScope::Main) {
                    assert!(e.code().is_client_error(), "{plural} update: {e}");
                }
            }
            Err(e) => assert!(e.code().is_client_error(), "{plural} create: {e}"),
        }
    }
});
