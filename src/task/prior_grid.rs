//! Measurements re-expressed on a prior's pixel grid: a prior trained at one pixel spacing
//! reconstructs a measurement of another spacing on its own grid over the same field of view
//! (the operator is mapped, not the data resampled), and the result is resampled back.

use crate::io::measurement::{Geometry, Mask, Measurement, MeasurementData};
use anyhow::{bail, Result};
use medsgm_operators::resample::side_at_spacing;
use ndarray::Array2;
use num_complex::Complex32;

/// The measurement `m` re-expressed on a grid of `spacing_mm` pixels over the same field of
/// view, for a prior trained at that spacing (anatomy at the scale the prior learned). With
/// r = s/s' (the sidecar's spacing s over the new one s'):
/// - CT: lengths in new pixels are r times those in old ones: the image side becomes round(r N),
///   the bin width (and for fan beam the source and detector distances) scale by r, and the
///   line integrals per pixel length by r; views, bins and the mask are unchanged.
/// - MRI: the field of view fixes the k-space sampling, so the new grid's k-space is the centre
///   of the old one (cropped for a coarser grid, zero-padded for a finer one), times
///   √(H'W'/(HW)) for the unitary transform; measured columns outside the new band are dropped.
///
/// `None` when the sidecar records no spacing.
pub fn at_pixel_spacing(m: &Measurement, spacing_mm: f32) -> Result<Option<Measurement>> {
    let Some(s) = m.sidecar.pixel_spacing_mm else {
        return Ok(None);
    };
    anyhow::ensure!(
        spacing_mm.is_finite() && spacing_mm > 0.0,
        "invalid target pixel spacing {spacing_mm} mm"
    );
    let r = s / spacing_mm;
    if let Geometry::Cartesian { h, w } = m.sidecar.geometry {
        return kspace_at_spacing(m, (h, w), s, spacing_mm).map(Some);
    }
    let MeasurementData::Sinogram(sino) = &m.data else {
        bail!("a CT measurement holds a sinogram");
    };
    let geometry = match &m.sidecar.geometry {
        Geometry::ParallelBeam {
            size,
            angles_deg,
            n_det,
            det_spacing,
        } => Geometry::ParallelBeam {
            size: side_at_spacing(*size, s, spacing_mm),
            angles_deg: angles_deg.clone(),
            n_det: *n_det,
            det_spacing: det_spacing * r,
        },
        Geometry::FanBeam {
            size,
            angles_deg,
            n_det,
            det_spacing,
            source_distance,
            detector_distance,
            detector,
            det_offset,
        } => Geometry::FanBeam {
            size: side_at_spacing(*size, s, spacing_mm),
            angles_deg: angles_deg.clone(),
            n_det: *n_det,
            det_spacing: det_spacing * r,
            source_distance: source_distance * r,
            detector_distance: detector_distance * r,
            detector: *detector,
            det_offset: *det_offset,
        },
        Geometry::Cartesian { .. } => bail!("not a CT geometry"),
    };
    geometry.validate_ct()?;
    let mut sidecar = m.sidecar.clone();
    sidecar.geometry = geometry;
    sidecar.pixel_spacing_mm = Some(spacing_mm);
    Ok(Some(Measurement {
        sidecar,
        data: MeasurementData::Sinogram(sino.mapv(|v| v * r)),
        sinogram_mask: m.sinogram_mask.clone(),
        metal_mask: m.metal_mask.clone(),
    }))
}

/// The MRI branch of [`at_pixel_spacing`]: the centred k-space of an `(h, w)` grid at `from`
/// mm re-sampled onto the grid at `to` mm.
fn kspace_at_spacing(
    m: &Measurement,
    (h, w): (usize, usize),
    from: f32,
    to: f32,
) -> Result<Measurement> {
    let MeasurementData::KSpace(k) = &m.data else {
        bail!("an MRI measurement holds k-space");
    };
    let Mask::Columns { kept, .. } = &m.sidecar.mask else {
        bail!("an MRI measurement needs a column mask");
    };
    let (h2, w2) = (side_at_spacing(h, from, to), side_at_spacing(w, from, to));
    anyhow::ensure!(
        h2 >= 2 && w2 >= 2,
        "the prior's grid would be {h2}×{w2} pixels"
    );
    // index i of the old centred grid ↔ i − ⌊h/2⌋ + ⌊h'/2⌋ of the new one (DC at ⌊n/2⌋)
    let map = |i: usize, n: usize, n2: usize| {
        let j = i as isize - (n / 2) as isize + (n2 / 2) as isize;
        (0..n2 as isize).contains(&j).then_some(j as usize)
    };
    let back = |i2: usize, n2: usize, n: usize| map(i2, n2, n);
    let scale = ((h2 * w2) as f64 / (h * w) as f64).sqrt() as f32;
    let k2 = Array2::from_shape_fn((h2, w2), |(i2, j2)| {
        match (back(i2, h2, h), back(j2, w2, w)) {
            (Some(i), Some(j)) => k[[i, j]] * scale,
            _ => Complex32::new(0.0, 0.0),
        }
    });
    let kept2: Vec<usize> = kept.iter().filter_map(|&j| map(j, w, w2)).collect();
    anyhow::ensure!(
        !kept2.is_empty(),
        "no measured column lies inside the prior's k-space band"
    );
    let mut sidecar = m.sidecar.clone();
    sidecar.geometry = Geometry::Cartesian { h: h2, w: w2 };
    sidecar.mask = Mask::Columns {
        kept: kept2,
        generator: None,
    };
    sidecar.shape = vec![h2, w2];
    sidecar.pixel_spacing_mm = Some(to);
    Ok(Measurement {
        sidecar,
        data: MeasurementData::KSpace(k2),
        sinogram_mask: None,
        metal_mask: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::ct_scan::{projector, CtNoise, CtScan};
    use medsgm_operators::resample::resample;
    use medsgm_operators::LinearOperator;

    /// A smooth disc image of side `n` (values in [0, 1]).
    fn disc(n: usize) -> Array2<f32> {
        let c = (n as f32 - 1.0) / 2.0;
        Array2::from_shape_fn((n, n), |(i, j)| {
            let r = (i as f32 - c).hypot(j as f32 - c) / n as f32;
            (1.0 - (r / 0.35).powi(2)).max(0.0)
                + 0.3 * (-(((i as f32 - c - 0.1 * n as f32) / (0.08 * n as f32)).powi(2))).exp()
        })
    }

    /// On the coarser grid, the rescaled operator applied to the resampled image reproduces the
    /// rescaled data (parallel and fan beam): the geometry and the line-integral units map
    /// consistently. A measurement without a recorded spacing is left alone.
    #[test]
    fn rescaled_measurement_matches_the_resampled_image() {
        let (n, s) = (128, 0.5f32);
        let image = disc(n);
        let fan = medsgm_operators::FanGeometry::full_scan(
            n,
            90,
            2.0 * n as f32,
            4.0 * n as f32,
            medsgm_operators::DetectorKind::Equiangular,
            medsgm_operators::FanGeometry::default_n_det(
                n,
                2.0 * n as f32,
                medsgm_operators::DetectorKind::Equiangular,
            ),
        );
        let geometries = [
            Geometry::ParallelBeam {
                size: n,
                angles_deg: (0..45).map(|k| k as f32 * 4.0).collect(),
                n_det: 182,
                det_spacing: 1.0,
            },
            Geometry::fan_beam(&fan),
        ];
        for geometry in geometries {
            let views = match &geometry {
                Geometry::ParallelBeam { angles_deg, .. }
                | Geometry::FanBeam { angles_deg, .. } => angles_deg.len(),
                Geometry::Cartesian { .. } => unreachable!(),
            };
            let scan = CtScan {
                geometry,
                kept: (0..views).collect(),
                noise: CtNoise::None,
            };
            let mut m = scan.simulate(&image, 0, false).unwrap();
            assert!(at_pixel_spacing(&m, 1.0).unwrap().is_none());
            m.sidecar.pixel_spacing_mm = Some(s);
            let coarse = at_pixel_spacing(&m, 1.0).unwrap().unwrap();
            assert_eq!(coarse.sidecar.image_shape(), (64, 64));
            assert_eq!(coarse.sidecar.pixel_spacing_mm, Some(1.0));
            let MeasurementData::Sinogram(y) = &coarse.data else {
                unreachable!()
            };
            let predicted = projector(&coarse.sidecar.geometry, None)
                .unwrap()
                .forward(&resample(&image, (64, 64)).view().into_dyn());
            let diff = (&predicted - &y.view().into_dyn())
                .mapv(|v| v * v)
                .sum()
                .sqrt();
            let norm = y.mapv(|v| v * v).sum().sqrt();
            assert!(
                diff / norm < 0.03,
                "{:?}: relative error {}",
                coarse.sidecar.geometry.radon_geometry(None).is_some(),
                diff / norm
            );
        }
    }

    /// MRI: the k-space re-sampled on a 2× coarser grid (the centre, scaled for the unitary
    /// transform) matches the k-space of the image resampled to that grid, on the measured
    /// columns that remain in the band; a 2× finer grid keeps every measured column.
    #[test]
    fn rescaled_kspace_matches_the_resampled_image() {
        use crate::io::measurement::{Noise, Sidecar};
        use crate::task::Problem;
        use medsgm_operators::{Fft2, RealInput};
        let n = 128;
        let image = disc(n);
        let fft = RealInput::new(Fft2::new(n, n).unwrap());
        let k = fft
            .forward(&image.view().into_dyn())
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let kept: Vec<usize> = (0..n)
            .filter(|j| j % 3 == 0 || (56..72).contains(j))
            .collect();
        let data = MeasurementData::KSpace(k);
        let mut sidecar = Sidecar::new(
            Problem::Mri,
            &data,
            Geometry::Cartesian { h: n, w: n },
            Mask::Columns {
                kept: kept.clone(),
                generator: None,
            },
            Noise::None,
            "image units",
        );
        sidecar.pixel_spacing_mm = Some(0.5);
        let m = Measurement {
            sidecar,
            data,
            sinogram_mask: None,
            metal_mask: None,
        };
        let coarse = at_pixel_spacing(&m, 1.0).unwrap().unwrap();
        assert_eq!(coarse.sidecar.image_shape(), (64, 64));
        coarse.sidecar.validate().unwrap();
        let (MeasurementData::KSpace(k2), Mask::Columns { kept: kept2, .. }) =
            (&coarse.data, &coarse.sidecar.mask)
        else {
            unreachable!()
        };
        let want = RealInput::new(Fft2::new(64, 64).unwrap())
            .forward(&resample(&image, (64, 64)).view().into_dyn())
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let (mut diff, mut norm) = (0.0f64, 0.0f64);
        for &j in kept2 {
            for i in 0..64 {
                diff += f64::from((k2[[i, j]] - want[[i, j]]).norm_sqr());
                norm += f64::from(want[[i, j]].norm_sqr());
            }
        }
        assert!(
            (diff / norm).sqrt() < 0.05,
            "relative error {}",
            (diff / norm).sqrt()
        );
        let fine = at_pixel_spacing(&m, 0.25).unwrap().unwrap();
        let Mask::Columns { kept: kept4, .. } = &fine.sidecar.mask else {
            unreachable!()
        };
        assert_eq!(fine.sidecar.image_shape(), (256, 256));
        assert_eq!(kept4.len(), kept.len());
    }
}
