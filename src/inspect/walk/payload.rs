//! What attachments contain. Bytes that are themselves containers (ZIP and
//! Office Open XML archives, S/MIME blobs) are opened and their contents
//! walked; formats that hide content behind a secret (encrypted archives,
//! PDFs, Office files, S/MIME and PGP) are recognised and recorded; archive
//! formats we do not open are listed. Every step is bounded by the walk's
//! limits, and a decompression that outgrows its ratio is cut short.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::inspect::coverage::Reason;
use crate::inspect::deadline::Stage;
use crate::inspect::formats::office::{self, OfficeSecurity};
use crate::inspect::formats::pdf::{self, PdfSecurity};
use crate::inspect::formats::pgp;
use crate::inspect::formats::smime::{self, Cms};
use crate::inspect::formats::sniff::{self, FileType};
use crate::inspect::formats::zip;
use crate::inspect::target::TargetKind;
use crate::inspect::walk::walker::{Buf, PartInfo, PartKind, Place, Walker};

/// What the message says about a payload.
#[derive(Debug, Clone, Copy, Default)]
pub(in crate::inspect) struct Declared<'d> {
    pub content_type: Option<&'d str>,
    /// The `smime-type` parameter of an application/pkcs7-mime part.
    pub smime_type: Option<&'d str>,
    pub filename: Option<&'d str>,
}

/// Longest piece of a member's name put in its part path. Names can be 64 KiB, and nested
/// members repeat their parents' paths: a few long names would make every path, log line
/// and report of a thousand members megabytes long. The whole name stays the member's
/// `filename` (and `attachment.name` target).
const MAX_NAME_IN_PATH: usize = 256;

/// `PATH!name`, the name cut at [`MAX_NAME_IN_PATH`] bytes (at a character boundary) and
/// then told apart by the member's index: `PATH!aaaa…#12`.
fn member_path(path: &str, name: &str, index: usize) -> String {
    if name.len() <= MAX_NAME_IN_PATH {
        return format!("{path}!{name}");
    }
    let mut end = MAX_NAME_IN_PATH;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{path}!{}…#{}", &name[..end], index + 1)
}

/// Members smaller than this are never treated as bombs whatever their
/// ratio: a kilobyte of zeros compresses a thousandfold and is harmless;
/// bombs need output in the megabytes to hurt.
const RATIO_FLOOR: u64 = 1024 * 1024;

impl<'a> Walker<'a, '_> {
    /// The Attachment target of a part, then whatever its bytes contain.
    pub(in crate::inspect) fn attachment(
        &mut self,
        data: Cow<'a, [u8]>,
        place: &Place,
        declared: &Declared<'_>,
    ) {
        let index = self.out.targets.len();
        let mut target = self.target(TargetKind::Attachment, place, Cow::Borrowed(&[]));
        target.filename = declared.filename.map(str::to_string);
        target.content_type = declared.content_type.map(str::to_string);
        self.out.targets.push(target);
        match &data {
            Cow::Borrowed(slice) => self.inspect_payload(Buf::Input(slice), place, declared),
            Cow::Owned(vec) => self.inspect_payload(Buf::Local(vec), place, declared),
        }
        self.out.targets[index].data = data;
    }

    /// Looks inside a payload: containers, encryption, archive formats and
    /// claims the bytes contradict.
    pub(in crate::inspect) fn inspect_payload(
        &mut self,
        buf: Buf<'a, '_>,
        place: &Place,
        declared: &Declared<'_>,
    ) {
        let bytes = buf.bytes();
        let path = place.path.as_str();
        if self.out_of_time(Stage::Document, path) {
            return;
        }
        let kind = sniff::sniff(bytes);
        for (code, detail) in sniff::mismatches(kind, declared.filename, declared.content_type) {
            self.anomaly(code, path, detail);
        }

        let is_pkcs7 = declared
            .content_type
            .is_some_and(|ct| matches!(ct, "application/pkcs7-mime" | "application/x-pkcs7-mime"))
            || declared.filename.is_some_and(|n| n.to_ascii_lowercase().ends_with(".p7m"));
        if is_pkcs7 {
            self.smime(buf, place, declared);
            return;
        }
        if pgp::is_encrypted(bytes, declared.filename) {
            self.record(Reason::PgpEncrypted, path, "OpenPGP encrypted data".to_string());
            return;
        }

        let zip_end = zip::find_end_record(bytes);
        match kind {
            Some(FileType::Zip) => self.walk_zip(buf, place, true),
            Some(FileType::Pdf) => match pdf::check(bytes) {
                PdfSecurity::Plain => {}
                PdfSecurity::OwnerPasswordOnly(detail) => {
                    self.anomaly("pdf-owner-password-only", path, detail);
                }
                PdfSecurity::Encrypted(detail) => self.record(Reason::EncryptedPdf, path, detail),
            },
            Some(FileType::Ole) => self.office(bytes, place),
            Some(other) if other.is_unsupported_archive() => self.record(
                Reason::UnsupportedArchive,
                path,
                format!("{} archive; not opened, its bytes are scanned as they are", other.name()),
            ),
            // An archive appended to something else (self-extractor, polyglot).
            _ if zip_end.is_some() => self.walk_zip(buf, place, false),
            _ => {
                if let Some(name) = declared.filename
                    && let Some(format) = sniff::unsupported_archive_by_name(name)
                {
                    self.record(
                        Reason::UnsupportedArchive,
                        path,
                        format!("named like a {format} archive but not recognised; not opened"),
                    );
                }
            }
        }
    }

    fn smime(&mut self, buf: Buf<'a, '_>, place: &Place, declared: &Declared<'_>) {
        let path = place.path.as_str();
        match smime::classify(buf.bytes(), declared.smime_type) {
            Cms::Enveloped(what) => {
                self.record(Reason::SmimeEncrypted, path, format!("S/MIME {what}"));
            }
            Cms::Signed(Some(content)) => {
                // Opaque signature: the signed entity is inside the blob.
                if place.depth + 1 > self.limits.depth() {
                    self.record(
                        Reason::OverDepth,
                        path,
                        "signed content nested too deep to open".to_string(),
                    );
                    return;
                }
                self.anomaly(
                    "smime-opaque-signed",
                    path,
                    format!("content of S/MIME signed-data ({} bytes) walked as {path}", content.len()),
                );
                self.walk_message(Buf::Local(&content), path, place.depth, 1, place.in_archive);
            }
            Cms::Signed(None) => {}
            Cms::Compressed => self.record(
                Reason::UnsupportedArchive,
                path,
                "S/MIME compressed-data; not opened".to_string(),
            ),
            Cms::Other(what) => self.record(
                Reason::ParseError,
                path,
                format!("S/MIME blob not understood ({what}); scanned as it is"),
            ),
        }
    }

    fn office(&mut self, bytes: &[u8], place: &Place) {
        let path = place.path.as_str();
        // Packages decrypted from packages: an onion of default-password layers nests as
        // deep as archives do and stops where they stop.
        if place.archive_depth >= self.limits.max_archive_depth {
            self.record(
                Reason::OverDepth,
                path,
                format!(
                    "Office document nested deeper than max_archive_depth ({}); not opened",
                    self.limits.max_archive_depth
                ),
            );
            return;
        }
        let cap = self.part_cap();
        match office::check(bytes, cap, &mut self.kdf_budget) {
            OfficeSecurity::Plain => {}
            OfficeSecurity::Encrypted(detail) => self.record(Reason::EncryptedOffice, path, detail),
            OfficeSecurity::DefaultPassword { detail, package } => {
                self.anomaly("office-default-password", path, detail);
                if let Some(package) = package {
                    self.decrypted_package(package, place);
                }
            }
        }
    }

    /// The OOXML package inside an Office file encrypted with the default
    /// password, walked as member `EncryptedPackage` of the file.
    fn decrypted_package(&mut self, package: Vec<u8>, place: &Place) {
        let member = Place {
            path: format!("{}!EncryptedPackage", place.path),
            depth: place.depth + 1,
            in_archive: true,
            archive_depth: place.archive_depth + 1,
        };
        self.charge(package.len());
        self.part_info(PartInfo {
            part_path: member.path.clone(),
            kind: PartKind::ArchiveMember,
            content_type: None,
            filename: Some("EncryptedPackage".to_string()),
            disposition: None,
            size: package.len() as u64,
            decoded_size: Some(package.len() as u64),
        });
        let index = self.out.targets.len();
        let mut target = self.target(TargetKind::ArchiveMember, &member, Cow::Borrowed(&[]));
        target.filename = Some("EncryptedPackage".to_string());
        self.out.targets.push(target);
        let declared = Declared { filename: Some("EncryptedPackage"), ..Declared::default() };
        if zip::find_end_record(&package).is_none() {
            self.record(
                Reason::ParseError,
                &member.path,
                "package decrypted with the default password is not a ZIP; scanned as it is".to_string(),
            );
        }
        self.inspect_payload(Buf::Local(&package), &member, &declared);
        self.out.targets[index].data = Cow::Owned(package);
    }

    /// Opens a ZIP archive (including OOXML documents, which are ZIPs) and
    /// walks its members as `PATH!member/name`.
    fn walk_zip(&mut self, buf: Buf<'a, '_>, place: &Place, looks_like_zip: bool) {
        let path = place.path.as_str();
        let bytes = buf.bytes();
        if place.archive_depth >= self.limits.max_archive_depth {
            self.record(
                Reason::OverDepth,
                path,
                format!(
                    "archive nested deeper than max_archive_depth ({}); not opened",
                    self.limits.max_archive_depth
                ),
            );
            return;
        }
        let max = self.limits.max_archive_members.saturating_sub(self.members) as usize;
        let dir = match zip::read_directory(bytes, max.max(1)) {
            Ok(dir) => dir,
            Err(err) => {
                if looks_like_zip {
                    self.record(Reason::ParseError, path, format!("ZIP archive not readable: {err}"));
                }
                return;
            }
        };
        if dir.prepended > 0 {
            self.anomaly(
                "zip-prepended-data",
                path,
                format!("{} bytes before the ZIP archive", dir.prepended),
            );
        }
        if let Some(why) = dir.damaged {
            self.anomaly(
                "zip-damaged-directory",
                path,
                format!("central directory damaged ({why}); {} members listed", dir.entries.len()),
            );
        }
        if dir.encrypted_directory {
            self.record(Reason::EncryptedArchive, path, "ZIP central directory is encrypted".to_string());
            return;
        }
        let ratio = u64::from(self.limits.max_expansion_ratio);
        let archive_budget = (bytes.len() as u64).saturating_mul(ratio).max(RATIO_FLOOR);
        let mut archive_out: u64 = 0;
        // Data spans read so far, by start; disjoint (the first overlap ends the archive), so an
        // overlap with a new span can only be with its neighbours: O(log n) a member.
        let mut spans: BTreeMap<usize, usize> = BTreeMap::new();
        let total = dir.entries.len();
        for (index, entry) in dir.entries.iter().enumerate() {
            let member_path = member_path(path, &entry.name, index);
            if self.out_of_time(Stage::Archive, &member_path) || !self.admit_member(&member_path) {
                return;
            }
            if entry.is_dir() {
                continue;
            }
            let member = Place {
                path: member_path.clone(),
                depth: place.depth + 1,
                in_archive: true,
                archive_depth: place.archive_depth + 1,
            };
            if member.depth > self.limits.depth() {
                self.record(
                    Reason::OverDepth,
                    &member_path,
                    format!("nested deeper than max_depth ({})", self.limits.max_depth),
                );
                return;
            }
            let mut name_target =
                self.target(TargetKind::AttachmentName, &member, entry.name.as_bytes().to_vec().into());
            name_target.filename = Some(entry.name.clone());
            self.out.targets.push(name_target);
            let mut info = PartInfo {
                part_path: member_path.clone(),
                kind: PartKind::ArchiveMember,
                content_type: None,
                filename: Some(entry.name.clone()),
                disposition: None,
                size: entry.compressed,
                decoded_size: None,
            };
            if entry.encrypted() {
                self.record(
                    Reason::EncryptedArchive,
                    &member_path,
                    "password-protected ZIP member".to_string(),
                );
                self.part_info(info);
                continue;
            }
            let located = match zip::locate(bytes, entry) {
                Ok(located) => located,
                Err(err) => {
                    self.record(Reason::ParseError, &member_path, format!("ZIP member not readable: {err}"));
                    self.part_info(info);
                    continue;
                }
            };
            let span = located.span.clone();
            let before = spans.range(..=span.start).next_back().is_some_and(|(_, &end)| end > span.start);
            let after = spans.range(span.start..).next().is_some_and(|(&start, _)| start < span.end);
            if before || after {
                // Members sharing data are the overlapping-entry bomb: the
                // archive is hostile, nothing from here on is read.
                self.record(
                    Reason::ExpansionRatio,
                    path,
                    format!(
                        "ZIP members share data (overlapping-entry bomb); stopped at member {} of {}",
                        index + 1,
                        dir.declared
                    ),
                );
                self.part_info(info);
                return;
            }
            if !span.is_empty() {
                spans.insert(span.start, span.end);
            }
            if located.name_differs {
                self.anomaly(
                    "zip-name-mismatch",
                    &member_path,
                    "local header names the member differently from the directory".to_string(),
                );
            }
            let compressed = &bytes[located.data.clone()];
            let ratio_cap = entry.compressed.saturating_mul(ratio).max(RATIO_FLOOR);
            if entry.uncompressed > ratio_cap {
                self.record(
                    Reason::ExpansionRatio,
                    &member_path,
                    format!(
                        "declares {} bytes from {} compressed (over {ratio}x); only the first {ratio_cap} bytes are read",
                        entry.uncompressed, entry.compressed
                    ),
                );
            }
            let part_cap = self.part_cap();
            let cap = usize::try_from(ratio_cap).unwrap_or(usize::MAX).min(part_cap);
            let data: Cow<'a, [u8]> = match entry.method {
                0 => {
                    let take = compressed.len().min(part_cap);
                    if take < compressed.len() {
                        self.record_truncation(&member_path, part_cap);
                    }
                    buf.cow(located.data.start..located.data.start + take)
                }
                8 => {
                    match zip::inflate(compressed, cap) {
                        Ok((out, truncated)) => {
                            if truncated {
                                if cap < part_cap {
                                    self.record(
                                    Reason::ExpansionRatio,
                                    &member_path,
                                    format!("inflates beyond {ratio}x its compressed size; stopped at {cap} bytes"),
                                );
                                } else {
                                    self.record_truncation(&member_path, part_cap);
                                }
                            } else if crc32fast::hash(&out) != entry.crc32 {
                                self.anomaly(
                                    "zip-crc-mismatch",
                                    &member_path,
                                    "member content does not match its CRC-32".to_string(),
                                );
                            }
                            Cow::Owned(out)
                        }
                        Err(err) => {
                            self.record(
                                Reason::ParseError,
                                &member_path,
                                format!("ZIP member not readable: {err}"),
                            );
                            self.part_info(info);
                            continue;
                        }
                    }
                }
                method => {
                    self.record(
                        Reason::UnsupportedArchive,
                        &member_path,
                        format!("ZIP compression method {method} is not supported"),
                    );
                    self.part_info(info);
                    continue;
                }
            };
            self.charge(data.len());
            archive_out = archive_out.saturating_add(data.len() as u64);
            info.decoded_size = Some(data.len() as u64);
            self.part_info(info);

            let target_index = self.out.targets.len();
            let mut target = self.target(TargetKind::ArchiveMember, &member, Cow::Borrowed(&[]));
            target.filename = Some(entry.name.clone());
            self.out.targets.push(target);
            let declared = Declared { filename: Some(&entry.name), ..Declared::default() };
            match &data {
                Cow::Borrowed(slice) => self.inspect_payload(Buf::Input(slice), &member, &declared),
                Cow::Owned(vec) => self.inspect_payload(Buf::Local(vec), &member, &declared),
            }
            self.out.targets[target_index].data = data;

            if archive_out > archive_budget {
                self.record(
                    Reason::ExpansionRatio,
                    path,
                    format!(
                        "archive expands beyond {ratio}x its size after {} of {total} members; the rest is not read",
                        index + 1
                    ),
                );
                return;
            }
        }
        if (dir.declared as usize) > dir.entries.len() && dir.damaged.is_none() && !self.members_exhausted {
            self.record(
                Reason::OverParts,
                path,
                format!("archive declares {} members; {} read", dir.declared, dir.entries.len()),
            );
        }
    }
}
