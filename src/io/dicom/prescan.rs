//! A bounds check of every declared value length before the data set is parsed.
//!
//! The DICOM parser allocates a value's buffer from the length in its header before reading it,
//! so a corrupt or hostile file that declares a 4 GiB element makes it allocate 4 GiB and only
//! then fail. This walk over the element headers (PS3.5 §7.1: tag, VR, length; items and
//! delimiters §7.5) rejects any defined length that runs past the end of the file first.
//! It covers explicit and implicit VR little endian (including encapsulated pixel data) and
//! explicit VR big endian; deflated data sets are inflated (with a size cap) and then checked. The walk is conservative:
//! where it cannot follow the structure (an undefined-length value that is neither a sequence
//! nor pixel data) it stops checking rather than guess.

use anyhow::{bail, Result};
use dicom::core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom::core::{Tag, VR};
use dicom::dictionary_std::StandardDataDictionary;

const UNDEFINED: u32 = 0xFFFF_FFFF;

/// VRs with a 16-bit length in explicit VR (PS3.5 §7.1.2); all others, including unknown VR
/// codes (which the parser reads as UN), have a 2-byte reserved field and a 32-bit length.
fn long_length_vr(vr: [u8; 2]) -> bool {
    !matches!(
        &vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    )
}

/// How the data set after the file meta group is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Explicit VR, little endian (also every encapsulated transfer syntax).
    ExplicitLittle,
    /// Implicit VR, little endian.
    ImplicitLittle,
    /// Explicit VR, big endian (retired).
    ExplicitBig,
}

fn u16_at(b: &[u8], pos: usize, big: bool) -> u16 {
    let v = [b[pos], b[pos + 1]];
    if big {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    }
}

fn u32_at(b: &[u8], pos: usize, big: bool) -> u32 {
    let v = [b[pos], b[pos + 1], b[pos + 2], b[pos + 3]];
    if big {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}

/// Walks the elements of `b` (the bytes after the 128-byte preamble and `DICM`); the file meta
/// group (0002) is always explicit VR little endian, the rest as `encoding` says. With
/// `meta_only` the walk stops at the first element after the file meta group. Returns where
/// the data set ends: `b.len()`, or the start of trailing zero padding.
pub fn check_bytes(b: &[u8], encoding: Encoding, meta_only: bool) -> Result<usize> {
    let mut pos = 0usize;
    let mut in_pixel_sequence = false;
    let too_long = |tag: Tag, len: u32, pos: usize| -> Result<()> {
        let remaining = b.len().saturating_sub(pos);
        if len as usize > remaining {
            bail!(
                "element ({:04X},{:04X}) declares {len} bytes but only {remaining} remain: the file is truncated or corrupt",
                tag.0,
                tag.1
            );
        }
        Ok(())
    };
    // The meta group's extent: (0002,0000) UL holds its length after that element; the meta
    // parser reads that many bytes whatever the tags inside say.
    let meta_end = (b.len() >= 12 && b[..6] == [0x02, 0x00, 0x00, 0x00, b'U', b'L'])
        .then(|| 12usize.saturating_add(u32_at(b, 8, false) as usize));
    while pos + 8 <= b.len() {
        // Trailing zero bytes after the last element (padding some writers leave, e.g. to a
        // block size) hold no element: the data set ends here.
        if b[pos..].iter().all(|&x| x == 0) {
            return Ok(pos);
        }
        let in_meta = meta_end.map_or(u16_at(b, pos, false) == 0x0002, |end| pos < end);
        if meta_only && !in_meta {
            return Ok(pos);
        }
        let meta = in_meta;
        let big = !meta && encoding == Encoding::ExplicitBig;
        let explicit = meta || encoding != Encoding::ImplicitLittle;
        let tag = Tag(u16_at(b, pos, big), u16_at(b, pos + 2, big));
        let pos_vr = pos + 4;
        if tag.0 == 0xFFFE {
            // Item, item delimiter or sequence delimiter: tag + 4-byte length.
            let len = u32_at(b, pos + 4, big);
            pos += 8;
            if tag.1 == 0xE000 && in_pixel_sequence && len != UNDEFINED {
                too_long(tag, len, pos)?;
                pos += len as usize;
            } else if tag.1 == 0xE0DD {
                in_pixel_sequence = false;
            }
            continue;
        }
        // (sequence?, length, a known VR that never has an undefined length except as pixel data)
        let (is_sequence, len, definite_vr) = if explicit {
            let vr = [b[pos + 4], b[pos + 5]];
            if long_length_vr(vr) {
                if pos + 12 > b.len() {
                    bail!(
                        "element ({:04X},{:04X}) has a truncated header",
                        tag.0,
                        tag.1
                    );
                }
                let len = u32_at(b, pos + 8, big);
                pos += 12;
                let definite = matches!(
                    &vr,
                    b"OB"
                        | b"OD"
                        | b"OF"
                        | b"OL"
                        | b"OV"
                        | b"OW"
                        | b"SV"
                        | b"UC"
                        | b"UR"
                        | b"UT"
                        | b"UV"
                );
                (&vr == b"SQ", len, definite)
            } else {
                let len = u32::from(u16_at(b, pos + 6, big));
                pos += 8;
                (false, len, true)
            }
        } else {
            let vr = StandardDataDictionary
                .by_tag(tag)
                .and_then(|e| e.vr().exact());
            let len = u32_at(b, pos + 4, big);
            pos += 8;
            (vr == Some(VR::SQ), len, false)
        };
        if len == UNDEFINED {
            if explicit && VR::from_binary([b[pos_vr], b[pos_vr + 1]]).is_none() {
                // The parser reads an unknown VR code as UN and an undefined-length UN as a
                // sequence, past what this walk can follow (fuzz finding 6): corrupt, reject.
                bail!(
                    "element ({:04X},{:04X}) has an unknown VR code and an undefined length: the file is corrupt",
                    tag.0,
                    tag.1
                );
            }
            if tag == dicom::dictionary_std::tags::PIXEL_DATA {
                in_pixel_sequence = true;
            } else if definite_vr {
                bail!(
                    "element ({:04X},{:04X}) has an undefined length, which only sequences and encapsulated pixel data may have: the file is corrupt",
                    tag.0,
                    tag.1
                );
            } else if !is_sequence {
                return Ok(b.len()); // e.g. an undefined-length UN: the structure cannot be followed
            }
            continue;
        }
        if !is_sequence {
            too_long(tag, len, pos)?;
            pos += len as usize;
        }
    }
    if pos < b.len() {
        bail!(
            "the file ends inside an element header ({} stray bytes): it is truncated",
            b.len() - pos
        );
    }
    if in_pixel_sequence {
        bail!(
            "the encapsulated pixel data end without a sequence delimiter: the file is truncated"
        );
    }
    Ok(b.len())
}

/// Checks the declared lengths of the file meta group of a DICOM file's bytes `b` (after the
/// preamble and `DICM`), before the meta group is parsed.
pub fn check_meta(b: &[u8]) -> Result<()> {
    check_bytes(b, Encoding::ExplicitLittle, true).map(|_| ())
}

/// Largest inflated size accepted for a deflated data set (Deflated Explicit VR Little Endian,
/// PS3.5 §A.5): a bound on decompression bombs, far above real deflated images.
pub const MAX_INFLATED_BYTES: u64 = 512 << 20;

/// Checks the declared lengths of the whole file (bytes `b` after the preamble and `DICM`) in
/// transfer syntax `ts_uid`. A deflated data set is inflated (at most [`MAX_INFLATED_BYTES`])
/// and its elements checked as explicit VR little endian. Returns the length of `b` that holds
/// the data set: trailing zero padding after the last element is left out (the parser would
/// read it as elements).
pub fn check_dataset(b: &[u8], ts_uid: &str) -> Result<usize> {
    let encoding = match ts_uid {
        "1.2.840.10008.1.2" => Encoding::ImplicitLittle,
        "1.2.840.10008.1.2.2" => Encoding::ExplicitBig,
        "1.2.840.10008.1.2.1.99" => {
            check_meta(b)?;
            check_bytes(&inflate_dataset(b)?, Encoding::ExplicitLittle, false)?;
            return Ok(b.len());
        }
        _ => Encoding::ExplicitLittle,
    };
    check_bytes(b, encoding, false)
}

/// The inflated data set of a deflated file (`b` after `DICM`): raw deflate (RFC 1951) after the
/// file meta group, whose extent (0002,0000) gives.
fn inflate_dataset(b: &[u8]) -> Result<Vec<u8>> {
    use std::io::Read;
    if b.len() < 12 || b[..6] != [0x02, 0x00, 0x00, 0x00, b'U', b'L'] {
        bail!("a deflated data set needs the file meta group length (0002,0000) first");
    }
    let start = 12usize.saturating_add(u32_at(b, 8, false) as usize);
    let deflated = b.get(start..).unwrap_or_default();
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(deflated)
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| anyhow::anyhow!("the deflated data set cannot be inflated: {e}"))?;
    if out.len() as u64 > MAX_INFLATED_BYTES {
        bail!("the deflated data set inflates to more than {MAX_INFLATED_BYTES} bytes");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explicit_element(
        tag: (u16, u16),
        vr: &[u8; 2],
        value: &[u8],
        declared: Option<u32>,
    ) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(tag.0.to_le_bytes());
        v.extend(tag.1.to_le_bytes());
        v.extend(vr);
        let len = declared.unwrap_or(value.len() as u32);
        if long_length_vr(*vr) {
            v.extend([0, 0]);
            v.extend(len.to_le_bytes());
        } else {
            v.extend((len as u16).to_le_bytes());
        }
        v.extend(value);
        v
    }

    #[test]
    fn vr_length_classes() {
        for vr in [*b"OB", *b"OW", *b"SQ", *b"UN", *b"UT", *b"UV"] {
            assert!(long_length_vr(vr));
        }
        for vr in [*b"DS", *b"US", *b"UI", *b"FL"] {
            assert!(!long_length_vr(vr));
        }
        assert!(long_length_vr(*b"'L"), "unknown VRs are read as UN");
    }

    #[test]
    fn consistent_lengths_pass_and_overlong_fail() {
        let mut ok = explicit_element((0x0008, 0x0060), b"CS", b"CT", None);
        ok.extend(explicit_element((0x7FE0, 0x0010), b"OW", &[0; 8], None));
        check_bytes(&ok, Encoding::ExplicitLittle, false).unwrap();
        let mut bad = explicit_element((0x0008, 0x0060), b"CS", b"CT", None);
        bad.extend(explicit_element(
            (0x7FE0, 0x0010),
            b"OW",
            &[0; 8],
            Some(0xFFFF_FFF0),
        ));
        let e = check_bytes(&bad, Encoding::ExplicitLittle, false).unwrap_err();
        assert!(format!("{e}").contains("(7FE0,0010)"), "{e}");
    }

    #[test]
    fn sequences_are_descended() {
        // SQ (defined length) > item (defined length) > overlong OB.
        let inner = explicit_element((0x0009, 0x0010), b"OB", &[1, 2], Some(1000));
        let mut item = vec![0xFE, 0xFF, 0x00, 0xE0];
        item.extend((inner.len() as u32).to_le_bytes());
        item.extend(&inner);
        let seq = explicit_element((0x5200, 0x9229), b"SQ", &item, None);
        assert!(check_bytes(&seq, Encoding::ExplicitLittle, false).is_err());
    }
}
