// The deformation network's per-(Gaussian, frame) chain, fused (SPEC §5; CPU twin src/cpu/attention.rs):
//   q = Wq f + bq; per head h (32 columns): p = softmax_t(q_h·k_t,h / √32) over the frame's 4 tokens,
//   o_h = Σ_t p_t v_t,h; att = Wo o + bo; h1 = LN1(f + drop(att)); z = ReLU(W0 h1 + b0);
//   h2 = LN2(h1 + drop(W1 z + b1)); g = ReLU(h2); per F_d head: out = V1 ReLU(V0 g + c0) + c1;
//   the deltas applied to the canonical Gaussian: μ + Δ, exp(log s + Δ), normalise(q + Δ), sigmoid(o + Δ),
//   SH + Δ.
// Precision: deform_fwd / deform_bwd are fp32 throughout (fmaf, fp32 accumulation; within 1e-5 of the twin).
// deform_fwd_*_tc / deform_bwd_*_tc run every dense product on the tensor cores with fp32 accumulation.
// Both directions take the attention through each frame's 4 tokens projected by the query and the
// out-projection (TOK_* below) instead of through those layers per pair. The backward's weight
// gradients and the chain's d_x take bf16 operands (gradients need bf16's range); the F_d heads' d_x take
// fp16 ones, the gradient rows scaled by powers of two into fp16's range (to_frags_row_scaled), so that
// one fp16 copy of the heads' weights serves the backward's recompute of the forward and its d_x (and
// they are 3 bits more precise than bf16). The forward takes
// fp16 operands (activations and weights are bounded there: LayerNorm outputs, ReLU hidden units,
// features in [0, 1]), with two refinements for the ReLU units: one whose pre-activation lies within the
// forward's rounding of 0 flips against fp32, and the backward then passes that pair's gradient on one
// side only. The attention's products over the tokens (scores and att) and the FFN are split: x = hi + lo
// and W = Whi + Wlo in three products (split_by_rows, tc_attention), which leaves 2^-20 of each product
// where plain fp16 leaves 2^-11, so that the values
// every later ReLU sees are near fp32's. The heads' first layers, the last ReLUs, pass on their fp16
// values but take their ReLU decisions from the split product (tc_head_hidden). With plain fp16 forward operands
// d_kv, d_f and d_params were 1.4–2.0e-2 from the exact twin on 3 frames × 2000 Gaussians; now the twin with
// the kernels' roundings is 1.2–2.7e-3 from it (3.4–4.1e-3 with the heads' d_x on bf16; 1.2–2.5e-3 with
// the attention's backward through its layers per pair; the rest is the backward's bf16). In a CPU emulation the query's rounding did not matter, every other layer did (the
// out-projection unsplit: 7.4e-3; the FFN's first layer fp16 with its doubtful units redone: 1.1e-2).
// Splitting both of the heads' layers, for their values too, gave the same accuracy at 2.9× the forward's
// time. Attention, softmax,
// LayerNorm, dropout, ReLU masks and the deltas stay fp32, but for what the tensor-core backward reads
// from the tape: the LayerNorms' x̂ in fp16 (|x̂| < 8, 2^-11 relative) and d_h2 in bf16. The CPU twin with
// Operands::TensorCores rounds the same values. LayerNorm eps 1e-12. Dropout: element idx kept iff its
// 16 bits of hash (drop_factor) ≥ threshold, scaled by `scale`; idx = r·64 + j after the out-projection
// and (P + r)·64 + j after the FFN, r = b·N + n. The tensor-core forward hashes each lane's elements once
// (lane_kept) and keeps the bits in the tape for the backward.
//
// Shapes: P = B·N pairs, pair r = b·N + n (frame-major). params: the flat parameter buffer of
// src/model/deform.rs (the chain's tensors at the P_* offsets below). wt: the chain's weights transposed by
// deform_transpose ([in][out], WT_* offsets) so that a warp reading one input row of a weight reads 32
// consecutive floats. f [N,64]; kv [2,B,4,64] (K rows then V rows, from kernels/audio.cu:tokens_fwd);
// canonical means [N,3], log_scales [N,3], rotations [N,4] (w,x,y,z), opacities [N], sh [N,48]; outputs
// (and their gradients) frame-major [B,N,…] with the same widths (scales activated, rotations unit,
// opacities sigmoid).
//
// fp32 kernels: a block of DEF_THREADS = 256 threads owns a tile of DEF_TP = 32 consecutive pairs; warp w
// owns pairs 4w … 4w+3 (DEF_RP = 4) for the elementwise steps (attention, LayerNorm, deltas: one warp per
// pair, lane l owns columns l and l + 32, shuffle reductions). A dense layer of the tile is tile_layer:
// for each 4 inputs k, a lane reads its output columns of rows k of the transposed weight (coalesced,
// L1/L2 resident: the chain's weights are 330 KB) and one float4 of x per pair from shared memory
// (broadcast) for 16 × NC FMA. The backward recomputes the forward in shared memory instead of reading
// stored activations. Its weight gradients: each block (persistent, looping over tiles) adds its tiles'
// Σ_pairs d_pre ⊗ x (tile_outer: 4 × 4 register blocks per thread) into its own slice of `partials`
// [G, part_stride] (plain float4 read-modify-write, L2-resident, no atomics); deform_reduce sums the G
// slices in a fixed order into d_params (chain section) and d_kv. d_f [N,64] and d_canonical are accumulated with
// atomicAdd (B adds per element: not bitwise deterministic).
// The tensor-core kernels' mapping is described at their section below.
// NaN policy: NaNs propagate; a zero-length quaternion gives NaN rotations (the CPU twin does the same).

#include <cuda_fp16.h>
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
// Where the backward's partial slices continue after the chain's gradients (16-byte aligned): d_kv's sums
// (deform_bwd) or the projected tokens' (deform_bwd_chain_tc).
constexpr int PART_TAIL = (CHAIN_FLOATS + 3) / 4 * 4;

constexpr float ATT_SCALE = 0.17677669529663687f;  // 1/√32: the attention scores' scale (head width 32)

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

// The dropout's hash (Dropout::factor in the twin): a 32-bit integer mix (two multiply-xorshift rounds) per
// two elements, a sixth of SplitMix64's instructions per element. Elements 2m, 2m + 1 take the low and the
// high 16 bits of hash32(lo ^ base), lo and hi being m's 32-bit halves and base = hash32(hi ^ key's high
// half) ^ key's low half (drop_base: one per 2^33 elements); an element is kept iff its 16 bits ≥
// threshold.
__device__ __forceinline__ uint32_t hash32(uint32_t x) {
    x = (x ^ (x >> 16)) * 0x21f0aaadu;
    x = (x ^ (x >> 15)) * 0x735a2d97u;
    return x ^ (x >> 15);
}
__device__ __forceinline__ uint32_t drop_base(uint64_t key, uint32_t m_hi) {
    return hash32(m_hi ^ (uint32_t)(key >> 32)) ^ (uint32_t)key;
}
// The kept bits (bit 0: element 2m, bit 1: 2m + 1) of element pair m (lower half m_lo).
__device__ __forceinline__ uint32_t drop_kept2(uint32_t base, uint32_t threshold, uint32_t m_lo) {
    const uint32_t u = hash32(m_lo ^ base);
    return ((u & 0xffffu) >= threshold ? 1u : 0u) | ((u >> 16) >= threshold ? 2u : 0u);
}

__device__ __forceinline__ float drop_factor(uint64_t key, uint32_t threshold, float scale, uint64_t idx) {
    if (threshold == 0) return 1.0f;
    const uint64_t m = idx >> 1;
    return drop_kept2(drop_base(key, (uint32_t)(m >> 32)), threshold, (uint32_t)m) >> (idx & 1) & 1 ? scale : 0.0f;
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

// Two bf16 in one register, the first (smaller k) in the low half; round to nearest even. RELU: of
// max(v, 0), in the conversion (negative values give +0; NaN stays NaN).
template <bool RELU = false>
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    uint32_t r;
    if (RELU) asm("cvt.rn.relu.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    else asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// Two fp16 in one register, the first in the low half; round to nearest even. RELU as pack_bf16's.
template <bool RELU = false>
__device__ __forceinline__ uint32_t pack_f16(float lo, float hi) {
    uint32_t r;
    if (RELU) asm("cvt.rn.relu.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    else asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// What fp16 rounding leaves of v, v − fp16(v): the low part of a split product.
__device__ __forceinline__ float f16_rest(float v) { return v - __half2float(__float2half_rn(v)); }

// pack_f16 of two values, or, LOW, of their f16_rest.
template <bool LOW>
__device__ __forceinline__ uint32_t pack_f16_part(float lo, float hi) {
    return LOW ? pack_f16(f16_rest(lo), f16_rest(hi)) : pack_f16(lo, hi);
}

// c += a·b for one 16×8 tile, k = 16: fp16 (F16) or bf16 inputs, fp32 accumulation (PTX ISA fragment
// layouts). Not volatile: a pure function of its operands, so the compiler may interleave independent
// products.
template <bool F16>
__device__ __forceinline__ void mma_m16n8k16(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    if (F16)
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
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

// One dense layer of the tile: y[p][n] (+)= Σ_k x[p][k]·M[k][n] (+ bias, ReLU), for the 32 pairs, with M
// fp32 row-major m [K][NOUT] (tile_mm; warp w writes its own 4 pairs' rows). Callers __syncthreads between
// layers.
template <int NOUT>
__device__ __forceinline__ void tile_layer(const float* __restrict__ m, int K, const float* __restrict__ bias, bool relu,
                                           bool accumulate, const float* x, int ldx, float* y, int ldy) {
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
__device__ void chain_tile_fwd(const float* __restrict__ params, const float* __restrict__ wt, const float* __restrict__ f,
                               const float* __restrict__ kv, int B, int N, long long tile, DropArgs dr, bool keep,
                               float* s) {
    const long long P = (long long)B * N;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int e = threadIdx.x; e < DEF_TP * D; e += DEF_THREADS) {
        PairRef pr = pair_of(tile, e / D, N, P);
        s[S_F + e] = f[(long long)pr.n * D + (e % D)];
    }
    __syncthreads();
    tile_layer<D>(wt + WT_Q, D, params + P_BQ, false, false, s + S_F, D, s + S_Q, D);
    __syncthreads();
    // Attention, one warp per pair.
    for (int r = 0; r < DEF_RP; ++r) {
        int p = warp * DEF_RP + r;
        PairRef pr = pair_of(tile, p, N, P);
        const float* k = kv + (long long)pr.b * 4 * D;
        const float* v = kv + (long long)B * 4 * D + (long long)pr.b * 4 * D;
        for (int h = 0; h < 2; ++h) {
            int col = h * 32 + lane;
            float q = s[S_Q + p * D + col];
            float sc[4], mx;
            for (int t = 0; t < 4; ++t) sc[t] = warp_sum(q * __ldg(k + t * D + col)) * ATT_SCALE;
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
    tile_layer<D>(wt + WT_O, D, params + P_BO, false, false, s + S_O, D, s + S_A, D);
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
    tile_layer<FFN>(wt + WT_FFN0, D, params + P_FFN0B, true, false, s + S_H1, D, s + S_Z, FFN);
    __syncthreads();
    tile_layer<D>(wt + WT_FFN1, FFN, params + P_FFN1B, false, false, s + S_Z, FFN, s + S_A, D);
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
__device__ __forceinline__ void head_tile_fwd(const float* __restrict__ params, const float* __restrict__ wt, int h,
                                              float* s) {
    tile_layer<HID>(wt + WT_HEAD0 + h * D * HID, D, params + P_HEAD0B + h * HID, true, false, s + S_G, D, s + S_HID, HID);
    __syncthreads();
    const float* w1 = wt + WT_HEAD1 + HEAD_OFF[h] * HID;
    const float* b1 = params + P_HEAD1B + HEAD_OFF[h];
    switch (h) {
        case 0:
        case 1: tile_layer<3>(w1, HID, b1, false, false, s + S_HID, HID, s + S_OUT, 48); break;
        case 2: tile_layer<4>(w1, HID, b1, false, false, s + S_HID, HID, s + S_OUT, 48); break;
        case 3: tile_layer<1>(w1, HID, b1, false, false, s + S_HID, HID, s + S_OUT, 48); break;
        default: tile_layer<48>(w1, HID, b1, false, false, s + S_HID, HID, s + S_OUT, 48); break;
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

// deform_transpose: the chain's dense weights in the layout the fp32 tile layers read: wt[i][o] = w[o][i]
// (WT_* offsets). One thread per element of wt. Bytes 8·73 088, FLOP 0.
//   params [total] → wt [73 088]
extern "C" __global__ void __launch_bounds__(TRANSPOSE_THREADS)
deform_transpose(const float* __restrict__ params, float* __restrict__ wt) {
    int e = blockIdx.x * TRANSPOSE_THREADS + threadIdx.x;
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
    wt[e] = params[src + o * in + i];
}

// The arguments deform_fwd and deform_fwd_*_tc share after the weights, and those deform_bwd and
// deform_bwd_*_tc share.
#define DEFORM_FWD_TAIL                                                                                        \
    const float *__restrict__ f, const float *__restrict__ kv, int B, int N, uint64_t key, uint32_t threshold, \
        float scale, const float *c_means, const float *c_log_scales, const float *c_rotations,                \
        const float *c_opacities, const float *c_sh, float *o_means, float *o_scales, float *o_rotations,      \
        float *o_opacities, float *o_sh
#define DEFORM_BWD_TAIL                                                                                         \
    const float *__restrict__ f, const float *__restrict__ kv, int B, int N, uint64_t key, uint32_t threshold,  \
        float scale, const float *c_means, const float *c_log_scales, const float *c_rotations,                 \
        const float *c_opacities, const float *c_sh, const float *do_means, const float *do_scales,             \
        const float *do_rotations, const float *do_opacities, const float *do_sh, float *__restrict__ partials, \
        long long part_stride, float *__restrict__ d_f, float *dc_means, float *dc_log_scales,                 \
        float *dc_rotations, float *dc_opacities, float *dc_sh

// deform_fwd: the chain and the deltas for every pair in fp32, one tile of 32 pairs per block
// (grid = ⌈P/32⌉).
//   params, wt (deform_transpose), f [N,64], kv [2,B,4,64], c_* canonical [N,…] → o_* deformed [B,N,…]
// Shared: FWD_SMEM_FLOATS·4 = 88 064 bytes (dynamic). Bytes: 4·(N·(64 + 59) + P·59) (f, canonical,
// outputs; weights and kv from cache). FLOP: 2·P·73 600 (MACS_PER_PAIR in src/cuda/attention.rs).
extern "C" __global__ void __launch_bounds__(DEF_THREADS)
deform_fwd(const float* __restrict__ params, const float* __restrict__ wt, DEFORM_FWD_TAIL) {
    extern __shared__ float s[];
    const CGaussians canon = {c_means, c_log_scales, c_rotations, c_opacities, c_sh};
    const Gaussians out = {o_means, o_scales, o_rotations, o_opacities, o_sh};
    const long long P = (long long)B * N;
    const long long tile = blockIdx.x;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    DropArgs dr = {key, threshold, scale};
    chain_tile_fwd(params, wt, f, kv, B, N, tile, dr, false, s);
    for (int h = 0; h < 5; ++h) {
        head_tile_fwd(params, wt, h, s);
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

// deform_bwd: recomputes the chain per tile in fp32 and runs its backward. Persistent: block g handles tiles
// g, g + G, …; its weight gradients go to partials[g] (zeroed here), summed by deform_reduce.
//   params, wt, f, kv, c_* canonical, do_* [B,N,…] (dL/d deformed Gaussians)
//   → partials [G, part_stride] (CHAIN_FLOATS weight gradients, then from PART_TAIL d_kv [2,B,4,64]),
//     d_f [N,64] (+=, atomics; zero before), dc_* [N,…] (dL/d canonical, +=, atomics; zero before)
// Shared: BWD_SMEM_FLOATS·4 = 156 928 bytes (dynamic; one block per SM).
// Bytes: 4·P·(64 + 59 + 59 + 64 + 59) + 8·G·CHAIN_FLOATS·tiles/G (partials, L2). FLOP ≈ 3× deform_fwd's.
extern "C" __global__ void __launch_bounds__(DEF_THREADS, 1)
deform_bwd(const float* __restrict__ params, const float* __restrict__ wt, DEFORM_BWD_TAIL) {
    extern __shared__ float s[];
    const CGaussians canon = {c_means, c_log_scales, c_rotations, c_opacities, c_sh};
    const CGaussians d_out = {do_means, do_scales, do_rotations, do_opacities, do_sh};
    const Gaussians d_canon = {dc_means, dc_log_scales, dc_rotations, dc_opacities, dc_sh};
    const long long P = (long long)B * N;
    const long long tiles = (P + DEF_TP - 1) / DEF_TP;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    DropArgs dr = {key, threshold, scale};
    float* part = partials + blockIdx.x * part_stride;
    float* part_kv = part + PART_TAIL;
    for (long long e = threadIdx.x; e < part_stride; e += DEF_THREADS) part[e] = 0.0f;
    __syncthreads();
    for (long long tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        chain_tile_fwd(params, wt, f, kv, B, N, tile, dr, true, s);
        const int b_first = (int)((tile * DEF_TP) / N);
        for (int e = threadIdx.x; e < 2 * 2 * 4 * D; e += DEF_THREADS) s[S_KV + e] = 0.0f;
        // F_d heads, last to first input: d_g = Σ_h V0_hᵀ (ReLU' ⊙ V1_hᵀ d_out_h).
        for (int h = 0; h < 5; ++h) {
            head_tile_fwd(params, wt, h, s);
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
            tile_layer<HID>(params + P_HEAD1W + HEAD_OFF[h] * HID, oh, nullptr, false, false, s + S_DOUT, 48,
                            s + S_DHID, HID);
            __syncthreads();
            for (int r = 0; r < DEF_RP; ++r) {
                int p = warp * DEF_RP + r;
                for (int c = lane; c < HID; c += 32)
                    if (!(s[S_HID + p * HID + c] > 0.0f)) s[S_DHID + p * HID + c] = 0.0f;
            }
            __syncthreads();
            tile_layer<D>(params + P_HEAD0W + h * HID * D, HID, nullptr, false, h > 0, s + S_DHID, HID, s + S_DG, D);
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
        tile_layer<FFN>(params + P_FFN1W, D, nullptr, false, false, s + S_D2, D, s + S_DHID, FFN);
        __syncthreads();
        for (int r = 0; r < DEF_RP; ++r) {
            int p = warp * DEF_RP + r;
            for (int c = lane; c < FFN; c += 32)
                if (!(s[S_Z + p * FFN + c] > 0.0f)) s[S_DHID + p * FFN + c] = 0.0f;
        }
        __syncthreads();
        tile_layer<D>(params + P_FFN0W, FFN, nullptr, false, true, s + S_DHID, FFN, s + S_D1, D);
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
        tile_layer<D>(params + P_WO, D, nullptr, false, false, s + S_D1, D, s + S_A, D);
        __syncthreads();
        // Attention backward, one warp per pair: d_q (S_DG); d_k, d_v summed per frame in registers, then
        // into the tile's two frame slots (S_KV) or, for a third frame in one tile (N < 32), the partials.
        {
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
                        float ds = pt[t] * (dp[t] - dot) * ATT_SCALE;
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
        tile_layer<D>(params + P_WQ, D, nullptr, false, true, s + S_DG, D, s + S_D2, D);
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

// ---------------------------------------------------------------------------------------------------------
// Tensor-core path (deform_fwd_*_tc, deform_bwd_*_tc). A warp owns 16 Gaussians of one frame and
// runs its part of the chain on them in registers: every dense layer is one m16n8k16 mma per 16 × 8 × 16
// block with fp32 accumulation (fp16 operands forward, bf16 or row-scaled fp16 backward: see Precision
// above), and a layer's fp32 accumulators (the mma C layout: lane (g = lane/4, t = lane%4) holds rows g and g
// + 8, columns 8j + 2t and 8j + 2t + 1 of each 8-column tile j) are rounded into the next layer's A fragments
// without leaving the registers. Each kernel first copies the weights it multiplies by to shared memory as
// fp16 matrices (weight_to_shared: with the split layers' low parts in the forward), from which wgmma on
// Hopper, and ldmatrix elsewhere, read either orientation. Attention, LayerNorm, dropout, ReLU masks,
// softmax and the deltas stay fp32 on the accumulators; row sums are quad shuffles.
// The backward's weight gradients are tensor-core products too: per block tile (8 warps × 16 = 128 pairs)
// each layer's input x and output gradient d_pre are staged as bf16 [128][cols] in shared memory, and
// dW = d_preᵀ·x is one product over the 128 pairs; a column of ones after x's last column gives the bias
// gradient in the same product. The last layers of heads 0–3 (1 to 4 outputs) take dWᵀ = xᵀ·d_pre instead,
// so that the 16-row tiles run over the inputs and not over 4 outputs padded to 16 (block_dw_narrow). The
// sums go into the block's partial slice by red.global.add; deform_reduce adds the slices in a fixed order.
// Why it is shaped so (every step's A/B, and what was tried and not kept, with their logs:
// bench/results/deform-tc-experiments.md):
// - Each direction is two kernels over the same work items, the chain's (f to g) and the F_d heads' (g to
//   the deltas), passing g (and back d_h2) through the tape (TAPE_* below): one kernel per direction was
//   larger than the instruction cache, and its misses were a quarter of its stalls.
// - The tape holds what the heads and the backward need of the forward chain, which they read instead of
//   recomputing it.
// - The backward takes the attention's two 64 × 64 layers through each frame's projected tokens (TOK_*
//   above) and the forward's p from the tape: 12 products per warp tile and 104 per block instead of 64
//   and 576.
// - Both heads kernels read the deltas' inputs of heads 0–3 before each head's products, whose time hides
//   the inputs' L2 latency.
// - Nothing is added with atomics that the B frames of an n-tile would add to the same addresses at about
//   the same time: deform_pass_through_bwd sums the canonical means' and SH coefficients' gradients over
//   the frames, and the log-scales', rotations' and opacities' from the heads' per-pair gradients (d_pair),
//   in order; deform_bwd_chain_tc sums d_f over an n-tile's frames in shared memory.
// - On Hopper (ptx/attention_sm90a.ptx, TC_WGMMA) the backward's products and weight gradients and the
//   forward heads' products run on warpgroup MMA: one wgmma per k-step for a warpgroup's 64 rows, A from
//   the warps' fragments or the staged tiles (then in the no-swizzle core-matrix layout: stage_tile_bf16),
//   B from the weights' fp16 copies in the 128-byte swizzle; each product's descriptor is built once and
//   advanced per k-step (desc_advance).
// - The four kernels are bound by latency, not by memory (DRAM 12–20 % of peak, 1.3–1.65 instructions
//   issued per cycle; Nsight Compute at 737bee2): 8 warps per SM (the forward heads 12), the backward's at
//   255 and 229 registers. The barrier after each weight gradient is an mbarrier (TileReuse), the biases
//   and LayerNorm parameters come from shared memory, and the heads' ReLU is in their conversions.
// Where the step's time goes now: README.md, Performance.

#define TC_WARPS 8
// sm_90a (ptx/attention_sm90a.ptx): the tensor-core kernels' products on Hopper's warpgroup MMA (wgmma).
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define TC_WGMMA 1
#else
#define TC_WGMMA 0
#endif
#if TC_WGMMA
// Orders this thread's shared-memory stores (generic proxy) before wgmma's reads of them (async proxy); a
// barrier after it orders them across the block.
__device__ __forceinline__ void fence_stores_for_wgmma() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
#endif
// Programmatic dependent launch (sm_90a; nothing on the portable module, whose launches never ask for it):
// the launcher starts deform_fwd_chain_tc, deform_fwd_heads_tc, deform_bwd_heads_tc and deform_bwd_chain_tc
// while the kernel before each (deform_project_tokens, deform_fwd_chain_tc, deform_fwd_heads_tc when the
// backward follows the forward at once, as in `bench deform`, deform_bwd_heads_tc) is still running, once
// every block of that one has called allow_dependent_launch (at its start). Its blocks take the SMs the
// earlier kernel's last blocks leave, copy their weights into shared memory (which reads nothing the
// earlier kernel writes) and wait_for_previous_grid before anything else: the earlier grid has then ended
// and its writes are visible. So a kernel's prologue and the gap between the launches run under the
// earlier kernel's last items instead of after them.
__device__ __forceinline__ void allow_dependent_launch() {
#if TC_WGMMA
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void wait_for_previous_grid() {
#if TC_WGMMA
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
#define TC_THREADS (TC_WARPS * 32)
#define TC_TILE (TC_WARPS * 16)  // Gaussians per block tile
// Row strides (bf16) of deform_bwd_*_tc's staged tiles: 64 or 128 columns, a column of ones, 7 zeros; and
// 8 columns (the attention weights), the ones and zeros, 8 unused (48 bytes: an odd multiple of 16).
#define TC_LDX 72
#define TC_LDW 136
#define TC_LDP 24

// The backward's view of the attention's two 64 × 64 layers: each frame's 4 tokens projected through them
// (deform_project_tokens). With ht = 4h + t (head h, token t) and c over head h's 32 columns,
//   score_ht = (Wq f + bq)_h·k_t,h / √32 = Σ_i f_i·KT[i][ht] + KC[ht],  KT[i][ht] = Σ_c Wq[c][i]·k_t[c] / √32,
//     KC[ht] = Σ_c bq[c]·k_t[c] / √32;  att = Wo·o + bo = bo + Σ_ht p_ht·UT[·][ht],  UT[j][ht] = Σ_c Wo[j][c]·v_t[c],
// so that d_p = d_att·UT, d_f gets ds·KTᵀ (ds: the scores' gradients), and the layers' weight gradients
// and d_kv follow from the sums over each frame's pairs of d_att ⊗ p, d_att, ds ⊗ f and ds
// (deform_project_tokens_bwd). Per warp tile that is 12 products where the layers' d_x took 64, and per
// block 104 for the weight gradients (block_dw_attention) where the layers took 576. The forward takes
// the scores and att through them too (tc_attention: 36 products where the layers took 128, and no
// per-pair dot products over the tokens), each split (fp16 hi + lo) for near fp32's values; the backward
// reads its p from the tape.
// Per frame (4-byte words), mma B fragments:
//   the backward's, bf16: UT with K = its 64 rows j and N = its 8 columns ht ([4 k-steps][32 lanes] uint2),
//     then KTᵀ with K = the 8 columns ht (the k-step's upper 8 zero) and N = its 64 rows i ([8 column
//     tiles][32 lanes], each fragment's first word);
//   the forward's, fp16 high and low parts: KT laid out as the backward's UT (K = i, N = ht), UTᵀ as its KTᵀ
//     (K = ht, N = j); then KC [8] (fp32).
constexpr int TOK_UT = 0, TOK_KT = TOK_UT + 4 * 32 * 2, TOK_FKT = TOK_KT + 8 * 32, TOK_FKT_LO = TOK_FKT + 4 * 32 * 2;
constexpr int TOK_FUT = TOK_FKT_LO + 4 * 32 * 2, TOK_FUT_LO = TOK_FUT + 8 * 32, TOK_KC = TOK_FUT_LO + 8 * 32;
constexpr int TOK_FRAME = TOK_KC + 8;
static_assert(TOK_FRAME == 1544, "update TOK_FRAME in src/cuda/attention.rs");
// Their gradients, summed over the frame's pairs: per frame (DTOK_FRAME floats) in the partial slices from
// PART_TAIL and in deform_reduce's output, as block_dw_narrow and block_dw store them: dKT as [8][64]
// (ht-major), dKC [8], dUT [64][8]. dbo goes with the chain's gradients.
constexpr int DTOK_K = 0, DTOK_KC = 8 * D, DTOK_UT = 8 * D + 8, DTOK_FRAME = DTOK_UT + 8 * D;

// acc[j] += A·B_j over KS k-steps (B from packed fragments w: [NT][KS][32]; fp16 operands when F16).
template <int NT, int KS, bool F16>
__device__ __forceinline__ void warp_mma(float (&acc)[NT][4], const uint32_t (&a)[KS][4], const uint2* __restrict__ w) {
    const int lane = threadIdx.x & 31;
    // k-steps outside: consecutive products go to different tiles, so none waits for the previous one.
#pragma unroll
    for (int s = 0; s < KS; ++s)
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            const uint2 b2 = w[(j * KS + s) * 32 + lane];  // w: global (read-only) or shared
            const uint32_t b[2] = {b2.x, b2.y};
            mma_m16n8k16<F16>(acc[j], a[s], b);
        }
}

// The A fragments (k-steps of 16 columns) of a 16 × 8·NT accumulator, bf16 (or, F16, fp16; LOW: the fp16
// of what fp16 rounding leaves, v − fp16(v); RELU: of max(v, 0)); an odd last tile is padded with 0.
template <int NT, bool F16, bool LOW = false, bool RELU = false>
__device__ __forceinline__ void to_frags(const float (&c)[NT][4], uint32_t (&a)[(NT + 1) / 2][4]) {
    static_assert(!(LOW && RELU), "to_frags: no ReLU of low parts");
    auto pack = [](float lo, float hi) { return F16 ? (RELU ? pack_f16<true>(lo, hi) : pack_f16_part<LOW>(lo, hi)) : pack_bf16<RELU>(lo, hi); };
#pragma unroll
    for (int s = 0; s < (NT + 1) / 2; ++s) {
        a[s][0] = pack(c[2 * s][0], c[2 * s][1]);
        a[s][1] = pack(c[2 * s][2], c[2 * s][3]);
        if (2 * s + 1 < NT) {
            a[s][2] = pack(c[2 * s + 1][0], c[2 * s + 1][1]);
            a[s][3] = pack(c[2 * s + 1][2], c[2 * s + 1][3]);
        } else {
            a[s][2] = a[s][3] = 0u;
        }
    }
}

// Column of accumulator element (tile j, element e) for this lane; its row is g + 8·(e >> 1).
__device__ __forceinline__ int acc_col(int j, int e) { return 8 * j + 2 * (threadIdx.x & 3) + (e & 1); }

// acc = bias (columns ≥ valid, or a null bias: 0).
template <int NT>
__device__ __forceinline__ void acc_init(float (&acc)[NT][4], const float* __restrict__ bias, int valid) {
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int c = acc_col(j, e);
            acc[j][e] = bias && c < valid ? __ldg(bias + c) : 0.0f;
        }
}

// acc = bias over all 8·NT columns, bias 8-byte aligned: one float2 load per column tile (the lane's two
// columns, the same for both its rows), half the loads of acc_init and no column tests. SHARED: bias is in
// shared memory (else read through the read-only cache).
template <int NT, bool SHARED = false>
__device__ __forceinline__ void acc_init_full(float (&acc)[NT][4], const float* __restrict__ bias) {
#pragma unroll
    for (int j = 0; j < NT; ++j) {
        const float2* at = reinterpret_cast<const float2*>(bias + acc_col(j, 0));
        const float2 b = SHARED ? *at : __ldg(at);
        acc[j][0] = acc[j][2] = b.x;
        acc[j][1] = acc[j][3] = b.y;
    }
}
static_assert(P_BQ % 2 == 0 && P_BO % 2 == 0 && P_FFN0B % 2 == 0 && P_FFN1B % 2 == 0 && P_HEAD0B % 2 == 0 && HID % 2 == 0,
              "acc_init_full's biases are read as float2");

// acc += d·W for a gradient tile d against a layer's transposed fragments (bf16 operands).
template <int NT, int NTD>
__device__ __forceinline__ void grad_mma(float (&acc)[NT][4], const float (&d)[NTD][4], const uint2* __restrict__ w) {
    uint32_t a[(NTD + 1) / 2][4];
    to_frags<NTD, false>(d, a);
    warp_mma<NT, (NTD + 1) / 2, false>(acc, a, w);
}

__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// One exchange of rows_reduce_scatter: lanes with lane bit HALF set keep values [HALF, 2·HALF) and send
// [0, HALF) to the partner lane ^ HALF, which keeps those; both add what they receive.
template <int HALF>
__device__ __forceinline__ void scatter_half(float (&v)[32]) {
    const bool upper = threadIdx.x & HALF;
#pragma unroll
    for (int i = 0; i < HALF; ++i) {
        const float send = upper ? v[i] : v[i + HALF];
        v[i] = (upper ? v[i + HALF] : v[i]) + __shfl_xor_sync(0xffffffffu, send, HALF);
    }
}

// Column sums over the warp's 16 rows of 32 values at once, as a reduce-scatter over the 8 lanes of a
// quad column (lane bits 4, 3, 2 in turn), 28 shuffles where a butterfly per value takes 96. In: v[k] =
// the sum of this lane's rows g and g + 8 of value k. Out: v[i], i < 4, holds the sum of value 4g + i over
// all 16 rows (g = lane / 4).
__device__ __forceinline__ void rows_reduce_scatter(float (&v)[32]) {
    scatter_half<16>(v);
    scatter_half<8>(v);
    scatter_half<4>(v);
}

// Stores Σ over the warp's 16 rows of two sets of 16 accumulator columns to the warp's own sums (no other
// warp writes them): v[2j + e] is this lane's rows-sum of column acc_col(j, e) for sa, v[16 + 2j + e] the
// same for sb.
__device__ __forceinline__ void store_column_sums(float (&v)[32], float* sa, float* sb) {
    rows_reduce_scatter(v);
    const int lane = threadIdx.x & 31, g = lane >> 2;
    float* dst = g < 4 ? sa : sb;
#pragma unroll
    for (int i = 0; i < 4; ++i) dst[acc_col(2 * (g & 3) + i / 2, i & 1)] = v[i];
}

// LayerNorm over the 64 columns of each row, in place: x → x̂; y = γ⊙x̂ + β (γ, β in shared memory); rstd per
// row (r = 0: row g).
__device__ __forceinline__ void ln_acc(float (&x)[8][4], const float* gamma, const float* beta, float (&y)[8][4], float (&rstd)[2]) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; ++j) s += x[j][2 * r] + x[j][2 * r + 1];
        const float mean = quad_sum(s) * (1.0f / D);
        float v = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 2 * r; e < 2 * r + 2; ++e) {
                x[j][e] -= mean;
                v += x[j][e] * x[j][e];
            }
        rstd[r] = 1.0f / sqrtf(quad_sum(v) * (1.0f / D) + 1e-12f);
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 2 * r; e < 2 * r + 2; ++e) x[j][e] *= rstd[r];
    }
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int c = acc_col(j, e);
            y[j][e] = gamma[c] * x[j][e] + beta[c];
        }
}

// LayerNorm's backward in place: d ← rstd·(γ⊙d − mean(γ⊙d) − x̂·mean(γ⊙d⊙x̂)) per row.
__device__ __forceinline__ void ln_acc_vjp(float (&d)[8][4], const float (&xh)[8][4], const float (&rstd)[2],
                                           const float* __restrict__ gamma) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        float m1 = 0.0f, m2 = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 2 * r; e < 2 * r + 2; ++e) {
                d[j][e] *= __ldg(gamma + acc_col(j, e));
                m1 += d[j][e];
                m2 += d[j][e] * xh[j][e];
            }
        m1 = quad_sum(m1) * (1.0f / D);
        m2 = quad_sum(m2) * (1.0f / D);
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 2 * r; e < 2 * r + 2; ++e) d[j][e] = rstd[r] * (d[j][e] - m1 - xh[j][e] * m2);
    }
}

// The warp's 16 Gaussians of frame b: rows g and g + 8 (clamped to N − 1 past the end, then invalid).
struct TcRows {
    int n[2];
    bool valid[2];
    long long pair[2];  // b·N + n
};

__device__ __forceinline__ TcRows tc_rows(int n_first, int b, int N) {
    const int g = (threadIdx.x & 31) >> 2;
    TcRows rows;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int n = n_first + g + 8 * r;
        rows.valid[r] = n < N;
        rows.n[r] = min(n, N - 1);
        rows.pair[r] = (long long)b * N + rows.n[r];
    }
    return rows;
}

// f rows of the warp (fp32, accumulator layout).
__device__ __forceinline__ void load_features(const float* __restrict__ f, const TcRows& rows, float (&x)[8][4]) {
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const float2 v = __ldg(reinterpret_cast<const float2*>(f + (long long)rows.n[r] * D + acc_col(j, 0)));
            x[j][2 * r] = v.x;
            x[j][2 * r + 1] = v.y;
        }
}

// The kept bits (bit 4j + e: this lane's element (j, e)) of one dropout site (site_row0: 0, or P after the
// FFN) for the warp's rows: the lane's columns 8j + 2t, + 1 are one element pair (one hash), and each row's
// 32 pairs share their index's upper half (drop_base once per row).
__device__ __forceinline__ uint32_t lane_kept(const TcRows& rows, DropArgs dr, long long site_row0) {
    if (dr.threshold == 0) return 0xffffffffu;
    const int t = threadIdx.x & 3;
    uint32_t kept = 0;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const uint64_t first = (uint64_t)(site_row0 + rows.pair[r]) * (D / 2);  // the row's first pair
        const uint32_t base = drop_base(dr.key, (uint32_t)(first >> 32));
#pragma unroll
        for (int j = 0; j < 8; ++j) kept |= drop_kept2(base, dr.threshold, (uint32_t)first + 4 * j + t) << (4 * j + 2 * r);
    }
    return kept;
}

// x += drop ⊙ y from lane_kept's bits. The branch on dropout off (every bit set, factor 1) also splits
// ptxas's scheduling region: with the kept bits read from memory and no such split, deform_fwd_chain_tc
// spilled 1256 bytes per thread instead of 424 (stop 27).
__device__ __forceinline__ void add_kept(float (&x)[8][4], const float (&y)[8][4], uint32_t kept, DropArgs dr) {
    if (dr.threshold == 0) {
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) x[j][e] += y[j][e];
    } else {
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) x[j][e] += ((kept >> (4 * j + e)) & 1 ? dr.scale : 0.0f) * y[j][e];
    }
}

// out = drop ⊙ d, the gradient through a dropout, from lane_kept's bits (the tape's: no hashing again).
__device__ __forceinline__ void apply_kept(const float (&d)[8][4], uint32_t kept, DropArgs dr, float (&out)[8][4]) {
    const float factor = dr.threshold == 0 ? 1.0f : dr.scale;  // drop_factor's value for a kept element
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) out[j][e] = (kept >> (4 * j + e)) & 1 ? d[j][e] * factor : 0.0f;
}

// The attention of the warp's rows (features x, the accumulator layout) on one frame's projected tokens tok
// (TOK_*): scores x·KT + KC, their softmax p over each head's 4 tokens, and att = bo + p·UTᵀ (bo: the
// out-projection's bias), each product split (hi·Thi + lo·Thi + hi·Tlo: 2^-20 of it left out, as
// split_by_rows'). p is in the mma C layout: rows g, g + 8, (h, t) columns 2t', 2t' + 1 (t' = lane % 4,
// so lanes t' = 2h, 2h + 1 hold head h), as the tape keeps it and tc_attention_bwd reads it. bo: in shared
// memory.
__device__ __forceinline__ void tc_attention(const float (&x)[8][4], const uint32_t* __restrict__ tok, const float* bo,
                                             float (&p)[1][4], float (&att)[8][4]) {
    const int lane = threadIdx.x & 31;
    {
        uint32_t a_hi[4][4], a_lo[4][4];
        to_frags<8, true>(x, a_hi);
        to_frags<8, true, true>(x, a_lo);
        const float2 kc = __ldg(reinterpret_cast<const float2*>(tok + TOK_KC) + (lane & 3));
        p[0][0] = p[0][2] = kc.x;
        p[0][1] = p[0][3] = kc.y;
        const uint2* kt = reinterpret_cast<const uint2*>(tok + TOK_FKT) + lane;
        const uint2* kt_lo = reinterpret_cast<const uint2*>(tok + TOK_FKT_LO) + lane;
#pragma unroll
        for (int s = 0; s < 4; ++s) {
            const uint2 hi = __ldg(kt + 32 * s), lo = __ldg(kt_lo + 32 * s);
            const uint32_t b_hi[2] = {hi.x, hi.y}, b_lo[2] = {lo.x, lo.y};
            mma_m16n8k16<true>(p[0], a_hi[s], b_hi);
            mma_m16n8k16<true>(p[0], a_lo[s], b_hi);
            mma_m16n8k16<true>(p[0], a_hi[s], b_lo);
        }
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {  // the head's other two tokens are in the neighbouring lane
        float mx = fmaxf(p[0][2 * r], p[0][2 * r + 1]);
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        const float e0 = expf(p[0][2 * r] - mx), e1 = expf(p[0][2 * r + 1] - mx);
        float sum = e0 + e1;
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        p[0][2 * r] = e0 / sum;
        p[0][2 * r + 1] = e1 / sum;
    }
    // A = p over k = ht (the k-step's upper half 0), B = UTᵀ's column tiles.
    const uint32_t a_hi[4] = {pack_f16(p[0][0], p[0][1]), pack_f16(p[0][2], p[0][3]), 0u, 0u};
    const uint32_t a_lo[4] = {pack_f16_part<true>(p[0][0], p[0][1]), pack_f16_part<true>(p[0][2], p[0][3]), 0u, 0u};
    acc_init_full<8, true>(att, bo);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        const uint32_t b_hi[2] = {__ldg(tok + TOK_FUT + 32 * j + lane), 0u};
        const uint32_t b_lo[2] = {__ldg(tok + TOK_FUT_LO + 32 * j + lane), 0u};
        mma_m16n8k16<true>(att[j], a_hi, b_hi);
        mma_m16n8k16<true>(att[j], a_lo, b_hi);
        mma_m16n8k16<true>(att[j], a_hi, b_lo);
    }
}

// The attention's backward for the warp's rows, from d_att (dL/d att) and the weights p (both in the mma
// C layout: this lane's rows g, g + 8 and (h, t) columns 2t', 2t' + 1, t' = lane % 4, so head h spans
// lanes t' = 2h, 2h + 1), on the tensor cores (bf16 operands, as the chain's other d_x products) with the
// frame's projected tokens tok: d_p = d_att·UT, the scores' gradients ds (the softmax's backward) and d_f
// += ds·KTᵀ (the query's share of d_f).
__device__ __forceinline__ void tc_attention_bwd(const float (&d_att)[8][4], const float (&p)[1][4],
                                                 const uint32_t* __restrict__ tok, float (&ds)[1][4], float (&d_f)[8][4]) {
    const int lane = threadIdx.x & 31;
    ds[0][0] = ds[0][1] = ds[0][2] = ds[0][3] = 0.0f;
    grad_mma<1, 8>(ds, d_att, reinterpret_cast<const uint2*>(tok + TOK_UT));  // d_p
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        float dot = p[0][2 * r] * ds[0][2 * r] + p[0][2 * r + 1] * ds[0][2 * r + 1];
        dot += __shfl_xor_sync(0xffffffffu, dot, 1);  // the head's other two tokens
#pragma unroll
        for (int e = 0; e < 2; ++e) ds[0][2 * r + e] = p[0][2 * r + e] * (ds[0][2 * r + e] - dot);
    }
    // A = ds over k = ht (k-steps' upper half 0), B = KTᵀ's column tiles.
    const uint32_t a[4] = {pack_bf16(ds[0][0], ds[0][1]), pack_bf16(ds[0][2], ds[0][3]), 0u, 0u};
    const uint32_t* kt = tok + TOK_KT;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        const uint32_t bb[2] = {__ldg(kt + j * 32 + lane), 0u};
        mma_m16n8k16<false>(d_f[j], a, bb);
    }
}

// Per-lane save and restore (global memory, evict-first: the backward reads it once) of a 16 × 64
// accumulator as fp16 pairs: elements 2k, 2k + 1 of lane l in word k·32 + l, so that each of the 16
// accesses is one coalesced line. For the LayerNorms' x̂ (|x̂| ≤ √63 < 8: fp16's 2^-11 relative rounding,
// no overflow): 512 bytes per pair less of the tape than fp32.
__device__ __forceinline__ void save_acc_f16_stream(uint32_t* s, const float (&x)[8][4]) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int k = 0; k < 16; ++k) __stcs(s + k * 32 + lane, pack_f16(x[k / 2][2 * (k % 2)], x[k / 2][2 * (k % 2) + 1]));
}
__device__ __forceinline__ void load_acc_f16(const uint32_t* s, float (&x)[8][4]) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int k = 0; k < 16; ++k) {
        const uint32_t w = __ldcs(s + k * 32 + lane);
        const float2 v = __half22float2(*reinterpret_cast<const __half2*>(&w));
        x[k / 2][2 * (k % 2)] = v.x;
        x[k / 2][2 * (k % 2) + 1] = v.y;
    }
}

// Stores a 16 × 8·NT accumulator as 16 bf16 rows (g, g + 8) of stride ld from `rows` (STREAM: to global
// memory, evict-first).
template <int NT, bool STREAM = false, bool RELU = false>
__device__ __forceinline__ void store_rows_bf16(uint16_t* rows, int ld, const float (&c)[NT][4]) {
    const int row = (threadIdx.x & 31) >> 2;
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            uint32_t* at = reinterpret_cast<uint32_t*>(rows + (row + 8 * r) * ld + acc_col(j, 0));
            const uint32_t v = pack_bf16<RELU>(c[j][2 * r], c[j][2 * r + 1]);
            if (STREAM) __stcs(at, v);
            else *at = v;
        }
}

// The warp's rows (warp·16 + g, + 8) of a [TC_TILE][ld] shared tile, as store_rows_bf16.
template <int NT, bool RELU = false>
__device__ __forceinline__ void stage_bf16(uint16_t* tile, int ld, const float (&c)[NT][4]) {
    store_rows_bf16<NT, false, RELU>(tile + (threadIdx.x >> 5) * 16 * ld, ld, c);
}

// What the backward keeps of the forward chain in registers (x̂1, x̂2 stay in the tape: load_acc_f16).
struct TcChain {
    float rstd1[2], rstd2[2];
    uint64_t z_pos;           // FFN hidden > 0, one bit per accumulator element (tile j, element e: bit 4j + e)
    uint32_t kept1, kept2;    // the dropouts after the out-projection and after the FFN (lane_kept)
};

// deform_fwd_chain_tc's tape: per warp tile (16 Gaussians of one frame; tile T = item·8 + warp with
// item = n_tile·B + b, the backward's work item) what deform_fwd_heads_tc and the backward need of the
// chain up to g, so that they read it (15 KB per tile, 378 MB at N = 50 000, B = 8) instead of
// recomputing it (22 % of the backward's time at 423c773), and the heads' ReLU masks (deform_fwd_heads_tc
// adds them), which the backward's fp16 recompute of the heads must not decide again. deform_bwd_heads_tc
// replaces g by d_h2 for deform_bwd_chain_tc.
// Words, 16-byte aligned sections:
constexpr int TAPE_G = 0;                         // g = ReLU(h2) fp32 [8][32 lanes] float4: lane's acc elements;
                                                  // then d_h2 as bf16 pairs [8][32 lanes] uint2
constexpr int TAPE_XH = TAPE_G + 32 * 32;         // x̂1, x̂2 fp16 pairs [2][16][32 lanes] (save_acc_f16_stream)
constexpr int TAPE_Z = TAPE_XH + 2 * 16 * 32;     // FFN hidden z, bf16 [16 rows][128]
constexpr int TAPE_KEEP = TAPE_Z + 16 * FFN / 2;  // [32 lanes][8]: rstd1[2], rstd2[2], z_pos, kept1, kept2
constexpr int TAPE_HID = TAPE_KEEP + 32 * 8;      // the heads' ReLU decisions, u64 [5][32 lanes] (tc_head_hidden)
constexpr int TAPE_P = TAPE_HID + 5 * 32 * 2;     // the attention weights, fp32 [32 lanes] float4 (mma C layout)
constexpr int TAPE_WORDS = TAPE_P + 32 * 4;
static_assert(TAPE_WORDS == 3776, "tape layout changed: update TAPE_WORDS in src/cuda/attention.rs");

// Warp `warp`'s record for work item `item` = n_tile·B + b.
__device__ __forceinline__ long long tape_record(int item, int warp) {
    return ((long long)item * TC_WARPS + warp) * TAPE_WORDS;
}

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const uint16_t* p) {
    const uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const uint16_t* p) {
    const uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}
__device__ __forceinline__ void ldsm_x2_trans(uint32_t (&r)[2], const uint16_t* p) {
    const uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
}

// The tensor-core kernels' weights: fp16 copies (rounded to nearest even, so that deform_bwd_heads_tc's
// recompute of the forward gives the forward's values), row-major in shared memory, read in both
// orientations: as rows for the forward's products y = x·Wᵀ, as columns for the backward's d_x = d_y·W.
// Each matrix is stored as 64-column halves [half][rows][64] of 128-byte rows,
// whose 16-byte chunk c lies at chunk c ^ (row & 7): Hopper's 128-byte swizzle, which wgmma reads as
// K-major (rows) or MN-major (columns) operands, and which keeps ldmatrix's 8 rows of an 8 × 8 matrix in
// different banks. The F_d heads' (head_weights_to_shared): V0 of a head is one half [128][64]; V1 two,
// V1_HALF apart. V1's rows: head h from
// V1_ROW[h], 16 rows for heads 0–3 (zero past HEAD_OUT: the d_x product reads one 16-row k-step) and 48
// for head 4.
__constant__ int V1_ROW[5] = {0, 16, 32, 48, 64};
constexpr int V1_ROWS = 4 * 16 + 48;
// The head whose rows of V1's copy hold `row`, and the head's output there (past HEAD_OUT[h]: padding).
struct V1Row {
    int h, local;
    __device__ explicit V1Row(int row) : h(row < 64 ? row / 16 : 4), local(row - V1_ROW[h]) {}
    __device__ bool used() const { return local < HEAD_OUT[h]; }
};
constexpr int V1_HALF = V1_ROWS * 64;  // halves between V1's two 64-column halves

// Chunk `chunk` (8 halves, over both halves of a 128-column matrix) of row `row` of such a matrix.
template <typename T>
__device__ __forceinline__ T* swizzled(T* m, int half, int row, int chunk) {
    return m + (chunk >> 3) * half + row * 64 + (((chunk & 7) ^ (row & 7)) << 3);
}

// 8 consecutive weights (0 when src is null) as fp16 at dst (a 16-byte chunk of a copy), or, LOW, the fp16 of
// what fp16 rounding leaves of each, w − fp16(w) (the split products' low parts).
template <bool LOW = false>
__device__ __forceinline__ void chunk_to_f16(uint16_t* dst, const float* __restrict__ src) {
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    const float4 a = src ? __ldg(reinterpret_cast<const float4*>(src)) : zero;
    const float4 b = src ? __ldg(reinterpret_cast<const float4*>(src) + 1) : zero;
    *reinterpret_cast<uint4*>(dst) = make_uint4(pack_f16_part<LOW>(a.x, a.y), pack_f16_part<LOW>(a.z, a.w),
                                                pack_f16_part<LOW>(b.x, b.y), pack_f16_part<LOW>(b.z, b.w));
}

// A row-major weight [rows][cols] (cols 64 or 128) from params into such a copy m (halves `half` apart),
// block-wide.
template <bool LOW = false>
__device__ __forceinline__ void weight_to_shared(uint16_t* m, int half, const float* __restrict__ w, int rows, int cols) {
    for (int e = threadIdx.x; e < rows * cols / 8; e += blockDim.x) {
        const int row = e / (cols / 8), chunk = e % (cols / 8);
        chunk_to_f16<LOW>(swizzled(m, half, row, chunk), w + row * cols + 8 * chunk);
    }
}

// The heads' biases in shared memory (fp32, HEAD_BIASES floats): their first layers' c0 [5·128], then
// their second layers' c1 in V1's rows (V1_ROW; 0 past HEAD_OUT), so that tc_head_out reads whole column
// tiles of them. From shared memory they take no slot of the global-memory queue, which the backward's
// reductions keep full; from L1 with a column test each, the first layers' were 21 % of
// deform_fwd_heads_tc's executed instructions and 15 % of its stall samples.
constexpr int HEAD_C1 = 5 * HID, HEAD_BIASES = HEAD_C1 + V1_ROWS;

// Fills the heads' copies and biases from params (block-wide; a barrier follows before their first use),
// and, unless v0_lo is null, V0's low parts in V0's layout (the forward's split decisions: tc_head_hidden).
__device__ __forceinline__ void head_weights_to_shared(const float* __restrict__ params, uint16_t* v0, uint16_t* v1,
                                                       float* biases, uint16_t* v0_lo = nullptr) {
    for (int e = threadIdx.x; e < HEAD_BIASES; e += blockDim.x) {
        if (e < HEAD_C1) {
            biases[e] = __ldg(params + P_HEAD0B + e);
        } else {
            const V1Row r(e - HEAD_C1);
            biases[e] = r.used() ? __ldg(params + P_HEAD1B + HEAD_OFF[r.h] + r.local) : 0.0f;
        }
    }
    weight_to_shared(v0, 0, params + P_HEAD0W, 5 * HID, D);
    if (v0_lo) weight_to_shared<true>(v0_lo, 0, params + P_HEAD0W, 5 * HID, D);
    for (int e = threadIdx.x; e < V1_ROWS * HID / 8; e += blockDim.x) {
        const int row = e / (HID / 8), chunk = e % (HID / 8);
        const V1Row r(row);
        chunk_to_f16(swizzled(v1, V1_HALF, row, chunk),
                     r.used() ? params + P_HEAD1W + (HEAD_OFF[r.h] + r.local) * HID + 8 * chunk : nullptr);
    }
#if TC_WGMMA
    fence_stores_for_wgmma();
#endif
}

// deform_fwd_chain_tc's copies (bytes from its shared memory's start), as the heads': the FFN's weights,
// each followed by its low parts (split_by_rows). FFN1 [64][128] is two 64-column halves, FC_FFN1_HALF
// halves apart.
constexpr int FC_FFN0 = 0, FC_FFN0_LO = FC_FFN0 + FFN * D * 2, FC_FFN1 = FC_FFN0_LO + FFN * D * 2, FC_FFN1_LO = FC_FFN1 + D * FFN * 2;
constexpr int FC_FFN1_HALF = D * 64;
// Then the chain's vectors (fp32): bo, LayerNorm 1's γ and β, the FFN's biases, LayerNorm 2's γ and β (from
// shared memory they take no slot of the global-memory queue; from L1 the LayerNorms' loads and the biases'
// were 7 % of the kernel's stall samples).
constexpr int FC_VEC = FC_FFN1_LO + D * FFN * 2;
constexpr int FV_BO = 0, FV_LN1G = D, FV_LN1B = 2 * D, FV_FFN0B = 3 * D, FV_FFN1B = FV_FFN0B + FFN, FV_LN2G = FV_FFN1B + D;
constexpr int FV_LN2B = FV_LN2G + D, FV_FLOATS = FV_LN2B + D;
constexpr int TC_FWD_CHAIN_SMEM = FC_VEC + FV_FLOATS * 4;
static_assert(P_LN1G == P_BO + D && P_LN1B == P_LN1G + D && P_LN2G == P_FFN1B + D && P_LN2B == P_LN2G + D,
              "chain_weights_to_shared copies the vectors in three runs");
static_assert(FC_FFN0_LO % 1024 == 0 && FC_FFN1 % 1024 == 0 && TC_FWD_CHAIN_SMEM == 67584,
              "the 128-byte swizzle's period; update DEF_FWD_CHAIN_TC_SMEM in src/cuda/attention.rs");
__device__ __forceinline__ void chain_weights_to_shared(const float* __restrict__ params, unsigned char* smem) {
    auto at = [&](int offset) { return reinterpret_cast<uint16_t*>(smem + offset); };
    weight_to_shared(at(FC_FFN0), 0, params + P_FFN0W, FFN, D);
    weight_to_shared<true>(at(FC_FFN0_LO), 0, params + P_FFN0W, FFN, D);
    weight_to_shared(at(FC_FFN1), FC_FFN1_HALF, params + P_FFN1W, D, FFN);
    weight_to_shared<true>(at(FC_FFN1_LO), FC_FFN1_HALF, params + P_FFN1W, D, FFN);
    float* vec = reinterpret_cast<float*>(smem + FC_VEC);
    for (int e = threadIdx.x; e < FV_FLOATS; e += blockDim.x)
        vec[e] = __ldg(params + (e < FV_FFN0B ? P_BO + e : e < FV_FFN1B ? P_FFN0B + e - FV_FFN0B : P_FFN1B + e - FV_FFN1B));
#if TC_WGMMA
    fence_stores_for_wgmma();
#endif
}

#if TC_WGMMA
// Hopper: each product is the warpgroup's (4 warps, 64 rows: warp w of it supplies rows 16w … from its A
// fragments, whose layout is mma.sync's) wgmma over the copies above, which reads B from shared memory
// itself: one instruction per k-step instead of an ldmatrix and NT/2 mma.sync per pair of 8-column tiles.
// The accumulators keep mma.sync's C layout (tile j, element e). The warps of a warpgroup run the same
// products in the same order (the forward kernels' take consecutive warp tiles, with uniform trip
// counts), so they stay aligned.

// A shared-memory matrix descriptor: start, leading (K) and stride (M or N) byte offsets, and the layout:
// the 128-byte swizzle (the weight copies) or none (core matrices: the staged tiles).
__device__ __forceinline__ uint64_t wgmma_desc(const uint16_t* start, uint32_t lead_bytes, uint32_t stride_bytes,
                                               bool swizzle128 = true) {
    const uint32_t a = (uint32_t)__cvta_generic_to_shared(start);
    return (uint64_t)((a & 0x3FFFF) >> 4) | (uint64_t)((lead_bytes & 0x3FFFF) >> 4) << 16 |
           (uint64_t)((stride_bytes & 0x3FFFF) >> 4) << 32 | (swizzle128 ? 1ull << 62 : 0ull);
}
// The descriptor of the same layout `bytes` (a multiple of 16) further on: only the start field moves, and
// it cannot carry out (shared addresses stay below 2^18). One add per k-step where building each step's
// descriptor anew took five uniform instructions (13 % of deform_bwd_heads_tc's executed instructions).
__device__ __forceinline__ uint64_t desc_advance(uint64_t desc, uint32_t bytes) {
    return (desc >> 32) << 32 | (uint32_t)((uint32_t)desc + (bytes >> 4));
}

// acc = A·B + (add ? acc : 0) for one k-step: A the warp's fp16 fragments, B (16 × 8·NT) by descriptor,
// K-major (TRANS_B false: B's columns are the matrix's rows) or MN-major (true: its rows).
template <int NT, bool TRANS_B>
__device__ __forceinline__ void wgmma_step(float (&acc)[NT][4], const uint32_t (&a)[4], uint64_t desc, uint32_t add);
#define ACC4(j) "+f"(acc[j][0]), "+f"(acc[j][1]), "+f"(acc[j][2]), "+f"(acc[j][3])  // column tile j's registers
template <>
__device__ __forceinline__ void wgmma_step<1, false>(float (&acc)[1][4], const uint32_t (&a)[4], uint64_t desc, uint32_t add) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %9, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16 {%0, %1, %2, %3}, {%4, %5, %6, %7}, %8, p, 1, 1, 0;\n}\n"
                 : ACC4(0)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(add));
}
template <>
__device__ __forceinline__ void wgmma_step<6, false>(float (&acc)[6][4], const uint32_t (&a)[4], uint64_t desc, uint32_t add) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %29, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n48k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23}, {%24, %25, %26, %27}, %28, p, 1, 1, 0;\n}\n"
                 : ACC4(0), ACC4(1), ACC4(2), ACC4(3), ACC4(4), ACC4(5)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(add));
}
template <>
__device__ __forceinline__ void wgmma_step<8, false>(float (&acc)[8][4], const uint32_t (&a)[4], uint64_t desc, uint32_t add) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
                 : ACC4(0), ACC4(1), ACC4(2), ACC4(3), ACC4(4), ACC4(5), ACC4(6), ACC4(7)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(add));
}
template <>
__device__ __forceinline__ void wgmma_step<16, false>(float (&acc)[16][4], const uint32_t (&a)[4], uint64_t desc, uint32_t add) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"
                 : ACC4(0), ACC4(1), ACC4(2), ACC4(3), ACC4(4), ACC4(5), ACC4(6), ACC4(7), ACC4(8), ACC4(9), ACC4(10), ACC4(11), ACC4(12), ACC4(13), ACC4(14), ACC4(15)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(add));
}
template <>
__device__ __forceinline__ void wgmma_step<8, true>(float (&acc)[8][4], const uint32_t (&a)[4], uint64_t desc, uint32_t add) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
                 : ACC4(0), ACC4(1), ACC4(2), ACC4(3), ACC4(4), ACC4(5), ACC4(6), ACC4(7)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(add));
}
template <>
__device__ __forceinline__ void wgmma_step<16, true>(float (&acc)[16][4], const uint32_t (&a)[4], uint64_t desc, uint32_t add) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
                 : ACC4(0), ACC4(1), ACC4(2), ACC4(3), ACC4(4), ACC4(5), ACC4(6), ACC4(7), ACC4(8), ACC4(9), ACC4(10), ACC4(11), ACC4(12), ACC4(13), ACC4(14), ACC4(15)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(add));
}
// acc = A·B + (add ? acc : 0) for one k-step, bf16, both from shared memory by descriptor, both MN-major
// (A's rows and B's columns contiguous: the transposes of staged tiles). add 0 leaves acc unread (the
// first k-step: no zeroing of the accumulators).
template <int NT>
__device__ __forceinline__ void wgmma_ss_bf16(float (&acc)[NT][4], uint64_t desc_a, uint64_t desc_b, uint32_t add);
template <>
__device__ __forceinline__ void wgmma_ss_bf16<1>(float (&acc)[1][4], uint64_t desc_a, uint64_t desc_b, uint32_t add) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %6, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16 {%0, %1, %2, %3}, %4, %5, p, 1, 1, 1, 1;\n}\n"
                 : ACC4(0)
                 : "l"(desc_a), "l"(desc_b), "r"(add));
}
template <>
__device__ __forceinline__ void wgmma_ss_bf16<2>(float (&acc)[2][4], uint64_t desc_a, uint64_t desc_b, uint32_t add) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7}, %8, %9, p, 1, 1, 1, 1;\n}\n"
                 : ACC4(0), ACC4(1)
                 : "l"(desc_a), "l"(desc_b), "r"(add));
}
template <>
__device__ __forceinline__ void wgmma_ss_bf16<9>(float (&acc)[9][4], uint64_t desc_a, uint64_t desc_b, uint32_t add) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %38, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n72k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35}, %36, %37, p, 1, 1, 1, 1;\n}\n"
                 : ACC4(0), ACC4(1), ACC4(2), ACC4(3), ACC4(4), ACC4(5), ACC4(6), ACC4(7), ACC4(8)
                 : "l"(desc_a), "l"(desc_b), "r"(add));
}
#undef ACC4
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.commit_group.sync.aligned;\nwgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}
// The same for a product left running (WAIT false) while other work went on: acc is tied to the wait (an
// empty asm that "writes" each element after it), so that no read of acc moves above it.
template <int NT>
__device__ __forceinline__ void wgmma_wait(float (&acc)[NT][4]) {
    wgmma_wait();
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(acc[j][e])::"memory");
}
#endif

// acc[j] += A·Mᵀ over KS k-steps, fp16: M [8·NT rows][16·KS] one of the copies above (half: its halves'
// distance), a row per output column (a forward product). Per column tile the k-steps go in increasing
// order, as warp_mma's. WAIT false (wgmma): the products are left running, to be waited for with the
// next product's (which must be into the same acc).
template <int NT, int KS, bool WAIT = true>
__device__ __forceinline__ void mma_by_rows(float (&acc)[NT][4], const uint32_t (&a)[KS][4], const uint16_t* m, int half) {
#if TC_WGMMA
    wgmma_fence();
    const uint64_t desc = wgmma_desc(m, 16, 1024);
#pragma unroll
    for (int s = 0; s < KS; ++s) wgmma_step<NT, false>(acc, a[s], desc_advance(desc, 2 * (swizzled(m, half, 0, 2 * s) - m)), 1);
    if (WAIT) wgmma_wait();
#else
    const int lane = threadIdx.x & 31;
    static_assert(KS % 2 == 0, "mma_by_rows: k-steps in pairs");
#pragma unroll
    for (int s = 0; s < KS; s += 2)
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            uint32_t b[4];  // k-steps s and s + 1 of column tile j: chunks 2s … 2s + 3 of rows 8j …
            ldsm_x4(b, swizzled(m, half, 8 * j + (lane & 7), 2 * s + (lane >> 3)));
            const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
            mma_m16n8k16<true>(acc[j], a[s], b0);
            mma_m16n8k16<true>(acc[j], a[s + 1], b1);
        }
#endif
}

// acc[j] = A·M over KS k-steps, fp16 (acc's values unread): M [16·KS rows][8·NT] one of the copies above, a
// row per k (a backward d_x = d_y·W product); NT even. WAIT false (wgmma): left running, for wgmma_wait.
template <int NT, int KS, bool WAIT = true>
__device__ __forceinline__ void mma_by_cols(float (&acc)[NT][4], const uint32_t (&a)[KS][4], const uint16_t* m, int half) {
#if TC_WGMMA
    wgmma_fence();
    const uint64_t desc = wgmma_desc(m, 2 * half, 1024);
#pragma unroll
    for (int s = 0; s < KS; ++s) wgmma_step<NT, true>(acc, a[s], desc_advance(desc, 2 * 16 * s * 64), s > 0);
    if (WAIT) wgmma_wait();
#else
    acc_init<NT>(acc, nullptr, 0);
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int s = 0; s < KS; ++s)
#pragma unroll
        for (int j = 0; j < NT; j += 2) {
            uint32_t b[4];  // column tiles j and j + 1 of k-step s
            ldsm_x4_trans(b, swizzled(m, half, 16 * s + 8 * ((lane >> 3) & 1) + (lane & 7), j + (lane >> 4)));
            const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
            mma_m16n8k16<true>(acc[j], a[s], b0);
            mma_m16n8k16<true>(acc[j + 1], a[s], b1);
        }
#endif
}

// acc += x·Mᵀ for a split layer of 64 inputs, M [8·NT rows][64] one of the copies above and m_lo its low
// parts: x = hi + lo, M = Mhi + Mlo in three products hi·Mhi + lo·Mhi + hi·Mlo (fp16 operands, fp32
// accumulation). The terms left out are 2^-20 of the product and below (lo·Mlo, and subnormal fp16 lows),
// where plain fp16 leaves 2^-11.
template <int NT>
__device__ __forceinline__ void split_by_rows(float (&acc)[NT][4], const float (&x)[8][4], const uint16_t* m, const uint16_t* m_lo) {
    uint32_t a_hi[4][4], a_lo[4][4];
    to_frags<8, true>(x, a_hi);
    to_frags<8, true, true>(x, a_lo);
    mma_by_rows<NT, 4, false>(acc, a_hi, m, 0);
    mma_by_rows<NT, 4, false>(acc, a_lo, m, 0);
    mma_by_rows<NT, 4>(acc, a_hi, m_lo, 0);
}

// The chain from f to g = ReLU(h2) for the warp's rows of one frame (the attention through the frame's
// projected tokens tok, the FFN split; smem: deform_fwd_chain_tc's weight copies), into the warp tile's
// tape record, g included (TcChain's words in tc_tape_load_chain's order).
__device__ __forceinline__ void tc_chain_fwd(const unsigned char* smem, const float* __restrict__ f,
                                             const uint32_t* __restrict__ tok, const TcRows& rows, DropArgs dr,
                                             long long P, uint32_t* tape) {
    auto at = [&](int offset) { return reinterpret_cast<const uint16_t*>(smem + offset); };
    const float* vec = reinterpret_cast<const float*>(smem + FC_VEC);
    // Each tape value is stored as soon as it exists (evict-first: the backward reads it once), so that
    // nothing stays live for the tape through the layers.
    const int lane = threadIdx.x & 31;
    uint32_t* keep = tape + TAPE_KEEP + lane * 8;
    float x[8][4], y[8][4];  // y: att, then the FFN's output
    load_features(f, rows, x);
    {
        float p[1][4];
        tc_attention(x, tok, vec + FV_BO, p, y);
        __stcs(reinterpret_cast<float4*>(tape + TAPE_P) + lane, make_float4(p[0][0], p[0][1], p[0][2], p[0][3]));
    }
    const uint32_t kept1 = lane_kept(rows, dr, 0);
    add_kept(x, y, kept1, dr);
    float h1[8][4], rstd[2];
    ln_acc(x, vec + FV_LN1G, vec + FV_LN1B, h1, rstd);
    save_acc_f16_stream(tape + TAPE_XH, x);
    __stcs(keep + 0, __float_as_uint(rstd[0]));
    __stcs(keep + 1, __float_as_uint(rstd[1]));
    __stcs(keep + 6, kept1);
    // The FFN 64 hidden units at a time: each half of z goes into the second layer's k-steps of its
    // columns as soon as it exists (the same products in the same order as whole layers; fewer live
    // registers: the spills of this kernel's 168).
    uint64_t z_pos = 0;
    acc_init_full<8, true>(y, vec + FV_FFN1B);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        float z[8][4];
        acc_init_full<8, true>(z, vec + FV_FFN0B + 64 * half);
        split_by_rows<8>(z, h1, at(FC_FFN0) + 64 * half * 64, at(FC_FFN0_LO) + 64 * half * 64);
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                if (z[j][e] > 0.0f) z_pos |= 1ull << (32 * half + 4 * j + e);
                else z[j][e] = 0.0f;
            }
        store_rows_bf16<8, true>(reinterpret_cast<uint16_t*>(tape + TAPE_Z) + 64 * half, FFN, z);
        split_by_rows<8>(y, z, at(FC_FFN1) + half * FC_FFN1_HALF, at(FC_FFN1_LO) + half * FC_FFN1_HALF);
    }
    __stcs(keep + 4, (uint32_t)z_pos);
    __stcs(keep + 5, (uint32_t)(z_pos >> 32));
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) x[j][e] = h1[j][e];
    const uint32_t kept2 = lane_kept(rows, dr, P);
    add_kept(x, y, kept2, dr);
    ln_acc(x, vec + FV_LN2G, vec + FV_LN2B, h1, rstd);
    save_acc_f16_stream(tape + TAPE_XH + 512, x);
    __stcs(keep + 2, __float_as_uint(rstd[0]));
    __stcs(keep + 3, __float_as_uint(rstd[1]));
    __stcs(keep + 7, kept2);
#pragma unroll
    for (int j = 0; j < 8; ++j)
        __stcs(reinterpret_cast<float4*>(tape + TAPE_G) + j * 32 + lane,
               make_float4(fmaxf(h1[j][0], 0.0f), fmaxf(h1[j][1], 0.0f), fmaxf(h1[j][2], 0.0f), fmaxf(h1[j][3], 0.0f)));
}

// A 16 × 64 accumulator from the tape's float4 layout (TAPE_G: lane l's elements of tile j at j·32 + l);
// STREAM: read for the last time (evict-first).
template <bool STREAM>
__device__ __forceinline__ void load_acc4(const uint32_t* at, float (&x)[8][4]) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        const float4* p = reinterpret_cast<const float4*>(at) + j * 32 + (threadIdx.x & 31);
        const float4 v = STREAM ? __ldcs(p) : __ldg(p);
        x[j][0] = v.x;
        x[j][1] = v.y;
        x[j][2] = v.z;
        x[j][3] = v.w;
    }
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"((uint32_t)__cvta_generic_to_shared(smem)), "l"(gmem)
                 : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// Asks L2 for the lines of [p, p + floats), the caller's `threads` threads (the block's or a warp's) taking
// every threads-th line from `first`: a hint (no wait, no fault).
__device__ __forceinline__ void prefetch_l2(const float* p, long long floats, int first, int threads) {
    const char* end = reinterpret_cast<const char*>(p + floats);
    for (const char* q = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) & ~(uintptr_t)127) + 128 * first; q < end;
         q += 128 * threads)
        asm volatile("prefetch.global.L2 [%0];\n" ::"l"(q));
}

// The backward's partial slices (132 of them, 44 MB) do not stay in L2 between items, so block_dw's read of
// them went to DRAM with nothing left to overlap it; asked of L2 (block-wide) while the products before it
// run, they are found there. Not on wgmma, which only adds into them (red_add): without the prefetch there
// deform_bwd_chain_tc took 0.355 ms instead of 0.363 (…-deform-ab-stop30-a.log, H100).
__device__ __forceinline__ void prefetch_partials(const float* p, int floats) {
#if !TC_WGMMA
    prefetch_l2(p, floats, threadIdx.x, TC_THREADS);
#endif
}

// The lines deltas_bwd reads for `count` consecutive Gaussians from n (pairs from `pair`): their d_out rows
// and canonical ones, asked of L2 (warp-wide) when the warp takes its tile, so that each head's deltas find
// them there instead of waiting for DRAM between the head's products.
__device__ __forceinline__ void prefetch_deltas_inputs(const CGaussians& canon, const CGaussians& d_out, long long pair,
                                                       int n, int count) {
    const int lane = threadIdx.x & 31;
    prefetch_l2(d_out.means + pair * 3, count * 3, lane, 32);
    prefetch_l2(d_out.scales + pair * 3, count * 3, lane, 32);
    prefetch_l2(d_out.rotations + pair * 4, count * 4, lane, 32);
    prefetch_l2(d_out.opacities + pair, count, lane, 32);
    prefetch_l2(d_out.sh + pair * 48, count * 48, lane, 32);
    prefetch_l2(canon.scales + (long long)n * 3, count * 3, lane, 32);
    prefetch_l2(canon.rotations + (long long)n * 4, count * 4, lane, 32);
    prefetch_l2(canon.opacities + n, count, lane, 32);
}

// The backward kernels' staged tiles. With wgmma (sm_90a), whose weight-gradient products read them by
// descriptor: the no-swizzle core-matrix layout, 8 × 8 blocks of 128 contiguous bytes (8 rows of 8 values),
// [row / 8][chunk][row % 8][8], `chunks` 8-column chunks per 8 rows (cm_at); the stores of a warp's
// accumulator row pair fill 32 different banks. Otherwise rows of stride ld.
// Chunks per 8 rows: a 64-wide layer input and the ones column (X1: g, h1, f), a 128-wide one and the ones
// column (X2: the heads' hidden units, z), a ≤ 64-wide output gradient (D2: d out, whose 48 columns of head
// 4 and 16 of zeros its 64-row product reads; d y, d att), a 128-wide one (D1: d hidden, d z), the
// attention weights and the ones column (P), the score gradients (DS).
constexpr int X1_CHUNKS = D / 8 + 1, X2_CHUNKS = HID / 8 + 1, D2_CHUNKS = 8, D1_CHUNKS = HID / 8, P_CHUNKS = 2,
              DS_CHUNKS = 1;
constexpr int D2_SUMS = TC_TILE * D2_CHUNKS * 16;  // bytes into the d out tile: TcTiles::sums after it
constexpr int P_SUMS = TC_TILE * P_CHUNKS * 16;    // bytes into the attention weights' tile: the chain's sums
__device__ __forceinline__ int cm_at(int row, int col, int chunks) {
    return ((row >> 3) * chunks + (col >> 3)) * 64 + (row & 7) * 8 + (col & 7);
}
// A 16 × 8 accumulator tile is two such 8 × 8 blocks in the fragment layout of stmatrix, which stores
// four blocks (two tiles) per instruction where 32-bit stores took eight: lane l gives the address of row
// l % 8 of block l / 8 (tile j + l / 16, rows 8·(l / 8 % 2) …); with .x2 (an odd last tile), lanes 0–15.
// RELU: max(v, 0) staged.
template <int NT, bool RELU = false>
__device__ __forceinline__ void stage_tile_bf16(uint16_t* tile, int ld, int chunks, const float (&c)[NT][4]) {
#if TC_WGMMA
    const int lane = threadIdx.x & 31, block = lane >> 3;
    const uint32_t at = (uint32_t)__cvta_generic_to_shared(tile + cm_at(16 * (threadIdx.x >> 5) + 8 * (block & 1) + (lane & 7),
                                                                      8 * (block >> 1), chunks));
#pragma unroll
    for (int j = 0; j + 1 < NT; j += 2)
        asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(at + j * 128),
                     "r"(pack_bf16<RELU>(c[j][0], c[j][1])), "r"(pack_bf16<RELU>(c[j][2], c[j][3])),
                     "r"(pack_bf16<RELU>(c[j + 1][0], c[j + 1][1])), "r"(pack_bf16<RELU>(c[j + 1][2], c[j + 1][3]))
                     : "memory");
    if constexpr (NT % 2 == 1)
        asm volatile("stmatrix.sync.aligned.m8n8.x2.shared.b16 [%0], {%1, %2};\n" ::"r"(at + (NT - 1) * 128),
                     "r"(pack_bf16<RELU>(c[NT - 1][0], c[NT - 1][1])), "r"(pack_bf16<RELU>(c[NT - 1][2], c[NT - 1][3]))
                     : "memory");
#else
    stage_bf16<NT, RELU>(tile, ld, c);
#endif
}

// The staged tiles' reuse in deform_bwd_*_tc, by an mbarrier that all TC_THREADS threads arrive on once
// their reads of the tiles (weight gradients) are done (read_done), and wait on before their next write to
// them (wait_free; parity: the phase to wait for, flipped by each wait). A warp thus goes on into its next
// per-warp work while others still read, where a barrier held it. init: by one thread, before a barrier;
// then every thread's read_done opens the first phase.
struct TileReuse {
    uint32_t bar;  // the mbarrier's shared address
    uint32_t parity;
    __device__ explicit TileReuse(void* at) : bar((uint32_t)__cvta_generic_to_shared(at)), parity(0u) {}
    __device__ void init() const {
        asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(TC_THREADS) : "memory");
    }
    __device__ void read_done() const {
        asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" ::"r"(bar) : "memory");
    }
    __device__ void wait_free() {
        uint32_t done;
        do {
            asm volatile("{\n.reg .pred p;\nmbarrier.test_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                         : "=r"(done)
                         : "r"(bar), "r"(parity)
                         : "memory");
        } while (!done);
        parity ^= 1u;
    }
};

// deform_bwd_heads_tc's part of the warp tile's tape record: the heads' ReLU decisions by cp.async into
// hid_save (the warp's [5][32] slice; cp_async_wait_all); g staged as bf16 in g_stage (stage_tile_bf16,
// before the ones column, once the last item's weight gradients are done with it: reuse), its A fragments
// (fp16) in ga and its positive elements in g_pos (bit 4j + e).
__device__ __forceinline__ void tc_tape_load_heads(const uint32_t* __restrict__ tape, uint2* hid_save, uint16_t* g_stage,
                                                   uint32_t (&ga)[4][4], uint32_t& g_pos, TileReuse& reuse) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int i = 0; i < 3; ++i)  // 80 chunks of 16 bytes
        if (i * 32 + lane < 80) cp_async16(hid_save + 2 * (i * 32 + lane), tape + TAPE_HID + 4 * (i * 32 + lane));
    cp_async_commit();
    float g[8][4];
    load_acc4<true>(tape + TAPE_G, g);  // its last read: d_h2 takes its place
    g_pos = 0;
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
            if (g[j][e] > 0.0f) g_pos |= 1u << (4 * j + e);
    reuse.wait_free();
    stage_tile_bf16<8>(g_stage, TC_LDX, X1_CHUNKS, g);
    to_frags<8, true>(g, ga);
}

// deform_bwd_chain_tc's part: z by cp.async into its 16 rows of z_stage (stage_tile_bf16's layout)
// (cp_async_wait_all), x̂1, x̂2 only prefetched to L2 (read with load_acc_f16 where they are used: no shared
// memory for them), d_h2 (deform_bwd_heads_tc's, in TAPE_G) and the scalars into keep.
__device__ __forceinline__ void tc_tape_load_chain(const uint32_t* __restrict__ tape, uint16_t* z_stage,
                                                   float (&d_h2)[8][4], TcChain& keep) {
    const int lane = threadIdx.x & 31;
    asm volatile("prefetch.global.L2 [%0];\n" ::"l"(tape + TAPE_XH + 32 * lane));  // 32 lines of 128 bytes
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const int chunk = i * 32 + lane, row = chunk / 16, c = chunk % 16;  // 16 chunks of 8 bf16 per row
        const int at_row = 16 * (threadIdx.x >> 5) + row;
#if TC_WGMMA
        uint16_t* dst = z_stage + cm_at(at_row, 8 * c, X2_CHUNKS);
#else
        uint16_t* dst = z_stage + at_row * TC_LDW + 8 * c;
#endif
        cp_async16(dst, tape + TAPE_Z + row * (FFN / 2) + 4 * c);
    }
    cp_async_commit();
#pragma unroll
    for (int j = 0; j < 8; ++j) {  // bf16 pairs (deform_bwd_heads_tc's)
        const uint2 w = __ldcs(reinterpret_cast<const uint2*>(tape + TAPE_G) + j * 32 + lane);
        d_h2[j][0] = __uint_as_float(w.x << 16), d_h2[j][1] = __uint_as_float(w.x & 0xffff0000u);
        d_h2[j][2] = __uint_as_float(w.y << 16), d_h2[j][3] = __uint_as_float(w.y & 0xffff0000u);
    }
    const uint4 k0 = __ldg(reinterpret_cast<const uint4*>(tape + TAPE_KEEP + lane * 8));
    const uint4 k1 = __ldg(reinterpret_cast<const uint4*>(tape + TAPE_KEEP + lane * 8) + 1);
    keep.rstd1[0] = __uint_as_float(k0.x);
    keep.rstd1[1] = __uint_as_float(k0.y);
    keep.rstd2[0] = __uint_as_float(k0.z);
    keep.rstd2[1] = __uint_as_float(k0.w);
    keep.z_pos = k1.x | (uint64_t)k1.y << 32;
    keep.kept1 = k1.z;
    keep.kept2 = k1.w;
}

// Row r's rotation quaternion (canonical cq + Δ) across the quad: lanes t = 0, 1 hold columns 0–3. Returns
// 1/‖q‖ and this lane's two components in qv (0 for t ≥ 2).
__device__ __forceinline__ float rotation_of(const float (&out)[1][4], int r, const float (&cq)[2], float (&qv)[2]) {
    float ss = 0.0f;
#pragma unroll
    for (int e = 0; e < 2; ++e) {
        qv[e] = acc_col(0, e) < 4 ? cq[e] + out[0][2 * r + e] : 0.0f;
        ss += qv[e] * qv[e];
    }
    ss += __shfl_xor_sync(0xffffffffu, ss, 1);
    return 1.0f / sqrtf(ss);
}

// What the deltas of a head h < 4 (one column tile) read for this lane's accumulator elements (rows g,
// g + 8: r; columns 2t, 2t + 1: e): the canonical value (the forward's, and the backward's but head 0's)
// and, in the backward, the output gradient; 0 past the head's columns and past the valid rows, but the
// canonical rotation, whose norm every row takes. Loaded before the head's products, so that their
// latency hides behind them instead of stalling the deltas after them.
struct DeltaInputs {
    float canon[2][2], grad[2][2];
};
template <bool BWD>
__device__ __forceinline__ DeltaInputs delta_inputs(int h, const TcRows& rows, const CGaussians& canon, const CGaussians& d_out) {
    DeltaInputs in;
    const int w = HEAD_OUT[h];
    const float* cs = h == 0 ? canon.means : h == 1 ? canon.scales : h == 2 ? canon.rotations : canon.opacities;
    const float* gs = h == 0 ? d_out.means : h == 1 ? d_out.scales : h == 2 ? d_out.rotations : d_out.opacities;
#pragma unroll
    for (int r = 0; r < 2; ++r)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            const int c = acc_col(0, e);
            const bool in_head = c < w, use = rows.valid[r] && in_head;
            in.canon[r][e] = (h == 2 ? in_head : use && !(BWD && h == 0)) ? cs[(long long)rows.n[r] * w + c] : 0.0f;
            in.grad[r][e] = BWD && use ? __ldcs(gs + rows.pair[r] * w + c) : 0.0f;
        }
    return in;
}

// The forward on the tensor cores, in two kernels over the same items: deform_fwd_chain_tc the chain from f
// to g = ReLU(h2) and the tape (layout of this section's comment), deform_fwd_heads_tc the F_d heads and
// the deltas for every pair, from g on the tape. Two kernels because one was larger than the instruction
// cache (the backward ran 1.5 times as fast split so). Persistent: block g takes the items (frame,
// 128-Gaussian tile) g, g + G, …, tile fastest; 8 warps of 16 Gaussians (warps past N run on clamped rows
// so that their tape records are finite, and write no outputs). Each block first copies its layers'
// weights to shared memory as fp16 copies (weight_to_shared; from L1/L2 the fragment loads were half the
// forward's stalls): the chain's FFN with its low parts and its vectors (67 584 bytes), the heads' with
// their first layers' low parts and their biases (195 520 bytes). One block per SM. Arguments as
// deform_fwd, without wt, then the tape [⌈N/128⌉·B·8][TAPE_WORDS], and for the chain the frames'
// projected tokens [B][TOK_FRAME] (deform_project_tokens). Bytes 4·(N·(64 + 59) + P·59) + 944·P (tape) +
// 256·P (g read back) + the tokens from L1/L2; FLOP 2·P·182 656 on the tensor cores (the attention
// through the tokens, the FFN and the heads' first layers split: three products each) + the fp32 rest.

// The forward kernels' warps take warp tiles independently (no block-wide step but the weights' copy; on
// Hopper the warps of a warpgroup run their products together, each warp on its own rows).
// Warp tile T = item·8 + w (w: the warp of a 128-Gaussian item in the backward), item = n_tile·B + b.
// deform_fwd_heads_tc runs FWD_WARPS per block at 168 registers (no spills on sm_90a), more
// warps per SM than the backward's 8 to hide its latencies: 0.301 ms against 0.321 at 8 warps of 255
// registers (H100, …-deform-ab-stop29-b.log; before its products were wgmma, at 8 warps it took 0.597 ms,
// at 12 0.445, at 16 with spills 0.474; B = 8, H200).
// deform_fwd_chain_tc runs FWD_CHAIN_WARPS at 255 registers (no spills on sm_90a, where its FFN's products
// are wgmma since a695d9b: 0.325 → 0.315 ms, …-deform-ab-stop30-a.log): 0.326 ms against 0.359 at 12
// warps of 168 registers with 324 bytes of spills (H100, …-deform-ab-stop27-e.log; with 560 bytes of
// spills and the dropout's SplitMix64 per element, 12 warps had been 4 % faster than 8: 0.420 against
// 0.439 ms). At 12 warps it would spill 668 bytes today. At 10 warps ptxas still allots 168 registers (3
// warps on some of the SM's 4 schedulers).
#define FWD_WARPS 12
#define FWD_CHAIN_WARPS 8
static_assert(FWD_WARPS % 4 == 0 && FWD_CHAIN_WARPS % 4 == 0, "the forward kernels' warpgroups");
extern "C" __global__ void __launch_bounds__(FWD_CHAIN_WARPS * 32, 1)
deform_fwd_chain_tc(const float* __restrict__ params, DEFORM_FWD_TAIL, uint32_t* tape, const uint32_t* __restrict__ tok) {
    extern __shared__ __align__(1024) unsigned char smem[];  // the weight copies' swizzle is by address
    allow_dependent_launch();
    chain_weights_to_shared(params, smem);
    __syncthreads();
    wait_for_previous_grid();  // deform_project_tokens' tok
    const long long P = (long long)B * N;
    const DropArgs dr = {key, threshold, scale};
    const int n_tiles = (N + TC_TILE - 1) / TC_TILE;
#pragma unroll 1
    for (int tile = blockIdx.x * FWD_CHAIN_WARPS + (threadIdx.x >> 5); tile < n_tiles * B * TC_WARPS;
         tile += gridDim.x * FWD_CHAIN_WARPS) {
        const int item = tile / TC_WARPS, w = tile % TC_WARPS, n_tile = item / B, b = item % B;
        tc_chain_fwd(smem, f, tok + (long long)b * TOK_FRAME, tc_rows(n_tile * TC_TILE + w * 16, b, N), dr, P,
                     tape + tape_record(item, w));
    }
}

// The backward's shared memory (bytes): the staged bf16 tiles [TC_TILE][TC_LDX or TC_LDW] (row strides of
// 144 and 272 bytes, odd multiples of 16, keep ldmatrix and the staging stores conflict-free), then
// deform_bwd_heads_tc's warps' heads' ReLU decisions and its fp16 copies of the heads' weights (both
// orientations of each product read them: head_weights_to_shared), or deform_bwd_chain_tc's warps' fp32
// sums of the LayerNorm gradients, its attention tiles, its fp16 copies of the FFN's weights and its warps'
// sums of d_f over an n-tile's frames.
constexpr int SB_X1 = 0;                                // layer input, 64 wide: g, h1, f
constexpr int SB_D1 = SB_X1 + TC_TILE * TC_LDX * 2;     // output gradient, 128 wide: d head hidden, d z
constexpr int SB_D2 = SB_D1 + TC_TILE * TC_LDW * 2;     // output gradient, ≤ 64 wide: d out, d y, d att
constexpr int SB_X2 = SB_D2 + TC_TILE * TC_LDX * 2;     // layer input, 128 wide: head hidden (heads) or z (chain)
constexpr int SB_HID = SB_X2 + TC_TILE * TC_LDW * 2;    // heads: [warp][5 heads][32 lanes] u64, TAPE_HID
constexpr int SB_SUMS = SB_HID;                         // chain: [warp][dγ1, dβ1, dγ2, dβ2 [64] each]
constexpr int SB_V0 = SB_HID + TC_WARPS * 5 * 32 * 8;   // heads: V0 of the 5 heads, fp16 [5·128][64]
constexpr int SB_V1 = SB_V0 + 5 * HID * D * 2;          // heads: V1, fp16 [2][V1_ROWS][64] (V1_ROW, V1_HALF)
constexpr int SB_BIASES = SB_V1 + V1_ROWS * HID * 2;     // heads: their biases, fp32 [HEAD_BIASES]
constexpr int SB_REUSE = SB_BIASES + HEAD_BIASES * 4;     // heads: TileReuse's mbarrier (8 bytes)
constexpr int TC_BWD_HEADS_SMEM = SB_REUSE + 8;
static_assert(SB_V0 % 1024 == 0 && SB_V1 % 1024 == 0 && V1_HALF * 2 % 1024 == 0,
              "the heads' weight copies start on the 128-byte swizzle's 1024-byte period");
constexpr int SB_P = SB_SUMS + TC_WARPS * 4 * D * 4;   // chain: attention weights, bf16 [TC_TILE][TC_LDP]
constexpr int SB_DS = SB_P + TC_TILE * TC_LDP * 2;      // chain: score gradients, bf16 [TC_TILE][8]
constexpr int SB_W0 = SB_DS + TC_TILE * 8 * 2;          // chain: fp16 copies of the FFN's W0 [128][64],
constexpr int SB_W1 = SB_W0 + FFN * D * 2;              // and W1 [64][128] in two halves (weight_to_shared)
constexpr int SB_DF = SB_W1 + D * FFN * 2;              // chain: [warp][32 values][32 lanes] fp32
constexpr int SB_CHAIN_REUSE = SB_DF + TC_WARPS * 32 * 32 * 4;  // chain: TileReuse's mbarrier (8 bytes)
constexpr int TC_BWD_CHAIN_SMEM = SB_CHAIN_REUSE + 8;
static_assert(TC_TILE * X1_CHUNKS * 16 <= SB_D1 - SB_X1 && TC_TILE * D1_CHUNKS * 16 <= SB_D2 - SB_D1 &&
                  D2_SUMS + TC_WARPS * 8 * 4 <= SB_X2 - SB_D2 && TC_TILE * X2_CHUNKS * 16 <= SB_HID - SB_X2 &&
                  P_SUMS + TC_WARPS * 8 * 4 <= SB_DS - SB_P && TC_TILE * DS_CHUNKS * 16 <= SB_W0 - SB_DS,
              "the backward's wgmma tiles (stage_tile_bf16) and column sums fit their regions");
static_assert(TC_BWD_HEADS_SMEM == 230344 && SB_REUSE % 8 == 0 && TC_BWD_CHAIN_SMEM == 188424,
              "shared memory changed: update DEF_BWD_*_TC_SMEM in src/cuda/attention.rs");

// F_d head h's hidden layer in the forward: its units ReLU(g·V0ᵀ + c0) on fp16 operands, as the fp16 A
// fragments its second layer takes (hid; tc_head_bwd recomputes the same values with the same products),
// and its ReLU decisions (bit 4j + e set: unit on) taken as fp32 would take them: from the split product
// g_hi·Vhi + g_lo·Vhi + g_hi·Vlo (split_by_rows' terms: 2^-20 of the product left out where fp16 operands
// leave 2^-10), added to the fp16 one after its units are taken. fp16's decisions alone flip the 0.6 % of
// units within its rounding of 0 (on tests/deform.rs's TC_CASE), and the backward would pass their
// gradients on one side only: d_kv, d_f and d_params 1.0–1.6e-2 from the exact twin, against 2.0–3.3e-3
// so. g_hi, g_lo: the fp16 A fragments of g and of g − fp16(g) (to_frags); v0h, v0lo_h: head h's V0 and
// its low parts (head_weights_to_shared); c0h: its biases (in shared memory).
__device__ __forceinline__ uint64_t tc_head_hidden(const float* c0h, const uint16_t* v0h, const uint16_t* v0lo_h,
                                                   const uint32_t (&g_hi)[4][4], const uint32_t (&g_lo)[4][4],
                                                   uint32_t (&hid)[8][4]) {
    float y[16][4];
    acc_init_full<16, true>(y, c0h);
    mma_by_rows<16, 4>(y, g_hi, v0h, 0);
#pragma unroll
    for (int j = 0; j < 16; ++j) {
        hid[j / 2][2 * (j & 1)] = pack_f16<true>(y[j][0], y[j][1]);
        hid[j / 2][2 * (j & 1) + 1] = pack_f16<true>(y[j][2], y[j][3]);
    }
    mma_by_rows<16, 4, false>(y, g_lo, v0h, 0);
    mma_by_rows<16, 4>(y, g_hi, v0lo_h, 0);
    uint64_t on = 0;
#pragma unroll
    for (int j = 0; j < 16; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
            if (y[j][e] > 0.0f) on |= 1ull << (4 * j + e);
    return on;
}
// F_d head h's output out = hid·V1ᵀ + c1 (NTH column tiles) from its hidden units' fragments; v1, biases:
// the copy of V1 and the heads' biases (head_weights_to_shared).
template <int NTH>
__device__ __forceinline__ void tc_head_out(const float* biases, const uint16_t* v1, int h, const uint32_t (&hid)[8][4],
                                            float (&out)[NTH][4]) {
    acc_init_full<NTH, true>(out, biases + HEAD_C1 + V1_ROW[h]);
    mma_by_rows<NTH, 8>(out, hid, v1 + V1_ROW[h] * 64, V1_HALF);
}

// deform_fwd_heads_tc's work on one warp tile: the heads and the deltas of rows `rows` from g on
// the tile's tape record (v0, v0_lo, v1: the weight copies), the heads' ReLU decisions onto it.
__device__ __forceinline__ void deform_fwd_heads_tile(const float* __restrict__ params, const uint16_t* v0, const uint16_t* v0_lo,
                                                      const uint16_t* v1, const float* biases, const TcRows& rows,
                                                      const CGaussians& canon, const Gaussians& out_g, uint32_t* record) {
    uint32_t g_hi[4][4], g_lo[4][4];
    {
        float g[8][4];
        load_acc4<false>(record + TAPE_G, g);
        to_frags<8, true>(g, g_hi);
        to_frags<8, true, true>(g, g_lo);
    }
    uint2* hid_pos = reinterpret_cast<uint2*>(record + TAPE_HID) + (threadIdx.x & 31);
    uint32_t hid[8][4];
#pragma unroll 1
    for (int h = 0; h < 4; ++h) {
        float out[1][4];
        const DeltaInputs in = delta_inputs<false>(h, rows, canon, CGaussians{});  // no upstream gradients
        const uint64_t pos = tc_head_hidden(biases + h * HID, v0 + h * HID * D, v0_lo + h * HID * D, g_hi, g_lo, hid);
        tc_head_out<1>(biases, v1, h, hid, out);
        __stcs(hid_pos + 32 * h, make_uint2((uint32_t)pos, (uint32_t)(pos >> 32)));
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const long long row = rows.pair[r];
            if (h == 2) {  // every lane: rotation_of shuffles
                float qv[2];
                const float inv = rotation_of(out, r, in.canon[r], qv);
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int c = acc_col(0, e);
                    if (rows.valid[r] && c < 4) out_g.rotations[row * 4 + c] = qv[e] * inv;
                }
                continue;
            }
            if (!rows.valid[r]) continue;
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int c = acc_col(0, e);
                const float v = in.canon[r][e] + out[0][2 * r + e];
                if (h == 0 && c < 3) out_g.means[row * 3 + c] = v;
                if (h == 1 && c < 3) out_g.scales[row * 3 + c] = expf(v);
                if (h == 3 && c < 1) out_g.opacities[row] = 1.0f / (1.0f + expf(-v));
            }
        }
    }
    float out[6][4];
    const uint64_t pos = tc_head_hidden(biases + 4 * HID, v0 + 4 * HID * D, v0_lo + 4 * HID * D, g_hi, g_lo, hid);
    tc_head_out<6>(biases, v1, 4, hid, out);
    __stcs(hid_pos + 32 * 4, make_uint2((uint32_t)pos, (uint32_t)(pos >> 32)));
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        if (!rows.valid[r]) continue;
#pragma unroll
        for (int j = 0; j < 6; ++j) {
            const int c = acc_col(j, 0);
            const float2 base = __ldg(reinterpret_cast<const float2*>(canon.sh + (long long)rows.n[r] * 48 + c));
            *reinterpret_cast<float2*>(out_g.sh + rows.pair[r] * 48 + c) =
                make_float2(base.x + out[j][2 * r], base.y + out[j][2 * r + 1]);
        }
    }
}

// deform_fwd_heads_tc's shared memory (bytes): the heads' weights as deform_bwd_heads_tc's fp16 copies
// (SB_V0, SB_V1 there), V0's low parts in V0's layout, and the heads' biases (HEAD_BIASES, as SB_BIASES).
constexpr int FH_V0 = 0, FH_V1 = FH_V0 + 5 * HID * D * 2, FH_V0_LO = FH_V1 + V1_ROWS * HID * 2;
constexpr int FH_BIASES = FH_V0_LO + 5 * HID * D * 2;
constexpr int TC_FWD_HEADS_SMEM = FH_BIASES + HEAD_BIASES * 4;
static_assert(FH_V1 % 1024 == 0 && FH_V0_LO % 1024 == 0 && TC_FWD_HEADS_SMEM == 195520,
              "the 128-byte swizzle's period; update DEF_FWD_HEADS_TC_SMEM in src/cuda/attention.rs");
extern "C" __global__ void __launch_bounds__(FWD_WARPS * 32, 1)
deform_fwd_heads_tc(const float* __restrict__ params, DEFORM_FWD_TAIL, uint32_t* tape) {
    extern __shared__ __align__(1024) unsigned char smem[];  // the weight copies' swizzle is by address
    uint16_t* v0 = reinterpret_cast<uint16_t*>(smem + FH_V0);
    uint16_t* v1 = reinterpret_cast<uint16_t*>(smem + FH_V1);
    uint16_t* v0_lo = reinterpret_cast<uint16_t*>(smem + FH_V0_LO);
    float* biases = reinterpret_cast<float*>(smem + FH_BIASES);
    allow_dependent_launch();
    head_weights_to_shared(params, v0, v1, biases, v0_lo);
    __syncthreads();
    wait_for_previous_grid();  // deform_fwd_chain_tc's tape
    const int n_tiles = (N + TC_TILE - 1) / TC_TILE;
    // Warps 4k … 4k + 3 (a warpgroup) take 4 consecutive warp tiles, and the count of warp tiles is a
    // multiple of 8: the warpgroups' trip counts are uniform, as their wgmma need.
#pragma unroll 1
    for (int tile = blockIdx.x * FWD_WARPS + (threadIdx.x >> 5); tile < n_tiles * B * TC_WARPS;
         tile += gridDim.x * FWD_WARPS) {
        const int item = tile / TC_WARPS, w = tile % TC_WARPS, n_tile = item / B, b = item % B;
        deform_fwd_heads_tile(params, v0, v0_lo, v1, biases, tc_rows(n_tile * TC_TILE + w * 16, b, N),
                              CGaussians{c_means, c_log_scales, c_rotations, c_opacities, c_sh},
                              Gaussians{o_means, o_scales, o_rotations, o_opacities, o_sh},
                              tape + tape_record(item, w));
    }
}

// A gradient tile as fp16 A fragments with a power-of-two scale per row: row r times 2^k_r, with the
// row's largest |value| (over its quad) times 2^k_r in [2^14, 2^15) (|k_r| ≤ 100; rows of zeros, or
// with subnormal largest values, get k_r = 0; rows with inf or NaN keep them). fp16 then keeps 11
// significant bits of every value within 2^-24 of its row's largest, where bf16 keeps 8 of all. inv:
// 2^-k_r, to take the product's rows back (exact: powers of two).
template <int NT>
__device__ __forceinline__ void to_frags_row_scaled(const float (&c)[NT][4], uint32_t (&a)[(NT + 1) / 2][4], float (&inv)[2]) {
    float scale[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        float m = 0.0f;
#pragma unroll
        for (int j = 0; j < NT; ++j) m = fmaxf(m, fmaxf(fabsf(c[j][2 * r]), fabsf(c[j][2 * r + 1])));
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
        const int e = (int)(__float_as_uint(m) >> 23);  // m ≥ 0: its biased exponent
        const int k = e == 0 ? 0 : max(-100, min(100, 141 - e));
        scale[r] = __uint_as_float((uint32_t)(127 + k) << 23);
        inv[r] = __uint_as_float((uint32_t)(127 - k) << 23);
    }
    float scaled[NT][4];
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) scaled[j][e] = c[j][e] * scale[e >> 1];
    to_frags<NT, true>(scaled, a);
}

// A product of such fragments taken back to the gradients' scale (inv), through the forward's ReLU
// decisions `on` (bit 4j + e set: the unit was on; the others' gradients are 0).
template <int NT>
__device__ __forceinline__ void unscale_through_relu(float (&acc)[NT][4], uint64_t on, const float (&inv)[2]) {
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[j][e] = (on >> (4 * j + e)) & 1 ? acc[j][e] * inv[e >> 1] : 0.0f;
}
// d += a product of such fragments taken back to the gradients' scale (inv).
__device__ __forceinline__ void add_unscaled(float (&d)[8][4], const float (&acc)[8][4], const float (&inv)[2]) {
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) d[j][e] = fmaf(acc[j][e], inv[e >> 1], d[j][e]);
}

// dW += d_preᵀ·x over the block tile's 128 rows, into w [out][IN] and, through x's column of ones at IN,
// the bias b [out] (the block's partial slice): dm [TC_TILE][ldd] holds d_pre (its first 16·MT columns are
// read: zero past `out`), xm [TC_TILE][ldx] holds x (NTX = IN/8 + 1 column tiles with the ones). The work
// is items (16-row tile mt of dW, NPG column tiles from nt0); NPG is chosen per layer so that the items
// split evenly over the 8 warps. An item reads its current partials first and adds after its products, so
// that the L2 round trip overlaps them instead of holding up the first.
// Items per 16-row tile of dW: ⌈NTX/NPG⌉ column groups, NTX = IN/8 + 1.
__host__ __device__ constexpr int dw_groups(int in, int npg) { return (in / 8 + npg) / npg; }

template <int IN>
struct DwLayer {
    const uint16_t* dm;
    int ldd;
    const uint16_t* xm;
    int ldx;
    float* w;
    float* b;
    int out;
};

template <int IN, int NPG>
__device__ __forceinline__ void dw_load(float (&prev)[NPG][4], const DwLayer<IN>& l, int mt, int nt0) {
    const int lane = threadIdx.x & 31, o0 = 16 * mt + (lane >> 2), c0 = 2 * (lane & 3);
#pragma unroll
    for (int j = 0; j < NPG; ++j)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int o = o0 + 8 * r, i = 8 * (nt0 + j) + c0;
            float2 v = make_float2(0.0f, 0.0f);
            if (o < l.out && i < IN) v = *reinterpret_cast<const float2*>(l.w + o * IN + i);
            else if (o < l.out && i == IN) v.x = l.b[o];
            prev[j][2 * r] = v.x;
            prev[j][2 * r + 1] = v.y;
        }
}

// The item's products (A = d_preᵀ from dm, B = x from xm), added to prev and stored.
template <int IN, int NPG>
__device__ __forceinline__ void dw_add(const float (&prev)[NPG][4], const DwLayer<IN>& l, int mt, int nt0) {
    constexpr int NTX = IN / 8 + 1;
    const int lane = threadIdx.x & 31, o0 = 16 * mt + (lane >> 2), c0 = 2 * (lane & 3);
    float acc[NPG][4];
#pragma unroll
    for (int j = 0; j < NPG; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[j][e] = 0.0f;
#pragma unroll 2
    for (int s = 0; s < TC_TILE / 16; ++s) {
        // A = d_preᵀ: 8 × 8 blocks (pairs 0–7, outputs 0–7), (0–7, 8–15), (8–15, 0–7), (8–15, 8–15).
        uint32_t a[4];
        const int mi = lane >> 3;
        ldsm_x4_trans(a, l.dm + (16 * s + (mi >> 1) * 8 + (lane & 7)) * l.ldd + 16 * mt + (mi & 1) * 8);
#pragma unroll
        for (int j = 0; j < NPG; ++j) {
            if (nt0 + j >= NTX) break;
            uint32_t bb[2];
            ldsm_x2_trans(bb, l.xm + (16 * s + (lane & 15)) * l.ldx + 8 * (nt0 + j));
            mma_m16n8k16<false>(acc[j], a, bb);
        }
    }
#pragma unroll
    for (int j = 0; j < NPG; ++j)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int o = o0 + 8 * r, i = 8 * (nt0 + j) + c0;
            const float2 v = make_float2(prev[j][2 * r] + acc[j][2 * r], prev[j][2 * r + 1] + acc[j][2 * r + 1]);
            if (o < l.out && i < IN) *reinterpret_cast<float2*>(l.w + o * IN + i) = v;
            else if (o < l.out && i == IN) l.b[o] = v.x;
        }
}

// block_dw of one layer: warp w takes items w, w + 8, … Block-wide; callers __syncthreads before (staging)
// and after. Not inlined: one copy per instantiation instead of per call takes instructions out of the
// backward's loop, whose misses in the instruction cache are a quarter of its stalls (the step 2 % faster).
template <int MT, int IN, int NPG>
__device__ __noinline__ void block_dw(const DwLayer<IN> l) {
    constexpr int GROUPS = dw_groups(IN, NPG);
    for (int item = threadIdx.x >> 5; item < MT * GROUPS; item += TC_WARPS) {
        float prev[NPG][4];
        dw_load<IN, NPG>(prev, l, item / GROUPS, (item % GROUPS) * NPG);
        dw_add<IN, NPG>(prev, l, item / GROUPS, (item % GROUPS) * NPG);
    }
}

// block_dw for a layer of at most 8 outputs (V1 of heads 0–3, 1 to 4 outputs; the score gradients): dWᵀ =
// xᵀ·d_pre, whose products' 16-row tiles run over the IN inputs and the ones column (IN/16 + 1 tiles) and
// whose 8 columns are the outputs. block_dw's tiles would hold `out` of 16 rows: this takes half its
// products. Stored transposed into w [out][IN] and b. One tile mt of the warp's:
template <int IN>
__device__ __forceinline__ void dw_narrow_tile(const DwLayer<IN>& l, int mt) {
    const int lane = threadIdx.x & 31, mi = lane >> 3;
    // Accumulator element e: row m = 16·mt + lane/4 + 8·(e/2) of dWᵀ (an input, or the ones column: the
    // bias), column n = 2·(lane % 4) + e % 2 (an output).
    float* at[4];
    float prev[4], acc[2][4] = {};  // even and odd k-steps: two chains of dependent products, not one
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        const int m = 16 * mt + (lane >> 2) + 8 * (e >> 1), n = 2 * (lane & 3) + (e & 1);
        at[e] = n >= l.out || m > IN ? nullptr : m < IN ? l.w + n * IN + m : l.b + n;
        prev[e] = at[e] ? *at[e] : 0.0f;
    }
#pragma unroll
    for (int s = 0; s < TC_TILE / 16; ++s) {
        uint32_t a[4], bb[2];
        if (mt < IN / 16) {  // A = xᵀ, as dw_add's A = d_preᵀ
            ldsm_x4_trans(a, l.xm + (16 * s + (mi >> 1) * 8 + (lane & 7)) * l.ldx + 16 * mt + (mi & 1) * 8);
        } else {  // the ones column and its 7 zeros; rows 8–15 of the tile are past them: 0
            uint32_t r[2];
            ldsm_x2_trans(r, l.xm + (16 * s + (lane & 15)) * l.ldx + IN);
            a[0] = r[0], a[1] = 0, a[2] = r[1], a[3] = 0;
        }
        ldsm_x2_trans(bb, l.dm + (16 * s + (lane & 15)) * l.ldd);  // B = d_pre's first 8 columns
        mma_m16n8k16<false>(acc[s & 1], a, bb);
    }
#pragma unroll
    for (int e = 0; e < 4; ++e)
        if (at[e]) *at[e] = prev[e] + (acc[0][e] + acc[1][e]);
}

// Block-wide as block_dw: warp w takes tiles w, w + 8, …
template <int IN>
__device__ __noinline__ void block_dw_narrow(const DwLayer<IN> l) {
    for (int mt = threadIdx.x >> 5; mt <= IN / 16; mt += TC_WARPS) dw_narrow_tile<IN>(l, mt);
}

// The attention's products of one item, block-wide as block_dw: dUT (+ dbo through the weights' ones
// column) = d_attᵀ·P, 4 items of 16 outputs by 2 column tiles on warps 0–3, and dKTᵀ (+ dKC) = fᵀ·ds,
// block_dw_narrow's 5 tiles on warps 3–7.
__device__ __noinline__ void block_dw_attention(const DwLayer<8> ut, const DwLayer<D> kt) {
    const int warp = threadIdx.x >> 5;
    if (warp < 4) {
        float prev[2][4];
        dw_load<8, 2>(prev, ut, warp, 0);
        dw_add<8, 2>(prev, ut, warp, 0);
    }
    if (warp >= 3) dw_narrow_tile<D>(kt, warp - 3);
}

// block_dw of two layers of at most 8 items each (warp w takes item w of each): both layers' partials are
// read before the first's products, so that one L2 round trip serves the two.
template <int MT0, int IN0, int NPG0, int MT1, int IN1, int NPG1>
__device__ __noinline__ void block_dw_pair(const DwLayer<IN0> l0, const DwLayer<IN1> l1) {
    constexpr int GROUPS0 = dw_groups(IN0, NPG0), GROUPS1 = dw_groups(IN1, NPG1);
    constexpr int ITEMS0 = MT0 * GROUPS0, ITEMS1 = MT1 * GROUPS1;
    static_assert(ITEMS0 <= TC_WARPS && ITEMS1 <= TC_WARPS, "block_dw_pair: one item per warp and layer");
    const int warp = threadIdx.x >> 5;
    float prev0[NPG0][4], prev1[NPG1][4];
    if (warp < ITEMS0) dw_load<IN0, NPG0>(prev0, l0, warp / GROUPS0, (warp % GROUPS0) * NPG0);
    if (warp < ITEMS1) dw_load<IN1, NPG1>(prev1, l1, warp / GROUPS1, (warp % GROUPS1) * NPG1);
    if (warp < ITEMS0) dw_add<IN0, NPG0>(prev0, l0, warp / GROUPS0, (warp % GROUPS0) * NPG0);
    if (warp < ITEMS1) dw_add<IN1, NPG1>(prev1, l1, warp / GROUPS1, (warp % GROUPS1) * NPG1);
}

// Stores the column sums over the warp's rows of two 16 × 64 accumulators a, b in sa[col], sb[col].
__device__ __forceinline__ void store_column_sums(const float (&a)[8][4], float* sa, const float (&b)[8][4], float* sb) {
    float v[32];
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            v[2 * j + e] = a[j][e] + a[j][e + 2];
            v[16 + 2 * j + e] = b[j][e] + b[j][e + 2];
        }
    store_column_sums(v, sa, sb);
}

// deform_bwd_heads_tc's per-pair canonical gradients [B·N][PAIR_GRADS], which deform_pass_through_bwd sums
// over the frames: the log-scales', the rotations' and the opacity's.
constexpr int PG_SCALES = 0, PG_ROTATIONS = 3, PG_OPACITY = 7, PAIR_GRADS = 8;

// The deltas' backward for head h < 4 (its output `out`, replaced by d out) from its inputs `in`
// (delta_inputs<true>: the upstream gradients, read once, evict-first, not to push the partial slices out
// of L2); the pair's canonical gradients into d_pair (=). Invalid rows and columns past the head's width get 0.
__device__ __forceinline__ void deltas_bwd(int h, float (&out)[1][4], const DeltaInputs& in, const TcRows& rows,
                                           float* d_pair) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const bool valid = rows.valid[r];
        float* dst = d_pair + rows.pair[r] * PAIR_GRADS;
        if (h == 2) {
            float qv[2];
            const float inv = rotation_of(out, r, in.canon[r], qv);
            float dot = 0.0f;
#pragma unroll
            for (int e = 0; e < 2; ++e) dot += qv[e] * inv * in.grad[r][e];
            dot += __shfl_xor_sync(0xffffffffu, dot, 1);
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int c = acc_col(0, e);
                const float d = c < 4 ? (in.grad[r][e] - qv[e] * inv * dot) * inv : 0.0f;  // lanes t ≥ 2: inv = ∞
                out[0][2 * r + e] = d;
                if (valid && c < 4) dst[PG_ROTATIONS + c] = d;
            }
            continue;
        }
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            const int c = acc_col(0, e);
            float d = 0.0f;
            if (valid && c < HEAD_OUT[h]) {
                const float delta = out[0][2 * r + e];
                if (h == 0) {
                    d = in.grad[r][e];  // dc_means: deform_pass_through_bwd
                } else if (h == 1) {
                    d = in.grad[r][e] * expf(in.canon[r][e] + delta);
                    dst[PG_SCALES + c] = d;
                } else {
                    const float o = 1.0f / (1.0f + expf(-(in.canon[r][e] + delta)));
                    d = in.grad[r][e] * o * (1.0f - o);
                    dst[PG_OPACITY] = d;
                }
            }
            out[0][2 * r + e] = d;
        }
    }
}

// The same for head 4 (the SH coefficients: d out passes through; dc_sh: deform_pass_through_bwd), reading
// its upstream gradients here.
__device__ __forceinline__ void deltas_bwd_sh(float (&out)[6][4], const TcRows& rows, const CGaussians& d_out) {
#pragma unroll
    for (int r = 0; r < 2; ++r)
#pragma unroll
        for (int j = 0; j < 6; ++j)
#pragma unroll
            for (int e = 0; e < 2; ++e)
                out[j][2 * r + e] = rows.valid[r] ? __ldcs(d_out.sh + rows.pair[r] * 48 + acc_col(j, e)) : 0.0f;
}

// The staged tiles of deform_bwd_*_tc.
struct TcTiles {
    uint16_t *x1, *x2, *z, *d1, *d2;
    float* sums;  // on wgmma: the warps' column sums of an 8-wide gradient (column_sums_bf16), [TC_WARPS][8]
};


#if TC_WGMMA
// The weight gradients of deform_bwd_heads_tc on wgmma: dW = d_preᵀ·x over the block tile's 128 pairs, for
// one warpgroup's 64 rows of dW, A and B both read transposed from the staged tiles (stage_tile_bf16);
// acc (9 or 1 column tiles) is then added to the partial slice. a, b: the warpgroup's first chunk of the
// tiles' first 8 rows; a_chunks, b_chunks: the tiles' chunks per 8 rows (the K stride, 128 bytes each).
template <int NT>
__device__ __forceinline__ void dw_wgmma(float (&acc)[NT][4], const uint16_t* a, int a_chunks, const uint16_t* b, int b_chunks) {
    const uint64_t desc_a = wgmma_desc(a, 128 * a_chunks, 128, false), desc_b = wgmma_desc(b, 128 * b_chunks, 128, false);
    wgmma_fence();
#pragma unroll
    for (int s = 0; s < TC_TILE / 16; ++s)  // k-step s: rows 16s … 16s + 15, two core-matrix rows
        wgmma_ss_bf16<NT>(acc, desc_advance(desc_a, 2 * 2 * s * a_chunks * 64), desc_advance(desc_b, 2 * 2 * s * b_chunks * 64),
                          s > 0);
    wgmma_wait();
}

// The weight gradients' adds into the partial slice: reductions performed in L2 (red.global.add, fp32;
// subnormal sums flush to zero), so that no load of the slice waits on L2. Each address of a slice has
// one owner thread, which adds in program order: the sums stay deterministic.
// The slices' lines (132 × 333 KB) are asked to stay in L2 (evict_last) ahead of the streamed tape: most
// did already (the heads' backward reads 0.24 GB of DRAM per call), so it gains little (H200: heads'
// backward 0.730 → 0.726 ms, the chain's 0.294 → 0.292; …-deform-ab-stop30-b.log).
__device__ __forceinline__ uint64_t l2_evict_last() {
    uint64_t policy;
    asm("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(policy));
    return policy;
}
__device__ __forceinline__ void red_add(float* at, float v) {
    asm volatile("red.global.add.L2::cache_hint.f32 [%0], %1, %2;\n" ::"l"(at), "f"(v), "l"(l2_evict_last()) : "memory");
}
__device__ __forceinline__ void red_add2(float* at, float x, float y) {
    asm volatile("red.global.add.L2::cache_hint.v2.f32 [%0], {%1, %2}, %3;\n" ::"l"(at), "f"(x), "f"(y), "l"(l2_evict_last())
                 : "memory");
}
__device__ __forceinline__ void red_add4(float* at, float x, float y, float z, float w) {
    asm volatile("red.global.add.L2::cache_hint.v4.f32 [%0], {%1, %2, %3, %4}, %5;\n" ::"l"(at), "f"(x), "f"(y), "f"(z), "f"(w),
                 "l"(l2_evict_last())
                 : "memory");
}

// A warpgroup's rows of a row-major dW [rows][ld] in the partial slice, for a 64 × 8·(NW + 1) product:
// the lane's two rows (wg_row, + 8) from row0, its NW weight column pairs (2t + 8j from col0), and in tile
// NW the bias b[row] (lanes t = 0, element 0 of the pair) when b is given. Rows ≥ rows_end are not added.
// NW even: the slice holds each 16 columns from col0 (a multiple of 16, as ld) permuted (slice_column), so
// that a lane's pairs of tiles j, j + 1 are 4 consecutive floats: one red.v4 where they took two red.v2.
// deform_reduce puts the columns back (dw_permuted).
template <int NW>
struct DwRows {
    float* w[2];  // the lane's first weight of each row, or null
    float* b[2];  // the row's bias, or null
    __device__ DwRows(float* w0, float* b0, int ld, int row0, int rows_end, int col0) {
        const int lane = threadIdx.x & 31;
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int row = row0 + 16 * ((threadIdx.x >> 5) & 3) + (lane >> 2) + 8 * r;
            const bool ok = row < rows_end;
            w[r] = ok ? w0 + row * ld + col0 + (NW % 2 ? 2 : 4) * (lane & 3) : nullptr;
            b[r] = ok && b0 && (lane & 3) == 0 ? b0 + row : nullptr;
        }
    }
    __device__ void add(const float (&acc)[NW + 1][4]) const {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            if (w[r]) {
                if constexpr (NW % 2) {  // the plain layout: a column pair per tile
#pragma unroll
                    for (int j = 0; j < NW; ++j) red_add2(w[r] + 8 * j, acc[j][2 * r], acc[j][2 * r + 1]);
                } else {  // tiles j, j + 1 side by side (slice_column)
#pragma unroll
                    for (int j = 0; j < NW; j += 2)
                        red_add4(w[r] + 8 * j, acc[j][2 * r], acc[j][2 * r + 1], acc[j + 1][2 * r], acc[j + 1][2 * r + 1]);
                }
            }
            if (b[r]) red_add(b[r], acc[NW][2 * r]);
        }
    }
};

// The same for dWᵀ of a layer of at most 8 outputs (a 64 × 8 product over its inputs): element e is input
// in0 + 16·(warp % 4) + g + 8·(e / 2) and output 2t + e % 2 (< outs), at w + output·ld + input.
struct DwCols {
    float* at[4];
    __device__ DwCols(float* w, int ld, int in0, int outs) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int input = in0 + 16 * ((threadIdx.x >> 5) & 3) + ((threadIdx.x & 31) >> 2) + 8 * (e >> 1);
            const int out = acc_col(0, e);
            at[e] = out < outs ? w + out * ld + input : nullptr;
        }
    }
    __device__ void add(const float (&acc)[1][4]) const {
#pragma unroll
        for (int e = 0; e < 4; ++e)
            if (at[e]) red_add(at[e], acc[0][e]);
    }
};

// The warp's column sums of an 8-wide gradient tile (as staged: bf16) into sums[warp][column]; then, after
// a barrier, bias_from_sums adds the sums over the warps, in warp order, to b[0 … outs). The bias
// gradients of the narrow layers (dWᵀ products have no ones column).
__device__ __forceinline__ void column_sums_bf16(const float (&c)[1][4], float* sums) {
    auto staged = [](float v) { return __uint_as_float(pack_bf16(v, 0.0f) << 16); };
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int e = 0; e < 2; ++e) {
        float sum = staged(c[0][e]) + staged(c[0][e + 2]);
#pragma unroll
        for (int off = 4; off < 32; off *= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
        if (lane < 4) sums[(threadIdx.x >> 5) * 8 + acc_col(0, e)] = sum;
    }
}
__device__ __forceinline__ void bias_from_sums(const float* sums, float* b, int outs) {
    if (threadIdx.x < outs) {
        float sum = 0.0f;
        for (int w = 0; w < TC_WARPS; ++w) sum += sums[w * 8 + threadIdx.x];
        b[threadIdx.x] += sum;
    }
}

// Head h's weight gradients, block-wide (after a barrier; the caller's barrier follows): V0's (warpgroup
// wg takes hidden units 64wg …, against g and the ones column), then V1's. Head 4: d outᵀ against the
// hidden units and the ones column, warpgroup wg from hidden unit 64wg (wg 0's ninth tile is wg 1's first:
// not stored). Heads 0–3 (1 to 4 outputs): dV1ᵀ = hiddenᵀ·d out, warpgroup wg's 64 hidden units against
// d out's first 8 columns, the bias from the warps' column sums of d out (tiles.sums).
__device__ __forceinline__ void head_dw_wgmma(int h, const TcTiles& tiles, float* part) {
    const int wg = threadIdx.x >> 7;
    float acc[9][4];
    {
        const DwRows<8> v0(part + P_HEAD0W + h * HID * D, part + P_HEAD0B + h * HID, D, 64 * wg, HID, 0);
        dw_wgmma<9>(acc, tiles.d1 + 8 * wg * 64, D1_CHUNKS, tiles.x1, X1_CHUNKS);
        v0.add(acc);
    }
    float* w1 = part + P_HEAD1W + HEAD_OFF[h] * HID;
    float* b1 = part + P_HEAD1B + HEAD_OFF[h];
    if (h == 4) {
        const DwRows<8> v1(w1, wg ? b1 : nullptr, HID, 0, HEAD_OUT[4], 64 * wg);
        dw_wgmma<9>(acc, tiles.d2, D2_CHUNKS, tiles.x2 + 8 * wg * 64, X2_CHUNKS);
        v1.add(acc);
    } else {
        const DwCols v1t(w1, HID, 64 * wg, HEAD_OUT[h]);
        float acc1[1][4];
        dw_wgmma<1>(acc1, tiles.x2 + 8 * wg * 64, X2_CHUNKS, tiles.d2, D2_CHUNKS);
        v1t.add(acc1);
        bias_from_sums(tiles.sums, b1, HEAD_OUT[h]);
    }
}

// deform_bwd_chain_tc's FFN weight gradients, block-wide as head_dw_wgmma: dW1 = d yᵀ·z (warpgroup wg from
// z's column 64wg, with the ones column: wg 0's ninth tile is wg 1's first) and dW0 = d zᵀ·h1 (warpgroup
// wg's 64 rows from 64wg).
__device__ __forceinline__ void ffn_dw_wgmma(const TcTiles& tiles, float* part) {
    const int wg = threadIdx.x >> 7;
    float acc[9][4];
    {
        const DwRows<8> w1(part + P_FFN1W, wg ? part + P_FFN1B : nullptr, FFN, 0, D, 64 * wg);
        dw_wgmma<9>(acc, tiles.d2, D2_CHUNKS, tiles.z + 8 * wg * 64, X2_CHUNKS);
        w1.add(acc);
    }
    const DwRows<8> w0(part + P_FFN0W, part + P_FFN0B, D, 64 * wg, FFN, 0);
    dw_wgmma<9>(acc, tiles.d1 + 8 * wg * 64, D1_CHUNKS, tiles.x1, X1_CHUNKS);
    w0.add(acc);
}

// deform_bwd_chain_tc's attention weight gradients (one frame's projected tokens): warpgroup 0 dUT (and
// dbo through the ones column) = d attᵀ·P, warpgroup 1 dKTᵀ = fᵀ·ds, dKC from the warps' column sums of ds
// (tiles.sums).
__device__ __forceinline__ void attention_dw_wgmma(const TcTiles& tiles, const uint16_t* p_tile, const uint16_t* ds_tile,
                                                   float* part, float* part_tok) {
    if (threadIdx.x < 128) {
        const DwRows<1> ut(part_tok + DTOK_UT, part + P_BO, 8, 0, D, 0);
        float acc[2][4];
        dw_wgmma<2>(acc, tiles.d2, D2_CHUNKS, p_tile, P_CHUNKS);
        ut.add(acc);
    } else {
        const DwCols kt(part_tok + DTOK_K, D, 0, 8);
        float acc[1][4];
        dw_wgmma<1>(acc, tiles.x1, X1_CHUNKS, ds_tile, DS_CHUNKS);
        kt.add(acc);
    }
    bias_from_sums(tiles.sums, part_tok + DTOK_KC, 8);
}
#endif

// F_d head h's forward (recomputed, with the ReLU decisions from the tape: hid_on, the warp's shared copy)
// and backward for the warp's rows (g staged in tiles.x1, its fp16 A fragments in ga): d_g += its input
// gradient; then, block-wide, its weight gradients into the partial slice `part` (reuse: the tiles' mbarrier,
// waited on before head h > 0 stages its tiles, arrived on after its weight gradients). Every product of the
// head but the weight gradients' reads the fp16 copies v0, v1 and the biases (head_weights_to_shared)
// in shared memory; its d_x products take the gradients as fp16 with a scale per row
// (to_frags_row_scaled).
template <int NTH>
__device__ __forceinline__ void tc_head_bwd(const float* __restrict__ params, const uint16_t* v0, const uint16_t* v1,
                                            const float* biases, int h,
                                            const uint32_t (&ga)[4][4], const uint2* hid_on, const TcRows& rows,
                                            const CGaussians& canon, const CGaussians& d_out, float* d_pair,
                                            float (&d_g)[8][4], const TcTiles& tiles, float* part, TileReuse& reuse) {
    const uint16_t* v0h = v0 + h * HID * D;
    const uint16_t* v1h = v1 + V1_ROW[h] * 64;
    float hid[16][4], out[NTH][4];
    const uint2 pos = hid_on[32 * h + (threadIdx.x & 31)];
    const uint64_t hid_pos = pos.x | (uint64_t)pos.y << 32;
    DeltaInputs in;
    if constexpr (NTH == 1) in = delta_inputs<true>(h, rows, canon, d_out);
    // The forward again, with deform_fwd_heads_tc's products in its order (so its values).
    acc_init_full<16, true>(hid, biases + h * HID);
    mma_by_rows<16, 4>(hid, ga, v0h, 0);
    {  // the hidden units: ReLU in the conversions
        uint32_t a[8][4];
        to_frags<16, true, false, true>(hid, a);
        tc_head_out<NTH>(biases, v1, h, a, out);
    }
    if (h > 0) reuse.wait_free();  // head 0's tiles: the item's wait (deform_bwd_heads_tc)
    stage_tile_bf16<16, true>(tiles.x2, TC_LDW, X2_CHUNKS, hid);
    if constexpr (NTH == 1) deltas_bwd(h, out, in, rows, d_pair);
    else deltas_bwd_sh(out, rows, d_out);
    stage_tile_bf16<NTH>(tiles.d2, TC_LDX, D2_CHUNKS, out);
#if TC_WGMMA
    if constexpr (NTH == 1) column_sums_bf16(out, tiles.sums);
#endif
    {  // hid now holds d hid = d out·V1 through the forward's ReLU decisions
        uint32_t a[(NTH + 1) / 2][4];
        float inv[2];
        to_frags_row_scaled<NTH>(out, a, inv);
        mma_by_cols<16, (NTH + 1) / 2>(hid, a, v1h, V1_HALF);
        unscale_through_relu(hid, hid_pos, inv);
    }
    {  // d_g += d hid·V0, d hid staged while its product runs
        uint32_t a[8][4];
        float inv[2], dg[8][4];
        to_frags_row_scaled<16>(hid, a, inv);
        mma_by_cols<8, 8, false>(dg, a, v0h, 0);
        stage_tile_bf16<16>(tiles.d1, TC_LDW, D1_CHUNKS, hid);
#if TC_WGMMA
        wgmma_wait(dg);
#endif
        add_unscaled(d_g, dg, inv);
    }
#if TC_WGMMA
    fence_stores_for_wgmma();
    __syncthreads();
    head_dw_wgmma(h, tiles, part);
#else
    __syncthreads();
    block_dw<8, D, 9>({tiles.d1, TC_LDW, tiles.x1, TC_LDX, part + P_HEAD0W + h * HID * D, part + P_HEAD0B + h * HID, HID});
    const DwLayer<HID> out_layer = {tiles.d2, TC_LDX, tiles.x2, TC_LDW, part + P_HEAD1W + HEAD_OFF[h] * HID,
                                    part + P_HEAD1B + HEAD_OFF[h], HEAD_OUT[h]};
    if constexpr (NTH == 1) block_dw_narrow<HID>(out_layer);
    else block_dw<(8 * NTH + 15) / 16, HID, 9>(out_layer);
#endif
    reuse.read_done();
}

// The backward on the tensor cores, in two kernels over the same items, per block tile of 128 Gaussians of
// one frame (items (n-tile, frame), frame fastest; persistent: block g takes items g, g + G, …), from
// deform_fwd_*_tc's tape: deform_bwd_heads_tc takes the F_d heads (recomputed from g), deform_bwd_chain_tc
// the chain from LayerNorm 2 back to f (the attention's weights from the tape). Two kernels because one
// was larger than the instruction cache: its misses were a quarter of its stalls. The heads' d_g crosses
// over in the tape, in place of g (which only the heads read): so each forward serves one backward. Weight
// gradients: bf16 mma on the staged tiles (block_dw), biases through the ones column, LayerNorm γ/β fp32
// column sums (each warp's, added in warp order: deterministic); the projected tokens' gradients per
// frame (block_dw_attention); all into partials[g] (zeroed by the heads kernel) for deform_reduce, then
// deform_project_tokens_bwd. d_canonical: deform_pass_through_bwd (the heads kernel writes the
// log-scales', rotations' and opacities' per pair to d_pair); d_f: stored once per Gaussian, summed over
// the frames in deform_bwd_chain_tc. Arguments as deform_bwd, with no wt, then the tape the forward wrote
// for the same inputs, and for the heads d_pair, for the chain deform_project_tokens' output. Both launched with the same grid.

// The ones column (bf16 1.0 = 0x3f80, then 7 zeros) at column `in` of a staged tile (stage_tile_bf16's
// layout: rows of ld, or `chunks` per 8 rows).
__device__ __forceinline__ void stage_ones(uint16_t* tile, int ld, int chunks, int in) {
    for (int e = threadIdx.x; e < TC_TILE * 8; e += TC_THREADS) {
#if TC_WGMMA
        tile[cm_at(e / 8, in + e % 8, chunks)] = e % 8 ? 0 : 0x3f80;
#else
        tile[(e / 8) * ld + in + e % 8] = e % 8 ? 0 : 0x3f80;
#endif
    }
}

// deform_bwd_heads_tc: the heads' part; d_h2 (dL/dh2 = d_g through g's ReLU) into the tape's TAPE_G as bf16
// (the chain's backward rounds its products' operands to bf16 in any case).
// Shared: TC_BWD_HEADS_SMEM = 230 344 bytes (dynamic).
extern "C" __global__ void __launch_bounds__(TC_THREADS, 1)
deform_bwd_heads_tc(const float* __restrict__ params, DEFORM_BWD_TAIL, uint32_t* tape,
                    float* __restrict__ d_pair) {
    extern __shared__ __align__(1024) unsigned char smem[];  // the weight copies' swizzle is by address
    allow_dependent_launch();
    // z is not used here: x2 holds the heads' hidden units.
    const TcTiles tiles = {reinterpret_cast<uint16_t*>(smem + SB_X1), reinterpret_cast<uint16_t*>(smem + SB_X2), nullptr,
                           reinterpret_cast<uint16_t*>(smem + SB_D1), reinterpret_cast<uint16_t*>(smem + SB_D2),
                           reinterpret_cast<float*>(smem + SB_D2 + D2_SUMS)};
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    uint2* hid_on = reinterpret_cast<uint2*>(smem + SB_HID) + warp * 5 * 32;
    const CGaussians canon = {c_means, c_log_scales, c_rotations, c_opacities, c_sh};
    const CGaussians d_out = {do_means, do_scales, do_rotations, do_opacities, do_sh};
    float* part = partials + blockIdx.x * part_stride;
    for (long long e = threadIdx.x; e < part_stride; e += TC_THREADS) part[e] = 0.0f;
    stage_ones(tiles.x1, TC_LDX, X1_CHUNKS, D);
    stage_ones(tiles.x2, TC_LDW, X2_CHUNKS, HID);
#if TC_WGMMA
    for (int e = threadIdx.x; e < D2_SUMS / 4; e += TC_THREADS) reinterpret_cast<uint32_t*>(tiles.d2)[e] = 0u;
#endif
    uint16_t* v0 = reinterpret_cast<uint16_t*>(smem + SB_V0);
    uint16_t* v1 = reinterpret_cast<uint16_t*>(smem + SB_V1);
    float* biases = reinterpret_cast<float*>(smem + SB_BIASES);
    head_weights_to_shared(params, v0, v1, biases);
    TileReuse reuse(smem + SB_REUSE);
    if (threadIdx.x == 0) reuse.init();
    __syncthreads();
    reuse.read_done();  // phase 0: the tiles are free for the first item
    wait_for_previous_grid();  // deform_fwd_heads_tc's tape (this kernel writes d_h2 over its g)
    const int items = (N + TC_TILE - 1) / TC_TILE * B;
    for (int item = blockIdx.x; item < items; item += gridDim.x) {
        const int n_first = (item / B) * TC_TILE + warp * 16;
        const TcRows rows = tc_rows(n_first, item % B, N);
        if (n_first < N)
            prefetch_deltas_inputs(canon, d_out, (long long)(item % B) * N + n_first, n_first, min(16, N - n_first));
        uint32_t* record = tape + tape_record(item, warp);
        uint32_t ga[4][4], g_pos;
        tc_tape_load_heads(record, hid_on, tiles.x1, ga, g_pos, reuse);
        cp_async_wait_all();  // the heads' decisions
        __syncwarp();
        float d_g[8][4];
        acc_init<8>(d_g, nullptr, 0);
#pragma unroll 1
        for (int h = 0; h < 4; ++h)
            tc_head_bwd<1>(params, v0, v1, biases, h, ga, hid_on, rows, canon, d_out, d_pair, d_g, tiles, part, reuse);
        tc_head_bwd<6>(params, v0, v1, biases, 4, ga, hid_on, rows, canon, d_out, d_pair, d_g, tiles, part, reuse);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            float v[4];
#pragma unroll
            for (int e = 0; e < 4; ++e) v[e] = g_pos >> (4 * j + e) & 1 ? d_g[j][e] : 0.0f;
            __stcs(reinterpret_cast<uint2*>(record + TAPE_G) + j * 32 + lane,
                   make_uint2(pack_bf16(v[0], v[1]), pack_bf16(v[2], v[3])));
        }
    }
}

// deform_bwd_chain_tc: the chain's part, from deform_bwd_heads_tc's d_h2. Shared: TC_BWD_CHAIN_SMEM =
// 188 424 bytes (dynamic). The tiles' reuse: after the FFN's weight gradients and after the attention's,
// by TileReuse (see the waits), where block barriers were.
extern "C" __global__ void __launch_bounds__(TC_THREADS, 1)
deform_bwd_chain_tc(const float* __restrict__ params, DEFORM_BWD_TAIL,
                    const uint32_t* __restrict__ tape, const uint32_t* __restrict__ tok) {
    extern __shared__ __align__(1024) unsigned char smem[];  // the weight copies' swizzle is by address
    // x2 is not used here: its region holds z.
    const TcTiles tiles = {reinterpret_cast<uint16_t*>(smem + SB_X1), nullptr, reinterpret_cast<uint16_t*>(smem + SB_X2),
                           reinterpret_cast<uint16_t*>(smem + SB_D1), reinterpret_cast<uint16_t*>(smem + SB_D2),
                           reinterpret_cast<float*>(smem + SB_P + P_SUMS)};
    const int warp = threadIdx.x >> 5;
    float* sums = reinterpret_cast<float*>(smem + SB_SUMS);  // the warps' LayerNorm sums, [TC_WARPS][4·D]
    float* warp_sums = sums + warp * 4 * D;
    const DropArgs dr = {key, threshold, scale};
    uint16_t* p_tile = reinterpret_cast<uint16_t*>(smem + SB_P);
    uint16_t* ds_tile = reinterpret_cast<uint16_t*>(smem + SB_DS);
    float* part = partials + blockIdx.x * part_stride;
    stage_ones(tiles.x1, TC_LDX, X1_CHUNKS, D);
    stage_ones(tiles.z, TC_LDW, X2_CHUNKS, FFN);
    stage_ones(p_tile, TC_LDP, P_CHUNKS, 8);
    // The weights its products read (from L1/L2 this kernel took 0.90 ms, from shared memory 0.80; B = 8,
    // H100).
    const uint16_t* w0 = reinterpret_cast<uint16_t*>(smem + SB_W0);
    const uint16_t* w1 = reinterpret_cast<uint16_t*>(smem + SB_W1);
    weight_to_shared(reinterpret_cast<uint16_t*>(smem + SB_W0), 0, params + P_FFN0W, FFN, D);
    weight_to_shared(reinterpret_cast<uint16_t*>(smem + SB_W1), FC_FFN1_HALF, params + P_FFN1W, D, FFN);
#if TC_WGMMA
    fence_stores_for_wgmma();
#endif
    TileReuse reuse(smem + SB_CHAIN_REUSE);
    if (threadIdx.x == 0) reuse.init();
    __syncthreads();
    reuse.read_done();  // phase 0: the tiles and the LayerNorm sums are free for the first item
    wait_for_previous_grid();  // deform_bwd_heads_tc's d_h2 on the tape, its partial slices
    // Block g takes the n-tiles g, g + G, … with every frame of each in turn, so that d_f sums over the
    // frames in shared memory (df_sum: each lane its own 32 values) and is stored once per n-tile, instead
    // of B frames' atomics to the same addresses at about the same time.
    float* df_sum = reinterpret_cast<float*>(smem + SB_DF) + warp * 32 * 32 + (threadIdx.x & 31);
    const int n_tiles = (N + TC_TILE - 1) / TC_TILE;
#pragma unroll 1
    for (int k = 0; blockIdx.x + k / B * gridDim.x < n_tiles; ++k) {
        const int b = k % B, item = (blockIdx.x + k / B * gridDim.x) * B + b;
        const TcRows rows = tc_rows((item / B) * TC_TILE + warp * 16, b, N);
        const uint32_t* tok_b = tok + (long long)b * TOK_FRAME;
        float* part_tok = part + PART_TAIL + (long long)b * DTOK_FRAME;
        const uint32_t* record = tape + tape_record(item, warp);
        const uint32_t* xh = record + TAPE_XH;
        TcChain keep;
        float d_g[8][4];
        tc_tape_load_chain(record, tiles.z, d_g, keep);
        prefetch_partials(part + P_FFN0W, P_LN2G - P_FFN0W);  // the FFN's partials (both layers, weights and biases)
        // LayerNorm 2: d_h2 in d_g, γ2/β2 sums, d_x2. The tape's z has arrived (each lane waits for its own
        // copies; z is read after a barrier); x̂2 comes from L2.
        cp_async_wait_all();
        float xs[8][4], t[8][4];
        load_acc_f16(xh + 512, xs);
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) t[j][e] = d_g[j][e] * xs[j][e];
        reuse.wait_free();  // the last item's LayerNorm sums and attention tiles are read (z: before its barrier)
        store_column_sums(t, warp_sums + 2 * D, d_g, warp_sums + 3 * D);
        ln_acc_vjp(d_g, xs, keep.rstd2, params + P_LN2G);  // d_g holds d_x2
        // FFN: d_y = drop ⊙ d_x2 (D2), d_z = ReLU' ⊙ d_y·W1 (D1), d_h1 = d_x2 + d_z·W0.
        apply_kept(d_g, keep.kept2, dr, t);
        {  // both on fp16 operands, the gradient rows scaled into fp16's range (to_frags_row_scaled); d y
           // staged while d_z's product runs (d z while d_h1's spilled 20 bytes)
            float dz[16][4], inv[2];
            {
                uint32_t a[4][4];
                to_frags_row_scaled<8>(t, a, inv);
                mma_by_cols<16, 4, false>(dz, a, w1, FC_FFN1_HALF);
                stage_tile_bf16<8>(tiles.d2, TC_LDX, D2_CHUNKS, t);
#if TC_WGMMA
                wgmma_wait(dz);
#endif
            }
            unscale_through_relu(dz, keep.z_pos, inv);
            stage_tile_bf16<16>(tiles.d1, TC_LDW, D1_CHUNKS, dz);
            uint32_t a[8][4];
            float dh[8][4];
            to_frags_row_scaled<16>(dz, a, inv);
            mma_by_cols<8, 8>(dh, a, w0, 0);
            add_unscaled(d_g, dh, inv);  // d_g holds d_h1
        }
        load_acc_f16(xh, xs);
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int c = acc_col(j, e);
                t[j][e] = __ldg(params + P_LN1G + c) * xs[j][e] + __ldg(params + P_LN1B + c);  // h1
            }
        stage_tile_bf16<8>(tiles.x1, TC_LDX, X1_CHUNKS, t);
#if TC_WGMMA
        fence_stores_for_wgmma();
        __syncthreads();
        ffn_dw_wgmma(tiles, part);
#else
        __syncthreads();
        block_dw_pair<4, FFN, 9, 8, D, 9>({tiles.d2, TC_LDX, tiles.z, TC_LDW, part + P_FFN1W, part + P_FFN1B, D},
                                         {tiles.d1, TC_LDW, tiles.x1, TC_LDX, part + P_FFN0W, part + P_FFN0B, FFN});
#endif
        reuse.read_done();
        prefetch_partials(part_tok, DTOK_FRAME);  // the frame's projected tokens' partials
        // LayerNorm 1: γ1/β1 sums, d_x1 (in d_g; the residual's share of d_f), d_att = drop ⊙ d_x1 (D2).
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) t[j][e] = d_g[j][e] * xs[j][e];
        store_column_sums(t, warp_sums, d_g, warp_sums + D);
        ln_acc_vjp(d_g, xs, keep.rstd1, params + P_LN1G);
        apply_kept(d_g, keep.kept1, dr, t);
        reuse.wait_free();  // the FFN's weight gradients are read
        stage_tile_bf16<8>(tiles.d2, TC_LDX, D2_CHUNKS, t);
        // Attention: the forward's weights from the tape, the scores' gradients, and the query's share of d_f.
        float p[1][4], ds[1][4];
        {
            const float4 pv = __ldcs(reinterpret_cast<const float4*>(record + TAPE_P) + (threadIdx.x & 31));
            p[0][0] = pv.x, p[0][1] = pv.y, p[0][2] = pv.z, p[0][3] = pv.w;
        }
        load_features(f, rows, xs);
        tc_attention_bwd(t, p, tok_b, ds, d_g);  // d_g holds this frame's d_f
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                float& sum = df_sum[(4 * j + e) * 32];
                d_g[j][e] = b == 0 ? d_g[j][e] : sum + d_g[j][e];  // frames in order, from 0 (the twin's order)
                if (b + 1 < B) sum = d_g[j][e];
            }
        if (b + 1 == B)
#pragma unroll
            for (int r = 0; r < 2; ++r)
                if (rows.valid[r])
#pragma unroll
                    for (int j = 0; j < 8; ++j)
                        *reinterpret_cast<float2*>(d_f + (long long)rows.n[r] * D + acc_col(j, 0)) =
                            make_float2(d_g[j][2 * r], d_g[j][2 * r + 1]);
        stage_tile_bf16<8>(tiles.x1, TC_LDX, X1_CHUNKS, xs);
        stage_tile_bf16<1>(p_tile, TC_LDP, P_CHUNKS, p);
        stage_tile_bf16<1>(ds_tile, 8, DS_CHUNKS, ds);
#if TC_WGMMA
        column_sums_bf16(ds, tiles.sums);
        fence_stores_for_wgmma();
#endif
        __syncthreads();
        // This item's LayerNorm sums into the partial slice, over the warps in order (deterministic), then
        // the attention's products.
        for (int e = threadIdx.x; e < 4 * D; e += TC_THREADS) {
            float s = sums[e];
            for (int w = 1; w < TC_WARPS; ++w) s += sums[w * 4 * D + e];
            part[(e < 2 * D ? P_LN1G : P_LN2G - 2 * D) + e] += s;
        }
#if TC_WGMMA
        attention_dw_wgmma(tiles, p_tile, ds_tile, part, part_tok);
#else
        block_dw_attention({tiles.d2, TC_LDX, p_tile, TC_LDP, part_tok + DTOK_UT, part + P_BO, D},
                           {ds_tile, 8, tiles.x1, TC_LDX, part_tok + DTOK_K, part_tok + DTOK_KC, 8});
#endif
        reuse.read_done();
    }
}

// deform_pass_through_bwd: on the tensor-core path, the canonical Gaussians' gradients, each the sum over
// the frames of a per-pair gradient: d_out's for the means and SH coefficients (the deltas pass them
// through), deform_bwd_heads_tc's d_pair for the log-scales, rotations and opacities. One pass here instead
// of 59 atomics per pair in deform_bwd_heads_tc, where the B blocks of an n-tile's frames add to the same
// addresses at about the same time; frames in order, from 0 (the twin's order), so deterministic. One
// thread per output.
//   do_means [B,N,3], do_sh [B,N,48], d_pair [B,N,PAIR_GRADS] → dc_means [N,3], dc_sh [N,48],
//   dc_log_scales [N,3], dc_rotations [N,4], dc_opacities [N] (=)
// Bytes 4·59·(B·N + N). FLOP 59·B·N.
extern "C" __global__ void __launch_bounds__(REDUCE_THREADS)
deform_pass_through_bwd(const float* __restrict__ do_means, const float* __restrict__ do_sh,
                        const float* __restrict__ d_pair, int B, int N, float* __restrict__ dc_means,
                        float* __restrict__ dc_sh, float* __restrict__ dc_log_scales,
                        float* __restrict__ dc_rotations, float* __restrict__ dc_opacities) {
    const long long e = (long long)blockIdx.x * REDUCE_THREADS + threadIdx.x, n_means = 3LL * N, n_sh = 48LL * N;
    if (e >= (3LL + 48 + PAIR_GRADS) * N) return;
    const float* src;
    long long i, frame;  // the output's offset in one frame of src, and src's frame stride
    float* dst;
    if (e < n_means) {
        src = do_means, i = e, frame = n_means, dst = dc_means + i;
    } else if (e < n_means + n_sh) {
        src = do_sh, i = e - n_means, frame = n_sh, dst = dc_sh + i;
    } else {
        src = d_pair, i = e - n_means - n_sh, frame = PAIR_GRADS * (long long)N;
        const long long n = i / PAIR_GRADS;
        const int k = (int)(i % PAIR_GRADS);
        dst = k < PG_ROTATIONS ? dc_log_scales + n * 3 + k
            : k < PG_OPACITY   ? dc_rotations + n * 4 + (k - PG_ROTATIONS)
                               : dc_opacities + n;
    }
    float s = 0.0f;
    for (int b = 0; b < B; ++b) s += __ldcs(src + b * frame + i);
    *dst = s;
}

// deform_reduce: sums the backward's G partial slices (deterministic) into outputs [first, last) of the
// chain section of d_params followed by the slices' `tail` floats from PART_TAIL, all (=): e < CHAIN_FLOATS
// goes to d_params[e], the rest to d_tail[e − CHAIN_FLOATS] (d_kv [2,B,4,64] after deform_bwd, the projected
// tokens' gradients [B][DTOK_FRAME] after deform_bwd_*_tc). The tensor-core path reduces its tail first on
// the main stream, for deform_project_tokens_bwd, and [P_BO, CHAIN_FLOATS) on the second stream.
// A block sums REDUCE_COLS = 32 consecutive outputs: warp s of 8 sums slices s, s + 8, … in order, a lane
// per output (128 contiguous bytes per slice), then warp 0 adds the 8 warps' sums in order through shared
// memory. Each thread has G/8 loads in flight, where one thread per output summing all G in a row waited an
// L2 round trip per slice.
//   partials [G, part_stride] → d_params [CHAIN_FLOATS] (first floats of the gradient buffer), d_tail
// Bytes: 4·(G + 1)·(last − first). FLOP: G·(last − first).
// Where column c (< 16) of a 16-column group of a weight gradient lies in the partial slice on wgmma
// (DwRows, NW even): lane t's columns 2t, 2t + 1 of tiles 0 and 1 (8 + 2t, 9 + 2t) at 4t … 4t + 3.
__device__ __forceinline__ int slice_column(int c) { return 4 * ((c & 7) >> 1) + 2 * (c >> 3) + (c & 1); }
// The regions DwRows<8> adds into (16-aligned): the FFN's weights, the heads' first layers, head 4's V1 (from
// its first output, HEAD_OFF[4] = 11).
__device__ __forceinline__ bool dw_permuted(long long e) {
    return (e >= P_FFN0W && e < P_FFN0B) || (e >= P_FFN1W && e < P_FFN1B) || (e >= P_HEAD0W && e < P_HEAD0B) ||
           (e >= P_HEAD1W + 11 * HID && e < P_HEAD1B);
}
static_assert(P_FFN0W % 16 == 0 && P_FFN1W % 16 == 0 && P_HEAD0W % 16 == 0 && (P_HEAD1W + 11 * HID) % 16 == 0,
              "the permuted weight-gradient regions start on 16-column groups");

#define REDUCE_COLS 32
#define REDUCE_SPLITS (REDUCE_THREADS / REDUCE_COLS)
// permuted: the slices come from the tensor-core backward on wgmma (slice_column's layout in dw_permuted's
// regions); the sm_80 module's kernels write the plain layout and ignore it.
extern "C" __global__ void __launch_bounds__(REDUCE_THREADS)
deform_reduce(const float* __restrict__ partials, long long part_stride, int G, int first, int last,
              float* __restrict__ d_params, float* __restrict__ d_tail, int permuted) {
    __shared__ float sums[REDUCE_SPLITS][REDUCE_COLS];
    const int col = threadIdx.x % REDUCE_COLS, split = threadIdx.x / REDUCE_COLS;
    const int e = first + blockIdx.x * REDUCE_COLS + col;
    float s = 0.0f;
    if (e < last) {
        long long from = e < CHAIN_FLOATS ? e : PART_TAIL + e - CHAIN_FLOATS;
#if TC_WGMMA
        if (permuted && dw_permuted(e)) from = (e & ~15LL) | slice_column(e & 15);
#endif
#pragma unroll 4
        for (int g = split; g < G; g += REDUCE_SPLITS) s += partials[g * part_stride + from];
    }
    sums[split][col] = s;
    __syncthreads();
    if (split != 0 || e >= last) return;
#pragma unroll
    for (int q = 1; q < REDUCE_SPLITS; ++q) s += sums[q][col];
    if (e < CHAIN_FLOATS) d_params[e] = s;
    else d_tail[e - CHAIN_FLOATS] = s;
}

// One entry of a frame's projected tokens (TOK_* above), fp32: KT[row][ht] or UT[row][ht].
__device__ __forceinline__ float projected_token(const float* __restrict__ params, const float* __restrict__ kv, int B,
                                                 int b, bool ut, int row, int ht) {
    const int h = ht / 4, t = ht % 4;
    const float* x = kv + ((long long)(ut ? B + b : b) * 4 + t) * D + 32 * h;  // v or k, head h's columns
    // UT: row `row` of Wo, head h's columns; KT: column `row` of Wq's head-h rows.
    const float* w = ut ? params + P_WO + row * D + 32 * h : params + P_WQ + 32 * h * D + row;
    const int step = ut ? 1 : D;
    float s = 0.0f;
    for (int c = 0; c < 32; ++c) s = fmaf(w[c * step], x[c], s);
    return ut ? s : s * ATT_SCALE;
}

// deform_project_tokens: each frame's projected tokens as the forward's and the backward's mma fragments
// (TOK_* above), and KC. A block of PROJECT_THREADS per frame: first the frame's 2·64·8 projected values and
// KC in fp32 into shared memory, a thread each (a dot product of 32), then the words packed from there. (A
// thread per word computed each value up to four times, once per layout and rounding: 9.3 µs at B = 8 on an
// H100, with 7 blocks per frame.)
//   params, kv [2,B,4,64] → tok [B][TOK_FRAME] (words)
// Bytes 4·B·(512 + TOK_FRAME) (the weights from cache). FLOP 2·B·(2·512 + 8)·32.
#define PROJECT_THREADS 1024
extern "C" __global__ void __launch_bounds__(PROJECT_THREADS)
deform_project_tokens(const float* __restrict__ params, const float* __restrict__ kv, int B, uint32_t* __restrict__ tok) {
    allow_dependent_launch();
    __shared__ float values[2][D][8];  // [KT, UT][row][ht]
    __shared__ float kc[8];
    const int b = blockIdx.x;
    for (int v = threadIdx.x; v < 2 * D * 8; v += PROJECT_THREADS)
        values[v / (D * 8)][v / 8 % D][v % 8] = projected_token(params, kv, B, b, v >= D * 8, v / 8 % D, v % 8);
    if (threadIdx.x < 8) {  // KC[ht] = bq_h·k_t,h / √32
        const int ht = threadIdx.x, h = ht / 4, t = ht % 4;
        const float* k = kv + ((long long)b * 4 + t) * D + 32 * h;
        float s = 0.0f;
        for (int c = 0; c < 32; ++c) s = fmaf(params[P_BQ + 32 * h + c], k[c], s);
        kc[ht] = s * ATT_SCALE;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < TOK_FRAME; e += PROJECT_THREADS) {
        uint32_t word;
        if (e >= TOK_KC) {
            word = __float_as_uint(kc[e - TOK_KC]);
        } else {
            const int first = e < TOK_KT       ? TOK_UT
                              : e < TOK_FKT    ? TOK_KT
                              : e < TOK_FKT_LO ? TOK_FKT
                              : e < TOK_FUT    ? TOK_FKT_LO
                              : e < TOK_FUT_LO ? TOK_FUT
                                               : TOK_FUT_LO;
            const bool ut = first == TOK_UT || first >= TOK_FUT;
            const bool k_rows = first == TOK_UT || first == TOK_FKT || first == TOK_FKT_LO;  // K = the rows
            const float(*src)[8] = values[ut];
            const int i = e - first;
            float v[2];
            if (k_rows) {  // k-step s, lane (g, t), half y holds rows 16s + 2t + 8y and + 1 of column g
                const int y = i & 1, lane = (i >> 1) & 31, s = i >> 6, row = 16 * s + 2 * (lane & 3) + 8 * y;
                for (int c = 0; c < 2; ++c) v[c] = src[row + c][lane >> 2];
            } else {  // column tile jt, lane (g, t) holds columns 2t and 2t + 1 of row 8jt + g
                const int lane = i & 31, row = 8 * (i >> 5) + (lane >> 2);
                for (int c = 0; c < 2; ++c) v[c] = src[row][2 * (lane & 3) + c];
            }
            word = first < TOK_FKT                             ? pack_bf16(v[0], v[1])
                   : first == TOK_FKT_LO || first == TOK_FUT_LO ? pack_f16_part<true>(v[0], v[1])
                                                                : pack_f16(v[0], v[1]);
        }
        tok[(long long)b * TOK_FRAME + e] = word;
    }
}

// deform_project_tokens_bwd: from the projected tokens' gradients summed over each frame's pairs (d_tok
// [B][DTOK_FRAME], DTOK_* layout: deform_reduce's), the query's and the out-projection's weight gradients
// and d_kv, by the chain rule through deform_project_tokens (S = 1/√32, ht = 4h + t, h the head of c):
//   dWq[c][i] = S·Σ_b,t k_t[c]·dKT[ht][i],  dbq[c] = S·Σ_b,t k_t[c]·dKC[ht],  dWo[j][c] = Σ_b,t dUT[j][ht]·v_t[c],
//   d k_t[c] = S·(Σ_i Wq[c][i]·dKT[ht][i] + bq[c]·dKC[ht]),  d v_t[c] = Σ_j Wo[j][c]·dUT[j][ht].
// It also zeroes wk, bk, wv, bv (tokens_bwd adds theirs), so that with it d_params' [0, P_BO) is complete
// and deform_reduce can leave that range out. dbo came through deform_reduce (the attention weights' ones
// column). One warp per output float: lane m takes terms m, m + 32, … (the B·4 (b, t) of a weight
// gradient, the 64 i or j of d_kv), then an xor butterfly (a fixed order: deterministic), so that a warp's
// loads are in flight together; one thread per output, a term at a time, took 27 µs at B = 8 and 122 µs
// at B = 32 on an H100. The zeroed range goes last, 32 floats per warp. Warps [first, last) of that order
// run, so that the launcher can put the weight gradients (warps [0, 2·4096 + 64)) on its second stream
// and keep d_kv and the zeroing (the token path's inputs) on the main one.
//   params, kv [2,B,4,64], d_tok → d_params [0, P_BO) (=); d_kv [2,B,4,64] (=)
// Bytes 4·(B·(DTOK_FRAME + 512) + 2·4096 + 64) read once (then from cache), 4·(P_BO + 512·B) written.
// FLOP 2·(8 256·4·B + 512·B·64).
extern "C" __global__ void __launch_bounds__(REDUCE_THREADS)
deform_project_tokens_bwd(const float* __restrict__ params, const float* __restrict__ kv, const float* __restrict__ d_tok,
                          int B, int first, int last, float* __restrict__ d_params, float* __restrict__ d_kv) {
    constexpr int N_WQ = D * D, N_BQ = N_WQ + D, N_WO = N_BQ + D * D;  // output ranges before d_kv
    const int lane = threadIdx.x & 31, e = first + ((blockIdx.x * REDUCE_THREADS + threadIdx.x) >> 5);
    const int n_kv = 2 * B * 4 * D;
    static_assert((P_WO - P_WK) % 32 == 0, "the zeroed range is whole warps");
    if (e >= last) return;
    if (e >= N_WO + n_kv) {
        d_params[P_WK + 32 * (e - N_WO - n_kv) + lane] = 0.0f;
        return;
    }
    // Each branch sums its terms into s and names the output, and what to add and scale after the sum.
    float s = 0.0f, add = 0.0f, scale = 1.0f;
    float* out;
    if (e < N_BQ) {  // dWq[c][i] or dbq[c]
        const int c = e < N_WQ ? e / D : e - N_WQ, i = e % D, h = c / 32;
        for (int m = lane; m < 4 * B; m += 32) {
            const int b = m / 4, t = m % 4;
            const float* dt = d_tok + (long long)b * DTOK_FRAME;
            const float g = e < N_WQ ? dt[DTOK_K + (4 * h + t) * D + i] : dt[DTOK_KC + 4 * h + t];
            s = fmaf(kv[(long long)m * D + c], g, s);
        }
        out = d_params + (e < N_WQ ? P_WQ : P_BQ - N_WQ) + e, scale = ATT_SCALE;
    } else if (e < N_WO) {  // dWo[j][c]
        const int j = (e - N_BQ) / D, c = (e - N_BQ) % D, h = c / 32;
        for (int m = lane; m < 4 * B; m += 32)
            s = fmaf(d_tok[(long long)(m / 4) * DTOK_FRAME + DTOK_UT + j * 8 + 4 * h + m % 4], kv[((long long)B * 4 + m) * D + c], s);
        out = d_params + P_WO + e - N_BQ;
    } else {  // d_kv: K rows, then V rows
        const int r = e - N_WO, is_v = r >= B * 4 * D, bt = (r % (B * 4 * D)) / D, c = r % D;
        const int b = bt / 4, t = bt % 4, ht = 4 * (c / 32) + t;
        const float* dt = d_tok + (long long)b * DTOK_FRAME;
        for (int k = lane; k < D; k += 32)
            s = is_v ? fmaf(params[P_WO + k * D + c], dt[DTOK_UT + k * 8 + ht], s)
                     : fmaf(params[P_WQ + c * D + k], dt[DTOK_K + ht * D + k], s);
        out = d_kv + r;
        if (!is_v) add = params[P_BQ + c] * dt[DTOK_KC + ht], scale = ATT_SCALE;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) *out = (s + add) * scale;
}
