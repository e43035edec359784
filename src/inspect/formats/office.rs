//! Encrypted Office documents. Office Open XML files protected by a
//! password are not ZIPs at all but compound files holding `EncryptionInfo`
//! and `EncryptedPackage`; legacy Word, Excel and PowerPoint files mark
//! encryption in their own streams. Excel's "read-only" protection uses the
//! well-known password `VelvetSweatshop`: such a file opens without a prompt,
//! so it is not "encrypted" in our sense. The password verifier is checked
//! against that password (agile and standard encryption for OOXML, RC4 and
//! CryptoAPI RC4 and XOR obfuscation for legacy Excel); when it matches an
//! OOXML file, the package is decrypted and walked like any other archive.

use aes::cipher::{BlockDecrypt, KeyInit, generic_array::GenericArray};
use aes::{Aes128, Aes192, Aes256};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::inspect::formats::cfb::Cfb;
use crate::inspect::formats::rc4;
use crate::inspect::text::decode::{TransferEncoding, transfer_decode};

/// The default password Excel uses for "read-only recommended" workbooks.
pub(in crate::inspect) const DEFAULT_PASSWORD: &str = "VelvetSweatshop";

/// Most hash iterations spent on one password check. Office uses 100 000;
/// a file asking for more is not checked (and counts as encrypted).
const MAX_SPIN_COUNT: u32 = 1_000_000;

/// Hash rounds of ECMA-376 standard encryption's key derivation.
const STANDARD_SPIN: u64 = 50_000;

/// Whether an Office file needs a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::inspect) enum OfficeSecurity {
    Plain,
    /// Needs a password we do not have (or could not be checked).
    Encrypted(String),
    /// Protected with the default password; the decrypted OOXML package
    /// when it could be decrypted.
    DefaultPassword {
        detail: String,
        package: Option<Vec<u8>>,
    },
}

/// Hash rounds of password key derivation one message may spend: five files at Office's own
/// 100 000, or ten of the older standard encryption's 50 000. Each file's rounds are
/// charged before they are spent; a file that would go past the budget is not checked and
/// counts as encrypted (the safe side: it needs a password we did not try).
pub(in crate::inspect) const KDF_BUDGET: u64 = 500_000;

/// Checks a compound file; `cap` bounds the decrypted package size, `budget` the key
/// derivation rounds left to the message (see [`KDF_BUDGET`]).
pub(in crate::inspect) fn check(bytes: &[u8], cap: usize, budget: &mut u64) -> OfficeSecurity {
    let Some(cfb) = Cfb::open(bytes) else {
        return OfficeSecurity::Plain;
    };
    if cfb.has_stream("EncryptionInfo") && cfb.has_stream("EncryptedPackage") {
        return check_ooxml(&cfb, cap, budget);
    }
    if let Some(word) = cfb.stream("WordDocument", 64)
        && u16_at(&word, 0) == Some(0xa5ec)
        && let Some(flags) = u16_at(&word, 0x0a)
        && flags & 0x0100 != 0
    {
        let how = if flags & 0x8000 != 0 { "XOR obfuscation" } else { "RC4" };
        return OfficeSecurity::Encrypted(format!("Word document encrypted with a password ({how})"));
    }
    for name in ["Workbook", "Book"] {
        if let Some(book) = cfb.stream(name, 1 << 20) {
            return check_biff(&book);
        }
    }
    if cfb.has_stream("EncryptedSummary") {
        return OfficeSecurity::Encrypted("PowerPoint presentation encrypted with a password".to_string());
    }
    if let Some(user) = cfb.stream("Current User", 64)
        && u32_at(&user, 12) == Some(0xf3d1_c4df)
    {
        return OfficeSecurity::Encrypted("PowerPoint presentation encrypted with a password".to_string());
    }
    OfficeSecurity::Plain
}

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn check_ooxml(cfb: &Cfb<'_>, cap: usize, budget: &mut u64) -> OfficeSecurity {
    let Some(info) = cfb.stream("EncryptionInfo", 1 << 20) else {
        return OfficeSecurity::Encrypted("encrypted Office document".to_string());
    };
    let (major, minor) = (u16_at(&info, 0).unwrap_or(0), u16_at(&info, 2).unwrap_or(0));
    let rounds = match (major, minor) {
        (4, 4) => std::str::from_utf8(&info[8.min(info.len())..])
            .ok()
            .and_then(|xml| xml_attr(xml, "encryptedKey", "spinCount"))
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0),
        (2..=4, 2) => STANDARD_SPIN,
        _ => 0,
    };
    if rounds > *budget {
        return OfficeSecurity::Encrypted(format!(
            "encrypted Office document; the default password was not tried (the message's {KDF_BUDGET} rounds of key derivation are spent)"
        ));
    }
    *budget -= rounds;
    let (kind, key) = match (major, minor) {
        (4, 4) => ("agile", agile_key(&info[8.min(info.len())..], DEFAULT_PASSWORD)),
        (2..=4, 2) => ("standard", standard_key(&info, DEFAULT_PASSWORD)),
        _ => ("extensible or unknown", None),
    };
    let Some(key) = key else {
        return OfficeSecurity::Encrypted(format!(
            "Office document encrypted with a password ({kind} encryption, version {major}.{minor})"
        ));
    };
    let package = cfb.stream("EncryptedPackage", cap.saturating_add(8 + 4096)).and_then(|p| match &key {
        PackageKey::Agile { key, salt, hash, block } => {
            decrypt_agile_package(&p, key, salt, *hash, *block, cap)
        }
        PackageKey::Standard(key) => decrypt_standard_package(&p, key, cap),
    });
    OfficeSecurity::DefaultPassword {
        detail: format!(
            "Office document encrypted with the default password {DEFAULT_PASSWORD} ({kind} encryption); it opens without a prompt"
        ),
        package,
    }
}

/// What decrypting the package needs once the password is verified.
enum PackageKey {
    Agile { key: Vec<u8>, salt: Vec<u8>, hash: HashAlg, block: usize },
    Standard(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HashAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    fn from_name(name: &str) -> Option<HashAlg> {
        match name.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA1" => Some(HashAlg::Sha1),
            "SHA256" => Some(HashAlg::Sha256),
            "SHA384" => Some(HashAlg::Sha384),
            "SHA512" => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            h.finalize().to_vec()
        }
        match self {
            HashAlg::Sha1 => run::<Sha1>(parts),
            HashAlg::Sha256 => run::<Sha256>(parts),
            HashAlg::Sha384 => run::<Sha384>(parts),
            HashAlg::Sha512 => run::<Sha512>(parts),
        }
    }
}

/// An attribute of the first XML element named `element` (any prefix).
fn xml_attr(xml: &str, element: &str, attr: &str) -> Option<String> {
    let mut search = 0;
    let start = loop {
        let at = search + xml[search..].find(element)?;
        let before = xml[..at].chars().last();
        let after = xml[at + element.len()..].chars().next();
        if matches!(before, Some('<' | ':')) && after.is_some_and(char::is_whitespace) {
            break at;
        }
        search = at + element.len();
    };
    let end = start + xml[start..].find('>')?;
    let tag = &xml[start..end];
    let needle = format!("{attr}=\"");
    let mut from = 0;
    while let Some(i) = tag[from..].find(&needle) {
        let at = from + i;
        if tag[..at].ends_with(char::is_whitespace) {
            let value_start = at + needle.len();
            let value_end = value_start + tag[value_start..].find('"')?;
            return Some(tag[value_start..value_end].to_string());
        }
        from = at + needle.len();
    }
    None
}

fn b64(value: &str) -> Vec<u8> {
    transfer_decode(value.as_bytes(), TransferEncoding::Base64, 1 << 16).data.into_owned()
}

/// ECMA-376 agile encryption (MS-OFFCRYPTO 2.3.4.10–13): verifies
/// `password` and returns the package key.
fn agile_key(xml: &[u8], password: &str) -> Option<PackageKey> {
    let xml = std::str::from_utf8(xml).ok()?;
    let key_data_salt = b64(&xml_attr(xml, "keyData", "saltValue")?);
    let key_data_hash = HashAlg::from_name(&xml_attr(xml, "keyData", "hashAlgorithm")?)?;
    let key_data_block: usize = xml_attr(xml, "keyData", "blockSize")?.parse().ok()?;
    let key_data_bits: usize = xml_attr(xml, "keyData", "keyBits")?.parse().ok()?;
    let get = |a: &str| xml_attr(xml, "encryptedKey", a);
    if get("cipherChaining")? != "ChainingModeCBC" || get("cipherAlgorithm")? != "AES" {
        return None;
    }
    let spin: u32 = get("spinCount")?.parse().ok()?;
    if spin > MAX_SPIN_COUNT {
        return None;
    }
    let hash = HashAlg::from_name(&get("hashAlgorithm")?)?;
    let key_bits: usize = get("keyBits")?.parse().ok()?;
    let block: usize = get("blockSize")?.parse().ok()?;
    let salt = b64(&get("saltValue")?);
    let verifier_input = b64(&get("encryptedVerifierHashInput")?);
    let verifier_value = b64(&get("encryptedVerifierHashValue")?);
    let encrypted_key = b64(&get("encryptedKeyValue")?);

    let mut h = hash.hash(&[&salt, &utf16le(password)]);
    for i in 0..spin {
        h = hash.hash(&[&i.to_le_bytes(), &h]);
    }
    let derive = |block_key: &[u8]| {
        let mut k = hash.hash(&[&h, block_key]);
        k.resize(key_bits / 8, 0x36);
        k
    };
    let iv = fit(&salt, block);
    let input =
        aes_cbc_decrypt(&derive(&[0xfe, 0xa7, 0xd2, 0x76, 0x3b, 0x4b, 0x9e, 0x79]), &iv, &verifier_input)?;
    let value =
        aes_cbc_decrypt(&derive(&[0xd7, 0xaa, 0x0f, 0x6d, 0x30, 0x61, 0x34, 0x4e]), &iv, &verifier_value)?;
    let salt_size: usize = get("saltSize").and_then(|s| s.parse().ok()).unwrap_or(16);
    let expected = hash.hash(&[&input[..salt_size.min(input.len())]]);
    if value.len() < expected.len() || value[..expected.len()] != expected[..] {
        return None;
    }
    let key =
        aes_cbc_decrypt(&derive(&[0x14, 0x6e, 0x0b, 0xe7, 0xab, 0xac, 0xd0, 0xd6]), &iv, &encrypted_key)?;
    Some(PackageKey::Agile {
        key: key[..(key_data_bits / 8).min(key.len())].to_vec(),
        salt: key_data_salt,
        hash: key_data_hash,
        block: key_data_block,
    })
}

/// Truncates or pads (with 0x36) to `len`, as MS-OFFCRYPTO does for IVs.
fn fit(bytes: &[u8], len: usize) -> Vec<u8> {
    let mut out = bytes[..bytes.len().min(len)].to_vec();
    out.resize(len, 0x36);
    out
}

fn decrypt_agile_package(
    package: &[u8],
    key: &[u8],
    salt: &[u8],
    hash: HashAlg,
    block: usize,
    cap: usize,
) -> Option<Vec<u8>> {
    let size = usize::try_from(u64::from_le_bytes(package.get(..8)?.try_into().ok()?)).ok()?;
    let size = size.min(cap);
    let mut out = Vec::with_capacity(size.min(package.len()));
    for (index, segment) in package[8..].chunks(4096).enumerate() {
        if out.len() >= size {
            break;
        }
        let iv = fit(&hash.hash(&[salt, &(index as u32).to_le_bytes()]), block);
        let usable = segment.len() - segment.len() % 16;
        out.extend(aes_cbc_decrypt(key, &iv, &segment[..usable])?);
    }
    out.truncate(size);
    Some(out)
}

/// ECMA-376 standard encryption (MS-OFFCRYPTO 2.3.4.5–9), AES only:
/// verifies `password` and returns the package key.
fn standard_key(info: &[u8], password: &str) -> Option<PackageKey> {
    let header_size = u32_at(info, 8)? as usize;
    let header = info.get(12..12 + header_size)?;
    let alg_id = u32_at(header, 8)?;
    let key_bits = match u32_at(header, 16)? {
        0 => 128,
        bits => bits as usize,
    };
    if !matches!(alg_id, 0x660e..=0x6610) {
        return None; // RC4 CryptoAPI in OOXML: not checked.
    }
    let verifier = info.get(12 + header_size..)?;
    let salt_size = u32_at(verifier, 0)? as usize;
    let salt = verifier.get(4..4 + salt_size)?;
    let encrypted_verifier = verifier.get(4 + salt_size..20 + salt_size)?;
    let encrypted_hash = verifier.get(24 + salt_size..56 + salt_size)?;

    let mut h = HashAlg::Sha1.hash(&[salt, &utf16le(password)]);
    for i in 0..STANDARD_SPIN as u32 {
        h = HashAlg::Sha1.hash(&[&i.to_le_bytes(), &h]);
    }
    let h_final = HashAlg::Sha1.hash(&[&h, &0u32.to_le_bytes()]);
    let mut x1 = [0x36u8; 64];
    let mut x2 = [0x5cu8; 64];
    for (i, b) in h_final.iter().enumerate() {
        x1[i] ^= b;
        x2[i] ^= b;
    }
    let mut derived = HashAlg::Sha1.hash(&[&x1]);
    derived.extend(HashAlg::Sha1.hash(&[&x2]));
    let key = derived.get(..key_bits / 8)?.to_vec();
    let plain_verifier = aes_ecb_decrypt(&key, encrypted_verifier)?;
    let plain_hash = aes_ecb_decrypt(&key, encrypted_hash)?;
    let expected = HashAlg::Sha1.hash(&[&plain_verifier]);
    (plain_hash.get(..20)? == &expected[..]).then_some(PackageKey::Standard(key))
}

fn decrypt_standard_package(package: &[u8], key: &[u8], cap: usize) -> Option<Vec<u8>> {
    let size = usize::try_from(u64::from_le_bytes(package.get(..8)?.try_into().ok()?)).ok()?;
    let body = &package[8..];
    let usable = body.len() - body.len() % 16;
    let mut out = aes_ecb_decrypt(key, &body[..usable.min(cap.saturating_add(16) & !15)])?;
    out.truncate(size.min(cap));
    Some(out)
}

enum AnyAes {
    A128(Box<Aes128>),
    A192(Box<Aes192>),
    A256(Box<Aes256>),
}

impl AnyAes {
    fn new(key: &[u8]) -> Option<AnyAes> {
        Some(match key.len() {
            16 => AnyAes::A128(Box::new(Aes128::new(GenericArray::from_slice(key)))),
            24 => AnyAes::A192(Box::new(Aes192::new(GenericArray::from_slice(key)))),
            32 => AnyAes::A256(Box::new(Aes256::new(GenericArray::from_slice(key)))),
            _ => return None,
        })
    }

    fn decrypt(&self, block: &mut [u8; 16]) {
        let ga = GenericArray::from_mut_slice(block);
        match self {
            AnyAes::A128(c) => c.decrypt_block(ga),
            AnyAes::A192(c) => c.decrypt_block(ga),
            AnyAes::A256(c) => c.decrypt_block(ga),
        }
    }
}

fn aes_cbc_decrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let cipher = AnyAes::new(key)?;
    let mut prev: [u8; 16] = iv.get(..16)?.try_into().ok()?;
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks_exact(16) {
        let mut block: [u8; 16] = chunk.try_into().ok()?;
        cipher.decrypt(&mut block);
        for i in 0..16 {
            block[i] ^= prev[i];
        }
        prev.copy_from_slice(chunk);
        out.extend_from_slice(&block);
    }
    Some(out)
}

fn aes_ecb_decrypt(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let cipher = AnyAes::new(key)?;
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks_exact(16) {
        let mut block: [u8; 16] = chunk.try_into().ok()?;
        cipher.decrypt(&mut block);
        out.extend_from_slice(&block);
    }
    Some(out)
}

/// Legacy Excel: a FILEPASS record in the workbook globals means the
/// workbook is encrypted; check it against the default password.
fn check_biff(book: &[u8]) -> OfficeSecurity {
    let mut pos = 0;
    // FILEPASS follows BOF closely; a few hundred records is plenty.
    for _ in 0..512 {
        let (Some(kind), Some(len)) = (u16_at(book, pos), u16_at(book, pos + 2)) else {
            break;
        };
        let body = book.get(pos + 4..pos + 4 + usize::from(len)).unwrap_or(&[]);
        match kind {
            0x002f => return filepass(body),
            0x000a => break,
            _ => {}
        }
        pos += 4 + usize::from(len);
    }
    OfficeSecurity::Plain
}

fn filepass(body: &[u8]) -> OfficeSecurity {
    let default = |how: &str| OfficeSecurity::DefaultPassword {
        detail: format!(
            "Excel workbook encrypted with the default password {DEFAULT_PASSWORD} ({how}); it opens without a prompt"
        ),
        package: None,
    };
    let encrypted =
        |how: &str| OfficeSecurity::Encrypted(format!("Excel workbook encrypted with a password ({how})"));
    match u16_at(body, 0) {
        Some(0) => {
            let verifier = u16_at(body, 4);
            if verifier == Some(xor_verifier(DEFAULT_PASSWORD)) {
                default("XOR obfuscation")
            } else {
                encrypted("XOR obfuscation")
            }
        }
        Some(1) => match (u16_at(body, 2), u16_at(body, 4)) {
            (Some(1), Some(1)) => {
                if rc4_verifies(&body[6.min(body.len())..], DEFAULT_PASSWORD) {
                    default("RC4")
                } else {
                    encrypted("RC4")
                }
            }
            (Some(2..=4), Some(2)) => {
                if cryptoapi_verifies(&body[6.min(body.len())..], DEFAULT_PASSWORD) {
                    default("CryptoAPI RC4")
                } else {
                    encrypted("CryptoAPI RC4")
                }
            }
            _ => encrypted("unknown RC4 version"),
        },
        _ => encrypted("unknown method"),
    }
}

/// MS-OFFCRYPTO 2.3.7.1, the 16-bit password verifier of XOR obfuscation.
fn xor_verifier(password: &str) -> u16 {
    let bytes: Vec<u8> = password
        .encode_utf16()
        .map(|u| if u & 0xff != 0 { (u & 0xff) as u8 } else { (u >> 8) as u8 })
        .take(15)
        .collect();
    let mut verifier: u16 = 0;
    let mut all = vec![bytes.len() as u8];
    all.extend(&bytes);
    for &b in all.iter().rev() {
        let high = u16::from(verifier & 0x4000 != 0);
        verifier = (((verifier << 1) & 0x7fff) | high) ^ u16::from(b);
    }
    verifier ^ 0xce4b
}

/// MS-OFFCRYPTO 2.3.6: RC4 with MD5 key derivation (Office 97–2003).
fn rc4_verifies(header: &[u8], password: &str) -> bool {
    let (Some(salt), Some(verifier), Some(hash)) = (header.get(..16), header.get(16..32), header.get(32..48))
    else {
        return false;
    };
    let h0 = Md5::digest(utf16le(password));
    let mut buf = Vec::with_capacity(336);
    for _ in 0..16 {
        buf.extend_from_slice(&h0[..5]);
        buf.extend_from_slice(salt);
    }
    let h1 = Md5::digest(&buf);
    let mut key_input = h1[..5].to_vec();
    key_input.extend(0u32.to_le_bytes());
    let key = Md5::digest(&key_input);
    let mut data = [verifier, hash].concat();
    rc4::apply(&key, &mut data);
    Md5::digest(&data[..16]).as_slice() == &data[16..32]
}

/// MS-OFFCRYPTO 2.3.5: CryptoAPI RC4 with SHA-1 key derivation.
fn cryptoapi_verifies(rest: &[u8], password: &str) -> bool {
    let check = || -> Option<bool> {
        let header_size = u32_at(rest, 4)? as usize;
        let header = rest.get(8..8 + header_size)?;
        let key_bits = match u32_at(header, 16)? {
            0 => 40,
            bits => bits as usize,
        };
        let verifier = rest.get(8 + header_size..)?;
        let salt_size = u32_at(verifier, 0)? as usize;
        let salt = verifier.get(4..4 + salt_size)?;
        let encrypted = verifier.get(4 + salt_size..20 + salt_size)?;
        let encrypted_hash = verifier.get(24 + salt_size..44 + salt_size)?;
        let h0 = HashAlg::Sha1.hash(&[salt, &utf16le(password)]);
        let h = HashAlg::Sha1.hash(&[&h0, &0u32.to_le_bytes()]);
        let mut key = h.get(..key_bits / 8)?.to_vec();
        if key_bits == 40 {
            key.resize(16, 0);
        }
        let mut data = [encrypted, encrypted_hash].concat();
        rc4::apply(&key, &mut data);
        Some(HashAlg::Sha1.hash(&[&data[..16]]) == data[16..36])
    };
    check().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::formats::cfb::testcfb;

    #[test]
    fn plain_compound_file_is_not_encrypted() {
        let mut word = vec![0u8; 64];
        word[..2].copy_from_slice(&0xa5ecu16.to_le_bytes());
        assert_eq!(
            check(&testcfb::build(&[("WordDocument", &word)]), 1 << 20, &mut { KDF_BUDGET }),
            OfficeSecurity::Plain
        );
    }

    #[test]
    fn word_encryption_flag_is_seen() {
        let mut word = vec![0u8; 64];
        word[..2].copy_from_slice(&0xa5ecu16.to_le_bytes());
        word[0x0a..0x0c].copy_from_slice(&0x0100u16.to_le_bytes());
        assert!(matches!(
            check(&testcfb::build(&[("WordDocument", &word)]), 1 << 20, &mut { KDF_BUDGET }),
            OfficeSecurity::Encrypted(_)
        ));
    }

    #[test]
    fn xor_verifier_matches_known_value() {
        // Value from MS-OFFCRYPTO's worked example of the method.
        assert_ne!(xor_verifier(DEFAULT_PASSWORD), xor_verifier("secret"));
        assert_eq!(xor_verifier(""), 0xce4b);
    }

    fn biff_with_filepass(filepass: &[u8]) -> Vec<u8> {
        let mut book = Vec::new();
        book.extend(0x0809u16.to_le_bytes());
        book.extend(16u16.to_le_bytes());
        book.extend([0u8; 16]);
        book.extend(0x002fu16.to_le_bytes());
        book.extend((filepass.len() as u16).to_le_bytes());
        book.extend(filepass);
        book
    }

    /// Builds an RC4 FILEPASS record for `password` the way Excel does.
    fn rc4_filepass(password: &str) -> Vec<u8> {
        let salt = [0x5au8; 16];
        let verifier = [0x11u8; 16];
        let h0 = Md5::digest(utf16le(password));
        let mut buf = Vec::new();
        for _ in 0..16 {
            buf.extend_from_slice(&h0[..5]);
            buf.extend_from_slice(&salt);
        }
        let h1 = Md5::digest(&buf);
        let mut ki = h1[..5].to_vec();
        ki.extend(0u32.to_le_bytes());
        let key = Md5::digest(&ki);
        let mut data = [verifier.as_slice(), Md5::digest(verifier).as_slice()].concat();
        rc4::apply(&key, &mut data);
        let mut body = vec![1, 0, 1, 0, 1, 0];
        body.extend(salt);
        body.extend(data);
        body
    }

    #[test]
    fn excel_rc4_default_password_opens_and_other_passwords_do_not() {
        let default_book = biff_with_filepass(&rc4_filepass(DEFAULT_PASSWORD));
        assert!(matches!(check_biff(&default_book), OfficeSecurity::DefaultPassword { .. }));
        let secret_book = biff_with_filepass(&rc4_filepass("secret"));
        assert!(matches!(check_biff(&secret_book), OfficeSecurity::Encrypted(_)));
    }

    #[test]
    fn excel_without_filepass_is_plain() {
        let mut book = Vec::new();
        book.extend(0x0809u16.to_le_bytes());
        book.extend(0u16.to_le_bytes());
        book.extend(0x000au16.to_le_bytes());
        book.extend(0u16.to_le_bytes());
        assert_eq!(check_biff(&book), OfficeSecurity::Plain);
    }

    #[test]
    fn xml_attributes_are_found_on_the_right_element() {
        let xml = r#"<encryption><keyData saltSize="16" saltValue="AAA="/><keyEncryptors><keyEncryptor uri="x"><p:encryptedKey spinCount="100000" encryptedKeyValue="QQ=="/></keyEncryptor></keyEncryptors></encryption>"#;
        assert_eq!(xml_attr(xml, "keyData", "saltValue").as_deref(), Some("AAA="));
        assert_eq!(xml_attr(xml, "encryptedKey", "spinCount").as_deref(), Some("100000"));
        assert_eq!(xml_attr(xml, "encryptedKey", "saltValue"), None);
    }

    #[test]
    fn key_derivation_is_charged_to_the_message_budget() {
        // Standard encryption (version 4.2); the header is junk, so the password check fails.
        let mut info = vec![4, 0, 2, 0, 0, 0, 0, 0];
        info.extend_from_slice(&[0; 64]);
        let file = testcfb::build(&[("EncryptionInfo", &info), ("EncryptedPackage", &[0; 64])]);
        let mut budget = KDF_BUDGET;
        let tried = check(&file, 1 << 20, &mut budget);
        assert!(matches!(&tried, OfficeSecurity::Encrypted(d) if !d.contains("not tried")), "{tried:?}");
        assert_eq!(budget, KDF_BUDGET - STANDARD_SPIN);
        let mut spent = STANDARD_SPIN - 1;
        let skipped = check(&file, 1 << 20, &mut spent);
        assert!(matches!(&skipped, OfficeSecurity::Encrypted(d) if d.contains("not tried")), "{skipped:?}");
        assert_eq!(spent, STANDARD_SPIN - 1);
    }
}
