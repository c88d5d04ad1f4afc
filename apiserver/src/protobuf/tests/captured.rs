//! Bodies real kubectl binaries sent (1.33 unless named `_kubectl132`), recorded with
//! docs/kubectl-stub.py and decoded here; the expected JSON is what the same object looks like
//! in its JSON form, minus the zero values of Go value fields.

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::protobuf::decode;

fn raw(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/src/protobuf/testdata/{name}.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn fixture(name: &str) -> Value {
    decode(&raw(name)).unwrap_or_else(|e| panic!("decode {name}: {e}"))
}

pub fn all_fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = format!("{}/src/protobuf/testdata", env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .expect("testdata dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .map(|p| {
            let name = p.file_stem().expect("stem").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read fixture"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_capture_decodes_with_its_type_meta() {
    let fixtures = all_fixtures();
    assert!(
        fixtures.len() >= 30,
        "testdata has {} captures",
        fixtures.len()
    );
    for (name, raw) in fixtures {
        let obj = decode(&raw).unwrap_or_else(|e| panic!("decode {name}: {e}"));
        assert!(
            obj["apiVersion"].is_string() && obj["kind"].is_string(),
            "{name}: {obj}"
        );
    }
}

#[test]
fn create_deployment_with_zero_replicas_keeps_replicas_and_drops_empty_fields() {
    let want = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}});
    assert_eq!(fixture("deployment_replicas0"), want);
    let old = fixture("deployment_kubectl132");
    assert_eq!(old["spec"]["replicas"], 0);
    assert_eq!(
        old["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx"
    );
}

#[test]
fn create_deployment_with_port() {
    let got = fixture("deployment_port");
    assert_eq!(got["spec"]["replicas"], 2);
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"],
        json!([{"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}])
    );
}

#[test]
fn create_secret_keeps_binary_data_as_base64() {
    assert_eq!(
        fixture("secret_generic_binary"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"bin": "AP/+IGJpbmFyeQ==", "k": "dg=="}})
    );
    assert_eq!(
        fixture("secret_docker_registry")["type"],
        "kubernetes.io/dockerconfigjson"
    );
    assert_eq!(
        fixture("configmap_binary")["binaryData"],
        json!({"bin": "AP/+IGJpbmFyeQ=="})
    );
    assert_eq!(fixture("configmap_binary")["data"], json!({"a": "b"}));
}

#[test]
fn create_service_target_port_int_and_string() {
    assert_eq!(
        fixture("service_clusterip")["spec"],
        json!({"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            "selector": {"app": "svc"}, "type": "ClusterIP"})
    );
    let np = fixture("service_nodeport_named_target");
    assert_eq!(np["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(np["spec"]["ports"][0]["nodePort"], 30080);
    assert_eq!(
        fixture("service_externalname")["spec"]["externalName"],
        "example.com"
    );
    assert_eq!(
        fixture("service_loadbalancer")["spec"]["type"],
        "LoadBalancer"
    );
}

#[test]
fn autoscale_v2_and_v1() {
    assert_eq!(
        fixture("hpa_v2"),
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                "minReplicas": 2, "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}}}]}})
    );
    let v1 = fixture("hpa_v1_kubectl132");
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
}

#[test]
fn auth_can_i_reviews() {
    assert_eq!(
        fixture("selfsubjectaccessreview_resource"),
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}}})
    );
    assert_eq!(
        fixture("selfsubjectaccessreview_nonresource")["spec"],
        json!({"nonResourceAttributes": {"path": "/healthz", "verb": "get"}})
    );
    assert_eq!(
        fixture("selfsubjectrulesreview")["spec"],
        json!({"namespace": "default"})
    );
}

#[test]
fn rbac_generators_keep_the_core_api_group_as_empty_string() {
    let role = fixture("role");
    assert_eq!(role["rules"][0]["apiGroups"], json!([""]));
    assert_eq!(role["rules"][1]["apiGroups"], json!(["apps"]));
    assert_eq!(
        fixture("rolebinding")["subjects"],
        json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"},
            {"kind": "ServiceAccount", "name": "sa", "namespace": "default"}])
    );
    assert_eq!(
        fixture("clusterrole_aggregation")["aggregationRule"],
        json!({"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate": "true"}}]})
    );
    assert_eq!(
        fixture("clusterrole_nonresource")["rules"][0]["nonResourceURLs"],
        json!(["/healthz"])
    );
    assert_eq!(
        fixture("clusterrolebinding")["roleRef"]["kind"],
        "ClusterRole"
    );
}

#[test]
fn other_generators() {
    assert_eq!(
        fixture("namespace"),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
    );
    assert_eq!(fixture("serviceaccount")["metadata"], json!({"name": "sa"}));
    assert_eq!(
        fixture("job")["spec"]["template"]["spec"]["restartPolicy"],
        "Never"
    );
    let cj = fixture("cronjob");
    assert_eq!(cj["spec"]["schedule"], "*/1 * * * *");
    assert_eq!(
        cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"],
        json!(["echo", "hi"])
    );
    assert_eq!(
        fixture("resourcequota")["spec"],
        json!({"hard": {"cpu": "1", "memory": "1Gi", "pods": "2"}, "scopes": ["BestEffort"]})
    );
    let pc = fixture("priorityclass");
    assert_eq!(
        (pc["value"].clone(), pc["preemptionPolicy"].clone()),
        (json!(1000), json!("Never"))
    );
    assert_eq!(fixture("pdb_min_available")["spec"]["minAvailable"], 1);
    assert_eq!(
        fixture("pdb_max_unavailable_percent")["spec"]["maxUnavailable"],
        "50%"
    );
    let ing = fixture("ingress");
    assert_eq!(ing["spec"]["ingressClassName"], "nginx");
    assert_eq!(
        ing["spec"]["rules"][0]["http"]["paths"][0],
        json!({"path": "/bar", "backend": {"service": {"name": "svc1", "port": {"number": 8080}}}, "pathType": "Exact"})
    );
    assert_eq!(
        fixture("tokenrequest")["spec"],
        json!({"expirationSeconds": 600})
    );
}

#[test]
fn every_prefix_of_every_capture_fails_cleanly_or_decodes() {
    for (name, raw) in all_fixtures() {
        for end in 0..raw.len() {
            match decode(&raw[..end]) {
                Ok(_) | Err(ApiError::BadRequest(_)) => {}
                Err(e) => panic!("{name}[..{end}]: unexpected error {e:?}"),
            }
        }
    }
}
