//! What the scanners look at. The walk turns a message into a flat list of
//! `Target`s, each one buffer with the context a rule needs (where in the
//! message it came from, what kind of content it is, its name and type), so
//! YARA and regex rules never have to know about MIME.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// One buffer to scan. `data` borrows from the message bytes whenever the
/// content is there verbatim, and owns it only when it had to be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    pub kind: TargetKind,
    /// Where the content came from; see the crate documentation for the
    /// part-path scheme (`0`, `1.2`, `1.2!docs/a.exe`).
    pub part_path: String,
    pub data: Cow<'a, [u8]>,
    /// Declared content type, lower case, without parameters.
    pub content_type: Option<String>,
    /// Attachment or archive member name, when there is one.
    pub filename: Option<String>,
    /// Nesting depth: 0 for the top-level header block, 1 for top-level body
    /// parts, +1 per multipart, embedded message and archive level.
    pub depth: u32,
    /// True for archive members and anything derived from them.
    pub in_archive: bool,
    /// Header field name, for [`TargetKind::Header`] targets.
    pub header_name: Option<String>,
    /// Anchor text of an `<a href>` link, for [`TargetKind::Url`] targets.
    pub link_text: Option<String>,
}

/// What a [`Target`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// The raw header block of a message (top level or embedded), byte for
    /// byte, including fields that are not valid UTF-8.
    RawHeaders,
    /// One header field: name in `header_name`, value unfolded and with
    /// RFC 2047 encoded words decoded.
    Header,
    /// The decoded Subject.
    Subject,
    /// A decoded text part, as UTF-8.
    Text,
    /// The HTML source of a text/html part, transfer- and charset-decoded.
    Html,
    /// The visible text of an HTML part: tags stripped, entities decoded,
    /// script and style dropped.
    HtmlText,
    /// A URL found in text or HTML; `link_text` holds the anchor text.
    Url,
    /// An attachment name (Content-Disposition filename or Content-Type
    /// name, both when they differ), or an archive member's name.
    AttachmentName,
    /// The declared content type of an attachment.
    AttachmentType,
    /// The transfer-decoded bytes of an attachment (any non-text part, and
    /// text parts that carry a file name).
    Attachment,
    /// The decoded bytes of an archive member.
    ArchiveMember,
    /// Bytes that could not be decoded or structured (bad base64, a part past
    /// a limit, an unparsable message), scanned as they are.
    RawPart,
}

impl TargetKind {
    /// The YARA `part_kind` external variable for this target, or `None` for
    /// targets that only regex rules look at (header fields, names, URLs).
    pub fn yara_part_kind(self) -> Option<&'static str> {
        match self {
            TargetKind::RawPart => Some("raw"),
            TargetKind::RawHeaders => Some("headers"),
            TargetKind::Text | TargetKind::HtmlText => Some("text"),
            TargetKind::Html => Some("html"),
            TargetKind::Attachment => Some("attachment"),
            TargetKind::ArchiveMember => Some("archive_member"),
            TargetKind::Header
            | TargetKind::Subject
            | TargetKind::Url
            | TargetKind::AttachmentName
            | TargetKind::AttachmentType => None,
        }
    }

    /// The regex rule target this buffer feeds, given the header name for
    /// [`TargetKind::Header`] (`header:<Name>`). `None` for binary targets,
    /// which only YARA scans.
    pub fn regex_target(self, header_name: Option<&str>) -> Option<String> {
        let name = match self {
            TargetKind::Subject => "subject",
            TargetKind::Header => return Some(format!("header:{}", header_name.unwrap_or(""))),
            TargetKind::RawHeaders => "headers",
            TargetKind::Text | TargetKind::HtmlText => "body",
            TargetKind::Html => "html",
            TargetKind::Url => "url",
            TargetKind::AttachmentName => "attachment.name",
            TargetKind::AttachmentType => "attachment.type",
            TargetKind::Attachment | TargetKind::ArchiveMember | TargetKind::RawPart => {
                return None;
            }
        };
        Some(name.to_string())
    }
}

impl Target<'_> {
    /// The regex target name of this buffer (see [`TargetKind::regex_target`]).
    pub fn regex_target(&self) -> Option<String> {
        self.kind.regex_target(self.header_name.as_deref())
    }

    /// Lower-case extension of `filename` (without the dot), for the YARA
    /// `extension` variable.
    pub fn extension(&self) -> Option<String> {
        let name = self.filename.as_deref()?;
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let (_, ext) = base.rsplit_once('.')?;
        (!ext.is_empty()).then(|| ext.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: TargetKind, filename: Option<&str>) -> Target<'static> {
        Target {
            kind,
            part_path: "1".into(),
            data: Cow::Borrowed(b""),
            content_type: None,
            filename: filename.map(str::to_string),
            depth: 1,
            in_archive: false,
            header_name: None,
            link_text: None,
        }
    }

    #[test]
    fn yara_part_kinds_use_design_names() {
        assert_eq!(TargetKind::RawPart.yara_part_kind(), Some("raw"));
        assert_eq!(TargetKind::RawHeaders.yara_part_kind(), Some("headers"));
        assert_eq!(TargetKind::Text.yara_part_kind(), Some("text"));
        assert_eq!(TargetKind::HtmlText.yara_part_kind(), Some("text"));
        assert_eq!(TargetKind::Html.yara_part_kind(), Some("html"));
        assert_eq!(TargetKind::Attachment.yara_part_kind(), Some("attachment"));
        assert_eq!(TargetKind::ArchiveMember.yara_part_kind(), Some("archive_member"));
        assert_eq!(TargetKind::Url.yara_part_kind(), None);
    }

    #[test]
    fn regex_targets_use_design_names() {
        assert_eq!(TargetKind::Header.regex_target(Some("Reply-To")).as_deref(), Some("header:Reply-To"));
        assert_eq!(TargetKind::Text.regex_target(None).as_deref(), Some("body"));
        assert_eq!(TargetKind::HtmlText.regex_target(None).as_deref(), Some("body"));
        assert_eq!(TargetKind::AttachmentName.regex_target(None).as_deref(), Some("attachment.name"));
        assert_eq!(TargetKind::Attachment.regex_target(None), None);
    }

    #[test]
    fn extension_is_lower_case_and_ignores_directories() {
        assert_eq!(
            target(TargetKind::ArchiveMember, Some("docs.v2/Invoice.PDF.exe")).extension().as_deref(),
            Some("exe")
        );
        assert_eq!(target(TargetKind::Attachment, Some("dir.x/README")).extension(), None);
        assert_eq!(target(TargetKind::Attachment, Some("trailing.")).extension(), None);
    }
}
