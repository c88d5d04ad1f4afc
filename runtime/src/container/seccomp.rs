//! The RuntimeDefault seccomp filter, applied right before the container's identity change.
//!
//! A denylist modelled on Docker/containerd's default profile: the syscalls it refuses
//! to unprivileged containers (kernel modules, kexec, clock setting, keyrings, bpf,
//! perf, mount API and namespace creation without CAP_SYS_ADMIN, ...) fail with EPERM, and
//! `clone3` fails with ENOSYS so libcs fall back to `clone`, whose namespace flags we can
//! inspect. Not the full allowlist profile (a later step); privileged containers and
//! `Unconfined` get no filter.

use std::collections::BTreeMap;

use seccompiler::{
    apply_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

const ALWAYS_DENIED: &[i64] = &[
    libc::SYS_acct,
    libc::SYS_add_key,
    libc::SYS_clock_adjtime,
    libc::SYS_clock_settime,
    libc::SYS_delete_module,
    libc::SYS_finit_module,
    libc::SYS_init_module,
    libc::SYS_kexec_file_load,
    libc::SYS_kexec_load,
    libc::SYS_keyctl,
    libc::SYS_request_key,
    libc::SYS_perf_event_open,
    libc::SYS_reboot,
    libc::SYS_settimeofday,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_quotactl,
    libc::SYS_lookup_dcookie,
    libc::SYS_get_mempolicy,
    libc::SYS_set_mempolicy,
    libc::SYS_mbind,
    libc::SYS_move_pages,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_uselib,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ustat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_sysfs,
    #[cfg(target_arch = "x86_64")]
    libc::SYS__sysctl,
];

/// Denied unless the container holds CAP_SYS_ADMIN (as in Docker's profile).
const SYS_ADMIN_ONLY: &[i64] = &[
    libc::SYS_bpf,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_setns,
    libc::SYS_unshare,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
];

const NS_FLAGS: &[i32] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

fn arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|e| format!("seccomp: {e}"))
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    action: SeccompAction,
) -> Result<BpfProgram, String> {
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, action, arch()?)
        .map_err(|e| format!("seccomp filter: {e}"))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| format!("compile seccomp filter: {e}"))
}

/// Builds the two RuntimeDefault programs for a container with `capabilities`.
pub fn runtime_default(capabilities: &[String]) -> Result<Vec<BpfProgram>, String> {
    let sys_admin = capabilities.iter().any(|c| c == "SYS_ADMIN");
    let mut deny: BTreeMap<i64, Vec<SeccompRule>> =
        ALWAYS_DENIED.iter().map(|s| (*s, Vec::new())).collect();
    if !sys_admin {
        deny.extend(SYS_ADMIN_ONLY.iter().map(|s| (*s, Vec::new())));
        let clone_rules = NS_FLAGS
            .iter()
            .map(|f| {
                let cond = SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(*f as u64),
                    *f as u64,
                )
                .map_err(|e| format!("seccomp condition: {e}"))?;
                SeccompRule::new(vec![cond]).map_err(|e| format!("seccomp rule: {e}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        deny.insert(libc::SYS_clone, clone_rules);
    }
    let eperm = compile(deny, SeccompAction::Errno(libc::EPERM as u32))?;
    let clone3 = compile(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Errno(libc::ENOSYS as u32),
    )?;
    Ok(vec![clone3, eperm])
}

/// Installs the programs on the calling (single-threaded) process.
pub fn apply(programs: &[BpfProgram]) -> Result<(), String> {
    for p in programs {
        apply_filter(p).map_err(|e| format!("apply seccomp filter: {e}"))?;
    }
    Ok(())
}
