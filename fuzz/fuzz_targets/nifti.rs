//! NIfTI-1 files (`.nii`, or `.nii.gz` when the input starts with the gzip magic) through
//! `read_nifti`: finite voxels in the declared shape, or an error naming the file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: medsgm_fuzz::contain_panics(), |data: &[u8]| {
    let name = if data.starts_with(&[0x1f, 0x8b]) {
        "input.nii.gz"
    } else {
        "input.nii"
    };
    let path = medsgm_fuzz::scratch_file(name, data);
    match medsgm::io::nifti_io::read_nifti(&path) {
        Ok(v) => medsgm_fuzz::assert_finite(v.data.iter()),
        Err(e) => assert!(format!("{e:#}").contains(name), "{e:#}"),
    }
});
