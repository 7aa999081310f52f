//! Inner loops of the fan-beam Joseph projector and its transpose, on one padded image line
//! (one leading and two trailing zeros; see [`super::rays`]).

/// out[q] += the linear interpolation of `line` at u_q = max(b[q] + w·c[q], 0) (indices clamped
/// to the padding, which holds zeros).
#[inline(always)]
pub(crate) fn gather_line(out: &mut [f32], line: &[f32], b: &[f32], c: &[f32], w: f32) {
    let last = line.len() - 2;
    for ((o, &bq), &cq) in out.iter_mut().zip(b).zip(c) {
        let u = (bq + w * cq).max(0.0);
        let j = (u as usize).min(last);
        let f = u - j as f32;
        let (v0, v1) = (line[j], line[j + 1]);
        *o += v0 + f * (v1 - v0);
    }
}

/// The transpose of [`gather_line`]: acc[j] += v[q](1 − f), acc[j+1] += v[q] f for the same
/// j = ⌊u_q⌋, f = u_q − j.
#[inline(always)]
pub(crate) fn scatter_line(acc: &mut [f32], v: &[f32], b: &[f32], c: &[f32], w: f32) {
    let last = acc.len() - 2;
    for ((&vq, &bq), &cq) in v.iter().zip(b).zip(c) {
        let u = (bq + w * cq).max(0.0);
        let j = (u as usize).min(last);
        let f = u - j as f32;
        let hi = vq * f;
        acc[j] += vq - hi;
        acc[j + 1] += hi;
    }
}

/// [`gather_line`] with AVX2 gathers on x86-64 CPUs that have AVX2 and FMA.
pub(crate) fn gather(out: &mut [f32], line: &[f32], b: &[f32], c: &[f32], w: f32) {
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: AVX2 and FMA were detected at run time.
        unsafe { avx2::gather_line(out, line, b, c, w) };
        return;
    }
    gather_line(out, line, b, c, w);
}

/// One image row of one view in fan-beam FBP's back-projection: the pixel j has distance
/// d_j = d0 + j·dd from the source along the central ray and l_j = l0 + j·dl across it, fan
/// angle atan(l/d), padded fine-bin index m = slope·(l/d or atan(l/d)) + origin (clamped to
/// [0, last]) and weight scale/d² (flat) or scale/(d² + l²) (equiangular).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowLine {
    pub(crate) d0: f32,
    pub(crate) l0: f32,
    pub(crate) dd: f32,
    pub(crate) dl: f32,
    pub(crate) slope: f32,
    pub(crate) origin: f32,
    pub(crate) scale: f32,
    pub(crate) last: f32,
}

/// out[j] += weight_j · interp(row, m_j) for the pixels of `line` ([`RowLine`]); `EQUIANGULAR`
/// selects the detector's map from l/d to the bin index and the distance weight. Uses AVX2
/// where available.
pub(crate) fn backproject_row<const EQUIANGULAR: bool>(
    out: &mut [f32],
    row: &[f32],
    line: &RowLine,
) {
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: AVX2 and FMA were detected at run time.
        unsafe { avx2::backproject_row::<EQUIANGULAR>(out, row, line) };
        return;
    }
    backproject_row_portable::<EQUIANGULAR>(out, row, line, 0);
}

/// The portable loop of [`backproject_row`] from pixel `from` on.
#[inline(always)]
fn backproject_row_portable<const EQUIANGULAR: bool>(
    out: &mut [f32],
    row: &[f32],
    line: &RowLine,
    from: usize,
) {
    for (j, o) in out.iter_mut().enumerate().skip(from) {
        let (d, l) = (line.d0 + line.dd * j as f32, line.l0 + line.dl * j as f32);
        let t = l / d;
        let (angle, dist2) = if EQUIANGULAR {
            (atan(t), d * d + l * l)
        } else {
            (t, d * d)
        };
        let m = (angle * line.slope + line.origin).clamp(0.0, line.last);
        let k = m as usize;
        let f = m - k as f32;
        let (v0, v1) = (row[k], row[k + 1]);
        *o += line.scale / dist2 * (v0 + f * (v1 - v0));
    }
}

/// Coefficients of Cephes' `atanf` polynomial on |x| ≤ tan(π/8), highest degree first.
const ATAN_POLY: [f32; 4] = [
    8.053_744_5e-2,
    -1.387_768_6e-1,
    1.997_771_1e-1,
    -3.333_295e-1,
];
/// tan(3π/8), the upper range-reduction threshold of `atanf`.
const TAN_3PI_8: f32 = 2.414_213_6;
/// tan(π/8), the lower range-reduction threshold of `atanf`.
const TAN_PI_8: f32 = 0.414_213_57;

/// atan(t) in f32 to about 1e-7 relative (Cephes `atanf`: reduction to |x| ≤ tan(π/8), then
/// an odd degree-9 polynomial).
#[inline(always)]
pub(crate) fn atan(t: f32) -> f32 {
    use std::f32::consts::{FRAC_PI_2, FRAC_PI_4};
    let a = t.abs();
    let (x, base) = if a > TAN_3PI_8 {
        (-1.0 / a, FRAC_PI_2)
    } else if a > TAN_PI_8 {
        ((a - 1.0) / (a + 1.0), FRAC_PI_4)
    } else {
        (a, 0.0)
    };
    let z = x * x;
    let p = ATAN_POLY.iter().fold(0.0f32, |acc, &c| acc * z + c);
    (base + (p * z * x + x)).copysign(t)
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    /// Whether the CPU has AVX2 and FMA (cached by the standard library).
    #[inline]
    pub(crate) fn available() -> bool {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }

    /// [`super::gather_line`] on 8 rays at a time.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `line.len()` < 2³¹; `b` and `c` at least as long as
    /// `out`.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn gather_line(out: &mut [f32], line: &[f32], b: &[f32], c: &[f32], w: f32) {
        let last = _mm256_set1_epi32(line.len() as i32 - 2);
        let (vw, zero) = (_mm256_set1_ps(w), _mm256_setzero_ps());
        let n8 = out.len() / 8 * 8;
        let mut q = 0usize;
        while q < n8 {
            let bq = _mm256_loadu_ps(b.as_ptr().add(q));
            let cq = _mm256_loadu_ps(c.as_ptr().add(q));
            let u = _mm256_max_ps(_mm256_fmadd_ps(vw, cq, bq), zero);
            let j = _mm256_min_epi32(_mm256_cvttps_epi32(u), last);
            let f = _mm256_sub_ps(u, _mm256_cvtepi32_ps(j));
            // SAFETY: 0 ≤ j ≤ line.len() − 2, so j and j + 1 index `line`.
            let v0 = _mm256_i32gather_ps::<4>(line.as_ptr(), j);
            let v1 = _mm256_i32gather_ps::<4>(line.as_ptr().add(1), j);
            let v = _mm256_fmadd_ps(f, _mm256_sub_ps(v1, v0), v0);
            let o = out.as_mut_ptr().add(q);
            _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), v));
            q += 8;
        }
        super::gather_line(&mut out[n8..], line, &b[n8..], &c[n8..], w);
    }

    /// [`super::atan`] on 8 lanes.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn atan(t: __m256) -> __m256 {
        use std::f32::consts::{FRAC_PI_2, FRAC_PI_4};
        let sign = _mm256_set1_ps(-0.0);
        let a = _mm256_andnot_ps(sign, t);
        let one = _mm256_set1_ps(1.0);
        let big = _mm256_cmp_ps::<_CMP_GT_OQ>(a, _mm256_set1_ps(super::TAN_3PI_8));
        let mid = _mm256_cmp_ps::<_CMP_GT_OQ>(a, _mm256_set1_ps(super::TAN_PI_8));
        let x_big = _mm256_div_ps(_mm256_set1_ps(-1.0), a);
        let x_mid = _mm256_div_ps(_mm256_sub_ps(a, one), _mm256_add_ps(a, one));
        let x = _mm256_blendv_ps(_mm256_blendv_ps(a, x_mid, mid), x_big, big);
        let base = _mm256_blendv_ps(
            _mm256_and_ps(mid, _mm256_set1_ps(FRAC_PI_4)),
            _mm256_set1_ps(FRAC_PI_2),
            big,
        );
        let z = _mm256_mul_ps(x, x);
        let mut p = _mm256_setzero_ps();
        for c in super::ATAN_POLY {
            p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(c));
        }
        let r = _mm256_add_ps(base, _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x));
        _mm256_or_ps(r, _mm256_and_ps(sign, t))
    }

    /// [`super::backproject_row`] on 8 pixels at a time.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `row.len()` < 2³¹ and `line.last` ≤ `row.len()` − 2.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn backproject_row<const EQUIANGULAR: bool>(
        out: &mut [f32],
        row: &[f32],
        line: &super::RowLine,
    ) {
        let lanes = _mm256_setr_ps(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0);
        let (d0, l0) = (_mm256_set1_ps(line.d0), _mm256_set1_ps(line.l0));
        let (dd, dl) = (_mm256_set1_ps(line.dd), _mm256_set1_ps(line.dl));
        let (slope, origin) = (_mm256_set1_ps(line.slope), _mm256_set1_ps(line.origin));
        let (scale, last) = (_mm256_set1_ps(line.scale), _mm256_set1_ps(line.last));
        let zero = _mm256_setzero_ps();
        let n8 = out.len() / 8 * 8;
        let mut j = 0usize;
        while j < n8 {
            let jf = _mm256_add_ps(_mm256_set1_ps(j as f32), lanes);
            let d = _mm256_fmadd_ps(dd, jf, d0);
            let l = _mm256_fmadd_ps(dl, jf, l0);
            let t = _mm256_div_ps(l, d);
            let (angle, dist2) = if EQUIANGULAR {
                (atan(t), _mm256_fmadd_ps(l, l, _mm256_mul_ps(d, d)))
            } else {
                (t, _mm256_mul_ps(d, d))
            };
            let m = _mm256_min_ps(
                _mm256_max_ps(_mm256_fmadd_ps(angle, slope, origin), zero),
                last,
            );
            let k = _mm256_cvttps_epi32(m);
            let f = _mm256_sub_ps(m, _mm256_cvtepi32_ps(k));
            // SAFETY: 0 ≤ k ≤ last ≤ row.len() − 2, so k and k + 1 index `row`.
            let v0 = _mm256_i32gather_ps::<4>(row.as_ptr(), k);
            let v1 = _mm256_i32gather_ps::<4>(row.as_ptr().add(1), k);
            let v = _mm256_fmadd_ps(f, _mm256_sub_ps(v1, v0), v0);
            let w = _mm256_div_ps(scale, dist2);
            let o = out.as_mut_ptr().add(j);
            _mm256_storeu_ps(o, _mm256_fmadd_ps(w, v, _mm256_loadu_ps(o)));
            j += 8;
        }
        super::backproject_row_portable::<EQUIANGULAR>(out, row, line, n8);
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// The polynomial atan matches the library's to f32 rounding over the range of fan angles.
    #[test]
    fn atan_matches_std() {
        for i in -4000..=4000 {
            let t = i as f32 * 2.5e-3 * (1.0 + (i as f32).abs() * 1e-3);
            let (a, b) = (atan(t), t.atan());
            assert!((a - b).abs() <= 2e-7 * (1.0 + b.abs()), "{t}: {a} vs {b}");
        }
    }

    /// The AVX2 back-projection row matches the portable one for both detector kinds.
    #[test]
    fn avx2_backprojection_matches_portable() {
        if !avx2::available() {
            return;
        }
        let row: Vec<f32> = (0..60).map(|i| ((i * 29) % 17) as f32 - 8.0).collect();
        let line = RowLine {
            d0: 90.0,
            l0: -40.0,
            dd: 0.6,
            dl: 0.8,
            slope: 40.0,
            origin: 30.0,
            scale: 2.0,
            last: 58.0,
        };
        let flat = RowLine {
            slope: 30.0,
            ..line
        };
        let (mut a, mut b) = (vec![0.25f32; 37], vec![0.25f32; 37]);
        let (mut c, mut d) = (vec![0.25f32; 37], vec![0.25f32; 37]);
        backproject_row_portable::<true>(&mut a, &row, &line, 0);
        backproject_row_portable::<false>(&mut c, &row, &flat, 0);
        // SAFETY: AVX2/FMA checked above; last = row.len() − 2.
        unsafe {
            avx2::backproject_row::<true>(&mut b, &row, &line);
            avx2::backproject_row::<false>(&mut d, &row, &flat);
        }
        for (x, y) in a.iter().zip(&b).chain(c.iter().zip(&d)) {
            assert!((x - y).abs() < 1e-4 * (1.0 + x.abs()), "{x} vs {y}");
        }
    }

    /// The AVX2 gather computes the same values as the portable loop (including remainders and
    /// rays past either end of the line).
    #[test]
    fn avx2_gather_matches_portable_gather() {
        if !avx2::available() {
            return;
        }
        let line: Vec<f32> = (0..40).map(|i| ((i * 37) % 23) as f32 - 11.0).collect();
        let b: Vec<f32> = (0..29).map(|q| -3.0 + 1.7 * q as f32).collect();
        let c: Vec<f32> = (0..29).map(|q| 0.9 - 0.05 * q as f32).collect();
        let mut a = vec![0.5f32; 29];
        let mut v = a.clone();
        gather_line(&mut a, &line, &b, &c, 2.5);
        // SAFETY: AVX2/FMA checked above.
        unsafe { avx2::gather_line(&mut v, &line, &b, &c, 2.5) };
        for (x, y) in a.iter().zip(&v) {
            assert!((x - y).abs() < 1e-4 * (1.0 + x.abs()), "{x} vs {y}");
        }
    }
}
