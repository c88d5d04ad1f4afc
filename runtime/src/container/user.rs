//! Resolving the container user inside its rootfs (after pivot_root): Docker-style
//! `user[:group]` names or numbers via the image's /etc/passwd and /etc/group.

use std::fs;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: Option<String>,
}

impl Identity {
    /// Adds `extra` (the pod's supplementalGroups and fsGroup) to the supplementary groups.
    pub fn with_groups(mut self, extra: &[u32]) -> Identity {
        for g in extra {
            if !self.groups.contains(g) {
                self.groups.push(*g);
            }
        }
        self
    }
}

fn table(read: &dyn Fn(&str) -> String, path: &str) -> Vec<Vec<String>> {
    read(path)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect()
}

/// Resolves the identity inside the current root (after pivot_root); `run_as_*` override
/// the image's `User`.
pub fn resolve(
    image_user: &str,
    run_as_user: Option<u32>,
    run_as_group: Option<u32>,
) -> Result<Identity, String> {
    resolve_with(
        &|p| fs::read_to_string(p).unwrap_or_default(),
        image_user,
        run_as_user,
        run_as_group,
    )
}

/// Like `resolve`, reading /etc/passwd and /etc/group through `read` (for example confined
/// to a rootfs that is not our root).
pub fn resolve_with(
    read: &dyn Fn(&str) -> String,
    image_user: &str,
    run_as_user: Option<u32>,
    run_as_group: Option<u32>,
) -> Result<Identity, String> {
    let (u, g) = match image_user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (image_user, None),
    };
    let pw = table(read, "/etc/passwd");
    let mut name = None;
    let mut home = None;
    let mut pw_gid = None;
    let uid = match run_as_user {
        Some(uid) => uid,
        None if u.is_empty() => 0,
        None => match u.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let row = pw.iter().find(|r| r[0] == u).ok_or_else(|| {
                    format!("unable to find user {u}: no matching entries in passwd file")
                })?;
                row[2]
                    .parse()
                    .map_err(|_| format!("bad uid for user {u} in /etc/passwd"))?
            }
        },
    };
    if let Some(row) = pw.iter().find(|r| r[2].parse::<u32>().ok() == Some(uid)) {
        name = Some(row[0].clone());
        pw_gid = row[3].parse::<u32>().ok();
        home = row.get(5).cloned();
    }
    let groups_tbl = table(read, "/etc/group");
    let gid = match (run_as_group, g) {
        (Some(gid), _) => gid,
        (None, Some(g)) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups_tbl
                .iter()
                .find(|r| r[0] == g)
                .and_then(|r| r[2].parse().ok())
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        },
        (None, None) => pw_gid.unwrap_or(0),
    };
    let mut groups = vec![gid];
    if let Some(n) = &name {
        for r in &groups_tbl {
            if r[3].split(',').any(|m| m == n) {
                if let Ok(x) = r[2].parse::<u32>() {
                    if !groups.contains(&x) {
                        groups.push(x);
                    }
                }
            }
        }
    }
    Ok(Identity {
        uid,
        gid,
        groups,
        home,
    })
}
