//! CPU twin of kernels/raster.cu: projection + SH (project_fwd/project_bwd), tile pairs, tile ranges and
//! per-tile blending (raster_fwd/raster_bwd), same names, same formulas in the same order. Generic over
//! `Float` (`Real` plus exp/ln/sqrt) so the same code runs in f32 (the twin the GPU is compared with) and in f64 (finite differences).
//! Layouts, constants and the splat format are documented in the kernel file's header.

use super::real::Real;
use bytemuck::{Pod, Zeroable};

/// Tile side in pixels.
pub const TILE: usize = 16;
/// Floats per splat (3 float4: x y opacity depth | A B C radius_x | r g b radius_y).
pub const SPLAT: usize = 12;
/// Floats per splat gradient (d_x d_y d_A d_B d_C d_opacity d_r d_g d_b).
pub const D_SPLAT: usize = 9;
/// SH coefficients per Gaussian and channel at degree 3; storage is always [.., 16, 3].
pub const SH_COEFFS: usize = 16;
/// Key bits holding the depth: the tile id sits above them.
pub const DEPTH_BITS: u32 = 31;
/// raster_bwd cuts tiles at the pair positions that are multiples of this (RASTER_PIECE in the kernel).
pub const RASTER_PIECE: usize = 256;
/// raster_fwd blends tiles of at most this many pairs in one walk (RASTER_FWD_WHOLE in the kernel).
pub const RASTER_FWD_WHOLE: usize = 1024;
pub const NEAR_PLANE: f64 = 0.01;
pub const LOW_PASS: f64 = 0.3;
pub const ALPHA_MAX: f64 = 0.99;
pub const T_MIN: f64 = 1e-4;
pub const EXTEND_MAX: f64 = 3.33;
pub const FOV_CLAMP: f64 = 0.3;

/// A camera as the kernels read it (`struct Camera` in kernels/raster.cu, 80 bytes): world-to-camera 4×4
/// row-major with OpenCV axes, then the intrinsics in pixels.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct Camera {
    pub view: [f32; 16],
    pub fx: f32,
    pub fy: f32,
    pub cx: f32,
    pub cy: f32,
}

impl Camera {
    /// Looks down +z at the world origin from `distance`, no rotation, principal point at the centre.
    pub fn facing_origin(distance: f32, focal: f32, width: usize, height: usize) -> Self {
        let mut view = [0.0; 16];
        view[0] = 1.0;
        view[5] = 1.0;
        view[10] = 1.0;
        view[11] = distance;
        view[15] = 1.0;
        Camera { view, fx: focal, fy: focal, cx: width as f32 / 2.0, cy: height as f32 / 2.0 }
    }
}

/// Sizes of one rasterizer call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RasterDims {
    /// B frames.
    pub batch: usize,
    /// N Gaussians per frame.
    pub gaussians: usize,
    pub width: usize,
    pub height: usize,
    /// Active SH degree 0..=3.
    pub sh_degree: usize,
}

impl RasterDims {
    pub fn tiles_x(&self) -> usize {
        self.width.div_ceil(TILE)
    }
    pub fn tiles_y(&self) -> usize {
        self.height.div_ceil(TILE)
    }
    /// Tiles per frame.
    pub fn tiles(&self) -> usize {
        self.tiles_x() * self.tiles_y()
    }
    /// B·N.
    pub fn bn(&self) -> usize {
        self.batch * self.gaussians
    }
    /// B·H·W.
    pub fn pixels(&self) -> usize {
        self.batch * self.width * self.height
    }
    /// Key bits sorted: the depth and just enough for the (frame, tile) index.
    pub fn key_bits(&self) -> u32 {
        let ft = (self.batch * self.tiles()).max(1) as u64;
        DEPTH_BITS + (64 - (ft - 1).leading_zeros())
    }
}

/// What the twin needs beyond `Real` (src/cpu/real.rs): the transcendental functions of the projection.
pub trait Float: Real {
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn ceil(self) -> Self;
    fn is_finite(self) -> bool;
    fn min(self, o: Self) -> Self {
        if o < self { o } else { self }
    }
    fn max(self, o: Self) -> Self {
        if o > self { o } else { self }
    }
}

macro_rules! impl_float {
    ($t:ty) => {
        impl Float for $t {
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn ceil(self) -> Self {
                <$t>::ceil(self)
            }
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
        }
    };
}
impl_float!(f32);
impl_float!(f64);

fn c<T: Float>(x: f64) -> T {
    T::from_f64(x)
}
fn alpha_min<T: Float>() -> T {
    c::<T>(1.0) / c(255.0)
}

/// The Gaussians of a batch, frame-major: means [B,N,3], log_scales [B,N,3], quats [B,N,4] (wxyz, any norm),
/// opacity_logits [B,N], sh [B,N,16,3].
#[derive(Debug, Clone, Copy)]
pub struct Gaussians<'a, T> {
    pub means: &'a [T],
    pub log_scales: &'a [T],
    pub quats: &'a [T],
    pub opacity_logits: &'a [T],
    pub sh: &'a [T],
}

impl<T> Gaussians<'_, T> {
    fn check(&self, d: &RasterDims) {
        let n = d.bn();
        assert_eq!(self.means.len(), 3 * n, "means must be [B,N,3]");
        assert_eq!(self.log_scales.len(), 3 * n, "log_scales must be [B,N,3]");
        assert_eq!(self.quats.len(), 4 * n, "quats must be [B,N,4]");
        assert_eq!(self.opacity_logits.len(), n, "opacity_logits must be [B,N]");
        assert_eq!(self.sh.len(), 3 * SH_COEFFS * n, "sh must be [B,N,16,3]");
        assert!(d.sh_degree <= 3, "SH degree {} > 3", d.sh_degree);
    }
}

/// Gradients of a batch's Gaussians (same layouts), and the densification statistic d_mean2d_norm [B,N].
#[derive(Debug, Clone)]
pub struct GaussianGrads<T> {
    pub d_means: Vec<T>,
    pub d_log_scales: Vec<T>,
    pub d_quats: Vec<T>,
    pub d_opacity_logits: Vec<T>,
    pub d_sh: Vec<T>,
    /// ‖(d_x·W/2, d_y·H/2)‖: the 2D-mean gradient in NDC units.
    pub d_mean2d_norm: Vec<T>,
}

impl<T: Float> GaussianGrads<T> {
    pub fn zeros(bn: usize) -> Self {
        GaussianGrads {
            d_means: vec![T::zero(); 3 * bn],
            d_log_scales: vec![T::zero(); 3 * bn],
            d_quats: vec![T::zero(); 4 * bn],
            d_opacity_logits: vec![T::zero(); bn],
            d_sh: vec![T::zero(); 3 * SH_COEFFS * bn],
            d_mean2d_norm: vec![T::zero(); bn],
        }
    }
}

pub(crate) fn quat_to_rot<T: Float>(q: [T; 4]) -> [T; 9] {
    let [w, x, y, z] = q;
    let (one, two) = (c::<T>(1.0), c::<T>(2.0));
    [
        one - two * (y * y + z * z), two * (x * y - w * z), two * (x * z + w * y),
        two * (x * y + w * z), one - two * (x * x + z * z), two * (y * z - w * x),
        two * (x * z - w * y), two * (y * z + w * x), one - two * (x * x + y * y),
    ]
}

fn quat_to_rot_vjp<T: Float>(q: [T; 4], d: &[T; 9]) -> [T; 4] {
    let [w, x, y, z] = q;
    let two = c::<T>(2.0);
    [
        two * (-z * d[1] + y * d[2] + z * d[3] - x * d[5] - y * d[6] + x * d[7]),
        two * (y * d[1] + z * d[2] + y * d[3] - two * x * d[4] - w * d[5] + z * d[6] + w * d[7] - two * x * d[8]),
        two * (-two * y * d[0] + x * d[1] + w * d[2] + x * d[3] + z * d[5] - w * d[6] + z * d[7] - two * y * d[8]),
        two * (-two * z * d[0] - w * d[1] + x * d[2] + w * d[3] - two * z * d[4] + y * d[5] + x * d[6] + y * d[7]),
    ]
}

/// A·B with optional transposes, 3×3 row-major (the kernel's mat3_mul).
fn mat3_mul<T: Float>(a: &[T; 9], b: &[T; 9], ta: bool, tb: bool) -> [T; 9] {
    let mut out = [T::zero(); 9];
    for i in 0..3 {
        for j in 0..3 {
            let mut s = T::zero();
            for k in 0..3 {
                let x = if ta { a[k * 3 + i] } else { a[i * 3 + k] };
                let y = if tb { b[j * 3 + k] } else { b[k * 3 + j] };
                s += x * y;
            }
            out[i * 3 + j] = s;
        }
    }
    out
}

const SH_C: [f64; 14] = [
    0.28209479177387814,
    0.4886025119029199,
    1.0925484305920792,
    -1.0925484305920792,
    0.31539156525252005,
    -1.0925484305920792,
    0.5462742152960396,
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
];

/// The 3DGS real SH basis at unit direction (x, y, z), degree ≤ `deg` (the kernel's sh_basis).
fn sh_basis<T: Float>(deg: usize, x: T, y: T, z: T) -> [T; 16] {
    let k = |i: usize| c::<T>(SH_C[i]);
    let mut b = [T::zero(); 16];
    b[0] = k(0);
    if deg < 1 {
        return b;
    }
    b[1] = -k(1) * y;
    b[2] = k(1) * z;
    b[3] = -k(1) * x;
    if deg < 2 {
        return b;
    }
    let (xx, yy, zz) = (x * x, y * y, z * z);
    let (two, three, four) = (c::<T>(2.0), c::<T>(3.0), c::<T>(4.0));
    b[4] = k(2) * x * y;
    b[5] = k(3) * y * z;
    b[6] = k(4) * (two * zz - xx - yy);
    b[7] = k(5) * x * z;
    b[8] = k(6) * (xx - yy);
    if deg < 3 {
        return b;
    }
    b[9] = k(7) * y * (three * xx - yy);
    b[10] = k(8) * x * y * z;
    b[11] = k(9) * y * (four * zz - xx - yy);
    b[12] = k(10) * z * (two * zz - three * xx - three * yy);
    b[13] = k(11) * x * (four * zz - xx - yy);
    b[14] = k(12) * z * (xx - yy);
    b[15] = k(13) * x * (xx - three * yy);
    b
}

/// w[k] = Σ_c sh[k][c]·d_rgb[c] → gradient at the unit direction (the kernel's sh_basis_vjp).
fn sh_basis_vjp<T: Float>(deg: usize, x: T, y: T, z: T, w: &[T; 16]) -> [T; 3] {
    let k = |i: usize| c::<T>(SH_C[i]);
    let mut d = [T::zero(); 3];
    if deg < 1 {
        return d;
    }
    d[0] += -k(1) * w[3];
    d[1] += -k(1) * w[1];
    d[2] += k(1) * w[2];
    if deg < 2 {
        return d;
    }
    let (xx, yy, zz) = (x * x, y * y, z * z);
    let (two, three, four, six, eight) = (c::<T>(2.0), c::<T>(3.0), c::<T>(4.0), c::<T>(6.0), c::<T>(8.0));
    d[0] += k(2) * y * w[4];
    d[1] += k(2) * x * w[4];
    d[1] += k(3) * z * w[5];
    d[2] += k(3) * y * w[5];
    d[0] += k(4) * -two * x * w[6];
    d[1] += k(4) * -two * y * w[6];
    d[2] += k(4) * four * z * w[6];
    d[0] += k(5) * z * w[7];
    d[2] += k(5) * x * w[7];
    d[0] += k(6) * two * x * w[8];
    d[1] += k(6) * -two * y * w[8];
    if deg < 3 {
        return d;
    }
    d[0] += k(7) * six * x * y * w[9];
    d[1] += k(7) * three * (xx - yy) * w[9];
    d[0] += k(8) * y * z * w[10];
    d[1] += k(8) * x * z * w[10];
    d[2] += k(8) * x * y * w[10];
    d[0] += k(9) * -two * x * y * w[11];
    d[1] += k(9) * (four * zz - xx - three * yy) * w[11];
    d[2] += k(9) * eight * y * z * w[11];
    d[0] += k(10) * -six * x * z * w[12];
    d[1] += k(10) * -six * y * z * w[12];
    d[2] += k(10) * (six * zz - three * xx - three * yy) * w[12];
    d[0] += k(11) * (four * zz - three * xx - yy) * w[13];
    d[1] += k(11) * -two * x * y * w[13];
    d[2] += k(11) * eight * x * z * w[13];
    d[0] += k(12) * two * x * z * w[14];
    d[1] += k(12) * -two * y * z * w[14];
    d[2] += k(12) * (xx - yy) * w[14];
    d[0] += k(13) * three * (xx - yy) * w[15];
    d[1] += k(13) * -six * x * y * w[15];
    d
}

/// Tile box [x0, x1) × [y0, y1) of a splat, clamped to the frame (the kernel's tile_rect).
fn tile_rect<T: Float>(mx: T, my: T, rx: T, ry: T, d: &RasterDims) -> [usize; 4] {
    let t = c::<T>(TILE as f64);
    let clampi = |v: T, hi: usize| v.max(T::zero()).min(c(hi as f64)).to_f64() as usize;
    [
        clampi(((mx - rx) / t).floor(), d.tiles_x()),
        clampi(((mx + rx) / t).ceil(), d.tiles_x()),
        clampi(((my - ry) / t).floor(), d.tiles_y()),
        clampi(((my + ry) / t).ceil(), d.tiles_y()),
    ]
}

/// The kernel's sigma_cutoff: the σ beyond which o·exp(−σ) < 1/255, where the blending skips a splat.
fn sigma_cutoff<T: Float>(o: T) -> T {
    (o / alpha_min()).ln()
}

/// The kernel's splat_extend: the box's reach in σ units for opacity `o`.
fn splat_extend<T: Float>(o: T) -> T {
    c::<T>(EXTEND_MAX).min((c::<T>(2.0) * sigma_cutoff(o)).sqrt())
}

/// The kernel's tile_hit: whether a pixel centre of tile (tx, ty) lies in the ellipse σ ≤ sigma_max of a
/// splat at (mx, my) with conic (a, b, cc); same operations in the same order.
fn tile_hit<T: Float>(mx: T, my: T, [a, b, cc]: [T; 3], sigma_max: T, tx: usize, ty: usize) -> bool {
    let half = c::<T>(0.5);
    let x0 = c::<T>((tx * TILE) as f64) + half - mx;
    let x1 = x0 + c((TILE - 1) as f64);
    let y0 = c::<T>((ty * TILE) as f64) + half - my;
    let y1 = y0 + c((TILE - 1) as f64);
    if x0 <= T::zero() && x1 >= T::zero() && y0 <= T::zero() && y1 >= T::zero() {
        return true;
    }
    let sigma = |x: T, y: T| half * (a * x * x + cc * y * y) + b * x * y;
    let (kx, ky) = (-b / cc, -b / a);
    let mut best = c::<T>(f64::INFINITY);
    for (x, y_edge) in [(x0, y0), (x1, y1)] {
        let y = (kx * x).max(y0).min(y1);
        best = best.min(sigma(x, y));
        let xe = (ky * y_edge).max(x0).min(x1);
        best = best.min(sigma(xe, y_edge));
    }
    best <= sigma_max * c(1.0 + 1e-3) + c(1e-3)
}

/// What project_fwd and project_bwd both compute before the culling decisions (the kernel's Projected).
struct Projected<T> {
    pc: [T; 3],
    qn: [T; 4],
    inv_norm: T,
    r: [T; 9],
    s: [T; 3],
    v: [T; 9],
    j: [T; 6],
    clamp_x: bool,
    clamp_y: bool,
    a: T,
    b: T,
    c: T,
    det: T,
}

fn rotation<T: Float>(cam: &Camera) -> [T; 9] {
    std::array::from_fn(|k| c(cam.view[(k / 3) * 4 + k % 3] as f64))
}

/// The kernel's project_core: None when culled before the opacity test.
fn project_core<T: Float>(cam: &Camera, mean: &[T], log_scale: &[T], quat: &[T], d: &RasterDims) -> (Projected<T>, bool) {
    let wv: [T; 16] = std::array::from_fn(|k| c(cam.view[k] as f64));
    let (fx, fy, cx, cy) = (c::<T>(cam.fx as f64), c::<T>(cam.fy as f64), c::<T>(cam.cx as f64), c::<T>(cam.cy as f64));
    let mut p = Projected {
        pc: [T::zero(); 3],
        qn: [T::zero(); 4],
        inv_norm: T::zero(),
        r: [T::zero(); 9],
        s: [T::zero(); 3],
        v: [T::zero(); 9],
        j: [T::zero(); 6],
        clamp_x: false,
        clamp_y: false,
        a: T::zero(),
        b: T::zero(),
        c: T::zero(),
        det: T::zero(),
    };
    for i in 0..3 {
        p.pc[i] = wv[i * 4] * mean[0] + wv[i * 4 + 1] * mean[1] + wv[i * 4 + 2] * mean[2] + wv[i * 4 + 3];
    }
    if !(p.pc[2] >= c(NEAR_PLANE)) {
        return (p, false);
    }
    let n2 = quat[0] * quat[0] + quat[1] * quat[1] + quat[2] * quat[2] + quat[3] * quat[3];
    if n2 > c(1e-24) {
        p.inv_norm = c::<T>(1.0) / n2.sqrt();
        for i in 0..4 {
            p.qn[i] = quat[i] * p.inv_norm;
        }
    } else {
        p.qn = [c(1.0), T::zero(), T::zero(), T::zero()];
    }
    p.r = quat_to_rot(p.qn);
    for i in 0..3 {
        p.s[i] = log_scale[i].exp();
    }
    let m: [T; 9] = std::array::from_fn(|k| p.r[k] * p.s[k % 3]);
    let sig = mat3_mul(&m, &m, false, true);
    let wr = rotation::<T>(cam);
    let t = mat3_mul(&wr, &sig, false, false);
    p.v = mat3_mul(&t, &wr, false, true);
    let rz = c::<T>(1.0) / p.pc[2];
    let (w, h) = (c::<T>(d.width as f64), c::<T>(d.height as f64));
    let (fc, half) = (c::<T>(FOV_CLAMP), c::<T>(0.5));
    let lim_xp = (w - cx) / fx + fc * half * w / fx;
    let lim_xn = cx / fx + fc * half * w / fx;
    let lim_yp = (h - cy) / fy + fc * half * h / fy;
    let lim_yn = cy / fy + fc * half * h / fy;
    let (u, v) = (p.pc[0] * rz, p.pc[1] * rz);
    p.clamp_x = !(u <= lim_xp && u >= -lim_xn);
    p.clamp_y = !(v <= lim_yp && v >= -lim_yn);
    let u = u.max(-lim_xn).min(lim_xp);
    let v = v.max(-lim_yn).min(lim_yp);
    let z = T::zero();
    p.j = [fx * rz, z, -fx * u * rz, z, fy * rz, -fy * v * rz];
    let mut jv = [T::zero(); 6];
    for i in 0..2 {
        for k in 0..3 {
            jv[i * 3 + k] = p.j[i * 3] * p.v[k] + p.j[i * 3 + 1] * p.v[3 + k] + p.j[i * 3 + 2] * p.v[6 + k];
        }
    }
    p.a = jv[0] * p.j[0] + jv[1] * p.j[1] + jv[2] * p.j[2] + c(LOW_PASS);
    p.b = jv[0] * p.j[3] + jv[1] * p.j[4] + jv[2] * p.j[5];
    p.c = jv[3] * p.j[3] + jv[4] * p.j[4] + jv[5] * p.j[5] + c(LOW_PASS);
    p.det = p.a * p.c - p.b * p.b;
    let ok = p.det > T::zero() && p.det.is_finite();
    (p, ok)
}

fn sigmoid<T: Float>(x: T) -> T {
    c::<T>(1.0) / (c::<T>(1.0) + (-x).exp())
}

/// Unit view direction from the camera centre −Wᵀt to `mean`, and 1/|dir| (0 at the centre).
fn view_dir<T: Float>(cam: &Camera, mean: &[T]) -> ([T; 3], T) {
    let wv: [T; 16] = std::array::from_fn(|k| c(cam.view[k] as f64));
    let dir: [T; 3] = std::array::from_fn(|i| mean[i] + (wv[i] * wv[3] + wv[4 + i] * wv[7] + wv[8 + i] * wv[11]));
    let dn = (dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]).sqrt();
    let inv = if dn > T::zero() { c::<T>(1.0) / dn } else { T::zero() };
    ([dir[0] * inv, dir[1] * inv, dir[2] * inv], inv)
}

/// Twin of project_fwd: splat [BN,12] and tiles_touched [BN].
pub fn project_fwd<T: Float>(d: &RasterDims, cams: &[Camera], g: &Gaussians<T>, splat: &mut [T], tiles_touched: &mut [i32]) {
    g.check(d);
    assert_eq!(cams.len(), d.batch, "one camera per frame");
    assert_eq!(splat.len(), SPLAT * d.bn());
    assert_eq!(tiles_touched.len(), d.bn());
    let kk = (d.sh_degree + 1) * (d.sh_degree + 1);
    for gi in 0..d.bn() {
        let cam = &cams[gi / d.gaussians];
        let mean = &g.means[3 * gi..3 * gi + 3];
        let (p, mut visible) = project_core(cam, mean, &g.log_scales[3 * gi..], &g.quats[4 * gi..], d);
        let opacity = sigmoid(g.opacity_logits[gi]);
        visible = visible && opacity >= alpha_min();
        let (mut mx, mut my, mut rx, mut ry) = (T::zero(), T::zero(), T::zero(), T::zero());
        let mut conic = [T::zero(); 3];
        let mut count = 0;
        if visible {
            let inv_det = c::<T>(1.0) / p.det;
            conic = [p.c * inv_det, -p.b * inv_det, p.a * inv_det];
            let extend = splat_extend(opacity);
            rx = (extend * p.a.sqrt()).ceil();
            ry = (extend * p.c.sqrt()).ceil();
            let rz = c::<T>(1.0) / p.pc[2];
            mx = c::<T>(cam.fx as f64) * p.pc[0] * rz + c(cam.cx as f64);
            my = c::<T>(cam.fy as f64) * p.pc[1] * rz + c(cam.cy as f64);
            if rx > T::zero() && ry > T::zero() {
                let [x0, x1, y0, y1] = tile_rect(mx, my, rx, ry, d);
                let sigma_max = c::<T>(0.5) * extend * extend;
                for ty in y0..y1 {
                    count += (x0..x1).filter(|&tx| tile_hit(mx, my, conic, sigma_max, tx, ty)).count();
                }
            }
        }
        tiles_touched[gi] = count as i32;
        let out = &mut splat[SPLAT * gi..SPLAT * gi + SPLAT];
        if count == 0 {
            out.fill(T::zero());
            continue;
        }
        let (u, _) = view_dir(cam, mean);
        let bs = sh_basis(d.sh_degree, u[0], u[1], u[2]);
        let sh = &g.sh[gi * SH_COEFFS * 3..];
        let mut rgb = [T::zero(); 3];
        for (ch, v) in rgb.iter_mut().enumerate() {
            let mut s = T::zero();
            for k in 0..kk {
                s += bs[k] * sh[k * 3 + ch];
            }
            *v = (s + c(0.5)).max(T::zero());
        }
        out.copy_from_slice(&[
            mx, my, opacity, p.pc[2],
            conic[0], conic[1], conic[2], rx,
            rgb[0], rgb[1], rgb[2], ry,
        ]);
    }
}

/// Twin of tile_pairs: keys (frame·TT + tile) << 31 | bits(depth as f32), values g, for the tiles of the box
/// the splat's ellipse reaches (tile_hit); positions ≥ capacity dropped.
pub fn tile_pairs<T: Float>(d: &RasterDims, splat: &[T], offsets: &[i32], keys: &mut [u64], values: &mut [u32]) {
    let capacity = keys.len();
    for gi in 0..d.bn() {
        let s = &splat[SPLAT * gi..SPLAT * gi + SPLAT];
        if s[7] == T::zero() {
            continue;
        }
        let [x0, x1, y0, y1] = tile_rect(s[0], s[1], s[7], s[11], d);
        let frame_tiles = ((gi / d.gaussians) * d.tiles()) as u64;
        let depth = (s[3].to_f64() as f32).to_bits() as u64;
        let extend = splat_extend(s[2]);
        let sigma_max = c::<T>(0.5) * extend * extend;
        let mut off = offsets[gi] as usize;
        for ty in y0..y1 {
            for tx in x0..x1 {
                if !tile_hit(s[0], s[1], [s[4], s[5], s[6]], sigma_max, tx, ty) {
                    continue;
                }
                if off >= capacity {
                    return;
                }
                keys[off] = ((frame_tiles + (ty * d.tiles_x() + tx) as u64) << DEPTH_BITS) | depth;
                values[off] = gi as u32;
                off += 1;
            }
        }
    }
}

/// Twin of tile_ranges: [start, end) of every (frame, tile) in the sorted keys.
pub fn tile_ranges(num_tiles: usize, keys: &[u64]) -> Vec<[i32; 2]> {
    (0..num_tiles as u64)
        .map(|t| {
            let lo = keys.partition_point(|&k| k < t << DEPTH_BITS);
            let hi = keys.partition_point(|&k| k < (t + 1) << DEPTH_BITS);
            [lo as i32, hi as i32]
        })
        .collect()
}

/// σ at offset (dx, dy) of conic (A, B, C), in the kernel's operation order (splat_sigma).
fn splat_sigma<T: Float>(a: T, b: T, cc: T, dx: T, dy: T) -> T {
    c::<T>(0.5) * (a * dx * dx + cc * dy * dy) + b * dx * dy
}

/// Outputs of raster_fwd: image [B,H,W,3], final_t [B,H,W], depth [B,H,W], n_contrib [B,H,W], and
/// piece_state [P / RASTER_PIECE + 1, 256, 4]: at each piece boundary p inside a tile's range, the
/// (T, Σ w·rgb) of every pixel still blending there (NaN where the kernel writes nothing).
#[derive(Debug, Clone)]
pub struct RasterFwd<T> {
    pub image: Vec<T>,
    pub final_t: Vec<T>,
    pub depth: Vec<T>,
    pub n_contrib: Vec<i32>,
    pub piece_state: Vec<T>,
}

/// Slots of piece_state for `pairs` tile pairs.
pub fn piece_slots(pairs: usize) -> usize {
    pairs / RASTER_PIECE + 1
}

/// Front-to-back blending state of one pixel (`Blend` in the kernel): transmittance, colour and depth sums,
/// pairs walked up to the last blended one (global index + 1, 0: none), stopped at T < 1e-4.
#[derive(Debug, Clone, Copy)]
struct Blend<T> {
    t: T,
    rgb: [T; 3],
    dep: T,
    last: usize,
    done: bool,
}

impl<T: Float> Blend<T> {
    fn new() -> Self {
        Blend { t: c(1.0), rgb: [T::zero(); 3], dep: T::zero(), last: 0, done: false }
    }

    /// Blends the splats of pairs [lo, hi) at pixel centre (fx, fy): the kernel's `blend`.
    fn pairs(&mut self, splat: &[T], values: &[u32], lo: usize, hi: usize, fx: T, fy: T) {
        for p in lo..hi {
            if self.done {
                return;
            }
            let s = &splat[SPLAT * values[p] as usize..];
            let (dx, dy) = (s[0] - fx, s[1] - fy);
            let sigma = splat_sigma(s[4], s[5], s[6], dx, dy);
            if sigma < T::zero() || sigma > sigma_cutoff(s[2]) {
                continue;
            }
            let alpha = c::<T>(ALPHA_MAX).min(s[2] * (-sigma).exp());
            let next_t = self.t * (c::<T>(1.0) - alpha);
            if next_t < c(T_MIN) {
                self.done = true;
                return;
            }
            let w = alpha * self.t;
            for ch in 0..3 {
                self.rgb[ch] += w * s[8 + ch];
            }
            self.dep += w * s[3];
            self.t = next_t;
            self.last = p + 1;
        }
    }
}

/// Twin of raster_fwd + raster_fwd_combine, pixel by pixel, the kernels' way: a tile of at most
/// `RASTER_FWD_WHOLE` pairs is blended in one walk; a longer tile piece by piece (pieces end at the multiples
/// of RASTER_PIECE), each piece blended from T = 1 first and taken whole where it neither stopped on its own
/// nor takes T·T_piece below 1e-4, else blended again from the true T. Equal to one walk over the whole
/// list up to the rounding of the piece products (`raster_fwd_with(.., usize::MAX)` is that walk).
pub fn raster_fwd<T: Float>(d: &RasterDims, splat: &[T], values: &[u32], ranges: &[[i32; 2]], background: &[T]) -> RasterFwd<T> {
    raster_fwd_with(d, splat, values, ranges, background, RASTER_FWD_WHOLE)
}

/// `raster_fwd` with tiles of more than `whole` pairs split into pieces.
pub fn raster_fwd_with<T: Float>(
    d: &RasterDims,
    splat: &[T],
    values: &[u32],
    ranges: &[[i32; 2]],
    background: &[T],
    whole: usize,
) -> RasterFwd<T> {
    assert_eq!(background.len(), 3 * d.pixels(), "background must be [B,H,W,3]");
    let mut out = RasterFwd {
        image: vec![T::zero(); 3 * d.pixels()],
        final_t: vec![T::zero(); d.pixels()],
        depth: vec![T::zero(); d.pixels()],
        n_contrib: vec![0; d.pixels()],
        piece_state: vec![c(f64::NAN); 4 * TILE * TILE * piece_slots(values.len())],
    };
    for b in 0..d.batch {
        for py in 0..d.height {
            for px in 0..d.width {
                let tile = (py / TILE) * d.tiles_x() + px / TILE;
                let [start, end] = ranges[b * d.tiles() + tile].map(|v| v as usize);
                let (fx, fy) = (c::<T>(px as f64 + 0.5), c::<T>(py as f64 + 0.5));
                let mut st = Blend::new();
                let mut pos = start;
                while pos < end && !st.done {
                    let piece_end = end.min((pos / RASTER_PIECE + 1) * RASTER_PIECE);
                    if pos > start {
                        let at = 4 * ((pos / RASTER_PIECE) * TILE * TILE + (py % TILE) * TILE + px % TILE);
                        out.piece_state[at..at + 4].copy_from_slice(&[st.t, st.rgb[0], st.rgb[1], st.rgb[2]]);
                    }
                    let mut part = Blend::new();
                    if end - start > whole {
                        part.pairs(splat, values, pos, piece_end, fx, fy);
                    }
                    if end - start <= whole || part.done || st.t * part.t < c(T_MIN) {
                        st.pairs(splat, values, pos, piece_end, fx, fy);
                    } else {
                        for ch in 0..3 {
                            st.rgb[ch] += st.t * part.rgb[ch];
                        }
                        st.dep += st.t * part.dep;
                        st.last = if part.last > 0 { part.last } else { st.last };
                        st.t = st.t * part.t;
                    }
                    pos = piece_end;
                }
                let pix = (b * d.height + py) * d.width + px;
                for ch in 0..3 {
                    out.image[3 * pix + ch] = st.rgb[ch] + st.t * background[3 * pix + ch];
                }
                out.final_t[pix] = st.t;
                out.depth[pix] = st.dep;
                out.n_contrib[pix] = if st.last > 0 { (st.last - start) as i32 } else { 0 };
            }
        }
    }
    out
}

/// Twin of raster_bwd: d_splat [BN,9] accumulated from d_image [B,H,W,3].
#[allow(clippy::too_many_arguments)]
pub fn raster_bwd<T: Float>(
    d: &RasterDims,
    splat: &[T],
    values: &[u32],
    ranges: &[[i32; 2]],
    background: &[T],
    final_t: &[T],
    n_contrib: &[i32],
    d_image: &[T],
    d_splat: &mut [T],
) {
    assert_eq!(d_image.len(), 3 * d.pixels(), "d_image must be [B,H,W,3]");
    assert_eq!(d_splat.len(), D_SPLAT * d.bn());
    for b in 0..d.batch {
        for py in 0..d.height {
            for px in 0..d.width {
                let tile = (py / TILE) * d.tiles_x() + px / TILE;
                let start = ranges[b * d.tiles() + tile][0] as usize;
                let (fx, fy) = (c::<T>(px as f64 + 0.5), c::<T>(py as f64 + 0.5));
                let pix = (b * d.height + py) * d.width + px;
                let mut t = final_t[pix];
                let dp: [T; 3] = std::array::from_fn(|ch| d_image[3 * pix + ch]);
                // S·d_pix, S the colour behind the current pair (background included).
                let mut sd = T::zero();
                for ch in 0..3 {
                    sd += t * background[3 * pix + ch] * dp[ch];
                }
                for i in (0..n_contrib[pix] as usize).rev() {
                    let gi = values[start + i] as usize;
                    let s = &splat[SPLAT * gi..SPLAT * gi + SPLAT];
                    let (dx, dy) = (s[0] - fx, s[1] - fy);
                    let sigma = splat_sigma(s[4], s[5], s[6], dx, dy);
                    if !(sigma >= T::zero() && sigma <= sigma_cutoff(s[2])) {
                        continue;
                    }
                    let g = (-sigma).exp();
                    let og = s[2] * g;
                    let alpha = c::<T>(ALPHA_MAX).min(og);
                    let inv_om = c::<T>(1.0) / (c::<T>(1.0) - alpha);
                    let ti = t * inv_om;
                    let w = alpha * ti;
                    let gd = &mut d_splat[D_SPLAT * gi..D_SPLAT * gi + D_SPLAT];
                    for ch in 0..3 {
                        gd[6 + ch] += w * dp[ch];
                    }
                    let cdp = s[8] * dp[0] + s[9] * dp[1] + s[10] * dp[2];
                    let d_alpha = (cdp * t - sd) * inv_om;
                    sd += w * cdp;
                    t = ti;
                    if og < c(ALPHA_MAX) {
                        gd[5] += g * d_alpha;
                        let d_sigma = -og * d_alpha;
                        gd[0] += (s[4] * dx + s[5] * dy) * d_sigma;
                        gd[1] += (s[5] * dx + s[6] * dy) * d_sigma;
                        gd[2] += c::<T>(0.5) * dx * dx * d_sigma;
                        gd[3] += dx * dy * d_sigma;
                        gd[4] += c::<T>(0.5) * dy * dy * d_sigma;
                    }
                }
            }
        }
    }
}

/// Twin of project_bwd: pulls d_splat back to the Gaussians' parameters (zeros for culled ones).
pub fn project_bwd<T: Float>(
    d: &RasterDims,
    cams: &[Camera],
    g: &Gaussians<T>,
    splat: &[T],
    d_splat: &[T],
) -> GaussianGrads<T> {
    g.check(d);
    let mut out = GaussianGrads::zeros(d.bn());
    let kk = (d.sh_degree + 1) * (d.sh_degree + 1);
    let (half_w, half_h) = (c::<T>(0.5 * d.width as f64), c::<T>(0.5 * d.height as f64));
    for gi in 0..d.bn() {
        if splat[SPLAT * gi + 7] == T::zero() {
            continue;
        }
        let cam = &cams[gi / d.gaussians];
        let mean = &g.means[3 * gi..3 * gi + 3];
        let (p, _) = project_core(cam, mean, &g.log_scales[3 * gi..], &g.quats[4 * gi..], d);
        let ds = &d_splat[D_SPLAT * gi..D_SPLAT * gi + D_SPLAT];
        let (d_mx, d_my) = (ds[0], ds[1]);
        let (nx, ny) = (d_mx * half_w, d_my * half_h);
        out.d_mean2d_norm[gi] = (nx * nx + ny * ny).sqrt();

        // Colour.
        let (u, inv_dn) = view_dir(cam, mean);
        let bs = sh_basis(d.sh_degree, u[0], u[1], u[2]);
        let sh = &g.sh[gi * SH_COEFFS * 3..(gi + 1) * SH_COEFFS * 3];
        let mut d_rgb = [T::zero(); 3];
        for ch in 0..3 {
            let mut s = T::zero();
            for k in 0..kk {
                s += bs[k] * sh[k * 3 + ch];
            }
            d_rgb[ch] = if s + c(0.5) < T::zero() { T::zero() } else { ds[6 + ch] };
        }
        let mut wk = [T::zero(); 16];
        let dsh = &mut out.d_sh[gi * SH_COEFFS * 3..(gi + 1) * SH_COEFFS * 3];
        for k in 0..kk {
            for ch in 0..3 {
                dsh[k * 3 + ch] = bs[k] * d_rgb[ch];
                wk[k] += sh[k * 3 + ch] * d_rgb[ch];
            }
        }
        let d_u = sh_basis_vjp(d.sh_degree, u[0], u[1], u[2], &wk);
        let ud = u[0] * d_u[0] + u[1] * d_u[1] + u[2] * d_u[2];
        let mut d_m: [T; 3] = std::array::from_fn(|i| (d_u[i] - u[i] * ud) * inv_dn);

        // Opacity.
        let o = sigmoid(g.opacity_logits[gi]);
        out.d_opacity_logits[gi] = ds[5] * o * (c::<T>(1.0) - o);

        // Conic → 2D covariance → V and J.
        let inv_det = c::<T>(1.0) / p.det;
        let (a, b, cc) = (p.c * inv_det, -p.b * inv_det, p.a * inv_det);
        let (ga, gb, gc) = (ds[2], c::<T>(0.5) * ds[3], ds[4]);
        let (t00, t01, t10, t11) = (a * ga + b * gb, a * gb + b * gc, b * ga + cc * gb, b * gb + cc * gc);
        let ds2 = [-(t00 * a + t01 * b), -(t00 * b + t01 * cc), -(t10 * a + t11 * b), -(t10 * b + t11 * cc)];
        let two = c::<T>(2.0);
        let dss = [two * ds2[0], ds2[1] + ds2[2], ds2[1] + ds2[2], two * ds2[3]];
        let mut dv = [T::zero(); 9];
        for i in 0..3 {
            for j in 0..3 {
                let mut s = T::zero();
                for k in 0..2 {
                    for l in 0..2 {
                        s += p.j[k * 3 + i] * ds2[k * 2 + l] * p.j[l * 3 + j];
                    }
                }
                dv[i * 3 + j] = s;
            }
        }
        let mut dj = [T::zero(); 6];
        for k in 0..2 {
            for j in 0..3 {
                let mut s = T::zero();
                for l in 0..2 {
                    for i in 0..3 {
                        s += dss[k * 2 + l] * p.j[l * 3 + i] * p.v[i * 3 + j];
                    }
                }
                dj[k * 3 + j] = s;
            }
        }
        let (x, y, z) = (p.pc[0], p.pc[1], p.pc[2]);
        let (fx, fy) = (c::<T>(cam.fx as f64), c::<T>(cam.fy as f64));
        let rz = c::<T>(1.0) / z;
        let rz2 = rz * rz;
        let mut d_pc = [fx * rz * d_mx, fy * rz * d_my, -fx * x * rz2 * d_mx - fy * y * rz2 * d_my];
        d_pc[2] += -fx * rz2 * dj[0] - fy * rz2 * dj[4];
        if p.clamp_x {
            d_pc[2] += -p.j[2] * rz * dj[2];
        } else {
            d_pc[0] += -fx * rz2 * dj[2];
            d_pc[2] += two * fx * x * rz2 * rz * dj[2];
        }
        if p.clamp_y {
            d_pc[2] += -p.j[5] * rz * dj[5];
        } else {
            d_pc[1] += -fy * rz2 * dj[5];
            d_pc[2] += two * fy * y * rz2 * rz * dj[5];
        }
        let wr = rotation::<T>(cam);
        for (i, dm) in d_m.iter_mut().enumerate() {
            *dm += wr[i] * d_pc[0] + wr[3 + i] * d_pc[1] + wr[6 + i] * d_pc[2];
        }
        out.d_means[3 * gi..3 * gi + 3].copy_from_slice(&d_m);

        // Σ = M·Mᵀ, M = R·diag(s), V = Wr·Σ·Wrᵀ.
        let t = mat3_mul(&wr, &dv, true, false);
        let dsig = mat3_mul(&t, &wr, false, false);
        let dsig_s: [T; 9] = std::array::from_fn(|k| dsig[k] + dsig[(k % 3) * 3 + k / 3]);
        let m: [T; 9] = std::array::from_fn(|k| p.r[k] * p.s[k % 3]);
        let dm = mat3_mul(&dsig_s, &m, false, false);
        let mut dr = [T::zero(); 9];
        for j in 0..3 {
            let mut d_s = T::zero();
            for i in 0..3 {
                dr[i * 3 + j] = dm[i * 3 + j] * p.s[j];
                d_s += dm[i * 3 + j] * p.r[i * 3 + j];
            }
            out.d_log_scales[3 * gi + j] = d_s * p.s[j];
        }
        let d_qn = quat_to_rot_vjp(p.qn, &dr);
        let qd = p.qn[0] * d_qn[0] + p.qn[1] * d_qn[1] + p.qn[2] * d_qn[2] + p.qn[3] * d_qn[3];
        for k in 0..4 {
            out.d_quats[4 * gi + k] = (d_qn[k] - p.qn[k] * qd) * p.inv_norm;
        }
    }
    out
}
