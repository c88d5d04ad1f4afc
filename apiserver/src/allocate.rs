//! Allocation of Service cluster IPs (from the service CIDR) and node ports (30000-32767) at
//! create time, with the upstream errors for taken or out-of-range values.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use crate::error::{ApiError, Cause};
use crate::handlers::Shared;
use crate::resources::ResourceType;

/// The service CIDR, 10.43.0.0/16 by default; .1 is the `kubernetes` service, .10 DNS.
#[derive(Debug, Clone, Copy)]
pub struct ServiceCidr {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Default for ServiceCidr {
    fn default() -> Self {
        ServiceCidr {
            base: Ipv4Addr::new(10, 43, 0, 0),
            prefix: 16,
        }
    }
}

impl ServiceCidr {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
        (u32::from(ip) & mask) == (u32::from(self.base) & mask)
    }
    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix as u32)
    }
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + n)
    }
}

fn used(state: &Shared) -> Result<(HashSet<String>, HashSet<i64>), ApiError> {
    let page = state
        .store
        .list("//services/", None, None, |_| true)
        .map_err(|e| ApiError::Storage(e.to_string()))?;
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    for s in page.items {
        if let Some(ip) = s.pointer("/spec/clusterIP").and_then(Value::as_str) {
            ips.insert(ip.to_string());
        }
        for p in s
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            if let Some(n) = p.get("nodePort").and_then(Value::as_i64) {
                ports.insert(n);
            }
        }
    }
    Ok((ips, ports))
}

fn invalid(name: &str, cause: Cause) -> ApiError {
    ApiError::Invalid {
        kind: "Service".into(),
        group: String::new(),
        name: name.into(),
        causes: vec![cause],
    }
}

pub async fn on_create(state: &Shared, rt: &ResourceType, obj: &mut Value) -> Result<(), ApiError> {
    if rt.kind != "Service" || !rt.group.is_empty() {
        return Ok(());
    }
    let _guard = state.alloc_lock.lock().await;
    let cidr = state.service_cidr;
    let name = crate::registry::name_of(obj).to_string();
    let ty = obj
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    let (ips, ports) = used(state)?;
    if ty != "ExternalName" {
        let want = obj
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let ip = if want == "None" {
            "None".to_string()
        } else if want.is_empty() {
            let size = cidr.size();
            let mut chosen = None;
            for _ in 0..64 {
                let n = rand::random_range(16..size - 1);
                let cand = cidr.nth(n).to_string();
                if !ips.contains(&cand) {
                    chosen = Some(cand);
                    break;
                }
            }
            if chosen.is_none() {
                chosen = (16..size - 1)
                    .map(|n| cidr.nth(n).to_string())
                    .find(|c| !ips.contains(c));
            }
            chosen.ok_or_else(|| {
                ApiError::Internal("failed to allocate a serviceIP: range is full".into())
            })?
        } else {
            let parsed: Ipv4Addr = want.parse().map_err(|_| {
                invalid(
                    &name,
                    Cause::invalid(
                        "spec.clusterIPs[0]",
                        &want,
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    ),
                )
            })?;
            if !cidr.contains(parsed) {
                return Err(invalid(&name, Cause::invalid("spec.clusterIPs", &want,
                    &format!("failed to allocate IP {want}: the provided IP ({want}) is not in the valid range. The range of valid IPs is {}/{}", cidr.base, cidr.prefix))));
            }
            if ips.contains(&want) {
                return Err(invalid(
                    &name,
                    Cause::invalid(
                        "spec.clusterIPs",
                        &want,
                        &format!("failed to allocate IP {want}: provided IP is already allocated"),
                    ),
                ));
            }
            want
        };
        obj["spec"]["clusterIP"] = json!(ip);
        obj["spec"]["clusterIPs"] = json!([ip]);
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        let mut taken = ports;
        if let Some(list) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for p in list.iter_mut() {
                match p.get("nodePort").and_then(Value::as_i64) {
                    Some(n) if n != 0 => {
                        if !(30000..=32767).contains(&n) {
                            return Err(invalid(&name, Cause::invalid("spec.ports[0].nodePort", &n.to_string(),
                                "provided port is not in the valid range. The range of valid ports is 30000-32767")));
                        }
                        if !taken.insert(n) {
                            return Err(invalid(
                                &name,
                                Cause::invalid(
                                    "spec.ports[0].nodePort",
                                    &n.to_string(),
                                    "provided port is already allocated",
                                ),
                            ));
                        }
                    }
                    _ => {
                        let free = (0..64)
                            .map(|_| rand::random_range(30000..=32767))
                            .find(|n| !taken.contains(n))
                            .or_else(|| (30000..=32767).find(|n| !taken.contains(n)))
                            .ok_or_else(|| ApiError::Internal("node port range is full".into()))?;
                        taken.insert(free);
                        p["nodePort"] = json!(free);
                    }
                }
            }
        }
    }
    Ok(())
}
