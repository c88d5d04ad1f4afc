//! helm 4 and helm 3 against k1s: install, upgrade, rollback, list, status, history and
//! uninstall of a chart with a Deployment, Service, ConfigMap, Secret, ServiceAccount,
//! Role/RoleBinding and a CRD (from `crds/`) with a custom resource of it.

use std::path::Path;

use anyhow::{bail, ensure, Result};

use crate::harness::{require_root, tools_dir, Cluster};

const CHART: &str = "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: \"1.0\"\n";
const VALUES: &str = "replicas: 1\nmessage: hello\n";
const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gizmos.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gizmos, singular: gizmo, kind: Gizmo}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;
const TEMPLATES: &str = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-config}
data: {message: {{ .Values.message | quote }}}
---
apiVersion: v1
kind: Secret
metadata: {name: {{ .Release.Name }}-secret}
stringData: {password: s3cret}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: {{ .Release.Name }}-sa}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: {{ .Release.Name }}-reader}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: {{ .Release.Name }}-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: {{ .Release.Name }}-reader}
subjects: [{kind: ServiceAccount, name: {{ .Release.Name }}-sa, namespace: {{ .Release.Namespace }}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: {{ .Release.Name }}-web}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: {{ .Release.Name }}-web}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}-web}}
    spec:
      serviceAccountName: {{ .Release.Name }}-sa
      containers: [{name: web, image: k1s.local/busybox:latest, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Service
metadata: {name: {{ .Release.Name }}-web}
spec:
  selector: {app: {{ .Release.Name }}-web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: example.com/v1
kind: Gizmo
metadata: {name: {{ .Release.Name }}-gizmo}
spec: {size: {{ .Values.replicas }}}
"#;

fn write_chart(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir.join("templates"))?;
    std::fs::create_dir_all(dir.join("crds"))?;
    std::fs::write(dir.join("Chart.yaml"), CHART)?;
    std::fs::write(dir.join("values.yaml"), VALUES)?;
    std::fs::write(dir.join("crds/gizmos.yaml"), CRD)?;
    std::fs::write(dir.join("templates/all.yaml"), TEMPLATES)?;
    Ok(())
}

fn helm(c: &Cluster, bin: &Path, args: &[&str]) -> Result<String> {
    let o = c.in_netns(bin, args, None)?;
    if !o.status.success() {
        bail!(
            "helm {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).to_string())
}

fn get(c: &Cluster, what: &[&str], path: &str) -> Result<String> {
    let mut args = vec!["-n", "apps", "get"];
    args.extend_from_slice(what);
    let jp = format!("jsonpath={path}");
    args.extend_from_slice(&["-o", &jp]);
    c.kubectl(&args)
}

fn chart_lifecycle(helm_name: &str, kubectl: &str) -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let bin = tools_dir().join(helm_name);
    if !bin.exists() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "{} is missing: run the tests through scripts/test.sh",
                bin.display()
            );
        }
        eprintln!("skipping: {} not installed", bin.display());
        return Ok(());
    }
    let c = Cluster::start(kubectl, &[])?;
    let dir = tempfile::tempdir()?;
    let chart = dir.path().join("demo");
    write_chart(&chart)?;
    let chart = chart.to_string_lossy().to_string();

    let out = helm(
        &c,
        &bin,
        &[
            "install",
            "demo",
            &chart,
            "-n",
            "apps",
            "--create-namespace",
        ],
    )?;
    ensure!(out.contains("STATUS: deployed"), "{out}");
    ensure!(get(&c, &["configmap", "demo-config"], "{.data.message}")? == "hello");
    ensure!(get(&c, &["gizmo", "demo-gizmo"], "{.spec.size}")? == "1");
    ensure!(
        get(
            &c,
            &["deploy", "demo-web"],
            "{.spec.template.spec.serviceAccountName}"
        )? == "demo-sa"
    );
    for what in [
        ["secret", "demo-secret"],
        ["serviceaccount", "demo-sa"],
        ["role", "demo-reader"],
        ["rolebinding", "demo-reader"],
        ["service", "demo-web"],
    ] {
        get(&c, &what, "{.metadata.name}")?;
    }

    let out = helm(
        &c,
        &bin,
        &[
            "upgrade",
            "demo",
            &chart,
            "-n",
            "apps",
            "--set",
            "replicas=2",
            "--set",
            "message=bye",
        ],
    )?;
    ensure!(out.contains("REVISION: 2"), "{out}");
    ensure!(get(&c, &["configmap", "demo-config"], "{.data.message}")? == "bye");
    ensure!(get(&c, &["deploy", "demo-web"], "{.spec.replicas}")? == "2");
    ensure!(get(&c, &["gizmo", "demo-gizmo"], "{.spec.size}")? == "2");

    helm(&c, &bin, &["rollback", "demo", "1", "-n", "apps"])?;
    ensure!(get(&c, &["configmap", "demo-config"], "{.data.message}")? == "hello");
    ensure!(get(&c, &["deploy", "demo-web"], "{.spec.replicas}")? == "1");
    let history = helm(&c, &bin, &["history", "demo", "-n", "apps"])?;
    ensure!(
        history.lines().count() == 4
            && history.contains("superseded")
            && history.contains("deployed"),
        "{history}"
    );
    let list = helm(&c, &bin, &["list", "-n", "apps"])?;
    ensure!(
        list.contains("demo") && list.contains("deployed") && list.contains("demo-0.1.0"),
        "{list}"
    );
    let status = helm(&c, &bin, &["status", "demo", "-n", "apps"])?;
    ensure!(status.contains("REVISION: 3"), "{status}");

    helm(&c, &bin, &["uninstall", "demo", "-n", "apps"])?;
    let left = c.kubectl(&[
        "-n",
        "apps",
        "get",
        "deploy,svc,secret,role,rolebinding,gizmo",
        "-o",
        "name",
    ])?;
    ensure!(left.trim().is_empty(), "left after uninstall: {left}");
    let cms = c.kubectl(&["-n", "apps", "get", "configmap", "-o", "name"])?;
    ensure!(cms.trim() == "configmap/kube-root-ca.crt", "{cms}");
    // helm keeps CRDs on uninstall, as upstream documents.
    c.kubectl(&["get", "crd", "gizmos.example.com"])?;
    let list = helm(&c, &bin, &["list", "-n", "apps"])?;
    ensure!(!list.contains("demo"), "{list}");
    Ok(())
}

#[test]
fn helm4_chart_lifecycle() -> Result<()> {
    chart_lifecycle("helm-4", "1.35")
}

#[test]
fn helm3_chart_lifecycle() -> Result<()> {
    chart_lifecycle("helm-3", "1.32")
}
