//! File types from content. A declared type or file name is the sender's
//! claim; the magic bytes are what the recipient's system will act on. The
//! walk uses this to open archives whatever they are called, to list the
//! archive formats it cannot open, and to flag a claim that the bytes
//! contradict (an "invoice.pdf" that is a Windows executable).

/// Content types recognised from magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::inspect) enum FileType {
    Pe,
    Elf,
    MachO,
    Pdf,
    Zip,
    Ole,
    Rtf,
    Png,
    Jpeg,
    Gif,
    Rar,
    SevenZip,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
    Cab,
    Ace,
    Arj,
    Lzh,
    Iso9660,
    Tar,
}

impl FileType {
    pub fn name(self) -> &'static str {
        match self {
            FileType::Pe => "pe",
            FileType::Elf => "elf",
            FileType::MachO => "macho",
            FileType::Pdf => "pdf",
            FileType::Zip => "zip",
            FileType::Ole => "ole",
            FileType::Rtf => "rtf",
            FileType::Png => "png",
            FileType::Jpeg => "jpeg",
            FileType::Gif => "gif",
            FileType::Rar => "rar",
            FileType::SevenZip => "7z",
            FileType::Gzip => "gzip",
            FileType::Bzip2 => "bzip2",
            FileType::Xz => "xz",
            FileType::Zstd => "zstd",
            FileType::Cab => "cab",
            FileType::Ace => "ace",
            FileType::Arj => "arj",
            FileType::Lzh => "lzh",
            FileType::Iso9660 => "iso9660",
            FileType::Tar => "tar",
        }
    }

    /// Archive and compression formats that are recognised but not opened.
    /// Tar is listed too: it does not compress, so its members are already
    /// visible to YARA in the attachment bytes, and opening it adds little.
    pub fn is_unsupported_archive(self) -> bool {
        matches!(
            self,
            FileType::Rar
                | FileType::SevenZip
                | FileType::Gzip
                | FileType::Bzip2
                | FileType::Xz
                | FileType::Zstd
                | FileType::Cab
                | FileType::Ace
                | FileType::Arj
                | FileType::Lzh
                | FileType::Iso9660
                | FileType::Tar
        )
    }

    pub fn is_image(self) -> bool {
        matches!(self, FileType::Png | FileType::Jpeg | FileType::Gif)
    }

    pub fn is_executable(self) -> bool {
        matches!(self, FileType::Pe | FileType::Elf | FileType::MachO)
    }
}

/// Recognises `data` by its leading (or, for ISO 9660 and tar, fixed-offset)
/// magic bytes.
pub(in crate::inspect) fn sniff(data: &[u8]) -> Option<FileType> {
    let starts = |magic: &[u8]| data.starts_with(magic);
    let at = |offset: usize, magic: &[u8]| data.get(offset..offset + magic.len()) == Some(magic);
    let found = if starts(b"MZ") {
        FileType::Pe
    } else if starts(b"\x7fELF") {
        FileType::Elf
    } else if starts(b"\xfe\xed\xfa\xce")
        || starts(b"\xfe\xed\xfa\xcf")
        || starts(b"\xce\xfa\xed\xfe")
        || starts(b"\xcf\xfa\xed\xfe")
    {
        FileType::MachO
    } else if memchr::memmem::find(&data[..data.len().min(1024)], b"%PDF-").is_some() {
        FileType::Pdf
    } else if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") || starts(b"PK\x07\x08") {
        FileType::Zip
    } else if starts(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
        FileType::Ole
    } else if starts(b"{\\rt") {
        FileType::Rtf
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        FileType::Png
    } else if starts(b"\xff\xd8\xff") {
        FileType::Jpeg
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        FileType::Gif
    } else if starts(b"Rar!\x1a\x07") {
        FileType::Rar
    } else if starts(b"7z\xbc\xaf\x27\x1c") {
        FileType::SevenZip
    } else if starts(b"\x1f\x8b") {
        FileType::Gzip
    } else if starts(b"BZh") && data.get(3).is_some_and(|b| (b'1'..=b'9').contains(b)) {
        FileType::Bzip2
    } else if starts(b"\xfd7zXZ\x00") {
        FileType::Xz
    } else if starts(b"\x28\xb5\x2f\xfd") {
        FileType::Zstd
    } else if starts(b"MSCF\x00\x00\x00\x00") {
        FileType::Cab
    } else if at(7, b"**ACE**") {
        FileType::Ace
    } else if starts(b"\x60\xea") {
        FileType::Arj
    } else if at(2, b"-lh") || at(2, b"-lz") {
        FileType::Lzh
    } else if at(0x8001, b"CD001") || at(0x8801, b"CD001") || at(0x9001, b"CD001") {
        FileType::Iso9660
    } else if at(257, b"ustar") {
        FileType::Tar
    } else {
        return None;
    };
    Some(found)
}

fn extension(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let (_, ext) = base.rsplit_once('.')?;
    Some(ext.trim().to_ascii_lowercase())
}

/// Archive formats recognised by file name only (for when the bytes are
/// damaged or the magic is hidden).
pub(in crate::inspect) fn unsupported_archive_by_name(name: &str) -> Option<&'static str> {
    let ext = extension(name)?;
    let kind = match ext.as_str() {
        "rar" | "r00" | "r01" => "rar",
        "7z" => "7z",
        "gz" | "tgz" => "gzip",
        "bz2" | "tbz" | "tbz2" => "bzip2",
        "xz" | "txz" => "xz",
        "zst" => "zstd",
        "cab" => "cab",
        "ace" => "ace",
        "arj" => "arj",
        "lzh" | "lha" => "lzh",
        "iso" => "iso9660",
        "tar" => "tar",
        _ => return None,
    };
    Some(kind)
}

/// The types a file name's extension promises, if it is specific enough to
/// check against the bytes.
fn types_for_extension(ext: &str) -> Option<&'static [FileType]> {
    use FileType::*;
    let types: &'static [FileType] = match ext {
        "pdf" => &[Pdf],
        "doc" | "xls" | "ppt" | "msg" | "dot" | "xlt" | "pps" => &[Ole, Rtf, Zip],
        "docx" | "xlsx" | "pptx" | "docm" | "xlsm" | "pptm" | "odt" | "ods" | "odp" | "zip" | "jar"
        | "apk" | "epub" => &[Zip, Ole],
        "rtf" => &[Rtf],
        "exe" | "dll" | "scr" | "cpl" | "sys" | "ocx" => &[Pe],
        "png" => &[Png],
        "jpg" | "jpeg" | "jpe" => &[Jpeg],
        "gif" => &[Gif],
        "rar" => &[Rar],
        "7z" => &[SevenZip],
        "gz" | "tgz" => &[Gzip],
        "iso" => &[Iso9660],
        "txt" | "csv" | "htm" | "html" => &[],
        _ => return None,
    };
    Some(types)
}

/// The types a declared content type promises, if specific enough.
fn types_for_content_type(ct: &str) -> Option<&'static [FileType]> {
    use FileType::*;
    let types: &'static [FileType] = match ct {
        "application/pdf" | "application/x-pdf" => &[Pdf],
        "application/msword" | "application/vnd.ms-excel" | "application/vnd.ms-powerpoint" => {
            &[Ole, Rtf, Zip]
        }
        "application/zip" | "application/x-zip-compressed" | "application/x-zip" => &[Zip],
        "application/rtf" | "text/rtf" => &[Rtf],
        "application/x-msdownload"
        | "application/x-dosexec"
        | "application/x-msdos-program"
        | "application/vnd.microsoft.portable-executable" => &[Pe],
        "image/png" => &[Png],
        "image/jpeg" | "image/jpg" | "image/pjpeg" => &[Jpeg],
        "image/gif" => &[Gif],
        "application/x-rar-compressed" | "application/vnd.rar" | "application/x-rar" => &[Rar],
        "application/x-7z-compressed" => &[SevenZip],
        "application/gzip" | "application/x-gzip" => &[Gzip],
        "text/plain" | "text/html" | "text/csv" => &[],
        _ if ct.starts_with("application/vnd.openxmlformats-officedocument.") => &[Zip, Ole],
        _ if ct.starts_with("application/vnd.oasis.opendocument.") => &[Zip],
        _ => return None,
    };
    Some(types)
}

/// What the bytes contradict, as (anomaly code, detail) pairs: an extension
/// or declared type that promises something else than the content is. One
/// image format labelled as another is left out: mail clients send that all
/// the time and every viewer copes, so it would only be noise.
pub(in crate::inspect) fn mismatches(
    actual: Option<FileType>,
    filename: Option<&str>,
    content_type: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let Some(actual) = actual else {
        return out;
    };
    if let Some(ext) = filename.and_then(extension)
        && let Some(expected) = types_for_extension(&ext)
        && !expected.contains(&actual)
        && (!expected.is_empty() || actual.is_executable())
        && !(actual.is_image() && expected.iter().all(|t| t.is_image()))
    {
        out.push((
            "extension-mismatch",
            format!("file name ends in .{ext} but the content is {}", actual.name()),
        ));
    }
    if let Some(ct) = content_type
        && let Some(expected) = types_for_content_type(ct)
        && !expected.contains(&actual)
        && (!expected.is_empty() || actual.is_executable())
        && !(actual.is_image() && expected.iter().all(|t| t.is_image()))
    {
        out.push(("content-type-mismatch", format!("declared {ct} but the content is {}", actual.name())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_magics_are_recognised() {
        assert_eq!(sniff(b"MZ\x90\x00"), Some(FileType::Pe));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some(FileType::Pdf));
        assert_eq!(sniff(b"PK\x03\x04rest"), Some(FileType::Zip));
        assert_eq!(sniff(b"Rar!\x1a\x07\x01\x00"), Some(FileType::Rar));
        assert_eq!(sniff(b"7z\xbc\xaf\x27\x1c\x00\x04"), Some(FileType::SevenZip));
        assert_eq!(sniff(b"hello"), None);
        let mut iso = vec![0u8; 0x8010];
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        assert_eq!(sniff(&iso), Some(FileType::Iso9660));
    }

    #[test]
    fn executable_named_pdf_is_a_mismatch_twice() {
        let found = mismatches(Some(FileType::Pe), Some("invoice.pdf"), Some("application/pdf"));
        let codes: Vec<_> = found.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, ["extension-mismatch", "content-type-mismatch"]);
    }

    #[test]
    fn executable_declared_as_text_is_a_mismatch() {
        let found = mismatches(Some(FileType::Pe), Some("readme.txt"), Some("text/plain"));
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn matching_or_unknown_claims_are_not_mismatches() {
        assert!(mismatches(Some(FileType::Pdf), Some("a.PDF"), Some("application/pdf")).is_empty());
        assert!(mismatches(Some(FileType::Zip), Some("a.docx"), Some("application/octet-stream")).is_empty());
        assert!(mismatches(Some(FileType::Rtf), Some("a.doc"), Some("application/msword")).is_empty());
        assert!(mismatches(None, Some("a.pdf"), None).is_empty());
        assert!(mismatches(Some(FileType::Gif), Some("logo.jpg"), Some("image/jpeg")).is_empty());
    }

    #[test]
    fn archive_names_are_recognised() {
        assert_eq!(unsupported_archive_by_name("x.tar.gz"), Some("gzip"));
        assert_eq!(unsupported_archive_by_name("DOCS.RAR"), Some("rar"));
        assert_eq!(unsupported_archive_by_name("a.zip"), None);
    }
}
