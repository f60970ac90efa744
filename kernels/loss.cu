// Photometric loss of SPEC §7 and its gradient: L = 0.8·L1 + 0.2·(1 − SSIM) + 0.4·L1_lip over B frames
// [B,H,W,3]. SSIM: 11×11 Gaussian window (σ 1.5, separable), per channel, C1 = 0.01², C2 = 0.03², 'same'-size
// maps with zero padding, mean over all values (3DGS's ssim()/fused-ssim convention). L1_lip: per frame the
// mean |render − gt| over the lip box [x0,x1) × [y0,y1) (clamped to the image, an empty box gives 0),
// averaged over frames. d|x|/dx at 0 is 0. CPU twin: src/cpu/loss.rs (same names, same formulas and order;
// the derivation of the SSIM gradient is written there).
//
// Mapping (both kernels): one block per 16×16 pixel tile of one frame, grid (ceil(W/16), ceil(H/16), B),
// LOSS_THREADS = 256 threads, thread (ty, tx) owns pixel (x0 + tx, y0 + ty), all 3 channels. The tile and a
// 5-pixel halo (26×26 pixels × 3 channels) are staged in shared memory with zeros outside the image; per
// channel, a horizontal pass (26 rows × 16 columns, taps 0..10 in order) then a vertical pass.
//
// loss_fwd: render, gt [B,H,W,3], lip [B,4] int (x0,y0,x1,y1) -> d_stats [3,B,H,W,3] (dL/dμ_render,
//   dL/dσ²_render, dL/dσ_render,gt per pixel, overwritten), partials [3, blocks]: per block Σ|r−g|·inv_n,
//   ΣSSIM·inv_n and Σ_lip|r−g|/(3·B·area), summed afterwards by elementwise.cu's deterministic sum_partial /
//   sum_final into parts[0..3], and loss_combine writes parts[3] = the loss.
//   Shared: render and gt halo tiles 2·26·78 floats (16 224 B) + 5 horizontal sums 5·26·16 (8 320 B).
//   Bytes: 8·n + 12·n (n = B·H·W·3 values; halo re-reads hit L1/L2) + 12·blocks. FLOP ≈ 3·(26·16·11·10 +
//   256·(11·10 + 40))/256 ≈ 310 per value.
// loss_bwd: render, gt, lip, d_stats -> d_render [B,H,W,3] (overwritten).
//   Shared: d_stats halo tiles 3·26·78 floats (24 336 B) + 3 horizontal sums 3·26·16 (4 992 B).
//   Bytes: 8·n + 12·n + 4·n. FLOP ≈ 200 per value.
// No atomics; deterministic. NaN policy: a NaN in render or gt spreads to the loss and to the gradients of
// the pixels whose windows include it.
// measured: H200, commit b4f6151: B = 8, 512²: forward 180 µs (699 GB/s), forward + backward 339 µs.

#define LOSS_TILE 16
#define LOSS_THREADS 256
#define SSIM_HALF 5
#define SSIM_SPAN (LOSS_TILE + 2 * SSIM_HALF)
#define SSIM_ROW (SSIM_SPAN * 3)
#define SSIM_C1 (0.01f * 0.01f)
#define SSIM_C2 (0.03f * 0.03f)
#define W_L1 0.8f
#define W_SSIM 0.2f
#define W_LIP 0.4f

// exp(−(i−5)²/(2·1.5²)) / Σ, i = 0..10 (SSIM_TAPS in src/cpu/loss.rs).
__constant__ float SSIM_TAPS[11] = {
    0.00102838008447911f, 0.007598758135239185f, 0.03600077212843083f, 0.10936068950970002f,
    0.2130055377112537f,  0.26601172486179436f,  0.2130055377112537f,  0.10936068950970002f,
    0.03600077212843083f, 0.007598758135239185f, 0.00102838008447911f};

// The lip box of frame b clamped to the image: x0, y0, x1, y1; returns the area in pixels.
__device__ __forceinline__ int loss_lip_box(const int* __restrict__ lip, int b, int h, int w, int box[4]) {
    box[0] = min(max(lip[4 * b], 0), w);
    box[1] = min(max(lip[4 * b + 1], 0), h);
    box[2] = min(max(lip[4 * b + 2], 0), w);
    box[3] = min(max(lip[4 * b + 3], 0), h);
    return max(box[2] - box[0], 0) * max(box[3] - box[1], 0);
}

// Stages a 26×26×3 halo tile of img (frame b) at tile origin (x0, y0) into s, zeros outside the image.
__device__ __forceinline__ void loss_stage(const float* __restrict__ img, int b, int h, int w, int x0, int y0,
                                           float (*s)[SSIM_ROW]) {
    for (int e = threadIdx.x; e < SSIM_SPAN * SSIM_ROW; e += LOSS_THREADS) {
        int r = e / SSIM_ROW, q = e % SSIM_ROW;
        int gy = y0 - SSIM_HALF + r, gq = (x0 - SSIM_HALF) * 3 + q;
        bool in = gy >= 0 && gy < h && gq >= 0 && gq < 3 * w;
        s[r][q] = in ? img[((long long)b * h + gy) * w * 3 + gq] : 0.0f;
    }
}

__device__ __forceinline__ float3 loss_block_sum3(float3 v) {
    __shared__ float3 warp_sums[LOSS_THREADS / 32];
    for (int o = 16; o > 0; o >>= 1) {
        v.x += __shfl_xor_sync(0xffffffffu, v.x, o);
        v.y += __shfl_xor_sync(0xffffffffu, v.y, o);
        v.z += __shfl_xor_sync(0xffffffffu, v.z, o);
    }
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    v = lane < LOSS_THREADS / 32 ? warp_sums[lane] : make_float3(0.0f, 0.0f, 0.0f);
    if (warp == 0) {
        for (int o = 16; o > 0; o >>= 1) {
            v.x += __shfl_xor_sync(0xffffffffu, v.x, o);
            v.y += __shfl_xor_sync(0xffffffffu, v.y, o);
            v.z += __shfl_xor_sync(0xffffffffu, v.z, o);
        }
    }
    return v;  // valid in thread 0
}

// render, gt [B,H,W,3], lip [B,4] -> d_stats [3,B,H,W,3], partials [3, blocks]
extern "C" __global__ void __launch_bounds__(LOSS_THREADS)
loss_fwd(const float* __restrict__ render, const float* __restrict__ gt, const int* __restrict__ lip,
         int nb, int h, int w, float inv_n, float k_ssim, float* __restrict__ d_stats, float* __restrict__ partials) {
    __shared__ float sx[SSIM_SPAN][SSIM_ROW], sy[SSIM_SPAN][SSIM_ROW];
    __shared__ float hs[5][SSIM_SPAN][LOSS_TILE];
    int tx = threadIdx.x % LOSS_TILE, ty = threadIdx.x / LOSS_TILE;
    int x0 = blockIdx.x * LOSS_TILE, y0 = blockIdx.y * LOSS_TILE, b = blockIdx.z;
    loss_stage(render, b, h, w, x0, y0, sx);
    loss_stage(gt, b, h, w, x0, y0, sy);
    __syncthreads();
    int px = x0 + tx, py = y0 + ty;
    bool valid = px < w && py < h;
    long long n = (long long)nb * h * w * 3;
    long long pix = (((long long)b * h + py) * w + px) * 3;
    float ssim_sum = 0.0f;
    for (int ch = 0; ch < 3; ++ch) {
        for (int e = threadIdx.x; e < SSIM_SPAN * LOSS_TILE; e += LOSS_THREADS) {
            int r = e / LOSS_TILE, c = e % LOSS_TILE;
            float a[5] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
            for (int j = 0; j < 11; ++j) {
                float xv = sx[r][(c + j) * 3 + ch], yv = sy[r][(c + j) * 3 + ch], g = SSIM_TAPS[j];
                a[0] += g * xv;
                a[1] += g * yv;
                a[2] += g * (xv * xv);
                a[3] += g * (yv * yv);
                a[4] += g * (xv * yv);
            }
#pragma unroll
            for (int q = 0; q < 5; ++q) hs[q][r][c] = a[q];
        }
        __syncthreads();
        if (valid) {
            float m[5] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
            for (int j = 0; j < 11; ++j)
#pragma unroll
                for (int q = 0; q < 5; ++q) m[q] += SSIM_TAPS[j] * hs[q][ty + j][tx];
            float m1 = m[0], m2 = m[1];
            float s11 = m[2] - m1 * m1, s22 = m[3] - m2 * m2, s12 = m[4] - m1 * m2;
            float num_mu = 2.0f * m1 * m2 + SSIM_C1, num_s = 2.0f * s12 + SSIM_C2;
            float den_mu = m1 * m1 + m2 * m2 + SSIM_C1, den_s = s11 + s22 + SSIM_C2;
            float den = den_mu * den_s;
            float s = num_mu * num_s / den;
            long long i = pix + ch;
            d_stats[i] = k_ssim * (2.0f * (m2 * (num_s - num_mu) + m1 * s * (den_mu - den_s)) / den);
            d_stats[n + i] = k_ssim * (-s / den_s);
            d_stats[2 * n + i] = k_ssim * (2.0f * num_mu / den);
            ssim_sum += s;
        }
        __syncthreads();
    }
    int box[4];
    int area = loss_lip_box(lip, b, h, w, box);
    float l1 = 0.0f, lip_l1 = 0.0f;
    if (valid) {
        bool in_lip = px >= box[0] && px < box[2] && py >= box[1] && py < box[3];
#pragma unroll
        for (int ch = 0; ch < 3; ++ch) {
            int q = (tx + SSIM_HALF) * 3 + ch;
            float d = fabsf(sx[ty + SSIM_HALF][q] - sy[ty + SSIM_HALF][q]);
            l1 += d;
            if (in_lip) lip_l1 += d;
        }
    }
    float3 sums = loss_block_sum3(make_float3(l1, ssim_sum, lip_l1));
    if (threadIdx.x == 0) {
        int blocks = gridDim.x * gridDim.y * gridDim.z;
        int bid = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
        float lip_weight = area > 0 ? 1.0f / (float)(3 * nb * area) : 0.0f;
        partials[bid] = sums.x * inv_n;
        partials[blocks + bid] = sums.y * inv_n;
        partials[2 * blocks + bid] = sums.z * lip_weight;
    }
}

// render, gt [B,H,W,3], lip [B,4], d_stats [3,B,H,W,3] -> d_render [B,H,W,3]
extern "C" __global__ void __launch_bounds__(LOSS_THREADS)
loss_bwd(const float* __restrict__ render, const float* __restrict__ gt, const int* __restrict__ lip,
         const float* __restrict__ d_stats, int nb, int h, int w, float w_l1, float* __restrict__ d_render) {
    __shared__ float sd[3][SSIM_SPAN][SSIM_ROW];
    __shared__ float hs[3][SSIM_SPAN][LOSS_TILE];
    int tx = threadIdx.x % LOSS_TILE, ty = threadIdx.x / LOSS_TILE;
    int x0 = blockIdx.x * LOSS_TILE, y0 = blockIdx.y * LOSS_TILE, b = blockIdx.z;
    long long n = (long long)nb * h * w * 3;
#pragma unroll
    for (int q = 0; q < 3; ++q) loss_stage(d_stats + q * n, b, h, w, x0, y0, sd[q]);
    __syncthreads();
    int px = x0 + tx, py = y0 + ty;
    bool valid = px < w && py < h;
    long long pix = (((long long)b * h + py) * w + px) * 3;
    int box[4];
    int area = loss_lip_box(lip, b, h, w, box);
    float w_lip = W_LIP * (area > 0 ? 1.0f / (float)(3 * nb * area) : 0.0f);
    bool in_lip = px >= box[0] && px < box[2] && py >= box[1] && py < box[3];
    for (int ch = 0; ch < 3; ++ch) {
        for (int e = threadIdx.x; e < SSIM_SPAN * LOSS_TILE; e += LOSS_THREADS) {
            int r = e / LOSS_TILE, c = e % LOSS_TILE;
            float a[3] = {0.0f, 0.0f, 0.0f};
#pragma unroll
            for (int j = 0; j < 11; ++j)
#pragma unroll
                for (int q = 0; q < 3; ++q) a[q] += SSIM_TAPS[j] * sd[q][r][(c + j) * 3 + ch];
#pragma unroll
            for (int q = 0; q < 3; ++q) hs[q][r][c] = a[q];
        }
        __syncthreads();
        if (valid) {
            float g[3] = {0.0f, 0.0f, 0.0f};
#pragma unroll
            for (int j = 0; j < 11; ++j)
#pragma unroll
                for (int q = 0; q < 3; ++q) g[q] += SSIM_TAPS[j] * hs[q][ty + j][tx];
            long long i = pix + ch;
            float x = render[i], y = gt[i];
            float diff = x - y;
            float sign = diff > 0.0f ? 1.0f : (diff < 0.0f ? -1.0f : diff * 0.0f);
            float d = g[0] + 2.0f * x * g[1] + y * g[2] + w_l1 * sign;
            if (in_lip) d += w_lip * sign;
            d_render[i] = d;
        }
        __syncthreads();
    }
}

// parts [4]: parts[3] = 0.8·parts[0] + 0.2·(1 − parts[1]) + 0.4·parts[2]. One thread.
extern "C" __global__ void loss_combine(float* __restrict__ parts) {
    parts[3] = W_L1 * parts[0] + W_SSIM * (1.0f - parts[1]) + W_LIP * parts[2];
}
