//! DICOM Part 10 File Meta Information (PS3.10 section 7.1): reading and writing the header
//! of a DICOM file.
//!
//! A Part 10 file starts with a 128-byte File Preamble, the four bytes `"DICM"`, and the
//! File Meta Information: the group 0002 data elements, always encoded in Explicit VR Little
//! Endian (PS3.5 7.1.2), the first of which, (0002,0000) File Meta Information Group Length,
//! gives the number of bytes that follow it up to the end of the group. The data set that
//! follows is encoded in the transfer syntax named by (0002,0010).
//!
//! The reader is tolerant where real files are known to deviate: a missing group length (the
//! group then ends at the first tag of another group) and a missing preamble (the group 0002
//! elements start at byte 0, reported through [`ParsedHeader::has_preamble`]). It checks every
//! length against the bytes that remain and never panics, whatever the input.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

/// Length of the File Preamble (PS3.10 7.1).
pub const PREAMBLE_LEN: usize = 128;
/// The DICOM prefix that follows the preamble (PS3.10 7.1).
pub const DICM: &[u8; 4] = b"DICM";
/// The largest File Meta Information (group 0002 elements, from the first element's tag to
/// the end of the last element's value) accepted by the reader and produced by the writer.
pub const MAX_META_LEN: u64 = 1 << 20;

/// How much [`read_header`] reads first; a larger header takes one more read.
const INITIAL_READ: u64 = 4096;
/// Never buffer more than this: a preamble, the prefix, the largest meta and a tag to peek at.
const MAX_READ: u64 = (PREAMBLE_LEN as u64) + 4 + MAX_META_LEN + 8;

/// Group 0002 element numbers (PS3.10 Table 7.1-1).
const GROUP_LENGTH: u16 = 0x0000;
const VERSION: u16 = 0x0001;
const MEDIA_STORAGE_SOP_CLASS_UID: u16 = 0x0002;
const MEDIA_STORAGE_SOP_INSTANCE_UID: u16 = 0x0003;
const TRANSFER_SYNTAX_UID: u16 = 0x0010;
const IMPLEMENTATION_CLASS_UID: u16 = 0x0012;
const IMPLEMENTATION_VERSION_NAME: u16 = 0x0013;
const SOURCE_AE_TITLE: u16 = 0x0016;
const SENDING_AE_TITLE: u16 = 0x0017;
const RECEIVING_AE_TITLE: u16 = 0x0018;
const PRIVATE_INFORMATION_CREATOR_UID: u16 = 0x0100;
const PRIVATE_INFORMATION: u16 = 0x0102;

/// The elements [`FileMeta`] has a field for, with their VR.
const KNOWN: &[(u16, [u8; 2])] = &[
    (GROUP_LENGTH, *b"UL"),
    (VERSION, *b"OB"),
    (MEDIA_STORAGE_SOP_CLASS_UID, *b"UI"),
    (MEDIA_STORAGE_SOP_INSTANCE_UID, *b"UI"),
    (TRANSFER_SYNTAX_UID, *b"UI"),
    (IMPLEMENTATION_CLASS_UID, *b"UI"),
    (IMPLEMENTATION_VERSION_NAME, *b"SH"),
    (SOURCE_AE_TITLE, *b"AE"),
    (SENDING_AE_TITLE, *b"AE"),
    (RECEIVING_AE_TITLE, *b"AE"),
    (PRIVATE_INFORMATION_CREATOR_UID, *b"UI"),
    (PRIVATE_INFORMATION, *b"OB"),
];

/// Names used in [`FileMetaError::MissingElement`].
const NAME_SOP_CLASS: &str = "(0002,0002) Media Storage SOP Class UID";
const NAME_SOP_INSTANCE: &str = "(0002,0003) Media Storage SOP Instance UID";
const NAME_TRANSFER_SYNTAX: &str = "(0002,0010) Transfer Syntax UID";
const NAME_IMPLEMENTATION_CLASS: &str = "(0002,0012) Implementation Class UID";

/// Errors reading or writing File Meta Information.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileMetaError {
    /// Neither `"DICM"` at offset 128 nor a group 0002 element at offset 0.
    #[error(
        "not a DICOM file: no \"DICM\" prefix at offset 128 and no group 0002 element at offset 0"
    )]
    NotDicom,
    /// The bytes end inside the header. `needed` is the total number of bytes (from the start
    /// of the file) that must be available to go on, so a caller holding a prefix of the file
    /// can read at least that much and try again.
    #[error("File Meta Information is truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes from the start of the file needed to go on.
        needed: u64,
        /// Bytes that were available.
        available: u64,
    },
    /// A group 0002 element (or the encoding of one) is malformed.
    #[error("element ({:04X},{:04X}): {reason}", .tag.0, .tag.1)]
    BadElement {
        /// (group, element) of the offending element.
        tag: (u16, u16),
        /// What is wrong with it.
        reason: String,
    },
    /// A required element is absent or empty.
    #[error("File Meta Information lacks {0}")]
    MissingElement(&'static str),
    /// The File Meta Information exceeds [`MAX_META_LEN`].
    #[error("File Meta Information exceeds {MAX_META_LEN} bytes")]
    TooLarge,
    /// Reading the file failed.
    #[error("I/O error: {0}")]
    Io(String),
}

/// A group 0002 element [`FileMeta`] has no dedicated field for, kept as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MetaElement {
    /// The element number (the group is 0002).
    pub element: u16,
    /// The two-letter VR, e.g. `*b"UR"`.
    pub vr: [u8; 2],
    /// The value as stored, padding included.
    pub value: Vec<u8>,
}

/// The File Meta Information of a Part 10 file (PS3.10 Table 7.1-1).
///
/// Text values are held without their trailing NUL/space padding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FileMeta {
    /// (0002,0001) File Meta Information Version, OB; usually `[0x00, 0x01]`.
    /// [`FileMeta::encode`] writes `[0x00, 0x01]` when `None`.
    pub version: Option<Vec<u8>>,
    /// (0002,0002) Media Storage SOP Class UID.
    pub media_storage_sop_class_uid: String,
    /// (0002,0003) Media Storage SOP Instance UID.
    pub media_storage_sop_instance_uid: String,
    /// (0002,0010) Transfer Syntax UID of the data set that follows.
    pub transfer_syntax_uid: String,
    /// (0002,0012) Implementation Class UID of the writer (empty if a file lacks it).
    pub implementation_class_uid: String,
    /// (0002,0013) Implementation Version Name, SH.
    pub implementation_version_name: Option<String>,
    /// (0002,0016) Source Application Entity Title.
    pub source_application_entity_title: Option<String>,
    /// (0002,0017) Sending Application Entity Title.
    pub sending_application_entity_title: Option<String>,
    /// (0002,0018) Receiving Application Entity Title.
    pub receiving_application_entity_title: Option<String>,
    /// (0002,0100) Private Information Creator UID.
    pub private_information_creator_uid: Option<String>,
    /// (0002,0102) Private Information, OB, as stored.
    pub private_information: Option<Vec<u8>>,
    /// Any other group 0002 elements (e.g. the presentation addresses or RTV elements).
    pub other_elements: Vec<MetaElement>,
}

/// The result of parsing a file's header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ParsedHeader {
    /// The File Meta Information.
    pub meta: FileMeta,
    /// Byte offset, from the start of the file, where the data set starts.
    pub data_offset: u64,
    /// Whether the 128-byte preamble and `"DICM"` were present.
    pub has_preamble: bool,
}

/// Parses the header from the beginning of a file's bytes.
///
/// `bytes` must hold at least the whole File Meta Information; callers typically read e.g.
/// the first 64 KiB and, on [`FileMetaError::Truncated`], read at least `needed` bytes and
/// try again. Without a group length, the end of `bytes` at an element boundary is taken as
/// the end of the meta (the file holds nothing more); [`read_header`] handles prefixes of
/// such files itself.
pub fn parse(bytes: &[u8]) -> Result<ParsedHeader, FileMetaError> {
    parse_impl(bytes, true)
}

/// Reads the header of the file at `path` without reading the data set: reads a first block,
/// reads more if the header turns out to be larger (up to [`MAX_META_LEN`] of meta), and
/// parses it.
pub fn read_header(path: &Path) -> Result<ParsedHeader, FileMetaError> {
    let io = |e: std::io::Error| FileMetaError::Io(format!("{}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut buf = Vec::new();
    let mut target = INITIAL_READ;
    loop {
        let want = target.saturating_sub(len_u64(&buf));
        file.by_ref().take(want).read_to_end(&mut buf).map_err(io)?;
        let eof = len_u64(&buf) < target;
        match parse_impl(&buf, eof) {
            Err(FileMetaError::Truncated { needed, .. }) if !eof => {
                if needed > MAX_READ {
                    return Err(FileMetaError::TooLarge);
                }
                target = needed.max(target.saturating_mul(2)).min(MAX_READ);
                if target <= len_u64(&buf) {
                    // Cannot happen (needed > buf.len() and the cap holds it); stop rather than spin.
                    return Err(FileMetaError::TooLarge);
                }
            }
            result => return result,
        }
    }
}

fn len_u64(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX)
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// VRs with 2 reserved bytes and a 4-byte length in Explicit VR (PS3.5 7.1.2).
fn has_long_length(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB"
            | b"OW"
            | b"OF"
            | b"SQ"
            | b"UT"
            | b"UN"
            | b"UC"
            | b"UR"
            | b"OD"
            | b"OL"
            | b"OV"
            | b"SV"
            | b"UV"
    )
}

fn is_vr(vr: [u8; 2]) -> bool {
    vr.iter().all(u8::is_ascii_uppercase)
}

fn vr_str(vr: [u8; 2]) -> String {
    if is_vr(vr) {
        String::from_utf8_lossy(&vr).into_owned()
    } else {
        format!("{:02X} {:02X}", vr[0], vr[1])
    }
}

fn bad(element: u16, reason: impl Into<String>) -> FileMetaError {
    FileMetaError::BadElement {
        tag: (0x0002, element),
        reason: reason.into(),
    }
}

/// One element read from the bytes.
struct Raw<'a> {
    group: u16,
    element: u16,
    vr: [u8; 2],
    value: &'a [u8],
    /// Offset just past the value.
    end: usize,
}

/// Reads bytes of a header whose meta starts at `start`.
struct Reader<'a> {
    bytes: &'a [u8],
    /// Offset of the meta's first element.
    start: u64,
}

impl<'a> Reader<'a> {
    /// Checks that bytes up to `end` (exclusive) may be read.
    fn need(&self, end: u64) -> Result<(), FileMetaError> {
        if end.saturating_sub(self.start) > MAX_META_LEN {
            return Err(FileMetaError::TooLarge);
        }
        if end > len_u64(self.bytes) {
            return Err(FileMetaError::Truncated {
                needed: end,
                available: len_u64(self.bytes),
            });
        }
        Ok(())
    }

    fn element(&self, pos: usize) -> Result<Raw<'a>, FileMetaError> {
        let pos64 = u64::try_from(pos).unwrap_or(u64::MAX);
        self.need(pos64.saturating_add(8))?;
        let truncated = || FileMetaError::Truncated {
            needed: pos64.saturating_add(8),
            available: len_u64(self.bytes),
        };
        let group = u16_at(self.bytes, pos).ok_or_else(truncated)?;
        let element = u16_at(self.bytes, pos + 2).ok_or_else(truncated)?;
        let vr_bytes = self.bytes.get(pos + 4..pos + 6).ok_or_else(truncated)?;
        let vr = [vr_bytes[0], vr_bytes[1]];
        let tag = (group, element);
        if !is_vr(vr) {
            return Err(FileMetaError::BadElement {
                tag,
                reason: format!(
                    "invalid VR bytes {} (the File Meta Information is Explicit VR Little Endian)",
                    vr_str(vr)
                ),
            });
        }
        let (value_start, length) = if has_long_length(vr) {
            self.need(pos64.saturating_add(12))?;
            let length = u32_at(self.bytes, pos + 8).ok_or(FileMetaError::Truncated {
                needed: pos64.saturating_add(12),
                available: len_u64(self.bytes),
            })?;
            (pos + 12, length)
        } else {
            let length = u16_at(self.bytes, pos + 6).ok_or_else(truncated)?;
            (pos + 8, u32::from(length))
        };
        if length == u32::MAX {
            return Err(FileMetaError::BadElement {
                tag,
                reason: "undefined length is not allowed in the File Meta Information".into(),
            });
        }
        let end64 = u64::try_from(value_start)
            .unwrap_or(u64::MAX)
            .saturating_add(u64::from(length));
        self.need(end64)?;
        let end = to_usize(end64);
        let value = self
            .bytes
            .get(value_start..end)
            .ok_or(FileMetaError::Truncated {
                needed: end64,
                available: len_u64(self.bytes),
            })?;
        Ok(Raw {
            group,
            element,
            vr,
            value,
            end,
        })
    }
}

/// Where the meta starts, and whether a preamble precedes it.
fn locate(bytes: &[u8]) -> Result<(usize, bool), FileMetaError> {
    if bytes.get(PREAMBLE_LEN..PREAMBLE_LEN + 4) == Some(&DICM[..]) {
        return Ok((PREAMBLE_LEN + 4, true));
    }
    // A bare meta: an Explicit VR element of group 0002 at offset 0.
    if let Some(head) = bytes.get(..6) {
        if head[..2] == [0x02, 0x00] && is_vr([head[4], head[5]]) {
            return Ok((0, false));
        }
    }
    Err(FileMetaError::NotDicom)
}

fn parse_impl(bytes: &[u8], complete: bool) -> Result<ParsedHeader, FileMetaError> {
    let (start, has_preamble) = locate(bytes)?;
    let reader = Reader {
        bytes,
        start: u64::try_from(start).unwrap_or(u64::MAX),
    };
    let mut builder = Builder::default();
    let mut pos = start;

    // (0002,0000) gives the end of the group when present (it must come first).
    let mut group_end = None;
    if u16_at(bytes, pos) == Some(0x0002) && u16_at(bytes, pos + 2) == Some(GROUP_LENGTH) {
        let first = reader.element(pos)?;
        if first.vr != *b"UL" || first.value.len() != 4 {
            return Err(bad(
                GROUP_LENGTH,
                format!(
                    "group length must be UL with a 4-byte value, not {} with {} bytes",
                    vr_str(first.vr),
                    first.value.len()
                ),
            ));
        }
        let length = u32_at(first.value, 0).ok_or_else(|| bad(GROUP_LENGTH, "short value"))?;
        let end = u64::try_from(first.end)
            .unwrap_or(u64::MAX)
            .saturating_add(u64::from(length));
        reader.need(end)?;
        group_end = Some(to_usize(end));
        pos = first.end;
    }

    match group_end {
        Some(end) => {
            while pos < end {
                let raw = reader.element(pos)?;
                if raw.group != 0x0002 {
                    return Err(FileMetaError::BadElement {
                        tag: (raw.group, raw.element),
                        reason: "the group length extends past the end of group 0002".into(),
                    });
                }
                if raw.end > end {
                    return Err(bad(
                        raw.element,
                        "the element extends past the end given by the group length",
                    ));
                }
                builder.add(&raw)?;
                pos = raw.end;
            }
        }
        None => loop {
            // At the end of complete bytes, the meta ends (unless it is still empty).
            if pos == bytes.len() && complete && pos > start {
                break;
            }
            let group = u16_at(bytes, pos).ok_or(FileMetaError::Truncated {
                needed: u64::try_from(pos).unwrap_or(u64::MAX).saturating_add(2),
                available: len_u64(bytes),
            })?;
            if group != 0x0002 {
                break;
            }
            let raw = reader.element(pos)?;
            builder.add(&raw)?;
            pos = raw.end;
        },
    }

    Ok(ParsedHeader {
        meta: builder.finish()?,
        data_offset: u64::try_from(pos).unwrap_or(u64::MAX),
        has_preamble,
    })
}

/// Collects elements into a [`FileMeta`].
#[derive(Default)]
struct Builder {
    meta: FileMeta,
    sop_class: Option<String>,
    sop_instance: Option<String>,
    transfer_syntax: Option<String>,
    implementation_class: Option<String>,
    seen: BTreeSet<u16>,
}

fn text(element: u16, value: &[u8]) -> Result<String, FileMetaError> {
    let trimmed_len = value
        .iter()
        .rposition(|&b| b != 0 && b != b' ')
        .map_or(0, |i| i + 1);
    String::from_utf8(value[..trimmed_len].to_vec())
        .map_err(|_| bad(element, "the value is not valid text"))
}

impl Builder {
    fn add(&mut self, raw: &Raw<'_>) -> Result<(), FileMetaError> {
        let element = raw.element;
        if element == GROUP_LENGTH {
            return Err(bad(
                element,
                "the group length must be the first element of the group",
            ));
        }
        if !self.seen.insert(element) {
            return Err(bad(element, "duplicate element"));
        }
        if let Some(&(_, vr)) = KNOWN.iter().find(|(e, _)| *e == element) {
            if raw.vr != vr {
                return Err(bad(
                    element,
                    format!("VR {} where {} is expected", vr_str(raw.vr), vr_str(vr)),
                ));
            }
        }
        let value = raw.value;
        match element {
            VERSION => self.meta.version = Some(value.to_vec()),
            MEDIA_STORAGE_SOP_CLASS_UID => self.sop_class = Some(text(element, value)?),
            MEDIA_STORAGE_SOP_INSTANCE_UID => self.sop_instance = Some(text(element, value)?),
            TRANSFER_SYNTAX_UID => self.transfer_syntax = Some(text(element, value)?),
            IMPLEMENTATION_CLASS_UID => self.implementation_class = Some(text(element, value)?),
            IMPLEMENTATION_VERSION_NAME => {
                self.meta.implementation_version_name = Some(text(element, value)?);
            }
            SOURCE_AE_TITLE => {
                self.meta.source_application_entity_title = Some(text(element, value)?);
            }
            SENDING_AE_TITLE => {
                self.meta.sending_application_entity_title = Some(text(element, value)?);
            }
            RECEIVING_AE_TITLE => {
                self.meta.receiving_application_entity_title = Some(text(element, value)?);
            }
            PRIVATE_INFORMATION_CREATOR_UID => {
                self.meta.private_information_creator_uid = Some(text(element, value)?);
            }
            PRIVATE_INFORMATION => self.meta.private_information = Some(value.to_vec()),
            _ => self.meta.other_elements.push(MetaElement {
                element,
                vr: raw.vr,
                value: value.to_vec(),
            }),
        }
        Ok(())
    }

    fn finish(self) -> Result<FileMeta, FileMetaError> {
        let required = |value: Option<String>, name: &'static str| match value {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(FileMetaError::MissingElement(name)),
        };
        let mut meta = self.meta;
        meta.media_storage_sop_class_uid = required(self.sop_class, NAME_SOP_CLASS)?;
        meta.media_storage_sop_instance_uid = required(self.sop_instance, NAME_SOP_INSTANCE)?;
        meta.transfer_syntax_uid = required(self.transfer_syntax, NAME_TRANSFER_SYNTAX)?;
        meta.implementation_class_uid = self.implementation_class.unwrap_or_default();
        Ok(meta)
    }
}

/// Checks a UID value (PS3.5 9.1: digits and dots, at most 64 characters).
fn check_uid(element: u16, uid: &str) -> Result<(), FileMetaError> {
    if uid.len() > 64 {
        return Err(bad(element, "a UID is at most 64 characters"));
    }
    if !uid.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad(element, "a UID holds only digits and dots"));
    }
    Ok(())
}

/// Checks an AE or SH value: at most 16 characters of the default repertoire, no backslash.
fn check_short_text(element: u16, value: &str) -> Result<(), FileMetaError> {
    if value.len() > 16 {
        return Err(bad(element, "the value is longer than 16 characters"));
    }
    if !value
        .bytes()
        .all(|b| (0x20..0x7F).contains(&b) && b != b'\\')
    {
        return Err(bad(
            element,
            "the value must be printable ASCII without backslash",
        ));
    }
    Ok(())
}

/// The padding byte for an odd-length value of this VR (PS3.5 6.2).
fn padding(vr: [u8; 2]) -> u8 {
    match &vr {
        b"AE" | b"AS" | b"CS" | b"DA" | b"DS" | b"DT" | b"IS" | b"LO" | b"LT" | b"PN" | b"SH"
        | b"ST" | b"TM" | b"UC" | b"UR" | b"UT" => b' ',
        // UI (PS3.5 9.1) and the binary VRs.
        _ => 0x00,
    }
}

fn write_element(
    out: &mut Vec<u8>,
    element: u16,
    vr: [u8; 2],
    value: &[u8],
) -> Result<(), FileMetaError> {
    let odd = value.len() % 2 == 1;
    let padded_len = value.len().saturating_add(usize::from(odd));
    out.extend_from_slice(&0x0002u16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(&vr);
    if has_long_length(vr) {
        let length = u32::try_from(padded_len)
            .ok()
            .filter(|&l| l != u32::MAX)
            .ok_or(FileMetaError::TooLarge)?;
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&length.to_le_bytes());
    } else {
        let length = u16::try_from(padded_len).map_err(|_| {
            bad(
                element,
                format!("a {} value is at most 65534 bytes", vr_str(vr)),
            )
        })?;
        out.extend_from_slice(&length.to_le_bytes());
    }
    out.extend_from_slice(value);
    if odd {
        out.push(padding(vr));
    }
    Ok(())
}

impl FileMeta {
    /// A File Meta Information for a data set of the given SOP class and instance encoded in
    /// the given transfer syntax, identifying this implementation as the writer.
    pub fn new(
        media_storage_sop_class_uid: impl Into<String>,
        media_storage_sop_instance_uid: impl Into<String>,
        transfer_syntax_uid: impl Into<String>,
    ) -> Self {
        FileMeta {
            media_storage_sop_class_uid: media_storage_sop_class_uid.into(),
            media_storage_sop_instance_uid: media_storage_sop_instance_uid.into(),
            transfer_syntax_uid: transfer_syntax_uid.into(),
            implementation_class_uid: crate::uid::IMPLEMENTATION_CLASS_UID.into(),
            implementation_version_name: Some(crate::uid::IMPLEMENTATION_VERSION_NAME.into()),
            ..FileMeta::default()
        }
    }

    /// Encodes the 128-byte zero preamble, `"DICM"`, and the group 0002 elements in Explicit
    /// VR Little Endian, in tag order, starting with a correct (0002,0000) File Meta
    /// Information Group Length. The version is `[0x00, 0x01]` when `None`; UIDs are padded
    /// with NUL, AE/SH values with a space, OB values with a zero byte to even length.
    ///
    /// The SOP class, SOP instance, transfer syntax and implementation class UIDs are Type 1
    /// (PS3.10 Table 7.1-1): an empty one gives [`FileMetaError::MissingElement`].
    pub fn encode(&self) -> Result<Vec<u8>, FileMetaError> {
        let required = [
            (&self.media_storage_sop_class_uid, NAME_SOP_CLASS),
            (&self.media_storage_sop_instance_uid, NAME_SOP_INSTANCE),
            (&self.transfer_syntax_uid, NAME_TRANSFER_SYNTAX),
            (&self.implementation_class_uid, NAME_IMPLEMENTATION_CLASS),
        ];
        for (value, name) in required {
            if value.is_empty() {
                return Err(FileMetaError::MissingElement(name));
            }
        }

        let default_version = [0x00, 0x01];
        let mut elements: Vec<(u16, [u8; 2], &[u8])> = vec![
            (
                VERSION,
                *b"OB",
                self.version.as_deref().unwrap_or(&default_version),
            ),
            (
                MEDIA_STORAGE_SOP_CLASS_UID,
                *b"UI",
                self.media_storage_sop_class_uid.as_bytes(),
            ),
            (
                MEDIA_STORAGE_SOP_INSTANCE_UID,
                *b"UI",
                self.media_storage_sop_instance_uid.as_bytes(),
            ),
            (
                TRANSFER_SYNTAX_UID,
                *b"UI",
                self.transfer_syntax_uid.as_bytes(),
            ),
            (
                IMPLEMENTATION_CLASS_UID,
                *b"UI",
                self.implementation_class_uid.as_bytes(),
            ),
        ];
        let optional_text = [
            (
                IMPLEMENTATION_VERSION_NAME,
                *b"SH",
                &self.implementation_version_name,
            ),
            (
                SOURCE_AE_TITLE,
                *b"AE",
                &self.source_application_entity_title,
            ),
            (
                SENDING_AE_TITLE,
                *b"AE",
                &self.sending_application_entity_title,
            ),
            (
                RECEIVING_AE_TITLE,
                *b"AE",
                &self.receiving_application_entity_title,
            ),
            (
                PRIVATE_INFORMATION_CREATOR_UID,
                *b"UI",
                &self.private_information_creator_uid,
            ),
        ];
        for (element, vr, value) in optional_text {
            if let Some(value) = value {
                elements.push((element, vr, value.as_bytes()));
            }
        }
        if let Some(value) = &self.private_information {
            elements.push((PRIVATE_INFORMATION, *b"OB", value));
        }

        // Validate the known values.
        for &(element, vr, value) in &elements {
            let text = || std::str::from_utf8(value).map_err(|_| bad(element, "not text"));
            match &vr {
                b"UI" => check_uid(element, text()?)?,
                b"AE" | b"SH" => check_short_text(element, text()?)?,
                _ => {}
            }
        }
        for other in &self.other_elements {
            if KNOWN.iter().any(|(e, _)| *e == other.element) {
                return Err(bad(
                    other.element,
                    "this element has a dedicated field and must not be in other_elements",
                ));
            }
            if !is_vr(other.vr) {
                return Err(bad(
                    other.element,
                    format!("invalid VR {}", vr_str(other.vr)),
                ));
            }
            elements.push((other.element, other.vr, &other.value));
        }

        elements.sort_by_key(|&(element, _, _)| element);
        if let Some(pair) = elements.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(bad(pair[0].0, "duplicate element"));
        }

        let mut group = Vec::new();
        for &(element, vr, value) in &elements {
            write_element(&mut group, element, vr, value)?;
        }
        // The group length element itself is 12 bytes of the meta.
        if len_u64(&group).saturating_add(12) > MAX_META_LEN {
            return Err(FileMetaError::TooLarge);
        }
        let group_length = u32::try_from(group.len()).map_err(|_| FileMetaError::TooLarge)?;

        let mut out = Vec::with_capacity(PREAMBLE_LEN + 4 + 12 + group.len());
        out.resize(PREAMBLE_LEN, 0);
        out.extend_from_slice(DICM);
        write_element(&mut out, GROUP_LENGTH, *b"UL", &group_length.to_le_bytes())?;
        out.extend_from_slice(&group);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A temporary file removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("dimse-filemeta-{}-{n}-{name}", std::process::id()));
            TempFile(path)
        }

        fn with(name: &str, bytes: &[u8]) -> Self {
            let file = TempFile::new(name);
            std::fs::write(&file.0, bytes).unwrap();
            file
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn full_meta() -> FileMeta {
        FileMeta {
            version: Some(vec![0x00, 0x01]),
            media_storage_sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            media_storage_sop_instance_uid: "1.2.826.0.1.3680043.2.1125.123456789".into(),
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
            implementation_class_uid: "1.2.3.4.5".into(),
            implementation_version_name: Some("DIMSE_0.1.0".into()),
            source_application_entity_title: Some("SOURCE".into()),
            sending_application_entity_title: Some("SENDER".into()),
            receiving_application_entity_title: Some("RECEIVER".into()),
            private_information_creator_uid: Some("1.2.3.4.5.6.7".into()),
            private_information: Some(vec![1, 2, 3, 4]),
            other_elements: vec![MetaElement {
                element: 0x0026,
                vr: *b"UR",
                value: b"http://example.invalid/ ".to_vec(),
            }],
        }
    }

    /// A hand-written Explicit VR Little Endian element (PS3.5 7.1.2).
    fn el(group: u16, element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&element.to_le_bytes());
        out.extend_from_slice(vr);
        if has_long_length(*vr) {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(value);
        out
    }

    /// The group 0002 elements (without group length) of a small header.
    fn bare_elements() -> Vec<u8> {
        [
            el(2, 0x0001, b"OB", &[0, 1]),
            el(2, 0x0002, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0"),
            el(2, 0x0003, b"UI", b"1.2.3.4\0"),
            el(2, 0x0010, b"UI", b"1.2.840.10008.1.2\0"),
            el(2, 0x0012, b"UI", b"1.2.3\0"),
        ]
        .concat()
    }

    /// A data set's first element, Explicit VR Little Endian.
    fn data_set() -> Vec<u8> {
        el(8, 0x0060, b"CS", b"CT")
    }

    fn with_preamble(meta: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; 128];
        out.extend_from_slice(b"DICM");
        out.extend_from_slice(meta);
        out
    }

    fn with_group_length(elements: &[u8]) -> Vec<u8> {
        let mut out = el(2, 0x0000, b"UL", &(elements.len() as u32).to_le_bytes());
        out.extend_from_slice(elements);
        out
    }

    #[test]
    fn round_trip_all_fields() {
        let meta = full_meta();
        let bytes = meta.encode().unwrap();
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.meta, meta);
        assert!(parsed.has_preamble);
        assert_eq!(parsed.data_offset, bytes.len() as u64);
        // And with a data set after it.
        let mut file = bytes.clone();
        file.extend_from_slice(&data_set());
        let parsed = parse(&file).unwrap();
        assert_eq!(parsed.meta, meta);
        assert_eq!(parsed.data_offset, bytes.len() as u64);
    }

    #[test]
    fn round_trip_defaults_version_and_new() {
        let meta = FileMeta::new("1.2.840.10008.5.1.4.1.1.7", "1.2.3", "1.2.840.10008.1.2");
        let parsed = parse(&meta.encode().unwrap()).unwrap().meta;
        assert_eq!(parsed.version, Some(vec![0x00, 0x01]));
        assert_eq!(
            parsed.implementation_class_uid,
            crate::uid::IMPLEMENTATION_CLASS_UID
        );
        assert_eq!(
            parsed.implementation_version_name.as_deref(),
            Some(crate::uid::IMPLEMENTATION_VERSION_NAME)
        );
        assert_eq!(
            FileMeta {
                version: None,
                ..parsed.clone()
            },
            meta
        );
    }

    /// Byte-exact layout, written out from PS3.10 7.1 and PS3.5 7.1.2 by hand.
    #[test]
    fn encode_byte_exact_layout() {
        let meta = FileMeta {
            version: None,
            media_storage_sop_class_uid: "1.2.840.10008.5.1.4.1.1.7".into(), // 25 chars
            media_storage_sop_instance_uid: "1.2.3.4".into(),                // 7 chars
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),               // 19 chars
            implementation_class_uid: "1.2.3".into(),                        // 5 chars
            implementation_version_name: Some("DIMSE".into()),               // 5 chars
            source_application_entity_title: Some("SCU".into()),             // 3 chars
            ..FileMeta::default()
        };
        let mut expected: Vec<u8> = vec![0; 128];
        expected.extend_from_slice(b"DICM");
        // (0002,0000) UL, length 4, value 132 = 14 + 34 + 16 + 28 + 14 + 14 + 12.
        expected.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 0x04, 0x00]);
        expected.extend_from_slice(&[0x84, 0x00, 0x00, 0x00]);
        // (0002,0001) OB, 2 reserved bytes, 4-byte length 2, value 00 01.
        expected.extend_from_slice(&[0x02, 0x00, 0x01, 0x00, b'O', b'B', 0x00, 0x00]);
        expected.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
        // (0002,0002) UI, length 26 (25 + NUL).
        expected.extend_from_slice(&[0x02, 0x00, 0x02, 0x00, b'U', b'I', 0x1A, 0x00]);
        expected.extend_from_slice(b"1.2.840.10008.5.1.4.1.1.7\0");
        // (0002,0003) UI, length 8 (7 + NUL).
        expected.extend_from_slice(&[0x02, 0x00, 0x03, 0x00, b'U', b'I', 0x08, 0x00]);
        expected.extend_from_slice(b"1.2.3.4\0");
        // (0002,0010) UI, length 20 (19 + NUL).
        expected.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, b'U', b'I', 0x14, 0x00]);
        expected.extend_from_slice(b"1.2.840.10008.1.2.1\0");
        // (0002,0012) UI, length 6 (5 + NUL).
        expected.extend_from_slice(&[0x02, 0x00, 0x12, 0x00, b'U', b'I', 0x06, 0x00]);
        expected.extend_from_slice(b"1.2.3\0");
        // (0002,0013) SH, length 6 (5 + space).
        expected.extend_from_slice(&[0x02, 0x00, 0x13, 0x00, b'S', b'H', 0x06, 0x00]);
        expected.extend_from_slice(b"DIMSE ");
        // (0002,0016) AE, length 4 (3 + space).
        expected.extend_from_slice(&[0x02, 0x00, 0x16, 0x00, b'A', b'E', 0x04, 0x00]);
        expected.extend_from_slice(b"SCU ");
        assert_eq!(expected.len(), 128 + 4 + 12 + 132);

        let encoded = meta.encode().unwrap();
        assert_eq!(encoded, expected);
        let parsed = parse(&expected).unwrap();
        assert_eq!(
            parsed.meta,
            FileMeta {
                version: Some(vec![0, 1]),
                ..meta
            }
        );
        assert_eq!(parsed.data_offset, expected.len() as u64);
    }

    const PYDICOM_SCRIPT: &str = r#"
import sys
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.2.1125.4242"
meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds = Dataset()
ds.file_meta = meta
ds.SOPClassUID = meta.MediaStorageSOPClassUID
ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
ds.Modality = "CT"
ds.PatientName = "Test^Patient"
ds.Rows = 1
ds.Columns = 1
dcmwrite(sys.argv[1], ds, enforce_file_format=True)
"#;

    /// A file written by pydicom. Fails (does not skip) without python3 or pydicom.
    #[test]
    fn reads_pydicom_file() {
        let file = TempFile::new("pydicom.dcm");
        let output = std::process::Command::new("python3")
            .arg("-c")
            .arg(PYDICOM_SCRIPT)
            .arg(&file.0)
            .output()
            .expect("python3 must be installed for this test");
        assert!(
            output.status.success(),
            "the pydicom script failed (is pydicom installed?): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let header = read_header(&file.0).unwrap();
        assert!(header.has_preamble);
        assert_eq!(
            header.meta.media_storage_sop_class_uid,
            "1.2.840.10008.5.1.4.1.1.2"
        );
        assert_eq!(
            header.meta.media_storage_sop_instance_uid,
            "1.2.826.0.1.3680043.2.1125.4242"
        );
        assert_eq!(header.meta.transfer_syntax_uid, "1.2.840.10008.1.2.1");
        assert_eq!(header.meta.version, Some(vec![0x00, 0x01]));
        assert!(!header.meta.implementation_class_uid.is_empty());

        // The data set starts with (0008,0016) SOP Class UID, UI.
        let bytes = std::fs::read(&file.0).unwrap();
        let at = header.data_offset as usize;
        let first = &bytes[at..at + 8];
        assert_eq!(&first[..4], &[0x08, 0x00, 0x16, 0x00]);
        assert_eq!(&first[4..6], b"UI");
        let length = u16::from_le_bytes([first[6], first[7]]) as usize;
        assert_eq!(
            &bytes[at + 8..at + 8 + length],
            b"1.2.840.10008.5.1.4.1.1.2\0"
        );
        // parse over the whole file agrees.
        assert_eq!(parse(&bytes).unwrap(), header);
    }

    #[test]
    fn missing_group_length() {
        let elements = bare_elements();
        let mut file = with_preamble(&elements);
        file.extend_from_slice(&data_set());
        let parsed = parse(&file).unwrap();
        assert!(parsed.has_preamble);
        assert_eq!(parsed.data_offset, (132 + elements.len()) as u64);
        assert_eq!(
            parsed.meta.media_storage_sop_class_uid,
            "1.2.840.10008.5.1.4.1.1.7"
        );
        assert_eq!(parsed.meta.media_storage_sop_instance_uid, "1.2.3.4");
        assert_eq!(parsed.meta.transfer_syntax_uid, "1.2.840.10008.1.2");
        assert_eq!(parsed.meta.implementation_class_uid, "1.2.3");

        // read_header agrees, also for a file that holds only the meta.
        let on_disk = TempFile::with("nogl.dcm", &file);
        assert_eq!(read_header(&on_disk.0).unwrap(), parsed);
        let meta_only = with_preamble(&elements);
        let on_disk = TempFile::with("nogl-meta-only.dcm", &meta_only);
        let header = read_header(&on_disk.0).unwrap();
        assert_eq!(header.meta, parsed.meta);
        assert_eq!(header.data_offset, meta_only.len() as u64);
    }

    #[test]
    fn missing_group_length_large_meta_needs_more_reads() {
        // Private information of 20000 bytes puts the end of the meta beyond the first read.
        let mut elements = bare_elements();
        elements.extend(el(2, 0x0100, b"UI", b"1.2.3.4.5.6\0"));
        elements.extend(el(2, 0x0102, b"OB", &vec![0xAB; 20000]));
        let mut file = with_preamble(&elements);
        file.extend_from_slice(&data_set());
        let on_disk = TempFile::with("nogl-large.dcm", &file);
        let header = read_header(&on_disk.0).unwrap();
        assert_eq!(header.data_offset, (132 + elements.len()) as u64);
        assert_eq!(header.meta.private_information, Some(vec![0xAB; 20000]));
        assert_eq!(header, parse(&file).unwrap());
    }

    #[test]
    fn read_header_grows_with_group_length() {
        let mut meta = full_meta();
        meta.private_information = Some(vec![0x5A; 300_000]);
        let mut file = meta.encode().unwrap();
        let meta_end = file.len() as u64;
        file.extend_from_slice(&data_set());
        let on_disk = TempFile::with("large.dcm", &file);
        let header = read_header(&on_disk.0).unwrap();
        assert_eq!(header.meta, meta);
        assert_eq!(header.data_offset, meta_end);
    }

    #[test]
    fn without_preamble() {
        let meta = with_group_length(&bare_elements());
        let mut file = meta.clone();
        file.extend_from_slice(&data_set());
        let parsed = parse(&file).unwrap();
        assert!(!parsed.has_preamble);
        assert_eq!(parsed.data_offset, meta.len() as u64);
        assert_eq!(parsed.meta.transfer_syntax_uid, "1.2.840.10008.1.2");
        let on_disk = TempFile::with("bare.dcm", &file);
        assert_eq!(read_header(&on_disk.0).unwrap(), parsed);

        // Without preamble and without group length.
        let mut file = bare_elements();
        file.extend_from_slice(&data_set());
        let parsed = parse(&file).unwrap();
        assert!(!parsed.has_preamble);
        assert_eq!(parsed.data_offset, bare_elements().len() as u64);
    }

    #[test]
    fn truncation_at_every_byte_is_an_error() {
        let encoded = full_meta().encode().unwrap();
        let bare = with_group_length(&bare_elements());
        for header in [&encoded, &bare] {
            assert!(parse(header).is_ok());
            for n in 0..header.len() {
                let result = parse(&header[..n]);
                assert!(result.is_err(), "prefix of {n} bytes parsed: {result:?}");
            }
        }
        // Past the preamble, the error is Truncated and says how much is needed.
        for n in 132..encoded.len() {
            match parse(&encoded[..n]) {
                Err(FileMetaError::Truncated { needed, available }) => {
                    assert_eq!(available, n as u64);
                    assert!(needed > available && needed <= encoded.len() as u64);
                }
                other => panic!("prefix of {n} bytes: {other:?}"),
            }
        }
        // Files cut short are errors for read_header too.
        for n in [0, 100, 131, 132, 140, 150, encoded.len() - 1] {
            let on_disk = TempFile::with("cut.dcm", &encoded[..n]);
            assert!(read_header(&on_disk.0).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn non_dicom_is_rejected() {
        let text = "This is a plain text file, not a DICOM file.\n".repeat(10);
        assert_eq!(parse(text.as_bytes()), Err(FileMetaError::NotDicom));
        assert_eq!(parse(b"hello"), Err(FileMetaError::NotDicom));
        assert_eq!(parse(b""), Err(FileMetaError::NotDicom));
        let on_disk = TempFile::with("text.txt", text.as_bytes());
        assert_eq!(read_header(&on_disk.0), Err(FileMetaError::NotDicom));
        // "DICM" at the wrong offset.
        let mut shifted = vec![0u8; 127];
        shifted.extend_from_slice(b"DICM");
        shifted.extend_from_slice(&with_group_length(&bare_elements()));
        assert_eq!(parse(&shifted), Err(FileMetaError::NotDicom));
    }

    #[test]
    fn missing_required_elements() {
        let cases = [
            (0x0002, NAME_SOP_CLASS),
            (0x0003, NAME_SOP_INSTANCE),
            (0x0010, NAME_TRANSFER_SYNTAX),
        ];
        for (skip, name) in cases {
            let elements: Vec<u8> = [
                (0x0001, &b"OB", &b"\x00\x01"[..]),
                (0x0002, &b"UI", &b"1.2.3\0"[..]),
                (0x0003, &b"UI", &b"1.2.4\0"[..]),
                (0x0010, &b"UI", &b"1.2.840.10008.1.2\0"[..]),
            ]
            .iter()
            .filter(|(e, _, _)| *e != skip)
            .flat_map(|(e, vr, v)| el(2, *e, vr, v))
            .collect();
            let file = with_preamble(&with_group_length(&elements));
            assert_eq!(parse(&file), Err(FileMetaError::MissingElement(name)));
        }
        // Present but empty (all padding) counts as missing.
        let empty_ts = [
            el(2, 0x0002, b"UI", b"1.2.3\0"),
            el(2, 0x0003, b"UI", b"1.2.4\0"),
            el(2, 0x0010, b"UI", b"\0\0"),
        ]
        .concat();
        assert_eq!(
            parse(&with_preamble(&with_group_length(&empty_ts))),
            Err(FileMetaError::MissingElement(NAME_TRANSFER_SYNTAX))
        );
        // "DICM" followed directly by a data set.
        let mut file = with_preamble(&[]);
        file.extend_from_slice(&data_set());
        assert_eq!(
            parse(&file),
            Err(FileMetaError::MissingElement(NAME_SOP_CLASS))
        );
    }

    #[test]
    fn malformed_elements() {
        // Non-letter VR bytes.
        let bad_vr = [
            el(2, 0x0001, b"OB", &[0, 1]),
            el(2, 0x0002, b"u\x01", b"1.2\0"),
        ]
        .concat();
        assert!(matches!(
            parse(&with_preamble(&with_group_length(&bad_vr))),
            Err(FileMetaError::BadElement { tag: (2, 2), .. })
        ));
        // Wrong VR for a known element.
        let wrong_vr = [el(2, 0x0002, b"LO", b"1.2\0")].concat();
        assert!(matches!(
            parse(&with_preamble(&with_group_length(&wrong_vr))),
            Err(FileMetaError::BadElement { tag: (2, 2), .. })
        ));
        // Duplicate element.
        let mut dup = bare_elements();
        dup.extend(el(2, 0x0010, b"UI", b"1.2\0"));
        assert!(matches!(
            parse(&with_preamble(&with_group_length(&dup))),
            Err(FileMetaError::BadElement {
                tag: (2, 0x0010),
                ..
            })
        ));
        // Group length that runs into the data set.
        let mut long = bare_elements();
        let gl = el(2, 0, b"UL", &((long.len() + 10) as u32).to_le_bytes());
        long.extend(data_set());
        let mut file = with_preamble(&gl);
        file.extend_from_slice(&long);
        assert!(matches!(
            parse(&file),
            Err(FileMetaError::BadElement {
                tag: (8, 0x0060),
                ..
            })
        ));
        // Group length that ends inside an element.
        let short = bare_elements();
        let gl = el(2, 0, b"UL", &((short.len() - 3) as u32).to_le_bytes());
        let mut file = with_preamble(&gl);
        file.extend_from_slice(&short);
        assert!(matches!(
            parse(&file),
            Err(FileMetaError::BadElement {
                tag: (2, 0x0012),
                ..
            })
        ));
        // Group length with the wrong VR / size.
        let mut file = with_preamble(&el(2, 0, b"UL", &[1, 0]));
        file.extend(bare_elements());
        assert!(matches!(
            parse(&file),
            Err(FileMetaError::BadElement { tag: (2, 0), .. })
        ));
        // Undefined length.
        let mut undefined = el(2, 0x0001, b"OB", &[]);
        undefined[8..12].copy_from_slice(&[0xFF; 4]);
        assert!(matches!(
            parse(&with_preamble(&undefined)),
            Err(FileMetaError::BadElement { tag: (2, 1), .. })
        ));
    }

    #[test]
    fn too_large() {
        // A group length beyond the cap.
        let file = with_preamble(&el(2, 0, b"UL", &(2u32 << 20).to_le_bytes()));
        assert_eq!(parse(&file), Err(FileMetaError::TooLarge));
        let on_disk = TempFile::with("gl-huge.dcm", &file);
        assert_eq!(read_header(&on_disk.0), Err(FileMetaError::TooLarge));
        // An element beyond the cap, without group length.
        let mut huge = el(2, 0x0102, b"OB", &[]);
        huge[8..12].copy_from_slice(&(0xFFFF_FFF0u32).to_le_bytes());
        let file = with_preamble(&[bare_elements(), huge].concat());
        assert_eq!(parse(&file), Err(FileMetaError::TooLarge));
        // Many elements adding up beyond the cap, without group length; read_header stops.
        let mut elements = bare_elements();
        for element in 0x0200..0x0200 + 40u16 {
            elements.extend(el(2, element, b"OB", &vec![0; 32 * 1024]));
        }
        let file = with_preamble(&elements);
        let on_disk = TempFile::with("many.dcm", &file);
        assert_eq!(read_header(&on_disk.0), Err(FileMetaError::TooLarge));
        assert_eq!(parse(&file), Err(FileMetaError::TooLarge));
        // The writer refuses too.
        let mut meta = full_meta();
        meta.private_information = Some(vec![0; MAX_META_LEN as usize]);
        assert_eq!(meta.encode(), Err(FileMetaError::TooLarge));
    }

    #[test]
    fn encode_rejects_invalid_values() {
        let mut meta = full_meta();
        meta.transfer_syntax_uid = String::new();
        assert_eq!(
            meta.encode(),
            Err(FileMetaError::MissingElement(NAME_TRANSFER_SYNTAX))
        );
        let mut meta = full_meta();
        meta.implementation_class_uid = String::new();
        assert_eq!(
            meta.encode(),
            Err(FileMetaError::MissingElement(NAME_IMPLEMENTATION_CLASS))
        );
        let mut meta = full_meta();
        meta.media_storage_sop_instance_uid = "1.2.abc".into();
        assert!(matches!(
            meta.encode(),
            Err(FileMetaError::BadElement { tag: (2, 3), .. })
        ));
        let mut meta = full_meta();
        meta.source_application_entity_title = Some("A_TITLE_LONGER_THAN_16".into());
        assert!(matches!(
            meta.encode(),
            Err(FileMetaError::BadElement { tag: (2, 0x16), .. })
        ));
        let mut meta = full_meta();
        meta.other_elements.push(MetaElement {
            element: 0x0010,
            vr: *b"UI",
            value: b"1.2".to_vec(),
        });
        assert!(matches!(
            meta.encode(),
            Err(FileMetaError::BadElement { tag: (2, 0x10), .. })
        ));
    }

    #[test]
    fn io_error_for_missing_file() {
        let missing = TempFile::new("does-not-exist.dcm");
        assert!(matches!(read_header(&missing.0), Err(FileMetaError::Io(_))));
    }

    proptest! {
        #[test]
        fn never_panics_on_mutated_headers(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            cut in any::<usize>(),
            with_gl in any::<bool>(),
        ) {
            let elements = bare_elements();
            let mut bytes = if with_gl {
                with_preamble(&with_group_length(&elements))
            } else {
                with_preamble(&elements)
            };
            bytes.extend(data_set());
            // Edits focus on the meta (past the preamble).
            for (at, value) in edits {
                let at = 128 + at % (bytes.len() - 128);
                bytes[at] = value;
            }
            let cut = cut % (bytes.len() + 1);
            let _ = parse(&bytes[..cut]);
            let _ = parse(&bytes);
            let _ = parse_impl(&bytes[..cut], false);
        }

        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&bytes);
            let mut bare = vec![0x02, 0x00, 0x01, 0x00, b'O', b'B'];
            bare.extend_from_slice(&bytes);
            let _ = parse(&bare);
        }
    }
}
