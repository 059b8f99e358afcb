//! A forward-only walk over the top level of an encoded data set, to pick out a few
//! elements (the Study and Series Instance UIDs that name a storage folder) without
//! decoding the data set.
//!
//! The bytes come from a peer: every length is checked against what remains, nesting is
//! bounded, and a malformed or truncated data set just ends the walk with what was found
//! so far (the caller falls back to a default name), never a panic.

use std::io::Read;

/// How the data set is encoded (PS3.5 10, Annex A).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    ImplicitLittle,
    ExplicitLittle,
    ExplicitBig,
    /// Deflated Explicit VR Little Endian (PS3.5 A.5): raw deflate of an explicit LE data set.
    Deflated,
}

impl Encoding {
    /// The encoding of a transfer syntax. Every syntax other than Implicit VR Little
    /// Endian, Explicit VR Big Endian and the deflated ones encodes its data set in
    /// Explicit VR Little Endian (the encapsulated ones only change the Pixel Data).
    pub fn of_transfer_syntax(uid: &str) -> Encoding {
        match uid.trim_end_matches(['\0', ' ']) {
            "1.2.840.10008.1.2" => Encoding::ImplicitLittle,
            "1.2.840.10008.1.2.2" => Encoding::ExplicitBig,
            "1.2.840.10008.1.2.1.99" | "1.2.840.10008.1.2.4.95" => Encoding::Deflated,
            _ => Encoding::ExplicitLittle,
        }
    }
}

/// Nested sequences deeper than this end the walk (no real data set comes close).
const MAX_DEPTH: usize = 32;
/// At most this much of a deflated data set is inflated to look for the elements: they
/// sit near the start (groups 0008-0020), far ahead of any bulk data.
const MAX_INFLATED: u64 = 4 << 20;
const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: u32 = 0xFFFE_E000;
const ITEM_END: u32 = 0xFFFE_E00D;
const SEQUENCE_END: u32 = 0xFFFE_E0DD;

/// The values of the `wanted` top-level elements (tags as `0xGGGGEEEE`), in the order
/// asked, `None` for those absent or past the point where the walk had to stop.
pub fn find_elements(data: &[u8], encoding: Encoding, wanted: &[u32]) -> Vec<Option<Vec<u8>>> {
    let mut found = vec![None; wanted.len()];
    let Some(&last) = wanted.iter().max() else {
        return found;
    };
    let inflated;
    let (bytes, encoding) = if encoding == Encoding::Deflated {
        let mut out = Vec::new();
        // A corrupt stream leaves what was inflated before the error: walk that.
        let _ = flate2::read::DeflateDecoder::new(data)
            .take(MAX_INFLATED)
            .read_to_end(&mut out);
        inflated = out;
        (&inflated[..], Encoding::ExplicitLittle)
    } else {
        (data, encoding)
    };
    let mut walker = Walker {
        data: bytes,
        pos: 0,
        encoding,
    };
    while let Some(element) = walker.header() {
        if element.tag > last {
            break;
        }
        if element.length == UNDEFINED {
            if walker
                .skip_undefined(element.implicit_contents, 0)
                .is_none()
            {
                break;
            }
            continue;
        }
        let Some(value) = walker.take(element.length) else {
            break;
        };
        if let Some(i) = wanted.iter().position(|&t| t == element.tag) {
            found[i] = Some(value.to_vec());
        }
    }
    found
}

struct Header {
    tag: u32,
    length: u32,
    /// The contents of an undefined-length UN element are Implicit VR Little Endian
    /// (PS3.5 6.2.2).
    implicit_contents: bool,
}

struct Walker<'a> {
    data: &'a [u8],
    pos: usize,
    encoding: Encoding,
}

impl<'a> Walker<'a> {
    fn take(&mut self, n: u32) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(usize::try_from(n).ok()?)?;
        let out = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn u16(&mut self) -> Option<u16> {
        let b: [u8; 2] = self.take(2)?.try_into().ok()?;
        Some(match self.encoding {
            Encoding::ExplicitBig => u16::from_be_bytes(b),
            _ => u16::from_le_bytes(b),
        })
    }

    fn u32(&mut self) -> Option<u32> {
        let b: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(match self.encoding {
            Encoding::ExplicitBig => u32::from_be_bytes(b),
            _ => u32::from_le_bytes(b),
        })
    }

    fn tag(&mut self) -> Option<u32> {
        let group = self.u16()?;
        let element = self.u16()?;
        Some(u32::from(group) << 16 | u32::from(element))
    }

    /// The next element's tag and length (PS3.5 7.1.2, 7.1.3); `None` at the end of the
    /// data or on a malformed header.
    fn header(&mut self) -> Option<Header> {
        let tag = self.tag()?;
        // Item and delimitation tags have no VR in any encoding (PS3.5 7.5).
        if self.encoding == Encoding::ImplicitLittle || tag >> 16 == 0xFFFE {
            let length = self.u32()?;
            return Some(Header {
                tag,
                length,
                implicit_contents: self.encoding == Encoding::ImplicitLittle,
            });
        }
        let vr: [u8; 2] = self.take(2)?.try_into().ok()?;
        if !vr.iter().all(u8::is_ascii_uppercase) {
            return None;
        }
        let length = match &vr {
            b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN"
            | b"UR" | b"UT" | b"UV" => {
                self.take(2)?;
                self.u32()?
            }
            _ => u32::from(self.u16()?),
        };
        Some(Header {
            tag,
            length,
            implicit_contents: &vr == b"UN",
        })
    }

    /// Skips the items of an undefined-length sequence up to and including its Sequence
    /// Delimitation Item (PS3.5 7.5.2).
    fn skip_undefined(&mut self, implicit: bool, depth: usize) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        let outer = self.encoding;
        if implicit {
            self.encoding = Encoding::ImplicitLittle;
        }
        let done = self.skip_items(depth);
        self.encoding = outer;
        done
    }

    fn skip_items(&mut self, depth: usize) -> Option<()> {
        loop {
            let tag = self.tag()?;
            let length = self.u32()?;
            match tag {
                SEQUENCE_END => return Some(()),
                ITEM if length == UNDEFINED => self.skip_item_elements(depth + 1)?,
                ITEM => {
                    self.take(length)?;
                }
                _ => return None,
            }
        }
    }

    /// Skips the elements of an undefined-length item up to its Item Delimitation Item.
    fn skip_item_elements(&mut self, depth: usize) -> Option<()> {
        loop {
            let element = self.header()?;
            if element.tag == ITEM_END {
                return Some(());
            }
            if element.length == UNDEFINED {
                self.skip_undefined(element.implicit_contents, depth)?;
            } else {
                self.take(element.length)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STUDY: u32 = 0x0020_000D;
    const SERIES: u32 = 0x0020_000E;

    fn implicit(tag: u32, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((tag >> 16) as u16).to_le_bytes());
        out.extend_from_slice(&(tag as u16).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
        out
    }

    fn explicit(tag: u32, vr: &[u8; 2], value: &[u8], big: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let (g, e) = ((tag >> 16) as u16, tag as u16);
        if big {
            out.extend_from_slice(&g.to_be_bytes());
            out.extend_from_slice(&e.to_be_bytes());
        } else {
            out.extend_from_slice(&g.to_le_bytes());
            out.extend_from_slice(&e.to_le_bytes());
        }
        out.extend_from_slice(vr);
        let long = matches!(vr, b"OB" | b"SQ" | b"UN" | b"UT");
        let n = value.len() as u32;
        match (long, big) {
            (true, false) => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&n.to_le_bytes());
            }
            (true, true) => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&n.to_be_bytes());
            }
            (false, false) => out.extend_from_slice(&(n as u16).to_le_bytes()),
            (false, true) => out.extend_from_slice(&(n as u16).to_be_bytes()),
        }
        out.extend_from_slice(value);
        out
    }

    fn undefined_sequence_explicit(tag: u32, items: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((tag >> 16) as u16).to_le_bytes());
        out.extend_from_slice(&(tag as u16).to_le_bytes());
        out.extend_from_slice(b"SQ\0\0");
        out.extend_from_slice(&UNDEFINED.to_le_bytes());
        for item in items {
            out.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
            out.extend_from_slice(&UNDEFINED.to_le_bytes());
            out.extend_from_slice(item);
            out.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        }
        out.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        out
    }

    #[test]
    fn implicit_little_endian() {
        let mut data = implicit(0x0008_0060, b"CT");
        data.extend(implicit(STUDY, b"1.2.3\0"));
        data.extend(implicit(SERIES, b"1.2.3.4\0"));
        data.extend(implicit(0x7FE0_0010, &[0; 8]));
        let found = find_elements(&data, Encoding::ImplicitLittle, &[STUDY, SERIES]);
        assert_eq!(found[0].as_deref(), Some(&b"1.2.3\0"[..]));
        assert_eq!(found[1].as_deref(), Some(&b"1.2.3.4\0"[..]));
    }

    #[test]
    fn explicit_both_byte_orders_and_a_sequence_before() {
        for big in [false, true] {
            let mut data = explicit(0x0008_0060, b"CS", b"MR", big);
            data.extend(explicit(0x0008_1140, b"SQ", &[], big));
            data.extend(explicit(STUDY, b"UI", b"9.8", big));
            data.extend(explicit(SERIES, b"UI", b"9.8.7\0", big));
            let encoding = if big {
                Encoding::ExplicitBig
            } else {
                Encoding::ExplicitLittle
            };
            let found = find_elements(&data, encoding, &[SERIES, STUDY]);
            assert_eq!(found[0].as_deref(), Some(&b"9.8.7\0"[..]), "big={big}");
            assert_eq!(found[1].as_deref(), Some(&b"9.8"[..]), "big={big}");
        }
    }

    #[test]
    fn undefined_length_sequences_nested_are_skipped() {
        let inner = undefined_sequence_explicit(
            0x0008_1150,
            &[explicit(0x0008_1155, b"UI", b"5.5", false)],
        );
        let item = [explicit(0x0008_1150, b"UI", b"1.1", false), inner].concat();
        let mut data = undefined_sequence_explicit(0x0008_1140, &[item.clone(), item]);
        data.extend(explicit(STUDY, b"UI", b"4.4", false));
        let found = find_elements(&data, Encoding::ExplicitLittle, &[STUDY]);
        assert_eq!(found[0].as_deref(), Some(&b"4.4"[..]));
    }

    #[test]
    fn deflated() {
        use std::io::Write;
        let mut plain = explicit(0x0008_0060, b"CS", b"CT", false);
        plain.extend(explicit(STUDY, b"UI", b"7.7", false));
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&plain).unwrap();
        let data = enc.finish().unwrap();
        let found = find_elements(&data, Encoding::Deflated, &[STUDY]);
        assert_eq!(found[0].as_deref(), Some(&b"7.7"[..]));
    }

    #[test]
    fn stops_past_the_last_wanted_tag_and_on_garbage() {
        let mut data = implicit(0x0030_0001, b"XX");
        data.extend(implicit(STUDY, b"1.2"));
        assert_eq!(
            find_elements(&data, Encoding::ImplicitLittle, &[STUDY]),
            vec![None]
        );
        // A length running past the end, an absurd VR, truncation: no panic, nothing found.
        let mut bad = implicit(0x0008_0060, b"CT");
        bad.truncate(bad.len() - 1);
        assert_eq!(
            find_elements(&bad, Encoding::ImplicitLittle, &[STUDY]),
            vec![None]
        );
        let weird = [0x08, 0x00, 0x60, 0x00, b'c', b't', 2, 0, b'C', b'T'];
        assert_eq!(
            find_elements(&weird, Encoding::ExplicitLittle, &[STUDY]),
            vec![None]
        );
        assert_eq!(find_elements(&[], Encoding::Deflated, &[STUDY]), vec![None]);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        // 1000 nested undefined-length sequences: the walk gives up, without recursion
        // running away.
        let mut data = Vec::new();
        for _ in 0..1000 {
            data.extend_from_slice(&[0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0]);
            data.extend_from_slice(&UNDEFINED.to_le_bytes());
            data.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
            data.extend_from_slice(&UNDEFINED.to_le_bytes());
        }
        assert_eq!(
            find_elements(&data, Encoding::ExplicitLittle, &[STUDY]),
            vec![None]
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u32 = 0x1234_5678;
        for len in 0..2000 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            for enc in [
                Encoding::ImplicitLittle,
                Encoding::ExplicitLittle,
                Encoding::ExplicitBig,
                Encoding::Deflated,
            ] {
                let _ = find_elements(&data, enc, &[STUDY, SERIES]);
            }
        }
    }
}
