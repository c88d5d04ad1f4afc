//! The API server through kubectl: the verbs and output of issue 2's acceptance list, with
//! every installed kubectl version.

use std::time::Duration;

use anyhow::Result;

use crate::harness::{kubectl_versions, require_root, Cluster};

const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        env: [{name: GREETING, value: hello}]
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: demo, labels: {tier: config}}
data: {a: "1"}
"#;

fn each_version(mut f: impl FnMut(&Cluster) -> Result<()>) -> Result<()> {
    if !require_root() {
        eprintln!("skipping: needs root");
        return Ok(());
    }
    for v in kubectl_versions() {
        eprintln!("== kubectl {v}");
        let c = Cluster::start(&v, &[])?;
        f(&c)?;
    }
    Ok(())
}

#[test]
fn apply_get_describe_patch_delete() -> Result<()> {
    each_version(|c| {
        let out = c.apply(APP)?;
        assert!(out.contains("deployment.apps/web created"), "{out}");
        let again = c.apply(APP)?;
        assert!(again.contains("deployment.apps/web unchanged"), "{again}");
        let changed = c.apply(
            &APP.replace("nginx:1.27", "nginx:1.28")
                .replace("hello", "world"),
        )?;
        assert!(
            changed.contains("deployment.apps/web configured"),
            "{changed}"
        );
        let img = c.kubectl(&["get", "deploy", "web", "-n", "demo", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env[0].value} {.metadata.generation}"])?;
        assert_eq!(img, "nginx:1.28 world 2");
        // Table output with upstream columns.
        let table = c.kubectl(&["get", "deploy,svc,cm", "-n", "demo"])?;
        assert!(
            table.contains("READY   UP-TO-DATE   AVAILABLE   AGE"),
            "{table}"
        );
        assert!(table.contains("TYPE        CLUSTER-IP"), "{table}");
        let wide = c.kubectl(&["get", "deploy", "-n", "demo", "-o", "wide"])?;
        assert!(
            wide.contains("SELECTOR") && wide.contains("app=web"),
            "{wide}"
        );
        let all = c.kubectl(&["get", "cm", "-A", "-l", "tier=config", "--show-labels"])?;
        assert!(all.contains("demo") && all.contains("tier=config"), "{all}");
        let fs = c.kubectl(&[
            "get",
            "cm",
            "-n",
            "demo",
            "--field-selector",
            "metadata.name=cfg",
            "-o",
            "name",
        ])?;
        assert_eq!(fs.trim(), "configmap/cfg");
        let bad = c.kubectl_fail(&["get", "pods", "--field-selector", "spec.bogus=1"], None)?;
        assert!(bad.contains("field label not supported"), "{bad}");
        let json = c.kubectl(&["get", "svc", "web", "-n", "demo", "-o", "json"])?;
        let v: serde_json::Value = serde_json::from_str(&json)?;
        assert!(
            v["spec"]["clusterIP"]
                .as_str()
                .is_some_and(|ip| ip.starts_with("10.43.")),
            "{json}"
        );
        assert_eq!(v["spec"]["ports"][0]["protocol"], "TCP");
        let d = c.kubectl(&["describe", "deploy", "web", "-n", "demo"])?;
        assert!(
            d.contains("RollingUpdate") && d.contains("25% max unavailable"),
            "{d}"
        );
        // label / annotate / patch in all three types / scale.
        c.kubectl(&["label", "cm", "cfg", "-n", "demo", "extra=yes"])?;
        c.kubectl(&["annotate", "cm", "cfg", "-n", "demo", "note=hi"])?;
        c.kubectl(&[
            "patch",
            "cm",
            "cfg",
            "-n",
            "demo",
            "-p",
            r#"{"data":{"b":"2"}}"#,
        ])?;
        c.kubectl(&[
            "patch",
            "cm",
            "cfg",
            "-n",
            "demo",
            "--type=merge",
            "-p",
            r#"{"data":{"a":null}}"#,
        ])?;
        c.kubectl(&[
            "patch",
            "cm",
            "cfg",
            "-n",
            "demo",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/data/c","value":"3"}]"#,
        ])?;
        let data = c.kubectl(&[
            "get",
            "cm",
            "cfg",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data} {.metadata.labels.extra} {.metadata.annotations.note}",
        ])?;
        assert_eq!(data, r#"{"b":"2","c":"3"} yes hi"#);
        let failed_test = c.kubectl_fail(
            &[
                "patch",
                "cm",
                "cfg",
                "-n",
                "demo",
                "--type=json",
                "-p",
                r#"[{"op":"test","path":"/data/b","value":"9"}]"#,
            ],
            None,
        )?;
        assert!(failed_test.contains("invalid"), "{failed_test}");
        c.kubectl(&["scale", "deploy", "web", "-n", "demo", "--replicas=4"])?;
        let r = c.kubectl(&[
            "get",
            "deploy",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.replicas}",
        ])?;
        assert_eq!(r, "4");
        // Errors are Statuses that kubectl prints.
        let nf = c.kubectl_fail(&["get", "deploy", "nope", "-n", "demo"], None)?;
        assert!(
            nf.contains(r#"Error from server (NotFound): deployments.apps "nope" not found"#),
            "{nf}"
        );
        let dup = c.kubectl_fail(
            &["create", "-f", "-"],
            Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: demo}\n"),
        )?;
        assert!(dup.contains("AlreadyExists"), "{dup}");
        let inv = c.kubectl_fail(
            &["apply", "-f", "-"],
            Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name, namespace: demo}\n"),
        )?;
        assert!(
            inv.contains("is invalid") && inv.contains("metadata.name"),
            "{inv}"
        );
        let no_ns = c.kubectl_fail(
            &["apply", "-f", "-"],
            Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: missing}\n"),
        )?;
        assert!(
            no_ns.contains("NotFound") && no_ns.contains("missing"),
            "{no_ns}"
        );
        // delete with --wait, cascade flags recorded.
        c.kubectl(&["delete", "cm", "cfg", "-n", "demo", "--wait"])?;
        let gone = c.kubectl_fail(&["get", "cm", "cfg", "-n", "demo"], None)?;
        assert!(gone.contains("NotFound"));
        c.kubectl(&[
            "delete",
            "svc",
            "web",
            "-n",
            "demo",
            "--cascade=orphan",
            "--wait=false",
        ])?;
        let fin = c
            .kubectl(&[
                "get",
                "svc",
                "web",
                "-n",
                "demo",
                "-o",
                "jsonpath={.metadata.finalizers}",
            ])
            .unwrap_or_default();
        assert!(fin.contains("orphan") || fin.is_empty(), "{fin}");
        Ok(())
    })
}

#[test]
fn server_side_apply_conflicts() -> Result<()> {
    each_version(|c| {
        c.apply(APP)?;
        let out = c.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(APP))?;
        assert!(out.contains("serverside-applied"), "{out}");
        c.kubectl(&["scale", "deploy", "web", "-n", "demo", "--replicas=5"])?;
        let err = c.kubectl_fail(&["apply", "--server-side", "-f", "-"], Some(APP))?;
        assert!(
            err.contains("Apply failed with 1 conflict") && err.contains(".spec.replicas"),
            "{err}"
        );
        let forced = c.kubectl_stdin(
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            Some(APP),
        )?;
        assert!(forced.contains("serverside-applied"), "{forced}");
        let r = c.kubectl(&[
            "get",
            "deploy",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.replicas}",
        ])?;
        assert_eq!(r, "2");
        // Create through apply (201) for a fresh object.
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa, namespace: demo}\ndata: {k: v}\n";
        let out = c.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(cm))?;
        assert!(out.contains("configmap/ssa serverside-applied"), "{out}");
        let mf = c.kubectl(&[
            "get",
            "cm",
            "ssa",
            "-n",
            "demo",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[0].manager}/{.metadata.managedFields[0].operation}",
        ])?;
        assert_eq!(mf, "kubectl/Apply");
        Ok(())
    })
}

#[test]
fn watch_and_wait() -> Result<()> {
    each_version(|c| {
        c.apply(APP)?;
        // get -w sees a change made while it runs.
        let ns = c.dir.path().join("watch.out");
        let kubectl = c.kubectl.clone();
        let kc = c.kubeconfig.clone();
        let out_file = std::fs::File::create(&ns)?;
        let mut w = std::process::Command::new("timeout")
            .args(["20", "nsenter"])
            .arg(format!("--net={}", c.netns_path()?))
            .arg("--")
            .arg(&kubectl)
            .args(["get", "cm", "-n", "demo", "-w"])
            .env("KUBECONFIG", &kc)
            .env("HOME", c.dir.path())
            .stdout(out_file)
            .spawn()?;
        c.wait_for("initial watch output", Duration::from_secs(10), || {
            Ok(std::fs::read_to_string(&ns)?.contains("cfg"))
        })?;
        c.kubectl(&["create", "cm", "later", "-n", "demo", "--from-literal=a=b"])
            .or_else(|_| {
                c.apply(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later, namespace: demo}\n",
                )
            })?;
        c.wait_for("watched change", Duration::from_secs(10), || {
            Ok(std::fs::read_to_string(&ns)?.contains("later"))
        })?;
        let _ = w.kill();
        let _ = w.wait();
        // wait --for=jsonpath, condition and delete.
        c.kubectl(&["label", "cm", "later", "-n", "demo", "ready=yes"])?;
        let out = c.kubectl(&[
            "wait",
            "cm/later",
            "-n",
            "demo",
            "--for=jsonpath={.metadata.labels.ready}=yes",
            "--timeout=10s",
        ])?;
        assert!(out.contains("condition met"), "{out}");
        c.kubectl(&["delete", "cm", "later", "-n", "demo", "--wait=false"])?;
        let out = c
            .kubectl(&[
                "wait",
                "cm/later",
                "-n",
                "demo",
                "--for=delete",
                "--timeout=10s",
            ])
            .unwrap_or_else(|e| e.to_string());
        assert!(
            out.contains("condition met") || out.contains("NotFound") || out.is_empty(),
            "{out}"
        );
        Ok(())
    })
}

#[test]
fn discovery_and_namespaces() -> Result<()> {
    each_version(|c| {
        let res = c.kubectl(&["api-resources"])?;
        for want in [
            "deployments",
            "deploy",
            "apps/v1",
            "horizontalpodautoscalers",
            "customresourcedefinitions",
        ] {
            assert!(res.contains(want), "{want} missing:\n{res}");
        }
        let vers = c.kubectl(&["api-versions"])?;
        assert!(
            vers.contains("apps/v1")
                && vers.contains("batch/v1")
                && vers.contains("autoscaling/v2"),
            "{vers}"
        );
        let ns = c.kubectl(&["get", "ns"])?;
        assert!(ns.contains("kube-system") && ns.contains("Active"), "{ns}");
        c.apply(APP)?;
        c.kubectl(&["delete", "ns", "demo", "--wait=false"])?;
        let phase = c
            .kubectl(&["get", "ns", "demo", "-o", "jsonpath={.status.phase}"])
            .unwrap_or_default();
        assert!(phase == "Terminating" || phase.is_empty(), "{phase}");
        c.wait_for("namespace demo gone", Duration::from_secs(20), || {
            Ok(c.kubectl_fail(&["get", "ns", "demo"], None).is_ok())
        })?;
        let left = c
            .kubectl(&["get", "deploy,svc,cm", "-n", "demo", "-o", "name"])
            .unwrap_or_default();
        assert!(left.trim().is_empty(), "{left}");
        let unauth = c.in_netns(
            std::path::Path::new("curl"),
            &[
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("https://127.0.0.1:{}/api/v1/pods", c.port()),
            ],
            None,
        )?;
        assert_eq!(String::from_utf8_lossy(&unauth.stdout), "401");
        Ok(())
    })
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: default}
spec: {size: 3}
"#;

#[test]
fn custom_resources() -> Result<()> {
    each_version(|c| {
        // kubectl may need a second pass while discovery catches up with the new CRD, as on a
        // real cluster; the CRD itself must be established at once.
        let first = c.kubectl_stdin(&["apply", "-f", "-"], Some(CRD));
        if first.is_err() {
            c.apply(CRD)?;
        }
        let got = c.kubectl(&["get", "widgets", "-o", "jsonpath={.items[0].spec.size}"])?;
        assert_eq!(got, "3");
        let short = c.kubectl(&["get", "wd"])?;
        assert!(short.contains("w1"), "{short}");
        let est = c.kubectl(&[
            "get",
            "crd",
            "widgets.example.com",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
        ])?;
        assert_eq!(est, "True");
        c.kubectl(&[
            "patch",
            "widget",
            "w1",
            "--type=merge",
            "-p",
            r#"{"spec":{"size":4}}"#,
        ])?;
        let smp = c.kubectl_fail(
            &[
                "patch",
                "widget",
                "w1",
                "--type=strategic",
                "-p",
                r#"{"spec":{"size":5}}"#,
            ],
            None,
        )?;
        assert!(
            smp.contains("UnsupportedMediaType")
                || smp.contains("unknown format")
                || smp.contains("not supported"),
            "{smp}"
        );
        c.kubectl(&["delete", "crd", "widgets.example.com"])?;
        c.wait_for(
            "widgets gone from discovery",
            Duration::from_secs(10),
            || Ok(c.kubectl_fail(&["get", "widgets"], None).is_ok()),
        )?;
        Ok(())
    })
}

/// `kubectl create <generator>`, `autoscale` and `auth can-i` send protobuf bodies.
#[test]
fn generators_send_protobuf() -> Result<()> {
    each_version(|c| {
        c.kubectl(&["create", "namespace", "gen"])?;
        c.kubectl(&[
            "create",
            "deployment",
            "web",
            "-n",
            "gen",
            "--image=nginx:1.27",
            "--replicas=0",
        ])?;
        let r = c.kubectl(&[
            "get",
            "deploy",
            "web",
            "-n",
            "gen",
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}",
        ])?;
        assert_eq!(r, "0 nginx:1.27");
        c.kubectl(&[
            "create",
            "configmap",
            "cm",
            "-n",
            "gen",
            "--from-literal=a=1",
        ])?;
        c.kubectl(&[
            "create",
            "secret",
            "generic",
            "s",
            "-n",
            "gen",
            "--from-literal=p=secret",
        ])?;
        let s = c.kubectl(&[
            "get",
            "secret",
            "s",
            "-n",
            "gen",
            "-o",
            "jsonpath={.data.p}",
        ])?;
        assert_eq!(s, "c2VjcmV0");
        c.kubectl(&[
            "create",
            "service",
            "clusterip",
            "svc",
            "-n",
            "gen",
            "--tcp=80:8080",
        ])?;
        let ip = c.kubectl(&[
            "get",
            "svc",
            "svc",
            "-n",
            "gen",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])?;
        assert!(ip.starts_with("10.43."), "{ip}");
        c.kubectl(&["create", "serviceaccount", "sa", "-n", "gen"])?;
        c.kubectl(&[
            "create",
            "role",
            "r",
            "-n",
            "gen",
            "--verb=get",
            "--resource=pods",
        ])?;
        c.kubectl(&[
            "create",
            "rolebinding",
            "rb",
            "-n",
            "gen",
            "--role=r",
            "--serviceaccount=gen:sa",
        ])?;
        c.kubectl(&["create", "job", "j", "-n", "gen", "--image=busybox"])?;
        // kubectl 1.35 spells it --cpu=80%, 1.32 --cpu-percent=80.
        c.kubectl(&[
            "autoscale",
            "deploy",
            "web",
            "-n",
            "gen",
            "--min=1",
            "--max=3",
            "--cpu=80%",
        ])
        .or_else(|_| {
            c.kubectl(&[
                "autoscale",
                "deploy",
                "web",
                "-n",
                "gen",
                "--min=1",
                "--max=3",
                "--cpu-percent=80",
            ])
        })?;
        let hpa = c.kubectl(&[
            "get",
            "hpa",
            "web",
            "-n",
            "gen",
            "-o",
            "jsonpath={.spec.maxReplicas}",
        ])?;
        assert_eq!(hpa, "3");
        let can = c.kubectl(&["auth", "can-i", "create", "pods"])?;
        assert_eq!(can.trim(), "yes");
        Ok(())
    })
}

const DESCRIBED_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        description: A gadget for tests.
        properties:
          spec:
            type: object
            description: What the gadget should be.
            properties:
              size: {type: integer, description: How big the gadget is.}
"#;

/// `kubectl explain` (built-in kinds and a CRD, from the OpenAPI v3 schemas), `edit` with a
/// scripted editor, and `diff` (exit 1 with a change, 0 without).
#[test]
fn explain_edit_diff() -> Result<()> {
    each_version(|c| {
        let pods = c.kubectl(&["explain", "pods"])?;
        assert!(
            pods.contains("KIND:") && pods.contains("Pod is a collection of containers"),
            "{pods}"
        );
        let ru = c.kubectl(&["explain", "deployment.spec.strategy.rollingUpdate"])?;
        assert!(
            ru.contains("maxSurge") && ru.contains("maxUnavailable"),
            "{ru}"
        );
        let rec = c.kubectl(&["explain", "pod.spec.containers", "--recursive"])?;
        assert!(
            rec.contains("livenessProbe") && rec.contains("httpGet"),
            "{rec}"
        );
        let first = c.kubectl_stdin(&["apply", "-f", "-"], Some(DESCRIBED_CRD));
        if first.is_err() {
            c.apply(DESCRIBED_CRD)?;
        }
        c.wait_for("gadgets explained", Duration::from_secs(10), || {
            let out = c.kubectl(&["explain", "gadgets.spec"]).unwrap_or_default();
            Ok(out.contains("How big the gadget is."))
        })?;

        c.apply(APP)?;
        let edited = c.in_netns(
            std::path::Path::new("env"),
            &[
                "KUBE_EDITOR=sed -i s/replicas:\\ 2/replicas:\\ 3/",
                &c.kubectl.to_string_lossy(),
                "-n",
                "demo",
                "edit",
                "deployment",
                "web",
            ],
            None,
        )?;
        assert!(
            edited.status.success(),
            "edit: {}",
            String::from_utf8_lossy(&edited.stderr)
        );
        let replicas = c.kubectl(&[
            "-n",
            "demo",
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.replicas}",
        ])?;
        assert_eq!(replicas, "3");
        let changed = APP.replace("replicas: 2", "replicas: 5");
        let o = c.in_netns(&c.kubectl.clone(), &["diff", "-f", "-"], Some(&changed))?;
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("+  replicas: 5"), "{out}");
        let current = APP.replace("replicas: 2", "replicas: 3");
        let o = c.in_netns(&c.kubectl.clone(), &["diff", "-f", "-"], Some(&current))?;
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        Ok(())
    })
}

/// events.k8s.io/v1 and core/v1 are two views of the same Events: each sees what the other
/// wrote, in its own field names, and field selectors of either version match.
#[test]
fn events_in_both_versions() -> Result<()> {
    each_version(|c| {
        let new_style = "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata:\n  name: ev-new\n  namespace: default\neventTime: \"2026-01-02T03:04:05.000000Z\"\nreportingController: example.com/ctl\nreportingInstance: ctl-1\naction: Testing\nreason: Written\ntype: Normal\nnote: written through events.k8s.io\nregarding:\n  kind: Pod\n  name: target\n  namespace: default\n";
        c.kubectl_stdin(&["apply", "-f", "-"], Some(new_style))?;
        let core = c.kubectl(&[
            "get",
            "events.v1.",
            "ev-new",
            "-o",
            "jsonpath={.involvedObject.name}|{.message}|{.reportingComponent}",
        ])?;
        assert_eq!(core, "target|written through events.k8s.io|example.com/ctl");
        let listed = c.kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=target",
        ])?;
        assert!(
            listed.contains("pod/target") && listed.contains("written through events.k8s.io"),
            "{listed}"
        );
        let old_style = "apiVersion: v1\nkind: Event\nmetadata:\n  name: ev-old\n  namespace: default\ninvolvedObject:\n  kind: Pod\n  name: other\n  namespace: default\nreason: Old\ntype: Warning\nmessage: written through core\ncount: 3\n";
        c.kubectl_stdin(&["apply", "-f", "-"], Some(old_style))?;
        let new = c.kubectl(&[
            "get",
            "events.v1.events.k8s.io",
            "ev-old",
            "-o",
            "jsonpath={.regarding.name}|{.note}|{.deprecatedCount}|{.apiVersion}",
        ])?;
        assert_eq!(new, "other|written through core|3|events.k8s.io/v1");
        let by_regarding = c.kubectl(&[
            "get",
            "events.v1.events.k8s.io",
            "--field-selector",
            "regarding.name=other",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])?;
        assert_eq!(by_regarding, "ev-old");
        // A merge patch in the events.k8s.io names lands in the core fields.
        c.kubectl(&[
            "patch",
            "events.v1.events.k8s.io",
            "ev-new",
            "--type=merge",
            "-p",
            r#"{"note":"patched"}"#,
        ])?;
        let msg = c.kubectl(&["get", "events.v1.", "ev-new", "-o", "jsonpath={.message}"])?;
        assert_eq!(msg, "patched");
        Ok(())
    })
}
