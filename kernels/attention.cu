// The deformation network's per-(Gaussian, frame) chain, fused (SPEC §5; CPU twin src/cpu/attention.rs):
//   q = Wq f + bq; per head h (32 columns): p = softmax_t(q_h·k_t,h / √32) over the frame's 4 tokens,
//   o_h = Σ_t p_t v_t,h; att = Wo o + bo; h1 = LN1(f + drop(att)); z = ReLU(W0 h1 + b0);
//   h2 = LN2(h1 + drop(W1 z + b1)); g = ReLU(h2); per F_d head: out = V1 ReLU(V0 g + c0) + c1;
//   the deltas applied to the canonical Gaussian: μ + Δ, exp(log s + Δ), normalise(q + Δ), sigmoid(o + Δ),
//   SH + Δ.
// Precision: deform_fwd / deform_bwd are fp32 throughout (fmaf, fp32 accumulation; within 1e-5 of the twin).
// deform_fwd_tc / deform_bwd_tc compute the dense layers' x·W products (forward, and the backward's d_x)
// with bf16 tensor-core mma (inputs rounded to bf16, fp32 accumulation; within 1e-2); their weight
// gradients, attention, LayerNorm, dropout and deltas stay fp32. LayerNorm eps 1e-12. Dropout: element idx kept iff
// mix(key + idx) >> 40 ≥ threshold (SplitMix64's mix, as src/rng.rs), scaled by `scale`; idx = r·64 + j
// after the out-projection and (P + r)·64 + j after the FFN, r = b·N + n.
//
// Shapes: P = B·N pairs, pair r = b·N + n (frame-major). params: the flat parameter buffer of
// src/model/deform.rs (the chain's tensors at the P_* offsets below). wt: the chain's weights transposed by
// deform_transpose ([in][out], WT_* offsets) so that a warp reading one input row of a weight reads 32
// consecutive floats. f [N,64]; kv [2,B,4,64] (K rows then V rows, from kernels/audio.cu:tokens_fwd);
// canonical means [N,3], log_scales [N,3], rotations [N,4] (w,x,y,z), opacities [N], sh [N,48]; outputs
// (and their gradients) frame-major [B,N,…] with the same widths (scales activated, rotations unit,
// opacities sigmoid).
//
// Tile mapping: a block of DEF_THREADS = 256 threads owns a tile of DEF_TP = 32 consecutive pairs; warp w
// owns pairs 4w … 4w+3 (DEF_RP = 4) for the elementwise steps (attention, LayerNorm, deltas: one warp per
// pair, lane l owns columns l and l + 32, shuffle reductions). A dense layer of the tile is tile_layer:
// fp32 (tile_mm): for each 4 inputs k, a lane reads its output columns of rows k of the transposed weight
// (coalesced, L1/L2 resident: the chain's weights are 330 KB) and one float4 of x per pair from shared
// memory (broadcast) for 16 × NC FMA; bf16: warp w owns 16 × 8 output tiles w, w + 8, … (m16n8k16 mma,
// fragments loaded from shared memory and converted on the fly; bf16 weights column-major in wb / wtb).
// The backward recomputes the forward in shared memory instead of reading stored activations.
// Known: on tests/deform.rs's random problems the bf16 path's d_kv is 4.2–4.4e-2 from the fp32 twin (bound
// 1e-2). It is the problem's conditioning, not the kernel: in the fp32 twin alone, rounding only the
// features to bf16 moves d_kv by 2.6e-2 / 4.7e-2 (two cases), only W_o by 1.9e-2 / 3.2e-2, everything by
// 5.0e-2 / 6.1e-2; computing the backward's d_x or the query projection in 3xBF16 left it at 4.4 / 4.2e-2.
// Known inefficiencies: the mma A fragments are read from rows 64 floats apart (8-way bank conflicts);
// the weight gradients (a third of the FLOP) are SIMT fp32 on both paths.
//
// deform_bwd's weight gradients: each block (persistent, looping over tiles) adds its tiles' Σ_pairs
// d_pre ⊗ x (tile_outer: 4 × 4 register blocks per thread) into its own slice of `partials`
// [G, part_stride] (plain float4 read-modify-write, L2-resident, no atomics);
// deform_reduce sums the G slices in order into d_params (chain section) and d_kv. d_f [N,64] and
// d_canonical are accumulated with atomicAdd (B adds per element: not bitwise deterministic).
// NaN policy: NaNs propagate; a zero-length quaternion gives NaN rotations (the CPU twin does the same).
// measured: H200, commit b4f6151, N = 50 000, B = 8 (profiler): deform_fwd_tc 5.76 ms, deform_bwd_tc 17.9 ms (9.9 TFLOP/s):
// far from the 1.5 ms step target; fp32 step 35.9 ms, bf16 step 24.3 ms.

#include <stdint.h>

#define D 64
#define FFN 128
#define HID 128
#define DELTAS 59
#define DEF_TP 32
#define DEF_RP 4
#define DEF_THREADS 256
#define TRANSPOSE_THREADS 256
#define REDUCE_THREADS 256

// Offsets in the flat parameter buffer (src/model/deform.rs: deform_tensors!, chain section).
constexpr int P_WQ = 0;
constexpr int P_BQ = P_WQ + D * D;
constexpr int P_WK = P_BQ + D;
constexpr int P_BK = P_WK + D * D;
constexpr int P_WV = P_BK + D;
constexpr int P_BV = P_WV + D * D;
constexpr int P_WO = P_BV + D;
constexpr int P_BO = P_WO + D * D;
constexpr int P_LN1G = P_BO + D;
constexpr int P_LN1B = P_LN1G + D;
constexpr int P_FFN0W = P_LN1B + D;
constexpr int P_FFN0B = P_FFN0W + FFN * D;
constexpr int P_FFN1W = P_FFN0B + FFN;
constexpr int P_FFN1B = P_FFN1W + D * FFN;
constexpr int P_LN2G = P_FFN1B + D;
constexpr int P_LN2B = P_LN2G + D;
constexpr int P_HEAD0W = P_LN2B + D;
constexpr int P_HEAD0B = P_HEAD0W + 5 * HID * D;
constexpr int P_HEAD1W = P_HEAD0B + 5 * HID;
constexpr int P_HEAD1B = P_HEAD1W + DELTAS * HID;
constexpr int CHAIN_FLOATS = P_HEAD1B + DELTAS;
static_assert(CHAIN_FLOATS == 82683, "chain layout changed: update src/model/deform.rs and its test");

// Transposed weights in `wt`: [in][out] each.
constexpr int WT_Q = 0;
constexpr int WT_O = WT_Q + D * D;
constexpr int WT_FFN0 = WT_O + D * D;
constexpr int WT_FFN1 = WT_FFN0 + D * FFN;
constexpr int WT_HEAD0 = WT_FFN1 + FFN * D;  // head h at + h·D·HID: [64][128]
constexpr int WT_HEAD1 = WT_HEAD0 + 5 * D * HID;  // head h at + HEAD_OFF[h]·HID: [128][out_h]
constexpr int WT_FLOATS = WT_HEAD1 + HID * DELTAS;
static_assert(WT_FLOATS == 73088, "transposed layout changed: update src/cuda/attention.rs");

__constant__ int HEAD_OUT[5] = {3, 3, 4, 1, 48};
__constant__ int HEAD_OFF[5] = {0, 3, 6, 10, 11};

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

__device__ __forceinline__ float drop_factor(uint64_t key, uint32_t threshold, float scale, uint64_t idx) {
    if (threshold == 0) return 1.0f;
    return (uint32_t)(mix64(key + idx) >> 40) >= threshold ? scale : 0.0f;
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// acc[r][c] = Σ_k x[p_r][k] · m[k][lane + 32c] for the warp's pairs p_r = 4·warp + r (m [K][NOUT] global).
// k goes 4 at a time (one float4 broadcast of x per pair, 4·NC coalesced weight loads) in increasing order.
// x rows must be 16-byte aligned (ldx a multiple of 4).
template <int NOUT>
__device__ __forceinline__ void tile_mm(const float* __restrict__ m, int K, const float* x, int ldx,
                                        float (&acc)[DEF_RP][(NOUT + 31) / 32]) {
    constexpr int NC = (NOUT + 31) / 32;
    const int lane = threadIdx.x & 31, p0 = (threadIdx.x >> 5) * DEF_RP;
#pragma unroll
    for (int r = 0; r < DEF_RP; ++r)
#pragma unroll
        for (int c = 0; c < NC; ++c) acc[r][c] = 0.0f;
    int k = 0;
    for (; k + 4 <= K; k += 4) {
        float mv[4][NC];
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
#pragma unroll
            for (int c = 0; c < NC; ++c) {
                int col = lane + 32 * c;
                mv[kk][c] = col < NOUT ? __ldg(m + (k + kk) * NOUT + col) : 0.0f;
            }
#pragma unroll
        for (int r = 0; r < DEF_RP; ++r) {
            float4 xv = *reinterpret_cast<const float4*>(x + (p0 + r) * ldx + k);
#pragma unroll
            for (int c = 0; c < NC; ++c) {
                acc[r][c] = fmaf(xv.x, mv[0][c], acc[r][c]);
                acc[r][c] = fmaf(xv.y, mv[1][c], acc[r][c]);
                acc[r][c] = fmaf(xv.z, mv[2][c], acc[r][c]);
                acc[r][c] = fmaf(xv.w, mv[3][c], acc[r][c]);
            }
        }
    }
    for (; k < K; ++k) {
        float mv[NC];
#pragma unroll
        for (int c = 0; c < NC; ++c) {
            int col = lane + 32 * c;
            mv[c] = col < NOUT ? __ldg(m + k * NOUT + col) : 0.0f;
        }
#pragma unroll
        for (int r = 0; r < DEF_RP; ++r) {
            float xv = x[(p0 + r) * ldx + k];
#pragma unroll
            for (int c = 0; c < NC; ++c) acc[r][c] = fmaf(xv, mv[c], acc[r][c]);
        }
    }
}

// Two bf16 in one register, the first (smaller k) in the low half; round to nearest even.
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    uint32_t r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// c += a·b for one 16×8 tile, k = 16: bf16 inputs, fp32 accumulation (PTX ISA fragment layouts).
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// x[row][k], x[row][k+1] (0 past K) as bf16x2.
__device__ __forceinline__ uint32_t frag_x(const float* x, int ldx, int row, int k, int K) {
    return pack_bf16(k < K ? x[row * ldx + k] : 0.0f, k + 1 < K ? x[row * ldx + k + 1] : 0.0f);
}

// mb[n][k], mb[n][k+1] (0 past K or NOUT) as bf16x2.
__device__ __forceinline__ uint32_t frag_w(const uint16_t* __restrict__ mb, int K, int n, int NOUT, int k) {
    if (n >= NOUT) return 0u;
    uint32_t lo = k < K ? mb[n * K + k] : 0u, hi = k + 1 < K ? mb[n * K + k + 1] : 0u;
    return lo | (hi << 16);
}

// y[p][col] = act(v + bias[col]) (relu or none; bias may be null), or y[p][col] += v when `accumulate`.
__device__ __forceinline__ void tile_put(float* y, int ldy, int p, int col, float v, const float* __restrict__ bias,
                                         bool relu, bool accumulate) {
    if (accumulate) {
        y[p * ldy + col] += v;
        return;
    }
    if (bias) v += __ldg(bias + col);
    if (relu && v < 0.0f) v = 0.0f;
    y[p * ldy + col] = v;
}

// One dense layer of the tile: y[p][n] (+)= Σ_k x[p][k]·M[k][n] (+ bias, ReLU), for the 32 pairs. M comes
// twice: fp32 row-major m [K][NOUT] for the SIMT path (tile_mm; warp w writes its own 4 pairs' rows) and
// bf16 column-major mb [NOUT][K] for the tensor-core path (TC: warp w owns the 16×8 output tiles
// w, w + 8, … of the 32 × NOUT output, m16n8k16 bf16 mma with fp32 accumulation, inputs rounded to bf16;
// any warp writes any row). Callers __syncthreads between layers.
template <bool TC, int NOUT>
__device__ __forceinline__ void tile_layer(const float* __restrict__ m, const uint16_t* __restrict__ mb, int K,
                                           const float* __restrict__ bias, bool relu, bool accumulate, const float* x,
                                           int ldx, float* y, int ldy) {
    if (TC) {
        constexpr int NT = (NOUT + 7) / 8;
        const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
        for (int tile = threadIdx.x >> 5; tile < 2 * NT; tile += DEF_THREADS / 32) {
            const int m0 = (tile & 1) * 16, n0 = (tile >> 1) * 8;
            float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int k0 = 0; k0 < K; k0 += 16) {
                const uint32_t a[4] = {frag_x(x, ldx, m0 + g, k0 + 2 * t, K), frag_x(x, ldx, m0 + g + 8, k0 + 2 * t, K),
                                       frag_x(x, ldx, m0 + g, k0 + 8 + 2 * t, K),
                                       frag_x(x, ldx, m0 + g + 8, k0 + 8 + 2 * t, K)};
                const uint32_t b[2] = {frag_w(mb, K, n0 + g, NOUT, k0 + 2 * t), frag_w(mb, K, n0 + g, NOUT, k0 + 8 + 2 * t)};
                mma_bf16(c, a, b);
            }
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const int row = m0 + g + (q >= 2 ? 8 : 0), col = n0 + 2 * t + (q & 1);
                if (col < NOUT) tile_put(y, ldy, row, col, c[q], bias, relu, accumulate);
            }
        }
    } else {
        constexpr int NC = (NOUT + 31) / 32;
        float acc[DEF_RP][NC];
        tile_mm<NOUT>(m, K, x, ldx, acc);
        const int lane = threadIdx.x & 31, p0 = (threadIdx.x >> 5) * DEF_RP;
#pragma unroll
        for (int r = 0; r < DEF_RP; ++r)
#pragma unroll
            for (int c = 0; c < NC; ++c)
                if (lane + 32 * c < NOUT) tile_put(y, ldy, p0 + r, lane + 32 * c, acc[r][c], bias, relu, accumulate);
    }
}

// part_w[o][i] += Σ_p dy[p][o]·x[p][i]; part_b[o] += Σ_p dy[p][o] (part_b may be null). Block-wide: a
// thread owns 4 × 4 blocks of part_w (4 outputs × 4 inputs: one float4 of dy and of x per pair, 16 FMA),
// read-modify-written as float4. IN, ldd, ldx, the offsets of dy, x and part_w: multiples of 4; dy rows
// must have 4·⌈OUT/4⌉ readable columns (rows past OUT are computed and dropped).
__device__ __forceinline__ void tile_outer(float* part_w, float* part_b, const float* dy, int ldd, int OUT,
                                           const float* x, int ldx, int IN) {
    const int ib_n = IN / 4, ob_n = (OUT + 3) / 4;
    for (int bi = threadIdx.x; bi < ob_n * ib_n; bi += DEF_THREADS) {
        const int o0 = (bi / ib_n) * 4, i0 = (bi % ib_n) * 4;
        float acc[4][4];
#pragma unroll
        for (int a = 0; a < 4; ++a)
#pragma unroll
            for (int c = 0; c < 4; ++c) acc[a][c] = 0.0f;
        for (int p = 0; p < DEF_TP; ++p) {
            float4 d4 = *reinterpret_cast<const float4*>(dy + p * ldd + o0);
            float4 x4 = *reinterpret_cast<const float4*>(x + p * ldx + i0);
            const float dv[4] = {d4.x, d4.y, d4.z, d4.w}, xv[4] = {x4.x, x4.y, x4.z, x4.w};
#pragma unroll
            for (int a = 0; a < 4; ++a)
#pragma unroll
                for (int c = 0; c < 4; ++c) acc[a][c] = fmaf(dv[a], xv[c], acc[a][c]);
        }
#pragma unroll
        for (int a = 0; a < 4; ++a) {
            if (o0 + a >= OUT) break;
            float4* w = reinterpret_cast<float4*>(part_w + (o0 + a) * IN + i0);
            float4 t = *w;
            t.x += acc[a][0];
            t.y += acc[a][1];
            t.z += acc[a][2];
            t.w += acc[a][3];
            *w = t;
        }
    }
    if (part_b)
        for (int o = threadIdx.x; o < OUT; o += DEF_THREADS) {
            float s = 0.0f;
            for (int p = 0; p < DEF_TP; ++p) s += dy[p * ldd + o];
            part_b[o] += s;
        }
}

// LayerNorm of one 64-wide row by one warp (lane owns j = lane, lane + 32): returns y in y0/y1, x̂ in
// xh0/xh1, and 1/σ.
__device__ __forceinline__ float ln_row(float x0, float x1, const float* __restrict__ g, const float* __restrict__ b,
                                        float& xh0, float& xh1, float& y0, float& y1) {
    const int lane = threadIdx.x & 31;
    float mean = warp_sum(x0 + x1) * (1.0f / D);
    float c0 = x0 - mean, c1 = x1 - mean;
    float var = warp_sum(c0 * c0 + c1 * c1) * (1.0f / D);
    float rstd = 1.0f / sqrtf(var + 1e-12f);
    xh0 = c0 * rstd;
    xh1 = c1 * rstd;
    y0 = __ldg(g + lane) * xh0 + __ldg(b + lane);
    y1 = __ldg(g + lane + 32) * xh1 + __ldg(b + lane + 32);
    return rstd;
}

// LayerNorm's backward for one row by one warp: d_x = rstd·(γ⊙d_y − mean(γ⊙d_y) − x̂·mean(γ⊙d_y⊙x̂)).
__device__ __forceinline__ void ln_row_vjp(float xh0, float xh1, float rstd, const float* __restrict__ g, float dy0,
                                           float dy1, float& dx0, float& dx1) {
    const int lane = threadIdx.x & 31;
    float d0 = __ldg(g + lane) * dy0, d1 = __ldg(g + lane + 32) * dy1;
    float m1 = warp_sum(d0 + d1) * (1.0f / D);
    float m2 = warp_sum(d0 * xh0 + d1 * xh1) * (1.0f / D);
    dx0 = rstd * (d0 - m1 - xh0 * m2);
    dx1 = rstd * (d1 - m1 - xh1 * m2);
}

struct PairRef {
    int b, n;
    bool valid;
};

// Pair slot p of tile `tile`: pairs past P repeat the last pair (finite inputs) and are marked invalid.
__device__ __forceinline__ PairRef pair_of(long long tile, int p, int N, long long P) {
    long long r = tile * DEF_TP + p;
    bool valid = r < P;
    if (!valid) r = P - 1;
    PairRef q;
    q.b = (int)(r / N);
    q.n = (int)(r - (long long)q.b * N);
    q.valid = valid;
    return q;
}

struct DropArgs {
    uint64_t key;
    uint32_t threshold;
    float scale;
};

// Shared memory of one tile (floats), in this order; the forward uses the first FWD_SMEM_FLOATS.
#define S_F 0                           // f [TP][64]
#define S_Q (S_F + DEF_TP * D)          // q [TP][64]
#define S_O (S_Q + DEF_TP * D)          // attention output o [TP][64]
#define S_A (S_O + DEF_TP * D)          // scratch [TP][64]: att, FFN out, d_o
#define S_H1 (S_A + DEF_TP * D)         // h1 [TP][64]
#define S_Z (S_H1 + DEF_TP * D)         // FFN hidden [TP][128]
#define S_G (S_Z + DEF_TP * FFN)        // g = ReLU(h2) [TP][64]
#define S_HID (S_G + DEF_TP * D)        // head hidden [TP][128]
#define S_OUT (S_HID + DEF_TP * HID)    // head output [TP][48]
#define FWD_SMEM_FLOATS (S_OUT + DEF_TP * 48)
#define S_XH1 FWD_SMEM_FLOATS           // x̂1 [TP][64]
#define S_XH2 (S_XH1 + DEF_TP * D)      // x̂2 [TP][64]
#define S_RSTD (S_XH2 + DEF_TP * D)     // 1/σ of LN1, LN2 [TP][2]
#define S_PROB (S_RSTD + DEF_TP * 2)    // attention weights [TP][2][4]
#define S_DOUT (S_PROB + DEF_TP * 8)    // d head output [TP][48]
#define S_DHID (S_DOUT + DEF_TP * 48)   // d head hidden, d FFN hidden [TP][128]
#define S_DG (S_DHID + DEF_TP * HID)    // d g, then d q [TP][64]
#define S_D1 (S_DG + DEF_TP * D)        // d r2, d h1, d att [TP][64]
#define S_D2 (S_D1 + DEF_TP * D)        // d FFN out, d r1 + d f [TP][64]
#define S_KV (S_D2 + DEF_TP * D)        // d K, d V of two frames [2][2][4][64]
#define BWD_SMEM_FLOATS (S_KV + 2 * 2 * 4 * D)
static_assert(FWD_SMEM_FLOATS * 4 == 88064 && BWD_SMEM_FLOATS * 4 == 156928,
              "shared memory changed: update DEF_FWD_SMEM / DEF_BWD_SMEM in src/cuda/attention.rs");

// The forward of one tile up to g (and the attention weights, x̂ and 1/σ when `keep`), in shared memory.
template <bool TC>
__device__ void chain_tile_fwd(const float* __restrict__ params, const float* __restrict__ wt, const uint16_t* __restrict__ wb,
                               const float* __restrict__ f, const float* __restrict__ kv, int B, int N, long long tile,
                               DropArgs dr, bool keep, float* s) {
    const long long P = (long long)B * N;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int e = threadIdx.x; e < DEF_TP * D; e += DEF_THREADS) {
        PairRef pr = pair_of(tile, e / D, N, P);
        s[S_F + e] = f[(long long)pr.n * D + (e % D)];
    }
    __syncthreads();
    tile_layer<TC, D>(wt + WT_Q, wb + P_WQ, D, params + P_BQ, false, false, s + S_F, D, s + S_Q, D);
    __syncthreads();
    // Attention, one warp per pair.
    const float scale = 0.17677669529663687f;  // 1/√32
    for (int r = 0; r < DEF_RP; ++r) {
        int p = warp * DEF_RP + r;
        PairRef pr = pair_of(tile, p, N, P);
        const float* k = kv + (long long)pr.b * 4 * D;
        const float* v = kv + (long long)B * 4 * D + (long long)pr.b * 4 * D;
        for (int h = 0; h < 2; ++h) {
            int col = h * 32 + lane;
            float q = s[S_Q + p * D + col];
            float sc[4], mx;
            for (int t = 0; t < 4; ++t) sc[t] = warp_sum(q * __ldg(k + t * D + col)) * scale;
            mx = fmaxf(fmaxf(sc[0], sc[1]), fmaxf(sc[2], sc[3]));
            float sum = 0.0f;
            for (int t = 0; t < 4; ++t) {
                sc[t] = expf(sc[t] - mx);
                sum += sc[t];
            }
            float o = 0.0f;
            for (int t = 0; t < 4; ++t) {
                sc[t] = sc[t] / sum;
                o = fmaf(sc[t], __ldg(v + t * D + col), o);
            }
            s[S_O + p * D + col] = o;
            if (keep && lane < 4) s[S_PROB + p * 8 + h * 4 + lane] = sc[lane];
        }
    }
    __syncthreads();
    tile_layer<TC, D>(wt + WT_O, wb + P_WO, D, params + P_BO, false, false, s + S_O, D, s + S_A, D);
    __syncthreads();
    for (int r = 0; r < DEF_RP; ++r) {
        int p = warp * DEF_RP + r;
        long long row = tile * DEF_TP + p;
        float x0 = s[S_F + p * D + lane] + drop_factor(dr.key, dr.threshold, dr.scale, row * D + lane) * s[S_A + p * D + lane];
        float x1 = s[S_F + p * D + lane + 32] +
                   drop_factor(dr.key, dr.threshold, dr.scale, row * D + lane + 32) * s[S_A + p * D + lane + 32];
        float xh0, xh1, y0, y1;
        float rstd = ln_row(x0, x1, params + P_LN1G, params + P_LN1B, xh0, xh1, y0, y1);
        s[S_H1 + p * D + lane] = y0;
        s[S_H1 + p * D + lane + 32] = y1;
        if (keep) {
            s[S_XH1 + p * D + lane] = xh0;
            s[S_XH1 + p * D + lane + 32] = xh1;
            if (lane == 0) s[S_RSTD + p * 2] = rstd;
        }
    }
    __syncthreads();
    tile_layer<TC, FFN>(wt + WT_FFN0, wb + P_FFN0W, D, params + P_FFN0B, true, false, s + S_H1, D, s + S_Z, FFN);
    __syncthreads();
    tile_layer<TC, D>(wt + WT_FFN1, wb + P_FFN1W, FFN, params + P_FFN1B, false, false, s + S_Z, FFN, s + S_A, D);
    __syncthreads();
    for (int r = 0; r < DEF_RP; ++r) {
        int p = warp * DEF_RP + r;
        long long row = P + tile * DEF_TP + p;
        float x0 = s[S_H1 + p * D + lane] + drop_factor(dr.key, dr.threshold, dr.scale, row * D + lane) * s[S_A + p * D + lane];
        float x1 = s[S_H1 + p * D + lane + 32] +
                   drop_factor(dr.key, dr.threshold, dr.scale, row * D + lane + 32) * s[S_A + p * D + lane + 32];
        float xh0, xh1, y0, y1;
        float rstd = ln_row(x0, x1, params + P_LN2G, params + P_LN2B, xh0, xh1, y0, y1);
        s[S_G + p * D + lane] = fmaxf(y0, 0.0f);
        s[S_G + p * D + lane + 32] = fmaxf(y1, 0.0f);
        if (keep) {
            s[S_XH2 + p * D + lane] = xh0;
            s[S_XH2 + p * D + lane + 32] = xh1;
            if (lane == 0) s[S_RSTD + p * 2 + 1] = rstd;
        }
    }
    __syncthreads();
}

// F_d head h of the tile: hidden into S_HID, output [TP][out_h] into S_OUT.
template <bool TC>
__device__ __forceinline__ void head_tile_fwd(const float* __restrict__ params, const float* __restrict__ wt,
                                              const uint16_t* __restrict__ wb, int h, float* s) {
    tile_layer<TC, HID>(wt + WT_HEAD0 + h * D * HID, wb + P_HEAD0W + h * HID * D, D, params + P_HEAD0B + h * HID, true,
                        false, s + S_G, D, s + S_HID, HID);
    __syncthreads();
    const float* w1 = wt + WT_HEAD1 + HEAD_OFF[h] * HID;
    const uint16_t* w1b = wb + P_HEAD1W + HEAD_OFF[h] * HID;
    const float* b1 = params + P_HEAD1B + HEAD_OFF[h];
    switch (h) {
        case 0:
        case 1: tile_layer<TC, 3>(w1, w1b, HID, b1, false, false, s + S_HID, HID, s + S_OUT, 48); break;
        case 2: tile_layer<TC, 4>(w1, w1b, HID, b1, false, false, s + S_HID, HID, s + S_OUT, 48); break;
        case 3: tile_layer<TC, 1>(w1, w1b, HID, b1, false, false, s + S_HID, HID, s + S_OUT, 48); break;
        default: tile_layer<TC, 48>(w1, w1b, HID, b1, false, false, s + S_HID, HID, s + S_OUT, 48); break;
    }
    __syncthreads();
}

// The five per-Gaussian arrays (scales: log-scales for canonical Gaussians, scales for deformed ones).
struct Gaussians {
    float* means;
    float* scales;
    float* rotations;
    float* opacities;
    float* sh;
};
struct CGaussians {
    const float* means;
    const float* scales;
    const float* rotations;
    const float* opacities;
    const float* sh;
};

// deform_transpose: the chain's dense weights in the layouts the tile layers read: wt[i][o] = w[o][i]
// (fp32, WT_* offsets) and, for the tensor-core kernels, bf16 copies of both: wb = bf16(params' chain
// section, P_* offsets) and wtb = bf16(wt). One thread per element of the chain section (CHAIN_FLOATS ≥
// WT_FLOATS). Bytes 4·73 088·2 + 2·(82 683 + 73 088) + 4·82 683, FLOP 0.
//   params [total] → wt [73 088] f32, wb [82 683] bf16, wtb [73 088] bf16
extern "C" __global__ void __launch_bounds__(TRANSPOSE_THREADS)
deform_transpose(const float* __restrict__ params, float* __restrict__ wt, uint16_t* __restrict__ wb,
                 uint16_t* __restrict__ wtb) {
    int e = blockIdx.x * TRANSPOSE_THREADS + threadIdx.x;
    if (e >= CHAIN_FLOATS) return;
    wb[e] = (uint16_t)(pack_bf16(params[e], 0.0f) & 0xffffu);
    if (e >= WT_FLOATS) return;
    int src, dst, out, in;
    if (e < WT_O) { src = P_WQ; dst = WT_Q; out = D; in = D; }
    else if (e < WT_FFN0) { src = P_WO; dst = WT_O; out = D; in = D; }
    else if (e < WT_FFN1) { src = P_FFN0W; dst = WT_FFN0; out = FFN; in = D; }
    else if (e < WT_HEAD0) { src = P_FFN1W; dst = WT_FFN1; out = D; in = FFN; }
    else if (e < WT_HEAD1) {
        int h = (e - WT_HEAD0) / (D * HID);
        src = P_HEAD0W + h * HID * D; dst = WT_HEAD0 + h * D * HID; out = HID; in = D;
    } else {
        int h = 4;
        while (e < WT_HEAD1 + HEAD_OFF[h] * HID) --h;
        src = P_HEAD1W + HEAD_OFF[h] * HID; dst = WT_HEAD1 + HEAD_OFF[h] * HID; out = HEAD_OUT[h]; in = HID;
    }
    int k = e - dst;  // k = i·out + o
    int i = k / out, o = k - i * out;
    float v = params[src + o * in + i];
    wt[e] = v;
    wtb[e] = (uint16_t)(pack_bf16(v, 0.0f) & 0xffffu);
}

template <bool TC>
__device__ void deform_fwd_impl(const float* __restrict__ params, const float* __restrict__ wt,
                                const uint16_t* __restrict__ wb, const float* __restrict__ f, const float* __restrict__ kv,
                                int B, int N, uint64_t key, uint32_t threshold, float scale, const float* c_means,
                                const float* c_log_scales, const float* c_rotations, const float* c_opacities,
                                const float* c_sh, float* o_means, float* o_scales, float* o_rotations,
                                float* o_opacities, float* o_sh) {
    extern __shared__ float s[];
    const CGaussians canon = {c_means, c_log_scales, c_rotations, c_opacities, c_sh};
    const Gaussians out = {o_means, o_scales, o_rotations, o_opacities, o_sh};
    const long long P = (long long)B * N;
    const long long tile = blockIdx.x;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    DropArgs dr = {key, threshold, scale};
    chain_tile_fwd<TC>(params, wt, wb, f, kv, B, N, tile, dr, false, s);
    for (int h = 0; h < 5; ++h) {
        head_tile_fwd<TC>(params, wt, wb, h, s);
        for (int r = 0; r < DEF_RP; ++r) {
            int p = warp * DEF_RP + r;
            PairRef pr = pair_of(tile, p, N, P);
            if (!pr.valid) continue;
            long long row = tile * DEF_TP + p;
            const float* d = s + S_OUT + p * 48;
            long long n = pr.n;
            if (h == 0 && lane < 3) out.means[row * 3 + lane] = canon.means[n * 3 + lane] + d[lane];
            if (h == 1 && lane < 3) out.scales[row * 3 + lane] = expf(canon.scales[n * 3 + lane] + d[lane]);
            if (h == 2) {
                float q[4];
                for (int a = 0; a < 4; ++a) q[a] = canon.rotations[n * 4 + a] + d[a];
                float inv = 1.0f / sqrtf(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
                if (lane < 4) out.rotations[row * 4 + lane] = q[lane] * inv;
            }
            if (h == 3 && lane == 0) out.opacities[row] = 1.0f / (1.0f + expf(-(canon.opacities[n] + d[0])));
            if (h == 4)
                for (int j = lane; j < 48; j += 32) out.sh[row * 48 + j] = canon.sh[n * 48 + j] + d[j];
        }
        __syncthreads();
    }
}

#define DEFORM_FWD_PARAMS                                                                                         \
    const float *__restrict__ params, const float *__restrict__ wt, const uint16_t *__restrict__ wb,              \
        const uint16_t *__restrict__ wtb, const float *__restrict__ f, const float *__restrict__ kv, int B, int N, \
        uint64_t key, uint32_t threshold, float scale, const float *c_means, const float *c_log_scales,           \
        const float *c_rotations, const float *c_opacities, const float *c_sh, float *o_means, float *o_scales,   \
        float *o_rotations, float *o_opacities, float *o_sh
#define DEFORM_FWD_ARGS                                                                                          \
    params, wt, wb, f, kv, B, N, key, threshold, scale, c_means, c_log_scales, c_rotations, c_opacities, c_sh,   \
        o_means, o_scales, o_rotations, o_opacities, o_sh

// deform_fwd (fp32 SIMT layers) and deform_fwd_tc (bf16 tensor-core layers; the rest fp32): the chain and
// the deltas for every pair, one tile of 32 pairs per block (grid = ⌈P/32⌉).
//   params, wt, wb, wtb (deform_transpose), f [N,64], kv [2,B,4,64], c_* canonical [N,…]
//   → o_* deformed [B,N,…]
// Shared: FWD_SMEM_FLOATS·4 = 88 064 bytes (dynamic). Bytes: 4·(N·(64 + 59) + P·59) (f, canonical,
// outputs; weights and kv from cache). FLOP: 2·P·73 600 (MACS_PER_PAIR in src/cuda/attention.rs).
extern "C" __global__ void __launch_bounds__(DEF_THREADS) deform_fwd(DEFORM_FWD_PARAMS) {
    (void)wtb;
    deform_fwd_impl<false>(DEFORM_FWD_ARGS);
}
extern "C" __global__ void __launch_bounds__(DEF_THREADS) deform_fwd_tc(DEFORM_FWD_PARAMS) {
    (void)wtb;
    deform_fwd_impl<true>(DEFORM_FWD_ARGS);
}

// deform_bwd / deform_bwd_tc (layers as in deform_fwd / deform_fwd_tc; the weight gradients, attention,
// LayerNorm and deltas fp32 in both): recomputes the chain per tile and runs its backward. Persistent: block g handles tiles
// g, g + G, …; its weight gradients go to partials[g] (zeroed here), summed by deform_reduce.
//   params, wt, wb, wtb, f, kv, c_* canonical, do_* [B,N,…] (dL/d deformed Gaussians)
//   → partials [G, part_stride] (CHAIN_FLOATS weight gradients, then d_kv [2,B,4,64]),
//     d_f [N,64] (+=, atomics; zero before), dc_* [N,…] (dL/d canonical, +=, atomics; zero before)
// Shared: BWD_SMEM_FLOATS·4 = 156 928 bytes (dynamic; one block per SM).
// Bytes: 4·P·(64 + 59 + 59 + 64 + 59) + 8·G·CHAIN_FLOATS·tiles/G (partials, L2). FLOP ≈ 3× deform_fwd's.
#define DEFORM_BWD_PARAMS                                                                                           \
    const float *__restrict__ params, const float *__restrict__ wt, const uint16_t *__restrict__ wb,                \
        const uint16_t *__restrict__ wtb, const float *__restrict__ f, const float *__restrict__ kv, int B, int N,   \
        uint64_t key, uint32_t threshold, float scale, const float *c_means, const float *c_log_scales,             \
        const float *c_rotations, const float *c_opacities, const float *c_sh, const float *do_means,               \
        const float *do_scales, const float *do_rotations, const float *do_opacities, const float *do_sh,           \
        float *__restrict__ partials, long long part_stride, float *__restrict__ d_f, float *dc_means,              \
        float *dc_log_scales, float *dc_rotations, float *dc_opacities, float *dc_sh
#define DEFORM_BWD_ARGS                                                                                            \
    params, wt, wb, wtb, f, kv, B, N, key, threshold, scale, c_means, c_log_scales, c_rotations, c_opacities, c_sh, \
        do_means, do_scales, do_rotations, do_opacities, do_sh, partials, part_stride, d_f, dc_means, dc_log_scales,  \
        dc_rotations, dc_opacities, dc_sh

template <bool TC>
__device__ void deform_bwd_impl(DEFORM_BWD_PARAMS) {
    extern __shared__ float s[];
    const CGaussians canon = {c_means, c_log_scales, c_rotations, c_opacities, c_sh};
    const CGaussians d_out = {do_means, do_scales, do_rotations, do_opacities, do_sh};
    const Gaussians d_canon = {dc_means, dc_log_scales, dc_rotations, dc_opacities, dc_sh};
    const long long P = (long long)B * N;
    const long long tiles = (P + DEF_TP - 1) / DEF_TP;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    DropArgs dr = {key, threshold, scale};
    float* part = partials + blockIdx.x * part_stride;
    float* part_kv = part + CHAIN_FLOATS;
    for (long long e = threadIdx.x; e < part_stride; e += DEF_THREADS) part[e] = 0.0f;
    __syncthreads();
    for (long long tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        chain_tile_fwd<TC>(params, wt, wb, f, kv, B, N, tile, dr, true, s);
        const int b_first = (int)((tile * DEF_TP) / N);
        for (int e = threadIdx.x; e < 2 * 2 * 4 * D; e += DEF_THREADS) s[S_KV + e] = 0.0f;
        // F_d heads, last to first input: d_g = Σ_h V0_hᵀ (ReLU' ⊙ V1_hᵀ d_out_h).
        for (int h = 0; h < 5; ++h) {
            head_tile_fwd<TC>(params, wt, wb, h, s);
            for (int r = 0; r < DEF_RP; ++r) {
                int p = warp * DEF_RP + r;
                PairRef pr = pair_of(tile, p, N, P);
                long long row = tile * DEF_TP + p;
                long long n = pr.n;
                const float* d = s + S_OUT + p * 48;
                float* dd = s + S_DOUT + p * 48;
                if (h == 0 && lane < 3) {
                    float g = pr.valid ? d_out.means[row * 3 + lane] : 0.0f;
                    dd[lane] = g;
                    if (pr.valid) atomicAdd(d_canon.means + n * 3 + lane, g);
                }
                if (h == 1 && lane < 3) {
                    float sc = expf(canon.scales[n * 3 + lane] + d[lane]);
                    float g = pr.valid ? d_out.scales[row * 3 + lane] * sc : 0.0f;
                    dd[lane] = g;
                    if (pr.valid) atomicAdd(d_canon.scales + n * 3 + lane, g);
                }
                if (h == 2) {
                    float q[4], dq[4];
                    for (int a = 0; a < 4; ++a) {
                        q[a] = canon.rotations[n * 4 + a] + d[a];
                        dq[a] = pr.valid ? d_out.rotations[row * 4 + a] : 0.0f;
                    }
                    float inv = 1.0f / sqrtf(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
                    float dot = 0.0f;
                    for (int a = 0; a < 4; ++a) dot += q[a] * inv * dq[a];
                    if (lane < 4) {
                        float g = (dq[lane] - q[lane] * inv * dot) * inv;
                        dd[lane] = g;
                        if (pr.valid) atomicAdd(d_canon.rotations + n * 4 + lane, g);
                    }
                }
                if (h == 3 && lane == 0) {
                    float o = 1.0f / (1.0f + expf(-(canon.opacities[n] + d[0])));
                    float g = pr.valid ? d_out.opacities[row] * o * (1.0f - o) : 0.0f;
                    dd[0] = g;
                    if (pr.valid) atomicAdd(d_canon.opacities + n, g);
                }
                if (h == 4)
                    for (int j = lane; j < 48; j += 32) {
                        float g = pr.valid ? d_out.sh[row * 48 + j] : 0.0f;
                        dd[j] = g;
                        if (pr.valid) atomicAdd(d_canon.sh + n * 48 + j, g);
                    }
            }
            __syncthreads();
            const int oh = HEAD_OUT[h];
            tile_layer<TC, HID>(params + P_HEAD1W + HEAD_OFF[h] * HID, wtb + WT_HEAD1 + HEAD_OFF[h] * HID, oh, nullptr,
                                false, false, s + S_DOUT, 48, s + S_DHID, HID);
            __syncthreads();
            for (int r = 0; r < DEF_RP; ++r) {
                int p = warp * DEF_RP + r;
                for (int c = lane; c < HID; c += 32)
                    if (!(s[S_HID + p * HID + c] > 0.0f)) s[S_DHID + p * HID + c] = 0.0f;
            }
            __syncthreads();
            tile_layer<TC, D>(params + P_HEAD0W + h * HID * D, wtb + WT_HEAD0 + h * D * HID, HID, nullptr, false, h > 0,
                              s + S_DHID, HID, s + S_DG, D);
            __syncthreads();
            tile_outer(part + P_HEAD1W + HEAD_OFF[h] * HID, part + P_HEAD1B + HEAD_OFF[h], s + S_DOUT, 48, oh, s + S_HID, HID, HID);
            tile_outer(part + P_HEAD0W + h * HID * D, part + P_HEAD0B + h * HID, s + S_DHID, HID, HID, s + S_G, D, D);
            __syncthreads();
        }
        // g = ReLU(h2): d_h2 (in S_DG); LayerNorm 2's γ, β; d_r2 (S_D1); d_y = drop ⊙ d_r2 (S_D2).
        for (int e = threadIdx.x; e < DEF_TP * D; e += DEF_THREADS)
            if (!(s[S_G + e] > 0.0f)) s[S_DG + e] = 0.0f;
        __syncthreads();
        for (int j = threadIdx.x; j < D; j += DEF_THREADS) {
            float sg = 0.0f, sb = 0.0f;
            for (int p = 0; p < DEF_TP; ++p) {
                sg = fmaf(s[S_DG + p * D + j], s[S_XH2 + p * D + j], sg);
                sb += s[S_DG + p * D + j];
            }
            part[P_LN2G + j] += sg;
            part[P_LN2B + j] += sb;
        }
        for (int r = 0; r < DEF_RP; ++r) {
            int p = warp * DEF_RP + r;
            long long row = P + tile * DEF_TP + p;
            float dx0, dx1;
            ln_row_vjp(s[S_XH2 + p * D + lane], s[S_XH2 + p * D + lane + 32], s[S_RSTD + p * 2 + 1], params + P_LN2G,
                       s[S_DG + p * D + lane], s[S_DG + p * D + lane + 32], dx0, dx1);
            s[S_D1 + p * D + lane] = dx0;
            s[S_D1 + p * D + lane + 32] = dx1;
            s[S_D2 + p * D + lane] = drop_factor(dr.key, dr.threshold, dr.scale, row * D + lane) * dx0;
            s[S_D2 + p * D + lane + 32] = drop_factor(dr.key, dr.threshold, dr.scale, row * D + lane + 32) * dx1;
        }
        __syncthreads();
        // FFN: d_z = ReLU' ⊙ W1ᵀ d_y (S_DHID); d_h1 = d_r2 + W0ᵀ d_z (S_D1).
        tile_layer<TC, FFN>(params + P_FFN1W, wtb + WT_FFN1, D, nullptr, false, false, s + S_D2, D, s + S_DHID, FFN);
        __syncthreads();
        for (int r = 0; r < DEF_RP; ++r) {
            int p = warp * DEF_RP + r;
            for (int c = lane; c < FFN; c += 32)
                if (!(s[S_Z + p * FFN + c] > 0.0f)) s[S_DHID + p * FFN + c] = 0.0f;
        }
        __syncthreads();
        tile_layer<TC, D>(params + P_FFN0W, wtb + WT_FFN0, FFN, nullptr, false, true, s + S_DHID, FFN, s + S_D1, D);
        __syncthreads();
        tile_outer(part + P_FFN1W, part + P_FFN1B, s + S_D2, D, D, s + S_Z, FFN, FFN);
        tile_outer(part + P_FFN0W, part + P_FFN0B, s + S_DHID, FFN, FFN, s + S_H1, D, D);
        // LayerNorm 1's γ, β; d_r1 (S_D2); d_att = drop ⊙ d_r1 (S_D1).
        for (int j = threadIdx.x; j < D; j += DEF_THREADS) {
            float sg = 0.0f, sb = 0.0f;
            for (int p = 0; p < DEF_TP; ++p) {
                sg = fmaf(s[S_D1 + p * D + j], s[S_XH1 + p * D + j], sg);
                sb += s[S_D1 + p * D + j];
            }
            part[P_LN1G + j] += sg;
            part[P_LN1B + j] += sb;
        }
        __syncthreads();
        for (int r = 0; r < DEF_RP; ++r) {
            int p = warp * DEF_RP + r;
            long long row = tile * DEF_TP + p;
            float dx0, dx1;
            ln_row_vjp(s[S_XH1 + p * D + lane], s[S_XH1 + p * D + lane + 32], s[S_RSTD + p * 2], params + P_LN1G,
                       s[S_D1 + p * D + lane], s[S_D1 + p * D + lane + 32], dx0, dx1);
            s[S_D2 + p * D + lane] = dx0;
            s[S_D2 + p * D + lane + 32] = dx1;
            s[S_D1 + p * D + lane] = drop_factor(dr.key, dr.threshold, dr.scale, row * D + lane) * dx0;
            s[S_D1 + p * D + lane + 32] = drop_factor(dr.key, dr.threshold, dr.scale, row * D + lane + 32) * dx1;
        }
        __syncthreads();
        // Out-projection: d_o = Woᵀ d_att (S_A).
        tile_layer<TC, D>(params + P_WO, wtb + WT_O, D, nullptr, false, false, s + S_D1, D, s + S_A, D);
        __syncthreads();
        // Attention backward, one warp per pair: d_q (S_DG); d_k, d_v summed per frame in registers, then
        // into the tile's two frame slots (S_KV) or, for a third frame in one tile (N < 32), the partials.
        {
            const float scale_att = 0.17677669529663687f;
            float dk[2][4], dv[2][4];
            int cur_b = -1;
            for (int r = 0; r <= DEF_RP; ++r) {
                int p = warp * DEF_RP + r;
                PairRef pr = r < DEF_RP ? pair_of(tile, p, N, P) : PairRef{-2, 0, false};
                int fb = pr.valid ? pr.b : -2;
                if (fb != cur_b && cur_b >= 0) {
                    int slot = cur_b - b_first;
                    for (int h = 0; h < 2; ++h)
                        for (int t = 0; t < 4; ++t) {
                            int c = h * 32 + lane;
                            if (slot < 2) {
                                atomicAdd(s + S_KV + ((slot * 2 + 0) * 4 + t) * D + c, dk[h][t]);
                                atomicAdd(s + S_KV + ((slot * 2 + 1) * 4 + t) * D + c, dv[h][t]);
                            } else {
                                atomicAdd(part_kv + ((long long)cur_b * 4 + t) * D + c, dk[h][t]);
                                atomicAdd(part_kv + (long long)B * 4 * D + ((long long)cur_b * 4 + t) * D + c, dv[h][t]);
                            }
                        }
                }
                if (fb != cur_b) {
                    for (int h = 0; h < 2; ++h)
                        for (int t = 0; t < 4; ++t) dk[h][t] = dv[h][t] = 0.0f;
                    cur_b = fb;
                }
                if (r == DEF_RP) break;
                const float* k = kv + (long long)pr.b * 4 * D;
                const float* v = kv + (long long)B * 4 * D + (long long)pr.b * 4 * D;
                for (int h = 0; h < 2; ++h) {
                    int col = h * 32 + lane;
                    float d_o = s[S_A + p * D + col];
                    float q = s[S_Q + p * D + col];
                    float pt[4], dp[4], dot = 0.0f;
                    for (int t = 0; t < 4; ++t) {
                        pt[t] = s[S_PROB + p * 8 + h * 4 + t];
                        dp[t] = warp_sum(d_o * __ldg(v + t * D + col));
                        dot += pt[t] * dp[t];
                    }
                    float dq = 0.0f;
                    for (int t = 0; t < 4; ++t) {
                        float ds = pt[t] * (dp[t] - dot) * scale_att;
                        dq = fmaf(ds, __ldg(k + t * D + col), dq);
                        if (pr.valid) {
                            dk[h][t] = fmaf(ds, q, dk[h][t]);
                            dv[h][t] = fmaf(pt[t], d_o, dv[h][t]);
                        }
                    }
                    s[S_DG + p * D + col] = dq;
                }
            }
        }
        __syncthreads();
        tile_outer(part + P_WO, part + P_BO, s + S_D1, D, D, s + S_O, D, D);
        // Query projection: d_f = d_r1 + Wqᵀ d_q (S_D2).
        tile_layer<TC, D>(params + P_WQ, wtb + WT_Q, D, nullptr, false, true, s + S_DG, D, s + S_D2, D);
        tile_outer(part + P_WQ, part + P_BQ, s + S_DG, D, D, s + S_F, D, D);
        __syncthreads();
        for (int e = threadIdx.x; e < DEF_TP * D; e += DEF_THREADS) {
            PairRef pr = pair_of(tile, e / D, N, P);
            if (pr.valid) atomicAdd(d_f + (long long)pr.n * D + (e % D), s[S_D2 + e]);
        }
        for (int e = threadIdx.x; e < 2 * 2 * 4 * D; e += DEF_THREADS) {
            int slot = e / (2 * 4 * D), kind = (e / (4 * D)) & 1, tc = e % (4 * D);
            int fb = b_first + slot;
            if (fb < B) part_kv[(long long)kind * B * 4 * D + (long long)fb * 4 * D + tc] += s[S_KV + e];
        }
        __syncthreads();
    }
}

extern "C" __global__ void __launch_bounds__(DEF_THREADS, 1) deform_bwd(DEFORM_BWD_PARAMS) {
    deform_bwd_impl<false>(DEFORM_BWD_ARGS);
}
extern "C" __global__ void __launch_bounds__(DEF_THREADS, 1) deform_bwd_tc(DEFORM_BWD_PARAMS) {
    deform_bwd_impl<true>(DEFORM_BWD_ARGS);
}

// deform_reduce: sums deform_bwd's G partial slices in order (deterministic): the chain section of
// d_params (=) and d_kv [2,B,4,64] (=). One thread per output float.
//   partials [G, part_stride] → d_params [CHAIN_FLOATS] (first floats of the gradient buffer), d_kv [B·512]
// Bytes: 4·(G + 1)·(CHAIN_FLOATS + 512·B). FLOP: G·(CHAIN_FLOATS + 512·B).
extern "C" __global__ void __launch_bounds__(REDUCE_THREADS)
deform_reduce(const float* __restrict__ partials, long long part_stride, int G, int B, float* __restrict__ d_params,
              float* __restrict__ d_kv) {
    long long e = (long long)blockIdx.x * REDUCE_THREADS + threadIdx.x;
    long long total = CHAIN_FLOATS + 512LL * B;
    if (e >= total) return;
    float acc = 0.0f;
    for (int g = 0; g < G; ++g) acc += partials[g * part_stride + e];
    if (e < CHAIN_FLOATS) d_params[e] = acc;
    else d_kv[e - CHAIN_FLOATS] = acc;
}
