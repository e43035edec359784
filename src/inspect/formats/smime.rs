//! S/MIME blobs (CMS, RFC 5652). Enveloped data needs the recipient's key
//! and is recorded as such; opaque signed data carries the signed MIME
//! entity inside the blob, which is pulled out so it is inspected like any
//! other part (otherwise signing would be a way around the filter). The
//! `smime-type` parameter is a claim; the content type inside the blob is
//! what counts when the blob can be read.

/// Deepest BER nesting followed; CMS structures need about six.
const MAX_NESTING: u32 = 32;

/// What a CMS blob is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::inspect) enum Cms {
    /// Encrypted for a recipient: which CMS type.
    Enveloped(&'static str),
    /// Signed data, with the encapsulated content when it is inside.
    Signed(Option<Vec<u8>>),
    /// Compressed data (RFC 3274).
    Compressed,
    /// Not understood: why.
    Other(String),
}

const OID_SIGNED: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const OID_ENVELOPED: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
const OID_ENCRYPTED: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x06];
const OID_AUTH_ENVELOPED: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17];
const OID_COMPRESSED: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x09];

/// Classifies a CMS blob; `smime_type` (the MIME parameter) decides only
/// when the blob itself cannot be read.
pub(in crate::inspect) fn classify(bytes: &[u8], smime_type: Option<&str>) -> Cms {
    match read_content_info(bytes) {
        Some(cms) => cms,
        None => match smime_type.map(str::to_ascii_lowercase).as_deref() {
            Some("enveloped-data") => Cms::Enveloped("enveloped-data (unreadable blob)"),
            Some("authenveloped-data") => Cms::Enveloped("authEnveloped-data (unreadable blob)"),
            Some("compressed-data") => Cms::Compressed,
            Some(other) => Cms::Other(format!("unreadable blob labelled {other}")),
            None => Cms::Other("unreadable blob".to_string()),
        },
    }
}

fn read_content_info(bytes: &[u8]) -> Option<Cms> {
    let outer = Tlv::read(bytes, 0, 0)?;
    if outer.tag != 0x30 {
        return None;
    }
    let oid = Tlv::read(bytes, outer.content.start, 0)?;
    if oid.tag != 0x06 {
        return None;
    }
    let oid_value = &bytes[oid.content.clone()];
    let cms = if oid_value == OID_ENVELOPED {
        Cms::Enveloped("enveloped-data")
    } else if oid_value == OID_AUTH_ENVELOPED {
        Cms::Enveloped("authEnveloped-data")
    } else if oid_value == OID_ENCRYPTED {
        Cms::Enveloped("encrypted-data")
    } else if oid_value == OID_COMPRESSED {
        Cms::Compressed
    } else if oid_value == OID_SIGNED {
        Cms::Signed(signed_content(bytes, oid.end))
    } else {
        Cms::Other("unknown CMS content type".to_string())
    };
    Some(cms)
}

/// The eContent of a SignedData whose [0] wrapper starts at `at`.
fn signed_content(bytes: &[u8], at: usize) -> Option<Vec<u8>> {
    let explicit = Tlv::read(bytes, at, 0)?;
    if explicit.tag != 0xa0 {
        return None;
    }
    let signed_data = Tlv::read(bytes, explicit.content.start, 0)?;
    let mut children = signed_data.children(bytes, 1);
    let _version = children.next()?;
    let _digests = children.next()?;
    let encap = children.next()?;
    if encap.tag != 0x30 {
        return None;
    }
    let mut encap_children = encap.children(bytes, 2);
    let _type = encap_children.next()?;
    let wrapper = encap_children.next()?; // absent for detached signatures
    if wrapper.tag != 0xa0 {
        return None;
    }
    let octets = Tlv::read(bytes, wrapper.content.start, 3)?;
    let mut out = Vec::new();
    octets.collect_octets(bytes, 4, &mut out)?;
    Some(out)
}

/// One BER element.
#[derive(Debug, Clone)]
struct Tlv {
    /// The identifier octet (class, constructed bit, low tag number).
    tag: u8,
    constructed: bool,
    content: std::ops::Range<usize>,
    /// Whether `content` ends with an end-of-contents marker (indefinite).
    indefinite: bool,
    end: usize,
}

impl Tlv {
    fn read(bytes: &[u8], at: usize, nesting: u32) -> Option<Tlv> {
        if nesting > MAX_NESTING {
            return None;
        }
        let tag = *bytes.get(at)?;
        let mut pos = at + 1;
        if tag & 0x1f == 0x1f {
            // High tag number: skip its continuation octets.
            let extra = bytes.get(pos..)?.iter().take(4).take_while(|b| *b & 0x80 != 0).count();
            pos += extra + 1;
        }
        let first = *bytes.get(pos)?;
        pos += 1;
        let constructed = tag & 0x20 != 0;
        if first == 0x80 {
            if !constructed {
                return None;
            }
            // Indefinite length: walk children up to the end-of-contents.
            let start = pos;
            let mut cursor = pos;
            loop {
                if bytes.get(cursor..cursor + 2)? == [0, 0] {
                    return Some(Tlv {
                        tag,
                        constructed,
                        content: start..cursor,
                        indefinite: true,
                        end: cursor + 2,
                    });
                }
                cursor = Tlv::read(bytes, cursor, nesting + 1)?.end;
            }
        }
        let len = if first & 0x80 == 0 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 8 {
                return None;
            }
            let mut len: u64 = 0;
            for &b in bytes.get(pos..pos + n)? {
                len = (len << 8) | u64::from(b);
            }
            pos += n;
            usize::try_from(len).ok()?
        };
        let end = pos.checked_add(len)?;
        if end > bytes.len() {
            return None;
        }
        Some(Tlv { tag, constructed, content: pos..end, indefinite: false, end })
    }

    fn children<'b>(&self, bytes: &'b [u8], nesting: u32) -> impl Iterator<Item = Tlv> + 'b {
        let mut cursor = self.content.start;
        let end = self.content.end;
        std::iter::from_fn(move || {
            if cursor >= end {
                return None;
            }
            let child = Tlv::read(bytes, cursor, nesting)?;
            cursor = child.end;
            Some(child)
        })
    }

    /// Appends an OCTET STRING's value, joining the chunks of a constructed
    /// (BER) one. Each nesting level reads its subtree once and nesting is capped, so the
    /// work is at most the cap times the input.
    fn collect_octets(&self, bytes: &[u8], nesting: u32, out: &mut Vec<u8>) -> Option<()> {
        if nesting > MAX_NESTING || self.tag & 0x1f != 0x04 {
            return None;
        }
        if !self.constructed {
            out.extend_from_slice(&bytes[self.content.clone()]);
            return Some(());
        }
        let _ = self.indefinite;
        for child in self.children(bytes, nesting + 1) {
            child.collect_octets(bytes, nesting + 1, out)?;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 128 {
            out.push(content.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(content);
        out
    }

    fn content_info(oid: &[u8], inner: &[u8]) -> Vec<u8> {
        let mut body = tlv(0x06, oid);
        body.extend(tlv(0xa0, inner));
        tlv(0x30, &body)
    }

    #[test]
    fn enveloped_and_auth_enveloped_are_encrypted() {
        assert_eq!(
            classify(&content_info(OID_ENVELOPED, &tlv(0x30, &[])), None),
            Cms::Enveloped("enveloped-data")
        );
        assert_eq!(
            classify(&content_info(OID_AUTH_ENVELOPED, &tlv(0x30, &[])), Some("signed-data")),
            Cms::Enveloped("authEnveloped-data")
        );
    }

    #[test]
    fn opaque_signed_content_is_extracted_from_der_and_ber() {
        let entity = b"Content-Type: text/plain\r\n\r\nsigned body\r\n";
        let mut encap = tlv(0x06, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01]);
        encap.extend(tlv(0xa0, &tlv(0x04, entity)));
        let mut signed = tlv(0x02, &[1]);
        signed.extend(tlv(0x31, &[]));
        signed.extend(tlv(0x30, &encap));
        let der = content_info(OID_SIGNED, &tlv(0x30, &signed));
        assert_eq!(classify(&der, None), Cms::Signed(Some(entity.to_vec())));

        // Same with indefinite lengths and a chunked OCTET STRING.
        let mut chunks = vec![0x24, 0x80];
        chunks.extend(tlv(0x04, &entity[..10]));
        chunks.extend(tlv(0x04, &entity[10..]));
        chunks.extend([0, 0]);
        let mut encap = tlv(0x06, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01]);
        encap.extend([0xa0, 0x80]);
        encap.extend(chunks);
        encap.extend([0, 0]);
        let mut signed = tlv(0x02, &[1]);
        signed.extend(tlv(0x31, &[]));
        signed.extend([0x30, 0x80]);
        signed.extend(encap);
        signed.extend([0, 0]);
        let mut ber = vec![0x30, 0x80];
        ber.extend(tlv(0x06, OID_SIGNED));
        ber.extend([0xa0, 0x80, 0x30, 0x80]);
        ber.extend(signed);
        ber.extend([0, 0, 0, 0, 0, 0]);
        assert_eq!(classify(&ber, None), Cms::Signed(Some(entity.to_vec())));
    }

    #[test]
    fn unreadable_blob_falls_back_to_the_label() {
        assert_eq!(
            classify(b"garbage", Some("enveloped-data")),
            Cms::Enveloped("enveloped-data (unreadable blob)")
        );
        assert!(matches!(classify(b"garbage", None), Cms::Other(_)));
    }

    #[test]
    fn hostile_nesting_is_bounded() {
        let deep = [0x30u8, 0x80].repeat(10_000);
        assert!(matches!(classify(&deep, None), Cms::Other(_)));
    }
}
