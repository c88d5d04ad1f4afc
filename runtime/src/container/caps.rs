//! Capability sets: containerd's default set with CRI add/drop applied, and applying a set to
//! the current (container) process right before exec.

use std::collections::BTreeSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};

/// containerd's `pkg/oci` default capabilities (14).
pub const DEFAULT_CAPS: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

fn norm(name: &str) -> String {
    let up = name.trim().to_ascii_uppercase();
    up.strip_prefix("CAP_").map(str::to_string).unwrap_or(up)
}

fn all_names() -> BTreeSet<String> {
    caps::all()
        .into_iter()
        .map(|c| norm(&c.to_string()))
        .collect()
}

/// The final set: everything when privileged, else default - drop + add (`ALL` understood;
/// drop is applied first as in containerd, so `drop: [ALL], add: [X]` gives `{X}`).
pub fn resolve(privileged: bool, add: &[String], drop: &[String]) -> Vec<String> {
    if privileged {
        return all_names().into_iter().collect();
    }
    let mut set: BTreeSet<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    for d in drop.iter().map(|d| norm(d)) {
        if d == "ALL" {
            set.clear();
        } else {
            set.remove(&d);
        }
    }
    for a in add.iter().map(|a| norm(a)) {
        if a == "ALL" {
            set.extend(all_names());
        } else if all_names().contains(&a) {
            set.insert(a);
        }
    }
    set.into_iter().collect()
}

fn to_set(names: &[String]) -> CapsHashSet {
    names
        .iter()
        .filter_map(|n| Capability::from_str(&format!("CAP_{n}")).ok())
        .collect()
}

/// Drops the bounding set to `names`; call before changing uid (needs CAP_SETPCAP).
pub fn limit_bounding(names: &[String]) -> Result<(), String> {
    let keep = to_set(names);
    for c in caps::all() {
        if !keep.contains(&c) {
            match caps::drop(None, CapSet::Bounding, c) {
                Ok(()) => {}
                // Capabilities newer than the running kernel.
                Err(_) if !caps::has_cap(None, CapSet::Bounding, c).unwrap_or(false) => {}
                Err(e) => return Err(format!("drop bounding capability {c}: {e}")),
            }
        }
    }
    Ok(())
}

/// Sets inheritable, permitted and effective to `names` and clears ambient; call after
/// changing uid with keepcaps on.
pub fn apply(names: &[String]) -> Result<(), String> {
    // We cannot gain what we do not hold (a host that runs us without some capability).
    let held = caps::read(None, CapSet::Permitted)
        .map_err(|e| format!("read permitted capabilities: {e}"))?;
    let set: CapsHashSet = to_set(names).intersection(&held).copied().collect();
    caps::clear(None, CapSet::Ambient).map_err(|e| format!("clear ambient capabilities: {e}"))?;
    // Effective must stay within permitted at every step: shrink it first.
    caps::set(None, CapSet::Effective, &set)
        .map_err(|e| format!("set effective capabilities: {e}"))?;
    caps::set(None, CapSet::Permitted, &set)
        .map_err(|e| format!("set permitted capabilities: {e}"))?;
    caps::set(None, CapSet::Inheritable, &set)
        .map_err(|e| format!("set inheritable capabilities: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_add_drop() {
        assert_eq!(resolve(false, &[], &[]).len(), 14);
        let s = resolve(false, &["CAP_SYS_ADMIN".into()], &["net_raw".into()]);
        assert!(s.contains(&"SYS_ADMIN".to_string()));
        assert!(!s.contains(&"NET_RAW".to_string()));
        assert_eq!(
            resolve(false, &["NET_BIND_SERVICE".into()], &["ALL".into()]),
            vec!["NET_BIND_SERVICE".to_string()]
        );
        assert!(resolve(true, &[], &[]).len() > 30);
    }
}
