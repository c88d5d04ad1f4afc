//! events.k8s.io/v1 Events share storage with core/v1 Events, stored in the core form (as
//! upstream). The two differ in a few top-level field names; everything else is the same.

use serde_json::Value;

/// (events.k8s.io/v1 name, core/v1 name).
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

fn rename(mut obj: Value, to_core: bool, api_version: &str) -> Value {
    if let Some(m) = obj.as_object_mut() {
        for (new, core) in RENAMES {
            let (from, to) = if to_core { (new, core) } else { (core, new) };
            if let Some(v) = m.remove(*from) {
                m.insert((*to).to_string(), v);
            }
        }
        m.insert("apiVersion".into(), Value::String(api_version.into()));
    }
    obj
}

/// An events.k8s.io/v1 Event in the core/v1 form it is stored in.
pub fn to_core(obj: Value) -> Value {
    rename(obj, true, "v1")
}

/// A stored (core/v1) Event as events.k8s.io/v1 shows it.
pub fn from_core(obj: Value) -> Value {
    rename(obj, false, "events.k8s.io/v1")
}

/// A field selector path of events.k8s.io/v1 in the stored form (`regarding.name` ->
/// `involvedObject.name`).
pub fn core_field(field: &str) -> String {
    for (new, core) in RENAMES {
        if field == *new {
            return (*core).to_string();
        }
        if let Some(rest) = field.strip_prefix(&format!("{new}.")) {
            return format!("{core}.{rest}");
        }
    }
    field.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_and_fields() {
        let new = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "regarding": {"kind": "Pod", "name": "p"}, "note": "hi", "reason": "Started",
            "reportingController": "c", "deprecatedCount": 2});
        let core = to_core(new.clone());
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hi");
        assert_eq!(core["count"], 2);
        assert_eq!(core["reportingComponent"], "c");
        assert_eq!(core["apiVersion"], "v1");
        assert!(core.get("regarding").is_none());
        assert_eq!(from_core(core), new);
        assert_eq!(core_field("regarding.name"), "involvedObject.name");
        assert_eq!(core_field("reportingController"), "reportingComponent");
        assert_eq!(core_field("reason"), "reason");
    }
}
