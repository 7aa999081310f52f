//! The image reader of `[data] kind = "folder"` training sources (`medsgm::train::data::read_image`)
//! on `.npy` inputs: a [0, 1] image or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = medsgm_fuzz::scratch_file("input.npy", data);
    if let Ok(img) = medsgm::train::data::read_image(&path) {
        assert!(
            img.iter().all(|v| (0.0..=1.0).contains(v)),
            "values outside [0, 1]"
        );
    }
});
