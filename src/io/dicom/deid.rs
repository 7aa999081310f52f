//! De-identification of derived series (`--anonymize`), after DICOM PS3.15 Annex E, Table E.1-1
//! (Basic Application Level Confidentiality Profile), for the attributes a derived series
//! carries: identifying attributes are emptied ("Z") or removed ("X"), and the Study Instance
//! and Frame of Reference UIDs replaced by new ones ("U") — the same new UID for the same
//! source UID throughout a run, so the series of one study still group as one study and keep
//! their common frame of reference (E.1.1: "replaced … consistent within the set"). Writers build their data sets from a
//! whitelist (see [`super::write`]), so no other source attribute (institution, operators,
//! private tags, acquisition dates) reaches the output in the first place.

use super::uid::new_uid;
use dicom::core::value::PrimitiveValue;
use dicom::core::{DataElement, Tag, VR};
use dicom::dictionary_std::tags;
use dicom::object::InMemDicomObject;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The DeidentificationMethod value written with PatientIdentityRemoved = YES.
pub const DEIDENTIFICATION_METHOD: &str =
    "medsgm: PS3.15 E.1.1 basic profile (whitelist), UIDs replaced";

/// Value of PatientID after de-identification (PatientName is emptied).
pub const ANONYMOUS: &str = "ANONYMOUS";

/// Attributes emptied (type 2: must stay present).
const EMPTIED: &[Tag] = &[
    tags::PATIENT_NAME,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_SEX,
    tags::STUDY_DATE,
    tags::STUDY_TIME,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::STUDY_ID,
    tags::ACCESSION_NUMBER,
];

/// Attributes removed.
const REMOVED: &[Tag] = &[
    tags::ISSUER_OF_PATIENT_ID,
    tags::PATIENT_AGE,
    tags::PATIENT_SIZE,
    tags::PATIENT_WEIGHT,
    tags::PATIENT_ADDRESS,
    tags::STUDY_DESCRIPTION,
    tags::INSTITUTION_NAME,
    tags::STATION_NAME,
    tags::OPERATORS_NAME,
    tags::INSTANCE_CREATION_DATE,
    tags::INSTANCE_CREATION_TIME,
    tags::SERIES_DATE,
    tags::SERIES_TIME,
    tags::CONTENT_DATE,
    tags::CONTENT_TIME,
    tags::ACQUISITION_DATE_TIME,
];

/// De-identifies `obj` in place (top level).
pub fn deidentify(obj: &mut InMemDicomObject) {
    for &tag in EMPTIED {
        if let Some(vr) = obj.get(tag).map(|e| e.vr()) {
            obj.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
        }
    }
    for &tag in REMOVED {
        obj.remove_element(tag);
    }
    obj.put(DataElement::new(
        tags::PATIENT_NAME,
        VR::PN,
        PrimitiveValue::Empty,
    ));
    obj.put(DataElement::new(
        tags::PATIENT_ID,
        VR::LO,
        PrimitiveValue::from(ANONYMOUS),
    ));
    for tag in [tags::STUDY_INSTANCE_UID, tags::FRAME_OF_REFERENCE_UID] {
        let old = obj
            .get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|v| v.trim_end_matches(['\0', ' ']).to_owned());
        if let Some(old) = old {
            obj.put(DataElement::new(
                tag,
                VR::UI,
                PrimitiveValue::from(replacement_uid(&old)),
            ));
        }
    }
    obj.put(DataElement::new(
        tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
        VR::CS,
        PrimitiveValue::from("REMOVED"),
    ));
}

/// The new UID standing in for the source UID `old`: drawn once per source UID and process
/// (never derived from `old`, so it reveals nothing about it), then reused.
pub fn replacement_uid(old: &str) -> String {
    static MAP: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let mut map = MAP
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    map.entry(old.to_owned()).or_insert_with(new_uid).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_uid_gets_one_new_uid() {
        let a = replacement_uid("1.2.3.4.5");
        assert_eq!(a, replacement_uid("1.2.3.4.5"));
        assert_ne!(a, replacement_uid("1.2.3.4.6"));
        assert_ne!(a, "1.2.3.4.5");
        assert!(super::super::uid::is_valid_uid(&a));
    }
}
