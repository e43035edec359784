//! Random bytes from the kernel, the one source for quarantine ids and the release secret.

use std::io;

/// Fills `buf` from the kernel's random generator: `getrandom(2)`, or `/dev/urandom` where
/// that system call does not exist. Both block only until the generator is first seeded.
pub fn fill(buf: &mut [u8]) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let mut filled = 0;
        while filled < buf.len() {
            let rest = &mut buf[filled..];
            // SAFETY: the pointer and length describe `rest`, a live, writable slice.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOSYS) => return urandom(buf),
                    _ => return Err(e),
                }
            }
            filled += n as usize;
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        urandom(buf)
    }
}

fn urandom(buf: &mut [u8]) -> io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bytes_are_filled_and_differ_between_calls() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        super::fill(&mut a).unwrap();
        super::fill(&mut b).unwrap();
        assert_ne!(a, [0u8; 32]);
        assert_ne!(a, b);
    }
}
