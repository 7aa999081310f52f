//! The reconstruction methods: classical baselines (the operators crate) and score-based
//! solvers (`medsgm_recon::inverse`, plus the LSGM latent prior), one enum for `recon`,
//! `bench recon`, `tune` and the task configs.

use super::Problem;
use medsgm_recon::InverseMethod;

/// A reconstruction method. The command-line and config names are kebab-case (`fista-tv`,
/// `pc-projection`, `diffpir`, `latent-dc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Method {
    /// Filtered back-projection of the measured views (CT) or of the corrupted full sinogram
    /// (MAR, no correction).
    Fbp,
    /// FISTA with isotropic total variation on A = P(Λ)T (any problem).
    FistaTv,
    /// Zero-filled inverse FFT, real part (MRI).
    ZeroFilled,
    /// Linear interpolation across the metal trace, then FBP (MAR).
    Li,
    /// Score-based: predictor–corrector sampling with the data-consistency projection
    /// k(x, ŷ_t, λ) before every step (thesis Alg. 8.2; the paper's method).
    PcProjection,
    /// Score-based: annealed Langevin dynamics with the projection.
    AldProjection,
    /// Score-based baseline: conditional score s_θ + ρ ∇ log p(ŷ_t | x) (Song et al. 2021).
    ScoreSde,
    /// Score-based baseline: annealed Langevin with a likelihood gradient (Jalal et al. 2021).
    Langevin,
    /// Score-based, fast: Decomposed Diffusion Sampling (Chung, Lee & Ye 2024), one network
    /// evaluation per step, the Tweedie estimate and a CG data step (--eta, --gamma,
    /// --cg-iterations).
    Dds,
    /// Score-based, fast: DiffPIR (Zhu et al. 2023), the decomposed loop with a
    /// noise-level-dependent data weight.
    #[value(name = "diffpir")]
    DiffPir,
    /// Score-based: diffusion posterior sampling (Chung et al. 2023), reverse diffusion guided
    /// by ∇‖A x̂₀ − y‖ through the network (--zeta); N + 1 evaluations with a backward pass.
    Dps,
    /// The LSGM latent prior: reverse diffusion in latent space with a normalised
    /// data-consistency gradient step through the decoder (`crate::lsgm::latent_solve`;
    /// `bench recon` with --latent-model).
    #[value(alias = "latent-projection")]
    LatentDc,
    /// The LSGM latent prior with DDS: Tweedie in latent space, the CG data step on the decoded
    /// estimate, re-encoding and DDIM re-noising (`crate::lsgm::latent_decomposed_solve`;
    /// --eta, --gamma, --cg-iterations, t₀; `bench recon` with --latent-model).
    LatentDds,
    /// The LSGM latent prior with DiffPIR: as latent-dds, with DiffPIR's data weight γ σ̄_t²
    /// that relaxes as the noise falls (`crate::lsgm::latent_decomposed_solve`; --eta,
    /// --gamma, --cg-iterations, t₀; `bench recon` with --latent-model).
    #[value(name = "latent-diffpir")]
    LatentDiffPir,
}

impl Method {
    /// Every method, in declaration order.
    pub const ALL: [Method; 14] = [
        Method::Fbp,
        Method::FistaTv,
        Method::ZeroFilled,
        Method::Li,
        Method::PcProjection,
        Method::AldProjection,
        Method::ScoreSde,
        Method::Langevin,
        Method::Dds,
        Method::DiffPir,
        Method::Dps,
        Method::LatentDc,
        Method::LatentDds,
        Method::LatentDiffPir,
    ];

    /// The command-line / config name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Fbp => "fbp",
            Method::FistaTv => "fista-tv",
            Method::ZeroFilled => "zero-filled",
            Method::Li => "li",
            Method::PcProjection => "pc-projection",
            Method::AldProjection => "ald-projection",
            Method::ScoreSde => "score-sde",
            Method::Langevin => "langevin",
            Method::Dds => "dds",
            Method::DiffPir => "diffpir",
            Method::Dps => "dps",
            Method::LatentDc => "latent-dc",
            Method::LatentDds => "latent-dds",
            Method::LatentDiffPir => "latent-diffpir",
        }
    }

    /// The pixel-space solver of a score-based method (None for the classical methods and
    /// the latent prior, which has its own solver).
    pub fn inverse_method(self) -> Option<InverseMethod> {
        match self {
            Method::PcProjection => Some(InverseMethod::PcProjection),
            Method::AldProjection => Some(InverseMethod::AldProjection),
            Method::ScoreSde => Some(InverseMethod::ScoreSde),
            Method::Langevin => Some(InverseMethod::Langevin),
            Method::Dds => Some(InverseMethod::Dds),
            Method::DiffPir => Some(InverseMethod::DiffPir),
            Method::Dps => Some(InverseMethod::Dps),
            _ => None,
        }
    }

    /// Whether the method samples with a score model (pixel or latent).
    pub fn is_score(self) -> bool {
        self.inverse_method().is_some() || self.is_latent()
    }

    /// Whether the method samples with the LSGM latent prior (`--latent-model`).
    pub fn is_latent(self) -> bool {
        matches!(
            self,
            Method::LatentDc | Method::LatentDds | Method::LatentDiffPir
        )
    }

    /// Whether the method applies to `problem`.
    pub fn applies_to(self, problem: Problem) -> bool {
        match self {
            Method::Fbp => problem != Problem::Mri,
            Method::ZeroFilled => problem == Problem::Mri,
            Method::Li => problem == Problem::Mar,
            _ => true,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl From<InverseMethod> for Method {
    /// The method of a pixel-space score solver (the inverse of [`Method::inverse_method`]).
    fn from(m: InverseMethod) -> Method {
        match m {
            InverseMethod::PcProjection => Method::PcProjection,
            InverseMethod::AldProjection => Method::AldProjection,
            InverseMethod::ScoreSde => Method::ScoreSde,
            InverseMethod::Langevin => Method::Langevin,
            InverseMethod::Dds => Method::Dds,
            InverseMethod::DiffPir => Method::DiffPir,
            InverseMethod::Dps => Method::Dps,
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        <Method as clap::ValueEnum>::from_str(s, false).map_err(|_| {
            let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
            format!("unknown method {s:?} (one of {})", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn names_round_trip_and_match_the_command_line() {
        for m in Method::ALL {
            assert_eq!(m.to_possible_value().unwrap().get_name(), m.name());
            assert_eq!(m.name().parse::<Method>(), Ok(m));
        }
        assert_eq!("latent-projection".parse::<Method>(), Ok(Method::LatentDc));
        assert!("pc".parse::<Method>().is_err());
        assert_eq!(Method::value_variants().len(), Method::ALL.len());
    }

    #[test]
    fn classical_methods_belong_to_their_problems() {
        assert!(!Method::Fbp.applies_to(Problem::Mri));
        assert!(Method::ZeroFilled.applies_to(Problem::Mri));
        assert!(!Method::Li.applies_to(Problem::Ct));
        assert!(Problem::ALL.iter().all(|&p| Method::Dds.applies_to(p)));
        assert!(Method::LatentDc.is_score() && Method::LatentDc.inverse_method().is_none());
        for m in InverseMethod::ALL {
            assert_eq!(Method::from(m).inverse_method(), Some(m));
            assert_eq!(Method::from(m).name(), m.name());
        }
    }
}
