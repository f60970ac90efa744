// Adaptive density control of the canonical Gaussians: clone / split / prune by compaction, with the Adam
// state carried along. The rules, output order and random draws are documented in the CPU twin,
// src/cpu/densify.rs (densify_classify, densify_scatter), which this follows operation by operation.
// One densification is: densify_classify → exclusive scan of counts (kernels/sort.cu) → densify_scatter.
// It runs every 100 steps; the caller reads the new count back (one host synchronisation per densification).
//
// densify_classify: one thread per Gaussian.
//   opacity [N], log_scales [N,3], grad_accum [N], visible [N], max_radius [N] -> counts [N], codes [N]
//   Bytes: 36N. Deterministic.
// densify_scatter: one thread per source Gaussian; loops over the attribute table and its outputs.
//   codes [N], offsets [N] (exclusive scan of counts), means [N,3], log_scales [N,3], quats [N,4] (sources
//   of the split samples), attrs [num_attrs] (src [N,width] -> dst [N',width], role) -> every dst
//   Bytes: ≈ (4 + 4 + Σ width·4) per input Gaussian read and Σ width·4 per output written; rows of a
//   thread are not coalesced across the warp (48-float SH rows), acceptable once per 100 steps.
// densify_accumulate: one thread per Gaussian, after each training step's backward.
//   splat [N,12] (radius_x at 7, radius_y at 11), d_mean2d_norm [N] -> grad_accum, visible, max_radius [N]
//   (read-modify-write). Bytes: 8N read of splat + 4N + 24N. Deterministic.
// NaN policy: a NaN statistic or opacity compares false, so that Gaussian is kept unchanged, never split.

#define DENSIFY_THREADS 256
#define SPLIT_CHILDREN 2
#define SPLIT_SHRINK 1.6f

// Roles of an attribute array (src/cpu/densify.rs: Role).
#define ROLE_PARAM 0
#define ROLE_MEANS 1
#define ROLE_LOG_SCALES 2
#define ROLE_OPTIMIZER_STATE 3

struct DensifyAttr {
    const float* src;
    float* dst;
    int width;
    int role;
};

extern "C" __global__ void __launch_bounds__(DENSIFY_THREADS)
densify_accumulate(const float* __restrict__ splat, const float* __restrict__ d_mean2d_norm, int n,
                   float* __restrict__ grad_accum, float* __restrict__ visible, float* __restrict__ max_radius) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float radius = fmaxf(splat[12LL * i + 7], splat[12LL * i + 11]);
    if (radius > 0.0f) {
        grad_accum[i] += d_mean2d_norm[i];
        visible[i] += 1.0f;
        max_radius[i] = fmaxf(max_radius[i], radius);
    }
}

extern "C" __global__ void __launch_bounds__(DENSIFY_THREADS)
densify_classify(const float* __restrict__ opacity, const float* __restrict__ log_scales,
                 const float* __restrict__ grad_accum, const float* __restrict__ visible,
                 const float* __restrict__ max_radius, int n, float grad_threshold, float clone_max_scale,
                 float min_opacity, int prune_large, float max_screen_radius, float max_world_scale,
                 int* __restrict__ counts, int* __restrict__ codes) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float grad = grad_accum[i] / fmaxf(visible[i], 1.0f);
    float scale = expf(fmaxf(fmaxf(log_scales[3 * i], log_scales[3 * i + 1]), log_scales[3 * i + 2]));
    bool opaque = 1.0f / (1.0f + expf(-opacity[i])) >= min_opacity;
    bool dense = grad >= grad_threshold;
    bool split = dense && scale > clone_max_scale;
    auto too_large = [&](float s, float radius) {
        return prune_large != 0 && (radius > max_screen_radius || s > max_world_scale);
    };
    int keep = !split && opaque && !too_large(scale, max_radius[i]);
    int clone = dense && !split && opaque && !too_large(scale, 0.0f);
    int children = split && opaque && !too_large(scale / SPLIT_SHRINK, 0.0f) ? SPLIT_CHILDREN : 0;
    counts[i] = keep + clone + children;
    codes[i] = keep | clone << 1 | children << 2;
}

__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// Normal draw k of stream seed: Box–Muller on values 2k and 2k+1 of src/rng.rs's generator.
__device__ __forceinline__ float counter_normal(unsigned long long seed, unsigned long long k) {
    const unsigned long long golden = 0x9e3779b97f4a7c15ULL;
    unsigned long long a = mix64(seed * golden + (2 * k + 1) * golden);
    unsigned long long b = mix64(seed * golden + (2 * k + 2) * golden);
    float u1 = 1.0f - (float)(a >> 40) * (1.0f / 16777216.0f);
    float u2 = (float)(b >> 40) * (1.0f / 16777216.0f);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

extern "C" __global__ void __launch_bounds__(DENSIFY_THREADS)
densify_scatter(const int* __restrict__ codes, const int* __restrict__ offsets, int n,
                const float* __restrict__ means, const float* __restrict__ log_scales,
                const float* __restrict__ quats, long long seed, const DensifyAttr* __restrict__ attrs,
                int num_attrs) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int code = codes[i];
    int keep = code & 1, clone = (code >> 1) & 1, children = code >> 2;
    float child_mean[SPLIT_CHILDREN][3];
    if (children > 0) {
        float w = quats[4 * i], x = quats[4 * i + 1], y = quats[4 * i + 2], z = quats[4 * i + 3];
        float norm = sqrtf(w * w + x * x + y * y + z * z);
        float r[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
        if (norm != 0.0f) {
            w /= norm; x /= norm; y /= norm; z /= norm;
            r[0] = 1.0f - 2.0f * (y * y + z * z); r[1] = 2.0f * (x * y - w * z); r[2] = 2.0f * (x * z + w * y);
            r[3] = 2.0f * (x * y + w * z); r[4] = 1.0f - 2.0f * (x * x + z * z); r[5] = 2.0f * (y * z - w * x);
            r[6] = 2.0f * (x * z - w * y); r[7] = 2.0f * (y * z + w * x); r[8] = 1.0f - 2.0f * (x * x + y * y);
        }
        for (int c = 0; c < SPLIT_CHILDREN; ++c) {
            float local[3];
            for (int a = 0; a < 3; ++a)
                local[a] = expf(log_scales[3 * i + a]) * counter_normal((unsigned long long)seed, 6ULL * i + 3 * c + a);
            for (int row = 0; row < 3; ++row)
                child_mean[c][row] = means[3 * i + row] + r[3 * row] * local[0] + r[3 * row + 1] * local[1] + r[3 * row + 2] * local[2];
        }
    }
    int total = keep + clone + children;
    for (int k = 0; k < total; ++k) {
        // Output k of this Gaussian: the original, then the clone, then the children.
        bool fresh = !(keep && k == 0);
        int child = k - keep - clone;  // >= 0 for a split child
        long long out = offsets[i] + k;
        for (int a = 0; a < num_attrs; ++a) {
            const DensifyAttr at = attrs[a];
            const float* src = at.src + (long long)i * at.width;
            float* dst = at.dst + out * at.width;
            for (int j = 0; j < at.width; ++j) {
                float v = src[j];
                if (at.role == ROLE_OPTIMIZER_STATE && fresh) v = 0.0f;
                else if (at.role == ROLE_MEANS && child >= 0) v = child_mean[child][j];
                else if (at.role == ROLE_LOG_SCALES && child >= 0) v = src[j] - logf(SPLIT_SHRINK);
                dst[j] = v;
            }
        }
    }
}
