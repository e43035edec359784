//! RC4, the stream cipher of the older PDF and Office password checks. It is
//! only ever used here to verify that a file opens with an empty or
//! well-known password, never to protect anything.

/// Encrypts (or decrypts, it is the same) `data` in place with `key`.
pub(in crate::inspect) fn apply(key: &[u8], data: &mut [u8]) {
    if key.is_empty() {
        return;
    }
    let mut s: [u8; 256] = std::array::from_fn(|i| i as u8);
    let mut j: u8 = 0;
    for i in 0..256 {
        j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
        s.swap(i, j as usize);
    }
    let (mut i, mut j) = (0u8, 0u8);
    for byte in data {
        i = i.wrapping_add(1);
        j = j.wrapping_add(s[i as usize]);
        s.swap(i as usize, j as usize);
        let k = s[s[i as usize].wrapping_add(s[j as usize]) as usize];
        *byte ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_published_test_vectors() {
        // Vectors from the original RC4 posting (also in RFC 6229's style).
        let mut data = *b"Plaintext";
        apply(b"Key", &mut data);
        assert_eq!(data, [0xbb, 0xf3, 0x16, 0xe8, 0xd9, 0x40, 0xaf, 0x0a, 0xd3]);
        let mut data = *b"Attack at dawn";
        apply(b"Secret", &mut data);
        assert_eq!(
            data,
            [0x45, 0xa0, 0x1f, 0x64, 0x5f, 0xc3, 0x5b, 0x38, 0x35, 0x52, 0x54, 0x4b, 0x9b, 0xf5]
        );
    }
}
