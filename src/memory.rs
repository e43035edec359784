//! How the daemon gets its memory: glibc's settings, and large buffers pre-faulted.
//!
//! `serve` has glibc hand out every buffer from [`MMAP_THRESHOLD`] up as a fresh mapping (so a
//! burst of large messages does not stay resident), and the kernel then faults its pages in
//! one at a time as they are first written: for a message of a few megabytes that is a trap
//! into the kernel every 4 KiB. Asking for the whole buffer at once (`MADV_POPULATE_WRITE`,
//! Linux 5.14) gets the same pages in one call. It only ever changes when pages arrive, never
//! what the buffer holds; where the kernel does not support it (or its pages are not 4 KiB)
//! nothing happens and the buffer faults in as before.

/// Buffers from this size up come from mmap (see [`tune_allocator`]); smaller ones come from
/// the allocator's heaps, whose pages are usually present already, and are not pre-faulted.
pub const MMAP_THRESHOLD: usize = 256 * 1024;

/// glibc serves large buffers from its heaps and keeps what is freed in per-thread arenas: for a
/// daemon whose peaks are a few large messages, a burst would stay resident for good. Buffers
/// from [`MMAP_THRESHOLD`] up come from mmap (given back on free), and a few arenas are shared,
/// so the resident size follows what is in use (at concurrency 32 on the benchmark corpus, peak
/// RSS 95–109 MB instead of 138–151 MB, for about 8% more CPU a message). An administrator who
/// sets `GLIBC_TUNABLES` keeps their own settings. Call it before any thread exists (`serve`
/// does first thing; the load generator's in-process engine too, so both run on the same
/// allocator).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("GLIBC_TUNABLES").is_none() {
        // SAFETY: mallopt only changes allocator parameters; it is called before other threads.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
            libc::mallopt(libc::M_ARENA_MAX, 4);
        }
    }
}

/// Makes the pages behind `v`'s unused capacity present, when there are enough of them to
/// be worth a system call.
pub fn prefault(v: &mut Vec<u8>) {
    prefault_ahead(v, usize::MAX);
}

/// Like [`prefault`], for at most the next `max` bytes of the unused capacity: for a buffer
/// grown by doubling, whose end may never be written.
pub fn prefault_ahead(v: &mut Vec<u8>, max: usize) {
    #[cfg(target_os = "linux")]
    {
        let spare = v.spare_capacity_mut();
        let len = spare.len().min(max);
        let spare = &mut spare[..len];
        if spare.len() < MMAP_THRESHOLD {
            return;
        }
        let page = 4096usize;
        let start = spare.as_mut_ptr() as usize;
        let first = start.next_multiple_of(page);
        let end = (start + spare.len()) / page * page;
        if end > first {
            // SAFETY: the range lies inside the vector's own allocation; MADV_POPULATE_WRITE
            // faults its pages in as if written, without changing what they hold.
            unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_POPULATE_WRITE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (v, max);
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefaulting_keeps_contents_and_length() {
        let mut v = Vec::with_capacity(4 << 20);
        v.extend_from_slice(b"kept");
        super::prefault(&mut v);
        assert_eq!(v, b"kept");
        v.resize(4 << 20, 7);
        assert!(v.iter().skip(4).all(|&b| b == 7));
        let mut small = Vec::with_capacity(100);
        super::prefault(&mut small);
        assert!(small.is_empty());
        let mut part = Vec::with_capacity(4 << 20);
        super::prefault_ahead(&mut part, 1 << 20);
        part.extend_from_slice(b"kept");
        assert_eq!(part, b"kept");
    }
}
