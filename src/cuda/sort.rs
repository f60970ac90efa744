//! Launchers for kernels/sort.cu: the exclusive scan (scan_reduce, scan_spine, scan_apply) and the radix
//! sort of tile pairs (radix_hist + exclusive scan + radix_scatter per 8-bit pass). CPU twins: src/cpu/sort.rs.

use super::{Arena, Cost, DevBuf, Gpu, LaunchCfg};
use crate::cpu::sort::{radix_passes, RADIX_BITS};
use crate::error::{Error, Result};

/// Threads and items per block of the scan kernels (SCAN_THREADS, SCAN_BLOCK).
const SCAN_THREADS: u32 = 256;
const SCAN_BLOCK: usize = 1024;
/// Threads and pairs per block of radix_hist / radix_scatter (SORT_THREADS, SORT_TILE).
const SORT_THREADS: u32 = 256;
pub const SORT_TILE: usize = 2048;
const RADIX: usize = 1 << RADIX_BITS;

/// Scratch the scan of `n` ints needs: one partial sum per 1024 items.
pub fn scan_scratch_len(n: usize) -> usize {
    n.div_ceil(SCAN_BLOCK).max(1)
}

/// out = exclusive prefix sums of `input`; total[0] = Σ input. `block_sums` is scratch of
/// `scan_scratch_len(n)` ints. Three launches, no host synchronisation.
pub fn exclusive_scan(gpu: &Gpu, input: DevBuf<i32>, out: DevBuf<i32>, block_sums: DevBuf<i32>, total: DevBuf<i32>) -> Result<()> {
    let n = input.len();
    let blocks = scan_scratch_len(n);
    if out.len() != n || block_sums.len() < blocks || total.is_empty() || n > i32::MAX as usize {
        return Err(Error::Cuda(format!(
            "exclusive_scan: {n} items need an output of {n}, {blocks} block sums and a total (got {}, {}, {})",
            out.len(),
            block_sums.len(),
            total.len()
        )));
    }
    let nn = n as u64;
    gpu.launch(
        "scan_reduce",
        LaunchCfg::linear(blocks as u32, SCAN_THREADS, Cost { bytes: 4 * nn, flop: nn }),
        &[input.into(), (n as i32).into(), block_sums.into()],
    )?;
    gpu.launch(
        "scan_spine",
        LaunchCfg::linear(1, SCAN_THREADS, Cost { bytes: 8 * blocks as u64, flop: blocks as u64 }),
        &[block_sums.into(), (blocks as i32).into(), total.into()],
    )?;
    gpu.launch(
        "scan_apply",
        LaunchCfg::linear(blocks as u32, SCAN_THREADS, Cost { bytes: 8 * nn, flop: nn }),
        &[input.into(), (n as i32).into(), block_sums.into(), out.into()],
    )
}

/// Ping-pong buffers and histograms of a sort of up to `capacity` pairs.
#[derive(Debug, Clone, Copy)]
pub struct SortBuffers {
    pub keys: [DevBuf<u64>; 2],
    pub values: [DevBuf<u32>; 2],
    hist: DevBuf<i32>,
    hist_scan: DevBuf<i32>,
    hist_sums: DevBuf<i32>,
    hist_total: DevBuf<i32>,
}

impl SortBuffers {
    pub fn new(gpu: &Gpu, arena: &mut Arena, capacity: usize) -> Result<Self> {
        let blocks = capacity.div_ceil(SORT_TILE).max(1);
        Ok(SortBuffers {
            keys: [arena.alloc(gpu, capacity)?, arena.alloc(gpu, capacity)?],
            values: [arena.alloc(gpu, capacity)?, arena.alloc(gpu, capacity)?],
            hist: arena.alloc(gpu, RADIX * blocks)?,
            hist_scan: arena.alloc(gpu, RADIX * blocks)?,
            hist_sums: arena.alloc(gpu, scan_scratch_len(RADIX * blocks))?,
            hist_total: arena.alloc(gpu, 1)?,
        })
    }

    /// Device bytes `new` takes for `capacity` pairs (arena alignment included).
    pub fn bytes(capacity: usize) -> usize {
        let blocks = capacity.div_ceil(SORT_TILE).max(1);
        24 * capacity + 8 * RADIX * blocks + 4 * scan_scratch_len(RADIX * blocks) + 6 * 256
    }

    pub fn capacity(&self) -> usize {
        self.keys[0].len()
    }
}

/// Stable sort of the first min(num_pairs[0], capacity) pairs in `buf.keys[0]`/`buf.values[0]` by the low
/// `bits` bits of the key. Returns which of the two buffers holds the result.
pub fn radix_sort(gpu: &Gpu, buf: &SortBuffers, num_pairs: DevBuf<i32>, bits: u32) -> Result<usize> {
    let capacity = buf.capacity();
    let blocks = capacity.div_ceil(SORT_TILE).max(1);
    let p = capacity as u64;
    let mut src = 0;
    for pass in 0..radix_passes(bits) {
        let shift = (pass * RADIX_BITS) as i32;
        gpu.launch(
            "radix_hist",
            LaunchCfg::linear(blocks as u32, SORT_THREADS, Cost { bytes: 8 * p + 4 * (RADIX * blocks) as u64, flop: p }),
            &[buf.keys[src].into(), num_pairs.into(), (capacity as i32).into(), shift.into(), buf.hist.into()],
        )?;
        exclusive_scan(gpu, buf.hist, buf.hist_scan, buf.hist_sums, buf.hist_total)?;
        gpu.launch(
            "radix_scatter",
            LaunchCfg::linear(blocks as u32, SORT_THREADS, Cost { bytes: 24 * p + 4 * (RADIX * blocks) as u64, flop: 8 * p }),
            &[
                buf.keys[src].into(),
                buf.values[src].into(),
                num_pairs.into(),
                (capacity as i32).into(),
                shift.into(),
                buf.hist_scan.into(),
                buf.keys[1 - src].into(),
                buf.values[1 - src].into(),
            ],
        )?;
        src = 1 - src;
    }
    Ok(src)
}
