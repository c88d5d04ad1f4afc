//! Turning a pod's container into a runtime `ContainerSpec`: environment (values, field and
//! resource refs, ConfigMap/Secret refs, envFrom, `$(VAR)` expansion, service variables),
//! the mounts of the volumes `volumes` prepares on disk, security context and resources.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{ConfigMap, Container, ObjectFieldSelector, Pod, Secret};
use kube::api::Api;
use kube::Client;

use crate::cri::{ContainerSpec, Mount, Sandbox};
use crate::KubeletConfig;

pub fn pod_dir(cfg: &KubeletConfig, uid: &str) -> PathBuf {
    cfg.data_dir.join("pods").join(uid)
}

pub fn remove_pod_dir(cfg: &KubeletConfig, uid: &str) {
    crate::volumes::unmount_all(cfg, uid);
    let dir = pod_dir(cfg, uid);
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %dir.display(), error = %e, "failed to remove pod directory");
        }
    }
}

/// The DNS policy that applies: upstream gives a host-network pod the node's resolv.conf
/// (`Default`) unless it asks for `ClusterFirstWithHostNet`.
pub fn dns_policy(spec: &k8s_openapi::api::core::v1::PodSpec) -> Option<String> {
    let policy = spec.dns_policy.clone();
    let cluster_first = matches!(policy.as_deref(), None | Some("ClusterFirst"));
    if spec.host_network == Some(true) && cluster_first {
        return Some("Default".into());
    }
    policy
}

/// The `/etc/hosts` lines of the pod's `hostAliases`, as upstream writes them (empty without).
pub fn host_aliases(spec: &k8s_openapi::api::core::v1::PodSpec) -> String {
    let aliases = spec.host_aliases.as_deref().unwrap_or_default();
    if aliases.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n# Entries added by HostAliases.\n");
    for a in aliases {
        let names = a.hostnames.as_deref().unwrap_or_default().join("\t");
        s.push_str(&format!("{}\t{names}\n", a.ip));
    }
    s
}

/// resolv.conf for a pod, as upstream's kubelet makes it: cluster DNS with the Kubernetes
/// search path (ClusterFirst), the host's (Default), or nothing (None); then `dnsConfig`'s
/// nameservers, searches and options are merged in (at most 3 nameservers and 32 searches;
/// an option given again replaces the earlier one).
pub fn resolv_conf(
    cfg: &KubeletConfig,
    ns: &str,
    policy: Option<&str>,
    dns: Option<&k8s_openapi::api::core::v1::PodDNSConfig>,
) -> String {
    let (mut servers, mut searches, mut options): (Vec<String>, Vec<String>, Vec<String>) =
        match policy {
            Some("None") => Default::default(),
            Some("Default") => {
                let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
                let mut parts = (Vec::new(), Vec::new(), Vec::new());
                for line in host.lines() {
                    let mut words = line.split_whitespace();
                    let list = match words.next() {
                        Some("nameserver") => &mut parts.0,
                        Some("search") | Some("domain") => &mut parts.1,
                        Some("options") => &mut parts.2,
                        _ => continue,
                    };
                    list.extend(words.map(str::to_string));
                }
                parts
            }
            _ => {
                let d = &cfg.cluster_domain;
                (
                    vec![cfg.cluster_dns.clone()],
                    vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.clone()],
                    vec!["ndots:5".to_string()],
                )
            }
        };
    if let Some(dns) = dns {
        servers.extend(dns.nameservers.iter().flatten().cloned());
        for s in dns.searches.iter().flatten() {
            if !searches.contains(s) {
                searches.push(s.clone());
            }
        }
        for o in dns.options.iter().flatten() {
            let opt = match &o.value {
                Some(v) => format!("{}:{v}", o.name.as_deref().unwrap_or_default()),
                None => o.name.clone().unwrap_or_default(),
            };
            let name = opt.split(':').next().unwrap_or_default().to_string();
            options.retain(|x| x.split(':').next() != Some(name.as_str()));
            options.push(opt);
        }
    }
    servers.dedup();
    servers.truncate(3);
    searches.truncate(32);
    let mut out = String::new();
    if !searches.is_empty() {
        out.push_str(&format!("search {}\n", searches.join(" ")));
    }
    for s in &servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// Parse a Kubernetes quantity into a number of base units (cores or bytes) as f64.
pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let suffixes: [(&str, f64); 14] = [
        ("Ki", 1024.0),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    for (suf, mul) in suffixes {
        if let Some(n) = s.strip_suffix(suf) {
            return n.parse::<f64>().ok().map(|v| v * mul);
        }
    }
    if let Some(n) = s.strip_suffix('E') {
        return n.parse::<f64>().ok().map(|v| v * 1e18);
    }
    s.parse::<f64>().ok()
}

pub(crate) fn field_value(
    pod: &Pod,
    sel: &ObjectFieldSelector,
    node_ip: &str,
) -> Result<String, String> {
    let md = &pod.metadata;
    let path = sel.field_path.as_str();
    let v = match path {
        "metadata.name" => md.name.clone().unwrap_or_default(),
        "metadata.namespace" => md.namespace.clone().unwrap_or_default(),
        "metadata.uid" => md.uid.clone().unwrap_or_default(),
        "spec.nodeName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => node_ip.to_string(),
        "status.podIP" | "status.podIPs" => pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default(),
        p if p.starts_with("metadata.labels['") => {
            let k = p
                .trim_start_matches("metadata.labels['")
                .trim_end_matches("']");
            md.labels
                .as_ref()
                .and_then(|l| l.get(k).cloned())
                .unwrap_or_default()
        }
        p if p.starts_with("metadata.annotations['") => {
            let k = p
                .trim_start_matches("metadata.annotations['")
                .trim_end_matches("']");
            md.annotations
                .as_ref()
                .and_then(|l| l.get(k).cloned())
                .unwrap_or_default()
        }
        "metadata.labels" => kv_lines(md.labels.as_ref()),
        "metadata.annotations" => kv_lines(md.annotations.as_ref()),
        other => return Err(format!("unsupported fieldPath: {other}")),
    };
    Ok(v)
}

fn kv_lines(m: Option<&BTreeMap<String, String>>) -> String {
    m.map(|m| {
        m.iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect::<Vec<_>>()
            .join("\n")
    })
    .unwrap_or_default()
}

/// `$(VAR)` expansion like upstream: `$$` escapes, unknown references stay as they are.
pub fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(s.len());
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '$' && i + 1 < b.len() {
            if b[i + 1] == '$' {
                out.push('$');
                i += 2;
                continue;
            }
            if b[i + 1] == '(' {
                if let Some(end) = b[i + 2..].iter().position(|c| *c == ')') {
                    let name: String = b[i + 2..i + 2 + end].iter().collect();
                    if let Some((_, v)) = env.iter().rev().find(|(k, _)| *k == name) {
                        out.push_str(v);
                        i += end + 3;
                        continue;
                    }
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

async fn config_map(client: &Client, ns: &str, name: &str) -> Result<Option<ConfigMap>, String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    api.get_opt(name).await.map_err(|e| e.to_string())
}

async fn secret(client: &Client, ns: &str, name: &str) -> Result<Option<Secret>, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    api.get_opt(name).await.map_err(|e| e.to_string())
}

fn cm_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = cm
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.clone().unwrap_or_default() {
        out.insert(k, v.0);
    }
    out
}

fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = s
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in s.string_data.clone().unwrap_or_default() {
        out.insert(k, v.into_bytes());
    }
    out
}

/// Where a volume or env value reads its keys from.
#[derive(Clone, Copy)]
pub(crate) enum Source {
    ConfigMap,
    Secret,
}

/// The keys of a ConfigMap (data and binaryData) or Secret: None when it is missing and
/// `optional`, an error naming it when it is missing and required.
pub(crate) async fn source_data(
    client: &Client,
    ns: &str,
    src: Source,
    name: &str,
    optional: Option<bool>,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    let found = match src {
        Source::ConfigMap => config_map(client, ns, name).await?.map(|cm| cm_data(&cm)),
        Source::Secret => secret(client, ns, name).await?.map(|s| secret_data(&s)),
    };
    match found {
        Some(d) => Ok(Some(d)),
        None if optional == Some(true) => Ok(None),
        None => Err(match src {
            Source::ConfigMap => format!("configmap \"{name}\" not found"),
            Source::Secret => format!("secret \"{name}\" not found"),
        }),
    }
}

/// One key of a ConfigMap or Secret for `valueFrom`; None when optional and absent.
async fn key_value(
    client: &Client,
    ns: &str,
    src: Source,
    name: &str,
    key: &str,
    optional: Option<bool>,
) -> Result<Option<String>, String> {
    let Some(data) = source_data(client, ns, src, name, optional).await? else {
        return Ok(None);
    };
    match data.get(key) {
        Some(v) => Ok(Some(String::from_utf8_lossy(v).to_string())),
        None if optional == Some(true) => Ok(None),
        None => Err(match src {
            Source::ConfigMap => format!("couldn't find key {key} in ConfigMap {ns}/{name}"),
            Source::Secret => format!("couldn't find key {key} in Secret {ns}/{name}"),
        }),
    }
}

/// How long a container start waits for the first list of Services (at kubelet start-up).
const SERVICES_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The variables upstream derives from one Service (`envvars.FromServices`): `<NAME>_SERVICE_HOST`,
/// `<NAME>_SERVICE_PORT[_<PORT NAME>]` and the Docker link variables
/// `<NAME>_PORT[_<port>_<PROTO>[_PROTO|_PORT|_ADDR]]` (names upper-case, `-` as `_`).
/// `ports`: (name, port, protocol), the first one first.
fn link_vars(name: &str, ip: &str, ports: &[(Option<&str>, i32, &str)]) -> Vec<(String, String)> {
    let var = |n: &str| n.to_uppercase().replace('-', "_");
    let prefix = var(name);
    let mut env = Vec::new();
    let Some((_, first, _)) = ports.first() else {
        return env;
    };
    env.push((format!("{prefix}_SERVICE_HOST"), ip.to_string()));
    env.push((format!("{prefix}_SERVICE_PORT"), first.to_string()));
    for (n, port, _) in ports {
        if let Some(n) = n.filter(|n| !n.is_empty()) {
            env.push((
                format!("{prefix}_SERVICE_PORT_{}", var(n)),
                port.to_string(),
            ));
        }
    }
    for (i, (_, port, proto)) in ports.iter().enumerate() {
        let lower = proto.to_lowercase();
        let url = format!("{lower}://{ip}:{port}");
        if i == 0 {
            env.push((format!("{prefix}_PORT"), url.clone()));
        }
        let pp = format!("{prefix}_PORT_{port}_{}", proto.to_uppercase());
        env.push((pp.clone(), url));
        env.push((format!("{pp}_PROTO"), lower));
        env.push((format!("{pp}_PORT"), port.to_string()));
        env.push((format!("{pp}_ADDR"), ip.to_string()));
    }
    env
}

/// Upstream's service links: the `link_vars` of each Service of namespace `ns` with a
/// cluster IP. The `kubernetes` service's are always there (see `build_env`).
async fn service_links(cfg: &KubeletConfig, ns: &str) -> Result<Vec<(String, String)>, String> {
    let Some(store) = &cfg.services else {
        return Ok(Vec::new());
    };
    if tokio::time::timeout(SERVICES_WAIT, store.wait_until_ready())
        .await
        .map_or(true, |r| r.is_err())
    {
        return Err(
            "services have not yet been read at least once, cannot construct envvars".into(),
        );
    }
    let mut services: Vec<_> = store
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(ns))
        .filter(|s| !(ns == "default" && s.metadata.name.as_deref() == Some("kubernetes")))
        .collect();
    services.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut env = Vec::new();
    for s in services {
        let Some(spec) = &s.spec else { continue };
        let ip = spec.cluster_ip.as_deref().unwrap_or_default();
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let ports: Vec<_> = spec
            .ports
            .iter()
            .flatten()
            .map(|p| {
                (
                    p.name.as_deref(),
                    p.port,
                    p.protocol.as_deref().unwrap_or("TCP"),
                )
            })
            .collect();
        let name = s.metadata.name.as_deref().unwrap_or_default();
        env.extend(link_vars(name, ip, &ports));
    }
    Ok(env)
}

async fn build_env(
    client: &Client,
    cfg: &KubeletConfig,
    pod: &Pod,
    c: &Container,
) -> Result<Vec<(String, String)>, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let links = pod.spec.as_ref().and_then(|s| s.enable_service_links) != Some(false);
    let mut env: Vec<(String, String)> = if links {
        service_links(cfg, &ns).await?
    } else {
        Vec::new()
    };
    // The `kubernetes` service, always (upstream's master service).
    env.extend(link_vars(
        "kubernetes",
        &cfg.api_service_ip,
        &[(Some("https"), 443, "TCP")],
    ));
    for ef in c.env_from.clone().unwrap_or_default() {
        let prefix = ef.prefix.clone().unwrap_or_default();
        if let Some(r) = &ef.config_map_ref {
            match config_map(client, &ns, &r.name).await? {
                Some(cm) => env.extend(
                    cm.data
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (format!("{prefix}{k}"), v)),
                ),
                None if r.optional == Some(true) => {}
                None => return Err(format!("configmap \"{}\" not found", r.name)),
            }
        }
        if let Some(r) = &ef.secret_ref {
            match secret(client, &ns, &r.name).await? {
                Some(s) => env.extend(secret_data(&s).into_iter().map(|(k, v)| {
                    (
                        format!("{prefix}{k}"),
                        String::from_utf8_lossy(&v).to_string(),
                    )
                })),
                None if r.optional == Some(true) => {}
                None => return Err(format!("secret \"{}\" not found", r.name)),
            }
        }
    }
    for e in c.env.clone().unwrap_or_default() {
        let value = if let Some(v) = e.value {
            expand(&v, &env)
        } else if let Some(vf) = e.value_from {
            if let Some(f) = vf.field_ref {
                field_value(pod, &f, &cfg.node_ip)?
            } else if let Some(r) = vf.resource_field_ref {
                resource_value(
                    c,
                    &r.resource,
                    r.divisor.as_ref().map(|d| d.0.as_str()),
                    cfg,
                )
            } else if let Some(k) = vf.config_map_key_ref {
                match key_value(client, &ns, Source::ConfigMap, &k.name, &k.key, k.optional).await?
                {
                    Some(v) => v,
                    None => continue,
                }
            } else if let Some(k) = vf.secret_key_ref {
                match key_value(client, &ns, Source::Secret, &k.name, &k.key, k.optional).await? {
                    Some(v) => v,
                    None => continue,
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.push((e.name, value));
    }
    Ok(env)
}

fn resource_value(
    c: &Container,
    resource: &str,
    divisor: Option<&str>,
    cfg: &KubeletConfig,
) -> String {
    let res = c.resources.clone().unwrap_or_default();
    let (map, key) = match resource.split_once('.') {
        Some(("limits", k)) => (res.limits, k),
        Some(("requests", k)) => (res.requests, k),
        _ => (None, resource),
    };
    let raw = map.and_then(|m| m.get(key).map(|q| q.0.clone()));
    let val = match raw.as_deref().and_then(parse_quantity) {
        Some(v) => v,
        None if key == "cpu" => cfg.node_cpus as f64,
        None if key == "memory" => cfg.node_memory as f64,
        None => 0.0,
    };
    let div = divisor
        .and_then(parse_quantity)
        .filter(|d| *d > 0.0)
        .unwrap_or(1.0);
    format!("{}", (val / div).ceil() as i64)
}

/// A token for the pod's ServiceAccount, bound to the pod (it stops working when the pod is
/// deleted), as the kubelet's projected `serviceAccountToken` source requests it.
pub(crate) async fn service_account_token(
    client: &Client,
    pod: &Pod,
    src: &k8s_openapi::api::core::v1::ServiceAccountTokenProjection,
) -> Result<String, String> {
    use k8s_openapi::api::authentication::v1::{
        BoundObjectReference, TokenRequest, TokenRequestSpec,
    };
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let sa = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into());
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: src.audience.clone().map(|a| vec![a]).unwrap_or_default(),
            expiration_seconds: Some(src.expiration_seconds.unwrap_or(3600)),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    };
    let api: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let out = api
        .create_token_request(&sa, &Default::default(), &req)
        .await
        .map_err(|e| format!("failed to fetch token for service account \"{sa}\": {e}"))?;
    out.status
        .map(|s| s.token)
        .ok_or_else(|| format!("no token was issued for service account \"{sa}\""))
}

/// Whether `runAsNonRoot` applies to `c` (its own setting, else the pod's).
pub fn run_as_non_root(pod: &Pod, c: &Container) -> bool {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    c.security_context
        .as_ref()
        .and_then(|sc| sc.run_as_non_root)
        .or(psc.and_then(|sc| sc.run_as_non_root))
        == Some(true)
}

/// Upstream's `runAsNonRoot` check, made before a container is created: the user it would run
/// as (`runAsUser`, else the image's `User`, root when that is empty) must be a non-zero
/// numeric uid. `image_user` is the image config's `User` (`uid[:gid]` or `name[:group]`).
pub fn verify_run_as_non_root(pod: &Pod, c: &Container, image_user: &str) -> Result<(), String> {
    if !run_as_non_root(pod, c) {
        return Ok(());
    }
    // Upstream's `format.Pod`: name_namespace(uid).
    let m = &pod.metadata;
    let pod_name = format!(
        "{}_{}({})",
        m.name.as_deref().unwrap_or_default(),
        m.namespace.as_deref().unwrap_or_default(),
        m.uid.as_deref().unwrap_or_default()
    );
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let run_as_user = c
        .security_context
        .as_ref()
        .and_then(|sc| sc.run_as_user)
        .or(psc.and_then(|sc| sc.run_as_user));
    if let Some(uid) = run_as_user {
        return match uid {
            0 => Err(format!(
                "container's runAsUser breaks non-root policy (pod: \"{pod_name}\", container: {})",
                c.name
            )),
            _ => Ok(()),
        };
    }
    let user = image_user.split(':').next().unwrap_or_default();
    // An image without a user runs as root.
    match (user.is_empty(), user.parse::<u32>()) {
        (true, _) | (_, Ok(0)) => Err(format!(
            "container has runAsNonRoot and image will run as root (pod: \"{pod_name}\", container: {})",
            c.name
        )),
        (_, Ok(_)) => Ok(()),
        (_, Err(_)) => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root (pod: \"{pod_name}\", container: {})",
            c.name
        )),
    }
}

/// Build the runtime spec for container `c` of `pod`.
pub async fn build(
    client: &Client,
    cfg: &KubeletConfig,
    pod: &Pod,
    c: &Container,
    _sb: &Sandbox,
    attempt: u32,
) -> Result<ContainerSpec, String> {
    let spec = pod.spec.clone().unwrap_or_default();
    let env = build_env(client, cfg, pod, c).await?;
    let command = c
        .command
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|s| expand(s, &env))
        .collect();
    let args = c
        .args
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|s| expand(s, &env))
        .collect();
    let volumes = spec.volumes.clone().unwrap_or_default();
    let mut mounts = Vec::new();
    for m in c.volume_mounts.clone().unwrap_or_default() {
        let Some(v) = volumes.iter().find(|v| v.name == m.name) else {
            return Err(format!("volume \"{}\" not found", m.name));
        };
        let mut host = crate::volumes::prepare(client, cfg, pod, v).await?;
        if let Some(sp) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            host = crate::volumes::sub_path(&host, sp)?;
        }
        mounts.push(Mount {
            host_path: host.display().to_string(),
            container_path: m.mount_path.clone(),
            readonly: m.read_only == Some(true) || crate::volumes::always_read_only(v),
        });
    }
    let psc = spec.security_context.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let caps = sc.capabilities.clone().unwrap_or_default();
    let res = c.resources.clone().unwrap_or_default();
    let cpu_req = res
        .requests
        .as_ref()
        .and_then(|r| r.get("cpu"))
        .and_then(|q| parse_quantity(&q.0));
    let cpu_lim = res
        .limits
        .as_ref()
        .and_then(|r| r.get("cpu"))
        .and_then(|q| parse_quantity(&q.0));
    let mem_lim = res
        .limits
        .as_ref()
        .and_then(|r| r.get("memory"))
        .and_then(|q| parse_quantity(&q.0));
    Ok(ContainerSpec {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        command,
        args,
        env,
        working_dir: c.working_dir.clone(),
        mounts,
        run_as_user: sc.run_as_user.or(psc.run_as_user).map(|u| u as u32),
        run_as_group: sc.run_as_group.or(psc.run_as_group).map(|g| g as u32),
        supplemental_groups: psc
            .supplemental_groups
            .iter()
            .flatten()
            .chain(psc.fs_group.iter())
            .map(|g| *g as u32)
            .collect(),
        privileged: sc.privileged == Some(true),
        no_new_privs: sc.privileged != Some(true) && sc.allow_privilege_escalation != Some(true),
        seccomp_unconfined: sc
            .seccomp_profile
            .as_ref()
            .or(psc.seccomp_profile.as_ref())
            .is_some_and(|p| p.type_ == "Unconfined"),
        read_only_rootfs: sc.read_only_root_filesystem == Some(true),
        cap_add: caps.add.unwrap_or_default(),
        cap_drop: caps.drop.unwrap_or_default(),
        tty: c.tty == Some(true),
        stdin: c.stdin == Some(true),
        stdin_once: c.stdin_once == Some(true),
        cpu_shares: Some(cpu_req.map(|v| ((v * 1024.0) as u64).max(2)).unwrap_or(2)),
        cpu_quota_us: cpu_lim.map(|v| ((v * 100_000.0) as i64).max(1000)),
        memory_limit: mem_lim.map(|v| v as u64),
        oom_score_adj: Some(
            crate::qos::container_oom_score_adj(pod, c, cfg.node_memory)
                .max(cfg.oom_score_adj_floor),
        ),
        attempt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_merges_dns_config_like_upstream() {
        let cfg = KubeletConfig::new("n".into(), "10.0.0.1".into(), "/nonexistent".into());
        let dns: k8s_openapi::api::core::v1::PodDNSConfig =
            serde_json::from_value(serde_json::json!({
                "nameservers": ["1.2.3.4"],
                "searches": ["my.dns.search.suffix", "svc.cluster.local"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
            }))
            .expect("dnsConfig");
        let first = resolv_conf(&cfg, "ns1", None, Some(&dns));
        assert_eq!(
            first,
            format!(
                "search ns1.svc.cluster.local svc.cluster.local cluster.local my.dns.search.suffix\nnameserver {}\nnameserver 1.2.3.4\noptions ndots:2 edns0\n",
                cfg.cluster_dns
            )
        );
        let none = resolv_conf(&cfg, "ns1", Some("None"), Some(&dns));
        assert_eq!(
            none,
            "search my.dns.search.suffix svc.cluster.local\nnameserver 1.2.3.4\noptions ndots:2 edns0\n"
        );
        assert_eq!(resolv_conf(&cfg, "ns1", Some("None"), None), "");
    }

    #[test]
    fn host_network_pods_get_the_node_resolv_conf_unless_they_ask() {
        let spec = |host: bool, policy: Option<&str>| k8s_openapi::api::core::v1::PodSpec {
            host_network: Some(host),
            dns_policy: policy.map(str::to_string),
            ..Default::default()
        };
        assert_eq!(dns_policy(&spec(true, None)).as_deref(), Some("Default"));
        assert_eq!(
            dns_policy(&spec(true, Some("ClusterFirst"))).as_deref(),
            Some("Default")
        );
        assert_eq!(
            dns_policy(&spec(true, Some("ClusterFirstWithHostNet"))).as_deref(),
            Some("ClusterFirstWithHostNet")
        );
        assert_eq!(dns_policy(&spec(false, None)), None);
        assert_eq!(
            dns_policy(&spec(false, Some("None"))).as_deref(),
            Some("None")
        );
    }

    #[test]
    fn link_variables_of_the_kubernetes_service() {
        let v = link_vars("kubernetes", "10.43.0.1", &[(Some("https"), 443, "TCP")]);
        let want = [
            ("KUBERNETES_SERVICE_HOST", "10.43.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
            ("KUBERNETES_PORT", "tcp://10.43.0.1:443"),
            ("KUBERNETES_PORT_443_TCP", "tcp://10.43.0.1:443"),
            ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
            ("KUBERNETES_PORT_443_TCP_PORT", "443"),
            ("KUBERNETES_PORT_443_TCP_ADDR", "10.43.0.1"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(v, want);
        assert!(link_vars("no-ports", "10.43.0.9", &[]).is_empty());
    }

    #[test]
    fn host_aliases_like_upstream() {
        let spec: k8s_openapi::api::core::v1::PodSpec = serde_json::from_value(serde_json::json!({
            "containers": [],
            "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]}],
        }))
        .expect("spec");
        assert_eq!(
            host_aliases(&spec),
            "\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n"
        );
        assert_eq!(host_aliases(&Default::default()), "");
    }

    #[test]
    fn run_as_non_root_like_upstream() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "c"}]},
        }))
        .expect("pod");
        let c = |sc: serde_json::Value| -> Container {
            serde_json::from_value(serde_json::json!({"name": "c", "securityContext": sc}))
                .expect("container")
        };
        let plain = c(serde_json::json!({}));
        let root = verify_run_as_non_root(&pod, &plain, "").expect_err("empty user is root");
        assert_eq!(
            root,
            "container has runAsNonRoot and image will run as root (pod: \"p_ns(u1)\", container: c)"
        );
        assert!(verify_run_as_non_root(&pod, &plain, "0:0").is_err());
        assert!(verify_run_as_non_root(&pod, &plain, "1000").is_ok());
        assert!(verify_run_as_non_root(&pod, &plain, "1000:1000").is_ok());
        let named = verify_run_as_non_root(&pod, &plain, "nobody").expect_err("a name");
        assert!(named.contains("non-numeric user (nobody)"), "{named}");
        // runAsUser wins over the image's user, both ways.
        let as_1000 = c(serde_json::json!({"runAsUser": 1000}));
        assert!(verify_run_as_non_root(&pod, &as_1000, "").is_ok());
        let as_root = c(serde_json::json!({"runAsUser": 0}));
        let e = verify_run_as_non_root(&pod, &as_root, "1000").expect_err("uid 0");
        assert!(
            e.starts_with("container's runAsUser breaks non-root policy"),
            "{e}"
        );
        // The container's own setting overrides the pod's.
        let opt_out = c(serde_json::json!({"runAsNonRoot": false}));
        assert!(!run_as_non_root(&pod, &opt_out));
        assert!(verify_run_as_non_root(&pod, &opt_out, "").is_ok());
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("100m"), Some(0.1));
        assert_eq!(parse_quantity("64Mi"), Some(64.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("x"), None);
    }

    #[test]
    fn expansion() {
        let env = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand("$(A)-$(B)-$$(A)", &env), "1-$(B)-$(A)");
    }
}
