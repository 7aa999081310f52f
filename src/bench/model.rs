//! `medsgm bench model`: network evaluation (NFE) and training-step times of the NCSN++ score
//! network on the CPU (compare with data-scripts/peer_bench_model.py).

use super::{time_ms, BenchRow};
use crate::nn::{Ncsnpp, NcsnppConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

/// Times one forward pass (NFE) at 128² (batch 1) and at the sizes of real slices, 256² and 512²
/// (batch 1 and 4), and one forward + backward
/// (a DSM-style loss) at batch 16 and 128², for the network `config` (its `image_size` is
/// overridden per case), taking the median of `repeats` runs.
pub fn run(config: &NcsnppConfig, repeats: usize) -> anyhow::Result<Vec<BenchRow>> {
    let device = Device::Cpu;
    let threads = candle_core::utils::get_num_threads();
    let mut rows = Vec::new();
    let params = config.parameter_count()?;
    let note = format!("nf {}, {params} params, {threads} threads", config.nf);
    for (size, batch) in [(128, 1), (256, 1), (256, 4), (512, 1), (512, 4)] {
        let cfg = NcsnppConfig {
            image_size: size,
            ..config.clone()
        };
        // Sampling uses plain (non-variable) weights: no autograd graph is recorded.
        let map = VarMap::new();
        Ncsnpp::init(&cfg, &map, 0, &device)?;
        let weights = map
            .data()
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned VarMap"))?
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().detach()))
            .collect();
        let net = Ncsnpp::new(&cfg, VarBuilder::from_tensors(weights, DType::F32, &device))?;
        let x = Tensor::rand(0f32, 1.0, (batch, cfg.channels, size, size), &device)?;
        let sigma = Tensor::full(0.5f32, batch, &device)?;
        let t = time_ms(repeats, || {
            net.forward(&x, &sigma, false)?;
            Ok(())
        })?;
        rows.push(BenchRow {
            group: "model".into(),
            case: format!("nfe {size}² batch {batch}"),
            median_ms: t.median_ms,
            note: format!("min {:.3} ms; {note}", t.min_ms),
        });
    }
    let (size, batch) = (128, 16);
    let cfg = NcsnppConfig {
        image_size: size,
        ..config.clone()
    };
    let map = VarMap::new();
    let net = Ncsnpp::init(&cfg, &map, 0, &device)?;
    let x = Tensor::rand(0f32, 1.0, (batch, cfg.channels, size, size), &device)?;
    let z = Tensor::randn(0f32, 1.0, (batch, cfg.channels, size, size), &device)?;
    let sigma = Tensor::full(0.5f32, batch, &device)?;
    let t = time_ms(repeats, || {
        let xt = (&x + (&z * 0.5)?)?;
        let out = net.forward(&xt, &sigma, true)?;
        // ‖σ s_θ + z‖², the λ = σ² DSM loss.
        let loss = ((out * 0.5)? + &z)?.sqr()?.mean_all()?;
        let grads = loss.backward()?;
        for v in map.all_vars() {
            grads.get(v.as_tensor());
        }
        Ok(())
    })?;
    rows.push(BenchRow {
        group: "model".into(),
        case: format!("train step {size}² batch {batch} (fwd+bwd)"),
        median_ms: t.median_ms,
        note: format!("min {:.3} ms; {note}", t.min_ms),
    });
    Ok(rows)
}
