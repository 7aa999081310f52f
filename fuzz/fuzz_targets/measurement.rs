//! A measurement (`meas.npy` + sidecar `meas.json` + companion masks) through
//! `load_measurement`. The input holds up to four files separated by
//! `medsgm_fuzz::SEPARATOR`: sidecar JSON, data NPY, `meas.mask.npy`, `meas.metal.npy`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(path) = medsgm_fuzz::scratch_measurement(data) else {
        return;
    };
    if let Ok(m) = medsgm::io::measurement::load_measurement(&path) {
        use medsgm::io::measurement::MeasurementData;
        let shape = match &m.data {
            MeasurementData::Sinogram(a) => a.shape(),
            MeasurementData::KSpace(a) => a.shape(),
        };
        assert_eq!(shape, m.sidecar.shape.as_slice());
    }
});
