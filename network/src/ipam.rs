//! Host-local IPAM: hands out addresses of the node's pod CIDR to sandboxes and remembers them
//! on disk, one file per address (`<dir>/10.42.0.5`) whose content is the owner's sandbox id.
//!
//! A record is written to a private temporary file and then hard-linked to the address's name:
//! `link(2)` fails with `EEXIST` when the address is taken, so allocation is atomic across
//! threads and processes, and a crash never leaves a half-written record under an address name.
//! The files are the truth; the in-memory owner index and the round-robin cursor are caches
//! rebuilt by [`Ipam::open`]. Records are not fsynced: after a power loss every sandbox is gone
//! anyway, and the kubelet reconciles allocations against live sandboxes via
//! [`Ipam::allocations`]. This module does not know about links or namespaces.

use std::{
    collections::HashMap,
    fs, io,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, MutexGuard,
    },
};

use ipnet::Ipv4Net;

use crate::error::{Error, Result};

/// Prefix of temporary record files; never a valid address, so listing skips them.
const TMP_PREFIX: &str = ".tmp-";

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Address allocator for one pod CIDR, persisted in one directory.
#[derive(Debug)]
pub struct Ipam {
    dir: PathBuf,
    cidr: Ipv4Net,
    gateway: Ipv4Addr,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// owner -> address, as found on disk at open plus our own changes since.
    by_owner: HashMap<String, Ipv4Addr>,
    /// The last address handed out; the next search starts after it so freed addresses are
    /// reused last (stale ARP and conntrack entries age out first).
    last: Option<Ipv4Addr>,
}

impl Ipam {
    /// Opens (creating if needed) the store in `dir` for `cidr`, reserving `gateway`.
    pub fn open(dir: impl Into<PathBuf>, cidr: Ipv4Net, gateway: Ipv4Addr) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| Error::IpamDir {
            path: dir.clone(),
            source,
        })?;
        let ipam = Self {
            dir,
            cidr,
            gateway,
            state: Mutex::new(State::default()),
        };
        ipam.remove_stale_tmp();
        let records = ipam.allocations()?;
        let mut state = ipam.lock();
        for (ip, owner) in records {
            state.last = state.last.max(Some(ip));
            state.by_owner.insert(owner, ip);
        }
        drop(state);
        Ok(ipam)
    }

    /// Returns the address of `owner`, allocating a free one if it has none. Calling it again
    /// for the same owner returns the same address.
    pub fn allocate(&self, owner: &str) -> Result<Ipv4Addr> {
        validate_owner(owner)?;
        let mut state = self.lock();
        if let Some(ip) = state.by_owner.get(owner).copied() {
            if self.read_owner(ip).as_deref() == Some(owner) {
                return Ok(ip);
            }
            state.by_owner.remove(owner);
        }
        let candidates = self.candidates(state.last);
        let tmp = self.write_tmp(owner)?;
        let result = self.claim_first_free(&tmp, owner, candidates);
        let _ = fs::remove_file(&tmp);
        let ip = result?;
        state.by_owner.insert(owner.to_owned(), ip);
        state.last = Some(ip);
        Ok(ip)
    }

    /// Frees the address of `owner`. Returns the freed address, or `None` if it had none.
    pub fn release(&self, owner: &str) -> Result<Option<Ipv4Addr>> {
        validate_owner(owner)?;
        let mut state = self.lock();
        let cached = state.by_owner.remove(owner);
        let ip = match cached.filter(|ip| self.read_owner(*ip).as_deref() == Some(owner)) {
            Some(ip) => Some(ip),
            None => self
                .allocations()?
                .into_iter()
                .find(|(_, o)| o == owner)
                .map(|(ip, _)| ip),
        };
        let Some(ip) = ip else { return Ok(None) };
        let path = self.record_path(ip);
        match fs::remove_file(&path) {
            Ok(()) => Ok(Some(ip)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::IpamRelease { ip, path, source }),
        }
    }

    /// The address currently recorded for `owner`, if any (reads the disk).
    pub fn lookup(&self, owner: &str) -> Result<Option<Ipv4Addr>> {
        Ok(self
            .allocations()?
            .into_iter()
            .find(|(_, o)| o == owner)
            .map(|(ip, _)| ip))
    }

    /// Every recorded allocation, sorted by address, as found on disk.
    pub fn allocations(&self) -> Result<Vec<(Ipv4Addr, String)>> {
        let dir_err = |source| Error::IpamDir {
            path: self.dir.clone(),
            source,
        };
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(dir_err)? {
            let entry = entry.map_err(dir_err)?;
            let Some(ip) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            if let Some(owner) = self.read_owner(ip) {
                out.push((ip, owner));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Host addresses of the CIDR minus network, gateway and broadcast, starting after `last`.
    fn candidates(&self, last: Option<Ipv4Addr>) -> Vec<Ipv4Addr> {
        let hosts: Vec<Ipv4Addr> = self
            .cidr
            .hosts()
            .filter(|ip| *ip != self.gateway && *ip != self.cidr.broadcast())
            .filter(|ip| *ip != self.cidr.network())
            .collect();
        let start = last
            .and_then(|l| hosts.iter().position(|ip| *ip > l))
            .unwrap_or(0);
        hosts[start..]
            .iter()
            .chain(&hosts[..start])
            .copied()
            .collect()
    }

    fn claim_first_free(
        &self,
        tmp: &Path,
        owner: &str,
        candidates: Vec<Ipv4Addr>,
    ) -> Result<Ipv4Addr> {
        for ip in candidates {
            let path = self.record_path(ip);
            match fs::hard_link(tmp, &path) {
                Ok(()) => return Ok(ip),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(source) => {
                    return Err(Error::IpamRecord {
                        ip,
                        owner: owner.to_owned(),
                        path,
                        source,
                    })
                }
            }
        }
        Err(Error::IpamExhausted {
            cidr: self.cidr,
            owner: owner.to_owned(),
        })
    }

    fn write_tmp(&self, owner: &str) -> Result<PathBuf> {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self
            .dir
            .join(format!("{TMP_PREFIX}{}-{n}", std::process::id()));
        fs::write(&path, owner).map_err(|source| Error::IpamRecord {
            ip: self.cidr.network(),
            owner: owner.to_owned(),
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Removes temporary records left by a process that crashed mid-allocation.
    fn remove_stale_tmp(&self) {
        let ours = format!("{TMP_PREFIX}{}-", std::process::id());
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(TMP_PREFIX) && !name.starts_with(&ours) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    fn read_owner(&self, ip: Ipv4Addr) -> Option<String> {
        fs::read_to_string(self.record_path(ip)).ok()
    }

    fn record_path(&self, ip: Ipv4Addr) -> PathBuf {
        self.dir.join(ip.to_string())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only caches behind; the files are the truth.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Sandbox ids become file contents; keep them to one printable line.
fn validate_owner(owner: &str) -> Result<()> {
    let bad = owner.is_empty() || owner.len() > 253 || owner.contains(['/', '\0', '\n']);
    if bad {
        return Err(Error::InvalidSandboxId {
            id: owner.to_owned(),
        });
    }
    Ok(())
}
