//! Bodies built by hand, laid out as Go's generated marshaller writes them: every value field
//! present even when empty, pointer fields only when set.

use serde_json::json;

use super::{envelope, Pb};
use crate::error::ApiError;
use crate::protobuf::decode;

/// ObjectMeta as Go writes it for a new object: empty strings, generation 0, an empty
/// creationTimestamp message.
fn new_meta(name: &str) -> Pb {
    Pb::new()
        .str(1, name)
        .str(2, "")
        .str(3, "")
        .str(4, "")
        .str(5, "")
        .str(6, "")
        .int(7, 0)
        .msg(8, Pb::new())
}

fn empty_container(name: &str, image: &str) -> Pb {
    Pb::new()
        .str(1, name)
        .str(2, image)
        .str(5, "")
        .msg(8, Pb::new()) // resources {}
        .str(13, "")
        .str(14, "")
        .int(16, 0)
        .int(17, 0)
        .int(18, 0)
        .str(20, "")
}

#[test]
fn deployment_go_layout_drops_zero_values_and_keeps_pointers() {
    let pod_spec = Pb::new()
        .msg(
            1,
            Pb::new()
                .str(1, "scratch")
                .msg(2, Pb::new().msg(2, Pb::new().str(1, ""))),
        )
        .msg(2, empty_container("nginx", "nginx"))
        .str(3, "Always")
        .int(4, 0) // terminationGracePeriodSeconds: pointer, explicitly 0
        .str(6, "")
        .str(8, "")
        .str(10, "")
        .int(11, 0)
        .msg(14, Pb::new()) // securityContext: pointer, empty
        .str(19, "");
    let spec = Pb::new()
        .int(1, 0)
        .msg(2, Pb::new().entry(1, "app", "web"))
        .msg(
            3,
            Pb::new()
                .msg(1, new_meta("").entry(11, "app", "web"))
                .msg(2, pod_spec),
        )
        .msg(
            4,
            Pb::new().str(1, "RollingUpdate").msg(
                2,
                Pb::new()
                    .msg(1, Pb::new().int(1, 0).int(2, 0).str(3, ""))
                    .msg(2, Pb::new().int(1, 1).int(2, 0).str(3, "25%")),
            ),
        )
        .int(5, 0)
        .int(7, 0);
    let raw = Pb::new()
        .msg(
            1,
            new_meta("web")
                .entry(11, "app", "web")
                .entry(12, "note", ""),
        )
        .msg(2, spec)
        .msg(3, Pb::new().int(1, 0)); // status: not decoded
    let got = decode(&envelope("apps/v1", "Deployment", raw)).expect("decode");
    let want = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"note": ""}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"volumes": [{"name": "scratch", "emptyDir": {}}],
                    "containers": [{"name": "nginx", "image": "nginx"}],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 0,
                    "securityContext": {}}},
            "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}}});
    assert_eq!(got, want);
}

#[test]
fn secret_with_binary_data_string_data_and_immutable_false() {
    let raw = Pb::new()
        .msg(
            1,
            new_meta("sh.helm.release.v1.demo.v1").entry(11, "owner", "helm"),
        )
        .msg(
            2,
            Pb::new()
                .str(1, "release")
                .bytes(2, &[0x1f, 0x8b, 0x08, 0x00, 0xff]),
        )
        .msg(2, Pb::new().str(1, "empty"))
        .str(3, "helm.sh/release.v1")
        .entry(4, "plain", "text")
        .int(5, 0);
    let got = decode(&envelope("v1", "Secret", raw)).expect("decode");
    assert_eq!(
        got,
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "sh.helm.release.v1.demo.v1", "labels": {"owner": "helm"}},
            "data": {"release": "H4sIAP8=", "empty": ""}, "type": "helm.sh/release.v1",
            "stringData": {"plain": "text"}, "immutable": false})
    );
}

#[test]
fn service_target_port_int_or_string() {
    let port = |name: &str, target: Pb| {
        Pb::new()
            .str(1, name)
            .str(2, "TCP")
            .int(3, 80)
            .msg(4, target)
            .int(5, 0)
    };
    let raw = Pb::new().msg(1, new_meta("svc")).msg(
        2,
        Pb::new()
            .msg(1, port("a", Pb::new().int(1, 0).int(2, 8080).str(3, "")))
            .msg(1, port("b", Pb::new().int(1, 1).int(2, 0).str(3, "http")))
            .msg(1, port("c", Pb::new().int(1, 0).int(2, 0).str(3, "")))
            .str(3, "")
            .str(4, "ClusterIP"),
    );
    let got = decode(&envelope("v1", "Service", raw)).expect("decode");
    assert_eq!(
        got["spec"],
        json!({"ports": [
            {"name": "a", "protocol": "TCP", "port": 80, "targetPort": 8080},
            {"name": "b", "protocol": "TCP", "port": 80, "targetPort": "http"},
            {"name": "c", "protocol": "TCP", "port": 80}],
            "type": "ClusterIP"})
    );
}

#[test]
fn hpa_v2_with_quantity_target_and_behavior() {
    let target = Pb::new()
        .str(1, "AverageValue")
        .msg(3, Pb::new().str(1, "500m"));
    let raw = Pb::new().msg(1, new_meta("web")).msg(
        2,
        Pb::new()
            .msg(
                1,
                Pb::new()
                    .str(1, "Deployment")
                    .str(2, "web")
                    .str(3, "apps/v1"),
            )
            .int(2, 1)
            .int(3, 4)
            .msg(
                4,
                Pb::new()
                    .str(1, "Resource")
                    .msg(4, Pb::new().str(1, "memory").msg(2, target)),
            )
            .msg(
                5,
                Pb::new().msg(
                    2,
                    Pb::new()
                        .int(3, 0)
                        .msg(2, Pb::new().str(1, "Pods").int(2, 1).int(3, 60)),
                ),
            ),
    );
    let got = decode(&envelope("autoscaling/v2", "HorizontalPodAutoscaler", raw)).expect("decode");
    assert_eq!(
        got["spec"],
        json!({"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
            "minReplicas": 1, "maxReplicas": 4,
            "metrics": [{"type": "Resource", "resource": {"name": "memory",
                "target": {"type": "AverageValue", "averageValue": "500m"}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0,
                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}})
    );
}

#[test]
fn self_subject_access_review_with_every_resource_attribute() {
    let attrs = Pb::new()
        .str(1, "ns")
        .str(2, "list")
        .str(3, "apps")
        .str(4, "v1")
        .str(5, "deployments")
        .str(6, "scale")
        .str(7, "")
        .msg(8, Pb::new().str(1, "metadata.name=x"))
        .msg(
            9,
            Pb::new().msg(
                2,
                Pb::new().str(1, "app").str(2, "In").str(3, "a").str(3, "b"),
            ),
        );
    let raw = Pb::new()
        .msg(1, new_meta(""))
        .msg(2, Pb::new().msg(1, attrs));
    let got = decode(&envelope(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        raw,
    ))
    .expect("decode");
    assert_eq!(
        got,
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": "ns", "verb": "list", "group": "apps",
                "version": "v1", "resource": "deployments", "subresource": "scale",
                "fieldSelector": {"rawSelector": "metadata.name=x"},
                "labelSelector": {"requirements": [{"key": "app", "operator": "In", "values": ["a", "b"]}]}}}})
    );
}

#[test]
fn delete_options_from_helm_keep_pointer_zeroes() {
    let raw = Pb::new()
        .int(1, 0)
        .msg(2, Pb::new().str(1, "1f2e").str(2, "42"))
        .str(4, "Background")
        .str(5, "All");
    for api_version in ["v1", "meta.k8s.io/v1"] {
        let got = decode(&envelope(api_version, "DeleteOptions", raw.clone())).expect("decode");
        assert_eq!(
            got,
            json!({"apiVersion": api_version, "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": "1f2e", "resourceVersion": "42"},
                "propagationPolicy": "Background", "dryRun": ["All"]})
        );
    }
}

#[test]
fn times_owner_references_and_managed_fields() {
    // 2026-11-22T12:00:00Z; Time drops the nanos, MicroTime keeps microseconds.
    let ts = |nanos: i64| Pb::new().int(1, 1_795_348_800).int(2, nanos);
    let meta = new_meta("holder")
        .msg(8, ts(999))
        .msg(
            13,
            Pb::new()
                .str(1, "ReplicaSet")
                .str(3, "rs")
                .str(4, "u1")
                .str(5, "apps/v1")
                .int(6, 1),
        )
        .str(14, "example.com/f")
        .msg(
            17,
            Pb::new()
                .str(1, "kubectl")
                .str(2, "Apply")
                .str(3, "v1")
                .msg(4, ts(0))
                .str(6, "FieldsV1")
                .msg(7, Pb::new().bytes(1, br#"{"f:spec":{}}"#)),
        );
    let raw = Pb::new()
        .msg(1, meta)
        .msg(2, Pb::new().str(1, "me").int(2, 15).msg(4, ts(123_456_789)));
    let got = decode(&envelope("coordination.k8s.io/v1", "Lease", raw)).expect("decode");
    assert_eq!(got["metadata"]["creationTimestamp"], "2026-11-22T12:00:00Z");
    assert_eq!(
        got["metadata"]["ownerReferences"],
        json!([{"kind": "ReplicaSet", "name": "rs", "uid": "u1", "apiVersion": "apps/v1", "controller": true}])
    );
    assert_eq!(got["metadata"]["finalizers"], json!(["example.com/f"]));
    assert_eq!(
        got["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:spec": {}})
    );
    assert_eq!(
        got["metadata"]["managedFields"][0]["time"],
        "2026-11-22T12:00:00Z"
    );
    assert_eq!(
        got["spec"],
        json!({"holderIdentity": "me", "leaseDurationSeconds": 15,
        "renewTime": "2026-11-22T12:00:00.123456Z"})
    );
}

#[test]
fn negative_ints_packed_lists_and_quantity_maps() {
    let pc = Pb::new()
        .msg(1, new_meta("low"))
        .int(2, -5)
        .int(3, 0)
        .str(4, "");
    let got = decode(&envelope("scheduling.k8s.io/v1", "PriorityClass", pc)).expect("decode");
    assert_eq!(got["value"], -5);
    // supplementalGroups packed (wire type 2) and unpacked; a resources map entry without value.
    let packed = Pb::new().bytes(4, &[1, 2]).int(4, 3);
    let container = empty_container("c", "i").msg(
        8,
        Pb::new()
            .msg(1, Pb::new().str(1, "cpu").msg(2, Pb::new().str(1, "250m")))
            .msg(2, Pb::new().str(1, "memory")),
    );
    let pod = Pb::new()
        .msg(1, new_meta("p"))
        .msg(2, Pb::new().msg(2, container).msg(14, packed));
    let got = decode(&envelope("v1", "Pod", pod)).expect("decode");
    assert_eq!(
        got["spec"]["securityContext"]["supplementalGroups"],
        json!([1, 2, 3])
    );
    assert_eq!(
        got["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "250m"}, "requests": {"memory": "0"}})
    );
}

#[test]
fn unknown_fields_of_every_wire_type_are_skipped() {
    let meta = new_meta("cm")
        .int(900, 7)
        .bytes(901, b"\xff\xfe")
        .msg(902, Pb::new().msg(1, Pb::new().int(1, 1)));
    let raw = Pb::new()
        .msg(1, meta)
        .entry(2, "k", "v")
        .fixed32(903, 1)
        .fixed64(904, 2);
    let got = decode(&envelope("v1", "ConfigMap", raw)).expect("decode");
    assert_eq!(
        got,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"k": "v"}})
    );
}

#[test]
fn unknown_kinds_are_unsupported_media_type() {
    for (v, k) in [
        ("v1", "Node"),
        ("apps/v2", "Deployment"),
        ("example.com/v1", "Widget"),
    ] {
        match decode(&envelope(v, k, Pb::new())) {
            Err(ApiError::UnsupportedMediaType(msg)) => {
                assert!(msg.contains(k) && msg.contains("application/json"), "{msg}")
            }
            other => panic!("{v} {k}: {other:?}"),
        }
    }
}
