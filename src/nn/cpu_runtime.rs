//! Process-wide CPU settings for the score network, applied once at start-up by the `medsgm`
//! binary ([`configure`]) before any thread pool exists.
//!
//! Three costs of candle 0.11 / glibc on a small shared CPU that this removes (profiled with
//! `perf` on a 64² NCSN++ training step):
//! - `candle_core::utils::get_num_threads()` (called by every candle matmul) re-parses
//!   `/proc/cpuinfo` unless `RAYON_NUM_THREADS` is set (≈5% of a step);
//! - candle's element-wise ops run on a separate spin-waiting "barrier pool" beside rayon's pool;
//!   on 2 cores (and with other processes running) the spinning threads steal the cores from
//!   the GEMM threads (≈25% of a step spent in `BarrierGuard::drop`). `CANDLE_NUM_THREADS=1`
//!   turns that pool off; the heavy element-wise work of the network (GroupNorm + SiLU, bias,
//!   im2col) runs in this crate's fused rayon kernels instead;
//! - glibc returns freed multi-megabyte tensors to the kernel and page-faults them back in
//!   on the next allocation (≈20% of a step in `exc_page_fault`, the "sys" time): heap
//!   trimming is made rare and no allocation is served by its own `mmap` (glibc's threshold
//!   for that cannot be raised above 32 MiB, and a 64-channel 128² feature map at batch 16 is
//!   67 MB: each such tensor was mapped, zero-filled by the kernel page by page and unmapped
//!   with a TLB shoot-down; with mmap off the nf-32 training step fell from 7.9 s to 4.6 s,
//!   its system time from 22 s to 2.4 s per run of four steps). Freed memory stays in the heap
//!   for the next tensor, as in PyTorch's caching allocator.
//!
//! Variables that the user has already set are left alone.

/// Applies the settings above; call at the very start of `main`, before any thread exists
/// (it sets environment variables).
pub fn configure() {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    set_default_env("RAYON_NUM_THREADS", &threads.to_string());
    set_default_env("CANDLE_NUM_THREADS", "1");
    tune_malloc();
}

fn set_default_env(key: &str, value: &str) {
    if std::env::var_os(key).is_none() {
        std::env::set_var(key, value);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    const TRIM_THRESHOLD: libc::c_int = 1 << 30;
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads run.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}
