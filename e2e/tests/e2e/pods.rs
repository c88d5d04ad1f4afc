//! Pods run for real: `kubectl apply` gives a running container with a pod IP; the restart
//! policy matrix gives upstream's phases; a missing command is a StartError; deletion stops
//! the container and removes the pod.

use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;

use crate::harness::Cluster;

const IMAGE: &str = "k1s.local/busybox:latest";

fn cluster() -> Result<Option<Cluster>> {
    crate::harness::pod_cluster(None, &[])
}

fn pod(name: &str, restart: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: {restart}\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: c\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", {script:?}]\n"
    )
}

fn jsonpath(c: &Cluster, name: &str, path: &str) -> String {
    c.kubectl(&["get", "pod", name, "-o", &format!("jsonpath={path}")])
        .unwrap_or_default()
}

#[test]
fn pod_runs_with_an_ip_and_is_deleted() -> Result<()> {
    let Some(c) = cluster()? else { return Ok(()) };
    c.wait_node_ready()?;
    c.apply(&pod(
        "web",
        "Always",
        "trap 'exit 0' TERM; echo started; while true; do sleep 1; done",
    ))?;
    c.wait_for("pod Running", Duration::from_secs(60), || {
        Ok(jsonpath(&c, "web", "{.status.phase}") == "Running")
    })?;
    let ip = jsonpath(&c, "web", "{.status.podIP}");
    assert!(ip.starts_with("10.42.0."), "pod IP {ip}");
    let ready = jsonpath(
        &c,
        "web",
        "{.status.conditions[?(@.type==\"Ready\")].status}",
    );
    assert_eq!(ready, "True");
    let table = c.kubectl(&["get", "pod", "web", "-o", "wide"])?;
    assert!(
        table.contains("1/1") && table.contains("Running") && table.contains(&ip),
        "{table}"
    );
    let events = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=web",
        "-o",
        "jsonpath={.items[*].reason}",
    ])?;
    for want in ["Scheduled", "Created", "Started"] {
        assert!(events.contains(want), "{want} missing from {events}");
    }
    c.kubectl(&["delete", "pod", "web", "--timeout=60s"])?;
    let gone = c.kubectl_fail(&["get", "pod", "web"], None)?;
    assert!(gone.contains("NotFound"), "{gone}");
    Ok(())
}

/// A sandbox whose network cannot be wired (the bridge is gone) is removed and made again,
/// with FailedCreatePodSandBox events, and its container never starts; sandboxes do not pile
/// up, and deleting the pod leaves no sandbox and no veth.
#[test]
fn a_sandbox_without_its_network_is_replaced_not_run() -> Result<()> {
    let Some(c) = cluster()? else { return Ok(()) };
    c.wait_node_ready()?;
    let ip = std::path::Path::new("ip");
    let del = c.in_netns(ip, &["link", "del", "k1s0"], None)?;
    assert!(
        del.status.success(),
        "{}",
        String::from_utf8_lossy(&del.stderr)
    );
    c.apply(&pod("nonet", "Always", "sleep 1000"))?;
    let failures = || -> Result<u64> {
        let counts = c.events_about(
            "nonet",
            "jsonpath={range .items[?(@.reason==\"FailedCreatePodSandBox\")]}{.count} {.message}{\"\\n\"}{end}",
        )?;
        Ok(counts
            .lines()
            .filter(|l| l.contains("failed to set up the pod network"))
            .filter_map(|l| l.split(' ').next()?.parse::<u64>().ok())
            .sum())
    };
    c.wait_for("two failed sandboxes", Duration::from_secs(60), || {
        Ok(failures()? >= 2)
    })?;
    assert_ne!(jsonpath(&c, "nonet", "{.status.phase}"), "Running");
    assert!(c.sandbox_count() <= 1, "{} sandboxes", c.sandbox_count());
    c.kubectl(&["delete", "pod", "nonet", "--timeout=60s"])?;
    c.wait_for("no sandbox left", Duration::from_secs(30), || {
        Ok(c.sandbox_count() == 0)
    })?;
    // Pods' host ends are `veth<hash>`; k1s's own `k1s0-hold` pair stays. The kernel deletes
    // a pod's pair with its namespace, in the background.
    c.wait_for("no pod veth left", Duration::from_secs(30), || {
        let veths = c.in_netns(ip, &["-o", "link", "show", "type", "veth"], None)?;
        Ok(!String::from_utf8_lossy(&veths.stdout).contains(": veth"))
    })?;
    Ok(())
}

/// Default isolation in a pod: no_new_privs and the runtime's seccomp filter (as with the
/// kubelet's `seccompDefault`), and the opt-outs upstream honours: `allowPrivilegeEscalation:
/// true` and `seccompProfile: Unconfined`. A Localhost profile is accepted with a warning and
/// gets the default filter. `runAsNonRoot` refuses a container that would run as root;
/// fsGroup and supplementalGroups reach the process and the volumes; a memory emptyDir is a
/// tmpfs.
#[test]
fn security_context_defaults_and_opt_outs() -> Result<()> {
    let Some(c) = cluster()? else { return Ok(()) };
    c.wait_node_ready()?;
    let show = "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\\t ' ' '";
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: sec}}\nspec:\n  restartPolicy: Never\n  securityContext:\n    seccompProfile: {{type: Localhost, localhostProfile: none.json}}\n  containers:\n  - name: strict\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", {show:?}]\n  - name: loose\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", {show:?}]\n    securityContext:\n      allowPrivilegeEscalation: true\n      seccompProfile: {{type: Unconfined}}\n"
    );
    let out = c.in_netns(&c.kubectl, &["apply", "-f", "-"], Some(&yaml))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Warning: spec.securityContext.seccompProfile: accepted but ignored"),
        "{stderr}"
    );
    c.wait_for("pod Succeeded", Duration::from_secs(60), || {
        Ok(jsonpath(&c, "sec", "{.status.phase}") == "Succeeded")
    })?;
    let strict = c.kubectl(&["logs", "sec", "-c", "strict"])?;
    assert_eq!(strict.trim(), "NoNewPrivs: 1\nSeccomp: 2", "{strict}");
    let loose = c.kubectl(&["logs", "sec", "-c", "loose"])?;
    assert_eq!(loose.trim(), "NoNewPrivs: 0\nSeccomp: 0", "{loose}");
    c.kubectl(&["delete", "pod", "sec", "--timeout=60s"])?;

    // runAsNonRoot: the image sets no user (root), so only the container with a runAsUser
    // starts; the other waits in CreateContainerConfigError with upstream's message.
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: nonroot}}\nspec:\n  terminationGracePeriodSeconds: 1\n  securityContext: {{runAsNonRoot: true}}\n  containers:\n  - name: root\n    image: {IMAGE}\n    command: [sleep, '1000']\n  - name: user\n    image: {IMAGE}\n    command: [sleep, '1000']\n    securityContext: {{runAsUser: 1000}}\n"
    ))?;
    let waiting = "{.status.containerStatuses[?(@.name==\"root\")].state.waiting}";
    c.wait_for(
        "root waiting on its config",
        Duration::from_secs(60),
        || Ok(jsonpath(&c, "nonroot", waiting).contains("CreateContainerConfigError")),
    )?;
    let w = jsonpath(&c, "nonroot", waiting);
    assert!(
        w.contains("container has runAsNonRoot and image will run as root"),
        "{w}"
    );
    c.wait_for("user running", Duration::from_secs(60), || {
        Ok(jsonpath(
            &c,
            "nonroot",
            "{.status.containerStatuses[?(@.name==\"user\")].state.running}",
        )
        .contains("startedAt"))
    })?;
    c.kubectl(&["delete", "pod", "nonroot", "--timeout=60s"])?;

    // A non-root user with fsGroup and supplementalGroups: both are its groups, it writes to
    // an emptyDir and reads a 0400 Secret file through the fsGroup; a memory emptyDir is a
    // tmpfs of its sizeLimit.
    c.kubectl(&["create", "secret", "generic", "s", "--from-literal=k=v"])?;
    let script = "id -G; touch /scratch/f && echo scratch-ok; awk '$2==\"/mem\"{print $3, $4}' /proc/mounts; dd if=/dev/zero of=/mem/big bs=1024 count=2048 2>/dev/null || echo mem-full; cat /sec/k";
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: fsg}}\nspec:\n  restartPolicy: Never\n  securityContext: {{runAsUser: 1000, fsGroup: 2000, supplementalGroups: [3000]}}\n  containers:\n  - name: c\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", {script:?}]\n    volumeMounts:\n    - {{name: scratch, mountPath: /scratch}}\n    - {{name: mem, mountPath: /mem}}\n    - {{name: sec, mountPath: /sec}}\n  volumes:\n  - {{name: scratch, emptyDir: {{}}}}\n  - {{name: mem, emptyDir: {{medium: Memory, sizeLimit: 1Mi}}}}\n  - {{name: sec, secret: {{secretName: s, defaultMode: 0400}}}}\n"
    ))?;
    c.wait_for("fsg done", Duration::from_secs(60), || {
        let phase = jsonpath(&c, "fsg", "{.status.phase}");
        Ok(phase == "Succeeded" || phase == "Failed")
    })?;
    let out = c.kubectl(&["logs", "fsg"])?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    let groups: Vec<&str> = lines[0].split(' ').collect();
    assert!(
        groups.contains(&"2000") && groups.contains(&"3000"),
        "{out}"
    );
    assert_eq!(lines[1], "scratch-ok", "{out}");
    assert!(
        lines[2].starts_with("tmpfs ") && lines[2].contains("size=1024k"),
        "{out}"
    );
    assert_eq!(lines[3], "mem-full", "{out}");
    assert_eq!(lines[4], "v", "{out}");
    assert_eq!(
        c.mounts_below("pods")?.len(),
        1,
        "the memory emptyDir's tmpfs"
    );
    c.kubectl(&["delete", "pod", "fsg", "--timeout=60s"])?;
    c.wait_for("the tmpfs unmounted", Duration::from_secs(30), || {
        Ok(c.mounts_below("pods")?.is_empty())
    })?;
    Ok(())
}

/// /etc/hosts and /etc/resolv.conf as upstream writes them: the FQDN of a pod with a
/// hostname and subdomain, hostAliases, dnsPolicy None with a dnsConfig, and a host-network
/// pod's files from the node.
#[test]
fn hosts_and_dns_config() -> Result<()> {
    let Some(c) = cluster()? else { return Ok(()) };
    c.wait_node_ready()?;
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: named}}\nspec:\n  restartPolicy: Never\n  hostname: web-0\n  subdomain: nginx\n  hostAliases: [{{ip: 127.0.0.1, hostnames: [foo.local, bar.local]}}]\n  dnsPolicy: None\n  dnsConfig: {{nameservers: [1.2.3.4], searches: [a.example], options: [{{name: ndots, value: '2'}}]}}\n  containers:\n  - name: c\n    image: {IMAGE}\n    command: [sh, -c, 'cat /etc/hosts /etc/resolv.conf; hostname']\n"
    ))?;
    c.wait_for("named Succeeded", Duration::from_secs(60), || {
        Ok(jsonpath(&c, "named", "{.status.phase}") == "Succeeded")
    })?;
    let ip = jsonpath(&c, "named", "{.status.podIP}");
    let out = c.kubectl(&["logs", "named"])?;
    for want in [
        format!("{ip}\tweb-0.nginx.default.svc.cluster.local\tweb-0\n"),
        "# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n".into(),
        "search a.example\nnameserver 1.2.3.4\noptions ndots:2\nweb-0\n".into(),
    ] {
        assert!(out.contains(&want), "{want:?} missing from:\n{out}");
    }
    c.kubectl(&["delete", "pod", "named", "--timeout=60s"])?;

    // A host-network pod gets the node's /etc/hosts (with its hostAliases) and, with the
    // default dnsPolicy, the node's resolv.conf, as upstream.
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: hostnet}}\nspec:\n  restartPolicy: Never\n  hostNetwork: true\n  hostAliases: [{{ip: 10.1.2.3, hostnames: [alias.local]}}]\n  containers:\n  - name: c\n    image: {IMAGE}\n    command: [sh, -c, 'cat /etc/hosts; echo ---; cat /etc/resolv.conf']\n"
    ))?;
    c.wait_for("hostnet Succeeded", Duration::from_secs(60), || {
        Ok(jsonpath(&c, "hostnet", "{.status.phase}") == "Succeeded")
    })?;
    let out = c.kubectl(&["logs", "hostnet"])?;
    let (hosts, resolv) = out.split_once("---\n").unwrap_or((&out, ""));
    let node_hosts = std::fs::read_to_string("/etc/hosts")?;
    assert!(hosts.starts_with(&node_hosts), "{hosts}");
    assert!(
        hosts.ends_with("# Entries added by HostAliases.\n10.1.2.3\talias.local\n"),
        "{hosts}"
    );
    let node_resolv = std::fs::read_to_string("/etc/resolv.conf")?;
    for ns in node_resolv
        .lines()
        .filter(|l| l.starts_with("nameserver"))
        .take(3)
    {
        assert!(resolv.contains(ns), "{ns} missing from:\n{resolv}");
    }
    assert!(!resolv.contains("cluster.local"), "{resolv}");
    c.kubectl(&["delete", "pod", "hostnet", "--timeout=60s"])?;
    Ok(())
}

/// Service links as upstream: the variables of the namespace's Services (host, ports, Docker
/// link variables), unless `enableServiceLinks: false`; the `kubernetes` service's always.
#[test]
fn service_links() -> Result<()> {
    let Some(c) = cluster()? else { return Ok(()) };
    c.wait_node_ready()?;
    c.apply("apiVersion: v1\nkind: Service\nmetadata: {name: my-svc}\nspec:\n  ports:\n  - {name: http, port: 8080, targetPort: 80}\n  - {name: metrics, port: 9090, protocol: UDP}\n")?;
    let ip = c.kubectl(&[
        "get",
        "service",
        "my-svc",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ])?;
    let show = "env | grep -E '^(MY_SVC|KUBERNETES_SERVICE_HOST)' | sort";
    for (name, links) in [("links", true), ("nolinks", false)] {
        c.apply(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  enableServiceLinks: {links}\n  containers:\n  - name: c\n    image: {IMAGE}\n    command: [sh, -c, {show:?}]\n"
        ))?;
    }
    for name in ["links", "nolinks"] {
        c.wait_for("pod Succeeded", Duration::from_secs(60), || {
            Ok(jsonpath(&c, name, "{.status.phase}") == "Succeeded")
        })?;
    }
    let links = c.kubectl(&["logs", "links"])?;
    for want in [
        format!("MY_SVC_SERVICE_HOST={ip}"),
        "MY_SVC_SERVICE_PORT=8080".into(),
        "MY_SVC_SERVICE_PORT_HTTP=8080".into(),
        "MY_SVC_SERVICE_PORT_METRICS=9090".into(),
        format!("MY_SVC_PORT=tcp://{ip}:8080"),
        format!("MY_SVC_PORT_8080_TCP=tcp://{ip}:8080"),
        format!("MY_SVC_PORT_8080_TCP_ADDR={ip}"),
        "MY_SVC_PORT_9090_UDP_PROTO=udp".into(),
        "KUBERNETES_SERVICE_HOST=".into(),
    ] {
        assert!(
            links.lines().any(|l| l.starts_with(&want)),
            "{want} missing from:\n{links}"
        );
    }
    let nolinks = c.kubectl(&["logs", "nolinks"])?;
    assert!(!nolinks.contains("MY_SVC"), "{nolinks}");
    assert!(nolinks.contains("KUBERNETES_SERVICE_HOST="), "{nolinks}");
    c.kubectl(&["delete", "pod", "links", "nolinks", "--timeout=60s"])?;
    c.kubectl(&["delete", "service", "my-svc"])?;
    Ok(())
}

#[test]
fn restart_policy_matrix() -> Result<()> {
    let Some(c) = cluster()? else { return Ok(()) };
    let cases = [
        ("never-ok", "Never", "exit 0", "Succeeded"),
        ("never-fail", "Never", "exit 3", "Failed"),
        ("onfailure-ok", "OnFailure", "exit 0", "Succeeded"),
        ("onfailure-fail", "OnFailure", "exit 1", "Running"),
        ("always-ok", "Always", "exit 0", "Running"),
        ("always-fail", "Always", "exit 1", "Running"),
    ];
    let mut all = String::new();
    for (name, policy, script, _) in cases {
        all.push_str(&pod(name, policy, script));
        all.push_str("---\n");
    }
    c.apply(&all)?;
    for (name, _, _, phase) in cases {
        c.wait_for(
            &format!("{name} phase {phase}"),
            Duration::from_secs(60),
            || {
                let p = jsonpath(&c, name, "{.status.phase}");
                let exited = !jsonpath(
                    &c,
                    name,
                    "{.status.containerStatuses[0].state.terminated.exitCode}",
                )
                .is_empty()
                    || !jsonpath(
                        &c,
                        name,
                        "{.status.containerStatuses[0].lastState.terminated.exitCode}",
                    )
                    .is_empty();
                Ok(p == phase && exited)
            },
        )?;
    }
    let code = jsonpath(
        &c,
        "never-fail",
        "{.status.containerStatuses[0].state.terminated.exitCode}",
    );
    assert_eq!(code, "3");
    let reason = jsonpath(
        &c,
        "never-fail",
        "{.status.containerStatuses[0].state.terminated.reason}",
    );
    assert_eq!(reason, "Error");
    let done = jsonpath(
        &c,
        "never-ok",
        "{.status.containerStatuses[0].state.terminated.reason}",
    );
    assert_eq!(done, "Completed");
    // A crash-looping container is in back-off with its last exit recorded.
    c.wait_for("CrashLoopBackOff", Duration::from_secs(30), || {
        Ok(jsonpath(
            &c,
            "always-fail",
            "{.status.containerStatuses[0].state.waiting.reason}",
        ) == "CrashLoopBackOff")
    })?;
    let table = c.kubectl(&["get", "pods"])?;
    assert!(
        table.contains("CrashLoopBackOff")
            && table.contains("Completed")
            && table.contains("Error"),
        "{table}"
    );
    Ok(())
}

#[test]
fn missing_command_is_a_start_error() -> Result<()> {
    let Some(c) = cluster()? else { return Ok(()) };
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: nocmd}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: {IMAGE}\n    imagePullPolicy: IfNotPresent\n    command: [\"does-not-exist\"]\n"
    ))?;
    c.wait_for("StartError", Duration::from_secs(60), || {
        Ok(jsonpath(
            &c,
            "nocmd",
            "{.status.containerStatuses[0].state.terminated.reason}",
        ) == "StartError")
    })?;
    let msg = jsonpath(
        &c,
        "nocmd",
        "{.status.containerStatuses[0].state.terminated.message}",
    );
    assert!(msg.contains("does-not-exist"), "{msg}");
    assert_eq!(jsonpath(&c, "nocmd", "{.status.phase}"), "Failed");
    let events = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=nocmd",
        "-o",
        "jsonpath={.items[*].message}",
    ])?;
    assert!(
        events.contains("already present on machine") && !events.contains("Pulling image"),
        "{events}"
    );
    Ok(())
}

/// Every manifest in manifests/ applies and its pods reach Running.
#[test]
fn manifests_apply_and_run() -> Result<()> {
    let Some(c) = cluster()? else { return Ok(()) };
    let dir = crate::harness::workspace_root().join("manifests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        c.apply(&text)?;
        let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
            .map(serde_yaml::Value::deserialize)
            .collect::<Result<_, _>>()?;
        for d in docs.iter().filter(|d| d["kind"].as_str() == Some("Pod")) {
            let name = d["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            c.wait_for(
                &format!("{} pod {name} Running", f.display()),
                Duration::from_secs(60),
                || Ok(jsonpath(&c, &name, "{.status.phase}") == "Running"),
            )?;
        }
    }
    Ok(())
}

/// ConfigMap and Secret reach the container as volume files and env values; a pod that
/// names a missing ConfigMap waits with CreateContainerConfigError.
#[test]
fn configmap_and_secret_volumes_and_env() -> Result<()> {
    let Some(c) = cluster()? else { return Ok(()) };
    c.apply(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cfg}}\ndata: {{a: \"1\"}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: sec}}\nstringData: {{p: secret}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: vols}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: {IMAGE}\n    imagePullPolicy: IfNotPresent\n    command: [\"sh\", \"-c\", \"test \\\"$(cat /cfg/a)\\\" = 1 && test \\\"$(cat /sec/p)\\\" = secret && test \\\"$P\\\" = secret && test \\\"$A\\\" = 1\"]\n    env:\n    - {{name: P, valueFrom: {{secretKeyRef: {{name: sec, key: p}}}}}}\n    - {{name: A, valueFrom: {{configMapKeyRef: {{name: cfg, key: a}}}}}}\n    volumeMounts:\n    - {{name: cfg, mountPath: /cfg}}\n    - {{name: sec, mountPath: /sec}}\n  volumes:\n  - {{name: cfg, configMap: {{name: cfg}}}}\n  - {{name: sec, secret: {{secretName: sec}}}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: nocfg}}\nspec:\n  containers:\n  - name: c\n    image: {IMAGE}\n    imagePullPolicy: IfNotPresent\n    volumeMounts: [{{name: v, mountPath: /v}}]\n  volumes: [{{name: v, configMap: {{name: missing}}}}]\n"
    ))?;
    c.wait_for("vols Succeeded", Duration::from_secs(60), || {
        Ok(jsonpath(&c, "vols", "{.status.phase}") == "Succeeded")
    })?;
    c.wait_for(
        "CreateContainerConfigError",
        Duration::from_secs(60),
        || {
            Ok(jsonpath(
                &c,
                "nocfg",
                "{.status.containerStatuses[0].state.waiting.reason}",
            ) == "CreateContainerConfigError")
        },
    )?;
    let msg = jsonpath(
        &c,
        "nocfg",
        "{.status.containerStatuses[0].state.waiting.message}",
    );
    assert!(msg.contains("configmap \"missing\" not found"), "{msg}");
    Ok(())
}
