//! A measurement (`meas.npy` + sidecar `meas.json` + companion masks) through
//! `load_measurement`. The input holds up to four files separated by
//! `medsgm_fuzz::SEPARATOR`: sidecar JSON, data NPY, `meas.mask.npy`, `meas.metal.npy`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parts = medsgm_fuzz::split_parts(data);
    let names = ["meas.json", "meas.npy", "meas.mask.npy", "meas.metal.npy"];
    let mut data_path = None;
    for (i, name) in names.iter().enumerate() {
        match parts.get(i) {
            Some(bytes) => {
                let p = medsgm_fuzz::scratch_file(name, bytes);
                if *name == "meas.npy" {
                    data_path = Some(p);
                }
            }
            None => medsgm_fuzz::remove_scratch_file(name),
        }
    }
    let Some(path) = data_path else { return };
    if let Ok(m) = medsgm::io::measurement::load_measurement(&path) {
        use medsgm::io::measurement::MeasurementData;
        let shape = match &m.data {
            MeasurementData::Sinogram(a) => a.shape(),
            MeasurementData::KSpace(a) => a.shape(),
        };
        assert_eq!(shape, m.sidecar.shape.as_slice());
    }
});
