//! De-identification of derived series (`--anonymize`), after DICOM PS3.15 Annex E, Table E.1-1
//! (Basic Application Level Confidentiality Profile), for the attributes a derived series
//! carries: identifying attributes are emptied ("Z") or removed ("X"), and the Study Instance
//! and Frame of Reference UIDs replaced by new ones ("U"). Writers build their data sets from a
//! whitelist (see [`super::write`]), so no other source attribute (institution, operators,
//! private tags, acquisition dates) reaches the output in the first place.

use super::uid::new_uid;
use dicom::core::value::PrimitiveValue;
use dicom::core::{DataElement, Tag, VR};
use dicom::dictionary_std::tags;
use dicom::object::InMemDicomObject;

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
        if obj.get(tag).is_some() {
            obj.put(DataElement::new(
                tag,
                VR::UI,
                PrimitiveValue::from(new_uid()),
            ));
        }
    }
    obj.put(DataElement::new(
        tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
        VR::CS,
        PrimitiveValue::from("REMOVED"),
    ));
}
