// The deformation network's per-frame token path (SPEC §5; CPU twin src/cpu/audio.rs): AudioNet (4 Conv1d
// stride 2 + LeakyReLU 0.02, FC 64→64 LeakyReLU →32) on the 8 windows, AudioAttNet (5 Conv1d over the
// windows + Linear(8,8) + softmax) → weighted sum, audio MLP 32→64 ReLU →64 (no bias) → a, the identity
// embedding i, M(a,i) = C[(U1 a) ⊙ (U2 i)] + W2 a + W3 i + b3 (or with + instead of ⊙), the eye token
// (sinusoid of 16 frequencies → MLP), the view token (R, T → MLP), the null token, and the K/V projections
// of the 4 tokens. fp32 throughout.
//
// Mapping: one block of TOK_THREADS = 256 threads per frame; every activation of the frame lives in shared
// memory (T_* offsets below, 64 KB dynamic); each layer is a block-wide loop over its outputs (one output
// per thread and step; sums over inputs in increasing order, bias last, like src/cpu/mlp.rs), followed by
// __syncthreads. The work is tiny (≈ 0.5 MFLOP per frame): this path is latency-bound by design.
//
// Shapes: params, d_params: the flat buffer of src/model/deform.rs (T_* / K_* offsets; the last three
// tensors depend on C and the identity count). audio [B,8,16,C], eye [B], view [B,12], ids [B] (int32);
// kv, d_kv [2,B,4,64] (K rows then V rows).
// tokens_bwd recomputes the forward, then adds each frame's weight gradients with atomicAdd into d_params
// (the token section must be zeroed before; wk, bk, wv, bv are added on top of deform_reduce's values):
// B atomics per weight, so not bitwise deterministic across runs.
// NaN policy: NaNs propagate. An out-of-range identity reads row 0 (the launcher checks ids on the host).
// measured: H200, commit b4f6151, B = 8 (profiler): tokens_fwd 243 µs, tokens_bwd 351 µs (one block per frame:
// latency-bound at this size).

#define TOK_THREADS 256
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
#define S_MT 6056      // C g, W2 a, W3 i + b3 [3][64]
#define S_ES 6248      // [32]
#define S_EH 6280
#define S_VH 6344
#define S_TOK 6408     // [4][64]
#define TOK_FWD_FLOATS 6664
#define S_DA 6664      // [2048] each: backward ping-pong buffers and d_pre scratch
#define S_DB 8712
#define S_DC 10760
#define S_SCR 12808
#define S_DTOK 14856   // [256]
#define S_DTOK2 15112  // [256]
#define S_DVH 15368    // [64] each from here
#define S_DEH 15432
#define S_DG 15496
#define S_DAA 15560
#define S_DI 15624
#define S_DU 15688
#define S_DV 15752
#define S_DTMP 15816
#define S_DAH 15880
#define S_DY 15944     // [32]
#define S_DLOG 15976   // [8]
#define TOK_BWD_FLOATS 15984
static_assert(TOK_FWD_FLOATS * 4 == 26656 && TOK_BWD_FLOATS * 4 == 63936,
              "shared memory changed: update TOK_FWD_SMEM / TOK_BWD_SMEM in src/cuda/audio.rs");

// y [rows, OUT] = act(x [rows, IN] · Wᵀ + b); b may be null.
__device__ void blk_dense(const float* x, int rows, int IN, const float* __restrict__ W, const float* __restrict__ b,
                          int OUT, int act, float* y) {
    for (int e = threadIdx.x; e < rows * OUT; e += TOK_THREADS) {
        int r = e / OUT, o = e - r * OUT;
        float acc = 0.0f;
        for (int k = 0; k < IN; ++k) acc = fmaf(x[r * IN + k], W[o * IN + k], acc);
        if (b) acc += b[o];
        y[e] = act_apply(acc, act);
    }
    __syncthreads();
}

// Backward of blk_dense from its output y (null for ACT_NONE) and d_y: scr = act'(y) ⊙ d_y; d_x (may be
// null) = scr · W; d_W += scrᵀ · x and d_b += Σ_rows scr (atomics; d_b may be null).
__device__ void blk_dense_bwd(const float* x, const float* y, const float* d_y, int rows, int IN, int OUT, int act,
                              const float* __restrict__ W, float* d_x, float* d_W, float* d_b, float* scr) {
    for (int e = threadIdx.x; e < rows * OUT; e += TOK_THREADS) scr[e] = act_vjp(y ? y[e] : 0.0f, d_y[e], act);
    __syncthreads();
    if (d_x)
        for (int e = threadIdx.x; e < rows * IN; e += TOK_THREADS) {
            int r = e / IN, i = e - r * IN;
            float acc = 0.0f;
            for (int o = 0; o < OUT; ++o) acc = fmaf(scr[r * OUT + o], W[o * IN + i], acc);
            d_x[e] = acc;
        }
    for (int e = threadIdx.x; e < OUT * IN; e += TOK_THREADS) {
        int o = e / IN, i = e - o * IN;
        float acc = 0.0f;
        for (int r = 0; r < rows; ++r) acc = fmaf(scr[r * OUT + o], x[r * IN + i], acc);
        atomicAdd(d_W + e, acc);
    }
    if (d_b)
        for (int o = threadIdx.x; o < OUT; o += TOK_THREADS) {
            float acc = 0.0f;
            for (int r = 0; r < rows; ++r) acc += scr[r * OUT + o];
            atomicAdd(d_b + o, acc);
        }
    __syncthreads();
}

// y [rows, Lo, Cout] = LeakyReLU(conv(x [rows, L, Cin], W [Cout, Cin, 3]) + b), padding 1.
__device__ void blk_conv(const float* x, int rows, int L, int Cin, const float* __restrict__ W, const float* __restrict__ b,
                         int Cout, int stride, float* y) {
    const int Lo = (L - 1) / stride + 1;
    for (int e = threadIdx.x; e < rows * Lo * Cout; e += TOK_THREADS) {
        int r = e / (Lo * Cout), t = (e / Cout) % Lo, o = e % Cout;
        float acc = 0.0f;
        for (int k = 0; k < 3; ++k) {
            int ti = t * stride + k - 1;
            if (ti < 0 || ti >= L) continue;
            for (int i = 0; i < Cin; ++i) acc = fmaf(W[(o * Cin + i) * 3 + k], x[(r * L + ti) * Cin + i], acc);
        }
        acc += b[o];
        y[e] = act_apply(acc, ACT_LEAKY);
    }
    __syncthreads();
}

// Backward of blk_conv from y and d_y: d_x (may be null) overwritten; d_W, d_b += (atomics).
__device__ void blk_conv_bwd(const float* x, int rows, int L, int Cin, const float* __restrict__ W, const float* y,
                             const float* d_y, int Cout, int stride, float* d_x, float* d_W, float* d_b, float* scr) {
    const int Lo = (L - 1) / stride + 1;
    for (int e = threadIdx.x; e < rows * Lo * Cout; e += TOK_THREADS) scr[e] = act_vjp(y[e], d_y[e], ACT_LEAKY);
    __syncthreads();
    if (d_x)
        for (int e = threadIdx.x; e < rows * L * Cin; e += TOK_THREADS) {
            int r = e / (L * Cin), ti = (e / Cin) % L, i = e % Cin;
            float acc = 0.0f;
            for (int k = 0; k < 3; ++k) {
                int num = ti + 1 - k;  // = t·stride
                if (num < 0 || num % stride != 0 || num / stride >= Lo) continue;
                int t = num / stride;
                for (int o = 0; o < Cout; ++o) acc = fmaf(scr[(r * Lo + t) * Cout + o], W[(o * Cin + i) * 3 + k], acc);
            }
            d_x[e] = acc;
        }
    for (int e = threadIdx.x; e < Cout * Cin * 3; e += TOK_THREADS) {
        int o = e / (Cin * 3), i = (e / 3) % Cin, k = e % 3;
        float acc = 0.0f;
        for (int r = 0; r < rows; ++r)
            for (int t = 0; t < Lo; ++t) {
                int ti = t * stride + k - 1;
                if (ti < 0 || ti >= L) continue;
                acc = fmaf(scr[(r * Lo + t) * Cout + o], x[(r * L + ti) * Cin + i], acc);
            }
        atomicAdd(d_W + e, acc);
    }
    for (int o = threadIdx.x; o < Cout; o += TOK_THREADS) {
        float acc = 0.0f;
        for (int e = 0; e < rows * Lo; ++e) acc += scr[e * Cout + o];
        atomicAdd(d_b + o, acc);
    }
    __syncthreads();
}

// The forward of one frame into shared memory (every T_*/S_* activation up to the tokens).
__device__ void tokens_frame(const float* __restrict__ P, const float* audio, float eye, const float* view, int id, int C,
                             int multiplicative, float* s) {
    const int an0b = T_AN0W + 32 * C * 3, id_emb = an0b + 32;
    blk_conv(audio, 8, 16, C, P + T_AN0W, P + an0b, 32, 2, s + S_AN0);
    blk_conv(s + S_AN0, 8, 8, 32, P + T_AN1W, P + T_AN1B, 32, 2, s + S_AN1);
    blk_conv(s + S_AN1, 8, 4, 32, P + T_AN2W, P + T_AN2B, 64, 2, s + S_AN2);
    blk_conv(s + S_AN2, 8, 2, 64, P + T_AN3W, P + T_AN3B, 64, 2, s + S_AN3);
    blk_dense(s + S_AN3, 8, 64, P + T_FC0W, P + T_FC0B, 64, ACT_LEAKY, s + S_FC0);
    blk_dense(s + S_FC0, 8, 64, P + T_FC1W, P + T_FC1B, 32, ACT_NONE, s + S_XW);
    blk_conv(s + S_XW, 1, 8, 32, P + T_AT0W, P + T_AT0B, 16, 1, s + S_AT0);
    blk_conv(s + S_AT0, 1, 8, 16, P + T_AT1W, P + T_AT1B, 8, 1, s + S_AT1);
    blk_conv(s + S_AT1, 1, 8, 8, P + T_AT2W, P + T_AT2B, 4, 1, s + S_AT2);
    blk_conv(s + S_AT2, 1, 8, 4, P + T_AT3W, P + T_AT3B, 2, 1, s + S_AT3);
    blk_conv(s + S_AT3, 1, 8, 2, P + T_AT4W, P + T_AT4B, 1, 1, s + S_AT4);
    blk_dense(s + S_AT4, 1, 8, P + T_ATFCW, P + T_ATFCB, 8, ACT_NONE, s + S_LOG);
    if (threadIdx.x == 0) {
        float mx = s[S_LOG];
        for (int k = 1; k < 8; ++k) mx = fmaxf(mx, s[S_LOG + k]);
        float sum = 0.0f;
        for (int k = 0; k < 8; ++k) {
            s[S_WTS + k] = expf(s[S_LOG + k] - mx);
            sum += s[S_WTS + k];
        }
        for (int k = 0; k < 8; ++k) s[S_WTS + k] = s[S_WTS + k] / sum;
    }
    __syncthreads();
    if (threadIdx.x < 32) {
        float acc = 0.0f;
        for (int k = 0; k < 8; ++k) acc = fmaf(s[S_WTS + k], s[S_XW + k * 32 + threadIdx.x], acc);
        s[S_Y + threadIdx.x] = acc;
    } else if (threadIdx.x < 32 + D) {
        int j = threadIdx.x - 32;
        s[S_I + j] = P[id_emb + id * D + j];
    } else if (threadIdx.x < 32 + D + 16) {
        int j = threadIdx.x - 32 - D;
        float x = eye * (float)pow(10000.0, j / 16.0);
        s[S_ES + j] = sinf(x);
        s[S_ES + 16 + j] = cosf(x);
    }
    __syncthreads();
    blk_dense(s + S_Y, 1, 32, P + T_AM0, nullptr, D, ACT_RELU, s + S_AH);
    blk_dense(s + S_AH, 1, D, P + T_AM1, nullptr, D, ACT_NONE, s + S_A);
    blk_dense(s + S_A, 1, D, P + T_U1, nullptr, D, ACT_NONE, s + S_U);
    blk_dense(s + S_I, 1, D, P + T_U2, nullptr, D, ACT_NONE, s + S_V);
    if (threadIdx.x < D) {
        int j = threadIdx.x;
        s[S_G + j] = multiplicative ? s[S_U + j] * s[S_V + j] : s[S_U + j] + s[S_V + j];
    }
    __syncthreads();
    blk_dense(s + S_G, 1, D, P + T_MC, nullptr, D, ACT_NONE, s + S_MT);
    blk_dense(s + S_A, 1, D, P + T_W2, nullptr, D, ACT_NONE, s + S_MT + D);
    blk_dense(s + S_I, 1, D, P + T_W3, P + T_W3B, D, ACT_NONE, s + S_MT + 2 * D);
    blk_dense(s + S_ES, 1, 32, P + T_EYE0W, P + T_EYE0B, D, ACT_RELU, s + S_EH);
    blk_dense(s + S_EH, 1, D, P + T_EYE1W, P + T_EYE1B, D, ACT_NONE, s + S_TOK + D);
    blk_dense(view, 1, 12, P + T_VIEW0W, P + T_VIEW0B, D, ACT_RELU, s + S_VH);
    blk_dense(s + S_VH, 1, D, P + T_VIEW1W, P + T_VIEW1B, D, ACT_NONE, s + S_TOK + 2 * D);
    if (threadIdx.x < D) {
        int j = threadIdx.x;
        s[S_TOK + j] = s[S_MT + j] + s[S_MT + D + j] + s[S_MT + 2 * D + j];
        s[S_TOK + 3 * D + j] = P[T_NULL + j];
    }
    __syncthreads();
}

// tokens_fwd: the B frames' K/V rows. Grid B blocks × TOK_THREADS; dynamic shared TOK_FWD_FLOATS·4 bytes.
//   params, audio [B,8,16,C], eye [B], view [B,12], ids [B] → kv [2,B,4,64]
// Bytes: 4·B·(512·C + 14 + 512) + params once (L2). FLOP ≈ 2·B·(8·(16·C·3·32/2 + 41 k) + 45 k) (see launcher).
extern "C" __global__ void __launch_bounds__(TOK_THREADS)
tokens_fwd(const float* __restrict__ params, const float* __restrict__ audio, const float* __restrict__ eye,
           const float* __restrict__ view, const int* __restrict__ ids, int B, int C, int multiplicative,
           float* __restrict__ kv) {
    extern __shared__ float s[];
    const int b = blockIdx.x;
    tokens_frame(params, audio + (long long)b * 8 * 16 * C, eye[b], view + b * 12, ids[b], C, multiplicative, s);
    blk_dense(s + S_TOK, 4, D, params + K_WK, params + K_BK, D, ACT_NONE, kv + b * 4 * D);
    blk_dense(s + S_TOK, 4, D, params + K_WV, params + K_BV, D, ACT_NONE, kv + B * 4 * D + b * 4 * D);
}

// tokens_bwd: recomputes the frame's forward and takes dL/dK,V back to every token-path parameter.
// Grid B blocks × TOK_THREADS; dynamic shared TOK_BWD_FLOATS·4 bytes.
//   params, audio, eye, view, ids, d_kv [2,B,4,64] → d_params (+=, atomics: token section, wk, bk, wv, bv)
// Bytes ≈ 4·B·(512·C + 526) + 8·B·(token-section floats) (atomics). FLOP ≈ 2× tokens_fwd's.
extern "C" __global__ void __launch_bounds__(TOK_THREADS)
tokens_bwd(const float* __restrict__ params, const float* __restrict__ audio, const float* __restrict__ eye,
           const float* __restrict__ view, const int* __restrict__ ids, int B, int C, int multiplicative,
           const float* __restrict__ d_kv, float* __restrict__ d_params) {
    extern __shared__ float s[];
    const int b = blockIdx.x;
    const float* P = params;
    float* dP = d_params;
    const float* aud = audio + (long long)b * 8 * 16 * C;
    const int id = ids[b];
    const int an0b = T_AN0W + 32 * C * 3, id_emb = an0b + 32;
    tokens_frame(P, aud, eye[b], view + b * 12, id, C, multiplicative, s);
    // K, V → tokens.
    blk_dense_bwd(s + S_TOK, nullptr, d_kv + b * 4 * D, 4, D, D, ACT_NONE, P + K_WK, s + S_DTOK, dP + K_WK, dP + K_BK, s + S_SCR);
    blk_dense_bwd(s + S_TOK, nullptr, d_kv + B * 4 * D + b * 4 * D, 4, D, D, ACT_NONE, P + K_WV, s + S_DTOK2, dP + K_WV,
                  dP + K_BV, s + S_SCR);
    for (int e = threadIdx.x; e < 4 * D; e += TOK_THREADS) s[S_DTOK + e] += s[S_DTOK2 + e];
    __syncthreads();
    if (threadIdx.x < D) atomicAdd(dP + T_NULL + threadIdx.x, s[S_DTOK + 3 * D + threadIdx.x]);
    // View and eye MLPs.
    blk_dense_bwd(s + S_VH, nullptr, s + S_DTOK + 2 * D, 1, D, D, ACT_NONE, P + T_VIEW1W, s + S_DVH, dP + T_VIEW1W, dP + T_VIEW1B, s + S_SCR);
    blk_dense_bwd(view + b * 12, s + S_VH, s + S_DVH, 1, 12, D, ACT_RELU, P + T_VIEW0W, nullptr, dP + T_VIEW0W, dP + T_VIEW0B, s + S_SCR);
    blk_dense_bwd(s + S_EH, nullptr, s + S_DTOK + D, 1, D, D, ACT_NONE, P + T_EYE1W, s + S_DEH, dP + T_EYE1W, dP + T_EYE1B, s + S_SCR);
    blk_dense_bwd(s + S_ES, s + S_EH, s + S_DEH, 1, 32, D, ACT_RELU, P + T_EYE0W, nullptr, dP + T_EYE0W, dP + T_EYE0B, s + S_SCR);
    // M(a, i).
    blk_dense_bwd(s + S_G, nullptr, s + S_DTOK, 1, D, D, ACT_NONE, P + T_MC, s + S_DG, dP + T_MC, nullptr, s + S_SCR);
    blk_dense_bwd(s + S_A, nullptr, s + S_DTOK, 1, D, D, ACT_NONE, P + T_W2, s + S_DAA, dP + T_W2, nullptr, s + S_SCR);
    blk_dense_bwd(s + S_I, nullptr, s + S_DTOK, 1, D, D, ACT_NONE, P + T_W3, s + S_DI, dP + T_W3, dP + T_W3B, s + S_SCR);
    if (threadIdx.x < D) {
        int j = threadIdx.x;
        float dg = s[S_DG + j];
        s[S_DU + j] = multiplicative ? dg * s[S_V + j] : dg;
        s[S_DV + j] = multiplicative ? dg * s[S_U + j] : dg;
    }
    __syncthreads();
    blk_dense_bwd(s + S_A, nullptr, s + S_DU, 1, D, D, ACT_NONE, P + T_U1, s + S_DTMP, dP + T_U1, nullptr, s + S_SCR);
    if (threadIdx.x < D) s[S_DAA + threadIdx.x] += s[S_DTMP + threadIdx.x];
    __syncthreads();
    blk_dense_bwd(s + S_I, nullptr, s + S_DV, 1, D, D, ACT_NONE, P + T_U2, s + S_DTMP, dP + T_U2, nullptr, s + S_SCR);
    if (threadIdx.x < D) {
        s[S_DI + threadIdx.x] += s[S_DTMP + threadIdx.x];
        atomicAdd(dP + id_emb + id * D + threadIdx.x, s[S_DI + threadIdx.x]);
    }
    __syncthreads();
    // Audio MLP.
    blk_dense_bwd(s + S_AH, nullptr, s + S_DAA, 1, D, D, ACT_NONE, P + T_AM1, s + S_DAH, dP + T_AM1, nullptr, s + S_SCR);
    blk_dense_bwd(s + S_Y, s + S_AH, s + S_DAH, 1, 32, D, ACT_RELU, P + T_AM0, s + S_DY, dP + T_AM0, nullptr, s + S_SCR);
    // Window softmax and weighted sum: d_xw (S_DA), window logits' gradient (S_DLOG).
    for (int e = threadIdx.x; e < 8 * 32; e += TOK_THREADS) s[S_DA + e] = s[S_WTS + e / 32] * s[S_DY + e % 32];
    if (threadIdx.x < 8) {
        int k = threadIdx.x;
        float dp = 0.0f;
        for (int j = 0; j < 32; ++j) dp = fmaf(s[S_XW + k * 32 + j], s[S_DY + j], dp);
        s[S_SCR + k] = dp;
    }
    __syncthreads();
    if (threadIdx.x < 8) {
        float dot = 0.0f;
        for (int k = 0; k < 8; ++k) dot += s[S_WTS + k] * s[S_SCR + k];
        s[S_DLOG + threadIdx.x] = s[S_WTS + threadIdx.x] * (s[S_SCR + threadIdx.x] - dot);
    }
    __syncthreads();
    blk_dense_bwd(s + S_AT4, nullptr, s + S_DLOG, 1, 8, 8, ACT_NONE, P + T_ATFCW, s + S_DB, dP + T_ATFCW, dP + T_ATFCB, s + S_SCR);
    // AudioAttNet convs, last to first (d ping-pongs between S_DB and S_DC).
    blk_conv_bwd(s + S_AT3, 1, 8, 2, P + T_AT4W, s + S_AT4, s + S_DB, 1, 1, s + S_DC, dP + T_AT4W, dP + T_AT4B, s + S_SCR);
    blk_conv_bwd(s + S_AT2, 1, 8, 4, P + T_AT3W, s + S_AT3, s + S_DC, 2, 1, s + S_DB, dP + T_AT3W, dP + T_AT3B, s + S_SCR);
    blk_conv_bwd(s + S_AT1, 1, 8, 8, P + T_AT2W, s + S_AT2, s + S_DB, 4, 1, s + S_DC, dP + T_AT2W, dP + T_AT2B, s + S_SCR);
    blk_conv_bwd(s + S_AT0, 1, 8, 16, P + T_AT1W, s + S_AT1, s + S_DC, 8, 1, s + S_DB, dP + T_AT1W, dP + T_AT1B, s + S_SCR);
    blk_conv_bwd(s + S_XW, 1, 8, 32, P + T_AT0W, s + S_AT0, s + S_DB, 16, 1, s + S_DC, dP + T_AT0W, dP + T_AT0B, s + S_SCR);
    for (int e = threadIdx.x; e < 8 * 32; e += TOK_THREADS) s[S_DA + e] += s[S_DC + e];
    __syncthreads();
    // AudioNet FC and convs (the audio features are data: no d_x for the first conv).
    blk_dense_bwd(s + S_FC0, nullptr, s + S_DA, 8, 64, 32, ACT_NONE, P + T_FC1W, s + S_DB, dP + T_FC1W, dP + T_FC1B, s + S_SCR);
    blk_dense_bwd(s + S_AN3, s + S_FC0, s + S_DB, 8, 64, 64, ACT_LEAKY, P + T_FC0W, s + S_DC, dP + T_FC0W, dP + T_FC0B, s + S_SCR);
    blk_conv_bwd(s + S_AN2, 8, 2, 64, P + T_AN3W, s + S_AN3, s + S_DC, 64, 2, s + S_DB, dP + T_AN3W, dP + T_AN3B, s + S_SCR);
    blk_conv_bwd(s + S_AN1, 8, 4, 32, P + T_AN2W, s + S_AN2, s + S_DB, 64, 2, s + S_DC, dP + T_AN2W, dP + T_AN2B, s + S_SCR);
    blk_conv_bwd(s + S_AN0, 8, 8, 32, P + T_AN1W, s + S_AN1, s + S_DC, 32, 2, s + S_DB, dP + T_AN1W, dP + T_AN1B, s + S_SCR);
    blk_conv_bwd(aud, 8, 16, C, P + T_AN0W, s + S_AN0, s + S_DB, 32, 2, nullptr, dP + T_AN0W, dP + an0b, s + S_SCR);
}
