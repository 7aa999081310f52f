//! NPY bytes through `parse_npy` (the parser behind `read_npy`) and the float conversion every
//! image reader applies.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(arr) = medsgm::io::npy::parse_npy(data) {
        let shape = arr.shape().to_vec();
        // Every element occupies at least one byte of the input.
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        assert!(
            n.is_some_and(|n| n <= data.len()),
            "shape {shape:?} from {} bytes",
            data.len()
        );
        if let Ok(f) = arr.into_f32() {
            assert_eq!(f.shape(), shape.as_slice());
        }
    }
});
