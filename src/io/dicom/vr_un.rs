//! Re-reading elements stored with VR UN using their dictionary VR.
//!
//! Archives and anonymisers often rewrite attributes as UN ("unknown", PS3.5 §6.2.2) when they
//! do not know them; their values then arrive as raw bytes. Read as a number, the text "1 " of a
//! Rescale Slope becomes 49 (the code of '1'), giving nonsense HU. The bytes of a UN value are
//! encoded as in Implicit VR Little Endian (PS3.5 §6.2.2 note), so an element whose tag the
//! standard dictionary knows can be decoded exactly: text VRs as backslash-separated strings,
//! binary numeric VRs as little-endian arrays. Tags without an exact dictionary VR (private
//! tags, context-dependent VRs such as US/SS) stay UN. Sequences are visited recursively.

use dicom::core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom::core::value::{PrimitiveValue, C};
use dicom::core::{DataElement, Tag, VR};
use dicom::dictionary_std::StandardDataDictionary;
use dicom::object::InMemDicomObject;

/// Decodes the raw bytes of a UN value as `vr`; `None` when the VR is not a primitive one this
/// function knows or the byte count does not fit the VR.
fn reinterpret(bytes: &[u8], vr: VR) -> Option<PrimitiveValue> {
    fn chunks<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Option<C<T>> {
        if !bytes.len().is_multiple_of(N) {
            return None;
        }
        Some(
            bytes
                .chunks_exact(N)
                .map(|c| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(c);
                    f(a)
                })
                .collect(),
        )
    }
    use VR::*;
    Some(match vr {
        AE | AS | CS | DA | DS | DT | IS | LO | PN | SH | TM | UC | UI => {
            let text = String::from_utf8_lossy(bytes);
            let values: C<String> = text
                .trim_end_matches(['\0', ' '])
                .split('\\')
                .map(|s| s.trim_matches(|c| c == ' ' || c == '\0').to_owned())
                .collect();
            PrimitiveValue::Strs(values)
        }
        LT | ST | UT | UR => PrimitiveValue::Str(
            String::from_utf8_lossy(bytes)
                .trim_end_matches(['\0', ' '])
                .to_owned(),
        ),
        US => PrimitiveValue::U16(chunks(bytes, u16::from_le_bytes)?),
        SS => PrimitiveValue::I16(chunks(bytes, i16::from_le_bytes)?),
        UL => PrimitiveValue::U32(chunks(bytes, u32::from_le_bytes)?),
        SL => PrimitiveValue::I32(chunks(bytes, i32::from_le_bytes)?),
        UV => PrimitiveValue::U64(chunks(bytes, u64::from_le_bytes)?),
        SV => PrimitiveValue::I64(chunks(bytes, i64::from_le_bytes)?),
        FL => PrimitiveValue::F32(chunks(bytes, f32::from_le_bytes)?),
        FD => PrimitiveValue::F64(chunks(bytes, f64::from_le_bytes)?),
        _ => return None,
    })
}

/// Replaces, in place and recursively, every UN element of `obj` whose tag has an exact
/// dictionary VR by the same value decoded with that VR. Returns how many elements changed.
pub fn reread_un_elements(obj: &mut InMemDicomObject) -> usize {
    let tags: Vec<Tag> = obj.tags().collect();
    let mut fixed = 0;
    for tag in tags {
        let Some(elem) = obj.get(tag) else { continue };
        match elem.vr() {
            VR::UN => {
                let dict_vr = StandardDataDictionary
                    .by_tag(tag)
                    .and_then(|e| e.vr().exact());
                let bytes = elem.value().primitive().and_then(|p| match p {
                    PrimitiveValue::U8(b) => Some(b.to_vec()),
                    _ => None,
                });
                if let (Some(vr), Some(bytes)) = (dict_vr, bytes) {
                    if let Some(value) = reinterpret(&bytes, vr) {
                        obj.put(DataElement::new(tag, vr, value));
                        fixed += 1;
                    }
                }
            }
            VR::SQ => {
                obj.update_value(tag, |v| {
                    if let Some(items) = v.items_mut() {
                        fixed += items.iter_mut().map(reread_un_elements).sum::<usize>();
                    }
                });
            }
            _ => {}
        }
    }
    fixed
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom::dictionary_std::tags;

    #[test]
    fn text_and_binary_un_values_are_decoded() {
        let un = |tag, bytes: &[u8]| DataElement::new(tag, VR::UN, PrimitiveValue::from(bytes));
        let inner = InMemDicomObject::from_element_iter([un(tags::RESCALE_SLOPE, b"2.5 ")]);
        let mut obj = InMemDicomObject::from_element_iter([
            un(tags::RESCALE_INTERCEPT, b"-1024\\7 "),
            un(tags::ROWS, &[0x00, 0x02]),
            un(Tag(0x0009, 0x1010), b"private"),
            DataElement::new(
                tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
                VR::SQ,
                dicom::core::value::DataSetSequence::from(vec![inner]),
            ),
        ]);
        assert_eq!(reread_un_elements(&mut obj), 3);
        let icpt = obj.get(tags::RESCALE_INTERCEPT).unwrap();
        assert_eq!(icpt.vr(), VR::DS);
        assert_eq!(icpt.to_multi_float64().unwrap(), vec![-1024.0, 7.0]);
        assert_eq!(obj.get(tags::ROWS).unwrap().to_int::<u16>().unwrap(), 512);
        assert_eq!(obj.get(Tag(0x0009, 0x1010)).unwrap().vr(), VR::UN);
        let item = &obj
            .get(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE)
            .unwrap()
            .items()
            .unwrap()[0];
        assert_eq!(
            item.get(tags::RESCALE_SLOPE).unwrap().to_float64().unwrap(),
            2.5
        );
    }

    #[test]
    fn wrong_length_binary_stays_raw() {
        assert!(reinterpret(&[1, 2, 3], VR::US).is_none());
        assert!(reinterpret(&[1, 2, 3], VR::OB).is_none());
    }
}
