//! Fused multi-tensor Adam: the CUDA kernel against its CPU twin.

mod common;

use common::{gpu, rel_err};
use gensync::cpu::adam::{adam_step, AdamGroup};
use gensync::cuda::adam::{AdamTensor, FusedAdam};
use gensync::cuda::Arena;
use gensync::rng::Rng;

/// Several tensors (sizes straddling the 1024-element chunk and the float4 tail), three groups with
/// different learning rates, five steps: GPU p, m, v equal the CPU twin's to 1e-6 relative.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_matches_cpu_twin() {
    let gpu = gpu();
    for (case, sizes) in [vec![1usize], vec![3, 1023, 1024, 1025], vec![4097, 5, 100_003, 1_000_001]].iter().enumerate() {
        let mut rng = Rng::new(100 + case as u64);
        let mut arena = Arena::new("persistent", sizes.iter().map(|n| 16 * n + 4096).sum::<usize>() + 65536).unwrap();
        let mut host = Vec::new();
        let mut tensors = Vec::new();
        for (k, &n) in sizes.iter().enumerate() {
            let h = [rng.vec(n, -1.0, 1.0), rng.vec(n, -1.0, 1.0), rng.vec(n, -0.1, 0.1), rng.vec(n, 0.0, 0.01)];
            let [p, g, m, v] = [(); 4].map(|_| arena.alloc::<f32>(&gpu, n).unwrap());
            for (b, d) in [p, g, m, v].iter().zip(&h) {
                gpu.upload(*b, d).unwrap();
            }
            tensors.push(AdamTensor { p, g, m, v, group: k % 3 });
            host.push(h);
        }
        let adam = FusedAdam::new(&gpu, &mut arena, &tensors, 3).unwrap();
        for t in 1..=5u32 {
            let groups: Vec<AdamGroup> =
                [1e-3, 2e-2, 5e-1].iter().map(|&lr| AdamGroup::new(lr, 0.9, 0.999, 1e-15, t)).collect();
            adam.set_groups(&gpu, &groups).unwrap();
            adam.step(&gpu).unwrap();
            for (k, [p, g, m, v]) in host.iter_mut().enumerate() {
                adam_step(p, g, m, v, &groups[k % 3]);
            }
        }
        for (k, t) in tensors.iter().enumerate() {
            for (name, buf, want) in [("p", t.p, &host[k][0]), ("m", t.m, &host[k][2]), ("v", t.v, &host[k][3])] {
                let got = gpu.download(buf).unwrap();
                let e = rel_err(&format!("case {case} tensor {k} ({} elements) {name}", sizes[k]), &got, want);
                assert!(e < 1e-6, "case {case} tensor {k} {name}: rel err {e}");
            }
        }
    }
}
