//! kernels/sort.cu against its CPU twins: the exclusive scan and the radix sort of tile pairs. Both kernels
//! chain their blocks by decoupled look-back, whose block order varies from run to run, so every GPU case
//! runs repeatedly on the same buffers (which also checks that each call resets its scratch).

mod common;

use common::gpu;
use gensync::cpu::sort as twin;
use gensync::cuda::sort::{exclusive_scan, radix_sort, scan_scratch_len, SortBuffers};
use gensync::cuda::Arena;
use gensync::rng::Rng;

/// Runs of every GPU case: enough for block schedules to differ and a look-back race to show.
const REPEATS: usize = 20;

/// Sizes around the 1024-item block and a 32-block look-back window, and large ones; totals equal, sums exact.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_scan_matches_cpu() {
    let gpu = gpu();
    for (case, &n) in [0usize, 1, 1023, 1024, 1025, 32 * 1024 + 1, 300_000, 2_000_000].iter().enumerate() {
        let mut rng = Rng::new(case as u64);
        let input: Vec<i32> = (0..n).map(|_| rng.below(9) as i32).collect();
        let mut want = vec![0; n];
        let total = twin::exclusive_scan(&input, &mut want);
        let mut arena = Arena::new("test", 8 * n + 4 * scan_scratch_len(n) + 4096).unwrap();
        let (inp, out) = (arena.alloc::<i32>(&gpu, n).unwrap(), arena.alloc::<i32>(&gpu, n).unwrap());
        let (scratch, tot) =
            (arena.alloc::<i32>(&gpu, scan_scratch_len(n)).unwrap(), arena.alloc::<i32>(&gpu, 1).unwrap());
        if n > 0 {
            gpu.upload(inp, &input).unwrap();
        }
        for rep in 0..REPEATS {
            exclusive_scan(&gpu, inp, out, scratch, tot).unwrap();
            assert_eq!(gpu.download(tot).unwrap()[0] as i64, total, "n = {n}, run {rep}: total");
            if n > 0 {
                let got = gpu.download(out).unwrap();
                if let Some(i) = got.iter().zip(&want).position(|(g, w)| g != w) {
                    panic!("n = {n}, run {rep}: prefix sum {i} is {}, want {}", got[i], want[i]);
                }
            }
        }
    }
}

/// How a case's keys are drawn (all masked to the sorted bits).
#[derive(Debug, Clone, Copy)]
enum Keys {
    /// Like the rasterizer's: tile id above 31 depth bits, 64 distinct depths (many equal keys).
    Pairs,
    /// Uniform over the low bits.
    Random,
    /// One key for every pair: the sort must keep the input order.
    AllEqual,
}

fn draw_keys(rng: &mut Rng, kind: Keys, n: usize, bits: u32) -> Vec<u64> {
    let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let same = rng.next_u64() & mask;
    (0..n)
        .map(|_| match kind {
            Keys::Pairs => {
                let tile = rng.below(1 << 13);
                let depth = rng.below(64) * 1_000_003;
                ((tile << 31) | (depth & 0x7fff_ffff)) & mask
            }
            Keys::Random => rng.next_u64() & mask,
            Keys::AllEqual => same,
        })
        .collect()
}

/// One sort case: `capacity` pairs in the buffers, `on_device` as the device count (clamped to the capacity
/// by the kernels). The first min(on_device, capacity) pairs must come out as the twin's stable sort; every
/// pair past them must be left as it was, in both ping-pong buffers. Runs REPEATS times on the same buffers.
fn check_sort(gpu: &gensync::cuda::Gpu, case: &str, kind: Keys, on_device: usize, capacity: usize, bits: u32, seed: u64) {
    let count = on_device.min(capacity);
    let mut rng = Rng::new(seed);
    let keys = draw_keys(&mut rng, kind, capacity, bits);
    let values: Vec<u32> = (0..capacity as u32).collect();
    let (mut want_k, mut want_v) = (keys[..count].to_vec(), values[..count].to_vec());
    twin::radix_sort(&mut want_k, &mut want_v, bits);
    // The second buffer starts as a recognisable pattern, so a write past the count shows in either buffer.
    let spare_k: Vec<u64> = (0..capacity as u64).map(|i| !i).collect();
    let spare_v: Vec<u32> = (0..capacity as u32).map(|i| !i).collect();

    let mut arena = Arena::new("test", SortBuffers::bytes(capacity) + 4096).unwrap();
    let buf = SortBuffers::new(gpu, &mut arena, capacity).unwrap();
    let num = arena.alloc::<i32>(gpu, 1).unwrap();
    gpu.upload(num, &[on_device as i32]).unwrap();
    for rep in 0..REPEATS {
        if capacity > 0 {
            gpu.upload(buf.keys[0], &keys).unwrap();
            gpu.upload(buf.values[0], &values).unwrap();
            gpu.upload(buf.keys[1], &spare_k).unwrap();
            gpu.upload(buf.values[1], &spare_v).unwrap();
        }
        let which = radix_sort(gpu, &buf, num, bits).unwrap();
        assert_eq!(which, twin::radix_passes(bits) as usize % 2, "{case}: result buffer");
        if capacity == 0 {
            continue;
        }
        let got_k = gpu.download(buf.keys[which]).unwrap();
        let got_v = gpu.download(buf.values[which]).unwrap();
        if let Some(i) = (0..count).find(|&i| (got_k[i], got_v[i]) != (want_k[i], want_v[i])) {
            panic!(
                "{case}, run {rep}: pair {i} is ({:#x}, {}), want ({:#x}, {}) (stable CPU sort)",
                got_k[i], got_v[i], want_k[i], want_v[i]
            );
        }
        if count == capacity {
            continue;
        }
        for (b, (k_init, v_init)) in [(&keys, &values), (&spare_k, &spare_v)].into_iter().enumerate() {
            let (k, v) = (gpu.download(buf.keys[b]).unwrap(), gpu.download(buf.values[b]).unwrap());
            if let Some(i) = (count..capacity).find(|&i| (k[i], v[i]) != (k_init[i], v_init[i])) {
                panic!("{case}, run {rep}: buffer {b} pair {i} lies past the count {count} but was written");
            }
        }
    }
}

/// Sizes around the 2048-pair tile, every bit width from one pass to eight, three key kinds; the device
/// count equal to the capacity.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_radix_sort_matches_cpu() {
    let gpu = gpu();
    let mut seed = 50;
    for &n in &[0usize, 1, 255, 2048, 2049, 100_000, 1_600_000] {
        for &bits in &[1u32, 8, 13, 41, 44, 64] {
            for kind in [Keys::Pairs, Keys::Random, Keys::AllEqual] {
                seed += 1;
                check_sort(&gpu, &format!("{n} pairs, {bits} bits, {kind:?} keys"), kind, n, n, bits, seed);
            }
        }
    }
}

/// A device count below the capacity (pairs past it are ignored and left alone), zero, and above the
/// capacity (the rasterizer's overflow: the whole capacity is sorted).
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_radix_sort_count_on_device() {
    let gpu = gpu();
    let cases = [
        (0usize, 4096usize, 41u32),
        (1, 2048, 41),
        (2047, 4096, 44),
        (2049, 8192, 13),
        (5000, 8192, 44),
        (300_000, 310_000, 41),
        (1_560_000, 1_600_000, 44),
        (10_000, 6144, 41),
    ];
    for (case, &(on_device, capacity, bits)) in cases.iter().enumerate() {
        for kind in [Keys::Pairs, Keys::AllEqual] {
            let name = format!("count {on_device} of capacity {capacity}, {bits} bits, {kind:?} keys");
            check_sort(&gpu, &name, kind, on_device, capacity, bits, 900 + case as u64);
        }
    }
}

/// A training step replays the sort as a CUDA graph: the scratch memset and the look-back counters must
/// reset on every replay, not only when the graph is recorded.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_radix_sort_and_scan_replay_in_a_graph() {
    let gpu = gpu();
    let (capacity, count, bits) = (200_000usize, 180_000usize, 41u32);
    let mut arena = Arena::new("test", SortBuffers::bytes(capacity) + 8 * count + 4 * scan_scratch_len(count) + 8192).unwrap();
    let buf = SortBuffers::new(&gpu, &mut arena, capacity).unwrap();
    let num = arena.alloc::<i32>(&gpu, 1).unwrap();
    let (inp, out) = (arena.alloc::<i32>(&gpu, count).unwrap(), arena.alloc::<i32>(&gpu, count).unwrap());
    let (scratch, total) =
        (arena.alloc::<i32>(&gpu, scan_scratch_len(count)).unwrap(), arena.alloc::<i32>(&gpu, 1).unwrap());
    gpu.upload(num, &[count as i32]).unwrap();
    let mut which = 0;
    let graph = gpu
        .capture(|g| {
            exclusive_scan(g, inp, out, scratch, total)?;
            which = radix_sort(g, &buf, num, bits)?;
            Ok(())
        })
        .unwrap();
    for replay in 0..5u64 {
        let mut rng = Rng::new(700 + replay);
        let keys = draw_keys(&mut rng, Keys::Pairs, capacity, bits);
        let values: Vec<u32> = (0..capacity as u32).collect();
        let counts: Vec<i32> = (0..count).map(|_| rng.below(5) as i32).collect();
        gpu.upload(buf.keys[0], &keys).unwrap();
        gpu.upload(buf.values[0], &values).unwrap();
        gpu.upload(inp, &counts).unwrap();
        graph.replay().unwrap();
        let (mut want_k, mut want_v) = (keys[..count].to_vec(), values[..count].to_vec());
        twin::radix_sort(&mut want_k, &mut want_v, bits);
        let mut want_scan = vec![0; count];
        let want_total = twin::exclusive_scan(&counts, &mut want_scan);
        assert!(gpu.download(buf.keys[which]).unwrap()[..count] == want_k[..], "replay {replay}: keys differ");
        assert!(gpu.download(buf.values[which]).unwrap()[..count] == want_v[..], "replay {replay}: values differ");
        assert!(gpu.download(out).unwrap() == want_scan, "replay {replay}: prefix sums differ");
        assert_eq!(gpu.download(total).unwrap()[0] as i64, want_total, "replay {replay}: total");
    }
}
