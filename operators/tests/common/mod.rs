//! Test helpers shared by the integration tests: a minimal .npy reader for the committed
//! fixtures and a piecewise-constant phantom.

#![allow(dead_code)]

use ndarray::Array2;
use std::path::PathBuf;

/// Path of a fixture file under operators/tests/fixtures/.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Reads a 2-D little-endian C-order .npy file of dtype '<f4' or '<f8' into f64.
pub fn read_npy_2d(rel: &str) -> Array2<f64> {
    let bytes = std::fs::read(fixture(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{rel}: not an .npy file");
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{rel}: {header}");
    let shape_str = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_str
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    assert_eq!(shape.len(), 2, "{rel}: expected 2-D, got {shape:?}");
    let data = &bytes[start + header_len..];
    let values: Vec<f64> = if header.contains("'<f4'") {
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect()
    } else if header.contains("'<f8'") {
        data.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    } else {
        panic!("{rel}: unsupported dtype in {header}")
    };
    Array2::from_shape_vec((shape[0], shape[1]), values).unwrap()
}

/// A piecewise-constant test image in [0, 1]: a bright disc with two darker rectangles and a small
/// bright disc, on a zero background.
pub fn piecewise_phantom(n: usize) -> Array2<f32> {
    let c = (n as f32 - 1.0) / 2.0;
    Array2::from_shape_fn((n, n), |(i, j)| {
        let (y, x) = ((i as f32 - c) / n as f32, (j as f32 - c) / n as f32);
        let mut v = 0.0;
        if x * x + y * y < 0.4 * 0.4 {
            v = 0.8;
            if (-0.25..-0.05).contains(&x) && (-0.2..0.15).contains(&y) {
                v = 0.3;
            }
            if (0.05..0.2).contains(&x) && (0.0..0.25).contains(&y) {
                v = 0.5;
            }
            if (x - 0.1).powi(2) + (y + 0.2).powi(2) < 0.06 * 0.06 {
                v = 1.0;
            }
        }
        v
    })
}

/// Relative L2 error ‖a − b‖ / ‖b‖ (f64 sums).
pub fn rel_l2(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    let den: f64 = b.iter().map(|&y| (y as f64).powi(2)).sum();
    (num / den).sqrt()
}
