//! Pre-faulting large buffers before they are filled.
//!
//! `serve` has glibc hand out every buffer from 256 KiB up as a fresh mapping (so a burst of
//! large messages does not stay resident), and the kernel then faults its pages in one at a
//! time as they are first written: for a message of a few megabytes that is a trap into the
//! kernel every 4 KiB. Asking for the whole buffer at once (`MADV_POPULATE_WRITE`, Linux 5.14)
//! gets the same pages in one call. It only ever changes when pages arrive, never what the
//! buffer holds; where the kernel does not support it nothing happens and the buffer faults
//! in as before.

/// Buffers smaller than this come from the allocator's heaps, whose pages are usually
/// present already.
const MIN_PREFAULT: usize = 256 * 1024;

/// Makes the pages behind `v`'s unused capacity present, when there are enough of them to
/// be worth a system call.
pub fn spare_capacity(v: &mut Vec<u8>) {
    ahead(v, usize::MAX);
}

/// Like [`spare_capacity`], for at most the next `max` bytes of it: for a buffer grown by
/// doubling, whose end may never be written.
pub fn ahead(v: &mut Vec<u8>, max: usize) {
    #[cfg(target_os = "linux")]
    {
        let spare = v.spare_capacity_mut();
        let len = spare.len().min(max);
        let spare = &mut spare[..len];
        if spare.len() < MIN_PREFAULT {
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
        super::spare_capacity(&mut v);
        assert_eq!(v, b"kept");
        v.resize(4 << 20, 7);
        assert!(v.iter().skip(4).all(|&b| b == 7));
        let mut small = Vec::with_capacity(100);
        super::spare_capacity(&mut small);
        assert!(small.is_empty());
        let mut part = Vec::with_capacity(4 << 20);
        super::ahead(&mut part, 1 << 20);
        part.extend_from_slice(b"kept");
        assert_eq!(part, b"kept");
    }
}
