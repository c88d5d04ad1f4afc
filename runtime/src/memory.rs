//! Keeping the server's resident memory close to what it really uses (edge devices count every
//! MiB): with glibc, at most two malloc arenas (fewer half-empty per-thread heaps), and every
//! 10 s, if more than 4 MiB sit free inside the heap (typically after a burst of large LISTs
//! or many writes), hand them back to the kernel with `malloc_trim`. Measured after the API
//! benchmark's load: 163 MB resident before a trim, 54 MB after.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Call once, before any thread starts.
#[allow(unsafe_code)]
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Bytes free inside the heap (not returned to the kernel).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn free_in_heap() -> usize {
    // SAFETY: mallinfo2 reads allocator statistics and has no preconditions.
    unsafe { libc::mallinfo2().fordblks }
}

/// Hand free heap memory back to the kernel every 10 s when there is enough of it.
#[allow(unsafe_code)]
pub async fn trim_periodically(cancel: CancellationToken) {
    const THRESHOLD: usize = 4 << 20;
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if free_in_heap() > THRESHOLD {
            // SAFETY: malloc_trim has no preconditions; it may take a few ms, so it runs on a
            // blocking thread rather than a runtime worker.
            let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
        }
    }
}

/// Drops this process's resident pages of program code and read-only data (of the binary and
/// of the shared libraries), and returns free heap to the kernel.
///
/// For the shim: it is a re-exec of the whole k1s binary, and start-up (argument parsing,
/// namespace and socket set-up, with the kernel mapping 64 KiB around every page fault) leaves
/// 2-3 MiB of code and rodata resident that the idle serve loop never touches again. The pages
/// are clean and file-backed, so dropping them loses nothing: the few the loop needs fault back
/// in from the page cache. Writable segments (data, bss, relocated RELRO) are left alone.
#[allow(unsafe_code)]
pub fn release_idle_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" fn each(
            info: *mut libc::dl_phdr_info,
            _size: libc::size_t,
            _data: *mut libc::c_void,
        ) -> libc::c_int {
            // SAFETY: the loader passes a valid dl_phdr_info whose phdr array has dlpi_phnum
            // entries, for the duration of this call.
            let info = unsafe { &*info };
            let name = if info.dlpi_name.is_null() {
                &b""[..]
            } else {
                // SAFETY: dlpi_name is a NUL-terminated string owned by the loader.
                unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) }.to_bytes()
            };
            // The main program has an empty name and libraries a path; the vDSO has neither.
            if !(name.is_empty() || name.starts_with(b"/")) || info.dlpi_phdr.is_null() {
                return 0;
            }
            // SAFETY: as above, dlpi_phdr points at dlpi_phnum program headers.
            let phdrs =
                unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
            // An object with text relocations had its read-only pages written by the loader:
            // those are not the file's contents any more, so the object is left alone.
            for ph in phdrs.iter().filter(|ph| ph.p_type == libc::PT_DYNAMIC) {
                #[repr(C)]
                struct Dyn {
                    tag: i64,
                    val: u64,
                }
                const DT_NULL: i64 = 0;
                const DT_TEXTREL: i64 = 22;
                const DT_FLAGS: i64 = 30;
                const DF_TEXTREL: u64 = 4;
                let first = (info.dlpi_addr as usize + ph.p_vaddr as usize) as *const Dyn;
                let n = ph.p_memsz as usize / std::mem::size_of::<Dyn>();
                // SAFETY: PT_DYNAMIC locates the object's mapped dynamic section, an array of
                // (tag, value) pairs ended by DT_NULL within p_memsz bytes.
                let dynamic = unsafe { std::slice::from_raw_parts(first, n) };
                for d in dynamic {
                    if d.tag == DT_NULL {
                        break;
                    }
                    if d.tag == DT_TEXTREL || (d.tag == DT_FLAGS && d.val & DF_TEXTREL != 0) {
                        return 0;
                    }
                }
            }
            let page = 4096usize;
            for ph in phdrs {
                if ph.p_type != libc::PT_LOAD || ph.p_flags & libc::PF_W != 0 {
                    continue;
                }
                // Only whole pages inside the segment, so a page shared with a neighbour is
                // never touched.
                let first = info.dlpi_addr as usize + ph.p_vaddr as usize;
                let start = first.next_multiple_of(page);
                let end = (first + ph.p_memsz as usize) & !(page - 1);
                if end <= start {
                    continue;
                }
                // SAFETY: [start, end) is a read-only, file-backed private mapping of a loaded
                // object that no one has written to; after MADV_DONTNEED its pages are read
                // again from the file on the next access, with the same contents.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
                }
            }
            0
        }
        // SAFETY: the callback only reads what the loader hands it and calls madvise.
        unsafe {
            libc::dl_iterate_phdr(Some(each), std::ptr::null_mut());
            libc::malloc_trim(0);
        }
    }
}

/// File system work left for after this process's exit (see `after_exit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitOp {
    /// Make a directory with this mode.
    Mkdir(std::path::PathBuf, u32),
    /// Wait until the process with this pid has exited, up to `EXIT_WAIT_MS` (its cgroup
    /// cannot go before).
    WaitExit(u32),
    /// Delete an empty directory; if that fails (but for a directory already gone), skip
    /// the next `n` ops (what must not go without it: a sandbox's record after its cgroups).
    RmdirElseSkip(std::path::PathBuf, usize),
    /// Delete a file, or a directory and everything below it (symlinks are deleted, never
    /// followed), down to `RM_TREE_DEPTH` levels: what is deeper stays.
    RmTree(std::path::PathBuf),
    /// Detach what is mounted on this path (`umount2` with `MNT_DETACH`), if anything is.
    Detach(std::path::PathBuf),
}

/// How deep below its top an `ExitOp::RmTree` deletes (each level takes `RM_TREE_BUF` bytes of
/// the helper's stack).
pub const RM_TREE_DEPTH: u32 = 128;
const RM_TREE_BUF: usize = 1024;

/// How long an `ExitOp::WaitExit` waits at most.
pub const EXIT_WAIT_MS: i64 = 2000;

/// The `RawOp::nr` of an `ExitOp::WaitExit` and an `ExitOp::RmTree`, which are no system
/// call numbers.
const WAIT_EXIT: libc::c_long = -1;
const RM_TREE: libc::c_long = -2;
/// The `RawOp::nr` of an `ExitOp::Detach` (umount2 takes no directory descriptor).
const DETACH: libc::c_long = -3;

static AFTER_EXIT: std::sync::Mutex<Vec<ExitOp>> = std::sync::Mutex::new(Vec::new());

/// Leaves `ops` to the helper of `hand_off_address_space`, which makes them, in order, once
/// this process has exited (failures ignored: a path already gone, a directory not empty).
/// For a command that would otherwise wait for deletions before it exits. Without the
/// hand-off (not called, or the helper could not start), `hand_off_address_space` makes them
/// itself.
pub fn after_exit(ops: Vec<ExitOp>) {
    AFTER_EXIT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(ops);
}

/// The `after_exit` work in the form the helper uses: one system call each, a raw path.
#[repr(C)]
struct RawOp {
    /// The system call (`WAIT_EXIT`: a wait for the process `arg`).
    nr: libc::c_long,
    path: *const libc::c_char,
    arg: libc::c_long,
    /// How many ops to skip when this one fails (but with ENOENT).
    skip: usize,
}

/// What the helper gets: the pid of the process it waits for (set at the hand-off) and the
/// `after_exit` work. Leaked: the helper reads it after that process is gone.
#[repr(C)]
pub(crate) struct Plan {
    parent: std::sync::atomic::AtomicI32,
    ops: *const RawOp,
    n: usize,
}

/// `ops` as a helper's plan of raw system calls, its memory leaked; paths with a NUL byte are
/// left out. Allocates: made before the hand-off, which does not.
pub(crate) fn plan(ops: Vec<ExitOp>) -> &'static Plan {
    use std::os::unix::ffi::OsStrExt;
    let raw: Vec<RawOp> = ops
        .into_iter()
        .filter_map(|op| {
            const RMDIR: libc::c_long = libc::AT_REMOVEDIR as libc::c_long;
            let (nr, path, arg, skip) = match op {
                ExitOp::RmdirElseSkip(p, n) => (libc::SYS_unlinkat, p, RMDIR, n),
                ExitOp::Mkdir(p, mode) => (libc::SYS_mkdirat, p, mode as libc::c_long, 0),
                ExitOp::RmTree(p) => (RM_TREE, p, 0, 0),
                ExitOp::Detach(p) => (DETACH, p, 0, 0),
                ExitOp::WaitExit(pid) => {
                    return Some(RawOp {
                        nr: WAIT_EXIT,
                        path: std::ptr::null(),
                        arg: pid as libc::c_long,
                        skip: 0,
                    })
                }
            };
            let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
            Some(RawOp {
                nr,
                path: c.into_raw(),
                arg,
                skip,
            })
        })
        .collect();
    let raw = Vec::leak(raw);
    Box::leak(Box::new(Plan {
        parent: std::sync::atomic::AtomicI32::new(0),
        ops: raw.as_ptr(),
        n: raw.len(),
    }))
}

/// Makes the raw system calls of `plan` here and now (failures only skip what an
/// `RmdirElseSkip` guards). Async-signal-safe: no allocation, no lock.
#[allow(unsafe_code)]
pub(crate) fn run_plan(plan: &Plan) {
    let mut i = 0;
    while i < plan.n {
        // SAFETY: `ops` holds `n` entries, leaked; each is a wait for a pid or an
        // unlinkat/mkdirat with a NUL-terminated path that is never freed; the errno read
        // is this thread's (the helper's: the exited process's, which nothing else reads).
        unsafe {
            let op = &*plan.ops.add(i);
            i += 1;
            if op.nr == WAIT_EXIT {
                wait_exit(op.arg as libc::pid_t);
                continue;
            }
            if op.nr == RM_TREE {
                rm_tree(libc::AT_FDCWD, op.path, RM_TREE_DEPTH);
                continue;
            }
            if op.nr == DETACH {
                libc::syscall(libc::SYS_umount2, op.path, libc::MNT_DETACH);
                continue;
            }
            let r = libc::syscall(op.nr, libc::AT_FDCWD, op.path, op.arg);
            if r < 0 && op.skip > 0 && *libc::__errno_location() != libc::ENOENT {
                i += op.skip;
            }
        }
    }
}

/// Deletes `name` (relative to `dirfd`) and, if it is a directory, everything below it,
/// `depth` levels down, with raw system calls and a buffer on the stack per level (async-
/// signal-safe); whether `name` is gone. Deleting entries while listing a directory may make
/// the listing skip some: it is listed again while a round deleted something and the
/// directory is still not empty.
#[allow(unsafe_code)]
fn rm_tree(dirfd: libc::c_int, name: *const libc::c_char, depth: u32) -> bool {
    // SAFETY (whole body): `name` is NUL-terminated (a leaked CString, or an entry of the
    // caller's buffer); the buffer is this frame's; every entry read from it lies within what
    // getdents64 returned.
    unsafe {
        if libc::syscall(libc::SYS_unlinkat, dirfd, name, 0) == 0 {
            return true;
        }
        match *libc::__errno_location() {
            libc::ENOENT => return true,
            // Only a directory is worth going into; anything else refused is final.
            libc::EISDIR if depth > 0 => {}
            _ => return false,
        }
        let fd = libc::syscall(
            libc::SYS_openat,
            dirfd,
            name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return false;
        }
        let fd = fd as libc::c_int;
        #[repr(C, align(8))]
        struct Buf([u8; RM_TREE_BUF]);
        let mut buf = Buf([0; RM_TREE_BUF]);
        let mut gone = false;
        loop {
            let mut deleted = false;
            libc::syscall(libc::SYS_lseek, fd, 0 as libc::off_t, libc::SEEK_SET);
            loop {
                let n = libc::syscall(libc::SYS_getdents64, fd, buf.0.as_mut_ptr(), RM_TREE_BUF);
                if n <= 0 {
                    break;
                }
                let mut off = 0usize;
                while off < n as usize {
                    // struct linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8,
                    // then the NUL-terminated name.
                    let rec = buf.0.as_ptr().add(off);
                    let reclen = std::ptr::read_unaligned(rec.add(16) as *const u16) as usize;
                    let entry = rec.add(19) as *const libc::c_char;
                    let dot = *entry == b'.' as libc::c_char;
                    let dots = dot
                        && (*entry.add(1) == 0
                            || (*entry.add(1) == b'.' as libc::c_char && *entry.add(2) == 0));
                    if !dots && rm_tree(fd, entry, depth - 1) {
                        deleted = true;
                    }
                    if reclen == 0 {
                        break;
                    }
                    off += reclen;
                }
            }
            if libc::syscall(libc::SYS_unlinkat, dirfd, name, libc::AT_REMOVEDIR) == 0 {
                gone = true;
                break;
            }
            if *libc::__errno_location() != libc::ENOTEMPTY || !deleted {
                break;
            }
        }
        libc::syscall(libc::SYS_close, fd);
        gone
    }
}

/// Waits until `pid` has exited (its pidfd readable), up to `EXIT_WAIT_MS`; at once if it
/// is gone or pidfds are missing (Linux < 5.3).
#[allow(unsafe_code)]
pub(crate) fn wait_exit(pid: libc::pid_t) {
    // SAFETY: pidfd_open, ppoll on a local pollfd and timespec, close of that descriptor.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        if fd < 0 {
            return;
        }
        let mut p = libc::pollfd {
            fd: fd as libc::c_int,
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: EXIT_WAIT_MS / 1000,
            tv_nsec: (EXIT_WAIT_MS % 1000) * 1_000_000,
        };
        libc::syscall(
            libc::SYS_ppoll,
            &mut p as *mut libc::pollfd,
            1 as libc::c_ulong,
            &ts as *const libc::timespec,
            std::ptr::null::<libc::sigset_t>(),
            8usize,
        );
        libc::syscall(libc::SYS_close, fd);
    }
}

/// Lets this process's exit skip tearing down its address space: a helper process that shares
/// it (`CLONE_VM`) keeps it alive until this process's main thread has exited
/// (`PR_SET_PDEATHSIG`), so the teardown happens in the helper after this process's exit has
/// been reported to its parent. Call right before exiting. The helper also makes the
/// `after_exit` work, after the exit, then ends.
///
/// For the CLI: a command that has faulted in some 8 MiB of the binary (the kernel maps 64 KiB
/// around every page fault) spends 0.4-0.5 ms of its exit unmapping those pages, while the
/// shell or script that runs it waits. Measured on `k1s runtime run --rm` (2-core VM, same
/// run): its end to its parent's wake-up 0.65-0.75 -> 0.25 ms; p50 -0.2 ms (two runs of 300).
///
/// The helper starts with every signal blocked and makes raw system calls only, on a stack of
/// its own, touching nothing of this process's state; it closes its copies of the file
/// descriptors first, so a pipe this process writes to ends when this process does. Without
/// `after_exit` work it is killed by the death signal; with some, the death signal (SIGUSR2,
/// blocked) wakes it to do that work. Its zombie goes to whoever inherits this process's
/// children. Returns the helper's pid.
pub fn hand_off_address_space() -> Option<i32> {
    let ops = std::mem::take(&mut *AFTER_EXIT.lock().unwrap_or_else(|p| p.into_inner()));
    hand_off(plan(ops))
}

/// `hand_off_address_space` with its plan made: async-signal-safe (no allocation, no lock),
/// so a child forked from a multi-threaded process may call it.
#[allow(unsafe_code)]
pub(crate) fn hand_off(plan: &'static Plan) -> Option<i32> {
    #[cfg(not(target_os = "linux"))]
    {
        run_plan(plan);
        return None;
    }
    #[cfg(target_os = "linux")]
    {
        /// Runs in the helper. `libc::syscall` may set errno, which is this process's (the
        /// helper shares its thread-local storage): harmless, this process is exiting, and
        /// the `after_exit` work only starts once it is gone.
        extern "C" fn keep(plan: *mut libc::c_void) -> libc::c_int {
            // SAFETY: `plan` is leaked and only read; plain system calls.
            unsafe {
                let plan = &*(plan as *const Plan);
                let parent = plan.parent.load(std::sync::atomic::Ordering::Relaxed);
                libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
                if plan.n == 0 {
                    libc::syscall(
                        libc::SYS_prctl,
                        libc::PR_SET_PDEATHSIG,
                        libc::SIGKILL as libc::c_ulong,
                    );
                    // Already gone before the death signal was armed: let go at once.
                    if libc::syscall(libc::SYS_getppid) != parent as libc::c_long {
                        libc::syscall(libc::SYS_exit, 0);
                    }
                    loop {
                        // Every signal but SIGKILL is blocked: this sleeps until killed.
                        libc::syscall(libc::SYS_pause);
                    }
                }
                libc::syscall(
                    libc::SYS_prctl,
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGUSR2 as libc::c_ulong,
                );
                // The kernel's sigset: bit n-1 for signal n.
                let usr2: u64 = 1 << (libc::SIGUSR2 - 1);
                while libc::syscall(libc::SYS_getppid) == parent as libc::c_long {
                    // Blocked, so it stays pending until taken here (another sender's
                    // SIGUSR2 only makes this look again).
                    libc::syscall(
                        libc::SYS_rt_sigtimedwait,
                        &usr2 as *const u64,
                        std::ptr::null_mut::<libc::siginfo_t>(),
                        std::ptr::null::<libc::timespec>(),
                        8usize,
                    );
                }
                run_plan(plan);
                libc::syscall(libc::SYS_exit, 0);
                0
            }
        }
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        plan.parent.store(me, std::sync::atomic::Ordering::Relaxed);
        // Mostly for `rm_tree`'s buffers: RM_TREE_DEPTH levels of RM_TREE_BUF bytes (and
        // small frames); pages are only backed as they are used.
        const STACK: usize = 512 * 1024;
        // SAFETY: an anonymous mapping for the helper's stack; it lives as long as the
        // address space (never unmapped: the helper may use it until it dies).
        let stack = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                STACK,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if stack == libc::MAP_FAILED {
            run_plan(plan);
            return None;
        }
        // SAFETY: the signal mask is set around the clone so that the helper inherits a
        // fully blocked one (no handler of this process ever runs on its stack) and restored
        // for this thread after; `keep` runs on the fresh stack, top of the mapping, and
        // makes raw system calls only.
        let pid = unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            let top = (stack as usize + STACK) as *mut libc::c_void;
            let arg = plan as *const Plan as *mut libc::c_void;
            let pid = libc::clone(keep, top, libc::CLONE_VM, arg);
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            pid
        };
        if pid <= 0 {
            run_plan(plan);
            return None;
        }
        Some(pid)
    }
}

#[cfg(test)]
mod tests {
    fn rss_file_kb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("test setup");
        let line = status
            .lines()
            .find(|l| l.starts_with("RssFile:"))
            .expect("test setup");
        line.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .expect("RssFile value")
    }

    #[test]
    fn releasing_idle_pages_keeps_the_process_working_and_drops_code_pages() {
        // Touch code and read-only data: formatting, collections, the test harness itself.
        let warm: Vec<String> = (0..1000).map(|i| format!("{i:08x}")).collect();
        let before = rss_file_kb();
        super::release_idle_pages();
        let after = rss_file_kb();
        // Everything dropped comes back from the file on the next access, unchanged.
        let again: Vec<String> = (0..1000).map(|i| format!("{i:08x}")).collect();
        assert_eq!(warm, again);
        assert!(
            after < before,
            "file-backed resident memory did not shrink: {before} kB -> {after} kB"
        );
    }

    /// State letter of process `pid` (None once it is gone).
    fn state(pid: i32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?.1.trim_start().chars().next()
    }

    /// A forked child that handed its address space off with a plan and waits to be
    /// released; on a failed assertion, neither it nor its helper outlive the test (they hold
    /// its stdout).
    struct HandedOff {
        child: i32,
        helper: i32,
        go: Option<std::io::PipeWriter>,
        _go_r: std::fs::File,
    }

    impl HandedOff {
        #[allow(unsafe_code)]
        fn start(plan: &'static super::Plan) -> HandedOff {
            use std::io::Read;
            use std::os::fd::{FromRawFd, IntoRawFd};
            let (mut pid_r, pid_w) = std::io::pipe().expect("pipe");
            let (go_r, go_w) = std::io::pipe().expect("pipe");
            let (pid_w, go_r) = (pid_w.into_raw_fd(), go_r.into_raw_fd());
            // SAFETY: the child makes async-signal-safe calls only (those of `hand_off`,
            // write, read, _exit), as after a fork of a multi-threaded process it must.
            let child = unsafe { libc::fork() };
            assert!(child >= 0, "fork");
            if child == 0 {
                let helper = super::hand_off(plan).unwrap_or(-1);
                // SAFETY: see above; the buffers are on this stack.
                unsafe {
                    libc::write(pid_w, (&helper as *const i32).cast(), 4);
                    let mut b = 0u8;
                    libc::read(go_r, (&mut b as *mut u8).cast(), 1);
                    libc::_exit(0);
                }
            }
            // SAFETY: the parent's copies, owned by nothing else.
            drop(unsafe { std::fs::File::from_raw_fd(pid_w) });
            let mut h = HandedOff {
                child,
                helper: 0,
                go: Some(go_w),
                _go_r: unsafe { std::fs::File::from_raw_fd(go_r) },
            };
            let mut buf = [0u8; 4];
            pid_r.read_exact(&mut buf).expect("helper pid");
            h.helper = i32::from_ne_bytes(buf);
            assert!(h.helper > 0, "no helper started");
            h
        }

        /// Lets the child exit and reaps it.
        #[allow(unsafe_code)]
        fn exit(&mut self) {
            use std::io::Write;
            if let Some(mut go) = self.go.take() {
                go.write_all(b"x").expect("release the child");
            }
            let mut status = 0;
            // SAFETY: waits for our own child.
            assert_eq!(
                unsafe { libc::waitpid(self.child, &mut status, 0) },
                self.child
            );
        }

        /// Waits until the helper has ended.
        fn wait_helper_gone(&self) {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while state(self.helper).is_some_and(|s| s != 'Z') {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the helper outlived the process"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }

    impl Drop for HandedOff {
        #[allow(unsafe_code)]
        fn drop(&mut self) {
            if std::thread::panicking() {
                for pid in [self.child, self.helper].into_iter().filter(|p| *p > 0) {
                    // SAFETY: signals a process this test started.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
    }

    #[test]
    fn an_address_space_handed_off_keeps_no_descriptor_and_goes_with_the_process() {
        let mut h = HandedOff::start(super::plan(Vec::new()));
        let helper = h.helper;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let fds = || std::fs::read_dir(format!("/proc/{helper}/fd")).map(|d| d.count());
        while fds().is_ok_and(|n| n > 0) {
            assert!(
                std::time::Instant::now() < deadline,
                "the helper keeps descriptors"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(
            state(helper).map(|s| s != 'Z'),
            Some(true),
            "the helper is not running"
        );
        h.exit();
        h.wait_helper_gone();
    }

    #[test]
    fn work_left_to_after_the_exit_is_done_once_the_process_is_gone() {
        use super::ExitOp;
        let tmp = tempfile::tempdir().expect("test setup");
        let file = tmp.path().join("f");
        let tree = tmp.path().join("a");
        std::fs::create_dir_all(tree.join("b")).expect("test setup");
        std::fs::write(&file, b"x").expect("test setup");
        std::fs::write(tree.join("b/g"), b"y").expect("test setup");
        let made = tmp.path().join("made");
        let mut h = HandedOff::start(super::plan(vec![
            ExitOp::RmTree(file.clone()),
            ExitOp::RmTree(tree.join("b/g")),
            ExitOp::RmdirElseSkip(tree.join("b"), 0),
            ExitOp::RmdirElseSkip(tree.clone(), 0),
            // Fails (gone already): the rest still happens.
            ExitOp::RmdirElseSkip(tree.clone(), 0),
            ExitOp::Mkdir(made.clone(), 0o700),
        ]));
        // The helper waits for the exit: once it sleeps, past closing its descriptors,
        // nothing has happened while the child lives.
        let helper = h.helper;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let closed =
            || std::fs::read_dir(format!("/proc/{helper}/fd")).map_or(true, |d| d.count() == 0);
        while !(closed() && matches!(state(helper), Some('S' | 'Z') | None)) {
            assert!(
                std::time::Instant::now() < deadline,
                "the helper does not settle"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(state(helper), Some('S'), "the helper did not wait");
        assert!(file.exists() && tree.join("b/g").exists() && !made.exists());
        h.exit();
        h.wait_helper_gone();
        assert!(!file.exists(), "file not deleted");
        assert!(!tree.exists(), "directory tree not deleted");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&made)
                .expect("directory made")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_mount_is_detached_after_the_exit() {
        use super::ExitOp;
        // The forked child and its helper share the test thread's mount namespace.
        if !crate::test_support::root_in_private_mount_ns() {
            return;
        }
        let tmp = tempfile::tempdir().expect("test setup");
        let root = tmp.path().canonicalize().expect("test setup");
        let m = root.join("m");
        std::fs::create_dir(&m).expect("test setup");
        nix::mount::mount(
            Some("tmpfs"),
            &m,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .expect("mount a tmpfs");
        let mounted = || {
            std::fs::read_to_string("/proc/thread-self/mountinfo")
                .expect("mountinfo")
                .lines()
                .any(|l| l.split(' ').nth(4) == m.to_str())
        };
        assert!(mounted());
        let mut h = HandedOff::start(super::plan(vec![
            // Nothing mounted there: fails, and the rest still happens.
            ExitOp::Detach(root.clone()),
            ExitOp::Detach(m.clone()),
            ExitOp::RmTree(m.clone()),
        ]));
        assert!(mounted(), "detached before the exit");
        h.exit();
        h.wait_helper_gone();
        assert!(!mounted(), "still mounted");
        assert!(!m.exists(), "the mount point was not deleted");
    }

    #[test]
    fn a_tree_is_deleted_to_its_depth_limit_without_following_symlinks() {
        use super::ExitOp;
        let tmp = tempfile::tempdir().expect("test setup");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).expect("test setup");
        std::fs::write(outside.join("keep"), b"k").expect("test setup");
        let tree = tmp.path().join("tree");
        // Many long names: several listings per directory, entries deleted while listed.
        let wide = tree.join("wide");
        std::fs::create_dir_all(&wide).expect("test setup");
        for i in 0..600 {
            std::fs::write(wide.join(format!("{i:0>100}")), b"x").expect("test setup");
        }
        let mut deep = tree.join("deep");
        for i in 0..20 {
            deep = deep.join(format!("d{i}"));
        }
        std::fs::create_dir_all(&deep).expect("test setup");
        std::fs::write(deep.join("f"), b"y").expect("test setup");
        std::os::unix::fs::symlink(&outside, tree.join("out")).expect("test setup");
        std::os::unix::fs::symlink(&outside, deep.join("out")).expect("test setup");
        // Deeper than the limit: the top stays, with what is below the limit.
        let mut too_deep = tmp.path().join("too-deep");
        for i in 0..=super::RM_TREE_DEPTH {
            too_deep = too_deep.join(format!("{i}"));
        }
        std::fs::create_dir_all(&too_deep).expect("test setup");
        let file = tmp.path().join("file");
        std::fs::write(&file, b"z").expect("test setup");
        super::run_plan(super::plan(vec![
            ExitOp::RmTree(tree.clone()),
            ExitOp::RmTree(tmp.path().join("too-deep")),
            ExitOp::RmTree(file.clone()),
            ExitOp::RmTree(tmp.path().join("missing")),
        ]));
        assert!(!tree.exists(), "the tree is left");
        assert!(!file.exists(), "the file is left");
        assert!(outside.join("keep").exists(), "a symlink was followed");
        assert!(too_deep.exists(), "deleted past the depth limit");
    }
}
