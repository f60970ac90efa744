//! Launchers for kernels/triplane.cu: triplane features and their backward (CPU twin: src/cpu/triplane.rs).

use super::{Arg, Cost, DevBuf, Gpu, LaunchCfg};
use crate::cpu::triplane::{TriplaneBox, TRIPLANE_C, TRIPLANE_FEATURES, TRIPLANE_FLOATS};
use crate::error::{Error, Result};

/// TRIPLANE_THREADS in the kernel: 8 Gaussians (one warp each) per block.
const TRIPLANE_THREADS: u32 = 256;

fn check(what: &str, n: usize, bufs: &[(&str, usize, usize)]) -> Result<()> {
    if n > i32::MAX as usize / TRIPLANE_C {
        return Err(Error::Cuda(format!("{what}: {n} Gaussians are beyond one launch")));
    }
    for &(name, len, want) in bufs {
        if len != want {
            return Err(Error::Cuda(format!("{what}: {name} has {len} elements, {n} Gaussians need {want}")));
        }
    }
    Ok(())
}

fn box_args(bx: &TriplaneBox) -> [Arg; 6] {
    let [a, b, c] = bx.lo;
    let [d, e, f] = bx.inv_extent;
    [a.into(), b.into(), c.into(), d.into(), e.into(), f.into()]
}

/// features [N,64] from means [N,3] and planes [TRIPLANE_FLOATS].
pub fn triplane_fwd(
    gpu: &Gpu,
    means: DevBuf<f32>,
    planes: DevBuf<f32>,
    bx: &TriplaneBox,
    features: DevBuf<f32>,
) -> Result<()> {
    let n = means.len() / 3;
    check(
        "triplane_fwd",
        n,
        &[
            ("means", means.len(), 3 * n),
            ("planes", planes.len(), TRIPLANE_FLOATS),
            ("features", features.len(), n * TRIPLANE_FEATURES),
        ],
    )?;
    if n == 0 {
        return Ok(());
    }
    let nu = n as u64;
    let cost = Cost { bytes: 268 * nu + 4 * TRIPLANE_FLOATS as u64, flop: 5200 * nu };
    let mut args = vec![means.into(), planes.into(), (n as i32).into()];
    args.extend(box_args(bx));
    args.push(features.into());
    gpu.launch("triplane_fwd", LaunchCfg::per_element(n * TRIPLANE_C, TRIPLANE_THREADS, cost), &args)
}

/// From d_features [N,64]: d_planes [TRIPLANE_FLOATS] += the planes' gradient (atomics: zero it first),
/// d_means [N,3] = the means' gradient.
pub fn triplane_bwd(
    gpu: &Gpu,
    means: DevBuf<f32>,
    planes: DevBuf<f32>,
    bx: &TriplaneBox,
    d_features: DevBuf<f32>,
    d_planes: DevBuf<f32>,
    d_means: DevBuf<f32>,
) -> Result<()> {
    let n = means.len() / 3;
    check(
        "triplane_bwd",
        n,
        &[
            ("means", means.len(), 3 * n),
            ("planes", planes.len(), TRIPLANE_FLOATS),
            ("d_features", d_features.len(), n * TRIPLANE_FEATURES),
            ("d_planes", d_planes.len(), TRIPLANE_FLOATS),
            ("d_means", d_means.len(), 3 * n),
        ],
    )?;
    if n == 0 {
        return Ok(());
    }
    let nu = n as u64;
    let cost = Cost { bytes: 280 * nu + 12 * TRIPLANE_FLOATS as u64, flop: 8900 * nu };
    let mut args = vec![means.into(), planes.into(), d_features.into(), (n as i32).into()];
    args.extend(box_args(bx));
    args.extend([Arg::from(d_planes), Arg::from(d_means)]);
    gpu.launch("triplane_bwd", LaunchCfg::per_element(n * TRIPLANE_C, TRIPLANE_THREADS, cost), &args)
}
