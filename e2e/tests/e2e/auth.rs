//! Authentication and RBAC through each kubectl: ServiceAccount tokens (`kubectl create
//! token`, and the token the kubelet mounts into pods), impersonation (`--as`), `auth can-i`
//! (with Roles, resourceNames and the aggregated `view` ClusterRole), `auth whoami`, upstream's
//! Forbidden messages, and tokens dying with their ServiceAccount or pod.

use std::time::Duration;

use anyhow::{ensure, Result};

use crate::harness::Cluster;

const IMAGE: &str = "k1s.local/busybox:latest";
const ROBOT: &str = "system:serviceaccount:demo:robot";

fn start(version: &str) -> Result<Option<Cluster>> {
    crate::harness::pod_cluster(Some(version), &[])
}

/// `kubectl auth can-i ... --as=<robot>`: "yes" (exit 0) or "no" (exit 1).
fn can_i(c: &Cluster, args: &[&str]) -> Result<bool> {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let as_robot = format!("--as={ROBOT}");
    all.push(&as_robot);
    let o = c.kubectl_raw(&all)?;
    let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
    match (o.status.code(), out.as_str()) {
        (Some(0), "yes") => Ok(true),
        (Some(1), "no") => Ok(false),
        other => anyhow::bail!(
            "can-i {args:?}: unexpected {other:?} {}",
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

fn auth(version: &str) -> Result<()> {
    let Some(c) = start(version)? else {
        return Ok(());
    };
    // Every namespace gets a default ServiceAccount and the CA ConfigMap at creation.
    c.kubectl(&["create", "namespace", "demo"])?;
    c.kubectl(&["-n", "demo", "get", "serviceaccount", "default"])?;
    let ca = c.kubectl(&[
        "-n",
        "demo",
        "get",
        "configmap",
        "kube-root-ca.crt",
        "-o",
        "jsonpath={.data.ca\\.crt}",
    ])?;
    ensure!(ca.contains("BEGIN CERTIFICATE"), "kube-root-ca.crt: {ca}");
    c.kubectl(&["-n", "demo", "create", "serviceaccount", "robot"])?;

    // Nothing is allowed until a binding says so.
    ensure!(!can_i(&c, &["list", "pods", "-n", "demo"])?);
    c.kubectl(&[
        "-n",
        "demo",
        "create",
        "role",
        "pod-reader",
        "--verb=get,list,watch",
        "--resource=pods",
    ])?;
    c.kubectl(&[
        "-n",
        "demo",
        "create",
        "rolebinding",
        "robot-reads-pods",
        "--role=pod-reader",
        "--serviceaccount=demo:robot",
    ])?;
    c.kubectl(&[
        "-n",
        "demo",
        "create",
        "role",
        "one-config",
        "--verb=get",
        "--resource=configmaps",
        "--resource-name=cfg",
    ])?;
    c.kubectl(&[
        "-n",
        "demo",
        "create",
        "rolebinding",
        "robot-one-config",
        "--role=one-config",
        "--serviceaccount=demo:robot",
    ])?;
    ensure!(can_i(&c, &["list", "pods", "-n", "demo"])?);
    ensure!(can_i(&c, &["get", "pods/anything", "-n", "demo"])?);
    ensure!(!can_i(&c, &["delete", "pods", "-n", "demo"])?);
    ensure!(!can_i(&c, &["list", "pods", "-n", "default"])?);
    ensure!(!can_i(&c, &["create", "pods/exec", "-n", "demo"])?);
    ensure!(can_i(&c, &["get", "configmaps/cfg", "-n", "demo"])?);
    ensure!(!can_i(&c, &["get", "configmaps/other", "-n", "demo"])?);
    // The aggregated `view` ClusterRole, bound in one namespace only.
    c.kubectl(&["create", "namespace", "shared"])?;
    c.kubectl(&[
        "-n",
        "shared",
        "create",
        "rolebinding",
        "robot-views",
        "--clusterrole=view",
        "--serviceaccount=demo:robot",
    ])?;
    ensure!(can_i(&c, &["list", "deployments.apps", "-n", "shared"])?);
    ensure!(can_i(
        &c,
        &["get", "pods", "--subresource=log", "-n", "shared"]
    )?);
    ensure!(!can_i(&c, &["create", "deployments.apps", "-n", "shared"])?);
    ensure!(!can_i(&c, &["list", "secrets", "-n", "shared"])?);
    let list = c.kubectl(&[
        "auth",
        "can-i",
        "--list",
        "-n",
        "demo",
        &format!("--as={ROBOT}"),
    ])?;
    ensure!(
        list.contains("pods") && list.contains("[get list watch]"),
        "{list}"
    );

    // A token from `kubectl create token` acts as the ServiceAccount.
    let token = c.kubectl(&["-n", "demo", "create", "token", "robot"])?;
    let token = token.trim();
    ensure!(token.split('.').count() == 3, "not a JWT: {token}");
    let tok = format!("--token={token}");
    c.kubectl(&[&tok, "-n", "demo", "get", "pods"])?;
    let who = c.kubectl(&[&tok, "auth", "whoami"])?;
    ensure!(
        who.contains(ROBOT) && who.contains("system:serviceaccounts:demo"),
        "{who}"
    );
    let err = c.kubectl_fail(&[&tok, "-n", "default", "get", "pods"], None)?;
    ensure!(
        err.contains(&format!("pods is forbidden: User \"{ROBOT}\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"")),
        "{err}"
    );
    let err = c.kubectl_fail(&[&tok, "-n", "demo", "delete", "pod", "nothing"], None)?;
    ensure!(
        err.contains(&format!(
            "pods \"nothing\" is forbidden: User \"{ROBOT}\" cannot delete resource \"pods\""
        )),
        "{err}"
    );
    // It may not impersonate anyone.
    let err = c.kubectl_fail(&[&tok, "get", "pods", "--as=system:admin"], None)?;
    ensure!(
        err.contains("cannot impersonate resource \"users\""),
        "{err}"
    );
    // Impersonating it from the admin identity gives the same answers.
    let err = c.kubectl_fail(
        &["-n", "default", "get", "pods", &format!("--as={ROBOT}")],
        None,
    )?;
    ensure!(
        err.contains("Forbidden") || err.contains("forbidden"),
        "{err}"
    );
    let err = c.kubectl_fail(
        &["-n", "demo", "create", "token", "robot", "--duration=10s"],
        None,
    )?;
    ensure!(
        err.contains("may not specify a duration less than 10 minutes"),
        "{err}"
    );

    // Pods get a bound token, the CA and the namespace; the token dies with the pod.
    let pod = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: demo}}
spec:
  serviceAccountName: robot
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {IMAGE}
    command: ["sleep", "3600"]
"#
    );
    c.apply(&pod)?;
    c.kubectl(&[
        "-n",
        "demo",
        "wait",
        "--for=condition=Ready",
        "pod/client",
        "--timeout=60s",
    ])?;
    let dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    let ns = c.kubectl(&[
        "-n",
        "demo",
        "exec",
        "client",
        "--",
        "cat",
        &format!("{dir}/namespace"),
    ])?;
    ensure!(ns == "demo", "namespace file: {ns:?}");
    let pod_ca = c.kubectl(&[
        "-n",
        "demo",
        "exec",
        "client",
        "--",
        "cat",
        &format!("{dir}/ca.crt"),
    ])?;
    ensure!(
        pod_ca == ca,
        "ca.crt in the pod differs from kube-root-ca.crt"
    );
    let pod_token = c.kubectl(&[
        "-n",
        "demo",
        "exec",
        "client",
        "--",
        "cat",
        &format!("{dir}/token"),
    ])?;
    let ptok = format!("--token={}", pod_token.trim());
    let who = c.kubectl(&[&ptok, "auth", "whoami"])?;
    ensure!(who.contains(ROBOT) && who.contains("client"), "{who}");
    let env = c.kubectl(&["-n", "demo", "exec", "client", "--", "env"])?;
    ensure!(env.contains("KUBERNETES_SERVICE_HOST="), "{env}");
    c.kubectl(&[
        "-n",
        "demo",
        "delete",
        "pod",
        "client",
        "--wait=true",
        "--timeout=60s",
    ])?;
    c.wait_for(
        "the pod's token to be rejected",
        Duration::from_secs(30),
        || {
            let o = c.kubectl_raw(&[&ptok, "-n", "demo", "get", "pods"])?;
            Ok(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("Unauthorized"))
        },
    )?;
    // A pod naming a ServiceAccount that does not exist is refused.
    let ghost = pod
        .replace("robot", "ghost")
        .replace("name: client", "name: ghost");
    let err = c.kubectl_fail(&["apply", "-f", "-"], Some(&ghost))?;
    ensure!(
        err.contains(
            "error looking up service account demo/ghost: serviceaccount \"ghost\" not found"
        ),
        "{err}"
    );
    // Escalation prevention: with rights to manage Roles and RoleBindings, the account may
    // grant only what it holds, unless it has `escalate` / `bind`.
    c.kubectl(&[
        "-n",
        "demo",
        "create",
        "role",
        "rbac-manager",
        "--verb=create,update,get",
        "--resource=roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io",
    ])?;
    c.kubectl(&[
        "-n",
        "demo",
        "create",
        "rolebinding",
        "robot-manages-rbac",
        "--role=rbac-manager",
        "--serviceaccount=demo:robot",
    ])?;
    let as_robot = format!("--as={ROBOT}");
    c.kubectl(&[
        &as_robot,
        "-n",
        "demo",
        "create",
        "role",
        "held",
        "--verb=get,list",
        "--resource=pods",
    ])?;
    let err = c.kubectl_fail(
        &[
            &as_robot,
            "-n",
            "demo",
            "create",
            "role",
            "more",
            "--verb=get,delete",
            "--resource=pods",
        ],
        None,
    )?;
    ensure!(
        err.contains("roles.rbac.authorization.k8s.io \"more\" is forbidden: user \"system:serviceaccount:demo:robot\"")
            && err.contains("is attempting to grant RBAC permissions not currently held:")
            && err.contains("{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}"),
        "{err}"
    );
    c.kubectl(&[
        &as_robot,
        "-n",
        "demo",
        "create",
        "rolebinding",
        "held-by-default",
        "--role=pod-reader",
        "--serviceaccount=demo:default",
    ])?;
    let err = c.kubectl_fail(
        &[
            &as_robot,
            "-n",
            "demo",
            "create",
            "rolebinding",
            "edit-for-default",
            "--clusterrole=edit",
            "--serviceaccount=demo:default",
        ],
        None,
    )?;
    ensure!(
        err.contains("is attempting to grant RBAC permissions not currently held"),
        "{err}"
    );
    c.kubectl(&[
        "-n",
        "demo",
        "create",
        "role",
        "may-bind-edit",
        "--verb=bind",
        "--resource=clusterroles.rbac.authorization.k8s.io",
        "--resource-name=edit",
    ])?;
    c.kubectl(&[
        "-n",
        "demo",
        "create",
        "rolebinding",
        "robot-binds-edit",
        "--role=may-bind-edit",
        "--serviceaccount=demo:robot",
    ])?;
    c.kubectl(&[
        &as_robot,
        "-n",
        "demo",
        "create",
        "rolebinding",
        "edit-for-default",
        "--clusterrole=edit",
        "--serviceaccount=demo:default",
    ])?;
    // A legacy token Secret is filled in at once; its token acts as the account and dies with
    // the Secret.
    let legacy = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: robot-token\n  namespace: demo\n  annotations:\n    kubernetes.io/service-account.name: robot\ntype: kubernetes.io/service-account-token\n";
    c.kubectl_stdin(&["apply", "-f", "-"], Some(legacy))?;
    let data = c.kubectl(&[
        "-n",
        "demo",
        "get",
        "secret",
        "robot-token",
        "-o",
        "go-template={{.data.namespace | base64decode}} {{.data.token | base64decode}}",
    ])?;
    let (ns, legacy_tok) = data.trim().split_once(' ').unwrap_or_default();
    ensure!(ns == "demo", "namespace not filled in: {data}");
    let ltok = format!("--token={legacy_tok}");
    let who = c.kubectl(&[&ltok, "auth", "whoami"])?;
    ensure!(who.contains(ROBOT), "{who}");
    let described = c.kubectl(&["-n", "demo", "describe", "secret", "robot-token"])?;
    ensure!(
        described.contains("ca.crt") && described.contains("kubernetes.io/service-account.uid"),
        "{described}"
    );
    c.kubectl(&["-n", "demo", "delete", "secret", "robot-token"])?;
    let o = c.kubectl_raw(&[&ltok, "-n", "demo", "get", "pods"])?;
    ensure!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("Unauthorized"),
        "legacy token still accepted after its Secret was deleted"
    );
    // Without the annotation naming the account it is invalid.
    let err = c.kubectl_fail(
        &["apply", "-f", "-"],
        Some(&legacy.replace(
            "  annotations:\n    kubernetes.io/service-account.name: robot\n",
            "",
        )),
    )?;
    ensure!(
        err.contains("metadata.annotations[kubernetes.io/service-account.name]: Required value"),
        "{err}"
    );
    // Deleting the ServiceAccount revokes its tokens.
    c.kubectl(&["-n", "demo", "delete", "serviceaccount", "robot"])?;
    let o = c.kubectl_raw(&[&tok, "-n", "demo", "get", "pods"])?;
    ensure!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("Unauthorized"),
        "token still accepted after its ServiceAccount was deleted"
    );
    Ok(())
}

#[test]
fn auth_kubectl_1_35() -> Result<()> {
    auth("1.35")
}

#[test]
fn auth_kubectl_1_32() -> Result<()> {
    auth("1.32")
}
