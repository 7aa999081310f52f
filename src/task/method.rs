//! The reconstruction methods: classical baselines (the operators crate) and score-based
//! solvers (`medsgm_recon::inverse`, plus the LSGM latent prior), one enum for `recon`,
//! `bench recon`, `tune`, `demo`, the task configs and `summary.json`. Its command-line, config
//! and JSON spelling is [`Method::name`] everywhere (the pixel score solvers' names are
//! [`InverseMethod::name`]).

use super::Problem;
use clap::builder::PossibleValue;
use medsgm_recon::InverseMethod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A reconstruction method. The command-line and config names are kebab-case (`fista-tv`,
/// `pc-projection`, `diffpir`, `latent-dc`); [`Method::help`] describes each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Filtered back-projection (CT, MAR).
    Fbp,
    /// FISTA with isotropic total variation (any problem).
    FistaTv,
    /// Zero-filled inverse FFT (MRI).
    ZeroFilled,
    /// Linear interpolation across the metal trace, then FBP (MAR).
    Li,
    /// A pixel-space score-based solver of `medsgm_recon::inverse`, by its own name.
    Score(InverseMethod),
    /// The LSGM latent prior with a data-consistency gradient step (`latent-dc`, alias
    /// `latent-projection`).
    LatentDc,
    /// The LSGM latent prior with DDS (`latent-dds`).
    LatentDds,
    /// The LSGM latent prior with DiffPIR (`latent-diffpir`).
    LatentDiffPir,
}

impl Method {
    /// Every method, in declaration order (the score solvers in [`InverseMethod::ALL`] order).
    pub const ALL: [Method; 14] = [
        Method::Fbp,
        Method::FistaTv,
        Method::ZeroFilled,
        Method::Li,
        Method::Score(InverseMethod::PcProjection),
        Method::Score(InverseMethod::AldProjection),
        Method::Score(InverseMethod::ScoreSde),
        Method::Score(InverseMethod::Langevin),
        Method::Score(InverseMethod::Dds),
        Method::Score(InverseMethod::DiffPir),
        Method::Score(InverseMethod::Dps),
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
            Method::Score(m) => m.name(),
            Method::LatentDc => "latent-dc",
            Method::LatentDds => "latent-dds",
            Method::LatentDiffPir => "latent-diffpir",
        }
    }

    /// The command-line help of the method (one line in `--help`'s list of possible values).
    pub fn help(self) -> &'static str {
        match self {
            Method::Fbp => {
                "Filtered back-projection of the measured views (CT) or of the corrupted full \
                 sinogram (MAR, no correction)"
            }
            Method::FistaTv => "FISTA with isotropic total variation on A = P(Λ)T (any problem)",
            Method::ZeroFilled => "Zero-filled inverse FFT, real part (MRI)",
            Method::Li => "Linear interpolation across the metal trace, then FBP (MAR)",
            Method::Score(InverseMethod::PcProjection) => {
                "Score-based: predictor–corrector sampling with the data-consistency projection \
                 k(x, ŷ_t, λ) before every step (thesis Alg. 8.2; the paper's method)"
            }
            Method::Score(InverseMethod::AldProjection) => {
                "Score-based: annealed Langevin dynamics with the projection"
            }
            Method::Score(InverseMethod::ScoreSde) => {
                "Score-based baseline: conditional score s_θ + ρ ∇ log p(ŷ_t | x) (Song et al. \
                 2021)"
            }
            Method::Score(InverseMethod::Langevin) => {
                "Score-based baseline: annealed Langevin with a likelihood gradient (Jalal et al. \
                 2021)"
            }
            Method::Score(InverseMethod::Dds) => {
                "Score-based, fast: Decomposed Diffusion Sampling (Chung, Lee & Ye 2024), one \
                 network evaluation per step, the Tweedie estimate and a CG data step (--eta, \
                 --gamma, --cg-iterations)"
            }
            Method::Score(InverseMethod::DiffPir) => {
                "Score-based, fast: DiffPIR (Zhu et al. 2023), the decomposed loop with a \
                 noise-level-dependent data weight"
            }
            Method::Score(InverseMethod::Dps) => {
                "Score-based: diffusion posterior sampling (Chung et al. 2023), reverse \
                 diffusion guided by ∇‖A x̂₀ − y‖ through the network (--zeta); N + 1 \
                 evaluations with a backward pass"
            }
            Method::LatentDc => {
                "The LSGM latent prior: reverse diffusion in latent space with a normalised \
                 data-consistency gradient step through the decoder (`crate::lsgm::latent_solve`; \
                 `bench recon` with --latent-model)"
            }
            Method::LatentDds => {
                "The LSGM latent prior with DDS: Tweedie in latent space, the CG data step on \
                 the decoded estimate, re-encoding and DDIM re-noising \
                 (`crate::lsgm::latent_decomposed_solve`; --eta, --gamma, --cg-iterations, t₀; \
                 `bench recon` with --latent-model)"
            }
            Method::LatentDiffPir => {
                "The LSGM latent prior with DiffPIR: as latent-dds, with DiffPIR's data weight \
                 γ σ̄_t² that relaxes as the noise falls (`crate::lsgm::latent_decomposed_solve`; \
                 --eta, --gamma, --cg-iterations, t₀; `bench recon` with --latent-model)"
            }
        }
    }

    /// The pixel-space solver of a score-based method (None for the classical methods and
    /// the latent prior, which has its own solver).
    pub fn inverse_method(self) -> Option<InverseMethod> {
        match self {
            Method::Score(m) => Some(m),
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

impl clap::ValueEnum for Method {
    fn value_variants<'a>() -> &'a [Self] {
        &Method::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let value = PossibleValue::new(self.name()).help(self.help());
        Some(match self {
            Method::LatentDc => value.alias("latent-projection"),
            _ => value,
        })
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

impl Serialize for Method {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn one_spelling_on_the_command_line_in_configs_and_json() {
        for m in Method::ALL {
            assert_eq!(m.to_possible_value().unwrap().get_name(), m.name());
            assert_eq!(m.name().parse::<Method>(), Ok(m));
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
            assert_eq!(serde_json::from_str::<Method>(&json).unwrap(), m);
        }
        assert_eq!("latent-projection".parse::<Method>(), Ok(Method::LatentDc));
        assert!("pc".parse::<Method>().is_err());
        assert!(serde_json::from_str::<Method>("\"pc\"").is_err());
        let score: Vec<Method> = Method::ALL
            .into_iter()
            .filter(|m| m.inverse_method().is_some())
            .collect();
        assert_eq!(score, InverseMethod::ALL.map(Method::Score));
    }

    #[test]
    fn classical_methods_belong_to_their_problems() {
        assert!(!Method::Fbp.applies_to(Problem::Mri));
        assert!(Method::ZeroFilled.applies_to(Problem::Mri));
        assert!(!Method::Li.applies_to(Problem::Ct));
        let dds = Method::Score(InverseMethod::Dds);
        assert!(Problem::ALL.iter().all(|&p| dds.applies_to(p)));
        assert!(Method::LatentDc.is_score() && Method::LatentDc.inverse_method().is_none());
    }
}
