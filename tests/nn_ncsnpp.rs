//! Shape and structure tests of the NCSN++-style score network (method digest §4).

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use medsgm::nn::blocks::{AttnBlock, ResBlock, Resample, SKIP_RESCALE};
use medsgm::nn::embedding::GaussianFourierProjection;
use medsgm::nn::init::seeded_var_builder;
use medsgm::nn::{Ncsnpp, NcsnppConfig};

fn small(size: usize) -> NcsnppConfig {
    NcsnppConfig {
        nf: 8,
        ch_mult: vec![1, 2, 2, 2],
        num_res_blocks: 1,
        attn_resolutions: vec![size / 8],
        image_size: size,
        ..NcsnppConfig::default()
    }
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn output_has_input_shape_at_64_and_128() {
    let dev = Device::Cpu;
    for size in [64, 128] {
        let net = Ncsnpp::init(&small(size), &VarMap::new(), 1, &dev).unwrap();
        let x = Tensor::rand(0f32, 1.0, (1, 1, size, size), &dev).unwrap();
        let sigma = Tensor::new(&[3.0f32], &dev).unwrap();
        let y = net.forward(&x, &sigma, false).unwrap();
        assert_eq!(y.dims(), &[1, 1, size, size]);
        assert!(y
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .all(|v| v.is_finite()));
    }
}

#[test]
fn seeded_init_is_deterministic_and_seed_dependent() {
    let dev = Device::Cpu;
    let weights = |seed| {
        let map = VarMap::new();
        Ncsnpp::init(&small(32), &map, seed, &dev).unwrap();
        let data = map.data().lock().unwrap();
        let mut names: Vec<_> = data.keys().cloned().collect();
        names.sort();
        names
            .iter()
            .flat_map(|n| data[n].flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect::<Vec<f32>>()
    };
    assert_eq!(weights(5), weights(5));
    assert_ne!(weights(5), weights(6));
    assert_eq!(weights(5).len(), small(32).parameter_count().unwrap());
}

#[test]
fn fourier_features_are_deterministic_unit_sin_cos_pairs() {
    let dev = Device::Cpu;
    let make = || {
        let vb = seeded_var_builder(&VarMap::new(), 3, &dev);
        GaussianFourierProjection::new(16, 16.0, vb).unwrap()
    };
    let sigma = Tensor::new(&[0.01f32, 1.0, 50.0], &dev).unwrap();
    let (a, b) = (
        make().forward(&sigma).unwrap(),
        make().forward(&sigma).unwrap(),
    );
    assert_eq!(a.dims(), &[3, 32]);
    assert_eq!(a.to_vec2::<f32>().unwrap(), b.to_vec2::<f32>().unwrap());
    // sin² + cos² = 1 for every frequency; σ = 1 (log σ = 0) gives sin 0 = 0, cos 0 = 1.
    let rows = a.to_vec2::<f32>().unwrap();
    for row in &rows {
        for j in 0..16 {
            assert!((row[j] * row[j] + row[j + 16] * row[j + 16] - 1.0).abs() < 1e-5);
        }
    }
    assert!(rows[1][..16].iter().all(|v| v.abs() < 1e-6));
    assert!(rows[1][16..].iter().all(|v| (v - 1.0).abs() < 1e-6));
}

#[test]
fn residual_and_attention_blocks_start_as_scaled_identity() {
    // The last conv of a residual block and the attention output projection are initialised
    // at (near) zero, so with equal channels each block initially returns x/√2 (skip rescale).
    let dev = Device::Cpu;
    let vb = seeded_var_builder(&VarMap::new(), 9, &dev);
    let rb = ResBlock::new(8, 8, 16, Resample::None, 0.0, vb.pp("res")).unwrap();
    let attn = AttnBlock::new(8, vb.pp("attn")).unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, 8, 8, 8), &dev).unwrap();
    let temb = Tensor::randn(0f32, 1.0, (2, 16), &dev).unwrap();
    let expected = (&x * SKIP_RESCALE).unwrap();
    let r = rb.forward(&x, &temb, None).unwrap();
    assert!(max_abs(&(r - &expected).unwrap()) < 1e-4);
    let a = attn.forward(&x).unwrap();
    assert!(max_abs(&(a - &expected).unwrap()) < 1e-4);
    // A downsampling block halves the resolution and changes nothing else.
    let down = ResBlock::new(8, 16, 16, Resample::Down, 0.0, vb.pp("down")).unwrap();
    assert_eq!(
        down.forward(&x, &temb, None).unwrap().dims(),
        &[2, 16, 4, 4]
    );
}

#[test]
fn ve_output_is_scaled_by_one_over_sigma() {
    let dev = Device::Cpu;
    let cfg = small(32);
    let map = VarMap::new();
    let scaled = Ncsnpp::init(&cfg, &map, 2, &dev).unwrap();
    // Same variables (shared map), output not divided by σ.
    let raw_cfg = NcsnppConfig {
        scale_by_sigma: false,
        ..cfg
    };
    let raw = Ncsnpp::init(&raw_cfg, &map, 99, &dev).unwrap();
    // Make the output layer non-trivial so the comparison is not 0 = 0.
    for (name, var) in map.data().lock().unwrap().iter() {
        if name.starts_with("conv_out") {
            var.set(&Tensor::randn(0f32, 0.1, var.shape(), &dev).unwrap())
                .unwrap();
        }
    }
    let x = Tensor::rand(0f32, 1.0, (2, 1, 32, 32), &dev).unwrap();
    let sigma = Tensor::new(&[0.5f32, 20.0], &dev).unwrap();
    let s = scaled.forward(&x, &sigma, false).unwrap();
    let r = raw.forward(&x, &sigma, false).unwrap();
    let back = s
        .broadcast_mul(&sigma.reshape((2, 1, 1, 1)).unwrap())
        .unwrap();
    assert!(max_abs(&r) > 1e-3);
    assert!(max_abs(&(back - &r).unwrap()) < 1e-5 * max_abs(&r).max(1.0));
}

/// PaDIS positional channels: a patch's grid is the crop of its whole image's grid, `forward`
/// treats images as whole (centre offset 0), and the channels reach the output.
#[test]
fn positional_channels_locate_patches_in_the_whole_image() {
    let dev = Device::Cpu;
    let cfg = NcsnppConfig {
        positional: true,
        ..small(16)
    };
    let map = VarMap::new();
    let net = Ncsnpp::init(&cfg, &map, 3, &dev).unwrap();
    let whole = Tensor::zeros((1, 1, 32, 24), candle_core::DType::F32, &dev).unwrap();
    let grid = net.positions(&whole, None).unwrap();
    // The 16² patch whose top-left pixel is (4, 2): centre (12, 10), offset (−4, −2).
    let patch = Tensor::zeros((1, 1, 16, 16), candle_core::DType::F32, &dev).unwrap();
    let centre = Tensor::new(&[[-4f32, -2.0]], &dev).unwrap();
    let crop = grid.narrow(2, 4, 16).unwrap().narrow(3, 2, 16).unwrap();
    let diff = (net.positions(&patch, Some(&centre)).unwrap() - crop).unwrap();
    assert!(max_abs(&diff) < 1e-6);
    // Units: image_size pixels from the centre; the corner pixel of the whole image.
    let corner = grid.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0];
    assert!((corner - (0.5 - 16.0) / 16.0).abs() < 1e-6, "{corner}");
    // Make the output layer non-trivial (it starts at zero).
    {
        let data = map.data().lock().unwrap();
        let w = &data["conv_out.weight"];
        w.set(&Tensor::randn(0f32, 0.1, w.dims(), &dev).unwrap())
            .unwrap();
    }
    let x = Tensor::rand(0f32, 1.0, (1, 1, 16, 16), &dev).unwrap();
    let sigma = Tensor::new(&[1.0f32], &dev).unwrap();
    let zero = Tensor::zeros((1, 2), candle_core::DType::F32, &dev).unwrap();
    let a = net.forward(&x, &sigma, false).unwrap();
    let b = net.forward_at(&x, Some(&zero), &sigma, false).unwrap();
    assert_eq!(max_abs(&(&a - &b).unwrap()), 0.0);
    let c = net.forward_at(&x, Some(&centre), &sigma, false).unwrap();
    assert!(max_abs(&(&a - &c).unwrap()) > 1e-4 * max_abs(&a));
}
