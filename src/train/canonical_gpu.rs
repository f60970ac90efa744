//! The canonical step on the CUDA backend: `Identity::step` (src/train/canonical.rs) launch for launch, on
//! one identity's model held on the device. Not yet wired into `gensync train` (no densification on the
//! device yet): tests/train_canonical.rs compares a few of its steps with the CPU path on a GPU.
//!
//! Memory: a persistent arena holds every trainable tensor with its gradient and Adam moments (4 floats per
//! parameter); a transient arena is reset at each step and holds the activations, the rasterizer's tape and
//! the gradients of the intermediate values.

use crate::cpu::adam::AdamGroup;
use crate::cpu::loss::Frames;
use crate::cpu::raster::{Camera, RasterDims, D_SPLAT};
use crate::cpu::triplane::TRIPLANE_FEATURES;
use crate::cuda::adam::{AdamTensor, FusedAdam};
use crate::cuda::elementwise::{axpy, fill};
use crate::cuda::loss::{loss_bwd, loss_fwd, loss_scratch_len, LossInputs};
use crate::cuda::mlp::{dense_bwd, dense_bwd_scratch_len, dense_fwd, DenseBwdInputs, DenseGrads};
use crate::cuda::raster::GpuGaussians;
use crate::cuda::triplane::{triplane_bwd, triplane_fwd};
use crate::cuda::{Arena, DevBuf, Gpu};
use crate::data::Dataset;
use crate::error::Result;
use crate::render::rasterize::{backward_bytes, initial_capacity, GpuRasterizer, GpuScene, GpuTape};
use crate::train::canonical::{frame_inputs, FrameInputs, Identity, Param, FC_INPUT, FC_LAYERS};
use crate::train::schedule::{Group, ADAM_BETA1, ADAM_BETA2, ADAM_EPS};

/// One trainable tensor on the device.
#[derive(Debug, Clone, Copy)]
struct DevParam {
    p: DevBuf<f32>,
    g: DevBuf<f32>,
    m: DevBuf<f32>,
    v: DevBuf<f32>,
}

/// One identity's canonical model on the device.
pub struct GpuIdentity {
    /// The host model whose shapes, box, extent and step this mirrors (its tensors are stale until
    /// `download`).
    host: Identity,
    /// means, log_scales, quats, triplane, then F_c's weight and bias per layer (the order of `host_params`).
    params: Vec<DevParam>,
    adam: FusedAdam,
    rasterizer: GpuRasterizer,
    _persistent: Arena,
    transient: Arena,
}

/// The host tensors in the device order.
fn host_params(id: &Identity) -> Vec<&Param> {
    let mut v = vec![&id.means, &id.log_scales, &id.quats, &id.triplane];
    v.extend(id.fc.iter().flat_map(|l| [&l.w, &l.b]));
    v
}

fn host_params_mut(id: &mut Identity) -> Vec<&mut Param> {
    let mut v = vec![&mut id.means, &mut id.log_scales, &mut id.quats, &mut id.triplane];
    v.extend(id.fc.iter_mut().flat_map(|l| [&mut l.w, &mut l.b]));
    v
}

/// Arena bytes for `floats` floats in `slots` allocations (256-byte alignment each).
fn arena_bytes(floats: usize, slots: usize) -> usize {
    4 * floats + 256 * slots
}

impl GpuIdentity {
    /// Uploads `id` (parameters and Adam moments) for training on frames of `ds`.
    pub fn upload(gpu: &Gpu, id: &Identity, ds: &Dataset) -> Result<Self> {
        let host = host_params(id);
        let floats: usize = host.iter().map(|p| 4 * p.value.len()).sum();
        let mut persistent = Arena::new("canonical parameters", arena_bytes(floats, 4 * host.len()) + 4096)?;
        let mut params = Vec::new();
        for p in &host {
            let n = p.value.len();
            let d = DevParam { p: persistent.alloc(gpu, n)?, g: persistent.alloc(gpu, n)?, m: persistent.alloc(gpu, n)?, v: persistent.alloc(gpu, n)? };
            gpu.upload(d.p, &p.value)?;
            gpu.upload(d.m, &p.m)?;
            gpu.upload(d.v, &p.v)?;
            params.push(d);
        }
        let tensors: Vec<AdamTensor> = params
            .iter()
            .zip(&host)
            .map(|(d, h)| AdamTensor { p: d.p, g: d.g, m: d.m, v: d.v, group: h.group as usize })
            .collect();
        let adam = FusedAdam::new(gpu, &mut persistent, &tensors, Group::ALL.len())?;
        let dims = id.raster_dims(ds);
        let rasterizer = GpuRasterizer::new(gpu, initial_capacity(&dims))?;
        let transient = Arena::new("canonical step", Self::transient_bytes(&dims))?;
        Ok(GpuIdentity { host: id.clone(), params, adam, rasterizer, _persistent: persistent, transient })
    }

    /// Transient bytes of one step: F_c's activations and their gradients, the rasterizer's forward and
    /// backward, the loss scratch, the frame's inputs.
    fn transient_bytes(d: &RasterDims) -> usize {
        let n = d.gaussians;
        let fc_out: usize = FC_LAYERS.iter().map(|l| l.1).sum();
        let dense_scratch = FC_LAYERS
            .iter()
            .map(|&(n_in, n_out, act)| dense_bwd_scratch_len(crate::cpu::mlp::Dense { rows: n, n_in, n_out, act }))
            .max()
            .unwrap_or(0);
        let frames = Frames { b: 1, h: d.height, w: d.width };
        let floats = n * (2 * TRIPLANE_FEATURES + 2 * fc_out + 128 + 3) + dense_scratch + loss_scratch_len(frames) + 4 * 3 * d.pixels() + 8;
        arena_bytes(floats, 40) + GpuTape::bytes(d) + backward_bytes(d) + 4 * D_SPLAT + 4096
    }

    /// One training step on frame `frame` of `ds`, learning rates × `lr_scale`; returns the loss (waits for
    /// the device to read it).
    pub fn step(&mut self, gpu: &Gpu, ds: &Dataset, frame: usize, lr_scale: f32) -> Result<f32> {
        let h = &self.host;
        let n = h.len();
        let dims = h.raster_dims(ds);
        let frames = Frames { b: 1, h: dims.height, w: dims.width };
        let FrameInputs { cam, gt, background, lip } = frame_inputs(ds, frame);
        let ar = &mut self.transient;
        ar.reset();
        let cams = ar.alloc::<Camera>(gpu, 1)?;
        gpu.upload(cams, &[cam])?;
        let gt_d = ar.alloc::<f32>(gpu, gt.len())?;
        gpu.upload(gt_d, &gt)?;
        let background_d = ar.alloc::<f32>(gpu, background.len())?;
        gpu.upload(background_d, &background)?;
        let lip_d = ar.alloc::<i32>(gpu, 4)?;
        gpu.upload(lip_d, &lip)?;
        let [means, log_scales, quats, triplane] = [0, 1, 2, 3].map(|k| self.params[k]);
        let fc = |l: usize| (self.params[4 + 2 * l], self.params[5 + 2 * l]);

        // Forward.
        let features = ar.alloc::<f32>(gpu, n * TRIPLANE_FEATURES)?;
        triplane_fwd(gpu, means.p, triplane.p, &h.tri_box, features)?;
        let mut y = Vec::new();
        for l in 0..FC_LAYERS.len() {
            y.push(ar.alloc::<f32>(gpu, n * FC_LAYERS[l].1)?);
            let x = FC_INPUT[l].map_or(features, |j| y[j]);
            let (w, b) = fc(l);
            dense_fwd(gpu, h.dense(l), x, w.p, Some(b.p), y[l])?;
        }
        let scene = GpuScene {
            cams,
            gaussians: GpuGaussians { means: means.p, log_scales: log_scales.p, quats: quats.p, opacity_logits: y[3], sh: y[5] },
            background: background_d,
        };
        let tape = self.rasterizer.forward_checked(gpu, ar, &dims, &scene)?;
        let loss_in = LossInputs { render: tape.out.image, gt: gt_d, lip: lip_d, scratch: ar.alloc(gpu, loss_scratch_len(frames))? };
        let parts = ar.alloc::<f32>(gpu, 4)?;
        loss_fwd(gpu, frames, loss_in, parts)?;

        // Backward.
        let d_image = ar.alloc::<f32>(gpu, frames.values())?;
        loss_bwd(gpu, frames, loss_in, d_image)?;
        let grads = self.rasterizer.backward(gpu, ar, &dims, &scene, &tape, d_image)?;
        // d_y[l]: gradient of layer l's output. Layer 1's output feeds layers 2 and 4: layer 4 writes its
        // gradient, layer 2 adds to it (the CPU path's order).
        let mut d_y: Vec<DevBuf<f32>> = Vec::new();
        for (l, &(_, n_out, _)) in FC_LAYERS.iter().enumerate() {
            d_y.push(match l {
                3 => grads.d_opacity_logits,
                5 => grads.d_sh,
                _ => ar.alloc(gpu, n * n_out)?,
            });
        }
        let d_features = ar.alloc::<f32>(gpu, n * TRIPLANE_FEATURES)?;
        let d_h1_from_opacity = ar.alloc::<f32>(gpu, n * FC_LAYERS[1].1)?;
        let scratch_len = (0..FC_LAYERS.len()).map(|l| dense_bwd_scratch_len(h.dense(l))).max().unwrap_or(0);
        let scratch = ar.alloc::<f32>(gpu, scratch_len)?;
        for l in [5, 4, 3, 2, 1, 0] {
            let x = FC_INPUT[l].map_or(features, |j| y[j]);
            let d_x = match l {
                0 => d_features,
                2 => d_h1_from_opacity,
                _ => d_y[FC_INPUT[l].expect("only layer 0 reads the features")],
            };
            let (w, b) = fc(l);
            let inputs = DenseBwdInputs { x, w: w.p, y: y[l], d_y: d_y[l] };
            dense_bwd(gpu, h.dense(l), inputs, DenseGrads { d_x, d_w: w.g, d_b: Some(b.g) }, scratch)?;
            if l == 2 {
                axpy(gpu, d_y[1], d_h1_from_opacity, 1.0)?;
            }
        }
        let d_means_triplane = ar.alloc::<f32>(gpu, 3 * n)?;
        fill(gpu, triplane.g, 0.0)?;
        triplane_bwd(gpu, means.p, triplane.p, &h.tri_box, d_features, triplane.g, d_means_triplane)?;
        gpu.copy(means.g, grads.d_means)?;
        axpy(gpu, means.g, d_means_triplane, 1.0)?;
        gpu.copy(log_scales.g, grads.d_log_scales)?;
        gpu.copy(quats.g, grads.d_quats)?;

        // Update.
        let groups: Vec<AdamGroup> = Group::ALL
            .iter()
            .map(|g| AdamGroup::new(lr_scale * g.lr(h.step, h.extent), ADAM_BETA1, ADAM_BETA2, ADAM_EPS, h.step + 1))
            .collect();
        self.adam.set_groups(gpu, &groups)?;
        self.adam.step(gpu)?;
        self.host.step += 1;
        Ok(gpu.download(parts.slice(3, 1))?[0])
    }

    /// The model as trained so far: parameters and Adam moments from the device, the step count; F_c's
    /// outputs baked. (The densification statistics are not kept on the device yet.)
    pub fn download(&self, gpu: &Gpu) -> Result<Identity> {
        let mut id = self.host.clone();
        for (h, d) in host_params_mut(&mut id).into_iter().zip(&self.params) {
            h.value = gpu.download(d.p)?;
            h.m = gpu.download(d.m)?;
            h.v = gpu.download(d.v)?;
        }
        id.bake();
        Ok(id)
    }
}

