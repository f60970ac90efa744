//! The canonical stage (SPEC §5, §7) on the CPU backend: per identity, Gaussians on the head surface whose
//! opacity and SH come from F_c(triplane(μ)), trained at batch 1 against the dataset's frames with the
//! frame's ground-truth pose, intrinsics and background; Adam per parameter group; densification and
//! pruning; at the end F_c's opacity and SH are baked into the Gaussians.
//!
//! Each identity gets its own triplane (and box) and F_c here: the canonical stage trains identities one
//! after the other, and a shared triplane would be overwritten by each in turn.
//!
//! One step, as a tape (`Identity::step`):
//!   forward:  triplane_fwd → F_c (trunk 2 layers, opacity head 2, SH head 2) → rasterize → loss_fwd
//!   backward: loss_bwd → rasterize backward → SH head, opacity head, trunk → triplane_bwd
//!   update:   Adam on means, log-scales, quaternions, triplane, F_c; densification statistics
//!
//! Randomness: the frame of step s of identity k is drawn from `Rng::new(step_seed(seed, k, s))`, and a
//! densification at step s uses that seed plus one, so a resumed run draws exactly what an unbroken one does.

use crate::cpu::adam::{adam_step, AdamGroup};
use crate::cpu::densify::{densify_accumulate, densify_classify, densify_scatter, Action, Attribute, DensifyRule, Role};
use crate::cpu::loss::{loss_bwd, loss_fwd, Frames};
use crate::cpu::mlp::{dense_bwd, dense_fwd, Act, Dense, DenseGrads};
use crate::cpu::raster::{Camera, Gaussians, RasterDims, SH_COEFFS};
use crate::cpu::sort::exclusive_scan;
use crate::cpu::triplane::{triplane_bwd, triplane_fwd, triplane_init, TriplaneBox, TRIPLANE_FEATURES, TRIPLANE_FLOATS};
use crate::data::format::SOURCE_SYNTH;
use crate::data::mesh::{head_mesh, Expression};
use crate::data::synth::{dataset_path, Identity as SynthIdentity};
use crate::data::Dataset;
use crate::backend::Backend;
use crate::cuda::Gpu;
use crate::error::{Error, Result};
use crate::render::rasterize::{backward_cpu, forward_cpu};
use crate::rng::{mix, Rng};
use crate::train::canonical_gpu::{DeviceFrames, GpuIdentity};
use crate::train::checkpoint::Checkpoint;
use crate::train::init::knn_log_scales;
use crate::train::schedule::{Group, ADAM_BETA1, ADAM_BETA2, ADAM_EPS};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Written into every checkpoint; a checkpoint naming anything else is refused on --resume.
pub const ARCHITECTURE: &str = "gensync-canonical-1: triplane 3x(64²,128²)x32 product+concat, F_c 64-128-128 heads 128-1 128-48";
pub const STAGE: &str = "canonical";
/// SH floats per Gaussian: [16, 3].
const SH_FLOATS: usize = SH_COEFFS * 3;
/// F_c's six dense layers: trunk 64→128 ReLU →128 (the heads' leading ReLU applied here, which is the
/// same function), opacity head 128→128 ReLU →1, SH head 128→128 ReLU →48.
pub(crate) const FC_LAYERS: [(usize, usize, Act); 6] = [
    (TRIPLANE_FEATURES, 128, Act::Relu),
    (128, 128, Act::Relu),
    (128, 128, Act::Relu),
    (128, 1, Act::None),
    (128, 128, Act::Relu),
    (128, SH_FLOATS, Act::None),
];
/// Initial opacity (SPEC §5): the opacity head's output bias starts at logit(0.1).
const INIT_OPACITY: f32 = 0.1;
/// The output layers start small (weights × 0.1) so every Gaussian starts near opacity 0.1 and grey.
const OUT_LAYER_GAIN: f32 = 0.1;

/// The canonical schedule of SPEC §7.
const SH_DEGREE_EVERY: u32 = 1000;
const DENSIFY_EVERY: u32 = 100;
const PRUNE_FROM: u32 = 500;
const DENSIFY_FROM: u32 = 1000;
const DENSIFY_UNTIL: u32 = 7000;
const MAX_GAUSSIANS: usize = 50_000;
/// Mean view-space gradient norm (NDC) above which a Gaussian is densified (GaussianTalker's value).
const GRAD_THRESHOLD: f32 = 0.001;
/// 3DGS's percent_dense: clone below this fraction of the extent, split above.
const PERCENT_DENSE: f32 = 0.01;
const MIN_OPACITY: f32 = 0.005;
/// After this step, also prune by screen radius and world scale.
const PRUNE_LARGE_FROM: u32 = 3000;
const MAX_SCREEN_RADIUS: f32 = 20.0;
const MAX_WORLD_SCALE: f32 = 0.1;

/// One trainable tensor, its Adam moments and its learning-rate group.
#[derive(Debug, Clone)]
pub struct Param {
    pub value: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub group: Group,
}

impl Param {
    fn new(value: Vec<f32>, group: Group) -> Self {
        let n = value.len();
        Param { value, m: vec![0.0; n], v: vec![0.0; n], group }
    }

    /// Adam at 0-based `step`, the group's rate times `lr_scale`.
    fn adam(&mut self, grad: &[f32], step: u32, extent: f32, lr_scale: f32) {
        let h = AdamGroup::new(lr_scale * self.group.lr(step, extent), ADAM_BETA1, ADAM_BETA2, ADAM_EPS, step + 1);
        adam_step(&mut self.value, grad, &mut self.m, &mut self.v, &h);
    }

    fn save(&self, ck: &mut Checkpoint, name: &str, shape: &[usize]) {
        ck.put_f32(name, shape, self.value.clone());
        ck.put_f32(&format!("{name}.adam_m"), shape, self.m.clone());
        ck.put_f32(&format!("{name}.adam_v"), shape, self.v.clone());
    }

    fn load(ck: &Checkpoint, file: &Path, name: &str, shape: &[usize], group: Group) -> Result<Self> {
        let get = |n: &str| ck.f32(file, n, shape).map(<[f32]>::to_vec);
        let value = get(name)?;
        let (m, v) = (get(&format!("{name}.adam_m"))?, get(&format!("{name}.adam_v"))?);
        if m.len() != value.len() || v.len() != value.len() {
            return Err(Error::input(format!("{}: {name}: Adam moments and values differ in size", file.display())));
        }
        Ok(Param { value, m, v, group })
    }
}

/// A dense layer's weights [O,I] and bias [O].
#[derive(Debug, Clone)]
pub struct Layer {
    pub w: Param,
    pub b: Param,
}

/// The activations of F_c over N Gaussians, kept for the backward.
struct FcTape {
    features: Vec<f32>,
    /// Outputs of layers 0..6: trunk h0, h1; opacity head h2, logits; SH head h4, sh.
    y: [Vec<f32>; 6],
}

/// The per-Gaussian densification statistics accumulated between densifications.
#[derive(Debug, Clone, Default)]
pub struct DensifyStats {
    /// Σ d_mean2d_norm over the steps the Gaussian was visible.
    pub grad_accum: Vec<f32>,
    /// Steps it was visible.
    pub visible: Vec<f32>,
    /// Largest screen radius in pixels.
    pub max_radius: Vec<f32>,
}

impl DensifyStats {
    fn zeros(n: usize) -> Self {
        DensifyStats { grad_accum: vec![0.0; n], visible: vec![0.0; n], max_radius: vec![0.0; n] }
    }
}

/// One identity's canonical model and optimiser state.
#[derive(Debug, Clone)]
pub struct Identity {
    pub index: u32,
    /// Steps done.
    pub step: u32,
    /// means [N,3]
    pub means: Param,
    /// log_scales [N,3]
    pub log_scales: Param,
    /// quats [N,4] (wxyz)
    pub quats: Param,
    /// opacity_logits [N] and sh [N,16,3]: F_c's outputs baked at the last save.
    pub opacity_logits: Vec<f32>,
    pub sh: Vec<f32>,
    pub triplane: Param,
    pub tri_box: TriplaneBox,
    pub fc: Vec<Layer>,
    pub stats: DensifyStats,
    /// Camera extent of the training frames (scales the decaying learning rates and the size thresholds).
    pub extent: f32,
}

/// The seed of step `step` of identity `k`.
pub fn step_seed(seed: u64, k: u32, step: u32) -> u64 {
    mix(mix(seed) ^ ((k as u64) << 32 | step as u64))
}

/// 3DGS's camera extent: 1.1 × the largest distance of a training camera centre from their mean. A dataset
/// whose cameras all coincide falls back to the radius of the initial points, so no rate is zero.
pub fn camera_extent(ds: &Dataset, points: &[[f32; 3]]) -> f32 {
    let train = ds.header().train_frames as usize;
    let centres: Vec<[f64; 3]> = ds.frames()[..train]
        .iter()
        .map(|f| {
            let v = f.world_to_camera.map(|x| x as f64);
            // c = −Rᵀ t
            std::array::from_fn(|i| -(v[i] * v[3] + v[4 + i] * v[7] + v[8 + i] * v[11]))
        })
        .collect();
    let radius = |pts: &[[f64; 3]]| {
        let n = pts.len().max(1) as f64;
        let mean: [f64; 3] = std::array::from_fn(|a| pts.iter().map(|p| p[a]).sum::<f64>() / n);
        pts.iter().map(|p| (0..3).map(|a| (p[a] - mean[a]).powi(2)).sum::<f64>().sqrt()).fold(0.0, f64::max)
    };
    let r = radius(&centres);
    let r = if r > 1e-6 { r } else { radius(&points.iter().map(|p| p.map(|x| x as f64)).collect::<Vec<_>>()) };
    (1.1 * r) as f32
}

/// Initial points: the synthetic identity's neutral head-mesh vertices (duplicates removed), thinned to at
/// most `max_points` by an even stride.
pub fn init_points(ds: &Dataset, max_points: Option<usize>) -> Result<Vec<[f32; 3]>> {
    let h = ds.header();
    if h.source != SOURCE_SYNTH {
        return Err(Error::input(format!(
            "{}: imported datasets have no head mesh; the canonical stage initialises from synthetic datasets only for now",
            ds.path().display()
        )));
    }
    let id = SynthIdentity::new(h.seed, h.identity);
    let mesh = head_mesh(&id.look, &Expression::default());
    let mut seen = std::collections::HashSet::new();
    let pts: Vec<[f32; 3]> = mesh.vertices.iter().map(|v| v.pos).filter(|p| seen.insert(p.map(f32::to_bits))).collect();
    Ok(match max_points {
        Some(m) if m < pts.len() => (0..m).map(|i| pts[i * pts.len() / m]).collect(),
        _ => pts,
    })
}

impl Identity {
    /// A fresh model for the dataset's identity (`index` is the dataset's position in the corpus).
    pub fn new(ds: &Dataset, index: u32, seed: u64, max_points: Option<usize>) -> Result<Self> {
        let points = init_points(ds, max_points)?;
        let n = points.len();
        let means: Vec<f32> = points.iter().flatten().copied().collect();
        let log_scales: Vec<f32> = knn_log_scales(&points).into_iter().flatten().collect();
        let quats: Vec<f32> = (0..n).flat_map(|_| [1.0, 0.0, 0.0, 0.0]).collect();
        let mut rng = Rng::new(mix(seed ^ 0x7c3a_11d0) ^ index as u64);
        let triplane = triplane_init(&mut rng);
        let fc = FC_LAYERS
            .iter()
            .enumerate()
            .map(|(l, &(ni, no, _))| {
                // PyTorch's Linear default, U(±1/√in), for weights and bias.
                let bound = 1.0 / (ni as f32).sqrt();
                let out_layer = l == 3 || l == 5;
                let gain = if out_layer { OUT_LAYER_GAIN } else { 1.0 };
                let w = (0..no * ni).map(|_| gain * rng.range(-bound, bound)).collect();
                let b = match l {
                    3 => vec![(INIT_OPACITY / (1.0 - INIT_OPACITY)).ln(); no],
                    5 => vec![0.0; no],
                    _ => rng.vec(no, -bound, bound),
                };
                Layer { w: Param::new(w, Group::Mlp), b: Param::new(b, Group::Mlp) }
            })
            .collect();
        let mut id = Identity {
            index,
            step: 0,
            tri_box: TriplaneBox::from_points(&means),
            means: Param::new(means, Group::Means),
            log_scales: Param::new(log_scales, Group::Scale),
            quats: Param::new(quats, Group::Rotation),
            opacity_logits: vec![0.0; n],
            sh: vec![0.0; SH_FLOATS * n],
            triplane: Param::new(triplane, Group::Triplane),
            fc,
            stats: DensifyStats::zeros(n),
            extent: camera_extent(ds, &points),
        };
        id.bake();
        Ok(id)
    }

    /// Gaussians N.
    pub fn len(&self) -> usize {
        self.means.value.len() / 3
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn dense(&self, l: usize) -> Dense {
        let (n_in, n_out, act) = FC_LAYERS[l];
        Dense { rows: self.len(), n_in, n_out, act }
    }

    /// triplane_fwd then F_c's six layers.
    fn fc_forward(&self) -> FcTape {
        let n = self.len();
        let mut features = vec![0.0; n * TRIPLANE_FEATURES];
        triplane_fwd(&self.means.value, &self.triplane.value, &self.tri_box, &mut features);
        let mut y: [Vec<f32>; 6] = std::array::from_fn(|l| vec![0.0; n * FC_LAYERS[l].1]);
        for (l, input) in FC_INPUT.iter().enumerate() {
            let (done, rest) = y.split_at_mut(l);
            let x = match *input {
                None => &features,
                Some(j) => &done[j],
            };
            let layer = &self.fc[l];
            dense_fwd(self.dense(l), x, &layer.w.value, Some(&layer.b.value), &mut rest[0]);
        }
        FcTape { features, y }
    }

    /// Copies F_c's current opacity and SH into the Gaussians.
    pub fn bake(&mut self) {
        let mut tape = self.fc_forward();
        self.opacity_logits = std::mem::take(&mut tape.y[3]);
        self.sh = std::mem::take(&mut tape.y[5]);
    }

    /// One training step on frame `frame` of `ds`, learning rates × `lr_scale`; returns the loss.
    pub fn step(&mut self, ds: &Dataset, frame: usize, lr_scale: f32) -> f64 {
        let n = self.len();
        let FrameInputs { cam, gt, background, lip } = frame_inputs(ds, frame);
        let (cams, lip) = ([cam], [lip]);
        let dims = self.raster_dims(ds.header().width as usize, ds.header().height as usize);
        let frames = Frames { b: 1, h: dims.height, w: dims.width };

        // Forward.
        let fc = self.fc_forward();
        let g = Gaussians {
            means: &self.means.value,
            log_scales: &self.log_scales.value,
            quats: &self.quats.value,
            opacity_logits: &fc.y[3],
            sh: &fc.y[5],
        };
        let raster = forward_cpu(&dims, &cams, &g, &background);
        let mut d_stats = vec![0.0; 3 * frames.values()];
        let loss = loss_fwd(frames, &raster.out.image, &gt, &lip, &mut d_stats);

        // Backward.
        let mut d_image = vec![0.0; frames.values()];
        loss_bwd(frames, &raster.out.image, &gt, &lip, &d_stats, &mut d_image);
        let grads = backward_cpu(&dims, &cams, &g, &background, &raster, &d_image);
        let fc_grads = self.fc_backward(&fc, &grads.d_opacity_logits, &grads.d_sh);
        let mut d_planes = vec![0.0; TRIPLANE_FLOATS];
        let mut d_means_triplane = vec![0.0; 3 * n];
        triplane_bwd(&self.means.value, &self.triplane.value, &self.tri_box, &fc_grads.d_features, &mut d_planes, &mut d_means_triplane);
        let d_means: Vec<f32> = grads.d_means.iter().zip(&d_means_triplane).map(|(a, b)| a + b).collect();

        // Update.
        let (s, e, k) = (self.step, self.extent, lr_scale);
        self.means.adam(&d_means, s, e, k);
        self.log_scales.adam(&grads.d_log_scales, s, e, k);
        self.quats.adam(&grads.d_quats, s, e, k);
        self.triplane.adam(&d_planes, s, e, k);
        for (layer, (d_w, d_b)) in self.fc.iter_mut().zip(&fc_grads.layers) {
            layer.w.adam(d_w, s, e, k);
            layer.b.adam(d_b, s, e, k);
        }
        let st = &mut self.stats;
        densify_accumulate(&raster.splat, &grads.d_mean2d_norm, &mut st.grad_accum, &mut st.visible, &mut st.max_radius);
        self.step += 1;
        loss.total
    }

    /// The rasterizer's sizes for this step: batch 1, frames of `width` × `height`, SH degree +1 every 1000
    /// steps.
    pub fn raster_dims(&self, width: usize, height: usize) -> RasterDims {
        RasterDims { batch: 1, gaussians: self.len(), width, height, sh_degree: (self.step / SH_DEGREE_EVERY).min(3) as usize }
    }

    /// F_c's backward from d_opacity_logits [N] and d_sh [N,48]: weight gradients per layer and d_features.
    fn fc_backward(&self, tape: &FcTape, d_opacity_logits: &[f32], d_sh: &[f32]) -> FcGrads {
        let n = self.len();
        let mut d_y: [Vec<f32>; 6] = std::array::from_fn(|l| vec![0.0; n * FC_LAYERS[l].1]);
        d_y[3].copy_from_slice(d_opacity_logits);
        d_y[5].copy_from_slice(d_sh);
        let mut layers: Vec<(Vec<f32>, Vec<f32>)> = FC_LAYERS.iter().map(|&(ni, no, _)| (vec![0.0; no * ni], vec![0.0; no])).collect();
        let mut d_features = vec![0.0; n * TRIPLANE_FEATURES];
        // Heads first (SH, opacity), then the trunk: each layer's input gradient adds into its input's d_y.
        for l in [5, 4, 3, 2, 1, 0] {
            let x = FC_INPUT[l].map_or(&tape.features, |j| &tape.y[j]);
            let mut d_x = vec![0.0; x.len()];
            let (d_w, d_b) = &mut layers[l];
            let grads = DenseGrads { d_x: &mut d_x, d_w, d_b: Some(d_b) };
            dense_bwd(self.dense(l), x, &self.fc[l].w.value, &tape.y[l], &d_y[l], grads);
            let target = match FC_INPUT[l] {
                None => &mut d_features,
                Some(j) => &mut d_y[j],
            };
            target.iter_mut().zip(&d_x).for_each(|(t, d)| *t += d);
        }
        FcGrads { layers, d_features }
    }

    /// The thresholds of a densification now (SPEC §7): growth only from DENSIFY_FROM and below
    /// MAX_GAUSSIANS, large-Gaussian pruning after PRUNE_LARGE_FROM.
    pub(crate) fn densify_rule(&self) -> DensifyRule {
        let step = self.step;
        DensifyRule {
            grad_threshold: if step >= DENSIFY_FROM && self.len() < MAX_GAUSSIANS { GRAD_THRESHOLD } else { f32::INFINITY },
            clone_max_scale: PERCENT_DENSE * self.extent,
            min_opacity: MIN_OPACITY,
            prune_large: (step > PRUNE_LARGE_FROM) as u32,
            max_screen_radius: MAX_SCREEN_RADIUS,
            max_world_scale: MAX_WORLD_SCALE * self.extent,
        }
    }

    /// Clone / split / prune (SPEC §7) at the end of step `self.step`, Adam moments carried along; then the
    /// statistics restart.
    pub fn densify(&mut self, seed: u64) {
        let n = self.len();
        let rule = self.densify_rule();
        let opacity_logits = std::mem::take(&mut self.fc_forward().y[3]);
        let st = &self.stats;
        let actions: Vec<Action> = (0..n)
            .map(|i| {
                let ls = [0, 1, 2].map(|a| self.log_scales.value[3 * i + a]);
                densify_classify(opacity_logits[i], ls, st.grad_accum[i], st.visible[i], st.max_radius[i], &rule)
            })
            .collect();
        let counts: Vec<i32> = actions.iter().map(|a| a.count() as i32).collect();
        let mut offsets = vec![0i32; n];
        let total = exclusive_scan(&counts, &mut offsets) as usize;
        let offsets: Vec<usize> = offsets.into_iter().map(|o| o as usize).collect();
        let params = [&self.means, &self.log_scales, &self.quats];
        let widths = [3, 3, 4];
        let mut out: Vec<Vec<f32>> = (0..9).map(|k| vec![0.0; widths[k / 3] * total]).collect();
        {
            let roles = [Role::Means, Role::LogScales, Role::Param];
            let mut attrs: Vec<Attribute> = out
                .iter_mut()
                .enumerate()
                .map(|(k, dst)| {
                    let (p, which) = (params[k / 3], k % 3);
                    let src = [&p.value, &p.m, &p.v][which];
                    let role = if which == 0 { roles[k / 3] } else { Role::OptimizerState };
                    Attribute { src, dst, width: widths[k / 3], role }
                })
                .collect();
            densify_scatter(&actions, &offsets, &self.means.value, &self.log_scales.value, &self.quats.value, seed, &mut attrs);
        }
        let mut out = out.into_iter();
        for p in [&mut self.means, &mut self.log_scales, &mut self.quats] {
            p.value = out.next().unwrap();
            p.m = out.next().unwrap();
            p.v = out.next().unwrap();
        }
        self.stats = DensifyStats::zeros(total);
    }

    /// Writes this identity's tensors under `identity-KK.` (F_c's outputs baked first).
    fn save(&mut self, ck: &mut Checkpoint) {
        self.bake();
        let n = self.len();
        let p = prefix(self.index);
        self.means.save(ck, &format!("{p}means"), &[n, 3]);
        self.log_scales.save(ck, &format!("{p}log_scales"), &[n, 3]);
        self.quats.save(ck, &format!("{p}quats"), &[n, 4]);
        ck.put_f32(&format!("{p}opacity_logits"), &[n], self.opacity_logits.clone());
        ck.put_f32(&format!("{p}sh"), &[n, SH_COEFFS, 3], self.sh.clone());
        self.triplane.save(ck, &format!("{p}triplane"), &[TRIPLANE_FLOATS]);
        let b = &self.tri_box;
        ck.put_f32(&format!("{p}triplane_box"), &[2, 3], b.lo.iter().chain(&b.inv_extent).copied().collect());
        for (l, layer) in self.fc.iter().enumerate() {
            let (ni, no, _) = FC_LAYERS[l];
            layer.w.save(ck, &format!("{p}fc.{l}.weight"), &[no, ni]);
            layer.b.save(ck, &format!("{p}fc.{l}.bias"), &[no]);
        }
        ck.put_f32(&format!("{p}densify.grad_accum"), &[n], self.stats.grad_accum.clone());
        ck.put_f32(&format!("{p}densify.visible"), &[n], self.stats.visible.clone());
        ck.put_f32(&format!("{p}densify.max_radius"), &[n], self.stats.max_radius.clone());
        ck.put_f32(&format!("{p}extent"), &[1], vec![self.extent]);
        ck.put_i64(&format!("{p}step"), &[1], vec![self.step as i64]);
    }

    /// Identity `index` of a canonical checkpoint (`open_checkpoint`), parameters, Adam state and baked F_c outputs.
    pub fn load(ck: &Checkpoint, file: &Path, index: u32) -> Result<Self> {
        let p = prefix(index);
        let any = usize::MAX;
        let means = Param::load(ck, file, &format!("{p}means"), &[any, 3], Group::Means)?;
        let n = means.value.len() / 3;
        let f32s = |name: &str, shape: &[usize]| ck.f32(file, &format!("{p}{name}"), shape).map(<[f32]>::to_vec);
        let bx = f32s("triplane_box", &[2, 3])?;
        let fc = FC_LAYERS
            .iter()
            .enumerate()
            .map(|(l, &(ni, no, _))| {
                Ok(Layer {
                    w: Param::load(ck, file, &format!("{p}fc.{l}.weight"), &[no, ni], Group::Mlp)?,
                    b: Param::load(ck, file, &format!("{p}fc.{l}.bias"), &[no], Group::Mlp)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let step = ck.i64(file, &format!("{p}step"), &[1])?[0];
        Ok(Identity {
            index,
            step: u32::try_from(step).map_err(|_| Error::input(format!("{}: {p}step {step} out of range", file.display())))?,
            log_scales: Param::load(ck, file, &format!("{p}log_scales"), &[n, 3], Group::Scale)?,
            quats: Param::load(ck, file, &format!("{p}quats"), &[n, 4], Group::Rotation)?,
            opacity_logits: f32s("opacity_logits", &[n])?,
            sh: f32s("sh", &[n, SH_COEFFS, 3])?,
            triplane: Param::load(ck, file, &format!("{p}triplane"), &[TRIPLANE_FLOATS], Group::Triplane)?,
            tri_box: TriplaneBox { lo: [bx[0], bx[1], bx[2]], inv_extent: [bx[3], bx[4], bx[5]] },
            fc,
            stats: DensifyStats {
                grad_accum: f32s("densify.grad_accum", &[n])?,
                visible: f32s("densify.visible", &[n])?,
                max_radius: f32s("densify.max_radius", &[n])?,
            },
            extent: f32s("extent", &[1])?[0],
            means,
        })
    }
}

/// Layer l's input: None for the triplane features, Some(j) for layer j's output.
pub(crate) const FC_INPUT: [Option<usize>; 6] = [None, Some(0), Some(1), Some(2), Some(1), Some(4)];

/// F_c's weight and bias gradients per layer, and the gradient of its input features [N,64].
struct FcGrads {
    layers: Vec<(Vec<f32>, Vec<f32>)>,
    d_features: Vec<f32>,
}

/// What one step reads from a frame: camera, ground truth and background RGB in [0, 1] [H,W,3], lip box.
pub(crate) struct FrameInputs {
    pub cam: Camera,
    pub gt: Vec<f32>,
    pub background: Vec<f32>,
    pub lip: [i32; 4],
}

pub(crate) fn frame_inputs(ds: &Dataset, frame: usize) -> FrameInputs {
    let rec = &ds.frames()[frame];
    let [fx, fy, cx, cy] = rec.intrinsics;
    let to_f32 = |b: &[u8]| b.iter().map(|&v| v as f32 / 255.0).collect::<Vec<f32>>();
    FrameInputs {
        cam: Camera { view: rec.world_to_camera, fx, fy, cx, cy },
        gt: to_f32(ds.rgb(frame)),
        background: to_f32(ds.background(frame)),
        lip: rec.lip_box.map(|v| v as i32),
    }
}

fn prefix(index: u32) -> String {
    format!("identity-{index:02}.")
}

/// `gensync train --stage canonical`.
#[derive(Debug, Clone)]
pub struct CanonicalOptions {
    /// The corpus folder (identity-KK.gsd files).
    pub data: PathBuf,
    /// The checkpoint to write.
    pub out: PathBuf,
    /// Steps per identity (a resumed run continues up to this count).
    pub steps: u32,
    /// Which identities; None: every identity-KK.gsd in `data` (from 00 up to the first gap).
    pub identities: Option<Vec<u32>>,
    /// Seed of the initialisation and the frame order (a resumed run keeps the checkpoint's).
    pub seed: u64,
    pub resume: Option<PathBuf>,
    /// At most this many initial points per identity (None: every head-mesh vertex).
    pub init_points: Option<usize>,
    /// Multiplies every learning rate (1 = SPEC §7); tiny CPU runs use more to see progress in few steps.
    pub lr_scale: f32,
    pub quiet: bool,
}

/// What a run did, per identity and in all.
#[derive(Debug, Clone, Default)]
pub struct CanonicalReport {
    pub identities: Vec<IdentityReport>,
    /// CUDA backend: the most device memory in use seen (after each densification and at the end), bytes.
    pub peak_device_bytes: usize,
}

/// One identity's part of a run: the loss of every step it ran, the final Gaussian count, the wall time.
#[derive(Debug, Clone)]
pub struct IdentityReport {
    pub index: u32,
    pub losses: Vec<f64>,
    pub gaussians: usize,
    pub seconds: f64,
}

impl IdentityReport {
    /// The mean loss of the last 10 steps (NaN when none ran).
    pub fn final_loss(&self) -> f64 {
        recent_mean(&self.losses)
    }
}

/// The mean of the last 10 losses (NaN for none): what progress lines and reports print.
fn recent_mean(losses: &[f64]) -> f64 {
    let tail = &losses[losses.len().saturating_sub(10)..];
    if tail.is_empty() {
        f64::NAN
    } else {
        tail.iter().sum::<f64>() / tail.len() as f64
    }
}

/// One identity's training on the chosen backend.
enum Run<'a> {
    Cpu { model: Box<Identity>, ds: &'a Dataset, losses: Vec<f64> },
    Cuda { model: Box<GpuIdentity>, frames: Box<DeviceFrames>, gpu: &'a Gpu },
}

impl Run<'_> {
    fn step(&mut self, frame: usize, lr_scale: f32) -> Result<()> {
        match self {
            Run::Cpu { model, ds, losses } => {
                losses.push(model.step(ds, frame, lr_scale));
                Ok(())
            }
            Run::Cuda { model, frames, gpu } => model.step(gpu, frames, frame, lr_scale),
        }
    }

    fn densify(&mut self, seed: u64) -> Result<()> {
        match self {
            Run::Cpu { model, .. } => {
                model.densify(seed);
                Ok(())
            }
            Run::Cuda { model, gpu, .. } => model.densify(gpu, seed),
        }
    }

    /// The losses of the steps since the last call.
    fn take_losses(&mut self) -> Result<Vec<f64>> {
        match self {
            Run::Cpu { losses, .. } => Ok(std::mem::take(losses)),
            Run::Cuda { model, gpu, .. } => Ok(model.take_losses(gpu)?.into_iter().map(f64::from).collect()),
        }
    }

    fn steps_done(&self) -> u32 {
        match self {
            Run::Cpu { model, .. } => model.step,
            Run::Cuda { model, .. } => model.steps_done(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Run::Cpu { model, .. } => model.len(),
            Run::Cuda { model, .. } => model.len(),
        }
    }

    /// Device memory in use now (0 on the CPU).
    fn device_bytes(&self) -> Result<usize> {
        match self {
            Run::Cpu { .. } => Ok(0),
            Run::Cuda { gpu, .. } => gpu.memory_in_use(),
        }
    }

    /// The trained model on the host.
    fn finish(self) -> Result<Identity> {
        match self {
            Run::Cpu { model, .. } => Ok(*model),
            Run::Cuda { mut model, gpu, .. } => model.download(gpu),
        }
    }
}

/// Opens the datasets of the chosen identities; errors name the option or file.
fn open_datasets(o: &CanonicalOptions, identities: &[u32]) -> Result<Vec<Dataset>> {
    if !o.data.is_dir() {
        return Err(Error::input(format!("--data {}: not a folder (a corpus written by `gensync synth`)", o.data.display())));
    }
    identities
        .iter()
        .map(|&k| {
            let path = dataset_path(&o.data, k);
            if !path.exists() {
                return Err(Error::input(format!("--identities: identity {k} has no dataset ({} does not exist)", path.display())));
            }
            let ds = Dataset::open(&path)?;
            if ds.header().train_frames == 0 {
                return Err(Error::input(format!("{}: no training frames", path.display())));
            }
            Ok(ds)
        })
        .collect()
}

/// The identities of a run: the option, the checkpoint's list on resume, or every dataset in the folder.
fn choose_identities(o: &CanonicalOptions, resumed: Option<&Checkpoint>) -> Result<Vec<u32>> {
    if let Some(ids) = &o.identities {
        return Ok(ids.clone());
    }
    if let Some(ck) = resumed {
        return checkpoint_identities(ck);
    }
    let ids: Vec<u32> = (0..).take_while(|&k| dataset_path(&o.data, k).exists()).collect();
    if ids.is_empty() {
        return Err(Error::input(format!("--data {}: no identity-00.gsd (a corpus written by `gensync synth`)", o.data.display())));
    }
    Ok(ids)
}

/// The identities a checkpoint holds (its "identities" metadata).
pub fn checkpoint_identities(ck: &Checkpoint) -> Result<Vec<u32>> {
    parse_identities(ck.metadata.get("identities").map(String::as_str).unwrap_or(""))
}

/// Parses `--identities 0,2,3`.
pub fn parse_identities(s: &str) -> Result<Vec<u32>> {
    let ids: Vec<u32> = s
        .split(',')
        .map(|t| t.trim().parse::<u32>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::input(format!("--identities {s:?}: expected identity indices separated by commas (e.g. 0,1)")))?;
    if ids.is_empty() {
        return Err(Error::input("--identities: empty list"));
    }
    // Twice the same identity would train it twice and store it once.
    if let Some(id) = ids.iter().enumerate().find_map(|(i, id)| ids[..i].contains(id).then_some(id)) {
        return Err(Error::input(format!("--identities {s:?}: identity {id} is listed twice")));
    }
    Ok(ids)
}

/// Loads a checkpoint and checks it is a canonical-stage checkpoint of this architecture.
pub fn open_checkpoint(path: &Path) -> Result<Checkpoint> {
    let ck = Checkpoint::load(path)?;
    let meta = |k: &str| ck.metadata.get(k).map(String::as_str).unwrap_or("");
    if meta("stage") != STAGE || meta("architecture") != ARCHITECTURE {
        return Err(Error::input(format!(
            "{}: a checkpoint of stage {:?}, architecture {:?}; expected a canonical-stage checkpoint of this version",
            path.display(),
            meta("stage"),
            meta("architecture")
        )));
    }
    Ok(ck)
}

/// Trains every chosen identity up to `o.steps` and writes the checkpoint. Everything is validated before
/// the first step, so bad input leaves no output behind.
pub fn train_canonical(o: &CanonicalOptions, backend: &Backend) -> Result<CanonicalReport> {
    if !(o.lr_scale.is_finite() && o.lr_scale > 0.0) {
        return Err(Error::input(format!("--lr-scale {}: must be a positive number", o.lr_scale)));
    }
    if o.init_points == Some(0) {
        return Err(Error::input("--init-points 0: must be at least 1"));
    }
    crate::data::output::check_output_file("--out", &o.out)?;
    let resumed = o.resume.as_deref().map(open_checkpoint).transpose()?;
    let identities = choose_identities(o, resumed.as_ref())?;
    let datasets = open_datasets(o, &identities)?;
    let seed = match &resumed {
        Some(ck) => {
            let s = ck.metadata.get("seed").and_then(|s| s.parse().ok());
            s.ok_or_else(|| Error::input(format!("{}: metadata has no seed", o.resume.as_ref().unwrap().display())))?
        }
        None => o.seed,
    };
    if let Some(ck) = &resumed {
        let trained_with = ck.metadata.get("lr_scale").map(String::as_str).unwrap_or("1");
        if trained_with != o.lr_scale.to_string() {
            return Err(Error::input(format!("--lr-scale {}: the checkpoint was trained with {trained_with}", o.lr_scale)));
        }
    }
    let mut models = identities
        .iter()
        .zip(&datasets)
        .map(|(&k, ds)| match (&resumed, o.resume.as_deref()) {
            (Some(ck), Some(file)) => Identity::load(ck, file, k),
            _ => Identity::new(ds, k, seed, o.init_points),
        })
        .collect::<Result<Vec<_>>>()?;

    let mut report = CanonicalReport::default();
    for (model, ds) in models.iter_mut().zip(&datasets) {
        let k = model.index;
        let train = ds.header().train_frames as u64;
        let (start, mut last_print) = (Instant::now(), Instant::now());
        let first = model.step;
        let mut run = match backend.gpu() {
            None => Run::Cpu { model: Box::new(model.clone()), ds, losses: Vec::new() },
            Some(gpu) => {
                let frames = DeviceFrames::upload(gpu, ds)?;
                Run::Cuda { model: Box::new(GpuIdentity::upload(gpu, model, &frames)?), frames: Box::new(frames), gpu }
            }
        };
        let mut losses = Vec::new();
        while run.steps_done() < o.steps {
            let s = run.steps_done();
            let frame = Rng::new(step_seed(seed, k, s)).below(train) as usize;
            run.step(frame, o.lr_scale)?;
            let done = s + 1;
            if done % DENSIFY_EVERY == 0 && (PRUNE_FROM..=DENSIFY_UNTIL).contains(&done) {
                run.densify(step_seed(seed, k, s).wrapping_add(1))?;
                report.peak_device_bytes = report.peak_device_bytes.max(run.device_bytes()?);
            }
            if !o.quiet && (last_print.elapsed().as_secs_f64() >= 1.0 || done == o.steps) {
                last_print = Instant::now();
                losses.extend(run.take_losses()?);
                let rate = (done - first) as f64 / start.elapsed().as_secs_f64();
                eprintln!(
                    "identity {k}: step {done}/{} loss {:.4} N {} {rate:.1} it/s ETA {:.0} s",
                    o.steps,
                    recent_mean(&losses),
                    run.len(),
                    (o.steps - done) as f64 / rate
                );
            }
        }
        losses.extend(run.take_losses()?);
        report.peak_device_bytes = report.peak_device_bytes.max(run.device_bytes()?);
        *model = run.finish()?;
        report.identities.push(IdentityReport { index: k, losses, gaussians: model.len(), seconds: start.elapsed().as_secs_f64() });
    }

    let mut ck = Checkpoint::default();
    ck.metadata.insert("format".into(), "gensync".into());
    ck.metadata.insert("stage".into(), STAGE.into());
    ck.metadata.insert("architecture".into(), ARCHITECTURE.into());
    ck.metadata.insert("seed".into(), seed.to_string());
    // Absolute, so `render` finds the corpus from any working folder.
    let data = std::fs::canonicalize(&o.data).unwrap_or_else(|_| o.data.clone());
    ck.metadata.insert("data".into(), data.display().to_string());
    ck.metadata.insert("lr_scale".into(), o.lr_scale.to_string());
    ck.metadata.insert("identities".into(), identities.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
    for m in &mut models {
        m.save(&mut ck);
    }
    ck.save(&o.out)?;
    Ok(report)
}
