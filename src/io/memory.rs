//! The memory budget of a run: `--max-memory SIZE`, or by default a share of what this machine
//! (or the process's cgroup or address-space limit) allows, and the check that refuses work
//! whose estimated peak memory is over it before the large buffers are allocated, so a huge
//! geometry or batch ends in a message instead of an allocation abort or swapping.
//!
//! The estimates themselves live with the commands (they know what they allocate); they count
//! the large buffers, not every allocation. Checked against measured peaks (maximum resident
//! set) on 512² CT: FBP 16.2 MiB estimated / 15.3 MiB measured, FISTA-TV 22.2 / 19.9 MiB,
//! DDS 302 / 299 MiB, DDS with 4 samples 1.1 / 1.1 GiB; a 100 000-view fan-beam simulation
//! 2.42 / 2.44 GiB.

use crate::error::InputContext;
use anyhow::{bail, Result};

/// Share of the machine's memory a run may plan to use by default.
pub const DEFAULT_SHARE: f64 = 0.8;
/// The budget when the machine's memory cannot be read (8 GiB).
pub const FALLBACK_BYTES: u64 = 8 << 30;
/// Bytes of one f32.
pub const F32: u64 = 4;

/// Parses a byte count: a plain number of bytes, or a number with a binary unit suffix
/// K, M, G or T (optionally followed by `B` or `iB`, any case): `512M`, `8G`, `1.5GiB`.
pub fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 4G, 512M, 1000000)"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let scale: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(format!("{s:?}: unknown unit (use K, M, G or T)")),
    };
    let bytes = value * scale as f64;
    if !(bytes >= 1.0 && bytes < 1u64.wrapping_shl(62) as f64) {
        return Err(format!("{s:?} must be at least 1 byte and below 4 EiB"));
    }
    Ok(bytes as u64)
}

/// A byte count for people: `512 B`, `3.2 MiB`, `1.5 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
fn meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The soft "Max address space" of a `/proc/self/limits` text, in bytes (None: unlimited).
fn address_space_limit(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max address space"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The memory this process may use: the smallest of the machine's total memory, its cgroup's
/// `memory.max` and its address-space limit (None when none can be read).
fn machine_bytes() -> Option<u64> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    [
        read("/proc/meminfo").and_then(|t| meminfo_total(&t)),
        read("/sys/fs/cgroup/memory.max").and_then(|t| t.trim().parse().ok()),
        read("/proc/self/limits").and_then(|t| address_space_limit(&t)),
    ]
    .into_iter()
    .flatten()
    .min()
}

/// The default budget: [`DEFAULT_SHARE`] of the machine's memory (`machine_bytes`), or [`FALLBACK_BYTES`].
pub fn default_limit() -> u64 {
    machine_bytes()
        .map(|b| (b as f64 * DEFAULT_SHARE) as u64)
        .unwrap_or(FALLBACK_BYTES)
}

/// Sums byte counts of buffers given as element counts × element size, saturating (an absurd
/// geometry gives `u64::MAX`, which no budget allows, instead of wrapping around).
pub fn bytes_of(buffers: &[(u64, u64)]) -> u64 {
    buffers.iter().fold(0u64, |sum, &(count, size)| {
        sum.saturating_add(count.saturating_mul(size))
    })
}

/// Fails when `estimate` bytes exceed `limit`, naming `what` (the input or setting that needs
/// the memory), both amounts and where the limit comes from (`given`: --max-memory was set).
pub fn check(what: &str, estimate: u64, limit: u64, given: bool) -> Result<()> {
    if estimate <= limit {
        return Ok(());
    }
    let source = if given {
        "--max-memory".to_owned()
    } else {
        format!(
            "the default, {:.0} % of the memory this process may use (the machine's, or a \
             lower cgroup or address-space limit); raise it with --max-memory",
            DEFAULT_SHARE * 100.0
        )
    };
    bail!(
        "{what} needs an estimated {} of memory ({estimate} bytes), over the {} ({limit} bytes) \
         allowed by {source}",
        format_bytes(estimate),
        format_bytes(limit)
    )
}

/// A run's memory budget: `--max-memory` when given (`max`), else [`default_limit`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    /// The explicit limit in bytes (`--max-memory`), if any.
    pub max: Option<u64>,
}

impl Budget {
    /// The budget in bytes: `max`, else [`default_limit`].
    pub fn limit(&self) -> u64 {
        self.max.unwrap_or_else(default_limit)
    }

    /// Fails (invalid input, exit code 2) when `estimate` bytes exceed the budget, naming
    /// `what` (the input or setting that needs the memory); see [`check`].
    pub fn check(&self, what: &str, estimate: u64) -> Result<()> {
        check(what, estimate, self.limit(), self.max.is_some()).invalid_input()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert_eq!(parse_bytes("4K"), Ok(4096));
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("8g"), Ok(8 << 30));
        assert_eq!(parse_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("2 TB"), Ok(2 << 40));
        for bad in ["", "G", "-1", "0", "1.2.3", "5X", "nan", "1e3", "99999999T"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_machine_limit_is_read_from_proc_texts() {
        assert_eq!(
            meminfo_total("MemTotal:       24683784 kB\nMemFree: 1 kB\n"),
            Some(24683784 * 1024)
        );
        assert_eq!(meminfo_total("garbage"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max address space         4294967296           unlimited            bytes\n";
        assert_eq!(address_space_limit(limits), Some(4 << 30));
        assert_eq!(
            address_space_limit(&limits.replace("4294967296", "unlimited")),
            None
        );
        assert!(default_limit() > 0);
    }

    #[test]
    fn the_check_names_the_input_and_both_amounts() {
        assert!(check("a.npy", 10, 10, true).is_ok());
        let e = check("a.npy", 3 << 30, 1 << 30, true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a.npy") && e.contains("3.0 GiB") && e.contains("1.0 GiB"),
            "{e}"
        );
        assert!(e.contains("--max-memory"), "{e}");
        let e = check("a.npy", u64::MAX, 1 << 30, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("default") && e.contains("--max-memory"), "{e}");
        assert_eq!(bytes_of(&[(u64::MAX, 4), (1, 1)]), u64::MAX);
        assert_eq!(bytes_of(&[(10, 4), (3, 8)]), 64);
    }
}
