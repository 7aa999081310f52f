//! DICOM Part 10 files (single- and multi-frame) through `read_dicom_file`: every input gives a
//! volume of finite values or an error naming the file, never a panic, hang or huge allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: medsgm_fuzz::contain_panics(), |data: &[u8]| {
    let path = medsgm_fuzz::scratch_file("input.dcm", data);
    match medsgm::io::dicom::read_dicom_file(&path) {
        Ok(v) => {
            medsgm_fuzz::assert_finite(v.data.iter());
            assert_eq!(v.frames.len(), v.data.shape()[0]);
        }
        Err(e) => assert!(format!("{e:#}").contains("input.dcm"), "{e:#}"),
    }
});
