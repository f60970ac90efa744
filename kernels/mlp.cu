// Dense layer Y = act(X·Wᵀ + b) and its backward: the building block of every MLP in the model (F_c, the
// audio/eye/view MLPs, the F_d heads). fp32 throughout (FMA, fp32 accumulation).
//
// Shapes: M rows, I inputs, O outputs; x [M,I], w [O,I] (PyTorch Linear layout), b [O] (may be null),
// y [M,O]. act: ACT_NONE, ACT_RELU, ACT_LEAKY (LeakyReLU, slope LEAKY_SLOPE). The activation's derivative
// is read from y (y > 0 exactly where the pre-activation is > 0), so pre-activations are not stored.
//
// One tiled SIMT GEMM core serves all three products (C[i,j] = Σ_k A(i,k)·B(k,j)):
//   dense_fwd      C = X·Wᵀ                 i = row, j = output, k = input      [M,O]
//   dense_bwd_x    C = P·W,  P = act'(y)⊙d_y i = row, j = input,  k = output     [M,I]
//   dense_bwd_w    C = Pᵀ·X (one row chunk)  i = output, j = input, k = row      [splits,O,I] partials
// Block: DENSE_THREADS = 256 threads, a 16 × 16 grid (ty, tx), own a BM × BN tile of C with BM = 16·TM,
// BN = 16·TN; thread (ty, tx) owns TM × TN elements: rows h·BM/2 + ty·TM/2 + {0..TM/2−1} for h = 0, 1,
// columns likewise with tx and TN. With TM = TN = 8 (128 × 128) each k step reads two float4 of A
// (broadcast across tx) and two float4 of B from shared memory for 64 FMA. Narrow layers use a narrower
// tile on their output side so little FMA work is padding: dense_fwd_n64 / dense_fwd_n32 (BN = 64 / 32,
// for O ≤ 64 / O ≤ 32) and dense_bwd_w_n64 / dense_bwd_w_n32 (BM = 64 / 32); the launchers pick.
// The k loop steps by DENSE_BK = 8; each step stages A and B in shared memory, As[8][BM + 4] and
// Bs[8][BN + 4] floats (k-major, padded by 4 so the transposing stores of k-contiguous sources hit 32
// distinct banks and rows stay 16-byte aligned): 8448 bytes static at 128 × 128.
// Every C element sums k in increasing order with fmaf from 0, then (fwd) adds the bias and applies act:
// the CPU twin src/cpu/mlp.rs follows the same order. Out-of-range rows/k are loaded as 0.
//
// d_w and d_b are sums over the M rows: dense_bwd_w cuts the rows into `splits` (≤ 128) chunks of
// rows_per_split (grid.z; src/cuda/mlp.rs:dense_w_splits), each block writes its tile's partial sums (and,
// for the blocks of column tile 0, the bias partials Σ_rows P(row, o), summed from the staged A tile by
// threads 0..BM−1) to partials [splits, O·I + O]; dense_bwd_w_reduce then sums the splits in order. No
// atomics: d_x, d_w, d_b are deterministic for given shapes (and the same on every card).
// NaN policy: a NaN in x, w or b propagates to y (act keeps NaN); in the backward, an inactive ReLU unit
// selects 0 whatever d_y is (like PyTorch's threshold_backward).
// Bytes/FLOP (compulsory, as the launchers in src/cuda/mlp.rs declare them):
//   dense_fwd          4·(M·I + O·I + O + M·O) bytes, 2·M·I·O FLOP
//   dense_bwd_x        4·(2·M·O + O·I + M·I) bytes,   2·M·I·O FLOP
//   dense_bwd_w        4·(2·M·O + M·I + splits·(O·I + O)) bytes, 2·M·I·O + M·O FLOP
//   dense_bwd_w_reduce 4·(splits + 1)·(O·I + O) bytes, splits·(O·I + O) FLOP
// measured: H200, commit b4f6151: 50 000 × 64→128 ReLU forward 57 µs (14.4 TFLOP/s), forward + backward 333 µs;
// 400 000 × 128→128 forward 522 µs (25.1 TFLOP/s), forward + backward 2.45 ms (16.0 TFLOP/s).

#define DENSE_THREADS 256
#define DENSE_BK 8
#define DENSE_REDUCE_THREADS 256

#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_LEAKY 2
#define LEAKY_SLOPE 0.02f

__device__ __forceinline__ float act_apply(float v, int act) {
    if (act == ACT_RELU) return v < 0.0f ? 0.0f : v;
    if (act == ACT_LEAKY) return v < 0.0f ? v * LEAKY_SLOPE : v;
    return v;
}

// dL/d(pre-activation) from y and dL/dy (a select for ReLU, see the NaN policy).
__device__ __forceinline__ float act_vjp(float y, float d_y, int act) {
    if (act == ACT_RELU) return y > 0.0f ? d_y : 0.0f;
    if (act == ACT_LEAKY) return y > 0.0f ? d_y : d_y * LEAKY_SLOPE;
    return d_y;
}

// Stages a BM × 8 tile s[k][i] = get(i, k). K_CONTIGUOUS: the source is contiguous in k, so consecutive
// threads take consecutive k (8 floats = one 32-byte sector per row); otherwise consecutive threads take
// consecutive i. get() returns 0 out of range.
template <int BM, bool K_CONTIGUOUS, typename Get>
__device__ __forceinline__ void dense_stage(float (*s)[BM + 4], Get get) {
#pragma unroll
    for (int j = 0; j < BM * DENSE_BK / DENSE_THREADS; ++j) {
        int e = threadIdx.x + j * DENSE_THREADS;
        int i = K_CONTIGUOUS ? e / DENSE_BK : e % BM;
        int k = K_CONTIGUOUS ? e % DENSE_BK : e / BM;
        s[k][i] = get(i, k);
    }
}

// Tile-local index of a thread's r-th row (T = TM, t = ty) or column (T = TN, t = tx).
template <int T>
__device__ __forceinline__ int dense_pos(int r, int t) {
    return (r / (T / 2)) * (8 * T) + t * (T / 2) + r % (T / 2);
}

// v[0..V) = p[0..V), one shared-memory load of V floats (p is V·4-byte aligned).
template <int V>
__device__ __forceinline__ void dense_load(const float* p, float* v) {
    if constexpr (V == 4) {
        float4 t = *reinterpret_cast<const float4*>(p);
        v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
    } else if constexpr (V == 2) {
        float2 t = *reinterpret_cast<const float2*>(p);
        v[0] = t.x, v[1] = t.y;
    } else {
        v[0] = p[0];
    }
}

// acc[r][c] += Σ_k as[k][row(r)] · bs[k][col(c)] over one staged k step.
template <int TM, int TN>
__device__ __forceinline__ void dense_tile_fma(const float (*as)[16 * TM + 4], const float (*bs)[16 * TN + 4],
                                               float acc[TM][TN]) {
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (int k = 0; k < DENSE_BK; ++k) {
        float a[TM], b[TN];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            dense_load<TM / 2>(&as[k][h * 8 * TM + ty * (TM / 2)], a + h * (TM / 2));
            dense_load<TN / 2>(&bs[k][h * 8 * TN + tx * (TN / 2)], b + h * (TN / 2));
        }
#pragma unroll
        for (int r = 0; r < TM; ++r)
#pragma unroll
            for (int c = 0; c < TN; ++c) acc[r][c] = fmaf(a[r], b[c], acc[r][c]);
    }
}

// x [M,I], w [O,I], b [O] or null -> y [M,O]. grid (ceil(O/BN), ceil(M/128)).
template <int TN>
__device__ __forceinline__ void dense_fwd_tile(const float* __restrict__ x, const float* __restrict__ w,
                                               const float* __restrict__ b, int m, int n_in, int n_out, int act,
                                               float* __restrict__ y) {
    constexpr int BM = 128, BN = 16 * TN;
    __shared__ __align__(16) float as[DENSE_BK][BM + 4];
    __shared__ __align__(16) float bs[DENSE_BK][BN + 4];
    long long row0 = (long long)blockIdx.y * BM;
    int col0 = blockIdx.x * BN;
    float acc[8][TN] = {};
    for (int k0 = 0; k0 < n_in; k0 += DENSE_BK) {
        dense_stage<BM, true>(as, [&](int i, int k) {
            long long r = row0 + i;
            return r < m && k0 + k < n_in ? x[r * n_in + k0 + k] : 0.0f;
        });
        dense_stage<BN, true>(bs, [&](int j, int k) {
            int o = col0 + j;
            return o < n_out && k0 + k < n_in ? w[(long long)o * n_in + k0 + k] : 0.0f;
        });
        __syncthreads();
        dense_tile_fma<8, TN>(as, bs, acc);
        __syncthreads();
    }
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (int r = 0; r < 8; ++r) {
        long long row = row0 + dense_pos<8>(r, ty);
        if (row >= m) continue;
#pragma unroll
        for (int c = 0; c < TN; ++c) {
            int o = col0 + dense_pos<TN>(c, tx);
            if (o < n_out) y[row * n_out + o] = act_apply(b ? acc[r][c] + b[o] : acc[r][c], act);
        }
    }
}

#define DENSE_FWD_ENTRY(name, TN)                                                                             \
    extern "C" __global__ void __launch_bounds__(DENSE_THREADS)                                               \
    name(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b, int m,      \
         int n_in, int n_out, int act, float* __restrict__ y) {                                               \
        dense_fwd_tile<TN>(x, w, b, m, n_in, n_out, act, y);                                                  \
    }
DENSE_FWD_ENTRY(dense_fwd, 8)
DENSE_FWD_ENTRY(dense_fwd_n64, 4)
DENSE_FWD_ENTRY(dense_fwd_n32, 2)

// d_y [M,O], y [M,O], w [O,I] -> d_x [M,I] (overwritten). grid (ceil(I/128), ceil(M/128)).
extern "C" __global__ void __launch_bounds__(DENSE_THREADS)
dense_bwd_x(const float* __restrict__ d_y, const float* __restrict__ y, const float* __restrict__ w,
            int m, int n_in, int n_out, int act, float* __restrict__ d_x) {
    constexpr int BM = 128, BN = 128;
    __shared__ __align__(16) float as[DENSE_BK][BM + 4];
    __shared__ __align__(16) float bs[DENSE_BK][BN + 4];
    long long row0 = (long long)blockIdx.y * BM;
    int col0 = blockIdx.x * BN;
    float acc[8][8] = {};
    for (int k0 = 0; k0 < n_out; k0 += DENSE_BK) {
        dense_stage<BM, true>(as, [&](int i, int k) {
            long long r = row0 + i;
            if (r >= m || k0 + k >= n_out) return 0.0f;
            long long e = r * n_out + k0 + k;
            return act_vjp(y[e], d_y[e], act);
        });
        dense_stage<BN, false>(bs, [&](int j, int k) {
            int c = col0 + j;
            return c < n_in && k0 + k < n_out ? w[(long long)(k0 + k) * n_in + c] : 0.0f;
        });
        __syncthreads();
        dense_tile_fma<8, 8>(as, bs, acc);
        __syncthreads();
    }
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (int r = 0; r < 8; ++r) {
        long long row = row0 + dense_pos<8>(r, ty);
        if (row >= m) continue;
#pragma unroll
        for (int c = 0; c < 8; ++c) {
            int i = col0 + dense_pos<8>(c, tx);
            if (i < n_in) d_x[row * n_in + i] = acc[r][c];
        }
    }
}

// d_y [M,O], y [M,O], x [M,I] -> partials [splits, O·I + O]: split z's Σ over its rows of P(row,o)·x(row,i)
// at [z, o·I + i] and (column tile 0 only) Σ P(row,o) at [z, O·I + o].
// grid (ceil(I/128), ceil(O/BM), splits), BM = 16·TM.
template <int TM>
__device__ __forceinline__ void dense_bwd_w_tile(const float* __restrict__ d_y, const float* __restrict__ y,
                                                 const float* __restrict__ x, int m, int n_in, int n_out, int act,
                                                 int rows_per_split, float* __restrict__ partials) {
    constexpr int BM = 16 * TM, BN = 128;
    __shared__ __align__(16) float as[DENSE_BK][BM + 4];
    __shared__ __align__(16) float bs[DENSE_BK][BN + 4];
    int o0 = blockIdx.y * BM, i0 = blockIdx.x * BN;
    long long begin = (long long)blockIdx.z * rows_per_split;
    long long end = min((long long)m, begin + rows_per_split);
    bool bias_tile = blockIdx.x == 0;
    float acc[TM][8] = {};
    float bias_acc = 0.0f;  // thread t < BM: Σ_k P(k, o0 + t)
    for (long long k0 = begin; k0 < end; k0 += DENSE_BK) {
        dense_stage<BM, false>(as, [&](int o, int k) {
            long long r = k0 + k;
            if (r >= end || o0 + o >= n_out) return 0.0f;
            long long e = r * n_out + o0 + o;
            return act_vjp(y[e], d_y[e], act);
        });
        dense_stage<BN, false>(bs, [&](int i, int k) {
            long long r = k0 + k;
            return r < end && i0 + i < n_in ? x[r * n_in + i0 + i] : 0.0f;
        });
        __syncthreads();
        if (bias_tile && threadIdx.x < BM) {
#pragma unroll
            for (int k = 0; k < DENSE_BK; ++k) bias_acc += as[k][threadIdx.x];
        }
        dense_tile_fma<TM, 8>(as, bs, acc);
        __syncthreads();
    }
    long long stride = (long long)n_out * n_in + n_out;
    float* part = partials + blockIdx.z * stride;
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (int r = 0; r < TM; ++r) {
        int o = o0 + dense_pos<TM>(r, ty);
        if (o >= n_out) continue;
#pragma unroll
        for (int c = 0; c < 8; ++c) {
            int i = i0 + dense_pos<8>(c, tx);
            if (i < n_in) part[(long long)o * n_in + i] = acc[r][c];
        }
    }
    if (bias_tile && threadIdx.x < BM && o0 + (int)threadIdx.x < n_out)
        part[(long long)n_out * n_in + o0 + threadIdx.x] = bias_acc;
}

#define DENSE_BWD_W_ENTRY(name, TM)                                                                           \
    extern "C" __global__ void __launch_bounds__(DENSE_THREADS)                                               \
    name(const float* __restrict__ d_y, const float* __restrict__ y, const float* __restrict__ x, int m,    \
         int n_in, int n_out, int act, int rows_per_split, float* __restrict__ partials) {                    \
        dense_bwd_w_tile<TM>(d_y, y, x, m, n_in, n_out, act, rows_per_split, partials);                      \
    }
DENSE_BWD_W_ENTRY(dense_bwd_w, 8)
DENSE_BWD_W_ENTRY(dense_bwd_w_n64, 4)
DENSE_BWD_W_ENTRY(dense_bwd_w_n32, 2)

// partials [splits, O·I + O] -> d_w [O,I], d_b [O] (null: skipped), overwritten; splits summed in order
// (0 splits give zeros). One thread per output element, DENSE_REDUCE_THREADS per block.
extern "C" __global__ void __launch_bounds__(DENSE_REDUCE_THREADS)
dense_bwd_w_reduce(const float* __restrict__ partials, int splits, int n_in, int n_out,
                   float* __restrict__ d_w, float* __restrict__ d_b) {
    long long stride = (long long)n_out * n_in + n_out;
    long long j = (long long)blockIdx.x * DENSE_REDUCE_THREADS + threadIdx.x;
    if (j >= stride) return;
    float s = 0.0f;
    for (int z = 0; z < splits; ++z) s += partials[z * stride + j];
    if (j < (long long)n_out * n_in) d_w[j] = s;
    else if (d_b) d_b[j - (long long)n_out * n_in] = s;
}
