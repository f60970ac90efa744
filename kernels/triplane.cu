// Triplane features f(μ) (SPEC §5) and their backward. Planes xy, xz, yz at two scales (64², 128²),
// TRIPLANE_C = 32 channels; one buffer planes [TRIPLANE_FLOATS]: scale-major, then plane, then [R, R, C]
// (row v, column u, channel), so one texel's 32 channels are one 128-byte line. Plane p samples axes
// (u, v) = (x, y), (x, z), (y, z).
// Sampling, per axis: c = (μ − lo)·inv_extent·(R − 1) (texel centres at integers, align_corners = True),
// clamped to [0, R − 1]; texels i0 = min(floor(c), R − 2) and i0 + 1, weight f = c − i0; dc/dμ =
// inv_extent·(R − 1) inside the box and 0 where clamped. Bilinear: w = ((1−fu)(1−fv), fu(1−fv), (1−fu)fv,
// fu·fv) on texels (u0,v0), (u1,v0), (u0,v1), (u1,v1), summed in that order. feature[s·32 + ch] =
// v_xy · v_xz · v_yz at scale s. CPU twin: src/cpu/triplane.rs (same names, same order).
//
// Mapping: one warp per Gaussian, lane = channel; TRIPLANE_THREADS = 256 threads = 8 Gaussians per block,
// grid = ceil(32·N / 256). Texel reads are 128-byte coalesced per warp. No shared memory.
// NaN policy: a NaN mean gives NaN features and gradients (the clamp keeps NaN); the texel indices stay in
// range whatever the input.
//
// triplane_fwd: means [N,3], planes [TRIPLANE_FLOATS] -> features [N,64] (overwritten).
//   Bytes: 12N + 256N + 4·TRIPLANE_FLOATS (planes from DRAM at most once; the 24 texel reads of 128 bytes
//   per Gaussian, 3 KiB, are mostly L2 hits). FLOP ≈ 32·(6·27 + 2)·N ≈ 5200·N.
// triplane_bwd: means [N,3], planes, d_features [N,64] -> d_planes [TRIPLANE_FLOATS] (accumulated with
//   atomicAdd: zero it first; the order of the float additions is not deterministic), d_means [N,3]
//   (overwritten; per-lane sums reduced by a fixed shuffle tree, deterministic).
//   Bytes: 12N + 256N + 12N + 12·TRIPLANE_FLOATS (planes read, d_planes read + written), plus 24 atomic
//   128-byte lines per Gaussian in L2. FLOP ≈ 32·(6·45 + 8)·N ≈ 8900·N.
// measured: not yet.

#define TRIPLANE_C 32
#define TRIPLANE_FEATURES 64
#define TRIPLANE_THREADS 256
#define TRIPLANE_SCALE1_OFFSET (3 * 64 * 64 * TRIPLANE_C)

struct TriplaneTap {
    int i0;
    float f;
    float dc_dmu;
};

__device__ __forceinline__ TriplaneTap triplane_tap(float mu, float lo, float inv_extent, int res) {
    float scale = (float)(res - 1);
    float c = (mu - lo) * inv_extent * scale;
    bool inside = c >= 0.0f && c <= scale;
    c = c < 0.0f ? 0.0f : (c > scale ? scale : c);  // NaN stays NaN
    int i0 = min((int)floorf(c), res - 2);            // NaN converts to 0
    TriplaneTap t;
    t.i0 = i0;
    t.f = c - (float)i0;
    t.dc_dmu = inside ? inv_extent * scale : 0.0f;
    return t;
}

// Where plane p of scale s is sampled for mean mu: the taps along u and v, the 4 texel offsets of
// channel 0 and the bilinear weights.
struct TriplaneSample {
    TriplaneTap tu, tv;
    long long idx[4];
    float w[4];
};

__device__ __forceinline__ TriplaneSample triplane_sample(int s, int p, const float mu[3], const float lo[3],
                                                          const float inv_extent[3]) {
    const int axis_u[3] = {0, 0, 1}, axis_v[3] = {1, 2, 2};
    int res = s == 0 ? 64 : 128;
    long long base = (s == 0 ? 0 : TRIPLANE_SCALE1_OFFSET) + (long long)p * res * res * TRIPLANE_C;
    int au = axis_u[p], av = axis_v[p];
    TriplaneSample q;
    q.tu = triplane_tap(mu[au], lo[au], inv_extent[au], res);
    q.tv = triplane_tap(mu[av], lo[av], inv_extent[av], res);
    int u0 = q.tu.i0, v0 = q.tv.i0;
    q.idx[0] = base + ((long long)v0 * res + u0) * TRIPLANE_C;
    q.idx[1] = base + ((long long)v0 * res + u0 + 1) * TRIPLANE_C;
    q.idx[2] = base + ((long long)(v0 + 1) * res + u0) * TRIPLANE_C;
    q.idx[3] = base + ((long long)(v0 + 1) * res + u0 + 1) * TRIPLANE_C;
    float gu = 1.0f - q.tu.f, gv = 1.0f - q.tv.f;
    q.w[0] = gu * gv;
    q.w[1] = q.tu.f * gv;
    q.w[2] = gu * q.tv.f;
    q.w[3] = q.tu.f * q.tv.f;
    return q;
}

__device__ __forceinline__ float triplane_bilerp(const float* __restrict__ planes, const TriplaneSample& q, int ch,
                                                 float t[4]) {
#pragma unroll
    for (int k = 0; k < 4; ++k) t[k] = planes[q.idx[k] + ch];
    return q.w[0] * t[0] + q.w[1] * t[1] + q.w[2] * t[2] + q.w[3] * t[3];
}

// means [N,3], planes [TRIPLANE_FLOATS] -> features [N,64]
extern "C" __global__ void __launch_bounds__(TRIPLANE_THREADS)
triplane_fwd(const float* __restrict__ means, const float* __restrict__ planes, int n,
             float lo_x, float lo_y, float lo_z, float inv_x, float inv_y, float inv_z,
             float* __restrict__ features) {
    long long t = (long long)blockIdx.x * TRIPLANE_THREADS + threadIdx.x;
    long long g = t / TRIPLANE_C;
    int ch = (int)(t % TRIPLANE_C);
    if (g >= n) return;
    const float mu[3] = {means[3 * g], means[3 * g + 1], means[3 * g + 2]};
    const float lo[3] = {lo_x, lo_y, lo_z}, inv_extent[3] = {inv_x, inv_y, inv_z};
#pragma unroll
    for (int s = 0; s < 2; ++s) {
        float prod = 1.0f, texels[4];
#pragma unroll
        for (int p = 0; p < 3; ++p)
            prod = prod * triplane_bilerp(planes, triplane_sample(s, p, mu, lo, inv_extent), ch, texels);
        features[g * TRIPLANE_FEATURES + s * TRIPLANE_C + ch] = prod;
    }
}

// means [N,3], planes [TRIPLANE_FLOATS], d_features [N,64] -> d_planes [TRIPLANE_FLOATS] (+=), d_means [N,3]
extern "C" __global__ void __launch_bounds__(TRIPLANE_THREADS)
triplane_bwd(const float* __restrict__ means, const float* __restrict__ planes, const float* __restrict__ d_features,
             int n, float lo_x, float lo_y, float lo_z, float inv_x, float inv_y, float inv_z,
             float* __restrict__ d_planes, float* __restrict__ d_means) {
    long long t = (long long)blockIdx.x * TRIPLANE_THREADS + threadIdx.x;
    long long g = t / TRIPLANE_C;
    int ch = (int)(t % TRIPLANE_C);
    if (g >= n) return;  // whole warps: 32 lanes = one Gaussian
    const float mu[3] = {means[3 * g], means[3 * g + 1], means[3 * g + 2]};
    const float lo[3] = {lo_x, lo_y, lo_z}, inv_extent[3] = {inv_x, inv_y, inv_z};
    const int axis_u[3] = {0, 0, 1}, axis_v[3] = {1, 2, 2};
    float d_mu[3] = {0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int s = 0; s < 2; ++s) {
        TriplaneSample q[3];
        float texels[3][4], v[3];
#pragma unroll
        for (int p = 0; p < 3; ++p) {
            q[p] = triplane_sample(s, p, mu, lo, inv_extent);
            v[p] = triplane_bilerp(planes, q[p], ch, texels[p]);
        }
        float d_f = d_features[g * TRIPLANE_FEATURES + s * TRIPLANE_C + ch];
        const float d_v[3] = {d_f * (v[1] * v[2]), d_f * (v[0] * v[2]), d_f * (v[0] * v[1])};
#pragma unroll
        for (int p = 0; p < 3; ++p) {
#pragma unroll
            for (int k = 0; k < 4; ++k) atomicAdd(&d_planes[q[p].idx[k] + ch], d_v[p] * q[p].w[k]);
            const float* e = texels[p];
            float fu = q[p].tu.f, fv = q[p].tv.f;
            float d_fu = d_v[p] * ((1.0f - fv) * (e[1] - e[0]) + fv * (e[3] - e[2]));
            float d_fv = d_v[p] * ((1.0f - fu) * (e[2] - e[0]) + fu * (e[3] - e[1]));
            d_mu[axis_u[p]] += d_fu * q[p].tu.dc_dmu;
            d_mu[axis_v[p]] += d_fv * q[p].tv.dc_dmu;
        }
    }
#pragma unroll
    for (int a = 0; a < 3; ++a)
        for (int o = 16; o > 0; o >>= 1) d_mu[a] += __shfl_xor_sync(0xffffffffu, d_mu[a], o);
    if (ch == 0) {
        d_means[3 * g] = d_mu[0];
        d_means[3 * g + 1] = d_mu[1];
        d_means[3 * g + 2] = d_mu[2];
    }
}
