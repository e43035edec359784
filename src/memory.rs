//! How the daemon gets its memory: glibc's settings, and large buffers pre-faulted.
//!
//! `serve` has glibc hand out every buffer from [`MMAP_THRESHOLD`] up as a fresh mapping (so a
//! burst of large messages does not stay resident), and the kernel then faults its pages in
//! one at a time as they are first written: for a message of a few megabytes that is a trap
//! into the kernel every 4 KiB. Asking for the whole buffer at once (`MADV_POPULATE_WRITE`,
//! Linux 5.14) gets the same pages in one call. It only ever changes when pages arrive, never
//! what the buffer holds; where the kernel does not support it (or its pages are not 4 KiB)
//! nothing happens and the buffer faults in as before.
//!
//! Message buffers and decoded parts are the largest of those, a few a message, so they are
//! not given back at once: up to [`SPARE_BYTES`] of them wait, pages and all, for the next
//! message (see [`buffer`] and [`recycle`]), and are given back after [`SPARE_IDLE`] unused.

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

/// At most this many bytes of large buffers are kept for reuse; beyond it a freed buffer is
/// given back to the system at once. Together with [`SPARE_IDLE`] this bounds what stays
/// resident after a burst, whatever the traffic.
pub const SPARE_BYTES: usize = 8 << 20;

/// Buffers larger than this are never kept: one rare huge message must not hold the spare
/// room to itself.
pub const SPARE_MAX_BUFFER: usize = 4 << 20;

/// A spare buffer unused for this long is given back ([`Spares::trim`]).
pub const SPARE_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// Large empty buffers, their pages present, waiting for reuse; bounded in bytes and in the
/// size of any one buffer.
pub struct Spares {
    inner: std::sync::Mutex<SpareList>,
    max_bytes: usize,
    max_buffer: usize,
}

struct SpareList {
    /// Each buffer with the time it was put back.
    buffers: Vec<(Vec<u8>, std::time::Instant)>,
    bytes: usize,
}

impl Spares {
    pub const fn new(max_bytes: usize, max_buffer: usize) -> Spares {
        Spares {
            inner: std::sync::Mutex::new(SpareList { buffers: Vec::new(), bytes: 0 }),
            max_bytes,
            max_buffer,
        }
    }

    fn list(&self) -> std::sync::MutexGuard<'_, SpareList> {
        // The lock guards plain bookkeeping that is consistent between statements; a panic
        // elsewhere while it was held leaves nothing half-done.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The smallest spare buffer with room for `capacity` bytes; failing that the largest
    /// one, for the caller to grow (its pages are kept: a large buffer grows by remapping,
    /// without a copy). `None` when there are none.
    pub fn take(&self, capacity: usize) -> Option<Vec<u8>> {
        let mut list = self.list();
        let best = list
            .buffers
            .iter()
            .enumerate()
            .filter(|(_, (b, _))| b.capacity() >= capacity)
            .min_by_key(|(_, (b, _))| b.capacity())
            .or_else(|| list.buffers.iter().enumerate().max_by_key(|(_, (b, _))| b.capacity()))
            .map(|(i, _)| i)?;
        let (b, _) = list.buffers.swap_remove(best);
        list.bytes -= b.capacity();
        Some(b)
    }

    /// Keeps `v` (emptied) for reuse, or frees it when it is small (the allocator's heaps
    /// reuse those without faults), too large, or there is no room left.
    pub fn put(&self, mut v: Vec<u8>) {
        let cap = v.capacity();
        if !(MMAP_THRESHOLD..=self.max_buffer).contains(&cap) {
            return;
        }
        v.clear();
        let mut list = self.list();
        if list.bytes + cap <= self.max_bytes {
            list.bytes += cap;
            list.buffers.push((v, std::time::Instant::now()));
            return;
        }
        drop(list);
        // Freed outside the lock: unmapping a few megabytes is not instant.
        drop(v);
    }

    /// Frees the buffers unused for `idle` or longer; returns how many bytes that gave back.
    pub fn trim(&self, idle: std::time::Duration) -> usize {
        let mut list = self.list();
        let now = std::time::Instant::now();
        let (old, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut list.buffers)
            .into_iter()
            .partition(|(_, at)| now.duration_since(*at) >= idle);
        list.buffers = keep;
        let freed: usize = old.iter().map(|(b, _)| b.capacity()).sum();
        list.bytes -= freed;
        drop(list);
        // Freed outside the lock, as in `put`.
        drop(old);
        freed
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.list().bytes
    }
}

/// The daemon's spare message buffers.
pub static SPARES: Spares = Spares::new(SPARE_BYTES, SPARE_MAX_BUFFER);

/// An empty buffer with room for at least `capacity` bytes, its pages present: a spare one
/// when one is big enough (the smallest such), otherwise a new one, pre-faulted.
///
/// Faulting in a fresh buffer for every message cost the daemon's connection threads about
/// a third of their CPU; a buffer handed on keeps its pages.
pub fn buffer(capacity: usize) -> Vec<u8> {
    let mut v =
        if capacity >= MMAP_THRESHOLD { SPARES.take(capacity).unwrap_or_default() } else { Vec::new() };
    if v.capacity() < capacity {
        // A spare too small grows in place or by remapping, its pages kept; only the new
        // end is faulted in.
        v.reserve_exact(capacity);
        prefault(&mut v);
    }
    v
}

/// Gives back what an idle daemon need not hold: every spare buffer, and the free memory in
/// the allocator's heaps (which glibc keeps after a burst of small allocations, so that a
/// daemon which once served many connections at once would stay that large).
pub fn give_back_idle() {
    SPARES.trim(std::time::Duration::ZERO);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the system; it takes the
    // allocator's own locks and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Hands a buffer back for [`buffer`] to reuse (see [`Spares::put`]).
pub fn recycle(v: Vec<u8>) {
    SPARES.put(v);
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

    #[test]
    fn spares_hand_back_the_smallest_big_enough_buffer_with_its_pages() {
        use super::{MMAP_THRESHOLD, Spares};
        let spares = Spares::new(4 << 20, 2 << 20);
        assert!(spares.take(MMAP_THRESHOLD).is_none(), "nothing kept yet");
        let mut big = Vec::with_capacity(2 << 20);
        big.extend_from_slice(b"old contents");
        let big_ptr = big.as_ptr();
        let small = Vec::<u8>::with_capacity(MMAP_THRESHOLD);
        let small_ptr = small.as_ptr();
        spares.put(big);
        spares.put(small);
        assert_eq!(spares.bytes(), (2 << 20) + MMAP_THRESHOLD);
        let b = spares.take(MMAP_THRESHOLD).unwrap();
        assert_eq!(b.as_ptr(), small_ptr, "the smallest that fits");
        let b2 = spares.take(3 << 20).unwrap();
        assert_eq!(b2.as_ptr(), big_ptr, "none big enough: the largest, to grow");
        assert!(b2.is_empty(), "handed back empty");
        assert_eq!(spares.bytes(), 0);
        spares.put(b);
        spares.put(b2);
        let again = spares.take(MMAP_THRESHOLD + 1).unwrap();
        assert_eq!(again.as_ptr(), big_ptr);
        let again_small = spares.take(1).unwrap();
        assert_eq!(again_small.as_ptr(), small_ptr);
        assert!(spares.take(1).is_none(), "nothing left");
    }

    #[test]
    fn spares_are_bounded_and_trimmed() {
        use super::{MMAP_THRESHOLD, Spares};
        use std::time::Duration;
        let spares = Spares::new(3 * MMAP_THRESHOLD, 2 * MMAP_THRESHOLD);
        spares.put(Vec::with_capacity(MMAP_THRESHOLD - 1));
        assert_eq!(spares.bytes(), 0, "small buffers go back to the allocator");
        spares.put(Vec::with_capacity(2 * MMAP_THRESHOLD + 1));
        assert_eq!(spares.bytes(), 0, "buffers past the size limit are not kept");
        spares.put(Vec::with_capacity(2 * MMAP_THRESHOLD));
        spares.put(Vec::with_capacity(2 * MMAP_THRESHOLD));
        assert_eq!(spares.bytes(), 2 * MMAP_THRESHOLD, "the second would pass the byte limit");
        spares.put(Vec::with_capacity(MMAP_THRESHOLD));
        assert_eq!(spares.bytes(), 3 * MMAP_THRESHOLD);
        assert_eq!(spares.trim(Duration::from_secs(3600)), 0, "nothing idle that long");
        assert_eq!(spares.trim(Duration::ZERO), 3 * MMAP_THRESHOLD);
        assert_eq!(spares.bytes(), 0);
        assert!(spares.take(1).is_none());
    }

    #[test]
    fn a_new_buffer_has_the_capacity_asked_for() {
        let v = super::buffer(super::MMAP_THRESHOLD * 2);
        assert!(v.is_empty() && v.capacity() >= super::MMAP_THRESHOLD * 2);
        super::recycle(v);
        let w = super::buffer(100);
        assert!(w.capacity() >= 100);
    }
}
