//! kernels/sort.cu against its CPU twins: the exclusive scan and the radix sort of tile pairs.

mod common;

use common::gpu;
use gensync::cpu::sort as twin;
use gensync::cuda::sort::{exclusive_scan, radix_sort, scan_scratch_len, SortBuffers};
use gensync::cuda::Arena;
use gensync::rng::Rng;

/// Sizes around the 1024-item block and the spine's chunk, and a large one; totals equal, sums exact.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_scan_matches_cpu() {
    let gpu = gpu();
    for (case, &n) in [0usize, 1, 1023, 1024, 1025, 300_000, 2_000_000].iter().enumerate() {
        let mut rng = Rng::new(case as u64);
        let input: Vec<i32> = (0..n).map(|_| rng.below(9) as i32).collect();
        let mut want = vec![0; n];
        let total = twin::exclusive_scan(&input, &mut want);
        let mut arena = Arena::new("test", 8 * n + 4 * scan_scratch_len(n) + 4096).unwrap();
        let (inp, out) = (arena.alloc::<i32>(&gpu, n).unwrap(), arena.alloc::<i32>(&gpu, n).unwrap());
        let (sums, tot) = (arena.alloc::<i32>(&gpu, scan_scratch_len(n)).unwrap(), arena.alloc::<i32>(&gpu, 1).unwrap());
        if n > 0 {
            gpu.upload(inp, &input).unwrap();
        }
        exclusive_scan(&gpu, inp, out, sums, tot).unwrap();
        assert_eq!(gpu.download(tot).unwrap()[0] as i64, total, "n = {n}: total");
        assert!(gpu.download(out).unwrap() == want, "n = {n}: prefix sums differ");
    }
}

/// Keys like the rasterizer's (tile id above 31 depth bits) with many equal keys, a count below the
/// capacity (pairs past it must be ignored), several bit widths: same order as the stable CPU sort.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_radix_sort_matches_cpu() {
    let gpu = gpu();
    for (case, &(count, capacity, bits)) in
        [(0usize, 2048usize, 41u32), (1, 2048, 41), (5000, 8192, 44), (300_000, 310_000, 41), (100_000, 100_000, 16)]
            .iter()
            .enumerate()
    {
        let mut rng = Rng::new(50 + case as u64);
        let keys: Vec<u64> = (0..capacity)
            .map(|_| {
                let tile = rng.below(1 << bits.saturating_sub(31).max(1));
                let depth = rng.below(64) as u64 * 1_000_003; // repeated depths: stability matters
                ((tile << 31) | (depth & 0x7fff_ffff)) & ((1u64 << bits) - 1)
            })
            .collect();
        let values: Vec<u32> = (0..capacity as u32).collect();
        let (mut want_k, mut want_v) = (keys[..count].to_vec(), values[..count].to_vec());
        twin::radix_sort(&mut want_k, &mut want_v, bits);
        let mut arena = Arena::new("test", SortBuffers::bytes(capacity) + 4096).unwrap();
        let buf = SortBuffers::new(&gpu, &mut arena, capacity).unwrap();
        let num = arena.alloc::<i32>(&gpu, 1).unwrap();
        gpu.upload(buf.keys[0], &keys).unwrap();
        gpu.upload(buf.values[0], &values).unwrap();
        gpu.upload(num, &[count as i32]).unwrap();
        let which = radix_sort(&gpu, &buf, num, bits).unwrap();
        let got_k = gpu.download(buf.keys[which]).unwrap();
        let got_v = gpu.download(buf.values[which]).unwrap();
        assert!(got_k[..count] == want_k[..], "case {case}: keys differ");
        assert!(got_v[..count] == want_v[..], "case {case}: values differ (stability)");
    }
}
