// Differentiable tile-based EWA splatting of B frames at once, each frame with its own camera, its own N
// Gaussians and its own background image (SPEC.md §5a, §6). CPU twins: src/cpu/raster.rs (same names, same
// formulas in the same order). Orchestration: src/render/rasterize.rs.
//
// Stages (forward): project_fwd → exclusive_scan (sort.cu) → tile_pairs → radix_sort (sort.cu) →
// tile_ranges → raster_fwd → raster_fwd_combine. Backward: raster_bwd → project_bwd.
//
// Dimension letters: B frames, N Gaussians per frame, BN = B·N, H×W pixels, TT = tiles per frame,
// P = tile pairs (≤ capacity). Index g = b·N + n names Gaussian n of frame b everywhere.
//
// A splat is the compact projected Gaussian the blending kernels read, 3 float4 (48 bytes):
//   [0] (x, y, opacity, depth)   2D mean in pixels, sigmoid(logit), camera z
//   [1] (A, B, C, radius_x)      conic (inverse 2D covariance) σ = ½A·dx² + B·dx·dy + ½C·dy²; radius in px
//   [2] (r, g, b, radius_y)      colour after SH, +0.5, clamped at 0
// A culled Gaussian (behind the near plane, degenerate covariance, opacity < 1/255, off screen) is all zeros;
// radius_x == 0 marks it.
// d_splat [BN, 9]: (d_x, d_y, d_A, d_B, d_C, d_opacity, d_r, d_g, d_b), accumulated by raster_bwd.
//
// Keys of tile pairs: (b·TT + tile) << 31 | bits(depth). depth > 0 so its float bits are a 31-bit unsigned
// integer in depth order; only 31 + ceil(log2(B·TT)) bits are sorted.

#define TILE 16
#define RASTER_THREADS (TILE * TILE)
#define PROJECT_THREADS 128
#define PAIRS_THREADS 256
#define RANGES_THREADS 256
#define SPLAT_F4 3
#define D_SPLAT 9
// raster_bwd: when at most this many lanes of a warp touch a pair, they add their gradients with their own
// atomics instead of the warp reduction. H200, N = 50 000, 512², fwd + bwd at B = 8, with the 45-shuffle
// butterfly then: 3.37 ms (never) → 3.32 (2) → 3.26 (4) → 3.19 (8) → 3.69 (12) → 4.74 (16) → 10.8 (32); at
// B = 1 0.645 → 0.61 ms with 8. Beyond that, same-address atomics serialise. With warp_sum_scatter (12
// shuffles) 8 still beats 2 and 4 (2.24 vs 2.32 and 2.28 ms at a0447cc).
#define DIRECT_ATOMIC_LANES 8
// raster_bwd: each thread blends two pixels of its tile column (rows y and y + 8), so a warp's shuffle
// reduction, its shared-memory reads and its loop overhead serve 64 pixels per pair. H200 sweep
// (bench/results/2026-11-26-H200-raster-bwd-variants.log), fwd + bwd B = 1 / B = 8 / canonical step:
// 2 rows, 8 lanes 0.554 / 2.711 / 2.045 ms; 2, 16: 0.664 / 3.687 / 2.034; 4, 8: 0.640 / 2.664 / 2.328;
// 4, 16: 0.635 / 2.891 / 2.308.
#define BWD_ROWS 2
#define RASTER_BWD_THREADS (RASTER_THREADS / BWD_ROWS)
#define SH_COEFFS 16  // degree 3: 16 coefficients × 3 channels = 48 floats per Gaussian
// project_bwd's shared d_sh rows: 48 floats padded to 49, so the per-thread rows start in distinct banks.
#define DSH_STRIDE (SH_COEFFS * 3 + 1)
#define DEPTH_BITS 31
// raster_bwd's work unit: tiles are cut at the multiples of this many pairs (a multiple of RASTER_THREADS).
#define RASTER_PIECE 256
// raster_fwd blends a tile of at most this many pairs in one block; longer tiles are split into pieces.
#define RASTER_FWD_WHOLE 1024
// raster_fwd_combine loads the partials of this many pieces at once.
#define COMBINE_AHEAD 4

#define NEAR_PLANE 0.01f
#define LOW_PASS 0.3f
#define ALPHA_MIN (1.0f / 255.0f)
#define ALPHA_MAX 0.99f
#define T_MIN 1e-4f
// Beyond 3.33σ, 0.99·G < 1/255, so the tile box never cuts off a blended pixel (the opacity-aware box is
// sqrt(2·ln(255·o))σ, which reaches 3.33 only for o > 0.9996).
#define EXTEND_MAX 3.33f
// The Jacobian's x/z and y/z are clamped at 1.3× the half field of view (3DGS, gsplat), so Gaussians far
// outside the frustum do not blow up the 2D covariance.
#define FOV_CLAMP 0.3f

struct Camera {
    float view[16];  // world-to-camera, row-major, OpenCV axes
    float fx, fy, cx, cy;
};

// ---------------------------------------------------------------------------------------------------------
// Shared device helpers (forward and backward recompute the same values with the same operations).

__device__ __forceinline__ void quat_to_rot(float w, float x, float y, float z, float R[9]) {
    R[0] = 1.f - 2.f * (y * y + z * z); R[1] = 2.f * (x * y - w * z);       R[2] = 2.f * (x * z + w * y);
    R[3] = 2.f * (x * y + w * z);       R[4] = 1.f - 2.f * (x * x + z * z); R[5] = 2.f * (y * z - w * x);
    R[6] = 2.f * (x * z - w * y);       R[7] = 2.f * (y * z + w * x);       R[8] = 1.f - 2.f * (x * x + y * y);
}

// d_R [3x3] -> d_q (w, x, y, z) of the normalised quaternion.
__device__ __forceinline__ void quat_to_rot_vjp(float w, float x, float y, float z, const float d[9], float d_q[4]) {
    d_q[0] = 2.f * (-z * d[1] + y * d[2] + z * d[3] - x * d[5] - y * d[6] + x * d[7]);
    d_q[1] = 2.f * (y * d[1] + z * d[2] + y * d[3] - 2.f * x * d[4] - w * d[5] + z * d[6] + w * d[7] - 2.f * x * d[8]);
    d_q[2] = 2.f * (-2.f * y * d[0] + x * d[1] + w * d[2] + x * d[3] + z * d[5] - w * d[6] + z * d[7] - 2.f * y * d[8]);
    d_q[3] = 2.f * (-2.f * z * d[0] - w * d[1] + x * d[2] + w * d[3] - 2.f * z * d[4] + y * d[5] + x * d[6] + y * d[7]);
}

// C = A·B (transpose_a: Aᵀ·B, transpose_b: A·Bᵀ), 3×3 row-major.
__device__ __forceinline__ void mat3_mul(const float A[9], const float Bm[9], float C[9], bool ta, bool tb) {
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            float s = 0.f;
            for (int k = 0; k < 3; ++k) s += (ta ? A[k * 3 + i] : A[i * 3 + k]) * (tb ? Bm[j * 3 + k] : Bm[k * 3 + j]);
            C[i * 3 + j] = s;
        }
}

// 3DGS real SH basis of degree ≤ 3 at unit direction (x, y, z): basis[16] (entries beyond (deg+1)² unused).
__device__ __forceinline__ void sh_basis(int deg, float x, float y, float z, float* bs) {
    bs[0] = 0.28209479177387814f;
    if (deg < 1) return;
    bs[1] = -0.4886025119029199f * y; bs[2] = 0.4886025119029199f * z; bs[3] = -0.4886025119029199f * x;
    if (deg < 2) return;
    float xx = x * x, yy = y * y, zz = z * z;
    bs[4] = 1.0925484305920792f * x * y;
    bs[5] = -1.0925484305920792f * y * z;
    bs[6] = 0.31539156525252005f * (2.f * zz - xx - yy);
    bs[7] = -1.0925484305920792f * x * z;
    bs[8] = 0.5462742152960396f * (xx - yy);
    if (deg < 3) return;
    bs[9] = -0.5900435899266435f * y * (3.f * xx - yy);
    bs[10] = 2.890611442640554f * x * y * z;
    bs[11] = -0.4570457994644658f * y * (4.f * zz - xx - yy);
    bs[12] = 0.3731763325901154f * z * (2.f * zz - 3.f * xx - 3.f * yy);
    bs[13] = -0.4570457994644658f * x * (4.f * zz - xx - yy);
    bs[14] = 1.445305721320277f * z * (xx - yy);
    bs[15] = -0.5900435899266435f * x * (xx - 3.f * yy);
}

// Channel ch of the colour before the +0.5: Σ_k basis[k]·c[k][ch] over the K = (deg+1)² coefficients used.
// The loop runs over all 16 with a guard, so basis[] is indexed by constants and stays in registers.
__device__ __forceinline__ float sh_colour(const float* bs, const float* c, int K, int ch) {
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < SH_COEFFS; ++k)
        if (k < K) s += bs[k] * c[k * 3 + ch];
    return s;
}

// w[k] = Σ_c sh[k][c]·d_rgb[c] -> d_dir (gradient at the unit direction, before normalisation).
__device__ __forceinline__ void sh_basis_vjp(int deg, float x, float y, float z, const float* w, float d[3]) {
    d[0] = d[1] = d[2] = 0.f;
    if (deg < 1) return;
    const float c1 = 0.4886025119029199f;
    d[0] += -c1 * w[3]; d[1] += -c1 * w[1]; d[2] += c1 * w[2];
    if (deg < 2) return;
    float xx = x * x, yy = y * y, zz = z * z;
    d[0] += 1.0925484305920792f * y * w[4];                   d[1] += 1.0925484305920792f * x * w[4];
    d[1] += -1.0925484305920792f * z * w[5];                  d[2] += -1.0925484305920792f * y * w[5];
    d[0] += 0.31539156525252005f * -2.f * x * w[6];
    d[1] += 0.31539156525252005f * -2.f * y * w[6];          d[2] += 0.31539156525252005f * 4.f * z * w[6];
    d[0] += -1.0925484305920792f * z * w[7];                  d[2] += -1.0925484305920792f * x * w[7];
    d[0] += 0.5462742152960396f * 2.f * x * w[8];             d[1] += 0.5462742152960396f * -2.f * y * w[8];
    if (deg < 3) return;
    d[0] += -0.5900435899266435f * 6.f * x * y * w[9];
    d[1] += -0.5900435899266435f * 3.f * (xx - yy) * w[9];
    d[0] += 2.890611442640554f * y * z * w[10];
    d[1] += 2.890611442640554f * x * z * w[10];
    d[2] += 2.890611442640554f * x * y * w[10];
    d[0] += -0.4570457994644658f * -2.f * x * y * w[11];
    d[1] += -0.4570457994644658f * (4.f * zz - xx - 3.f * yy) * w[11];
    d[2] += -0.4570457994644658f * 8.f * y * z * w[11];
    d[0] += 0.3731763325901154f * -6.f * x * z * w[12];
    d[1] += 0.3731763325901154f * -6.f * y * z * w[12];
    d[2] += 0.3731763325901154f * (6.f * zz - 3.f * xx - 3.f * yy) * w[12];
    d[0] += -0.4570457994644658f * (4.f * zz - 3.f * xx - yy) * w[13];
    d[1] += -0.4570457994644658f * -2.f * x * y * w[13];
    d[2] += -0.4570457994644658f * 8.f * x * z * w[13];
    d[0] += 1.445305721320277f * 2.f * x * z * w[14];
    d[1] += 1.445305721320277f * -2.f * y * z * w[14];
    d[2] += 1.445305721320277f * (xx - yy) * w[14];
    d[0] += -0.5900435899266435f * 3.f * (xx - yy) * w[15];
    d[1] += -0.5900435899266435f * -6.f * x * y * w[15];
}

// Tile box [x0, x1) × [y0, y1) of a splat centred at (mx, my) with radii (rx, ry) px, clamped to the frame.
// Computed in float and clamped before the conversion, so huge radii cannot overflow an int.
__device__ __forceinline__ void tile_rect(float mx, float my, float rx, float ry, int tiles_x, int tiles_y,
                                          int& x0, int& x1, int& y0, int& y1) {
    x0 = (int)fminf(fmaxf(floorf((mx - rx) / TILE), 0.f), (float)tiles_x);
    x1 = (int)fminf(fmaxf(ceilf((mx + rx) / TILE), 0.f), (float)tiles_x);
    y0 = (int)fminf(fmaxf(floorf((my - ry) / TILE), 0.f), (float)tiles_y);
    y1 = (int)fminf(fmaxf(ceilf((my + ry) / TILE), 0.f), (float)tiles_y);
}

// The σ beyond which α = o·exp(−σ) < 1/255: the blending skips a splat there. Testing σ (rounded exactly
// like the twin's) instead of α leaves the skip decisions to this one logf per splat, so the blending's
// exp can be the fast ex2.approx (splat_falloff, a few ulp) without a decision going the other way from the twin.
// The batches in shared memory carry it in the conic's .w (the radius there is not needed).
__device__ __forceinline__ float sigma_cutoff(float opacity) { return logf(opacity / ALPHA_MIN); }

// exp(−σ) for the blending: one ex2.approx.ftz (max error 2 ulp). __expf spends three more instructions per
// call on inputs whose result is subnormal, which the blending never uses (it skips σ > sigma_cutoff ≤ 5.6).
__device__ __forceinline__ float splat_falloff(float sigma) {
    float g;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(g) : "f"(sigma * -1.44269504f));
    return g;
}

// 1/x for x = 1 − α ∈ [0.01, 1]: rcp.approx and one Newton step, which is the IEEE reciprocal's own fast path
// without its branch to the subnormal/overflow handling no x here needs.
__device__ __forceinline__ float recip_one_minus_alpha(float x) {
    float r;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return fmaf(r, fmaf(-x, r, 1.f), r);
}

// The splat's extent in σ units: the box reaches extend·σ along each axis, the ellipse σ ≤ ½·extend² inside it
// is where α = o·exp(−σ) ≥ 1/255 (capped at EXTEND_MAX, see there).
__device__ __forceinline__ float splat_extend(float opacity) {
    return fminf(EXTEND_MAX, sqrtf(2.f * sigma_cutoff(opacity)));
}

// Whether any pixel centre of tile (tx, ty) lies in the ellipse σ ≤ sigma_max of a splat at (mx, my) with
// conic (A, B, C) (σ = ½A·dx² + B·dx·dy + ½C·dy²). σ is convex: its minimum over the rectangle of pixel
// centres is at the mean when the mean lies inside, else on an edge, where σ is a 1-D quadratic with its
// minimum at y = −B/C·x on a vertical edge and x = −B/A·y on a horizontal one. The small margin keeps every
// pixel the blending would accept despite rounding. Tiles of the box whose corner lies outside the ellipse
// are dropped: a third or so of the box's tiles for round splats. TileTest holds what does not depend on the
// tile (the slopes: no division per tile).
struct TileTest {
    float mx, my, a, b, c;
    float kx, ky;  // −B/C, −B/A
    float lim;     // sigma_max with the margin
};

__device__ __forceinline__ TileTest tile_test(float mx, float my, float4 cn, float sigma_max) {
    return {mx, my, cn.x, cn.y, cn.z, -cn.y / cn.z, -cn.y / cn.x, sigma_max * (1.f + 1e-3f) + 1e-3f};
}

__device__ __forceinline__ bool tile_hit(const TileTest& t, int tx, int ty) {
    float x0 = tx * TILE + 0.5f - t.mx, x1 = x0 + (TILE - 1);
    float y0 = ty * TILE + 0.5f - t.my, y1 = y0 + (TILE - 1);
    if (x0 <= 0.f && x1 >= 0.f && y0 <= 0.f && y1 >= 0.f) return true;
    float best = INFINITY;
    for (int e = 0; e < 2; ++e) {
        float x = e ? x1 : x0;  // vertical edge
        float y = fminf(fmaxf(t.kx * x, y0), y1);
        best = fminf(best, 0.5f * (t.a * x * x + t.c * y * y) + t.b * x * y);
        y = e ? y1 : y0;  // horizontal edge
        x = fminf(fmaxf(t.ky * y, x0), x1);
        best = fminf(best, 0.5f * (t.a * x * x + t.c * y * y) + t.b * x * y);
    }
    return best <= t.lim;
}

// Everything the projection computes before the culling decisions; project_fwd and project_bwd share it.
struct Projected {
    float pc[3];         // camera-space mean
    float qn[4];         // normalised quaternion ((1,0,0,0) for a zero-length one)
    float inv_norm;      // 1/|q| (0 for a zero-length quaternion: no gradient flows to it)
    float R[9];          // Gaussian rotation
    float s[3];          // scales
    float V[9];          // camera-space 3D covariance W·R·S·Sᵀ·Rᵀ·Wᵀ
    float J[6];          // 2×3 projection Jacobian
    bool clamp_x, clamp_y;
    float a, b, c;       // 2D covariance + low-pass
    float det;
};

__device__ __forceinline__ bool project_core(const Camera& cam, const float* mean, const float* log_scale,
                                             const float* quat, int width, int height, Projected& p) {
    const float* Wv = cam.view;
    for (int i = 0; i < 3; ++i)  // rounded like the twin: see mean_2d
        p.pc[i] = __fadd_rn(__fadd_rn(__fadd_rn(__fmul_rn(Wv[i * 4], mean[0]), __fmul_rn(Wv[i * 4 + 1], mean[1])),
                                      __fmul_rn(Wv[i * 4 + 2], mean[2])), Wv[i * 4 + 3]);
    if (!(p.pc[2] >= NEAR_PLANE)) return false;  // behind, on the camera plane, or NaN
    float n2 = quat[0] * quat[0] + quat[1] * quat[1] + quat[2] * quat[2] + quat[3] * quat[3];
    if (n2 > 1e-24f) {
        p.inv_norm = 1.f / sqrtf(n2);
        for (int i = 0; i < 4; ++i) p.qn[i] = quat[i] * p.inv_norm;
    } else {
        p.inv_norm = 0.f;
        p.qn[0] = 1.f; p.qn[1] = p.qn[2] = p.qn[3] = 0.f;
    }
    quat_to_rot(p.qn[0], p.qn[1], p.qn[2], p.qn[3], p.R);
    for (int i = 0; i < 3; ++i) p.s[i] = expf(log_scale[i]);
    float M[9], Sig[9], Wr[9], T[9];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) M[i * 3 + j] = p.R[i * 3 + j] * p.s[j];
    mat3_mul(M, M, Sig, false, true);
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) Wr[i * 3 + j] = Wv[i * 4 + j];
    mat3_mul(Wr, Sig, T, false, false);
    mat3_mul(T, Wr, p.V, false, true);
    float rz = 1.f / p.pc[2];
    float lim_xp = (width - cam.cx) / cam.fx + FOV_CLAMP * 0.5f * width / cam.fx;
    float lim_xn = cam.cx / cam.fx + FOV_CLAMP * 0.5f * width / cam.fx;
    float lim_yp = (height - cam.cy) / cam.fy + FOV_CLAMP * 0.5f * height / cam.fy;
    float lim_yn = cam.cy / cam.fy + FOV_CLAMP * 0.5f * height / cam.fy;
    float u = p.pc[0] * rz, v = p.pc[1] * rz;
    p.clamp_x = !(u <= lim_xp && u >= -lim_xn);
    p.clamp_y = !(v <= lim_yp && v >= -lim_yn);
    u = fminf(lim_xp, fmaxf(-lim_xn, u));
    v = fminf(lim_yp, fmaxf(-lim_yn, v));
    p.J[0] = cam.fx * rz; p.J[1] = 0.f;          p.J[2] = -cam.fx * u * rz;
    p.J[3] = 0.f;         p.J[4] = cam.fy * rz;  p.J[5] = -cam.fy * v * rz;
    float JV[6];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j)
            JV[i * 3 + j] = p.J[i * 3] * p.V[j] + p.J[i * 3 + 1] * p.V[3 + j] + p.J[i * 3 + 2] * p.V[6 + j];
    p.a = JV[0] * p.J[0] + JV[1] * p.J[1] + JV[2] * p.J[2] + LOW_PASS;
    p.b = JV[0] * p.J[3] + JV[1] * p.J[4] + JV[2] * p.J[5];
    p.c = JV[3] * p.J[3] + JV[4] * p.J[4] + JV[5] * p.J[5] + LOW_PASS;
    p.det = p.a * p.c - p.b * p.b;
    return p.det > 0.f && p.det < INFINITY;  // NaN/Inf from huge scales fails too
}

// The 2D mean in pixels from the camera-space mean, rounded like the twin (with project_core's camera-space
// mean): a pixel coordinate carries only ~3e-5 px of precision at 256, and the gradients of a splat's pixels
// move by ~1e-4 (relative) when its mean moves by one ulp, so an FMA-contracted mean would put the GPU that far
// from the twin.
__device__ __forceinline__ void mean_2d(const Camera& cam, const float pc[3], float& mx, float& my) {
    float rz = 1.f / pc[2];
    mx = __fadd_rn(__fmul_rn(__fmul_rn(cam.fx, pc[0]), rz), cam.cx);
    my = __fadd_rn(__fmul_rn(__fmul_rn(cam.fy, pc[1]), rz), cam.cy);
}

__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

// The conic as the blending kernels keep it in their shared batches: (½A, B, ½C, sigma_cutoff(opacity)).
__device__ __forceinline__ float4 batch_conic(float4 xyod, float4 conic) {
    return make_float4(0.5f * conic.x, conic.y, 0.5f * conic.z, sigma_cutoff(xyod.z));
}

// A splat as the blending kernels keep it in their shared batches: xyod and rgb as in `splat`, the conic as
// batch_conic. One array of these (not three of float4): a pair's three loads share one address.
struct BatchSplat {
    float4 xyod, conic, rgb;
};

__device__ __forceinline__ BatchSplat batch_splat(const float4* __restrict__ splat, unsigned g) {
    float4 p = splat[3 * g];
    return {p, batch_conic(p, splat[3 * g + 1]), splat[3 * g + 2]};
}

// σ = ½(A·dx² + C·dy²) + B·dx·dy of a splat at offset (dx, dy) from its batch conic cn, in rounded operations
// (no FMA contraction), so raster_fwd and raster_bwd make bit-identical skip decisions and the CPU twin
// computes the same value: halving A and C is exact, so (½A·dx)·dx + (½C·dy)·dy is bit for bit the twin's
// ½·((A·dx)·dx + (C·dy)·dy), one multiply fewer. The dx terms are a part of their own: raster_bwd's two rows
// of a pixel column share them.
struct SigmaX {
    float adx2, bdx;  // ½A·dx·dx, B·dx
};

__device__ __forceinline__ SigmaX sigma_x(float4 cn, float dx) {
    return {__fmul_rn(__fmul_rn(cn.x, dx), dx), __fmul_rn(cn.y, dx)};
}

__device__ __forceinline__ float sigma_at(SigmaX sx, float4 cn, float dy) {
    float q = __fadd_rn(sx.adx2, __fmul_rn(__fmul_rn(cn.z, dy), dy));
    return __fadd_rn(q, __fmul_rn(sx.bdx, dy));
}

__device__ __forceinline__ float splat_sigma(float4 cn, float dx, float dy) { return sigma_at(sigma_x(cn, dx), cn, dy); }

// Copies the used SH values (3·K of 48) of the block's Gaussians [g0, g0 + PROJECT_THREADS) into rows of
// DSH_STRIDE floats with coalesced loads (a thread reading its own 192-byte row directly makes every load
// of the warp touch 32 sectors), then syncs the block.
__device__ __forceinline__ void stage_sh(const float* __restrict__ sh, int g0, int BN, int K, float* s_rows) {
    int values = min(PROJECT_THREADS, BN - g0) * SH_COEFFS * 3;
    for (int i = threadIdx.x; i < values; i += PROJECT_THREADS) {
        int row = i / (SH_COEFFS * 3), k = i % (SH_COEFFS * 3);
        if (k < 3 * K) s_rows[row * DSH_STRIDE + k] = sh[(size_t)g0 * SH_COEFFS * 3 + i];
    }
    __syncthreads();
}

// ---------------------------------------------------------------------------------------------------------
// project_fwd: one thread per Gaussian g ∈ [0, BN). EWA projection, opacity-aware radius, tile count, SH colour.
//   cams [B] Camera, means [BN,3], log_scales [BN,3], quats [BN,4] (wxyz), opacity_logits [BN],
//   sh [BN,16,3] (first (sh_degree+1)² used)
//   -> splat [BN,3] float4, tiles_touched [BN] int
// Bytes: read 88 + 12·(deg+1)² (+80 per camera, cached), write 52 per Gaussian.
// FLOP: ~250 (covariance, Jacobian, conic) + ~6·(deg+1)² (SH) per Gaussian.
// Shared: the block's SH rows (128 × 49 floats, 25 KB, stage_sh). No atomics; deterministic. NaN policy: a NaN
// input culls its Gaussian (zeros written).
// measured: H200, commit b4f6151, N = 50 000, 512², face-like scene (profiler): 14 µs (B = 1), 65 µs (B = 8).
// With the SH rows staged, tile_test's slopes (no division per tile) and sh_colour's basis in registers: 60 µs
// at B = 8 (75 before, 1.9 M → 1.56 M pairs since b4f6151).
extern "C" __global__ void __launch_bounds__(PROJECT_THREADS)
project_fwd(const Camera* __restrict__ cams, const float* __restrict__ means, const float* __restrict__ log_scales,
            const float* __restrict__ quats, const float* __restrict__ opacity_logits, const float* __restrict__ sh,
            int BN, int N, int width, int height, int sh_degree,
            float4* __restrict__ splat, int* __restrict__ tiles_touched) {
    __shared__ float s_sh[PROJECT_THREADS * DSH_STRIDE];
    int g0 = blockIdx.x * PROJECT_THREADS, g = g0 + threadIdx.x;
    int K = (sh_degree + 1) * (sh_degree + 1);
    stage_sh(sh, g0, BN, K, s_sh);
    if (g >= BN) return;
    const Camera& cam = cams[g / N];
    int tiles_x = (width + TILE - 1) / TILE, tiles_y = (height + TILE - 1) / TILE;
    float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
    Projected p;
    bool visible = project_core(cam, means + 3 * g, log_scales + 3 * g, quats + 4 * g, width, height, p);
    float opacity = sigmoid(opacity_logits[g]);
    visible = visible && opacity >= ALPHA_MIN;
    float mx = 0.f, my = 0.f, rx = 0.f, ry = 0.f;
    float4 conic = zero;
    int count = 0;
    if (visible) {
        float inv_det = 1.f / p.det;
        conic = make_float4(p.c * inv_det, -p.b * inv_det, p.a * inv_det, 0.f);
        float extend = splat_extend(opacity);
        rx = ceilf(extend * sqrtf(p.a));
        ry = ceilf(extend * sqrtf(p.c));
        mean_2d(cam, p.pc, mx, my);
        if (rx > 0.f && ry > 0.f) {  // radius 0 (opacity at exactly 1/255) would mark the splat culled
            int x0, x1, y0, y1;
            tile_rect(mx, my, rx, ry, tiles_x, tiles_y, x0, x1, y0, y1);
            TileTest test = tile_test(mx, my, conic, 0.5f * extend * extend);
            for (int ty = y0; ty < y1; ++ty)
                for (int tx = x0; tx < x1; ++tx) count += tile_hit(test, tx, ty);
        }
    }
    tiles_touched[g] = count;
    if (count == 0) {
        splat[3 * g] = zero; splat[3 * g + 1] = zero; splat[3 * g + 2] = zero;
        return;
    }
    // View direction from the camera centre −Wᵀt to the mean.
    const float* Wv = cam.view;
    const float* m = means + 3 * g;
    float dir[3];
    for (int i = 0; i < 3; ++i)
        dir[i] = m[i] + (Wv[i] * Wv[3] + Wv[4 + i] * Wv[7] + Wv[8 + i] * Wv[11]);
    float dn = sqrtf(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]);
    float inv_dn = dn > 0.f ? 1.f / dn : 0.f;
    float bs[SH_COEFFS];
    sh_basis(sh_degree, dir[0] * inv_dn, dir[1] * inv_dn, dir[2] * inv_dn, bs);
    const float* c = s_sh + threadIdx.x * DSH_STRIDE;
    float rgb[3];
    for (int ch = 0; ch < 3; ++ch) rgb[ch] = fmaxf(sh_colour(bs, c, K, ch) + 0.5f, 0.f);
    splat[3 * g] = make_float4(mx, my, opacity, p.pc[2]);
    splat[3 * g + 1] = make_float4(conic.x, conic.y, conic.z, rx);
    splat[3 * g + 2] = make_float4(rgb[0], rgb[1], rgb[2], ry);
}

// ---------------------------------------------------------------------------------------------------------
// tile_pairs: one thread per Gaussian; writes one (key, value) per tile of its box that its ellipse reaches
// (tile_hit, the test project_fwd counted with), at offsets[g] + k.
//   splat [BN,3] float4, offsets [BN] (exclusive scan of tiles_touched)
//   -> keys [capacity] u64, values [capacity] u32 (Gaussian index g)
// Pairs at positions ≥ capacity are not written (the host sees total > capacity and redoes the call).
// Bytes: read 36 per Gaussian, write 12 per pair. No atomics; deterministic.
extern "C" __global__ void __launch_bounds__(PAIRS_THREADS)
tile_pairs(const float4* __restrict__ splat, const int* __restrict__ offsets, int BN, int N, int width, int height,
           int capacity, unsigned long long* __restrict__ keys, unsigned int* __restrict__ values) {
    int g = blockIdx.x * PAIRS_THREADS + threadIdx.x;
    if (g >= BN) return;
    float4 p0 = splat[3 * g], p1 = splat[3 * g + 1], p2 = splat[3 * g + 2];
    if (p1.w == 0.f) return;
    int tiles_x = (width + TILE - 1) / TILE, tiles_y = (height + TILE - 1) / TILE;
    int x0, x1, y0, y1;
    tile_rect(p0.x, p0.y, p1.w, p2.w, tiles_x, tiles_y, x0, x1, y0, y1);
    unsigned long long frame_tiles = (unsigned long long)(g / N) * (unsigned long long)(tiles_x * tiles_y);
    unsigned long long depth = __float_as_uint(p0.w);
    float extend = splat_extend(p0.z);
    TileTest test = tile_test(p0.x, p0.y, p1, 0.5f * extend * extend);
    int off = offsets[g];
    for (int ty = y0; ty < y1; ++ty)
        for (int tx = x0; tx < x1; ++tx) {
            if (!tile_hit(test, tx, ty)) continue;
            if (off >= capacity) return;
            keys[off] = ((frame_tiles + ty * tiles_x + tx) << DEPTH_BITS) | depth;
            values[off++] = (unsigned)g;
        }
}

// ---------------------------------------------------------------------------------------------------------
// tile_ranges: one thread per (frame, tile) t ∈ [0, B·TT); binary search of the sorted keys for the first and
// one-past-last pair of the tile.
//   keys [capacity] sorted (first min(*num_pairs, capacity) valid), num_pairs [1] -> ranges [B·TT] int2
// Bytes: ~2·log2(P)·8 read, 8 written per tile. Deterministic, no shared memory.
__device__ __forceinline__ int lower_bound(const unsigned long long* keys, int n, unsigned long long k) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (keys[mid] < k) lo = mid + 1; else hi = mid;
    }
    return lo;
}

extern "C" __global__ void __launch_bounds__(RANGES_THREADS)
tile_ranges(const unsigned long long* __restrict__ keys, const int* __restrict__ num_pairs, int capacity,
            int num_tiles, int2* __restrict__ ranges) {
    int t = blockIdx.x * RANGES_THREADS + threadIdx.x;
    if (t >= num_tiles) return;
    int n = min(*num_pairs, capacity);
    unsigned long long k = (unsigned long long)t << DEPTH_BITS;
    ranges[t] = make_int2(lower_bound(keys, n, k), lower_bound(keys, n, k + (1ull << DEPTH_BITS)));
}

// ---------------------------------------------------------------------------------------------------------
// Pieces. A deep tile (thousands of pairs at the centre of a face) kept one block busy long after the others
// had finished: in the canonical step at batch 1 the 1024 tile blocks fit in one wave, and in raster_bwd the
// SMs were active 37 % of the kernel's time. So the blending passes cut the tiles' pair lists (raster_bwd
// every tile, raster_fwd those longer than RASTER_FWD_WHOLE) at the global pair positions that are multiples of RASTER_PIECE (boundaries) and run one block per piece: grid
// B·TT + capacity / RASTER_PIECE; block u < B·TT takes the first piece of tile u, block B·TT + m the piece
// that starts at boundary m·RASTER_PIECE (its tile read from the sorted key there; nothing to do if that
// position is past the pair count or starts a tile). A boundary lies inside one tile only, so slots indexed
// by it are never shared:
//   piece_state [P / RASTER_PIECE + 1, 256] float4: (T, Σ w·r, Σ w·g, Σ w·b) of the pairs before boundary p,
//     slot p / RASTER_PIECE, entry = pixel index in the tile (row · 16 + column): where raster_bwd's pieces
//     start. A pixel that stopped before p writes nothing there; the backward never reads it, because the
//     pixel's last contributor lies before p and the piece's end state is then the pixel's final state.
//   piece_part [2·(P / RASTER_PIECE + 1), 256, 2] float4: raster_fwd's blend of one piece of a tile with
//     several pieces, as if T were 1 at its start: (T, Σ w·rgb) and (Σ w·z, last + 1 (int bits, 0: none),
//     stopped (int bits), 0). The piece starting at boundary m has slot m, the tile's first piece slot
//     P / RASTER_PIECE + 1 + m₁ with m₁ its tile's first boundary.
// raster_fwd_combine then chains the pieces of each tile in order.

// End of the piece that starts at pair `start` of a tile whose pairs end at `range_end`.
__device__ __forceinline__ int piece_end(int start, int range_end) {
    return min(range_end, (start / RASTER_PIECE + 1) * RASTER_PIECE);
}

// Whether raster_fwd blends the tile of `range` in one block (else in pieces, chained by raster_fwd_combine).
__device__ __forceinline__ bool blended_whole(int2 range) { return range.y - range.x <= RASTER_FWD_WHOLE; }

// The piece of block `unit`: its tile (b·TT + tile), [start, end) in the sorted pairs. False: nothing to do.
__device__ __forceinline__ bool piece_of(int unit, int num_tiles, const int2* __restrict__ ranges,
                                         const unsigned long long* __restrict__ keys, const int* __restrict__ num_pairs,
                                         int capacity, int& tile_id, int2& range, int& start, int& end) {
    if (unit < num_tiles) {
        tile_id = unit;
        start = ranges[tile_id].x;
    } else {
        start = (unit - num_tiles) * RASTER_PIECE;
        if (start >= min(*num_pairs, capacity)) return false;
        tile_id = (int)(keys[start] >> DEPTH_BITS);
        if (ranges[tile_id].x == start) return false;  // the tile's first piece: block tile_id has it
    }
    range = ranges[tile_id];
    end = piece_end(start, range.y);
    return start < end;
}

// Pixel (px, py) of thread `t` of a 16×16 tile's block (t = row · 16 + column), and the tile's frame b.
__device__ __forceinline__ void tile_pixel(int tile_id, int t, int width, int height, int& b, int& px, int& py) {
    int tiles_x = (width + TILE - 1) / TILE, per_frame = tiles_x * ((height + TILE - 1) / TILE);
    b = tile_id / per_frame;
    int tile = tile_id % per_frame;
    px = (tile % tiles_x) * TILE + t % TILE;
    py = (tile / tiles_x) * TILE + t / TILE;
}

// Front-to-back blending state of one pixel: transmittance, colour and depth sums, pairs walked up to the
// last blended one (global index + 1, 0: none), stopped at T < 1e-4.
struct Blend {
    float T, r, g, b, d;
    int last;
    bool done;
};

// Blends the `count` splats of the shared batch (pair indices first..) into `st` at pixel centre (fx, fy):
// the rule of raster_fwd.
__device__ __forceinline__ void blend(Blend& st, const BatchSplat* s_batch, int count, int first, float fx, float fy) {
    for (int j = 0; j < count && !st.done; ++j) {
        float4 p = s_batch[j].xyod, cn = s_batch[j].conic;
        float dx = p.x - fx, dy = p.y - fy;
        float sigma = splat_sigma(cn, dx, dy);
        if (sigma < 0.f || sigma > cn.w) continue;
        float alpha = fminf(ALPHA_MAX, p.z * splat_falloff(sigma));
        float next_t = st.T * (1.f - alpha);
        if (next_t < T_MIN) { st.done = true; break; }
        float w = alpha * st.T;
        float4 c = s_batch[j].rgb;
        st.r += w * c.x; st.g += w * c.y; st.b += w * c.z; st.d += w * p.w;
        st.T = next_t;
        st.last = first + j + 1;
    }
}

// Records `st` as this thread's pixel state at boundary `pos` (piece_state, above).
__device__ __forceinline__ void save_piece_state(float4* __restrict__ piece_state, int pos, const Blend& st) {
    piece_state[(size_t)(pos / RASTER_PIECE) * RASTER_THREADS + threadIdx.x] = make_float4(st.T, st.r, st.g, st.b);
}

// This thread's two float4 of piece_part for the piece starting at `start` of the tile starting at
// `range_start` (the first piece's slot lies after the boundary slots).
__device__ __forceinline__ size_t piece_part_at(int capacity, int range_start, int start) {
    int slot = start == range_start ? capacity / RASTER_PIECE + 1 + range_start / RASTER_PIECE + 1 : start / RASTER_PIECE;
    return 2 * ((size_t)slot * RASTER_THREADS + threadIdx.x);
}

// Loads the splats of pairs [lo, hi) (hi − lo ≤ RASTER_THREADS) into the block's shared batch.
__device__ __forceinline__ void load_batch(const float4* __restrict__ splat, const unsigned int* __restrict__ values,
                                           int lo, int hi, BatchSplat* s_batch) {
    int i = lo + threadIdx.x;
    if (i < hi) s_batch[threadIdx.x] = batch_splat(splat, values[i]);
}

// The pixel's outputs: image = colour + T·background, final T, depth, n_contrib (pairs walked, tile-local).
__device__ __forceinline__ void write_pixel(const Blend& st, size_t pix, int range_start, const float* __restrict__ background,
                                            float* __restrict__ image, float* __restrict__ final_t,
                                            float* __restrict__ depth, int* __restrict__ n_contrib) {
    image[3 * pix] = st.r + st.T * background[3 * pix];
    image[3 * pix + 1] = st.g + st.T * background[3 * pix + 1];
    image[3 * pix + 2] = st.b + st.T * background[3 * pix + 2];
    final_t[pix] = st.T;
    depth[pix] = st.d;
    n_contrib[pix] = st.last > 0 ? st.last - range_start : 0;
}

// ---------------------------------------------------------------------------------------------------------
// raster_fwd: one block per piece (above), one thread per pixel of the 16×16 tile. The piece's pairs are
// walked front to back in batches that end at multiples of 256 in the pair array: each thread loads one
// splat into shared memory, then every pixel blends the batch: α = min(0.99, o·exp(−σ)), skipped below
// 1/255 (σ > sigma_cutoff); a pixel stops before the Gaussian that would take T below 1e-4. A tile of at most
// RASTER_FWD_WHOLE pairs is blended whole by its first block, which writes piece_state at the tile's
// boundaries and the outputs (background blended with the final T); its other blocks return. A piece of a
// longer tile is blended from T = 1 into piece_part (above), stopping where its own T drops below 1e-4 (the
// true T is no larger, so the true stop is no later), for raster_fwd_combine.
// The whole-tile limit keeps the common short tiles at one pass (a 200-pair tile straddles a boundary
// more often than not); the long ones, whose one block set the kernel's time, are split.
//   splat [BN,3] float4, values / keys [capacity] (sorted), num_pairs [1], ranges [B·TT] int2,
//   background [B,H,W,3]
//   -> image [B,H,W,3], final_t [B,H,W], depth [B,H,W] (Σ w·z, not normalised), n_contrib [B,H,W] (pairs
//      walked up to and including the last blended one, for raster_bwd) and piece_state of the tiles blended
//      whole; piece_part of the others.
// Shared: 256 BatchSplat = 12 KiB.
// Bytes: read 52 per pair + 12 per pixel (background); write 24 per pixel or 32 per (pixel, piece).
// FLOP: ~25 per (pixel, pair) tested.
// No atomics; deterministic. NaN policy: splats are finite by construction (culling in project_fwd).
// measured: H200, commit b4f6151, N = 50 000, 512², face-like scene (profiler), one block per tile: 109 µs
// (B = 1, 237 k pairs), 651 µs (B = 8, 1.9 M pairs). Commit d831f47 (pieces, fewer pairs from tile_hit):
// canonical step (head mesh at its initial opacity, deep tiles) raster_fwd 191 + raster_fwd_combine 83 µs,
// from 338 µs with one block per tile; over a whole 8000-step training 157 + 392 µs per step, from 702 µs;
// face-like B = 8 562 µs (combine 10 µs), unchanged.
extern "C" __global__ void __launch_bounds__(RASTER_THREADS)
raster_fwd(const float4* __restrict__ splat, const unsigned int* __restrict__ values,
           const unsigned long long* __restrict__ keys, const int* __restrict__ num_pairs, int capacity,
           const int2* __restrict__ ranges, int num_tiles, const float* __restrict__ background, int width, int height,
           float* __restrict__ image, float* __restrict__ final_t, float* __restrict__ depth, int* __restrict__ n_contrib,
           float4* __restrict__ piece_state, float4* __restrict__ piece_part) {
    __shared__ BatchSplat s_batch[RASTER_THREADS];
    int tile_id, start, end;
    int2 range;
    if (!piece_of(blockIdx.x, num_tiles, ranges, keys, num_pairs, capacity, tile_id, range, start, end)) {
        if ((int)blockIdx.x >= num_tiles) return;
        // A tile without pairs: its pixels are the background.
        tile_id = blockIdx.x;
        range = ranges[tile_id];
        start = end = range.x;
    }
    bool whole = blended_whole(range);
    if (whole) {
        if (start != range.x) return;  // the tile's first block blends all of it
        end = range.y;
    }
    int b, px, py;
    tile_pixel(tile_id, threadIdx.x, width, height, b, px, py);
    bool inside = px < width && py < height;
    Blend st = {1.f, 0.f, 0.f, 0.f, 0.f, 0, !inside};
    for (int lo = start; lo < end;) {
        int hi = min(end, (lo / RASTER_THREADS + 1) * RASTER_THREADS);
        if (__syncthreads_count(st.done) == RASTER_THREADS) break;
        if (lo > range.x && lo % RASTER_PIECE == 0 && !st.done) save_piece_state(piece_state, lo, st);
        load_batch(splat, values, lo, hi, s_batch);
        __syncthreads();
        blend(st, s_batch, hi - lo, lo, px + 0.5f, py + 0.5f);
        lo = hi;
    }
    if (!inside) return;
    if (whole) {
        write_pixel(st, ((size_t)b * height + py) * width + px, range.x, background, image, final_t, depth, n_contrib);
        return;
    }
    float4* part = piece_part + piece_part_at(capacity, range.x, start);
    part[0] = make_float4(st.T, st.r, st.g, st.b);
    part[1] = make_float4(st.d, __int_as_float(st.last), __int_as_float(st.done ? 1 : 0), 0.f);
}

// ---------------------------------------------------------------------------------------------------------
// raster_fwd_combine: one block per (tile, frame) = grid (B·TT), one thread per pixel, for the tiles of more
// than RASTER_FWD_WHOLE pairs (raster_fwd finished the others). Each pixel chains its tile's pieces in order
// from T = 1: where a piece neither stopped on its own nor takes T·T_piece below 1e-4, T_in·(piece sums) is
// added and T multiplied (the products are monotone, so no splat inside it would have stopped the pixel);
// at any other piece the pixel waits. Then, repeatedly, the block loads the earliest piece some pixel waits
// at into shared memory, and those pixels blend it splat by splat from their true T, which finds the exact
// stop (or, where rounding put the product below 1e-4 but no splat stops it, chain on). Before each boundary,
// a pixel still blending writes its state to piece_state (above). Then the outputs as raster_fwd.
// The chaining is a walk of dependent decisions over the pieces, so a pixel loads the partials of
// COMBINE_AHEAD pieces before it looks at the first.
//   splat, values, ranges, background, piece_part as raster_fwd -> image, final_t, depth, n_contrib of the
//   long tiles; piece_state.
// Shared: 12 KiB, as raster_fwd. Bytes: 32 read + 16 written per (pixel, piece) + 52 per pair re-blended.
// FLOP: ~10 per (pixel, piece) + 25 per (pixel, pair) re-blended.
// No atomics to global memory; deterministic. The products T·T_piece round differently from the
// pair-by-pair products (a few ulp per piece). CPU twin of raster_fwd + raster_fwd_combine: raster_fwd in
// src/cpu/raster.rs, which walks the same pieces per pixel; tests/raster.rs checks it against one walk.
extern "C" __global__ void __launch_bounds__(RASTER_THREADS)
raster_fwd_combine(const float4* __restrict__ splat, const unsigned int* __restrict__ values, int capacity,
                   const int2* __restrict__ ranges, const float* __restrict__ background, int width, int height,
                   const float4* __restrict__ piece_part, float* __restrict__ image, float* __restrict__ final_t,
                   float* __restrict__ depth, int* __restrict__ n_contrib, float4* __restrict__ piece_state) {
    __shared__ BatchSplat s_batch[RASTER_THREADS];
    __shared__ int s_next;
    int tile_id = blockIdx.x;
    int2 range = ranges[tile_id];
    if (blended_whole(range)) return;
    int b, px, py;
    tile_pixel(tile_id, threadIdx.x, width, height, b, px, py);
    bool inside = px < width && py < height;
    Blend st = {1.f, 0.f, 0.f, 0.f, 0.f, 0, !inside};
    // Chains pieces from `pos` while they can be taken whole; stops at the first piece to re-blend. The
    // partials are loaded COMBINE_AHEAD pieces at a time, so their loads overlap.
    auto chain = [&](int& pos) {
        while (!st.done && pos < range.y) {
            float4 q[COMBINE_AHEAD][2];
#pragma unroll
            for (int k = 0, at = pos; k < COMBINE_AHEAD; ++k, at = piece_end(at, range.y)) {
                if (at < range.y) {
                    const float4* part = piece_part + piece_part_at(capacity, range.x, at);
                    q[k][0] = part[0], q[k][1] = part[1];
                }
            }
#pragma unroll
            for (int k = 0; k < COMBINE_AHEAD; ++k) {
                if (pos >= range.y) return;
                if (pos > range.x) save_piece_state(piece_state, pos, st);
                float4 p0 = q[k][0], p1 = q[k][1];
                float T_next = st.T * p0.x;
                if (__float_as_int(p1.z) != 0 || T_next < T_MIN) return;
                st.r += st.T * p0.y; st.g += st.T * p0.z; st.b += st.T * p0.w; st.d += st.T * p1.x;
                if (__float_as_int(p1.y) > 0) st.last = __float_as_int(p1.y);
                st.T = T_next;
                pos = piece_end(pos, range.y);
            }
        }
    };
    int pos = range.x;
    chain(pos);
    for (;;) {
        bool waits = !st.done && pos < range.y;
        if (threadIdx.x == 0) s_next = INT_MAX;
        __syncthreads();
        if (waits) atomicMin(&s_next, pos);
        __syncthreads();
        int next = s_next;
        if (next == INT_MAX) break;
        int end = piece_end(next, range.y);
        load_batch(splat, values, next, end, s_batch);
        __syncthreads();
        if (waits && pos == next) {
            blend(st, s_batch, end - next, next, px + 0.5f, py + 0.5f);
            pos = end;
            chain(pos);
        }
        __syncthreads();  // the batch and s_next are reused
    }
    if (!inside) return;
    write_pixel(st, ((size_t)b * height + py) * width + px, range.x, background, image, final_t, depth, n_contrib);
}

// ---------------------------------------------------------------------------------------------------------
// Sums v[0..9) over the warp by halving: at each level a lane keeps one half of its slots and adds its
// partner's copy of that half, sent in exchange for the other half (12 shuffles instead of the butterfly's
// 45, and 9 lanes then add one value each to global memory instead of one lane adding 9). A lane's role is
// fixed (ScatterLane, computed once per thread): the half it keeps at each level and the slot whose full
// sum it ends with (≥ 9: a padding slot, nothing); lanes l and l ^ 1 end with the same slot, and lane l with
// bit 0 clear adds it.
struct ScatterLane {
    bool h16, h8, h4, h2;
    int slot;
    bool adds;
};

__device__ __forceinline__ ScatterLane scatter_lane(int lane) {
    ScatterLane l;
    l.h16 = lane & 16; l.h8 = lane & 8; l.h4 = lane & 4; l.h2 = lane & 2;
    int ci = l.h2, bi = ci + (l.h4 ? 2 : 0), ai = bi + (l.h8 ? 3 : 0);
    l.slot = bi < 3 && ai < 5 ? ai + (l.h16 ? 5 : 0) : D_SPLAT;
    l.adds = l.slot < D_SPLAT && !(lane & 1);
    return l;
}

__device__ __forceinline__ float warp_sum_scatter(const float v[D_SPLAT], const ScatterLane& l) {
    // Level 16: slots k and k + 5 (a 10th slot pads).
    float a[5];
#pragma unroll
    for (int k = 0; k < 5; ++k) {
        float lo = v[k], hi = k + 5 < D_SPLAT ? v[k + 5] : 0.f;
        a[k] = (l.h16 ? hi : lo) + __shfl_xor_sync(0xffffffffu, l.h16 ? lo : hi, 16);
    }
    // Level 8: a's entries k and k + 3 (a 6th pads).
    float b[3];
#pragma unroll
    for (int k = 0; k < 3; ++k) {
        float lo = a[k], hi = k + 3 < 5 ? a[k + 3] : 0.f;
        b[k] = (l.h8 ? hi : lo) + __shfl_xor_sync(0xffffffffu, l.h8 ? lo : hi, 8);
    }
    // Level 4: b's entries k and k + 2 (a 4th pads).
    float c[2];
#pragma unroll
    for (int k = 0; k < 2; ++k) {
        float lo = b[k], hi = k + 2 < 3 ? b[k + 2] : 0.f;
        c[k] = (l.h4 ? hi : lo) + __shfl_xor_sync(0xffffffffu, l.h4 ? lo : hi, 4);
    }
    // Level 2: c's entries 0 and 1; level 1: both lanes of a pair add up the same slot.
    float d = (l.h2 ? c[1] : c[0]) + __shfl_xor_sync(0xffffffffu, l.h2 ? c[0] : c[1], 2);
    return d + __shfl_xor_sync(0xffffffffu, d, 1);
}

// Entry k of d_splat for a pair from raster_bwd's sum m_k (the moments Σ d_σ·(dx, dy, dx², dx·dy, dy²) in
// k < 5, d_opacity and d_rgb after) and, for k < 2, the other first moment: (d_x, d_y, d_A, d_B, d_C) from
// σ = ½A·dx² + B·dx·dy + ½C·dy² and dx = x − pixel, with the batch conic cn (½A, B, ½C).
__device__ __forceinline__ float splat_grad(float4 cn, int k, float m, float other) {
    return k == 0 ? 2.f * cn.x * m + cn.y * other
         : k == 1 ? cn.y * other + 2.f * cn.z * m
         : k == 2 || k == 4 ? 0.5f * m : m;
}

// raster_bwd: one block per piece (above). RASTER_BWD_THREADS = 128 threads, each owning two pixels of a tile column (rows y, y + 8: BWD_ROWS); a
// piece's pairs are walked back to front in batches of 128 from the block's largest last contributor,
// rebuilding T_i = T_{i+1} / (1 − α_i) from the piece's end state: the final T and S = T·background if the
// pixel's last contributor lies in or before the piece, else the boundary's piece_state (T, C) with
// S = image − C. Per (pixel, pair):
//   d_rgb = α·T_i·d_pix; d_α = (c·d_pix·T_{i+1} − S·d_pix)/(1−α) with S the colour behind (background
//   incl.; a thread keeps only S·d_pix), T_{i+1} = T_i·(1−α) the transmittance behind the splat;
//   unclamped α: d_o = G·d_α, d_σ = −α·d_α, summed as the moments Σ d_σ·(dx, dy, dx², dx·dy, dy²), which
//   splat_grad turns into d_mean2d and d_conic once per (warp, pair) (the conic is the pair's).
// The 9 sums of a pair are taken over a thread's two pixels, then over the warp's 64 pixels with
// warp_sum_scatter, after which 9 lanes add one value each to d_splat (4 warps per piece → ≤ 4 atomics per
// value per piece); when at most DIRECT_ATOMIC_LANES lanes touch the pair, those lanes add their own values
// instead (no shuffles).
//   splat, values, ranges, background as raster_fwd; keys [capacity] sorted, num_pairs [1]; image, final_t,
//   n_contrib, piece_state from raster_fwd / raster_fwd_combine; d_image [B,H,W,3] -> d_splat [BN,9] (accumulated: zero it first)
// Shared: 128 BatchSplat + 128 u32 = 6.5 KiB. Bytes: read 52 per pair + 48 per pixel per piece (+16 where a
// boundary state is read); 36 atomic bytes per (warp, pair touched). FLOP: ~45 per (pixel, pair) blended +
// 13 shuffles per (warp, pair) reduced.
// Atomics: float atomicAdd, so the summation order varies between runs (relative differences ~1e-7).
// NaN policy: inputs finite by construction; T_i division bounded by 1 − α ≥ 0.01.
// measured: H200, commit b4f6151, N = 50 000, 512², face-like scene (profiler): 320 µs (B = 1), 1876 µs (B = 8):
// the largest share of a B = 8 step (before DIRECT_ATOMIC_LANES). A first shuffle reduce-scatter (then
// measured slower, 3.33 → 4.67 ms) indexed its registers at run time; warp_sum_scatter selects instead.
// Two pixels per thread (commit 536e4ad): B = 8 1.68 → 1.53 ms (ncu); with tile_hit's fewer pairs 1.42 ms,
// issue slots 80 % busy (bench/results/2026-11-26-H200-ncu-raster-bwd-b8.txt): instruction-bound.
// A warp-uniform box test to skip splats (tried at 595a4ed) cost more than it saved on the trained head
// (raster_bwd 803 → 1096 µs per step) and was reverted. Pieces, H200: the canonical step's raster_bwd
// 782 → 279 µs (one block per tile had the SMs active 37 % of the time), a whole 8000-step canonical training
// 1.78 → 0.19 ms per step on average; the balanced face-like scene is unchanged (B = 8 fwd + bwd 2.56 ms).
// One division per (pixel, pair) instead of four (09b5b8e): B = 8 face-like raster_bwd 1.42 → 1.25 ms, fwd + bwd
// 2.56 → 2.38 ms (gsplat 3.95 ms in the same session: 1.66×).
// S·d_pix kept as one number, σ's dx terms shared by the two rows, moments summed instead of d_conic and
// d_mean2d, and warp_sum_scatter instead of the butterfly: B = 8 raster_bwd 1.19 → 1.10 ms, fwd + bwd 2.38 →
// 2.24 ms (H200, same session); direct atomics for at most 2 or 4 lanes measured slower (2.32, 2.28 ms).
// Skip tests on σ (sigma_cutoff) and __expf: B = 8 raster_bwd 1.10 → 1.03 ms, raster_fwd 562 → 455 µs, with
// project_bwd's staged SH rows (170 → 100 µs) fwd + bwd 2.24 → 1.98 ms (H200, same session).
// splat_falloff (ex2.approx.ftz), recip_one_minus_alpha (no slow-path branch) and the lane roles of
// warp_sum_scatter computed once (the per-instruction profile showed ~90 instructions per reduced pair): B = 8
// raster_bwd 1.03 → 0.98 ms, raster_fwd 446 → 429 µs, fwd + bwd 1.91 → 1.84 ms.
// The batches as one array of BatchSplat: raster_fwd 429 → 387 µs (it recomputed the colour array's
// address per blended pair), raster_bwd 0.98 → 0.97 ms, fwd + bwd 1.83 → 1.78 ms.
extern "C" __global__ void __launch_bounds__(RASTER_BWD_THREADS)
raster_bwd(const float4* __restrict__ splat, const unsigned int* __restrict__ values, const int2* __restrict__ ranges,
           const unsigned long long* __restrict__ keys, const int* __restrict__ num_pairs, int capacity,
           int num_tiles, const float* __restrict__ background, const float* __restrict__ image,
           const float* __restrict__ final_t, const int* __restrict__ n_contrib, const float4* __restrict__ piece_state,
           const float* __restrict__ d_image, int width, int height, float* __restrict__ d_splat) {
    __shared__ BatchSplat s_batch[RASTER_BWD_THREADS];
    __shared__ unsigned s_id[RASTER_BWD_THREADS];
    __shared__ int s_max_last;
    int tile_id, start, end;
    int2 range;
    if (!piece_of(blockIdx.x, num_tiles, ranges, keys, num_pairs, capacity, tile_id, range, start, end)) return;
    // Thread t owns pixel column t % 16 of rows t / 16 and t / 16 + 8 of the tile.
    int b, px, py0;
    tile_pixel(tile_id, threadIdx.x, width, height, b, px, py0);
    float fx = px + 0.5f, fy[BWD_ROWS];
    // S·d_pix: the colour behind the current pair (background included) dotted with the pixel's gradient.
    float T[BWD_ROWS], dp[BWD_ROWS][3], SD[BWD_ROWS];
    int last[BWD_ROWS];  // global pair index bound: pairs at or past it are not blended by the pixel
#pragma unroll
    for (int r = 0; r < BWD_ROWS; ++r) {
        int py = py0 + r * (TILE / BWD_ROWS);
        fy[r] = py + 0.5f;
        T[r] = 1.f;
        last[r] = start;
        SD[r] = 0.f;
        for (int c = 0; c < 3; ++c) dp[r][c] = 0.f;
        if (px < width && py < height) {
            size_t pix = ((size_t)b * height + py) * width + px;
            last[r] = min(end, range.x + n_contrib[pix]);
            for (int c = 0; c < 3; ++c) dp[r][c] = d_image[3 * pix + c];
            if (range.x + n_contrib[pix] <= end) {
                T[r] = final_t[pix];
                for (int c = 0; c < 3; ++c) SD[r] += T[r] * background[3 * pix + c] * dp[r][c];
            } else {
                float4 st = piece_state[(size_t)(end / RASTER_PIECE) * RASTER_THREADS + threadIdx.x +
                                        r * RASTER_BWD_THREADS];
                T[r] = st.x;
                SD[r] = (image[3 * pix] - st.y) * dp[r][0] + (image[3 * pix + 1] - st.z) * dp[r][1] +
                        (image[3 * pix + 2] - st.w) * dp[r][2];
            }
        }
    }
    int my_last = start;
#pragma unroll
    for (int r = 0; r < BWD_ROWS; ++r) my_last = max(my_last, last[r]);
    if (threadIdx.x == 0) s_max_last = start;
    __syncthreads();
    atomicMax(&s_max_last, my_last);
    __syncthreads();
    int lane = threadIdx.x & 31;
    const ScatterLane role = scatter_lane(lane);
    // Pairs at or past every lane's last contributor change nothing: the warp skips them as a whole.
    int warp_last = __reduce_max_sync(0xffffffffu, my_last);
    for (int hi = s_max_last; hi > start; hi -= RASTER_BWD_THREADS) {
        int lo = max(start, hi - RASTER_BWD_THREADS);
        __syncthreads();  // the previous batch is no longer read
        int i = lo + threadIdx.x;
        if (i < hi) {
            unsigned gi = values[i];
            s_id[threadIdx.x] = gi;
            s_batch[threadIdx.x] = batch_splat(splat, gi);
        }
        __syncthreads();
        for (int j = min(hi, warp_last) - lo - 1; j >= 0; --j) {
            float4 p = s_batch[j].xyod, cn = s_batch[j].conic, c = s_batch[j].rgb;
            float dx = p.x - fx;
            SigmaX sx = sigma_x(cn, dx);
            // gd: d_opacity, d_rgb as d_splat; [0..5) the moments Σ d_σ·(dx, dy, dx², dx·dy, dy²), turned
            // into (d_x, d_y, d_A, d_B, d_C) by splat_grad once the pixels are summed.
            float gd[D_SPLAT];
            for (int k = 0; k < D_SPLAT; ++k) gd[k] = 0.f;
            bool any = false;
#pragma unroll
            for (int r = 0; r < BWD_ROWS; ++r) {
                float dy = p.y - fy[r];
                float sigma = sigma_at(sx, cn, dy);
                float G = splat_falloff(sigma);
                float og = p.z * G;
                float alpha = fminf(ALPHA_MAX, og);
                bool active = lo + j < last[r] && sigma >= 0.f && sigma <= cn.w;
                if (!active) continue;
                any = true;
                // One reciprocal per (pixel, pair): T_i = T_{i+1}/(1−α), and d_α's (c·T − S)/(1−α).
                float inv_om = recip_one_minus_alpha(1.f - alpha);
                float Ti = T[r] * inv_om;
                float w = alpha * Ti;
                gd[6] += w * dp[r][0]; gd[7] += w * dp[r][1]; gd[8] += w * dp[r][2];
                float cdp = c.x * dp[r][0] + c.y * dp[r][1] + c.z * dp[r][2];
                float d_alpha = (cdp * T[r] - SD[r]) * inv_om;
                SD[r] += w * cdp;
                T[r] = Ti;
                if (og < ALPHA_MAX) {
                    gd[5] += G * d_alpha;
                    float d_sigma = -og * d_alpha;
                    float tx = d_sigma * dx, ty = d_sigma * dy;
                    gd[0] += tx; gd[1] += ty;
                    gd[2] += tx * dx; gd[3] += tx * dy; gd[4] += ty * dy;
                }
            }
            unsigned active_lanes = __ballot_sync(0xffffffffu, any);
            if (__popc(active_lanes) > DIRECT_ATOMIC_LANES) {
                float sum = warp_sum_scatter(gd, role);
                // Moments 0 and 1 sit in lanes 0 and 2 (scatter_lane): each needs the other's for d_x, d_y.
                float other = __shfl_xor_sync(0xffffffffu, sum, 2);
                if (role.adds)
                    atomicAdd(d_splat + (size_t)s_id[j] * D_SPLAT + role.slot, splat_grad(cn, role.slot, sum, other));
            } else if (any) {
                float* dst = d_splat + (size_t)s_id[j] * D_SPLAT;
#pragma unroll
                for (int k = 0; k < D_SPLAT; ++k) atomicAdd(dst + k, splat_grad(cn, k, gd[k], gd[k < 2 ? 1 - k : k]));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// project_bwd: one thread per Gaussian; recomputes the projection and pulls d_splat back to the parameters.
//   cams, means, log_scales, quats, opacity_logits, sh as project_fwd; splat [BN,3] (radius_x == 0: culled),
//   d_splat [BN,9]
//   -> d_means [BN,3], d_log_scales [BN,3], d_quats [BN,4], d_opacity_logits [BN], d_sh [BN,16,3] (zero beyond
//      (deg+1)²), d_mean2d_norm [BN] = ‖(d_x·W/2, d_y·H/2)‖, the 2D-mean gradient in NDC units (densification)
// Every output element is written (zeros for culled Gaussians).
// Bytes: read 88 + 12·(deg+1)² + 48 + 36, write 112 + 192 per Gaussian. FLOP: ~700 + ~20·(deg+1)².
// Shared: the block's SH rows (128 × 49 floats, 25 KB, stage_sh), overwritten by its d_sh, written out coalesced
// at the end.
// No atomics; deterministic. NaN policy: as project_fwd (culled Gaussians get zero gradients).
// measured: H200, commit b4f6151, N = 50 000, 512², face-like scene (profiler): 48 µs (B = 1), 328 µs (B = 8);
// with d_sh staged in shared memory (b767a92) 170 µs at B = 8.
// SH rows read through shared memory too and sh_colour's basis in registers: 94 µs.
extern "C" __global__ void __launch_bounds__(PROJECT_THREADS)
project_bwd(const Camera* __restrict__ cams, const float* __restrict__ means, const float* __restrict__ log_scales,
            const float* __restrict__ quats, const float* __restrict__ opacity_logits, const float* __restrict__ sh,
            const float4* __restrict__ splat, const float* __restrict__ d_splat,
            int BN, int N, int width, int height, int sh_degree,
            float* __restrict__ d_means, float* __restrict__ d_log_scales, float* __restrict__ d_quats,
            float* __restrict__ d_opacity_logits, float* __restrict__ d_sh, float* __restrict__ d_mean2d_norm) {
    // d_sh is staged in shared memory, so the block writes its contiguous [PROJECT_THREADS, 48] slab with
    // coalesced stores (a thread's 48 floats lie 192 bytes from its neighbour's).
    __shared__ float s_dsh[PROJECT_THREADS * DSH_STRIDE];
    int g0 = blockIdx.x * PROJECT_THREADS, g = g0 + threadIdx.x;
    int K = (sh_degree + 1) * (sh_degree + 1);
    // A thread's row holds its SH coefficients first, then (read before being overwritten) its d_sh.
    stage_sh(sh, g0, BN, K, s_dsh);
    float* dsh = s_dsh + threadIdx.x * DSH_STRIDE;
    auto one = [&]() {
        float4 p1 = splat[3 * g + 1];
        if (p1.w == 0.f) {
            for (int k = 0; k < 3; ++k) { d_means[3 * g + k] = 0.f; d_log_scales[3 * g + k] = 0.f; }
            for (int k = 0; k < 4; ++k) d_quats[4 * g + k] = 0.f;
            for (int k = 0; k < SH_COEFFS * 3; ++k) dsh[k] = 0.f;
            d_opacity_logits[g] = 0.f;
            d_mean2d_norm[g] = 0.f;
            return;
        }
        const Camera& cam = cams[g / N];
        const float* Wv = cam.view;
        const float* m = means + 3 * g;
        Projected p;
        project_core(cam, m, log_scales + 3 * g, quats + 4 * g, width, height, p);
        const float* ds = d_splat + (size_t)g * D_SPLAT;
        float d_mx = ds[0], d_my = ds[1];
        d_mean2d_norm[g] = sqrtf((d_mx * 0.5f * width) * (d_mx * 0.5f * width) + (d_my * 0.5f * height) * (d_my * 0.5f * height));

        // Colour: SH with the view direction.
        float dir[3];
        for (int i = 0; i < 3; ++i)
            dir[i] = m[i] + (Wv[i] * Wv[3] + Wv[4 + i] * Wv[7] + Wv[8 + i] * Wv[11]);
        float dn = sqrtf(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]);
        float inv_dn = dn > 0.f ? 1.f / dn : 0.f;
        float u[3] = {dir[0] * inv_dn, dir[1] * inv_dn, dir[2] * inv_dn};
        float bs[SH_COEFFS];
        sh_basis(sh_degree, u[0], u[1], u[2], bs);
        const float* c = dsh;
        float d_rgb[3];
        for (int ch = 0; ch < 3; ++ch)
            d_rgb[ch] = sh_colour(bs, c, K, ch) + 0.5f < 0.f ? 0.f : ds[6 + ch];  // clamped at 0: no gradient
        float wk[SH_COEFFS];
        for (int k = 0; k < SH_COEFFS; ++k) {
            bool used = k < K;
            wk[k] = 0.f;
            for (int ch = 0; ch < 3; ++ch) {
                if (used) wk[k] += c[k * 3 + ch] * d_rgb[ch];
                dsh[k * 3 + ch] = used ? bs[k] * d_rgb[ch] : 0.f;  // c[k * 3 + ch] is read
            }
        }
        float d_u[3];
        sh_basis_vjp(sh_degree, u[0], u[1], u[2], wk, d_u);
        float ud = u[0] * d_u[0] + u[1] * d_u[1] + u[2] * d_u[2];
        float d_m[3];
        for (int i = 0; i < 3; ++i) d_m[i] = (d_u[i] - u[i] * ud) * inv_dn;

        // Opacity.
        float o = sigmoid(opacity_logits[g]);
        d_opacity_logits[g] = ds[5] * o * (1.f - o);

        // Conic → 2D covariance: d_Σ2 = −Mc·G·Mc with Mc the conic matrix and G its gradient (off-diagonal halved).
        float inv_det = 1.f / p.det;
        float A = p.c * inv_det, B = -p.b * inv_det, C = p.a * inv_det;
        float gA = ds[2], gB = 0.5f * ds[3], gC = ds[4];
        float t00 = A * gA + B * gB, t01 = A * gB + B * gC, t10 = B * gA + C * gB, t11 = B * gB + C * gC;
        float dS00 = -(t00 * A + t01 * B), dS01 = -(t00 * B + t01 * C);
        float dS10 = -(t10 * A + t11 * B), dS11 = -(t10 * B + t11 * C);
        // Σ2 = J·V·Jᵀ: d_V = Jᵀ·dS·J, d_J = (dS + dSᵀ)·J·V.
        float dS[4] = {dS00, dS01, dS10, dS11};
        float dSs[4] = {2.f * dS00, dS01 + dS10, dS01 + dS10, 2.f * dS11};
        float dV[9];
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) {
                float s = 0.f;
                for (int k = 0; k < 2; ++k)
                    for (int l = 0; l < 2; ++l) s += p.J[k * 3 + i] * dS[k * 2 + l] * p.J[l * 3 + j];
                dV[i * 3 + j] = s;
            }
        float dJ[6];
        for (int k = 0; k < 2; ++k)
            for (int j = 0; j < 3; ++j) {
                float s = 0.f;
                for (int l = 0; l < 2; ++l)
                    for (int i = 0; i < 3; ++i) s += dSs[k * 2 + l] * p.J[l * 3 + i] * p.V[i * 3 + j];
                dJ[k * 3 + j] = s;
            }
        // Camera-space mean: through the 2D mean and the Jacobian.
        float x = p.pc[0], y = p.pc[1], z = p.pc[2];
        float rz = 1.f / z, rz2 = rz * rz;
        float d_pc[3];
        d_pc[0] = cam.fx * rz * d_mx;
        d_pc[1] = cam.fy * rz * d_my;
        d_pc[2] = -cam.fx * x * rz2 * d_mx - cam.fy * y * rz2 * d_my;
        d_pc[2] += -cam.fx * rz2 * dJ[0] - cam.fy * rz2 * dJ[4];
        if (p.clamp_x) {
            d_pc[2] += -p.J[2] * rz * dJ[2];  // J02 = −fx·u/z with u fixed
        } else {
            d_pc[0] += -cam.fx * rz2 * dJ[2];
            d_pc[2] += 2.f * cam.fx * x * rz2 * rz * dJ[2];
        }
        if (p.clamp_y) {
            d_pc[2] += -p.J[5] * rz * dJ[5];
        } else {
            d_pc[1] += -cam.fy * rz2 * dJ[5];
            d_pc[2] += 2.f * cam.fy * y * rz2 * rz * dJ[5];
        }
        for (int i = 0; i < 3; ++i)
            d_m[i] += Wv[i] * d_pc[0] + Wv[4 + i] * d_pc[1] + Wv[8 + i] * d_pc[2];
        for (int i = 0; i < 3; ++i) d_means[3 * g + i] = d_m[i];

        // V = Wr·Σ·Wrᵀ: d_Σ = Wrᵀ·d_V·Wr; Σ = M·Mᵀ: d_M = (d_Σ + d_Σᵀ)·M; M = R·diag(s).
        float Wr[9], T[9], dSig[9], M[9], dM[9];
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) Wr[i * 3 + j] = Wv[i * 4 + j];
        mat3_mul(Wr, dV, T, true, false);
        mat3_mul(T, Wr, dSig, false, false);
        float dSigS[9];
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) dSigS[i * 3 + j] = dSig[i * 3 + j] + dSig[j * 3 + i];
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) M[i * 3 + j] = p.R[i * 3 + j] * p.s[j];
        mat3_mul(dSigS, M, dM, false, false);
        float dR[9];
        for (int j = 0; j < 3; ++j) {
            float d_s = 0.f;
            for (int i = 0; i < 3; ++i) {
                dR[i * 3 + j] = dM[i * 3 + j] * p.s[j];
                d_s += dM[i * 3 + j] * p.R[i * 3 + j];
            }
            d_log_scales[3 * g + j] = d_s * p.s[j];
        }
        float d_qn[4];
        quat_to_rot_vjp(p.qn[0], p.qn[1], p.qn[2], p.qn[3], dR, d_qn);
        float qd = p.qn[0] * d_qn[0] + p.qn[1] * d_qn[1] + p.qn[2] * d_qn[2] + p.qn[3] * d_qn[3];
        for (int k = 0; k < 4; ++k) d_quats[4 * g + k] = (d_qn[k] - p.qn[k] * qd) * p.inv_norm;
    };
    if (g < BN) one();
    __syncthreads();
    int values = min(PROJECT_THREADS, BN - g0) * SH_COEFFS * 3;
    for (int i = threadIdx.x; i < values; i += PROJECT_THREADS)
        d_sh[(size_t)g0 * SH_COEFFS * 3 + i] = s_dsh[(i / (SH_COEFFS * 3)) * DSH_STRIDE + i % (SH_COEFFS * 3)];
}
