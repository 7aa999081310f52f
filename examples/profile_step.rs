//! Times the forward and the backward pass of one NCSN++ training step per iteration (a
//! profiling aid for `perf record`, not a benchmark: see `medsgm bench model`).
//! Usage: cargo run --release --example profile_step -- [size 64] [nf 16] [batch 16] [iters 5]
//! (`NO_TUNE=1` skips `medsgm::nn::cpu_runtime::configure`; `NFE_ONLY=1` times network
//! evaluations without autograd instead).
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use medsgm::nn::{Ncsnpp, NcsnppConfig};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    if std::env::var_os("NO_TUNE").is_none() {
        medsgm::nn::cpu_runtime::configure();
    }
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    let (size, nf, batch, iters) = (
        *a.first().unwrap_or(&64),
        *a.get(1).unwrap_or(&16),
        *a.get(2).unwrap_or(&16),
        *a.get(3).unwrap_or(&5),
    );
    let cfg = NcsnppConfig {
        nf,
        ch_mult: vec![1, 2, 2, 2],
        num_res_blocks: 1,
        attn_resolutions: vec![16],
        dropout: 0.0,
        fourier_scale: 16.0,
        image_size: size,
        channels: 1,
        scale_by_sigma: true,
        positional: false,
    };
    let device = Device::Cpu;
    let map = VarMap::new();
    let net = Ncsnpp::init(&cfg, &map, 0, &device)?;
    let x = Tensor::rand(0f32, 1.0, (batch, 1, size, size), &device)?;
    let z = Tensor::randn(0f32, 1.0, (batch, 1, size, size), &device)?;
    let sigma = Tensor::full(0.5f32, batch, &device)?;
    if std::env::var_os("NFE_ONLY").is_some() {
        let x = x.detach();
        let weights = map
            .data()
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned VarMap"))?
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().detach()))
            .collect();
        let net = Ncsnpp::new(
            &cfg,
            candle_nn::VarBuilder::from_tensors(weights, candle_core::DType::F32, &device),
        )?;
        for it in 0..iters {
            let t0 = Instant::now();
            net.forward(&x, &sigma, false)?;
            eprintln!("iter {it}: nfe {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
        }
        return Ok(());
    }
    for it in 0..iters {
        let t0 = Instant::now();
        let out = net.forward(&(&x + (&z * 0.5)?)?, &sigma, true)?;
        let loss = ((out * 0.5)? + &z)?.sqr()?.mean_all()?;
        let t1 = Instant::now();
        let _g = loss.backward()?;
        let t2 = Instant::now();
        eprintln!(
            "iter {it}: fwd {:.1} ms, bwd {:.1} ms",
            (t1 - t0).as_secs_f64() * 1e3,
            (t2 - t1).as_secs_f64() * 1e3
        );
    }
    Ok(())
}
