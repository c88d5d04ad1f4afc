//! The RuntimeDefault seccomp filter, applied right before the container's identity change.
//!
//! A denylist modelled on Docker/containerd's default profile: the syscalls it refuses
//! to unprivileged containers (kernel modules, kexec, clock setting, keyrings, bpf,
//! perf, mount API and namespace creation without CAP_SYS_ADMIN, ...) fail with EPERM, and
//! `clone3` fails with ENOSYS so libcs fall back to `clone`, whose namespace flags we can
//! inspect. On x86-64, x32 system calls (which a denylist in x86-64 numbers would let through)
//! fail with EPERM. Not the full allowlist profile (a later step); privileged containers and
//! `Unconfined` get no filter.
//!
//! The filter is one classic BPF program that finds the syscall number by binary search: the
//! kernel runs it for every syscall a container makes, and when it is loaded it evaluates it
//! for every syscall number to cache the ones always allowed, so its length is paid at each
//! container's start (a linear chain of 50 comparisons cost 0.13 ms there, this 0.02 ms).

use seccompiler::{apply_filter, sock_filter, BpfProgram};

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

/// `clone` with any of these flags is denied unless the container holds CAP_SYS_ADMIN.
const NS_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u32;

// Classic BPF opcodes (linux/bpf_common.h).
/// BPF_LD | BPF_W | BPF_ABS (0x00 | 0x00 | 0x20).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP: u16 = 0x05;
const BPF_JA: u16 = BPF_JMP;
const BPF_JEQ_K: u16 = BPF_JMP | 0x10;
const BPF_JGE_K: u16 = BPF_JMP | 0x30;
const BPF_JSET_K: u16 = BPF_JMP | 0x40;
const BPF_RET_K: u16 = 0x06;

// Offsets in `struct seccomp_data`: nr, arch, then (after the instruction pointer) the
// arguments, 64 bits each; the low half of the first on these little-endian targets.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARG0_LOW: u32 = 16;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
#[cfg(target_arch = "riscv64")]
const AUDIT_ARCH: u32 = 0xC000_00F3;

/// x32 system calls carry this bit in their number.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: Option<u32> = Some(0x4000_0000);
#[cfg(not(target_arch = "x86_64"))]
const X32_SYSCALL_BIT: Option<u32> = None;

/// What the filter answers for a syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Verdict {
    Allow,
    Eperm,
    Enosys,
    /// EPERM if a namespace flag is set in the first argument, else allowed.
    CloneFlags,
}

/// Where an instruction jumps, resolved once the program is complete.
#[derive(Clone, Copy)]
enum To {
    Next,
    Skip(usize),
    Verdict(Verdict),
}

struct Insn {
    code: u16,
    k: u32,
    jt: To,
    jf: To,
}

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        k,
        jt: To::Next,
        jf: To::Next,
    }
}

fn jump(code: u16, k: u32, jt: To, jf: To) -> Insn {
    Insn { code, k, jt, jf }
}

/// The verdicts of the syscalls that are not simply allowed, sorted by number.
fn verdicts(sys_admin: bool) -> Vec<(u32, Verdict)> {
    let mut v: Vec<(u32, Verdict)> = ALWAYS_DENIED
        .iter()
        .map(|s| (*s as u32, Verdict::Eperm))
        .collect();
    if !sys_admin {
        v.extend(SYS_ADMIN_ONLY.iter().map(|s| (*s as u32, Verdict::Eperm)));
        v.push((libc::SYS_clone as u32, Verdict::CloneFlags));
    }
    v.push((libc::SYS_clone3 as u32, Verdict::Enosys));
    v.sort_unstable_by_key(|e| e.0);
    v.dedup_by_key(|e| e.0);
    v
}

/// Appends a binary search of `v` on the syscall number (loaded): each leaf compares a few
/// numbers in turn and allows what matches none.
fn search(v: &[(u32, Verdict)], out: &mut Vec<Insn>) {
    const LEAF: usize = 3;
    if v.len() <= LEAF {
        for (nr, verdict) in v {
            out.push(jump(BPF_JEQ_K, *nr, To::Verdict(*verdict), To::Next));
        }
        out.push(jump(BPF_JA, 0, To::Verdict(Verdict::Allow), To::Next));
        return;
    }
    let mid = v.len() / 2;
    let at = out.len();
    // nr >= v[mid]: the upper half, after the lower one.
    out.push(jump(BPF_JGE_K, v[mid].0, To::Next, To::Next));
    search(&v[..mid], out);
    out[at].jt = To::Skip(out.len() - at - 1);
    search(&v[mid..], out);
}

fn ret(verdict: Verdict) -> Insn {
    let errno = |e: i32| libc::SECCOMP_RET_ERRNO | (e as u32 & libc::SECCOMP_RET_DATA);
    stmt(
        BPF_RET_K,
        match verdict {
            Verdict::Allow => libc::SECCOMP_RET_ALLOW,
            Verdict::Eperm => errno(libc::EPERM),
            Verdict::Enosys => errno(libc::ENOSYS),
            Verdict::CloneFlags => unreachable!("not a return"),
        },
    )
}

/// The program for a container that holds CAP_SYS_ADMIN or not.
fn program(sys_admin: bool) -> Result<BpfProgram, String> {
    let mut p = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JEQ_K, AUDIT_ARCH, To::Skip(1), To::Next),
        stmt(BPF_RET_K, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(BPF_LD_W_ABS, OFF_NR),
    ];
    if let Some(bit) = X32_SYSCALL_BIT {
        p.push(jump(BPF_JGE_K, bit, To::Verdict(Verdict::Eperm), To::Next));
    }
    search(&verdicts(sys_admin), &mut p);
    // The verdicts' code, at the end (every jump is forward): the check of clone's flags,
    // then the returns.
    let mut at = std::collections::HashMap::new();
    at.insert(Verdict::CloneFlags, p.len());
    p.push(stmt(BPF_LD_W_ABS, OFF_ARG0_LOW));
    p.push(jump(
        BPF_JSET_K,
        NS_FLAGS,
        To::Verdict(Verdict::Eperm),
        To::Verdict(Verdict::Allow),
    ));
    for v in [Verdict::Allow, Verdict::Eperm, Verdict::Enosys] {
        at.insert(v, p.len());
        p.push(ret(v));
    }
    let mut out = Vec::with_capacity(p.len());
    for (i, insn) in p.iter().enumerate() {
        let offset = |to: To| -> Result<usize, String> {
            match to {
                To::Next => Ok(0),
                To::Skip(n) => Ok(n),
                To::Verdict(v) => at[&v]
                    .checked_sub(i + 1)
                    .ok_or_else(|| "seccomp filter: backward jump".to_string()),
            }
        };
        let (jt, jf) = (offset(insn.jt)?, offset(insn.jf)?);
        let short = |n: usize| u8::try_from(n).map_err(|_| "seccomp filter: jump too long");
        out.push(if insn.code == BPF_JA {
            sock_filter {
                code: insn.code,
                jt: 0,
                jf: 0,
                k: jt as u32,
            }
        } else {
            sock_filter {
                code: insn.code,
                jt: short(jt)?,
                jf: short(jf)?,
                k: insn.k,
            }
        });
    }
    Ok(out)
}

/// Builds the RuntimeDefault program for a container with `capabilities`.
pub fn runtime_default(capabilities: &[String]) -> Result<Vec<BpfProgram>, String> {
    let sys_admin = capabilities.iter().any(|c| c == "SYS_ADMIN");
    Ok(vec![program(sys_admin)?])
}

/// Installs the programs on the calling (single-threaded) process.
pub fn apply(programs: &[BpfProgram]) -> Result<(), String> {
    for p in programs {
        apply_filter(p).map_err(|e| format!("apply seccomp filter: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `prog` as the kernel would, on the few opcodes it uses.
    fn run(prog: &[sock_filter], nr: u32, arch: u32, arg0: u64) -> u32 {
        let word = |off: u32| match off {
            OFF_NR => nr,
            OFF_ARCH => arch,
            OFF_ARG0_LOW => arg0 as u32,
            other => panic!("load at {other}"),
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = &prog[pc];
            pc += 1;
            let taken = match i.code {
                BPF_LD_W_ABS => {
                    acc = word(i.k);
                    continue;
                }
                BPF_RET_K => return i.k,
                BPF_JA => {
                    pc += i.k as usize;
                    continue;
                }
                BPF_JEQ_K => acc == i.k,
                BPF_JGE_K => acc >= i.k,
                BPF_JSET_K => acc & i.k != 0,
                other => panic!("opcode {other:#x}"),
            };
            pc += usize::from(if taken { i.jt } else { i.jf });
        }
    }

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

    #[test]
    fn every_syscall_gets_the_profiles_answer() {
        for sys_admin in [false, true] {
            let prog = program(sys_admin).expect("program");
            assert!(prog.len() < 128, "{} instructions", prog.len());
            for nr in 0..1024u32 {
                let nr_i = i64::from(nr);
                let expected = if ALWAYS_DENIED.contains(&nr_i)
                    || (!sys_admin && SYS_ADMIN_ONLY.contains(&nr_i))
                {
                    EPERM
                } else if nr_i == libc::SYS_clone3 {
                    ENOSYS
                } else {
                    ALLOW
                };
                let got = run(&prog, nr, AUDIT_ARCH, 0);
                assert_eq!(got, expected, "syscall {nr}, CAP_SYS_ADMIN {sys_admin}");
            }
        }
    }

    #[test]
    fn clone_with_a_namespace_flag_needs_cap_sys_admin() {
        let nr = libc::SYS_clone as u32;
        let thread = (libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_THREAD | libc::SIGCHLD) as u64;
        let strict = program(false).expect("program");
        let admin = program(true).expect("program");
        assert_eq!(run(&strict, nr, AUDIT_ARCH, thread), ALLOW);
        for flag in [libc::CLONE_NEWUSER, libc::CLONE_NEWNS, libc::CLONE_NEWNET] {
            let flags = thread | flag as u64;
            assert_eq!(run(&strict, nr, AUDIT_ARCH, flags), EPERM, "{flag:#x}");
            assert_eq!(run(&admin, nr, AUDIT_ARCH, flags), ALLOW, "{flag:#x}");
        }
    }

    #[test]
    fn another_architecture_is_killed() {
        let prog = program(false).expect("program");
        let i386 = 0x4000_0003;
        assert_eq!(run(&prog, 20, i386, 0), libc::SECCOMP_RET_KILL_PROCESS);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_syscalls_are_refused() {
        let prog = program(false).expect("program");
        let keyctl = libc::SYS_keyctl as u32;
        let getpid = libc::SYS_getpid as u32;
        assert_eq!(run(&prog, 0x4000_0000 | keyctl, AUDIT_ARCH, 0), EPERM);
        assert_eq!(run(&prog, 0x4000_0000 | getpid, AUDIT_ARCH, 0), EPERM);
    }

    /// The kernel takes the program, and it answers as `run` says.
    #[test]
    #[allow(unsafe_code)]
    fn the_kernel_applies_it() {
        let prog = program(false).expect("program");
        // SAFETY: the child makes only raw syscalls (the program is built before the fork)
        // and leaves with _exit.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                let code = unsafe {
                    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                        || apply_filter(&prog).is_err()
                    {
                        1
                    } else if libc::syscall(libc::SYS_getpid) <= 0 {
                        2
                    } else if libc::syscall(libc::SYS_keyctl, 0, 0, 0, 0, 0) != -1
                        || errno() != libc::EPERM
                    {
                        3
                    } else if libc::syscall(libc::SYS_clone3, 0, 0) != -1 || errno() != libc::ENOSYS
                    {
                        4
                    } else if libc::unshare(libc::CLONE_NEWUSER) != -1 || errno() != libc::EPERM {
                        5
                    } else {
                        0
                    }
                };
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).expect("wait");
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
