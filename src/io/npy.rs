//! A hand-written reader and writer for NumPy's `.npy` format (format versions 1.0, 2.0 and 3.0,
//! NEP 1 / `numpy.lib.format`), for the element types medsgm exchanges: `u1`, `i2`, `f4`, `f8`
//! and `c8` (complex64), in C or Fortran order, little- or big-endian.
//!
//! The reader treats its input as hostile (it is fuzzed): it never panics and never allocates
//! more than the input's own size. It checks the magic string and version, the header length
//! against the data present and a fixed limit, parses the header dictionary with a strict
//! grammar (exactly the keys `descr`, `fortran_order`, `shape`), checks the shape product for
//! overflow, and requires the data to be exactly `prod(shape) · itemsize` bytes long.
//! The writer emits version 1.0 (2.0 when the header needs it) with the header padded so the data
//! start on a 64-byte boundary, as NumPy does.

use crate::io::atomic::write_bytes_atomic;
use anyhow::{Context, Result};
use ndarray::{ArrayD, ArrayViewD, IxDyn, ShapeBuilder};
use num_complex::Complex32;
use std::path::Path;

/// The six-byte magic string that starts every `.npy` file.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Largest header accepted, in bytes (NumPy itself refuses headers over 10 000 bytes by default).
pub const MAX_HEADER_LEN: usize = 65_536;

/// The element types medsgm reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// `u1`: unsigned 8-bit integer.
    U8,
    /// `i2`: signed 16-bit integer (e.g. stored HU).
    I16,
    /// `u2`: unsigned 16-bit integer (e.g. 16-bit grey images).
    U16,
    /// `f4`: IEEE single precision.
    F32,
    /// `f8`: IEEE double precision.
    F64,
    /// `c8`: complex64, two `f4` (real, imaginary).
    C64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::U8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::F32 => 4,
            DType::F64 | DType::C64 => 8,
        }
    }

    /// The type code without byte-order character (`f4`, `c8`, ...).
    pub fn code(self) -> &'static str {
        match self {
            DType::U8 => "u1",
            DType::I16 => "i2",
            DType::U16 => "u2",
            DType::F32 => "f4",
            DType::F64 => "f8",
            DType::C64 => "c8",
        }
    }

    /// NumPy's name for the type (`float32`, `complex64`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::U8 => "uint8",
            DType::I16 => "int16",
            DType::U16 => "uint16",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::C64 => "complex64",
        }
    }

    fn from_code(code: &str) -> Option<DType> {
        Some(match code {
            "u1" | "B" => DType::U8,
            "i2" | "h" => DType::I16,
            "u2" | "H" => DType::U16,
            "f4" | "f" => DType::F32,
            "f8" | "d" => DType::F64,
            "c8" | "F" => DType::C64,
            _ => return None,
        })
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything a `.npy` header says about the array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: DType,
    /// Byte order of multi-byte elements.
    pub big_endian: bool,
    /// Column-major (Fortran) element order.
    pub fortran_order: bool,
    /// Array shape (empty for a 0-d array).
    pub shape: Vec<usize>,
}

/// Why a byte string is not a valid `.npy` file of a supported type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NpyError {
    /// The file does not start with `\x93NUMPY`.
    #[error("not an NPY file (the magic string \\x93NUMPY is missing)")]
    BadMagic,
    /// The file ends inside the preamble or header.
    #[error("truncated NPY file: {0}")]
    Truncated(&'static str),
    /// Format version other than 1.0, 2.0, 3.0.
    #[error("unsupported NPY format version {0}.{1} (supported: 1.0, 2.0, 3.0)")]
    Version(u8, u8),
    /// Header longer than [`MAX_HEADER_LEN`].
    #[error("NPY header length {0} exceeds the limit of {MAX_HEADER_LEN} bytes")]
    HeaderTooLong(usize),
    /// The header dictionary does not parse.
    #[error("malformed NPY header: {0}")]
    Header(String),
    /// A dtype medsgm does not handle.
    #[error(
        "unsupported NPY dtype {0:?} (supported: u1, i2, u2, f4, f8, c8 in either byte order)"
    )]
    DType(String),
    /// Shape product or byte count overflows.
    #[error("NPY shape {0:?} is too large (element count overflows)")]
    ShapeOverflow(Vec<usize>),
    /// Data section length differs from `prod(shape) · itemsize`.
    #[error("NPY data length mismatch: shape {shape:?} of {dtype} needs {expected} bytes, the file has {got}")]
    DataLength {
        /// Declared shape.
        shape: Vec<usize>,
        /// Declared dtype.
        dtype: DType,
        /// Bytes the header implies.
        expected: usize,
        /// Bytes present.
        got: usize,
    },
}

type NpyResult<T> = std::result::Result<T, NpyError>;

/// An array read from a `.npy` file, in standard (C) layout whatever the file's order.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyArray {
    /// `u1`.
    U8(ArrayD<u8>),
    /// `i2`.
    I16(ArrayD<i16>),
    /// `u2`.
    U16(ArrayD<u16>),
    /// `f4`.
    F32(ArrayD<f32>),
    /// `f8`.
    F64(ArrayD<f64>),
    /// `c8`.
    C64(ArrayD<Complex32>),
}

impl NpyArray {
    /// Element type.
    pub fn dtype(&self) -> DType {
        match self {
            NpyArray::U8(_) => DType::U8,
            NpyArray::I16(_) => DType::I16,
            NpyArray::U16(_) => DType::U16,
            NpyArray::F32(_) => DType::F32,
            NpyArray::F64(_) => DType::F64,
            NpyArray::C64(_) => DType::C64,
        }
    }

    /// Array shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            NpyArray::U8(a) => a.shape(),
            NpyArray::I16(a) => a.shape(),
            NpyArray::U16(a) => a.shape(),
            NpyArray::F32(a) => a.shape(),
            NpyArray::F64(a) => a.shape(),
            NpyArray::C64(a) => a.shape(),
        }
    }

    /// The array as f32 (integers and f64 are converted; complex data are an error).
    pub fn into_f32(self) -> std::result::Result<ArrayD<f32>, DType> {
        Ok(match self {
            NpyArray::U8(a) => a.mapv(f32::from),
            NpyArray::I16(a) => a.mapv(f32::from),
            NpyArray::U16(a) => a.mapv(f32::from),
            NpyArray::F32(a) => a,
            NpyArray::F64(a) => a.mapv(|v| v as f32),
            NpyArray::C64(_) => return Err(DType::C64),
        })
    }
}

/// An element type that can be stored in a `.npy` file.
pub trait NpyElement: Copy + 'static {
    /// Its dtype.
    const DTYPE: DType;
    /// Decodes one element from exactly `DTYPE.size()` bytes.
    fn decode(bytes: &[u8], big_endian: bool) -> Self;
    /// Appends the element's bytes.
    fn encode(self, big_endian: bool, out: &mut Vec<u8>);
    /// Wraps an array in [`NpyArray`].
    fn wrap(a: ArrayD<Self>) -> NpyArray;
}

macro_rules! npy_primitive {
    ($t:ty, $dt:expr, $variant:ident) => {
        impl NpyElement for $t {
            const DTYPE: DType = $dt;
            fn decode(bytes: &[u8], big_endian: bool) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                if big_endian {
                    <$t>::from_be_bytes(b)
                } else {
                    <$t>::from_le_bytes(b)
                }
            }
            fn encode(self, big_endian: bool, out: &mut Vec<u8>) {
                if big_endian {
                    out.extend_from_slice(&self.to_be_bytes());
                } else {
                    out.extend_from_slice(&self.to_le_bytes());
                }
            }
            fn wrap(a: ArrayD<Self>) -> NpyArray {
                NpyArray::$variant(a)
            }
        }
    };
}

npy_primitive!(u8, DType::U8, U8);
npy_primitive!(i16, DType::I16, I16);
npy_primitive!(u16, DType::U16, U16);
npy_primitive!(f32, DType::F32, F32);
npy_primitive!(f64, DType::F64, F64);

impl NpyElement for Complex32 {
    const DTYPE: DType = DType::C64;
    fn decode(bytes: &[u8], big_endian: bool) -> Self {
        Complex32::new(
            f32::decode(&bytes[..4], big_endian),
            f32::decode(&bytes[4..8], big_endian),
        )
    }
    fn encode(self, big_endian: bool, out: &mut Vec<u8>) {
        self.re.encode(big_endian, out);
        self.im.encode(big_endian, out);
    }
    fn wrap(a: ArrayD<Self>) -> NpyArray {
        NpyArray::C64(a)
    }
}

/// Parses the preamble and header; returns the header and the offset of the data section.
pub fn parse_header(bytes: &[u8]) -> NpyResult<(NpyHeader, usize)> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(if bytes.len() < MAGIC.len() && MAGIC.starts_with(bytes) {
            NpyError::Truncated("the file ends inside the magic string")
        } else {
            NpyError::BadMagic
        });
    }
    let version = bytes.get(6..8).ok_or(NpyError::Truncated(
        "the file ends before the format version",
    ))?;
    let (len_bytes, utf8) = match (version[0], version[1]) {
        (1, 0) => (2, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        (a, b) => return Err(NpyError::Version(a, b)),
    };
    let start = 8 + len_bytes;
    let len_field = bytes.get(8..start).ok_or(NpyError::Truncated(
        "the file ends inside the header length",
    ))?;
    let header_len = len_field
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    if header_len > MAX_HEADER_LEN as u64 {
        return Err(NpyError::HeaderTooLong(header_len as usize));
    }
    let end = start + header_len as usize;
    let raw = bytes
        .get(start..end)
        .ok_or(NpyError::Truncated("the file ends inside the header"))?;
    let text = if utf8 {
        std::str::from_utf8(raw)
            .map_err(|_| NpyError::Header("header is not valid UTF-8".into()))?
            .to_owned()
    } else {
        // Latin-1: every byte is one code point.
        raw.iter().map(|&b| char::from(b)).collect()
    };
    Ok((parse_dict(&text)?, end))
}

/// Decodes a complete `.npy` byte string.
pub fn parse_npy(bytes: &[u8]) -> NpyResult<NpyArray> {
    let (header, offset) = parse_header(bytes)?;
    let data = &bytes[offset..];
    match header.dtype {
        DType::U8 => decode_array::<u8>(&header, data),
        DType::I16 => decode_array::<i16>(&header, data),
        DType::U16 => decode_array::<u16>(&header, data),
        DType::F32 => decode_array::<f32>(&header, data),
        DType::F64 => decode_array::<f64>(&header, data),
        DType::C64 => decode_array::<Complex32>(&header, data),
    }
}

fn decode_array<T: NpyElement>(header: &NpyHeader, data: &[u8]) -> NpyResult<NpyArray> {
    let overflow = || NpyError::ShapeOverflow(header.shape.clone());
    let count = header
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(overflow)?;
    let expected = count.checked_mul(T::DTYPE.size()).ok_or_else(overflow)?;
    if expected > isize::MAX as usize {
        return Err(overflow());
    }
    if expected != data.len() {
        return Err(NpyError::DataLength {
            shape: header.shape.clone(),
            dtype: header.dtype,
            expected,
            got: data.len(),
        });
    }
    let values: Vec<T> = data
        .chunks_exact(T::DTYPE.size())
        .map(|c| T::decode(c, header.big_endian))
        .collect();
    let shape = IxDyn(&header.shape);
    let array = if header.fortran_order {
        ArrayD::from_shape_vec(shape.f(), values).map(|a| a.as_standard_layout().into_owned())
    } else {
        ArrayD::from_shape_vec(shape, values)
    }
    .map_err(|_| overflow())?;
    Ok(T::wrap(array))
}

/// A tiny cursor over the header text implementing the subset of Python literal syntax that
/// `.npy` headers use.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

#[derive(Debug)]
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

impl Cursor<'_> {
    fn err<T>(&self, what: &str) -> NpyResult<T> {
        Err(NpyError::Header(format!("{what} at byte {}", self.pos)))
    }
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    fn expect(&mut self, c: u8) -> NpyResult<()> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(&format!("expected '{}'", c as char))
        }
    }
    fn string(&mut self) -> NpyResult<String> {
        self.skip_ws();
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return self.err("expected a quoted string"),
        };
        self.pos += 1;
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == quote {
                let s = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
                self.pos += 1;
                return Ok(s);
            }
            if c == b'\\' {
                return self.err("escape sequences are not supported in header strings");
            }
            self.pos += 1;
        }
        self.err("unterminated string")
    }
    fn word(&mut self, w: &str) -> bool {
        if self.s[self.pos..].starts_with(w.as_bytes()) {
            self.pos += w.len();
            true
        } else {
            false
        }
    }
    fn integer(&mut self) -> NpyResult<usize> {
        self.skip_ws();
        let start = self.pos;
        let mut v: usize = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(usize::from(c - b'0')))
                .ok_or_else(|| NpyError::Header("shape entry overflows".into()))?;
            self.pos += 1;
        }
        if self.pos == start {
            return self.err("expected a non-negative integer");
        }
        // Python 2 long suffix written by old NumPy versions.
        if self.peek() == Some(b'L') {
            self.pos += 1;
        }
        Ok(v)
    }
    fn tuple(&mut self) -> NpyResult<Vec<usize>> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        let mut trailing_comma = false;
        loop {
            self.skip_ws();
            if self.peek() == Some(b')') {
                self.pos += 1;
                break;
            }
            if dims.len() >= 64 {
                return self.err("more than 64 dimensions");
            }
            dims.push(self.integer()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    trailing_comma = true;
                }
                Some(b')') => {
                    self.pos += 1;
                    trailing_comma = false;
                    break;
                }
                _ => return self.err("expected ',' or ')' in shape"),
            }
        }
        if dims.len() == 1 && !trailing_comma {
            return self.err("shape '(n)' is not a tuple (write '(n,)')");
        }
        Ok(dims)
    }
    fn value(&mut self) -> NpyResult<Value> {
        self.skip_ws();
        match self.peek() {
            Some(b'\'' | b'"') => Ok(Value::Str(self.string()?)),
            Some(b'(') => Ok(Value::Tuple(self.tuple()?)),
            Some(b'[' | b'{') => Err(NpyError::DType(
                "structured or nested dtype descriptions".into(),
            )),
            _ if self.word("True") => Ok(Value::Bool(true)),
            _ if self.word("False") => Ok(Value::Bool(false)),
            _ => self.err("expected a string, True/False or a shape tuple"),
        }
    }
}

fn parse_descr(descr: &str) -> NpyResult<(DType, bool)> {
    let bad = || NpyError::DType(descr.to_owned());
    let (order, code) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    let dtype = DType::from_code(code).ok_or_else(bad)?;
    let big_endian = match order {
        '>' => true,
        '<' => false,
        '|' if dtype.size() == 1 => false,
        '|' => return Err(bad()),
        _ => cfg!(target_endian = "big"),
    };
    Ok((dtype, big_endian))
}

fn parse_dict(text: &str) -> NpyResult<NpyHeader> {
    let mut c = Cursor {
        s: text.as_bytes(),
        pos: 0,
    };
    c.expect(b'{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        c.skip_ws();
        if c.peek() == Some(b'}') {
            c.pos += 1;
            break;
        }
        let key = c.string()?;
        c.expect(b':')?;
        let value = c.value()?;
        let slot_filled = match (key.as_str(), value) {
            ("descr", Value::Str(s)) => descr.replace(s).is_some(),
            ("fortran_order", Value::Bool(b)) => fortran.replace(b).is_some(),
            ("shape", Value::Tuple(t)) => shape.replace(t).is_some(),
            ("descr" | "fortran_order" | "shape", v) => {
                return Err(NpyError::Header(format!(
                    "key '{key}' has a value of the wrong type ({v:?})"
                )))
            }
            _ => return Err(NpyError::Header(format!("unexpected key '{key}'"))),
        };
        if slot_filled {
            return Err(NpyError::Header(format!("duplicate key '{key}'")));
        }
        c.skip_ws();
        match c.peek() {
            Some(b',') => c.pos += 1,
            Some(b'}') => {}
            _ => return c.err("expected ',' or '}'"),
        }
    }
    c.skip_ws();
    if c.pos != c.s.len() {
        return c.err("unexpected text after the header dictionary");
    }
    let missing = |k: &str| NpyError::Header(format!("missing key '{k}'"));
    let (dtype, big_endian) = parse_descr(&descr.ok_or_else(|| missing("descr"))?)?;
    Ok(NpyHeader {
        dtype,
        big_endian,
        fortran_order: fortran.ok_or_else(|| missing("fortran_order"))?,
        shape: shape.ok_or_else(|| missing("shape"))?,
    })
}

/// Layout choices for [`to_npy_bytes`]; the default is what NumPy writes on x86 (C order,
/// little-endian).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NpyLayout {
    /// Write in column-major order.
    pub fortran_order: bool,
    /// Write multi-byte elements big-endian.
    pub big_endian: bool,
}

/// Encodes an array as a complete `.npy` byte string.
pub fn to_npy_bytes<T: NpyElement>(array: &ArrayViewD<T>, layout: NpyLayout) -> Vec<u8> {
    let order = if T::DTYPE.size() == 1 {
        '|'
    } else if layout.big_endian {
        '>'
    } else {
        '<'
    };
    let shape = match array.shape() {
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{order}{}', 'fortran_order': {}, 'shape': {shape}, }}",
        T::DTYPE.code(),
        if layout.fortran_order {
            "True"
        } else {
            "False"
        }
    );
    // Pad with spaces and a final newline so the data start on a 64-byte boundary.
    let padded = |preamble: usize| (preamble + header.len() + 1).div_ceil(64) * 64;
    let v1 = padded(10) - 10 <= u16::MAX as usize;
    let preamble = if v1 { 10 } else { 12 };
    let total = padded(preamble);
    header.push_str(&" ".repeat(total - preamble - header.len() - 1));
    header.push('\n');

    let mut out = Vec::with_capacity(total + array.len() * T::DTYPE.size());
    out.extend_from_slice(MAGIC);
    if v1 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    // Iterating the transposed view visits the elements in Fortran order.
    let elements: Box<dyn Iterator<Item = &T>> = if layout.fortran_order {
        Box::new(array.t().into_iter())
    } else {
        Box::new(array.iter())
    };
    for &v in elements {
        v.encode(layout.big_endian, &mut out);
    }
    out
}

/// Reads a `.npy` file; the error names the file and the problem.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read NPY file {}", path.display()))?;
    parse_npy(&bytes).with_context(|| format!("invalid NPY file {}", path.display()))
}

/// Writes an array to a `.npy` file atomically, C order, little-endian.
pub fn write_npy<T: NpyElement>(path: &Path, array: &ArrayViewD<T>) -> Result<()> {
    write_bytes_atomic(path, &to_npy_bytes(array, NpyLayout::default()))
        .with_context(|| format!("cannot write NPY file {}", path.display()))
}
