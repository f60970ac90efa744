//! The canonical step on the CUDA backend: `Identity::step` (src/train/canonical.rs) launch for launch, on
//! one identity's model held on the device, with the densification statistics accumulated and the
//! densification done on the device too. tests/train_canonical.rs compares steps and a densification with
//! the CPU path on a GPU.
//!
//! Memory: the training frames live on the device as bytes (`DeviceFrames`), so a step copies nothing from
//! the host. A persistent arena holds every trainable tensor with its gradient and Adam moments (4 floats
//! per parameter), the statistics and the loss log; a transient arena is reset at each step and holds the
//! activations, the rasterizer's tape and the gradients of the intermediate values. A densification
//! builds a new persistent arena of the new size.
//!
//! Host synchronisation: the rasterizer's overflow check once per step, the new count once per
//! densification, and the loss log when it is full or read.

use crate::cpu::adam::AdamGroup;
use crate::cpu::densify::Role;
use crate::cpu::loss::Frames;
use crate::cpu::raster::{Camera, RasterDims, D_SPLAT};
use crate::cpu::triplane::TRIPLANE_FEATURES;
use crate::cuda::adam::{AdamTensor, FusedAdam};
use crate::cuda::densify::{densify_accumulate, densify_apply, densify_plan, AttrCopy, DensifyStats};
use crate::cuda::elementwise::{axpy, fill, fill_spans, unit_from_u8};
use crate::cuda::loss::{loss_bwd, loss_fwd, loss_scratch_len, LossInputs};
use crate::cuda::mlp::{dense_bwd, dense_bwd_scratch_len, dense_fwd, DenseBwdInputs, DenseGrads};
use crate::cuda::raster::GpuGaussians;
use crate::cuda::triplane::{triplane_bwd, triplane_fwd};
use crate::cuda::{Arena, DevBuf, Gpu};
use crate::data::Dataset;
use crate::error::Result;
use crate::render::rasterize::{backward_bytes, initial_capacity, GpuRasterizer, GpuScene, GpuTape};
use crate::train::canonical::{frame_inputs, Identity, Param, FC_INPUT, FC_LAYERS};
use crate::train::schedule::{Group, ADAM_BETA1, ADAM_BETA2, ADAM_EPS};

/// Losses kept on the device before the log is copied to the host (one synchronisation per this many steps).
const LOSS_LOG: usize = 4096;

/// A dataset's training frames on the device: RGB and background bytes, cameras and lip boxes.
pub struct DeviceFrames {
    width: usize,
    height: usize,
    /// [frames, H, W, 3]
    rgb: DevBuf<u8>,
    /// [1 or frames, H, W, 3]
    backgrounds: DevBuf<u8>,
    per_frame_background: bool,
    cams: DevBuf<Camera>,
    /// [frames, 4]
    lips: DevBuf<i32>,
    _arena: Arena,
}

impl DeviceFrames {
    /// Uploads the training frames of `ds` (the held-out frames stay on the host).
    pub fn upload(gpu: &Gpu, ds: &Dataset) -> Result<Self> {
        let h = ds.header();
        let frames = h.train_frames as usize;
        let values = h.rgb_bytes();
        let per_frame_background = h.background_count > 1;
        let background_count = if per_frame_background { frames } else { 1 };
        let bytes = values * (frames + background_count) + (16 + 80) * frames + 4 * 256;
        let mut arena = Arena::new("training frames", bytes)?;
        let rgb = arena.alloc::<u8>(gpu, values * frames)?;
        let backgrounds = arena.alloc::<u8>(gpu, values * background_count)?;
        let cams = arena.alloc::<Camera>(gpu, frames)?;
        let lips = arena.alloc::<i32>(gpu, 4 * frames)?;
        let mut host_cams = Vec::with_capacity(frames);
        let mut host_lips = Vec::with_capacity(4 * frames);
        for f in 0..frames {
            gpu.upload(rgb.slice(f * values, values), ds.rgb(f))?;
            if f < background_count {
                gpu.upload(backgrounds.slice(f * values, values), ds.background(f))?;
            }
            let inputs = frame_inputs(ds, f);
            host_cams.push(inputs.cam);
            host_lips.extend(inputs.lip);
        }
        gpu.upload(cams, &host_cams)?;
        gpu.upload(lips, &host_lips)?;
        // The uploads read pageable host memory; wait before the caller may drop the dataset.
        gpu.synchronize()?;
        let (width, height) = (h.width as usize, h.height as usize);
        Ok(DeviceFrames { width, height, rgb, backgrounds, per_frame_background, cams, lips, _arena: arena })
    }

    fn frame_bytes(&self) -> usize {
        3 * self.width * self.height
    }
}

/// One trainable tensor on the device.
#[derive(Debug, Clone, Copy)]
struct DevParam {
    p: DevBuf<f32>,
    g: DevBuf<f32>,
    m: DevBuf<f32>,
    v: DevBuf<f32>,
}

/// The persistent state: parameters with gradients and moments, statistics, loss log, optimiser.
struct Persistent {
    /// means, log_scales, quats, triplane, then F_c's weight and bias per layer (the order of `host_params`).
    params: Vec<DevParam>,
    stats: DensifyStats,
    loss_log: DevBuf<f32>,
    adam: FusedAdam,
    _arena: Arena,
}

impl Persistent {
    /// Room for parameters of the given lengths (and statistics of `n` Gaussians); the tensors are left
    /// unwritten and the statistics zeroed.
    fn new(gpu: &Gpu, lens: &[usize], groups: &[Group], n: usize) -> Result<Self> {
        let floats: usize = 4 * lens.iter().sum::<usize>() + 5 * n + LOSS_LOG;
        let mut arena = Arena::new("canonical parameters", arena_bytes(floats, 4 * lens.len() + 8) + 4096)?;
        let mut params = Vec::new();
        for &len in lens {
            params.push(DevParam { p: arena.alloc(gpu, len)?, g: arena.alloc(gpu, len)?, m: arena.alloc(gpu, len)?, v: arena.alloc(gpu, len)? });
        }
        let tensors: Vec<AdamTensor> = params
            .iter()
            .zip(groups)
            .map(|(d, &group)| AdamTensor { p: d.p, g: d.g, m: d.m, v: d.v, group: group as usize })
            .collect();
        let adam = FusedAdam::new(gpu, &mut arena, &tensors, Group::ALL.len())?;
        let stats = DensifyStats {
            // Filled by each densification from F_c's current output.
            opacity: arena.alloc(gpu, n)?,
            log_scales: params[1].p,
            grad_accum: arena.alloc(gpu, n)?,
            visible: arena.alloc(gpu, n)?,
            max_radius: arena.alloc(gpu, n)?,
        };
        let loss_log = arena.alloc(gpu, LOSS_LOG)?;
        Ok(Persistent { params, stats, loss_log, adam, _arena: arena })
    }
}

/// One identity's canonical model on the device.
pub struct GpuIdentity {
    /// The host model whose box, extent, step and shapes this mirrors. Its tensors are stale until
    /// `download`, but their lengths follow the device (densification resizes them).
    host: Identity,
    state: Persistent,
    /// The training frames' size.
    width: usize,
    height: usize,
    rasterizer: GpuRasterizer,
    transient: Arena,
    /// Losses of the steps since the last `take_losses`: `logged` on the device, `drained` copied already.
    logged: usize,
    drained: Vec<f32>,
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

/// Widths of the per-Gaussian parameters (means, log-scales, quaternions), the first three of `host_params`.
const GAUSSIAN_WIDTHS: [usize; 3] = [3, 3, 4];

/// triplane_fwd then F_c's six layers into `ar`: the features and every layer's output.
fn fc_forward(gpu: &Gpu, ar: &mut Arena, host: &Identity, params: &[DevParam]) -> Result<(DevBuf<f32>, Vec<DevBuf<f32>>)> {
    let n = host.len();
    let features = ar.alloc::<f32>(gpu, n * TRIPLANE_FEATURES)?;
    triplane_fwd(gpu, params[0].p, params[3].p, &host.tri_box, features)?;
    let mut y = Vec::new();
    for l in 0..FC_LAYERS.len() {
        y.push(ar.alloc::<f32>(gpu, n * FC_LAYERS[l].1)?);
        let x = FC_INPUT[l].map_or(features, |j| y[j]);
        dense_fwd(gpu, host.dense(l), x, params[4 + 2 * l].p, Some(params[5 + 2 * l].p), y[l])?;
    }
    Ok((features, y))
}

impl GpuIdentity {
    /// Uploads `id` (parameters, Adam moments and densification statistics) for training on `frames`.
    pub fn upload(gpu: &Gpu, id: &Identity, frames: &DeviceFrames) -> Result<Self> {
        let host = host_params(id);
        let lens: Vec<usize> = host.iter().map(|p| p.value.len()).collect();
        let groups: Vec<Group> = host.iter().map(|p| p.group).collect();
        let state = Persistent::new(gpu, &lens, &groups, id.len())?;
        for (d, p) in state.params.iter().zip(&host) {
            gpu.upload(d.p, &p.value)?;
            gpu.upload(d.m, &p.m)?;
            gpu.upload(d.v, &p.v)?;
        }
        gpu.upload(state.stats.grad_accum, &id.stats.grad_accum)?;
        gpu.upload(state.stats.visible, &id.stats.visible)?;
        gpu.upload(state.stats.max_radius, &id.stats.max_radius)?;
        let dims = id.raster_dims(frames.width, frames.height);
        let rasterizer = GpuRasterizer::new(gpu, initial_capacity(&dims))?;
        let transient = Arena::new("canonical step", Self::transient_bytes(&dims))?;
        // The uploads read the host model; wait before the caller may change it.
        gpu.synchronize()?;
        Ok(GpuIdentity { host: id.clone(), state, width: frames.width, height: frames.height, rasterizer, transient, logged: 0, drained: Vec::new() })
    }

    /// Gaussians N.
    pub fn len(&self) -> usize {
        self.host.len()
    }

    pub fn is_empty(&self) -> bool {
        self.host.is_empty()
    }

    /// Steps done.
    pub fn steps_done(&self) -> u32 {
        self.host.step
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

    /// One training step on training frame `frame`, learning rates × `lr_scale`. The loss stays on the
    /// device until `take_losses`.
    pub fn step(&mut self, gpu: &Gpu, frames: &DeviceFrames, frame: usize, lr_scale: f32) -> Result<()> {
        let h = &self.host;
        let n = h.len();
        let dims = h.raster_dims(frames.width, frames.height);
        let image = Frames { b: 1, h: dims.height, w: dims.width };
        let ar = &mut self.transient;
        ar.reset();
        let values = frames.frame_bytes();
        let gt = ar.alloc::<f32>(gpu, values)?;
        unit_from_u8(gpu, gt, frames.rgb.slice(frame * values, values))?;
        let background = ar.alloc::<f32>(gpu, values)?;
        let bg = if frames.per_frame_background { frame } else { 0 };
        unit_from_u8(gpu, background, frames.backgrounds.slice(bg * values, values))?;
        let lip = frames.lips.slice(4 * frame, 4);
        let params = &self.state.params;
        let [means, log_scales, quats, triplane] = [0, 1, 2, 3].map(|k| params[k]);
        let fc = |l: usize| (params[4 + 2 * l], params[5 + 2 * l]);

        // Forward.
        let (features, y) = fc_forward(gpu, ar, h, params)?;
        let scene = GpuScene {
            cams: frames.cams.slice(frame, 1),
            gaussians: GpuGaussians { means: means.p, log_scales: log_scales.p, quats: quats.p, opacity_logits: y[3], sh: y[5] },
            background,
        };
        let tape = self.rasterizer.forward_checked(gpu, ar, &dims, &scene)?;
        let loss_in = LossInputs { render: tape.out.image, gt, lip, scratch: ar.alloc(gpu, loss_scratch_len(image))? };
        let parts = ar.alloc::<f32>(gpu, 4)?;
        loss_fwd(gpu, image, loss_in, parts)?;

        // Backward.
        let d_image = ar.alloc::<f32>(gpu, image.values())?;
        loss_bwd(gpu, image, loss_in, d_image)?;
        let grads = self.rasterizer.backward(gpu, ar, &dims, &scene, &tape, d_image)?;
        densify_accumulate(gpu, tape.splat, grads.d_mean2d_norm, &self.state.stats)?;
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
        self.state.adam.set_groups(gpu, &groups)?;
        self.state.adam.step(gpu)?;
        gpu.copy(self.state.loss_log.slice(self.logged, 1), parts.slice(3, 1))?;
        self.logged += 1;
        if self.logged == LOSS_LOG {
            self.drain_losses(gpu)?;
        }
        self.host.step += 1;
        Ok(())
    }

    fn drain_losses(&mut self, gpu: &Gpu) -> Result<()> {
        if self.logged > 0 {
            self.drained.extend(gpu.download(self.state.loss_log.slice(0, self.logged))?);
            self.logged = 0;
        }
        Ok(())
    }

    /// The losses of the steps since the last call, in order (waits for the device).
    pub fn take_losses(&mut self, gpu: &Gpu) -> Result<Vec<f32>> {
        self.drain_losses(gpu)?;
        Ok(std::mem::take(&mut self.drained))
    }

    /// `Identity::densify` on the device: classify with F_c's current opacity and the statistics, then
    /// scatter the Gaussians' parameters and Adam moments into a new persistent arena; the statistics
    /// restart. Waits for the device twice (the new count, and before the old arena is freed).
    pub fn densify(&mut self, gpu: &Gpu, seed: u64) -> Result<()> {
        self.drain_losses(gpu)?;
        let rule = self.host.densify_rule();
        let ar = &mut self.transient;
        ar.reset();
        let old = &self.state;
        let (_, y) = fc_forward(gpu, ar, &self.host, &old.params)?;
        gpu.copy(old.stats.opacity, y[3])?;
        let plan = densify_plan(gpu, ar, &old.stats, &rule)?;
        let m = plan.new_count;
        let host = host_params(&self.host);
        let lens: Vec<usize> = host.iter().enumerate().map(|(k, p)| if k < 3 { GAUSSIAN_WIDTHS[k] * m } else { p.value.len() }).collect();
        let groups: Vec<Group> = host.iter().map(|p| p.group).collect();
        let new = Persistent::new(gpu, &lens, &groups, m)?;
        let mut attrs = Vec::new();
        for (k, width) in GAUSSIAN_WIDTHS.into_iter().enumerate() {
            let (src, dst) = (old.params[k], new.params[k]);
            let role = [Role::Means, Role::LogScales, Role::Param][k];
            attrs.push(AttrCopy { src: src.p, dst: dst.p, width, role });
            attrs.push(AttrCopy { src: src.m, dst: dst.m, width, role: Role::OptimizerState });
            attrs.push(AttrCopy { src: src.v, dst: dst.v, width, role: Role::OptimizerState });
        }
        let [means, log_scales, quats] = [0, 1, 2].map(|k| old.params[k].p);
        densify_apply(gpu, ar, &plan, [means, log_scales, quats], seed, &attrs)?;
        for (src, dst) in old.params.iter().zip(&new.params).skip(3) {
            gpu.copy(dst.p, src.p)?;
            gpu.copy(dst.m, src.m)?;
            gpu.copy(dst.v, src.v)?;
        }
        fill_spans(gpu, &[new.stats.grad_accum, new.stats.visible, new.stats.max_radius], 0.0)?;
        gpu.synchronize()?;
        self.state = new;
        for (k, p) in host_params_mut(&mut self.host).into_iter().take(3).enumerate() {
            let len = GAUSSIAN_WIDTHS[k] * m;
            for t in [&mut p.value, &mut p.m, &mut p.v] {
                t.resize(len, 0.0);
            }
        }
        let st = &mut self.host.stats;
        for t in [&mut st.grad_accum, &mut st.visible, &mut st.max_radius] {
            t.resize(m, 0.0);
        }
        let dims = self.host.raster_dims(self.width, self.height);
        self.transient = Arena::new("canonical step", Self::transient_bytes(&dims))?;
        Ok(())
    }

    /// The model as trained so far: parameters, Adam moments and densification statistics from the device,
    /// the step count; F_c's current opacity and SH baked.
    pub fn download(&mut self, gpu: &Gpu) -> Result<Identity> {
        let mut id = self.host.clone();
        for (h, d) in host_params_mut(&mut id).into_iter().zip(&self.state.params) {
            h.value = gpu.download(d.p)?;
            h.m = gpu.download(d.m)?;
            h.v = gpu.download(d.v)?;
        }
        let s = &self.state.stats;
        id.stats.grad_accum = gpu.download(s.grad_accum)?;
        id.stats.visible = gpu.download(s.visible)?;
        id.stats.max_radius = gpu.download(s.max_radius)?;
        let ar = &mut self.transient;
        ar.reset();
        let (_, y) = fc_forward(gpu, ar, &self.host, &self.state.params)?;
        id.opacity_logits = gpu.download(y[3])?;
        id.sh = gpu.download(y[5])?;
        Ok(id)
    }
}
