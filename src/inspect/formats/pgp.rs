//! OpenPGP encrypted payloads. PGP/MIME is recognised from its multipart
//! structure in `mime`; this covers the armoured and binary forms that travel
//! as ordinary attachments (`.pgp`, `.gpg`, `.asc`).

/// Armour header of an encrypted OpenPGP message (signed-only messages use
/// "BEGIN PGP SIGNED MESSAGE" and stay inspectable).
pub(in crate::inspect) const ARMOR: &[u8] = b"-----BEGIN PGP MESSAGE-----";

/// Leading bytes searched for the armour header.
const ARMOR_WINDOW: usize = 4096;

/// OpenPGP packet tags that start an encrypted message: public-key and
/// symmetric-key encrypted session keys, and the encrypted data packets.
const ENCRYPTED_TAGS: &[u8] = &[1, 3, 9, 18, 20];

/// True when `bytes` is an OpenPGP encrypted message: armoured anywhere near
/// the start, or binary under a PGP file name (binary packets alone are too
/// easily matched by chance to trust without the name).
pub(in crate::inspect) fn is_encrypted(bytes: &[u8], filename: Option<&str>) -> bool {
    let window = &bytes[..bytes.len().min(ARMOR_WINDOW)];
    if memchr::memmem::find(window, ARMOR).is_some() {
        return true;
    }
    let pgp_name = filename.is_some_and(|n| {
        let n = n.to_ascii_lowercase();
        n.ends_with(".pgp") || n.ends_with(".gpg")
    });
    pgp_name && bytes.first().is_some_and(|&b| ENCRYPTED_TAGS.contains(&packet_tag(b)))
}

/// The tag of an OpenPGP packet header byte (0 when it is not one).
fn packet_tag(byte: u8) -> u8 {
    if byte & 0x80 == 0 {
        0
    } else if byte & 0x40 != 0 {
        byte & 0x3f
    } else {
        (byte >> 2) & 0x0f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn armoured_message_is_encrypted_but_signed_is_not() {
        assert!(is_encrypted(b"\n-----BEGIN PGP MESSAGE-----\n\nhQEM", None));
        assert!(!is_encrypted(b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256", None));
    }

    #[test]
    fn binary_packets_count_only_under_a_pgp_name() {
        // Old-format PKESK packet header (tag 1) and new-format SEIPD (tag 18).
        assert!(is_encrypted(b"\x85\x01\x0c", Some("report.pdf.gpg")));
        assert!(is_encrypted(b"\xd2\x10", Some("x.PGP")));
        assert!(!is_encrypted(b"\x85\x01\x0c", Some("image.bin")));
        assert!(!is_encrypted(b"\x85\x01\x0c", None));
    }
}
