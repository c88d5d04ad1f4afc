//! Writes `$OUT_DIR/openapi-schemas.json.gz`: the OpenAPI v3 component schemas (with upstream's
//! descriptions, from k8s-openapi's `schemars` impls) of every built-in kind the server serves,
//! plus a list of which schema is the root of which group/version/kind. The server serves
//! `/openapi/v3/...` documents from it (`kubectl explain`), and only carries the compressed
//! document, not the code that generates it.

use std::io::Write;

use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use k8s_openapi::Resource;
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Value};

struct Gen {
    generator: schemars::SchemaGenerator,
    roots: Vec<Value>,
}

impl Gen {
    fn add<T: Resource + JsonSchema>(&mut self) {
        let schema = self.generator.subschema_for::<T>();
        let reference = schema
            .as_object()
            .and_then(|o| o.get("$ref"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim_start_matches("#/components/schemas/")
            .to_string();
        self.roots
            .push(json!([T::GROUP, T::VERSION, T::KIND, reference]));
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let mut g = Gen {
        generator: SchemaSettings::openapi3().into_generator(),
        roots: Vec::new(),
    };
    g.add::<api::core::v1::Pod>();
    g.add::<api::core::v1::Service>();
    g.add::<api::core::v1::Endpoints>();
    g.add::<api::core::v1::ConfigMap>();
    g.add::<api::core::v1::Secret>();
    g.add::<api::core::v1::Namespace>();
    g.add::<api::core::v1::Node>();
    g.add::<api::core::v1::ServiceAccount>();
    g.add::<api::core::v1::Event>();
    g.add::<api::core::v1::PersistentVolumeClaim>();
    g.add::<api::core::v1::PersistentVolume>();
    g.add::<api::core::v1::LimitRange>();
    g.add::<api::core::v1::ResourceQuota>();
    g.add::<api::core::v1::ReplicationController>();
    g.add::<api::core::v1::PodTemplate>();
    g.add::<api::apps::v1::Deployment>();
    g.add::<api::apps::v1::ReplicaSet>();
    g.add::<api::apps::v1::StatefulSet>();
    g.add::<api::apps::v1::DaemonSet>();
    g.add::<api::apps::v1::ControllerRevision>();
    g.add::<api::batch::v1::Job>();
    g.add::<api::batch::v1::CronJob>();
    g.add::<api::autoscaling::v1::HorizontalPodAutoscaler>();
    g.add::<api::autoscaling::v2::HorizontalPodAutoscaler>();
    g.add::<api::networking::v1::Ingress>();
    g.add::<api::networking::v1::IngressClass>();
    g.add::<api::networking::v1::NetworkPolicy>();
    g.add::<api::discovery::v1::EndpointSlice>();
    g.add::<api::events::v1::Event>();
    g.add::<api::coordination::v1::Lease>();
    g.add::<api::rbac::v1::Role>();
    g.add::<api::rbac::v1::RoleBinding>();
    g.add::<api::rbac::v1::ClusterRole>();
    g.add::<api::rbac::v1::ClusterRoleBinding>();
    g.add::<api::storage::v1::StorageClass>();
    g.add::<api::node::v1::RuntimeClass>();
    g.add::<api::policy::v1::PodDisruptionBudget>();
    g.add::<api::scheduling::v1::PriorityClass>();
    g.add::<apiext::CustomResourceDefinition>();
    let schemas = g.generator.take_definitions(true);
    let doc = json!({"roots": g.roots, "schemas": schemas});
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"))
        .join("openapi-schemas.json.gz");
    let file = std::fs::File::create(&out).expect("create openapi-schemas.json.gz");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    gz.write_all(doc.to_string().as_bytes())
        .expect("write openapi-schemas.json.gz");
    gz.finish().expect("finish openapi-schemas.json.gz");
}
