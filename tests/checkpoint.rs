//! Checkpoint round trip and validation.

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use medsgm::checkpoint::{Checkpoint, CheckpointMeta, Normalization};
use medsgm::nn::{Ncsnpp, NcsnppConfig};
use std::collections::HashMap;

fn cfg() -> NcsnppConfig {
    NcsnppConfig {
        nf: 8,
        ch_mult: vec![1, 2],
        num_res_blocks: 1,
        attn_resolutions: vec![8],
        image_size: 16,
        ..Default::default()
    }
}

fn tensors(map: &VarMap, scale: f64) -> HashMap<String, Tensor> {
    map.data()
        .lock()
        .unwrap()
        .iter()
        .map(|(n, v)| (n.clone(), (v.as_tensor() * scale).unwrap()))
        .collect()
}

fn sample_checkpoint() -> Checkpoint {
    let map = VarMap::new();
    Ncsnpp::init(&cfg(), &map, 4, &Device::Cpu).unwrap();
    Checkpoint {
        meta: CheckpointMeta::new(
            cfg(),
            medsgm_recon::SdeConfig::ve(16.0),
            Normalization::CtHuWindow {
                lo: -1000.0,
                hi: 1000.0,
            },
            1234,
            7,
            "phantom-anatomical 16²",
        ),
        weights: tensors(&map, 1.0),
        ema: tensors(&map, 0.5),
    }
}

#[test]
fn round_trip_preserves_weights_ema_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/model.safetensors");
    let ck = sample_checkpoint();
    ck.save(&path).unwrap();
    let back = Checkpoint::load(&path, &Device::Cpu).unwrap();
    assert_eq!(back.meta, ck.meta);
    for (src, dst) in [(&ck.weights, &back.weights), (&ck.ema, &back.ema)] {
        assert_eq!(src.len(), dst.len());
        for (n, t) in src {
            let a = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(
                a,
                dst[n].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                "{n}"
            );
        }
    }
    // The rebuilt networks use the stored weights: EMA (×0.5) and raw differ.
    let x = Tensor::rand(0f32, 1.0, (1, 1, 16, 16), &Device::Cpu).unwrap();
    let s = Tensor::new(&[1.0f32], &Device::Cpu).unwrap();
    let raw = back
        .network(false, &Device::Cpu)
        .unwrap()
        .forward(&x, &s, false)
        .unwrap();
    let orig = Ncsnpp::init(&cfg(), &VarMap::new(), 4, &Device::Cpu)
        .unwrap()
        .forward(&x, &s, false)
        .unwrap();
    assert_eq!(
        raw.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        orig.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
    assert!(back.network(true, &Device::Cpu).is_ok());
    // Only the final file is left (atomic write through a temporary file).
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1
    );
}

#[test]
fn load_rejects_newer_versions_and_mismatched_configs() {
    let dir = tempfile::tempdir().unwrap();
    let mut ck = sample_checkpoint();
    ck.meta.format_version = 99;
    let p = dir.path().join("future.safetensors");
    ck.save(&p).unwrap();
    let err = Checkpoint::load(&p, &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("newer"), "{err}");

    let mut ck = sample_checkpoint();
    ck.meta.model.nf = 16;
    let p = dir.path().join("mismatch.safetensors");
    ck.save(&p).unwrap();
    let loaded = Checkpoint::load(&p, &Device::Cpu).unwrap();
    let err = format!("{:#}", loaded.network(true, &Device::Cpu).unwrap_err());
    assert!(err.contains("do not match"), "{err}");

    std::fs::write(dir.path().join("junk.safetensors"), b"not a checkpoint").unwrap();
    assert!(Checkpoint::load(&dir.path().join("junk.safetensors"), &Device::Cpu).is_err());
}

/// Networks built from a checkpoint whose tensors are training `Var`s must not record ops:
/// a sampler's chain of evaluations would otherwise keep every activation alive.
#[test]
fn networks_from_training_vars_do_not_record_ops() {
    use candle_core::{DType, Device, Tensor, Var};
    use medsgm::checkpoint::Checkpoint;
    use medsgm::nn::NcsnppConfig;
    let device = Device::Cpu;
    let cfg = NcsnppConfig {
        nf: 8,
        ch_mult: vec![1, 2],
        num_res_blocks: 1,
        attn_resolutions: vec![],
        image_size: 8,
        ..Default::default()
    };
    let map = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&map, DType::F32, &device);
    medsgm::nn::Ncsnpp::new(&cfg, vb).unwrap();
    let vars: std::collections::HashMap<String, Tensor> = map
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(n, v): (&String, &Var)| (n.clone(), v.as_tensor().clone()))
        .collect();
    assert!(vars.values().all(|t| t.is_variable()));
    let ckpt = Checkpoint {
        meta: medsgm::checkpoint::CheckpointMeta::new(
            cfg,
            medsgm_recon::SdeConfig::Ve {
                sigma_min: 0.01,
                sigma_max: 10.0,
            },
            medsgm::checkpoint::Normalization::Identity,
            0,
            0,
            "test",
        ),
        weights: vars.clone(),
        ema: vars,
    };
    let net = ckpt.network(true, &device).unwrap();
    let x = Tensor::zeros((1, 1, 8, 8), DType::F32, &device).unwrap();
    let t = Tensor::new(&[0.5f32], &device).unwrap();
    let y = net.forward(&x, &t, false).unwrap();
    assert!(!y.track_op(), "the network output records its ops");
}
