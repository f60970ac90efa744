// The deformation network's per-frame token path (SPEC §5; CPU twin src/cpu/audio.rs): AudioNet (4 Conv1d
// stride 2 + LeakyReLU 0.02, FC 64→64 LeakyReLU →32) on the 8 windows, AudioAttNet (5 Conv1d over the
// windows + Linear(8,8) + softmax) → weighted sum, audio MLP 32→64 ReLU →64 (no bias) → a, the identity
// embedding i, M(a,i) = C[(U1 a) ⊙ (U2 i)] + W2 a + W3 i + b3 (or with + instead of ⊙), the eye token
// (sinusoid of 16 frequencies → MLP), the view token (R, T → MLP), the null token, and the K/V projections
// of the 4 tokens. fp32 throughout.
//
// Mapping: four kernels in two directions. AudioNet runs on blocks of TOK_THREADS = 512 threads per window
// (tokens_audio_fwd) or per TOK_AUDIO_BWD_WINDOWS windows (tokens_audio_bwd); the rest of the frame, from
// AudioAttNet on, on one block per frame (tokens_fwd, tokens_bwd); the windows' codes and their gradients
// pass through the tape and d_codes. Every activation of a block lives in shared memory (S_* offsets below
// for the frame's, 26 KB forward, 35 KB backward; WindowRows for AudioNet's); each layer is one block-wide
// pass between __syncthreads, and layers that do not depend on each other share a pass. The work is tiny
// (≈ 0.5 MFLOP per frame) and latency-bound, so the passes shorten the serial chains: a group of G lanes
// (G = 1…32, chosen per layer to fill the block) splits each output's input sum and combines it with
// __shfl_xor_sync, each thread carries all rows (and, in a conv, positions) of its output so a weight is
// read once, and the loops are unrolled so a thread's weight loads are in flight together. Sums are
// reassociated (split and tree-combined) against the CPU twin's increasing order; biases are still added
// last. The backward keeps dL/d(pre-activation) in its buffers: each layer's d_x is stored already
// multiplied by act' of its input, which removes the separate act' pass and its barrier.
//
// Shapes: params, d_params: the flat buffer of src/model/deform.rs (T_* / K_* offsets; the last three
// tensors depend on C and the identity count). audio [B,8,16,C], eye [B], view [B,12], ids [B] (int32);
// kv, d_kv [2,B,4,64] (K rows then V rows).
// The backward reads the forward's activations from the tape and adds each block's weight gradients with
// atomicAdd into d_params (the token section must be zeroed before; wk, bk, wv, bv are added on top of
// deform_reduce's values): B atomics per weight (AudioNet's: 8·B / TOK_AUDIO_BWD_WINDOWS), so not bitwise
// deterministic across runs.
// NaN policy: NaNs propagate. An out-of-range identity reads row 0 (the launcher checks ids on the host).
// measured: H200, commit eab3cae, B = 8 (profiler): tokens_fwd 94 µs, tokens_bwd 150 µs (one thread per
// output, 256 threads and a barrier per layer took 243 / 351 µs); H100, B = 8, blk_conv carrying every
// row: tokens_fwd 92 → 38 µs (tokens_bwd 53 µs); with AudioNet on blocks of its own (H100, B = 8, profiler,
// baf3e0a): tokens_audio_fwd 17 µs + tokens_fwd 16 µs against 45.5, tokens_bwd 29 µs + tokens_audio_bwd 27 µs
// against 67.7, and the training step 35 µs shorter. Still latency-bound: each phase is a barrier after a
// short chain of shared-memory FMAs. The window softmax's backward sums run in the twin's order
// (serially): their difference cancels, and the AudioAttNet gradients behind it amplify reassociation.

#define TOK_THREADS 512
#define D 64
#include "activation.cuh"

// The K/V projections' offsets in the chain section (kernels/attention.cu: P_WK … P_BV).
constexpr int K_WK = 4160, K_BK = 8256, K_WV = 8320, K_BV = 12416;
// Token section, in src/model/deform.rs's order, starting after the chain's 82 683 floats.
constexpr int T_AN1W = 82683;
constexpr int T_AN1B = T_AN1W + 32 * 32 * 3;
constexpr int T_AN2W = T_AN1B + 32;
constexpr int T_AN2B = T_AN2W + 64 * 32 * 3;
constexpr int T_AN3W = T_AN2B + 64;
constexpr int T_AN3B = T_AN3W + 64 * 64 * 3;
constexpr int T_FC0W = T_AN3B + 64;
constexpr int T_FC0B = T_FC0W + 64 * 64;
constexpr int T_FC1W = T_FC0B + 64;
constexpr int T_FC1B = T_FC1W + 32 * 64;
constexpr int T_AT0W = T_FC1B + 32;
constexpr int T_AT0B = T_AT0W + 16 * 32 * 3;
constexpr int T_AT1W = T_AT0B + 16;
constexpr int T_AT1B = T_AT1W + 8 * 16 * 3;
constexpr int T_AT2W = T_AT1B + 8;
constexpr int T_AT2B = T_AT2W + 4 * 8 * 3;
constexpr int T_AT3W = T_AT2B + 4;
constexpr int T_AT3B = T_AT3W + 2 * 4 * 3;
constexpr int T_AT4W = T_AT3B + 2;
constexpr int T_AT4B = T_AT4W + 1 * 2 * 3;
constexpr int T_ATFCW = T_AT4B + 1;
constexpr int T_ATFCB = T_ATFCW + 8 * 8;
constexpr int T_AM0 = T_ATFCB + 8;
constexpr int T_AM1 = T_AM0 + 64 * 32;
constexpr int T_U1 = T_AM1 + 64 * 64;
constexpr int T_U2 = T_U1 + 64 * 64;
constexpr int T_MC = T_U2 + 64 * 64;
constexpr int T_W2 = T_MC + 64 * 64;
constexpr int T_W3 = T_W2 + 64 * 64;
constexpr int T_W3B = T_W3 + 64 * 64;
constexpr int T_EYE0W = T_W3B + 64;
constexpr int T_EYE0B = T_EYE0W + 64 * 32;
constexpr int T_EYE1W = T_EYE0B + 64;
constexpr int T_EYE1B = T_EYE1W + 64 * 64;
constexpr int T_VIEW0W = T_EYE1B + 64;
constexpr int T_VIEW0B = T_VIEW0W + 64 * 12;
constexpr int T_VIEW1W = T_VIEW0B + 64;
constexpr int T_VIEW1B = T_VIEW1W + 64 * 64;
constexpr int T_NULL = T_VIEW1B + 64;
constexpr int T_AN0W = T_NULL + 64;  // [32, C, 3], then an_conv0_b [32], then id_emb [identities, 64]
static_assert(T_AN0W == 150752, "token layout changed: update src/model/deform.rs and its test");

// Shared memory (floats): forward activations, then the backward's buffers.
#define S_AN0 0        // [8 windows][8][32]
#define S_AN1 2048     // [8][4][32]
#define S_AN2 3072     // [8][2][64]
#define S_AN3 4096     // [8][64]
#define S_FC0 4608     // [8][64]
#define S_XW 5120      // [8][32]
#define S_AT0 5376     // [8][16]
#define S_AT1 5504     // [8][8]
#define S_AT2 5568     // [8][4]
#define S_AT3 5600     // [8][2]
#define S_AT4 5616     // [8][1]
#define S_LOG 5624     // [8]
#define S_WTS 5632     // [8]
#define S_Y 5640       // [32]
#define S_AH 5672      // [64] each from here
#define S_A 5736
#define S_I 5800
#define S_U 5864
#define S_V 5928
#define S_G 5992
#define S_MT 6056      // [3][64]: slot 0 unused (C g goes straight into token 0), W2 a, W3 i + b3
#define S_ES 6248      // [32]
#define S_EH 6280
#define S_VH 6344
#define S_TOK 6408     // [4][64]
#define TOK_FWD_FLOATS 6664
// Backward: every buffer holds dL/d(pre-activation) of the layer that produced it, so a layer's backward
// needs no separate act' pass (its input's act' is applied where its d_x is stored).
#define S_DKV 6664     // [2][4][64]: this frame's d_kv rows (K then V)
#define S_DA 7176      // [8][32]: d X (window codes)
#define S_DB 7432      // [256] each: ping-pong buffers of AudioAttNet's convs
#define S_DC 7688
#define S_DTOK 7944    // [4][64]
#define S_DVH 8200     // [64] each from here
#define S_DEH 8264
#define S_DAA 8328
#define S_DI 8392
#define S_DU 8456
#define S_DV 8520
#define S_DAH 8584
#define S_DY 8648      // [32]
#define S_DLOG 8680    // [8]
#define TOK_BWD_FLOATS 8688
static_assert(TOK_FWD_FLOATS * 4 == 26656 && TOK_BWD_FLOATS * 4 == 34752,
              "shared memory changed: update TOK_FWD_SMEM / TOK_BWD_SMEM in src/cuda/audio.rs");

// AudioNet's activations of NW consecutive windows in tokens_audio_fwd's and tokens_audio_bwd's shared
// memory: the rows of the tape's window-major regions S_AN0 … S_XW, region after region.
template <int NW>
struct WindowRows {
    static constexpr int an0 = 0, an1 = an0 + NW * 256, an2 = an1 + NW * 128, an3 = an2 + NW * 128,
                         fc0 = an3 + NW * 64, xw = fc0 + NW * 64, floats = xw + NW * 32;
};
static_assert(S_AN1 - S_AN0 == 8 * 256 && S_AN2 - S_AN1 == 8 * 128 && S_AN3 - S_AN2 == 8 * 128 &&
                  S_FC0 - S_AN3 == 8 * 64 && S_XW - S_FC0 == 8 * 64 && S_AT0 - S_XW == 8 * 32,
              "WindowRows mirrors the tape's AudioNet regions");

// Sum over the G lanes of an aligned group (G a power of two ≤ 32); every lane gets the total. The whole
// warp must call it (the layer loops below keep their trip counts warp-uniform for that).
template <int G>
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
    for (int m = G / 2; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
    return v;
}

// Output stores of the layer helpers: (row, index, sum) → memory.
// y[r][o] = act(v + b[o]) (b may be null: then act(v)), like the twin's dense_fwd (bias after the sum).
__device__ __forceinline__ auto out_to(float* y, int OUT, const float* __restrict__ b, int act) {
    return [=](int r, int o, float v) { y[r * OUT + o] = act_apply(b ? v + b[o] : v, act); };
}
// d_x[r][i] = act'(x) ⊙ v: the gradient at the pre-activation of the layer that produced x (act_x).
__device__ __forceinline__ auto dx_to(float* dx, const float* x, int IN, int act_x) {
    return [=](int r, int i, float v) { dx[r * IN + i] = act_vjp(x[r * IN + i], v, act_x); };
}

// Dense layer: store(r, o, Σ_k x[r][k] W[o][k]) for the ROWS rows. A group of G lanes per output o splits
// the k sum (lane g takes k ≡ g mod G; the W and x reads of a group are contiguous) and carries all ROWS
// rows, so each W element is read once; the serial chain is IN/G long.
template <int ROWS, int IN, int OUT, int G, class Store>
__device__ __forceinline__ void blk_dense(const float* x, const float* __restrict__ W, Store store) {
    static_assert((G & (G - 1)) == 0 && G <= 32 && (G == 1 || (OUT * G) % 32 == 0), "blk_dense: G");
    const int lane = threadIdx.x & (G - 1);
    for (int o = threadIdx.x / G; o < OUT; o += TOK_THREADS / G) {
        float acc[ROWS];
#pragma unroll
        for (int r = 0; r < ROWS; ++r) acc[r] = 0.0f;
#pragma unroll
        for (int j = 0; j < (IN + G - 1) / G; ++j) {
            const int k = j * G + lane;
            if (IN % G == 0 || k < IN) {
                const float w = W[o * IN + k];
#pragma unroll
                for (int r = 0; r < ROWS; ++r) acc[r] = fmaf(x[r * IN + k], w, acc[r]);
            }
        }
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
            const float v = group_sum<G>(acc[r]);
            if ((r & (G - 1)) == lane) store(r, o, v);
        }
    }
}

// The input-gradient partial sums of lane `lane` for input i of a dense layer: acc[r] += Σ_{o ≡ lane mod G}
// dp[r][o] W[o][i].
template <int ROWS, int IN, int OUT, int G>
__device__ __forceinline__ void dense_dx_part(const float* dp, const float* __restrict__ W, int i, int lane,
                                              float (&acc)[ROWS]) {
#pragma unroll
    for (int j = 0; j < (OUT + G - 1) / G; ++j) {
        const int o = j * G + lane;
        if (OUT % G == 0 || o < OUT) {
            const float w = W[o * IN + i];
#pragma unroll
            for (int r = 0; r < ROWS; ++r) acc[r] = fmaf(dp[r * OUT + o], w, acc[r]);
        }
    }
}

// Weight and bias gradients of a dense layer from dp = dL/d(pre-activation) [ROWS][OUT] and its input x:
// d_W += dpᵀ·x, d_b += Σ_rows dp (atomics; d_b may be null). One weight per thread and step: the sums are
// only ROWS long. The bias sums go to the block's last threads, which have the fewest weights.
template <int ROWS, int IN, int OUT>
__device__ __forceinline__ void dense_dw(const float* x, const float* dp, float* d_W, float* d_b) {
    for (int e = threadIdx.x; e < OUT * IN; e += TOK_THREADS) {
        const int o = e / IN, i = e - o * IN;
        float acc = 0.0f;
#pragma unroll
        for (int r = 0; r < ROWS; ++r) acc = fmaf(dp[r * OUT + o], x[r * IN + i], acc);
        atomicAdd(d_W + e, acc);
    }
    const int o = TOK_THREADS - 1 - threadIdx.x;
    if (d_b && o < OUT) {
        float acc = 0.0f;
#pragma unroll
        for (int r = 0; r < ROWS; ++r) acc += dp[r * OUT + o];
        atomicAdd(d_b + o, acc);
    }
}

// Backward of a dense layer from dp = dL/d(pre-activation) [ROWS][OUT]: store_dx(r, i, Σ_o dp[r][o] W[o][i])
// with G lanes per input i (G = 0: no d_x), then d_W and d_b (atomics). No barrier inside: reads dp, x,
// W; writes only through store_dx and the atomics.
template <int ROWS, int IN, int OUT, int G, class StoreDx>
__device__ __forceinline__ void blk_dense_bwd(const float* x, const float* dp, const float* __restrict__ W,
                                              float* d_W, float* d_b, StoreDx store_dx) {
    if constexpr (G > 0) {
        static_assert((G & (G - 1)) == 0 && G <= 32 && (G == 1 || (IN * G) % 32 == 0), "blk_dense_bwd: G");
        const int lane = threadIdx.x & (G - 1);
        for (int i = threadIdx.x / G; i < IN; i += TOK_THREADS / G) {
            float acc[ROWS];
#pragma unroll
            for (int r = 0; r < ROWS; ++r) acc[r] = 0.0f;
            dense_dx_part<ROWS, IN, OUT, G>(dp, W, i, lane, acc);
#pragma unroll
            for (int r = 0; r < ROWS; ++r) {
                const float v = group_sum<G>(acc[r]);
                if ((r & (G - 1)) == lane) store_dx(r, i, v);
            }
        }
    }
    dense_dw<ROWS, IN, OUT>(x, dp, d_W, d_b);
}
struct NoDx {
    __device__ void operator()(int, int, float) const {}
};

// y [ROWS, LO, COUT] = LeakyReLU(conv(x [ROWS, L, Cin], W [COUT, Cin, 3]) + b), padding 1. A group of G
// lanes per output channel o splits the input channels (lane g takes i ≡ g mod G, all three taps) and
// carries every row's LO positions, so each W element is read once and each x element serves its taps; a
// group's lanes read adjacent weights. (One (row, o) per thread, reading all of o's weights per row, put
// 32 cache lines behind each weight load of a warp: two thirds of tokens_fwd's stall samples, H100.)
// CIN = 0: Cin at run time (the first conv's C). x may be global (the audio).
template <int ROWS, int L, int S, int CIN, int COUT, int G>
__device__ __forceinline__ void blk_conv(const float* x, int cin, const float* __restrict__ W,
                                         const float* __restrict__ b, float* y) {
    constexpr int LO = (L - 1) / S + 1;
    static_assert((G & (G - 1)) == 0 && G <= 32 && (G == 1 || (COUT * G) % 32 == 0), "blk_conv: G");
    const int Cin = CIN ? CIN : cin;
    const int lane = threadIdx.x & (G - 1);
    for (int o = threadIdx.x / G; o < COUT; o += TOK_THREADS / G) {
        const float* wo = W + o * Cin * 3;
        float acc[ROWS][LO];
#pragma unroll
        for (int r = 0; r < ROWS; ++r)
#pragma unroll
            for (int t = 0; t < LO; ++t) acc[r][t] = 0.0f;
        auto input_channel = [&](int j) {
            const int i = j * G + lane;
            if (i < Cin) {
                const float w[3] = {wo[i * 3], wo[i * 3 + 1], wo[i * 3 + 2]};
#pragma unroll
                for (int r = 0; r < ROWS; ++r)
#pragma unroll
                    for (int t = 0; t < LO; ++t)
#pragma unroll
                        for (int k = 0; k < 3; ++k) {
                            const int ti = t * S + k - 1;
                            if (ti >= 0 && ti < L) acc[r][t] = fmaf(w[k], x[(r * L + ti) * Cin + i], acc[r][t]);
                        }
            }
        };
        // With Cin known here every weight load of the group is issued before the first FMA (one L2 round
        // trip per layer; by twos, conv 3 waited on four); the first conv's Cin is known at run time only.
        if constexpr (CIN > 0) {
#pragma unroll
            for (int j = 0; j < (CIN + G - 1) / G; ++j) input_channel(j);
        } else {
#pragma unroll 2
            for (int j = 0; j < (Cin + G - 1) / G; ++j) input_channel(j);
        }
        const float bo = b[o];
#pragma unroll
        for (int r = 0; r < ROWS; ++r)
#pragma unroll
            for (int t = 0; t < LO; ++t) {
                const float v = group_sum<G>(acc[r][t]);
                if (((r * LO + t) & (G - 1)) == lane) y[(r * LO + t) * COUT + o] = act_apply(v + bo, ACT_LEAKY);
            }
    }
}

// Backward of blk_conv from dp = dL/d(pre-activation) [ROWS, LO, COUT] (G = 0: no d_x):
// store_dx(r·L + ti, i, Σ_{o,k: ti = t·S + k − 1} dp[r][t][o] W[o][i][k]) with G lanes per (row, i)
// splitting o (a warp's weight loads are adjacent here already; carrying every row as blk_conv does took
// tokens_bwd from 53 to 60 µs, H100); then d_W (one (o, i) per thread and step, its three taps together,
// each a sum over rows and positions in the twin's order) and d_b (the block's last threads), atomics. No
// barrier inside.
template <int ROWS, int L, int S, int CIN, int COUT, int G, class StoreDx>
__device__ __forceinline__ void blk_conv_bwd(const float* x, int cin, const float* __restrict__ W, const float* dp,
                                             float* d_W, float* d_b, StoreDx store_dx) {
    constexpr int LO = (L - 1) / S + 1;
    const int Cin = CIN ? CIN : cin;
    if constexpr (G > 0) {
        static_assert((G & (G - 1)) == 0 && G <= 32 && (G == 1 || (ROWS * CIN * G) % 32 == 0), "blk_conv_bwd: G");
        const int lane = threadIdx.x & (G - 1);
        for (int item = threadIdx.x / G; item < ROWS * CIN; item += TOK_THREADS / G) {
            const int r = item / CIN, i = item - r * CIN;
            float acc[L];
#pragma unroll
            for (int ti = 0; ti < L; ++ti) acc[ti] = 0.0f;
#pragma unroll 4
            for (int j = 0; j < (COUT + G - 1) / G; ++j) {
                const int o = j * G + lane;
                if (COUT % G == 0 || o < COUT) {
                    const float* w = W + (o * CIN + i) * 3;
                    const float wk[3] = {w[0], w[1], w[2]};
#pragma unroll
                    for (int t = 0; t < LO; ++t) {
                        const float d = dp[(r * LO + t) * COUT + o];
#pragma unroll
                        for (int k = 0; k < 3; ++k) {
                            const int ti = t * S + k - 1;
                            if (ti >= 0 && ti < L) acc[ti] = fmaf(d, wk[k], acc[ti]);
                        }
                    }
                }
            }
#pragma unroll
            for (int ti = 0; ti < L; ++ti) {
                const float v = group_sum<G>(acc[ti]);
                if ((ti & (G - 1)) == lane) store_dx(r * L + ti, i, v);
            }
        }
    }
    for (int e = threadIdx.x; e < COUT * Cin; e += TOK_THREADS) {
        const int o = e / Cin, i = e - o * Cin;
        float acc[3] = {0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int r = 0; r < ROWS; ++r)
#pragma unroll
            for (int t = 0; t < LO; ++t) {
                const float d = dp[(r * LO + t) * COUT + o];
#pragma unroll
                for (int k = 0; k < 3; ++k) {
                    const int ti = t * S + k - 1;
                    if (ti >= 0 && ti < L) acc[k] = fmaf(d, x[(r * L + ti) * Cin + i], acc[k]);
                }
            }
#pragma unroll
        for (int k = 0; k < 3; ++k) atomicAdd(d_W + e * 3 + k, acc[k]);
    }
    const int o = TOK_THREADS - 1 - threadIdx.x;
    if (o < COUT) {
        float acc = 0.0f;
#pragma unroll
        for (int e = 0; e < ROWS * LO; ++e) acc += dp[e * COUT + o];
        atomicAdd(d_b + o, acc);
    }
}

// AudioNet on NW consecutive windows (w0 …) of frame b: the audio's 16 rows of each through the four
// convs and the FC into WindowRows<NW>, in 6 phases. The frame's other layers run in tokens_fwd.
template <int NW>
__device__ void audio_net_fwd(const float* __restrict__ P, const float* audio, int C, float* s) {
    using L = WindowRows<NW>;
    const int an0b = T_AN0W + 32 * C * 3;
    blk_conv<NW, 16, 2, 0, 32, 16>(audio, C, P + T_AN0W, P + an0b, s + L::an0);
    __syncthreads();
    blk_conv<NW, 8, 2, 32, 32, 16>(s + L::an0, 0, P + T_AN1W, P + T_AN1B, s + L::an1);
    __syncthreads();
    blk_conv<NW, 4, 2, 32, 64, 8>(s + L::an1, 0, P + T_AN2W, P + T_AN2B, s + L::an2);
    __syncthreads();
    blk_conv<NW, 2, 2, 64, 64, 8>(s + L::an2, 0, P + T_AN3W, P + T_AN3B, s + L::an3);
    __syncthreads();
    blk_dense<NW, 64, 64, 8>(s + L::an3, P + T_FC0W, out_to(s + L::fc0, 64, P + T_FC0B, ACT_LEAKY));
    __syncthreads();
    blk_dense<NW, 64, 32, 16>(s + L::fc0, P + T_FC1W, out_to(s + L::xw, 32, P + T_FC1B, ACT_NONE));
    __syncthreads();
}

// Copies windows w0 … w0 + NW − 1 of the AudioNet regions between a frame's tape record and WindowRows<NW>.
template <int NW, bool TO_TAPE, class Record>
__device__ void copy_window_rows(Record* record, int w0, float* rows) {
    constexpr int offsets[6] = {S_AN0, S_AN1, S_AN2, S_AN3, S_FC0, S_XW}, widths[6] = {256, 128, 128, 64, 64, 32};
    int local = 0;
#pragma unroll
    for (int k = 0; k < 6; ++k) {
        for (int e = threadIdx.x; e < NW * widths[k]; e += TOK_THREADS) {
            Record* t = record + offsets[k] + w0 * widths[k] + e;
            if constexpr (TO_TAPE) *t = rows[local + e];
            else rows[local + e] = *t;
        }
        local += NW * widths[k];
    }
}

// The forward of one frame after AudioNet into shared memory (every S_* activation from S_XW, the window
// codes tokens_audio_fwd left in the frame's tape record, up to the tokens), in 11 phases between
// barriers; layers that do not depend on each other share a phase (the eye, view and identity branches
// ride along with AudioAttNet's first convs).
__device__ void tokens_frame(const float* __restrict__ P, const float* record, float eye, const float* view, int id,
                             int C, int multiplicative, float* s) {
    const int id_emb = T_AN0W + 32 * C * 3 + 32;
    const int tid = threadIdx.x;
    if (tid < D) {
        s[S_I + tid] = P[id_emb + id * D + tid];
        s[S_TOK + 3 * D + tid] = P[T_NULL + tid];
    } else if (tid < D + 16) {
        const int j = tid - D;
        float x = eye * (float)pow(10000.0, j / 16.0);
        s[S_ES + j] = sinf(x);
        s[S_ES + 16 + j] = cosf(x);
    }
    for (int e = tid; e < 8 * 32; e += TOK_THREADS) s[S_XW + e] = record[S_XW + e];
    __syncthreads();
    blk_conv<1, 8, 1, 32, 16, 16>(s + S_XW, 0, P + T_AT0W, P + T_AT0B, s + S_AT0);
    blk_dense<1, D, D, 8>(s + S_I, P + T_U2, out_to(s + S_V, D, nullptr, ACT_NONE));
    blk_dense<1, D, D, 8>(s + S_I, P + T_W3, out_to(s + S_MT + 2 * D, D, P + T_W3B, ACT_NONE));
    blk_dense<1, 32, D, 8>(s + S_ES, P + T_EYE0W, out_to(s + S_EH, D, P + T_EYE0B, ACT_RELU));
    blk_dense<1, 12, D, 8>(view, P + T_VIEW0W, out_to(s + S_VH, D, P + T_VIEW0B, ACT_RELU));
    __syncthreads();
    blk_conv<1, 8, 1, 16, 8, 8>(s + S_AT0, 0, P + T_AT1W, P + T_AT1B, s + S_AT1);
    blk_dense<1, D, D, 8>(s + S_EH, P + T_EYE1W, out_to(s + S_TOK + D, D, P + T_EYE1B, ACT_NONE));
    blk_dense<1, D, D, 8>(s + S_VH, P + T_VIEW1W, out_to(s + S_TOK + 2 * D, D, P + T_VIEW1B, ACT_NONE));
    __syncthreads();
    blk_conv<1, 8, 1, 8, 4, 8>(s + S_AT1, 0, P + T_AT2W, P + T_AT2B, s + S_AT2);
    __syncthreads();
    blk_conv<1, 8, 1, 4, 2, 1>(s + S_AT2, 0, P + T_AT3W, P + T_AT3B, s + S_AT3);
    __syncthreads();
    blk_conv<1, 8, 1, 2, 1, 1>(s + S_AT3, 0, P + T_AT4W, P + T_AT4B, s + S_AT4);
    __syncthreads();
    // Window logits, softmax and weighted sum in warp 0 (lanes 8·q + k hold window k's logit).
    if (tid < 32) {
        blk_dense<1, 8, 8, 4>(s + S_AT4, P + T_ATFCW, out_to(s + S_LOG, 8, P + T_ATFCB, ACT_NONE));
        __syncwarp();
        const float l = s[S_LOG + (tid & 7)];
        float mx = l;
#pragma unroll
        for (int m = 1; m < 8; m <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, m));
        const float ex = expf(l - mx);
        float sum = ex;
#pragma unroll
        for (int m = 1; m < 8; m <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, m);
        if (tid < 8) s[S_WTS + tid] = ex / sum;
        __syncwarp();
        float acc = 0.0f;
#pragma unroll
        for (int k = 0; k < 8; ++k) acc = fmaf(s[S_WTS + k], s[S_XW + k * 32 + tid], acc);
        s[S_Y + tid] = acc;
    }
    __syncthreads();
    blk_dense<1, 32, D, 8>(s + S_Y, P + T_AM0, out_to(s + S_AH, D, nullptr, ACT_RELU));
    __syncthreads();
    blk_dense<1, D, D, 8>(s + S_AH, P + T_AM1, out_to(s + S_A, D, nullptr, ACT_NONE));
    __syncthreads();
    // U1 a, stored with its combination g with v = U2 i.
    blk_dense<1, D, D, 8>(s + S_A, P + T_U1, [=](int, int o, float u) {
        s[S_U + o] = u;
        s[S_G + o] = multiplicative ? u * s[S_V + o] : u + s[S_V + o];
    });
    blk_dense<1, D, D, 8>(s + S_A, P + T_W2, out_to(s + S_MT + D, D, nullptr, ACT_NONE));
    __syncthreads();
    // Token 0 = C g + W2 a + (W3 i + b3), summed in that order.
    blk_dense<1, D, D, 8>(s + S_G, P + T_MC,
                          [=](int, int o, float v) { s[S_TOK + o] = v + s[S_MT + D + o] + s[S_MT + 2 * D + o]; });
    __syncthreads();
}

// Pulls the token path's weights (and the K/V projections') into L2 before the phases that read them, so
// that each phase's loads do not wait on DRAM: block b of B takes every B-th 128-byte line. tokens_bwd
// runs after the chain's backward has streamed its tape and partials through L2 (measured: 61 → 55 µs,
// H200, B = 1 and 8); before tokens_fwd the optimizer has just touched every weight (no change there).
__device__ __forceinline__ void prefetch_token_weights(const float* __restrict__ params, int C, int B) {
    auto lines = [&](const float* from, int floats) {
        const char* p = reinterpret_cast<const char*>(from);
        for (int i = blockIdx.x * TOK_THREADS + threadIdx.x; i < (floats * 4 + 127) / 128; i += B * TOK_THREADS)
            asm volatile("prefetch.global.L2 [%0];" ::"l"(p + 128LL * i));
    };
    lines(params + K_WK, K_BV + D - K_WK);
    lines(params + T_AN1W, T_AN0W + 32 * C * 3 + 32 - T_AN1W);
}

// NW windows' audio [NW,16,C] into shared memory at `to` when C ≤ TOK_AUDIO_MAX_C (the launcher then adds
// 64·NW·C bytes to the dynamic shared memory): the first conv reads each feature once per tap and row, and
// its weight gradients as often; from global memory every one of those loads waited on L2. Returns where
// the audio is to be read; ends with a barrier.
#define TOK_AUDIO_MAX_C 64
template <int NW>
__device__ __forceinline__ const float* stage_audio(const float* __restrict__ audio, int C, float* to) {
    if (C > TOK_AUDIO_MAX_C) return audio;
    for (int e = threadIdx.x; e < NW * 4 * C; e += TOK_THREADS)
        reinterpret_cast<float4*>(to)[e] = reinterpret_cast<const float4*>(audio)[e];
    __syncthreads();
    return to;
}

// tokens_audio_fwd: AudioNet, a block per window (B·8 blocks × TOK_THREADS): each frame's 8 windows are
// independent up to AudioAttNet, and one block per frame spent half of the token path's forward on their
// 8 rows (H100, B = 8). Writes the AudioNet regions of the frames' tape records (S_AN0 … S_XW), which
// tokens_fwd reads (S_XW) and tokens_audio_bwd (all). Dynamic shared WindowRows<1>::floats·4 bytes (+
// the audio's, stage_audio).
//   params, audio [B,8,16,C] → tape [B][TOK_FWD_FLOATS] (the AudioNet regions)
// Bytes: 4·B·8·(16·C + 672) + AudioNet's weights once (L2). FLOP 2·B·8·(16·C·3·32/2 + 41 k).
extern "C" __global__ void __launch_bounds__(TOK_THREADS)
tokens_audio_fwd(const float* __restrict__ params, const float* __restrict__ audio, int C, float* __restrict__ tape) {
    extern __shared__ float s[];
    const int b = blockIdx.x / 8, w = blockIdx.x % 8;
    const float* aud = stage_audio<1>(audio + (long long)blockIdx.x * 16 * C, C, s + WindowRows<1>::floats);
    audio_net_fwd<1>(params, aud, C, s);
    copy_window_rows<1, true>(tape + (long long)b * TOK_FWD_FLOATS, w, s);
}

// tokens_fwd: the B frames' K/V rows after tokens_audio_fwd, and each frame's activations from S_AT0 on
// (shared [S_AT0, TOK_FWD_FLOATS)) on its tape record for tokens_bwd. Grid B blocks × TOK_THREADS; dynamic
// shared TOK_FWD_FLOATS·4 bytes.
//   params, eye [B], view [B,12], ids [B], tape (S_XW) → kv [2,B,4,64], tape [B][TOK_FWD_FLOATS] (from S_AT0)
// Bytes: 4·B·(14 + 256 + 512 + 1288) + params once (L2). FLOP ≈ 2·B·45 k (see launcher).
extern "C" __global__ void __launch_bounds__(TOK_THREADS)
tokens_fwd(const float* __restrict__ params, const float* __restrict__ eye, const float* __restrict__ view,
           const int* __restrict__ ids, int B, int C, int multiplicative, float* __restrict__ kv, float* __restrict__ tape) {
    extern __shared__ float s[];
    const int b = blockIdx.x;
    float* record = tape + (long long)b * TOK_FWD_FLOATS;
    tokens_frame(params, record, eye[b], view + b * 12, ids[b], C, multiplicative, s);
    static_assert(S_AT0 % 4 == 0, "the tape's copy is by float4");
    for (int e = S_AT0 / 4 + threadIdx.x; e < TOK_FWD_FLOATS / 4; e += TOK_THREADS)
        reinterpret_cast<float4*>(record)[e] = reinterpret_cast<const float4*>(s)[e];
    blk_dense<4, D, D, 8>(s + S_TOK, params + K_WK, out_to(kv + b * 4 * D, D, params + K_BK, ACT_NONE));
    blk_dense<4, D, D, 8>(s + S_TOK, params + K_WV, out_to(kv + B * 4 * D + b * 4 * D, D, params + K_BV, ACT_NONE));
}

// tokens_bwd: the frame's forward activations from S_XW on from its tape record (tokens_audio_fwd and
// tokens_fwd must have run last on the same parameters and frames; recomputing them took 60 % of this
// kernel), then dL/dK,V back to every token-path parameter after AudioNet, in phases between barriers
// (independent layers share one), and dL/dX of the window codes to d_codes for tokens_audio_bwd.
// Grid B blocks × TOK_THREADS; dynamic shared TOK_BWD_FLOATS·4 bytes.
//   params, eye, view, ids, d_kv [2,B,4,64], tape [B][TOK_FWD_FLOATS] → d_params (+=, atomics: the token
//   section but AudioNet's, wk, bk, wv, bv), d_codes [B,8,32] (=)
// Bytes ≈ 4·B·(526 + 1544 + 256) + 8·B·(those floats) (atomics). FLOP ≈ 2× tokens_fwd's.
extern "C" __global__ void __launch_bounds__(TOK_THREADS)
tokens_bwd(const float* __restrict__ params, const float* __restrict__ eye, const float* __restrict__ view,
           const int* __restrict__ ids, int B, int C, int multiplicative, const float* __restrict__ d_kv,
           const float* __restrict__ tape, float* __restrict__ d_params, float* __restrict__ d_codes) {
    extern __shared__ float s[];
    const int b = blockIdx.x, tid = threadIdx.x;
    const float* P = params;
    float* dP = d_params;
    const int id = ids[b];
    const int id_emb = T_AN0W + 32 * C * 3 + 32;
    prefetch_token_weights(P, C, B);
    // The frame's d_kv rows and its forward activations to shared (eye stays in the argument list the two
    // kernels share: its sinusoid is on the tape).
    for (int e = tid; e < 8 * D; e += TOK_THREADS)
        s[S_DKV + e] = d_kv[(e < 4 * D ? 0 : B * 4 * D - 4 * D) + b * 4 * D + e];
    static_assert(S_XW % 4 == 0, "the tape's copy is by float4");
    for (int e = S_XW / 4 + tid; e < TOK_FWD_FLOATS / 4; e += TOK_THREADS)
        reinterpret_cast<float4*>(s)[e] = reinterpret_cast<const float4*>(tape + (long long)b * TOK_FWD_FLOATS)[e];
    __syncthreads();
    // K, V → tokens: d_tok = dK·Wk + dV·Wv (8 lanes per token feature, both projections in one sum).
    {
        const int lane = tid & 7, i = tid >> 3;  // TOK_THREADS / 8 = 64 = D features
        static_assert(TOK_THREADS == 8 * D, "the K/V backward maps 8 lanes to each of the D features");
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        dense_dx_part<4, D, D, 8>(s + S_DKV, P + K_WK, i, lane, acc);
        dense_dx_part<4, D, D, 8>(s + S_DKV + 4 * D, P + K_WV, i, lane, acc);
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const float v = group_sum<8>(acc[r]);
            if (r == lane) s[S_DTOK + r * D + i] = v;
        }
        dense_dw<4, D, D>(s + S_TOK, s + S_DKV, dP + K_WK, dP + K_BK);
        dense_dw<4, D, D>(s + S_TOK, s + S_DKV + 4 * D, dP + K_WV, dP + K_BV);
    }
    __syncthreads();
    // Token gradients into the view and eye MLPs, M(a, i) and the null token. C's d_x is d g, stored as
    // d u and d v straight away.
    if (tid < D) atomicAdd(dP + T_NULL + tid, s[S_DTOK + 3 * D + tid]);
    blk_dense_bwd<1, D, D, 8>(s + S_VH, s + S_DTOK + 2 * D, P + T_VIEW1W, dP + T_VIEW1W, dP + T_VIEW1B,
                              dx_to(s + S_DVH, s + S_VH, D, ACT_RELU));
    blk_dense_bwd<1, D, D, 8>(s + S_EH, s + S_DTOK + D, P + T_EYE1W, dP + T_EYE1W, dP + T_EYE1B,
                              dx_to(s + S_DEH, s + S_EH, D, ACT_RELU));
    blk_dense_bwd<1, D, D, 8>(s + S_G, s + S_DTOK, P + T_MC, dP + T_MC, nullptr, [=](int, int j, float dg) {
        s[S_DU + j] = multiplicative ? dg * s[S_V + j] : dg;
        s[S_DV + j] = multiplicative ? dg * s[S_U + j] : dg;
    });
    blk_dense_bwd<1, D, D, 8>(s + S_A, s + S_DTOK, P + T_W2, dP + T_W2, nullptr, dx_to(s + S_DAA, s + S_A, D, ACT_NONE));
    blk_dense_bwd<1, D, D, 8>(s + S_I, s + S_DTOK, P + T_W3, dP + T_W3, dP + T_W3B, dx_to(s + S_DI, s + S_I, D, ACT_NONE));
    __syncthreads();
    // The first layers of the view and eye MLPs (inputs are data: no d_x), U1 and U2: d a and d i complete.
    blk_dense_bwd<1, 12, D, 0>(view + b * 12, s + S_DVH, P + T_VIEW0W, dP + T_VIEW0W, dP + T_VIEW0B, NoDx{});
    blk_dense_bwd<1, 32, D, 0>(s + S_ES, s + S_DEH, P + T_EYE0W, dP + T_EYE0W, dP + T_EYE0B, NoDx{});
    blk_dense_bwd<1, D, D, 8>(s + S_A, s + S_DU, P + T_U1, dP + T_U1, nullptr,
                              [=](int, int j, float v) { s[S_DAA + j] = s[S_DAA + j] + v; });
    blk_dense_bwd<1, D, D, 8>(s + S_I, s + S_DV, P + T_U2, dP + T_U2, nullptr,
                              [=](int, int j, float v) { atomicAdd(dP + id_emb + id * D + j, s[S_DI + j] + v); });
    __syncthreads();
    // Audio MLP; the second layer also spreads d y over the windows' codes (d X = w ⊗ d y).
    blk_dense_bwd<1, D, D, 8>(s + S_AH, s + S_DAA, P + T_AM1, dP + T_AM1, nullptr, dx_to(s + S_DAH, s + S_AH, D, ACT_RELU));
    __syncthreads();
    blk_dense_bwd<1, 32, D, 16>(s + S_Y, s + S_DAH, P + T_AM0, dP + T_AM0, nullptr, [=](int, int j, float dy) {
        s[S_DY + j] = dy;
#pragma unroll
        for (int k = 0; k < 8; ++k) s[S_DA + k * 32 + j] = s[S_WTS + k] * dy;
    });
    __syncthreads();
    // Window softmax backward in warp 0, lane k < 8 for window k: d logit_k = w_k (X_k · d y − Σ_k' w_k'
    // X_k' · d y), both sums in the twin's order: the difference cancels, and the AudioAttNet gradients
    // behind it inherit any reassociation's rounding, amplified.
    if (tid < 32) {
        const int k = tid & 7;
        float dp = 0.0f;
        for (int j = 0; j < 32; ++j) dp = fmaf(s[S_XW + k * 32 + j], s[S_DY + j], dp);
        float dot = 0.0f;
#pragma unroll
        for (int kk = 0; kk < 8; ++kk) dot += s[S_WTS + kk] * __shfl_sync(0xffffffffu, dp, kk);
        if (tid < 8) s[S_DLOG + k] = s[S_WTS + k] * (dp - dot);
    }
    __syncthreads();
    blk_dense_bwd<1, 8, 8, 1>(s + S_AT4, s + S_DLOG, P + T_ATFCW, dP + T_ATFCW, dP + T_ATFCB,
                              dx_to(s + S_DB, s + S_AT4, 8, ACT_LEAKY));
    __syncthreads();
    // AudioAttNet convs, last to first (d ping-pongs between S_DB and S_DC); the first adds into d X.
    blk_conv_bwd<1, 8, 1, 2, 1, 1>(s + S_AT3, 0, P + T_AT4W, s + S_DB, dP + T_AT4W, dP + T_AT4B,
                                   dx_to(s + S_DC, s + S_AT3, 2, ACT_LEAKY));
    __syncthreads();
    blk_conv_bwd<1, 8, 1, 4, 2, 1>(s + S_AT2, 0, P + T_AT3W, s + S_DC, dP + T_AT3W, dP + T_AT3B,
                                   dx_to(s + S_DB, s + S_AT2, 4, ACT_LEAKY));
    __syncthreads();
    blk_conv_bwd<1, 8, 1, 8, 4, 1>(s + S_AT1, 0, P + T_AT2W, s + S_DB, dP + T_AT2W, dP + T_AT2B,
                                   dx_to(s + S_DC, s + S_AT1, 8, ACT_LEAKY));
    __syncthreads();
    blk_conv_bwd<1, 8, 1, 16, 8, 2>(s + S_AT0, 0, P + T_AT1W, s + S_DC, dP + T_AT1W, dP + T_AT1B,
                                    dx_to(s + S_DB, s + S_AT0, 16, ACT_LEAKY));
    __syncthreads();
    blk_conv_bwd<1, 8, 1, 32, 16, 4>(s + S_XW, 0, P + T_AT0W, s + S_DB, dP + T_AT0W, dP + T_AT0B,
                                     [=](int t, int i, float v) { s[S_DA + t * 32 + i] = s[S_DA + t * 32 + i] + v; });
    __syncthreads();
    for (int e = tid; e < 8 * 32; e += TOK_THREADS) d_codes[b * 8 * 32 + e] = s[S_DA + e];
}

// tokens_audio_bwd: AudioNet's backward from tokens_bwd's d_codes, TOK_AUDIO_BWD_WINDOWS windows per block
// (B·8/TOK_AUDIO_BWD_WINDOWS blocks × TOK_THREADS): its 6 layers on 8 rows in one block per frame took
// more than half of the token path's backward (H100, B = 8). Reads the windows' activations from the tape
// records (tokens_audio_fwd's regions) and adds the weight gradients with atomics into d_params (8/NW per
// frame and weight). Dynamic shared TOK_AUDIO_BWD_FLOATS·4 bytes (+ the audio's, stage_audio).
//   params, audio [B,8,16,C], tape, d_codes [B,8,32] → d_params (+=, atomics: AudioNet's weights)
// Bytes ≈ 4·B·8·(16·C + 672 + 32) + 8·(B·8/NW)·(AudioNet's floats) (atomics). FLOP ≈ 2× tokens_audio_fwd's.
#define TOK_AUDIO_BWD_WINDOWS 2
constexpr int AB_DX = WindowRows<TOK_AUDIO_BWD_WINDOWS>::floats;  // [NW][32]: d X
constexpr int AB_DB = AB_DX + TOK_AUDIO_BWD_WINDOWS * 32;        // [NW·256] each: ping-pong buffers
constexpr int AB_DC = AB_DB + TOK_AUDIO_BWD_WINDOWS * 256;
constexpr int TOK_AUDIO_BWD_FLOATS = AB_DC + TOK_AUDIO_BWD_WINDOWS * 256;
static_assert(TOK_AUDIO_BWD_FLOATS == 2432 && WindowRows<1>::floats == 672,
              "shared memory changed: update AUDIO_BWD_FLOATS / AUDIO_FWD_FLOATS (and AUDIO_BWD_WINDOWS) in "
              "src/cuda/audio.rs");
extern "C" __global__ void __launch_bounds__(TOK_THREADS)
tokens_audio_bwd(const float* __restrict__ params, const float* __restrict__ audio, int C, const float* __restrict__ tape,
                 const float* __restrict__ d_codes, float* __restrict__ d_params) {
    constexpr int NW = TOK_AUDIO_BWD_WINDOWS;
    using L = WindowRows<NW>;
    extern __shared__ float s[];
    const float* P = params;
    float* dP = d_params;
    const int b = blockIdx.x / (8 / NW), w0 = blockIdx.x % (8 / NW) * NW;
    const float* aud = stage_audio<NW>(audio + ((long long)b * 8 + w0) * 16 * C, C, s + TOK_AUDIO_BWD_FLOATS);
    copy_window_rows<NW, false>(tape + (long long)b * TOK_FWD_FLOATS, w0, s);
    for (int e = threadIdx.x; e < NW * 32; e += TOK_THREADS) s[AB_DX + e] = d_codes[(b * 8 + w0) * 32 + e];
    __syncthreads();
    // G lanes per input row and channel fill the block: TOK_THREADS / (NW·Cin).
    blk_dense_bwd<NW, 64, 32, 8>(s + L::fc0, s + AB_DX, P + T_FC1W, dP + T_FC1W, dP + T_FC1B,
                                 dx_to(s + AB_DB, s + L::fc0, 64, ACT_LEAKY));
    __syncthreads();
    blk_dense_bwd<NW, 64, 64, 8>(s + L::an3, s + AB_DB, P + T_FC0W, dP + T_FC0W, dP + T_FC0B,
                                 dx_to(s + AB_DC, s + L::an3, 64, ACT_LEAKY));
    __syncthreads();
    blk_conv_bwd<NW, 2, 2, 64, 64, TOK_THREADS / (NW * 64)>(s + L::an2, 0, P + T_AN3W, s + AB_DC, dP + T_AN3W,
                                                            dP + T_AN3B, dx_to(s + AB_DB, s + L::an2, 64, ACT_LEAKY));
    __syncthreads();
    blk_conv_bwd<NW, 4, 2, 32, 64, TOK_THREADS / (NW * 32)>(s + L::an1, 0, P + T_AN2W, s + AB_DB, dP + T_AN2W,
                                                            dP + T_AN2B, dx_to(s + AB_DC, s + L::an1, 32, ACT_LEAKY));
    __syncthreads();
    blk_conv_bwd<NW, 8, 2, 32, 32, TOK_THREADS / (NW * 32)>(s + L::an0, 0, P + T_AN1W, s + AB_DC, dP + T_AN1W,
                                                            dP + T_AN1B, dx_to(s + AB_DB, s + L::an0, 32, ACT_LEAKY));
    __syncthreads();
    blk_conv_bwd<NW, 16, 2, 0, 32, 0>(aud, C, P + T_AN0W, s + AB_DB, dP + T_AN0W, dP + T_AN0W + 32 * C * 3, NoDx{});
}
