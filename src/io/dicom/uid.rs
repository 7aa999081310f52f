//! DICOM unique identifiers for derived objects (PS3.5 §9 and Annex B.2).
//!
//! New UIDs use the UUID-derived root `2.25`: `2.25.<n>` where `n` is the decimal value of a
//! random (version 4) UUID, as ITU-T X.667 | ISO/IEC 9834-8 §6.3 defines. No registered
//! organisation root is needed and collisions have probability ~2⁻¹²².
//!
//! UIDs must be unique, not reproducible, so they are the one random quantity in medsgm that
//! does not take a seed: the 122 random bits come from the operating system's entropy source.

use rand::RngCore;

/// Implementation Class UID of medsgm's DICOM writer (a fixed `2.25` UUID UID).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.180378571520159038031153519165656454311";

/// Implementation Version Name written in the file meta information (≤ 16 characters).
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("MEDSGM_", env!("CARGO_PKG_VERSION"));

/// A fresh UID `2.25.<decimal UUIDv4>` (at most 44 characters, within the 64-character limit).
pub fn new_uid() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    // RFC 4122 version 4 (random) and variant 10xx bits.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    format!("2.25.{}", u128::from_be_bytes(bytes))
}

/// Whether `uid` is a syntactically valid UID: 1–64 characters, dot-separated numeric
/// components without leading zeros (PS3.5 §9.1).
pub fn is_valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_digit())
                && (c == "0" || !c.starts_with('0'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_uids_are_valid_and_distinct() {
        let a = new_uid();
        let b = new_uid();
        assert_ne!(a, b);
        for u in [&a, &b, &IMPLEMENTATION_CLASS_UID.to_string()] {
            assert!(is_valid_uid(u), "{u}");
            assert!(u.starts_with("2.25."));
        }
        assert!(IMPLEMENTATION_VERSION_NAME.len() <= 16);
    }

    #[test]
    fn invalid_uids_are_rejected() {
        for u in ["", "1..2", "1.02", "1.a", &"1.".repeat(40)] {
            assert!(!is_valid_uid(u), "{u}");
        }
        assert!(is_valid_uid("1.2.840.10008.1.2.1"));
        assert!(is_valid_uid("2.25.0"));
    }
}
