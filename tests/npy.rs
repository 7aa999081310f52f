//! NPY reader/writer: NumPy-written fixtures (data-scripts/make_npy_fixtures.py), round trips
//! for every dtype and layout, and a corpus of malformed files that must give errors, not panics.

use medsgm::io::npy::{
    parse_npy, read_npy, to_npy_bytes, write_npy, NpyArray, NpyError, NpyLayout,
};
use ndarray::{ArrayD, IxDyn};
use num_complex::Complex32;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/npy")
        .join(name)
}

/// value(i) of the fixture script for flat C-order index i.
fn real(i: usize) -> f64 {
    i as f64 - 7.0 + 0.5
}

#[test]
fn numpy_fixtures_decode_to_the_generating_formula() {
    for tag in ["le", "be"] {
        for order in ["C", "F"] {
            let read =
                |code: &str| read_npy(&fixture(&format!("{code}_{tag}_{order}.npy"))).unwrap();
            let flat = |i: usize| -> [usize; 3] { [i / 12, (i / 4) % 3, i % 4] };
            match read("u1") {
                NpyArray::U8(a) => (0..24).for_each(|i| assert_eq!(a[IxDyn(&flat(i))], i as u8)),
                other => panic!("u1 read as {:?}", other.dtype()),
            }
            match read("i2") {
                NpyArray::I16(a) => {
                    (0..24).for_each(|i| assert_eq!(a[IxDyn(&flat(i))], i as i16 - 7))
                }
                other => panic!("i2 read as {:?}", other.dtype()),
            }
            match read("u2") {
                NpyArray::U16(a) => {
                    (0..24).for_each(|i| assert_eq!(a[IxDyn(&flat(i))], 2000 * i as u16 + 7))
                }
                other => panic!("u2 read as {:?}", other.dtype()),
            }
            match read("f4") {
                NpyArray::F32(a) => {
                    assert_eq!(a.shape(), &[2, 3, 4]);
                    (0..24).for_each(|i| assert_eq!(a[IxDyn(&flat(i))], real(i) as f32))
                }
                other => panic!("f4 read as {:?}", other.dtype()),
            }
            match read("f8") {
                NpyArray::F64(a) => (0..24).for_each(|i| assert_eq!(a[IxDyn(&flat(i))], real(i))),
                other => panic!("f8 read as {:?}", other.dtype()),
            }
            match read("c8") {
                NpyArray::C64(a) => (0..24).for_each(|i| {
                    assert_eq!(
                        a[IxDyn(&flat(i))],
                        Complex32::new(real(i) as f32, -2.0 * i as f32)
                    )
                }),
                other => panic!("c8 read as {:?}", other.dtype()),
            }
        }
    }
}

#[test]
fn numpy_scalar_and_empty_arrays() {
    match read_npy(&fixture("f4_scalar.npy")).unwrap() {
        NpyArray::F32(a) => {
            assert_eq!(a.ndim(), 0);
            assert_eq!(a[IxDyn(&[])], 3.25);
        }
        other => panic!("{:?}", other.dtype()),
    }
    assert_eq!(read_npy(&fixture("f4_empty.npy")).unwrap().shape(), &[0, 5]);
}

fn round_trip<T>(values: ArrayD<T>, unwrap: impl Fn(NpyArray) -> Option<ArrayD<T>>)
where
    T: medsgm::io::npy::NpyElement + PartialEq + std::fmt::Debug,
{
    for fortran_order in [false, true] {
        for big_endian in [false, true] {
            let layout = NpyLayout {
                fortran_order,
                big_endian,
            };
            let bytes = to_npy_bytes(&values.view(), layout);
            let back = unwrap(parse_npy(&bytes).unwrap()).expect("dtype changed");
            assert_eq!(back, values, "layout {layout:?}");
            // The data start on a 64-byte boundary, as NumPy writes them.
            let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert_eq!((10 + header_len) % 64, 0);
        }
    }
}

#[test]
fn round_trips_every_dtype_and_layout() {
    let shape = IxDyn(&[3, 5, 2]);
    round_trip(
        ArrayD::from_shape_fn(shape.clone(), |i| (i[0] * 10 + i[1] * 2 + i[2]) as u8),
        |a| match a {
            NpyArray::U8(a) => Some(a),
            _ => None,
        },
    );
    round_trip(
        ArrayD::from_shape_fn(shape.clone(), |i| {
            i[0] as i16 * 1000 - i[1] as i16 * 7 - 3000
        }),
        |a| match a {
            NpyArray::I16(a) => Some(a),
            _ => None,
        },
    );
    round_trip(
        ArrayD::from_shape_fn(shape.clone(), |i| {
            i[0] as f32 * 0.1 - i[1] as f32 + i[2] as f32 * 1e-7
        }),
        |a| match a {
            NpyArray::F32(a) => Some(a),
            _ => None,
        },
    );
    round_trip(
        ArrayD::from_shape_fn(shape.clone(), |i| i[0] as f64 / 3.0 - i[2] as f64 * 1e300),
        |a| match a {
            NpyArray::F64(a) => Some(a),
            _ => None,
        },
    );
    round_trip(
        ArrayD::from_shape_fn(shape, |i| {
            Complex32::new(i[0] as f32 - 1.5, i[1] as f32 * i[2] as f32)
        }),
        |a| match a {
            NpyArray::C64(a) => Some(a),
            _ => None,
        },
    );
}

#[test]
fn write_npy_goes_to_disk_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.npy");
    let a = ArrayD::from_shape_fn(IxDyn(&[4, 6]), |i| (i[0] * 6 + i[1]) as f32);
    write_npy(&p, &a.view()).unwrap();
    assert_eq!(read_npy(&p).unwrap(), NpyArray::F32(a));
}

/// A valid v1.0 file with the given header text (padded) and data bytes.
fn npy_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn malformed_inputs_are_errors_not_panics() {
    let good = to_npy_bytes(
        &ArrayD::from_shape_fn(IxDyn(&[2, 3]), |i| i[1] as f32).view(),
        NpyLayout::default(),
    );
    // Every truncation of a valid file is rejected.
    for cut in 0..good.len() {
        assert!(
            parse_npy(&good[..cut]).is_err(),
            "truncated at {cut} accepted"
        );
    }
    // An extra byte after the data is rejected too.
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(parse_npy(&long), Err(NpyError::DataLength { .. })));

    let f4 = [0u8; 24];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad magic", b"\x93NUMPZ\x01\x00\x10\x00{}".to_vec()),
        ("not npy at all", b"PK\x03\x04 this is a zip file".to_vec()),
        ("version 9", b"\x93NUMPY\x09\x00\x10\x00".to_vec()),
        ("header length beyond file", b"\x93NUMPY\x01\x00\xff\xff{'descr'".to_vec()),
        ("v2 huge header length", b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{".to_vec()),
        ("huge shape", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", &f4)),
        ("shape entry overflows usize", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", &f4)),
        ("shape × itemsize overflows", npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,), }", &f4)),
        ("wrong data length", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }", &f4)),
        ("unsupported dtype", npy_with_header("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", &f4)),
        ("object dtype", npy_with_header("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", &f4)),
        ("structured dtype", npy_with_header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", &f4)),
        ("missing key", npy_with_header("{'descr': '<f4', 'shape': (6,), }", &f4)),
        ("extra key", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", &f4)),
        ("duplicate key", npy_with_header("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", &f4)),
        ("negative dim", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }", &f4)),
        ("int instead of tuple", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (6), }", &f4)),
        ("bool as string", npy_with_header("{'descr': '<f4', 'fortran_order': 'False', 'shape': (6,), }", &f4)),
        ("unterminated string", npy_with_header("{'descr': '<f4", &f4)),
        ("unterminated dict", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (6,)", &f4)),
        ("trailing garbage", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), } xyz", &f4)),
        ("empty header", npy_with_header("", &f4)),
        ("'|' on a multi-byte type", npy_with_header("{'descr': '|f4', 'fortran_order': False, 'shape': (6,), }", &f4)),
        ("too many dimensions", npy_with_header(&format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}), }}", "1,".repeat(70)), &f4)),
    ];
    for (what, bytes) in cases {
        let r = std::panic::catch_unwind(|| parse_npy(&bytes));
        match r {
            Ok(Err(e)) => assert!(!e.to_string().is_empty(), "{what}"),
            Ok(Ok(_)) => panic!("malformed input accepted: {what}"),
            Err(_) => panic!("parser panicked on: {what}"),
        }
    }
}

#[test]
fn read_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.npy");
    std::fs::write(&p, b"\x93NUMPY\x01\x00\x05\x00{'d").unwrap();
    let msg = format!("{:#}", read_npy(&p).unwrap_err());
    assert!(
        msg.contains("broken.npy") && msg.contains("truncated"),
        "{msg}"
    );
    let missing = dir.path().join("missing.npy");
    let msg = format!("{:#}", read_npy(&missing).unwrap_err());
    assert!(msg.contains("missing.npy"), "{msg}");
}
