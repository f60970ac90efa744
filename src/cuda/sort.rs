//! Launchers for kernels/sort.cu: the exclusive scan (scan_lookback, one launch) and the radix sort of tile
//! pairs (radix_hist_all once, radix_onesweep per 8-bit pass). CPU twins: src/cpu/sort.rs.

use super::{Arena, Cost, DevBuf, Gpu, LaunchCfg};
use crate::cpu::sort::{radix_passes, RADIX};
use crate::error::{Error, Result};

/// Threads and items per block of scan_lookback (SCAN_THREADS, SCAN_BLOCK).
const SCAN_THREADS: u32 = 256;
const SCAN_BLOCK: usize = 1024;
/// Threads per block of the sort kernels (SORT_THREADS); pairs per radix_onesweep block (SORT_TILE) and per
/// radix_hist_all block (HIST_TILE).
const SORT_THREADS: u32 = 256;
pub const SORT_TILE: usize = 2048;
const HIST_TILE: usize = 4096;
/// Passes the kernels support (64-bit keys): rows of the histogram array (MAX_PASSES).
const MAX_PASSES: usize = 8;
/// Status words hold counts below 2^30 (the two flag bits above them).
const MAX_SORT_PAIRS: usize = 1 << 30;

/// Scratch the scan of `n` ints needs: a 64-bit status word per 1024 items and the tile counter.
pub fn scan_scratch_len(n: usize) -> usize {
    2 * n.div_ceil(SCAN_BLOCK).max(1) + 1
}

/// out = exclusive prefix sums of `input`; total[0] = Σ input. `scratch` is `scan_scratch_len(n)` ints,
/// zeroed here. One memset and one launch, no host synchronisation.
pub fn exclusive_scan(gpu: &Gpu, input: DevBuf<i32>, out: DevBuf<i32>, scratch: DevBuf<i32>, total: DevBuf<i32>) -> Result<()> {
    let n = input.len();
    let blocks = n.div_ceil(SCAN_BLOCK).max(1);
    let need = scan_scratch_len(n);
    if out.len() != n || scratch.len() < need || total.is_empty() || n > i32::MAX as usize {
        return Err(Error::Cuda(format!(
            "exclusive_scan: {n} items need an output of {n}, {need} scratch ints and a total (got {}, {}, {})",
            out.len(),
            scratch.len(),
            total.len()
        )));
    }
    if scratch.ptr() % 8 != 0 {
        return Err(Error::Cuda("exclusive_scan: the scratch must be 8-byte aligned (64-bit status words)".into()));
    }
    let scratch = scratch.slice(0, need);
    gpu.zero(scratch)?;
    let (status, counter) = (scratch.slice(0, 2 * blocks), scratch.slice(2 * blocks, 1));
    let nn = n as u64;
    gpu.launch(
        "scan_lookback",
        LaunchCfg::linear(blocks as u32, SCAN_THREADS, Cost { bytes: 8 * nn + 16 * blocks as u64, flop: 2 * nn }),
        &[input.into(), (n as i32).into(), status.into(), counter.into(), out.into(), total.into()],
    )
}

/// Ping-pong buffers of a sort of up to `capacity` pairs, and its scratch: [MAX_PASSES, RADIX] digit
/// histograms and a tile counter per pass (zeroed by a memset in each sort), a [tiles, RADIX] status array
/// per pass (zeroed by radix_hist_all).
#[derive(Debug, Clone, Copy)]
pub struct SortBuffers {
    pub keys: [DevBuf<u64>; 2],
    pub values: [DevBuf<u32>; 2],
    scratch: DevBuf<i32>,
}

/// Offsets in the sort scratch: histograms, then counters (the part the memset zeroes), then the status
/// arrays pass after pass.
const SCRATCH_HIST: usize = 0;
const SCRATCH_COUNTERS: usize = MAX_PASSES * RADIX;
const SCRATCH_STATUS: usize = SCRATCH_COUNTERS + MAX_PASSES;

fn sort_tiles(capacity: usize) -> usize {
    capacity.div_ceil(SORT_TILE).max(1)
}

fn sort_scratch_len(capacity: usize, passes: usize) -> usize {
    SCRATCH_STATUS + passes * sort_tiles(capacity) * RADIX
}

impl SortBuffers {
    pub fn new(gpu: &Gpu, arena: &mut Arena, capacity: usize) -> Result<Self> {
        if capacity >= MAX_SORT_PAIRS {
            return Err(Error::Cuda(format!(
                "radix sort: {capacity} pairs exceed the {MAX_SORT_PAIRS} the status words can count"
            )));
        }
        Ok(SortBuffers {
            keys: [arena.alloc(gpu, capacity)?, arena.alloc(gpu, capacity)?],
            values: [arena.alloc(gpu, capacity)?, arena.alloc(gpu, capacity)?],
            scratch: arena.alloc(gpu, sort_scratch_len(capacity, MAX_PASSES))?,
        })
    }

    /// Device bytes `new` takes for `capacity` pairs (arena alignment included).
    pub fn bytes(capacity: usize) -> usize {
        24 * capacity + 4 * sort_scratch_len(capacity, MAX_PASSES) + 5 * 256
    }

    pub fn capacity(&self) -> usize {
        self.keys[0].len()
    }
}

/// Stable sort of the first min(num_pairs[0], capacity) pairs in `buf.keys[0]`/`buf.values[0]` by the low
/// `bits` bits of the key. Returns which of the two buffers holds the result. A memset of 8 KiB,
/// radix_hist_all, then radix_onesweep per pass: 1 + ceil(bits / 8) launches, no host synchronisation.
pub fn radix_sort(gpu: &Gpu, buf: &SortBuffers, num_pairs: DevBuf<i32>, bits: u32) -> Result<usize> {
    let passes = radix_passes(bits) as usize;
    if passes > MAX_PASSES {
        return Err(Error::Cuda(format!("radix_sort: {bits} key bits asked for, keys have 64")));
    }
    if num_pairs.is_empty() {
        return Err(Error::Cuda("radix_sort: the pair count buffer is empty (it needs one int)".into()));
    }
    if passes == 0 {
        return Ok(0);
    }
    let capacity = buf.capacity();
    let tiles = sort_tiles(capacity);
    let p = capacity as u64;
    let scratch = buf.scratch.slice(0, sort_scratch_len(capacity, passes));
    gpu.zero(scratch.slice(0, SCRATCH_STATUS))?;
    let hist = scratch.slice(SCRATCH_HIST, MAX_PASSES * RADIX);
    let status = scratch.slice(SCRATCH_STATUS, passes * tiles * RADIX);
    gpu.launch(
        "radix_hist_all",
        LaunchCfg::linear(
            capacity.div_ceil(HIST_TILE).max(1) as u32,
            SORT_THREADS,
            Cost { bytes: 8 * p + 4 * status.len() as u64, flop: passes as u64 * p },
        ),
        &[
            buf.keys[0].into(),
            num_pairs.into(),
            (capacity as i32).into(),
            (passes as i32).into(),
            hist.into(),
            status.into(),
            (tiles as i32).into(),
        ],
    )?;
    let mut src = 0;
    for pass in 0..passes {
        let counter = scratch.slice(SCRATCH_COUNTERS + pass, 1);
        let status = status.slice(pass * tiles * RADIX, tiles * RADIX);
        gpu.launch(
            "radix_onesweep",
            LaunchCfg::linear(
                tiles as u32,
                SORT_THREADS,
                Cost { bytes: 24 * p + 8 * (RADIX * tiles) as u64, flop: 16 * p },
            ),
            &[
                buf.keys[src].into(),
                buf.values[src].into(),
                num_pairs.into(),
                (capacity as i32).into(),
                (pass as i32).into(),
                hist.into(),
                status.into(),
                counter.into(),
                buf.keys[1 - src].into(),
                buf.values[1 - src].into(),
            ],
        )?;
        src = 1 - src;
    }
    Ok(src)
}
