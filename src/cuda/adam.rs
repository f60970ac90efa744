//! Launcher for kernels/adam.cu:adam_step, the fused multi-tensor Adam.

use super::{Arena, Cost, DevBuf, Gpu, LaunchCfg};
use crate::cpu::adam::AdamGroup;
use crate::error::{Error, Result};

/// Threads per block and elements per block (chunk) of adam_step: ADAM_THREADS and ADAM_CHUNK in the kernel.
const ADAM_THREADS: u32 = 256;
const ADAM_CHUNK: usize = ADAM_THREADS as usize * 4;

/// One tensor's entry in the kernel's table (`struct AdamTensor` in kernels/adam.cu, 48 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AdamTensorEntry {
    p: u64,
    g: u64,
    m: u64,
    v: u64,
    n: i64,
    group: i32,
    first_chunk: i32,
}

/// A parameter tensor with its gradient and moments, and the group whose learning rate it uses.
#[derive(Debug, Clone, Copy)]
pub struct AdamTensor {
    pub p: DevBuf<f32>,
    pub g: DevBuf<f32>,
    pub m: DevBuf<f32>,
    pub v: DevBuf<f32>,
    pub group: usize,
}

/// The tensor table and group table of one optimizer, in device memory, built once.
pub struct FusedAdam {
    table: DevBuf<AdamTensorEntry>,
    groups: DevBuf<AdamGroup>,
    num_tensors: usize,
    chunks: usize,
    elements: usize,
}

impl FusedAdam {
    /// Builds the tables in `arena` (the persistent one). Empty tensors are left out.
    pub fn new(gpu: &Gpu, arena: &mut Arena, tensors: &[AdamTensor], num_groups: usize) -> Result<Self> {
        let mut entries = Vec::new();
        let mut chunks = 0usize;
        let mut elements = 0usize;
        for t in tensors.iter().filter(|t| !t.p.is_empty()) {
            let n = t.p.len();
            if [t.g.len(), t.m.len(), t.v.len()] != [n; 3] || t.group >= num_groups {
                return Err(Error::Cuda(format!(
                    "adam_step: tensor of {n} elements has g/m/v of {}/{}/{} and group {} of {num_groups}",
                    t.g.len(),
                    t.m.len(),
                    t.v.len(),
                    t.group
                )));
            }
            entries.push(AdamTensorEntry {
                p: t.p.ptr(),
                g: t.g.ptr(),
                m: t.m.ptr(),
                v: t.v.ptr(),
                n: n as i64,
                group: t.group as i32,
                first_chunk: chunks as i32,
            });
            chunks += n.div_ceil(ADAM_CHUNK);
            elements += n;
        }
        if chunks > i32::MAX as usize {
            return Err(Error::Cuda(format!("adam_step: {elements} parameters exceed one launch")));
        }
        let table = arena.alloc::<AdamTensorEntry>(gpu, entries.len())?;
        if !entries.is_empty() {
            gpu.upload(table, &entries)?;
        }
        let groups = arena.alloc::<AdamGroup>(gpu, num_groups)?;
        Ok(FusedAdam { table, groups, num_tensors: entries.len(), chunks, elements })
    }

    /// Sets every group's constants for the next step (a small host-to-device copy; do it outside a graph).
    pub fn set_groups(&self, gpu: &Gpu, groups: &[AdamGroup]) -> Result<()> {
        gpu.upload(self.groups, groups)
    }

    /// One Adam step over every tensor: a single launch, capturable in a graph. It joins the GPU's second
    /// stream first, where some gradients are finished (deform_bwd's).
    pub fn step(&self, gpu: &Gpu) -> Result<()> {
        if self.num_tensors == 0 {
            return Ok(());
        }
        gpu.join_side()?;
        let n = self.elements as u64;
        let cost = Cost { bytes: 28 * n, flop: 12 * n };
        gpu.launch(
            "adam_step",
            LaunchCfg::linear(self.chunks as u32, ADAM_THREADS, cost),
            &[self.table.into(), (self.num_tensors as i32).into(), self.groups.into()],
        )
    }

    /// Parameters updated per step.
    pub fn elements(&self) -> usize {
        self.elements
    }
}
