//! The learned-schedule primitives of paper 002 (method digest §9, §10): expm1 forms vs the
//! naive forms, SNR = e^{−γ}, the discrete loss L_T → L_∞, and refusal of bad schedules.

mod common;

use medsgm_recon::learned_schedule::{
    discrete_loss, discrete_weight, posterior_variance, sigmoid, transition_variance, GammaNet,
    GammaWeights, LearnedSchedule, MAX_FEATURES, SAMPLING_GAMMA_MIN,
};
use medsgm_recon::SdeConfig;

fn naive_transition(gs: f64, gt: f64) -> f64 {
    let (s2s, s2t) = (sigmoid(gs), sigmoid(gt));
    let (a2s, a2t) = (sigmoid(-gs), sigmoid(-gt));
    s2t - a2t / a2s * s2s
}

/// For moderate steps the expm1 forms equal the naive ones to 1e-12 in f64; for tiny steps
/// the naive transition variance cancels catastrophically while the expm1 form keeps full
/// precision (compared with the series −σ_t² expm1(−d) = σ_t² (d − d²/2 + d³/6)).
#[test]
fn expm1_forms_equal_naive_forms() {
    let gammas = [-13.0, -9.1, -4.0, -0.5, 0.0, 1.3, 5.0, 10.0];
    for &gs in &gammas {
        for &gt in gammas.iter().filter(|&&g| g > gs) {
            let t = transition_variance(gs, gt);
            assert!((t - naive_transition(gs, gt)).abs() < 1e-12, "{gs} → {gt}");
            let q = posterior_variance(gs, gt);
            let naive_q = naive_transition(gs, gt) * sigmoid(gs) / sigmoid(gt);
            assert!((q - naive_q).abs() < 1e-12, "σ_Q² {gs} → {gt}");
            let snr = |g: f64| sigmoid(-g) / sigmoid(g);
            let w = discrete_weight(gs, gt);
            assert!(
                (w - (snr(gs) / snr(gt) - 1.0)).abs() < 1e-12 * (1.0 + w),
                "weight"
            );
            assert!(
                (snr(gs) - (-gs).exp()).abs() < 1e-12 * snr(gs),
                "SNR = e^-γ"
            );
        }
    }
    let (gs, gt) = (-9.0, -9.0 + 1e-10);
    let d = gt - gs; // exact (Sterbenz), unlike 1e-10 itself
    let series = sigmoid(gs + d) * (d - d * d / 2.0 + d * d * d / 6.0);
    let rel = |v: f64| (v - series).abs() / series;
    assert!(rel(transition_variance(gs, gt)) < 1e-14);
    assert!(
        rel(naive_transition(gs, gt)) > 1e-8,
        "naive form unexpectedly accurate"
    );
}

/// Gaussian data N(μ, s₀²) per dimension with the exact ε-model: e(γ) = s₀²/(s₀² + e^γ) per
/// dimension, so L_∞ = ½∫ e dγ = ½[γ − ln(s₀² + e^γ)] between the endpoints (a closed form).
/// L_T approaches it as T grows, with error O(1/T).
#[test]
fn discrete_loss_tends_to_the_continuous_loss() {
    let cfg = common::learned();
    let SdeConfig::Learned(spec) = &cfg else {
        unreachable!()
    };
    let net = GammaNet::new(spec).unwrap();
    let s02: f64 = 0.3;
    let error = |t: f64| s02 / (s02 + net.gamma(t).exp());
    let antiderivative = |g: f64| g - (s02 + g.exp()).ln();
    let l_inf = 0.5 * (antiderivative(spec.gamma_max) - antiderivative(spec.gamma_min));
    let mut last = f64::INFINITY;
    for steps in [10, 100, 1000, 10_000] {
        let gap = (discrete_loss(steps, &|t| net.gamma(t), &error) - l_inf).abs();
        assert!(gap < last / 5.0, "T = {steps}: gap {gap} after {last}");
        last = gap;
    }
    assert!(last < 2e-3 * l_inf, "L_T(10⁴) is {last} from L_∞ = {l_inf}");
}

/// γ runs exactly from γ_min to γ_max, increases, and its derivative matches central
/// differences; the SDE's SNR m²/s² is e^{−γ}/α_0².
#[test]
fn gamma_is_monotone_with_its_derivative() {
    let SdeConfig::Learned(spec) = common::learned() else {
        unreachable!()
    };
    let net = GammaNet::new(&spec).unwrap();
    let sde = SdeConfig::Learned(spec.clone()).build().unwrap();
    assert!((net.gamma(0.0) - spec.gamma_min).abs() < 1e-12);
    assert!((net.gamma(1.0) - spec.gamma_max).abs() < 1e-12);
    let alpha2_0 = sigmoid(-spec.gamma_min);
    let mut prev = f64::NEG_INFINITY;
    for i in 0..=200 {
        let t = i as f64 / 200.0;
        let g = net.gamma(t);
        assert!(g > prev, "γ not increasing at {t}");
        prev = g;
        if (1..200).contains(&i) {
            let h = 1e-6;
            let fd = (net.gamma(t + h) - net.gamma(t - h)) / (2.0 * h);
            assert!(
                (fd - net.gamma_prime(t)).abs() < 1e-6 * fd.abs().max(1.0),
                "γ'({t})"
            );
        }
        let snr = (sde.mean_coef(t) / sde.std(t)).powi(2);
        assert!(
            (snr * alpha2_0 - (-g).exp()).abs() < 1e-10 * snr,
            "SNR at {t}"
        );
    }
    // over the VP training range, samplers stop where the default VP's do (σ_ε ≈ 0.0105)
    let (lo, hi) = LearnedSchedule::vp_range(0.1, 20.0, 1e-5);
    let wide = SdeConfig::Learned(LearnedSchedule {
        gamma_min: lo,
        gamma_max: hi,
        ..spec.clone()
    });
    let wide_sde = wide.build().unwrap();
    let SdeConfig::Learned(wide_spec) = wide else {
        unreachable!()
    };
    let g_eps = GammaNet::new(&wide_spec).unwrap().gamma(wide_sde.t_min());
    assert!((g_eps - SAMPLING_GAMMA_MIN).abs() < 1e-9, "γ(ε) = {g_eps}");
    assert!(wide_sde.t_min_train() < wide_sde.t_min());
    let (vp_min, vp_max) = LearnedSchedule::vp_range(0.1, 20.0, 1e-3);
    assert!((vp_min - SAMPLING_GAMMA_MIN).abs() < 1e-12);
    let vp = SdeConfig::vp().build().unwrap();
    let vp_gamma = |t: f64| (vp.std(t).powi(2) / vp.mean_coef(t).powi(2)).ln();
    assert!((vp_min - vp_gamma(1e-3)).abs() < 1e-9 && (vp_max - vp_gamma(1.0)).abs() < 1e-9);
}

/// Bad schedules from a file are refused with the parameter named, and a training
/// configuration (`kind = "learned"` without weights) parses and starts from the initial weights.
#[test]
fn schedules_are_validated() {
    let base = LearnedSchedule {
        gamma_min: -9.0,
        gamma_max: 10.0,
        features: 4,
        weights: None,
    };
    assert!(GammaNet::new(&base).is_ok());
    let bad = |s: LearnedSchedule| SdeConfig::Learned(s).build().unwrap_err().to_string();
    let mut w = GammaWeights::initial(4);
    w.w2.pop();
    assert!(bad(LearnedSchedule {
        weights: Some(w),
        ..base.clone()
    })
    .contains("weights"));
    let mut w = GammaWeights::initial(4);
    w.b2[1] = f64::NAN;
    assert!(bad(LearnedSchedule {
        weights: Some(w),
        ..base.clone()
    })
    .contains("non-finite"));
    let flat = GammaWeights {
        w1: 0.0,
        w2: vec![1.0; 4],
        b2: vec![0.0; 4],
        w3: vec![0.0; 4],
    };
    assert!(bad(LearnedSchedule {
        weights: Some(flat),
        ..base.clone()
    })
    .contains("constant"));
    for (lo, hi) in [(1.0, -1.0), (f64::NAN, 1.0), (-40.0, 1.0)] {
        assert!(bad(LearnedSchedule {
            gamma_min: lo,
            gamma_max: hi,
            ..base.clone()
        })
        .contains("gamma_min"));
    }
    for features in [0, MAX_FEATURES + 1] {
        assert!(bad(LearnedSchedule {
            features,
            ..base.clone()
        })
        .contains("features"));
    }
    let toml_cfg: SdeConfig =
        serde_json::from_str(r#"{"kind": "learned", "gamma_min": -9.1, "gamma_max": 10.05}"#)
            .unwrap();
    let SdeConfig::Learned(spec) = &toml_cfg else {
        panic!("not a learned schedule: {toml_cfg:?}")
    };
    assert_eq!(spec.features, 1024);
    let sde = toml_cfg.build().unwrap();
    let SdeConfig::Learned(built) = sde.config() else {
        unreachable!()
    };
    assert_eq!(built.weights, Some(GammaWeights::initial(1024)));
}
