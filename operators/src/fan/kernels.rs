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

/// Most image lines [`scatter_lines`] takes at once (the adjoint's block of lines per task).
pub(crate) const BLOCK_LINES: usize = 8;

/// The transpose of [`gather_line`] on up to [`BLOCK_LINES`] consecutive lines at once: `acc` holds padded lines of
/// length `stride`, line i at w = w0 + i, and every ray of `v`, `b`, `c` is scattered into every
/// line with [`scatter_line`]'s weights (a ray that misses a line, u ∉ [0, stride − 2), lands in
/// the zero padding: weight 1 at index 0 or both weights past index stride − 3, which the caller
/// discards). With AVX2, 8 rays' indices and weights are computed for all lines in vector
/// registers and then added line by line, so that consecutive additions go to different lines
/// and do not wait on each other.
pub(crate) fn scatter_lines(
    acc: &mut [f32],
    stride: usize,
    v: &[f32],
    b: &[f32],
    c: &[f32],
    w0: f32,
) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: AVX2 and FMA were detected at run time.
        done = unsafe { avx2::scatter_lines(acc, stride, v, b, c, w0) };
    }
    for (i, line) in acc.chunks_exact_mut(stride).enumerate() {
        scatter_line(line, &v[done..], &b[done..], &c[done..], w0 + i as f32);
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

/// Floats per record of the quarter-turn line layout ([`gather4`], [`scatter4_lines`]): one
/// value of each of the four quarter-turn rotations of the image.
pub(crate) const QUAD: usize = 4;

/// [`gather_line`] for the four views of a quarter-turn group at once: `recs` is a padded line
/// of records (`recs[4p..4p + 4]` = position p of the line in the four rotated images, see
/// [`super::projector`]), `acc` holds 8 partial sums per ray. Ray q at u_q = max(b[q] + w·c[q],
/// 0), j = ⌊u_q⌋ (clamped as in [`gather_line`]), f = u_q − j adds (1 − f)·record j into
/// `acc[8q..8q + 4]` and f·record j + 1 into `acc[8q + 4..8q + 8]` (the caller adds the halves),
/// so that a ray's update is one 8-wide multiply-add of the 8 contiguous floats at `recs[4j..]`.
#[inline(always)]
fn gather4_line(acc: &mut [f32], recs: &[f32], b: &[f32], c: &[f32], w: f32) {
    let last = recs.len() / QUAD - 2;
    for ((a, &bq), &cq) in acc.chunks_exact_mut(2 * QUAD).zip(b).zip(c) {
        let u = (bq + w * cq).max(0.0);
        let j = (u as usize).min(last);
        let f = u - j as f32;
        let r = &recs[QUAD * j..QUAD * j + 2 * QUAD];
        for s in 0..QUAD {
            a[s] += (1.0 - f) * r[s];
            a[QUAD + s] += f * r[QUAD + s];
        }
    }
}

/// [`gather4_line`], with AVX2 on x86-64 CPUs that have AVX2 and FMA (8 rays' indices and
/// weights in vector registers, one 8-float load and multiply-add per ray, no gathers).
pub(crate) fn gather4(acc: &mut [f32], recs: &[f32], b: &[f32], c: &[f32], w: f32) {
    assert!(
        acc.len() == 2 * QUAD * b.len() && c.len() == b.len() && recs.len() >= 2 * QUAD,
        "gather4: lengths"
    );
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: AVX2 and FMA were detected at run time; lengths checked above.
        unsafe { avx2::gather4_line(acc, recs, b, c, w) };
        return;
    }
    gather4_line(acc, recs, b, c, w);
}

/// The transpose of [`gather4_line`] on one padded line of accumulator records of 8 floats:
/// ray q (values `y4[4q..4q + 4]`, one per rotation) adds (1 − f)·y into `acc[8j..8j + 4]` and
/// f·y into `acc[8j + 4..8j + 8]` for the same j, f; the first half of record p belongs to
/// position p and the second half to position p + 1 (the caller adds them).
#[inline(always)]
fn scatter4_line(acc: &mut [f32], y4: &[f32], b: &[f32], c: &[f32], w: f32) {
    let last = acc.len() / (2 * QUAD) - 2;
    for ((y, &bq), &cq) in y4.chunks_exact(QUAD).zip(b).zip(c) {
        let u = (bq + w * cq).max(0.0);
        let j = (u as usize).min(last);
        let f = u - j as f32;
        let a = &mut acc[2 * QUAD * j..2 * QUAD * (j + 1)];
        for s in 0..QUAD {
            a[s] += (1.0 - f) * y[s];
            a[QUAD + s] += f * y[s];
        }
    }
}

/// [`scatter4_line`] on up to [`BLOCK_LINES`] consecutive lines at once: `acc` holds lines of
/// `stride` records of 8 floats, line i at w = w0 + i; every ray of `y4`, `b`, `c` is scattered
/// into every line (rays missing a line land in the padding records, which the caller
/// discards). With AVX2, 8 rays' indices and weights are computed for all lines in vector
/// registers and then added line by line, so that consecutive additions go to different lines.
pub(crate) fn scatter4_lines(
    acc: &mut [f32],
    stride: usize,
    y4: &[f32],
    b: &[f32],
    c: &[f32],
    w0: f32,
) {
    let line = 2 * QUAD * stride;
    assert!(
        stride >= 3
            && acc.len().is_multiple_of(line)
            && acc.len() / line <= BLOCK_LINES
            && y4.len() == QUAD * b.len()
            && c.len() == b.len(),
        "scatter4_lines: lengths"
    );
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: AVX2 and FMA were detected at run time; lengths checked above.
        done = unsafe { avx2::scatter4_lines(acc, stride, y4, b, c, w0) };
    }
    for (i, acc) in acc.chunks_exact_mut(line).enumerate() {
        let (y, b, c) = (&y4[QUAD * done..], &b[done..], &c[done..]);
        scatter4_line(acc, y, b, c, w0 + i as f32);
    }
}

/// One image row of one view in fan-beam FBP's back-projection: the pixel j has distance
/// d_j = d0 + j·dd from the source along the central ray and l_j = l0 + j·dl across it, reads
/// the view at grid index m = slope·l/d + origin (clamped to [0, last]) and has weight scale/d².
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

/// out[j] += scale/d_j² · q(m_j) for the pixels of `line` ([`RowLine`]). Uses AVX2 where
/// available.
/// `view` holds the samples q[k] on the grid, q(m) = q[k] + (m − k)(q[k+1] − q[k]) for
/// k = ⌊m⌋ ≤ `line.last` < `view.len()` − 1.
pub(crate) fn backproject_row(out: &mut [f32], view: &[f32], line: &RowLine) {
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: AVX2 and FMA were detected at run time.
        unsafe { avx2::backproject_row(out, view, line) };
        return;
    }
    backproject_row_portable(out, view, line, 0);
}

/// The portable loop of [`backproject_row`] from pixel `from` on.
#[inline(always)]
fn backproject_row_portable(out: &mut [f32], view: &[f32], line: &RowLine, from: usize) {
    for (j, o) in out.iter_mut().enumerate().skip(from) {
        let (d, l) = (line.d0 + line.dd * j as f32, line.l0 + line.dl * j as f32);
        let inv_d = 1.0 / d;
        let m = (l * inv_d * line.slope + line.origin).clamp(0.0, line.last);
        let k = m as usize;
        let f = m - k as f32;
        *o += line.scale * inv_d * inv_d * (view[k] + f * (view[k + 1] - view[k]));
    }
}

/// The back-projection of one image row for a quarter-turn group of four views
/// ([`super::fbp_plan`]): `rec` holds the group's interleaved samples, record k =
/// `rec[8k..8k + 8]` = [q₀..q₃ at k, q₀..q₃ at k+1 minus at k]; pixel j reads position
/// m_j = k + f of `line` ([`RowLine`], `line.last` < `rec.len()`/8) with weight w = scale/d_j²
/// and adds w·(q_v(k) + f·Δq_v(k)) for v = 0..4 into its 8 partial sums `acc[8j..8j + 8]`, the
/// first term into `acc[8j + v]` and the second into `acc[8j + 4 + v]` (the caller adds the two
/// halves), so that a pixel's update is one 8-wide multiply-add. Uses AVX2 where available.
pub(crate) fn backproject_row4(acc: &mut [f32], rec: &[f32], line: &RowLine) {
    assert!(
        line.last < (rec.len() / 8) as f32,
        "backproject_row4: records"
    );
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: AVX2 and FMA were detected at run time; the records cover `line.last`.
        unsafe { avx2::backproject_row4(acc, rec, line) };
        return;
    }
    backproject_row4_portable(acc, rec, line, 0);
}

/// The portable loop of [`backproject_row4`] from pixel `from` on.
#[inline(always)]
fn backproject_row4_portable(acc: &mut [f32], rec: &[f32], line: &RowLine, from: usize) {
    for (j, out) in acc.chunks_exact_mut(8).enumerate().skip(from) {
        let (d, l) = (line.d0 + line.dd * j as f32, line.l0 + line.dl * j as f32);
        let inv_d = 1.0 / d;
        let m = (l * inv_d * line.slope + line.origin).clamp(0.0, line.last);
        let k = m as usize;
        let f = m - k as f32;
        let w = line.scale * inv_d * inv_d;
        let r = &rec[8 * k..8 * k + 8];
        let wf = w * f;
        for v in 0..4 {
            out[v] += w * r[v];
            out[4 + v] += wf * r[4 + v];
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use super::{BLOCK_LINES, QUAD};
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

    /// [`super::scatter_lines`] for the leading multiple of 8 rays; returns how many rays it
    /// scattered.
    ///
    /// # Safety
    /// AVX2 and FMA; `stride` < 2³¹, ≥ 3 and dividing `acc.len()` (at most
    /// [`BLOCK_LINES`] lines); `b`, `c` at least as long as `v`.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn scatter_lines(
        acc: &mut [f32],
        stride: usize,
        v: &[f32],
        b: &[f32],
        c: &[f32],
        w0: f32,
    ) -> usize {
        let lines = acc.len() / stride;
        debug_assert!(lines <= BLOCK_LINES);
        let last = _mm256_set1_epi32(stride as i32 - 2);
        let zero = _mm256_setzero_ps();
        let mut idx = [[0i32; 8]; BLOCK_LINES];
        let mut lo = [[0.0f32; 8]; BLOCK_LINES];
        let mut hi = [[0.0f32; 8]; BLOCK_LINES];
        let n8 = v.len() / 8 * 8;
        let mut q = 0usize;
        while q < n8 {
            let bq = _mm256_loadu_ps(b.as_ptr().add(q));
            let cq = _mm256_loadu_ps(c.as_ptr().add(q));
            let vq = _mm256_loadu_ps(v.as_ptr().add(q));
            for i in 0..lines {
                let w = _mm256_set1_ps(w0 + i as f32);
                let u = _mm256_max_ps(_mm256_fmadd_ps(w, cq, bq), zero);
                let j = _mm256_min_epi32(_mm256_cvttps_epi32(u), last);
                let up = _mm256_mul_ps(vq, _mm256_sub_ps(u, _mm256_cvtepi32_ps(j)));
                _mm256_storeu_si256(idx[i].as_mut_ptr() as *mut __m256i, j);
                _mm256_storeu_ps(hi[i].as_mut_ptr(), up);
                _mm256_storeu_ps(lo[i].as_mut_ptr(), _mm256_sub_ps(vq, up));
            }
            for lane in 0..8 {
                for i in 0..lines {
                    // SAFETY: 0 ≤ j ≤ stride − 2, so line i's j and j + 1 are inside `acc`.
                    let p = acc.as_mut_ptr().add(i * stride + idx[i][lane] as usize);
                    *p += lo[i][lane];
                    *p.add(1) += hi[i][lane];
                }
            }
            q += 8;
        }
        n8
    }

    /// Lane permutations picking ray l's weights [1 − f ×4, f ×4] out of
    /// [1 − f₀..₃, f₀..₃] (l < 4) or [1 − f₄..₇, f₄..₇] (l − 4).
    #[target_feature(enable = "avx2")]
    unsafe fn ray_picks() -> [__m256i; 4] {
        [
            _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4),
            _mm256_setr_epi32(1, 1, 1, 1, 5, 5, 5, 5),
            _mm256_setr_epi32(2, 2, 2, 2, 6, 6, 6, 6),
            _mm256_setr_epi32(3, 3, 3, 3, 7, 7, 7, 7),
        ]
    }

    /// Index j = ⌊u⌋ (clamped to [0, last]) and the halves [1 − f₀..₃, f₀..₃],
    /// [1 − f₄..₇, f₄..₇] of 8 rays at u = max(w·c + b, 0).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn ray_weights(
        w: __m256,
        b: __m256,
        c: __m256,
        last: __m256i,
    ) -> (__m256i, [__m256; 2]) {
        let u = _mm256_max_ps(_mm256_fmadd_ps(w, c, b), _mm256_setzero_ps());
        let j = _mm256_min_epi32(_mm256_cvttps_epi32(u), last);
        let f = _mm256_sub_ps(u, _mm256_cvtepi32_ps(j));
        let g = _mm256_sub_ps(_mm256_set1_ps(1.0), f);
        (
            j,
            [
                _mm256_permute2f128_ps::<0x20>(g, f),
                _mm256_permute2f128_ps::<0x31>(g, f),
            ],
        )
    }

    /// [`super::gather4_line`] on 8 rays at a time.
    ///
    /// # Safety
    /// AVX2 and FMA; `recs.len()` < 2³¹, ≥ 8 and a multiple of 4; `acc.len()` = 8·`b.len()`,
    /// `c` as long as `b`.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn gather4_line(acc: &mut [f32], recs: &[f32], b: &[f32], c: &[f32], w: f32) {
        let last = _mm256_set1_epi32((recs.len() / QUAD) as i32 - 2);
        let vw = _mm256_set1_ps(w);
        let pick = ray_picks();
        let mut idx = [0i32; 8];
        let n8 = b.len() / 8 * 8;
        let mut q = 0usize;
        while q < n8 {
            let bq = _mm256_loadu_ps(b.as_ptr().add(q));
            let cq = _mm256_loadu_ps(c.as_ptr().add(q));
            let (j, halves) = ray_weights(vw, bq, cq, last);
            _mm256_storeu_si256(idx.as_mut_ptr() as *mut __m256i, _mm256_slli_epi32::<2>(j));
            for lane in 0..8 {
                let wv = _mm256_permutevar8x32_ps(halves[lane / 4], pick[lane % 4]);
                // SAFETY: 0 ≤ j ≤ recs.len()/4 − 2, so records j and j + 1 are inside `recs`;
                // ray q + lane < b.len() has its 8 sums inside `acc`.
                let r = _mm256_loadu_ps(recs.as_ptr().add(idx[lane] as usize));
                let o = acc.as_mut_ptr().add(2 * QUAD * (q + lane));
                _mm256_storeu_ps(o, _mm256_fmadd_ps(wv, r, _mm256_loadu_ps(o)));
            }
            q += 8;
        }
        super::gather4_line(&mut acc[2 * QUAD * n8..], recs, &b[n8..], &c[n8..], w);
    }

    /// [`super::scatter4_lines`] for the leading multiple of 8 rays; returns how many rays it
    /// scattered.
    ///
    /// # Safety
    /// AVX2 and FMA; `stride` < 2²⁷, ≥ 3, and 8·`stride` dividing `acc.len()` (at most
    /// [`BLOCK_LINES`] lines); `y4.len()` = 4·`b.len()`, `c` as long as `b`.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn scatter4_lines(
        acc: &mut [f32],
        stride: usize,
        y4: &[f32],
        b: &[f32],
        c: &[f32],
        w0: f32,
    ) -> usize {
        let line = 2 * QUAD * stride;
        let lines = acc.len() / line;
        debug_assert!(lines <= BLOCK_LINES);
        let last = _mm256_set1_epi32(stride as i32 - 2);
        let pick = ray_picks();
        let mut idx = [[0i32; 8]; BLOCK_LINES];
        let mut weights = [[_mm256_setzero_ps(); 2]; BLOCK_LINES];
        let n8 = b.len() / 8 * 8;
        let mut q = 0usize;
        while q < n8 {
            let bq = _mm256_loadu_ps(b.as_ptr().add(q));
            let cq = _mm256_loadu_ps(c.as_ptr().add(q));
            for i in 0..lines {
                let w = _mm256_set1_ps(w0 + i as f32);
                let (j, halves) = ray_weights(w, bq, cq, last);
                let at = _mm256_add_epi32(
                    _mm256_slli_epi32::<3>(j),
                    _mm256_set1_epi32((i * line) as i32),
                );
                _mm256_storeu_si256(idx[i].as_mut_ptr() as *mut __m256i, at);
                weights[i] = halves;
            }
            for lane in 0..8 {
                let y = _mm_loadu_ps(y4.as_ptr().add(QUAD * (q + lane)));
                let y = _mm256_set_m128(y, y);
                for i in 0..lines {
                    let wv = _mm256_permutevar8x32_ps(weights[i][lane / 4], pick[lane % 4]);
                    // SAFETY: 0 ≤ j ≤ stride − 2, so record j of line i is inside `acc`.
                    let p = acc.as_mut_ptr().add(idx[i][lane] as usize);
                    _mm256_storeu_ps(p, _mm256_fmadd_ps(wv, y, _mm256_loadu_ps(p)));
                }
            }
            q += 8;
        }
        n8
    }

    /// 1/x on 8 lanes: the hardware estimate refined by one Newton step, r(2 − x r)
    /// (relative error about 1e-7, without the latency of a division).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn recip(x: __m256) -> __m256 {
        let r = _mm256_rcp_ps(x);
        _mm256_fmadd_ps(r, _mm256_fnmadd_ps(x, r, _mm256_set1_ps(1.0)), r)
    }

    /// [`super::backproject_row4`] with the geometry of 8 pixels at a time in vector registers
    /// and each pixel's record read, weighted and accumulated as one 8-wide vector.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `line.last` < `rec.len()`/8 < 2²⁸.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn backproject_row4(acc: &mut [f32], rec: &[f32], line: &super::RowLine) {
        let lanes = _mm256_setr_ps(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0);
        let (d0, l0) = (_mm256_set1_ps(line.d0), _mm256_set1_ps(line.l0));
        let (dd, dl) = (_mm256_set1_ps(line.dd), _mm256_set1_ps(line.dl));
        let (slope, origin) = (_mm256_set1_ps(line.slope), _mm256_set1_ps(line.origin));
        let (scale, last) = (_mm256_set1_ps(line.scale), _mm256_set1_ps(line.last));
        let zero = _mm256_setzero_ps();
        // lanes p, p, p, p, p + 4, p + 4, p + 4, p + 4: pixel p's [w ×4, w·f ×4]
        let pick = [
            _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4),
            _mm256_setr_epi32(1, 1, 1, 1, 5, 5, 5, 5),
            _mm256_setr_epi32(2, 2, 2, 2, 6, 6, 6, 6),
            _mm256_setr_epi32(3, 3, 3, 3, 7, 7, 7, 7),
        ];
        let mut idx = [0i32; 8];
        let n8 = acc.len() / 8 / 8 * 8;
        let mut j = 0usize;
        while j < n8 {
            let jf = _mm256_add_ps(_mm256_set1_ps(j as f32), lanes);
            let d = _mm256_fmadd_ps(dd, jf, d0);
            let l = _mm256_fmadd_ps(dl, jf, l0);
            let inv_d = recip(d);
            let t = _mm256_mul_ps(l, inv_d);
            let m = _mm256_min_ps(_mm256_max_ps(_mm256_fmadd_ps(t, slope, origin), zero), last);
            let k = _mm256_cvttps_epi32(m);
            let f = _mm256_sub_ps(m, _mm256_cvtepi32_ps(k));
            let w = _mm256_mul_ps(scale, _mm256_mul_ps(inv_d, inv_d));
            let wf = _mm256_mul_ps(w, f);
            _mm256_storeu_si256(idx.as_mut_ptr() as *mut __m256i, _mm256_slli_epi32::<3>(k));
            // [w₀..w₃, wf₀..wf₃] and [w₄..w₇, wf₄..wf₇]
            let halves = [
                _mm256_permute2f128_ps::<0x20>(w, wf),
                _mm256_permute2f128_ps::<0x31>(w, wf),
            ];
            for lane in 0..8 {
                let weights = _mm256_permutevar8x32_ps(halves[lane / 4], pick[lane % 4]);
                // SAFETY: 0 ≤ k ≤ last < rec.len()/8, so record k is inside `rec`; pixel
                // j + lane < n8 is inside `acc`.
                let r = _mm256_loadu_ps(rec.as_ptr().add(idx[lane] as usize));
                let o = acc.as_mut_ptr().add(8 * (j + lane));
                _mm256_storeu_ps(o, _mm256_fmadd_ps(weights, r, _mm256_loadu_ps(o)));
            }
            j += 8;
        }
        super::backproject_row4_portable(acc, rec, line, n8);
    }

    /// [`super::backproject_row`] on 8 pixels at a time.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `view.len()` < 2³¹ and `line.last` ≤ `view.len()` − 2.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn backproject_row(out: &mut [f32], view: &[f32], line: &super::RowLine) {
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
            let inv_d = recip(d);
            let t = _mm256_mul_ps(l, inv_d);
            let m = _mm256_min_ps(_mm256_max_ps(_mm256_fmadd_ps(t, slope, origin), zero), last);
            let k = _mm256_cvttps_epi32(m);
            let f = _mm256_sub_ps(m, _mm256_cvtepi32_ps(k));
            // SAFETY: 0 ≤ k ≤ last < view.len() − 1, so k and k + 1 index `view`.
            let v0 = _mm256_i32gather_ps::<4>(view.as_ptr(), k);
            let v1 = _mm256_i32gather_ps::<4>(view.as_ptr().add(1), k);
            let w = _mm256_mul_ps(scale, _mm256_mul_ps(inv_d, inv_d));
            let o = out.as_mut_ptr().add(j);
            _mm256_storeu_ps(
                o,
                _mm256_fmadd_ps(
                    w,
                    _mm256_fmadd_ps(f, _mm256_sub_ps(v1, v0), v0),
                    _mm256_loadu_ps(o),
                ),
            );
            j += 8;
        }
        super::backproject_row_portable(out, view, line, n8);
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// The AVX2 back-projection row matches the portable one (a shallow and a steep line).
    #[test]
    fn avx2_backprojection_matches_portable() {
        if !avx2::available() {
            return;
        }
        let view: Vec<f32> = (0..60).map(|i| ((i * 29) % 17) as f32 - 8.0).collect();
        let shallow = RowLine {
            d0: 90.0,
            l0: -40.0,
            dd: 0.6,
            dl: 0.8,
            slope: 40.0,
            origin: 30.0,
            scale: 2.0,
            last: 58.0,
        };
        let steep = RowLine {
            slope: 400.0,
            ..shallow
        };
        for line in [shallow, steep] {
            let (mut a, mut b) = (vec![0.25f32; 37], vec![0.25f32; 37]);
            backproject_row_portable(&mut a, &view, &line, 0);
            // SAFETY: AVX2/FMA checked above; last = view.len() − 2.
            unsafe { avx2::backproject_row(&mut b, &view, &line) };
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-4 * (1.0 + x.abs()), "{x} vs {y}");
            }
        }
    }

    /// The AVX2 four-view back-projection row matches the portable one (row lengths with and
    /// without a remainder, positions clamped at both ends).
    #[test]
    fn avx2_backprojection4_matches_portable() {
        if !avx2::available() {
            return;
        }
        let rec: Vec<f32> = (0..8 * 59).map(|i| ((i * 29) % 17) as f32 - 8.0).collect();
        let line = RowLine {
            d0: 90.0,
            l0: -60.0,
            dd: 0.6,
            dl: 0.8,
            slope: 60.0,
            origin: 30.0,
            scale: 2.0,
            last: 58.0,
        };
        for pixels in [37, 40] {
            let (mut a, mut b) = (vec![0.25f32; 4 * pixels], vec![0.25f32; 4 * pixels]);
            backproject_row4_portable(&mut a, &rec, &line, 0);
            // SAFETY: AVX2/FMA checked above; last < rec.len()/8.
            unsafe { avx2::backproject_row4(&mut b, &rec, &line) };
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-4 * (1.0 + x.abs()), "{x} vs {y}");
            }
        }
    }

    /// The AVX2 four-rotation gather and scatter compute what the portable loops do
    /// (remainders, rays past either end of the lines, a partial block of lines).
    #[test]
    fn avx2_quarter_turn_kernels_match_portable() {
        if !avx2::available() {
            return;
        }
        let stride = 40;
        let recs: Vec<f32> = (0..QUAD * stride)
            .map(|i| ((i * 37) % 23) as f32 - 11.0)
            .collect();
        let b: Vec<f32> = (0..29).map(|q| -3.0 + 1.7 * q as f32).collect();
        let c: Vec<f32> = (0..29).map(|q| 0.9 - 0.05 * q as f32).collect();
        let y4: Vec<f32> = (0..QUAD * 29)
            .map(|i| ((i * 13) % 7) as f32 - 3.0)
            .collect();
        let mut a = vec![0.5f32; 2 * QUAD * 29];
        let mut v = a.clone();
        gather4_line(&mut a, &recs, &b, &c, 2.5);
        // SAFETY: AVX2/FMA checked above; lengths as required.
        unsafe { avx2::gather4_line(&mut v, &recs, &b, &c, 2.5) };
        for (x, y) in a.iter().zip(&v) {
            assert!((x - y).abs() < 1e-4 * (1.0 + x.abs()), "gather {x} vs {y}");
        }
        for lines in [BLOCK_LINES, 3] {
            let mut a = vec![0.25f32; lines * 2 * QUAD * stride];
            let mut v = a.clone();
            for (i, acc) in a.chunks_exact_mut(2 * QUAD * stride).enumerate() {
                scatter4_line(acc, &y4, &b, &c, -1.5 + i as f32);
            }
            scatter4_lines(&mut v, stride, &y4, &b, &c, -1.5);
            for (x, y) in a.iter().zip(&v) {
                assert!((x - y).abs() < 1e-4 * (1.0 + x.abs()), "scatter {x} vs {y}");
            }
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
