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
}
