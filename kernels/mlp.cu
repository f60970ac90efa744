// Dense layer Y = act(X·Wᵀ + b) and its backward: the building block of every MLP in the model (F_c, the
// audio/eye/view MLPs, the F_d heads). fp32 results throughout: SIMT kernels (FMA, fp32 accumulation) and,
// where the launcher finds the shape and buffers fit, tensor-core kernels at fp32 accuracy (3xTF32, below).
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
// Tensor-core kernels (3xTF32 on mma.sync.m16n8k8 .tf32, inline PTX for sm_80 and up), the same three
// products with the same arguments and results; src/cuda/mlp.rs picks them where dense_uses_tensor_cores(s)
// holds (I and O multiples of 4 and ≥ 32) and every buffer is 16-byte aligned:
//   dense_fwd_tc      block 64 rows × 128 outputs      dense_fwd_tc_n64    128 rows × 64 outputs (O ≤ 64)
//   dense_bwd_x_tc    block 64 rows × 128 inputs       dense_bwd_x_tc_i64  128 rows × 64 inputs (I ≤ 64)
//   dense_bwd_w_tc    block 64 outputs × 128 inputs    dense_bwd_w_tc_i64  64 outputs × 64 inputs (I ≤ 64)
// 3xTF32: a tf32 product keeps 11 significant bits (≈ 2⁻¹¹ relative), far from the 1e-5 the twins hold the
// kernels to. So every operand value v is split, once, as it is staged: hi = tf32(v), lo = tf32(v − hi)
// (cvt.rna; v − hi is exact, hi + lo keeps 22 of 24 bits), and each 8-deep slice adds A_lo·B_hi, then
// A_hi·B_lo, then A_hi·B_hi into fp32 accumulators; A_lo·B_lo (≈ 2⁻²² of the product) is dropped. Three
// tf32 mma per product still run several times faster than fp32 FMA. The sum order inside an mma is the
// hardware's, so results match the twin within rounding, not bit for bit.
// Block: TC_THREADS = 256 (8 warps), BN/32 warps across the tile's columns and 8/(BN/32) down its rows;
// a warp owns WM × 32 = MT × 4 mma tiles of 16 × 8 (32 × 32, MT = 2; 16 × 32 in dense_bwd_w_tc_i64), MT·16
// fp32 accumulators per thread. Fragments (PTX ISA, g = lane / 4, t = lane % 4): A a0..a3 = (g, t),
// (g+8, t), (g, t+4), (g+8, t+4); B b0, b1 = (k t, n g), (k t+4, n g); C c0..c3 = (g, 2t), (g, 2t+1),
// (g+8, 2t), (g+8, 2t+1), stored as two float2 (rows g and g+8) straight to global memory.
// Staging: the k loop steps by TC_BK = 16. While the warps multiply step s, each thread holds its float4
// chunks of step s+1 in registers (consecutive threads take consecutive 16-byte chunks of a row; chunks of
// out-of-range rows or columns are 0); between two barriers (one, into the other of two buffers, in
// dense_bwd_w_tc) it then forms P = act'(y) ⊙ d_y where needed, splits, and stores (hi, lo) float2 pairs into one shared buffer per operand: k-contiguous operands (x and w
// in dense_fwd_tc, P in dense_bwd_x_tc) as s[MN][16 + 4], the others (w in dense_bwd_x_tc, P and x in
// dense_bwd_w_tc) as s[16][MN + 4]. A fragment element is one 8-byte load of its pair; a row stride of 4
// mod 16 pairs puts a half-warp's 16 loads on distinct bank pairs (pair slots 4g + t, or 4t + g).
// Shared memory, static: 30 720 bytes (dense_fwd_tc, _n64), 27 136 / 29 184 (dense_bwd_x_tc / _i64);
// dynamic, two staging buffers: 51 200 / 34 816 (dense_bwd_w_tc / _i64, one barrier per k step).
// Registers (ptxas -arch=sm_90): 96–120, no spills, so
// __launch_bounds__(256, 2) keeps two blocks per SM.
// dense_bwd_w_tc takes row chunks as dense_bwd_w does (≤ 128), but as many as fill about 264 blocks (two per
// SM on a 132-SM H100/H200) with its 64-wide output tiles (src/cuda/mlp.rs:dense_w_tc_splits); its bias
// partials are summed by each thread over the P it stages (four columns, its rows in order), then, in the
// blocks of column tile 0, across the threads sharing those columns in thread order, through shared memory.
//
// d_w and d_b are sums over the M rows: dense_bwd_w cuts the rows into `splits` (≤ 128) chunks of
// rows_per_split (grid.z; src/cuda/mlp.rs:dense_w_splits), each block writes its tile's partial sums (and,
// for the blocks of column tile 0, the bias partials Σ_rows P(row, o), summed from the staged A tile by
// threads 0..BM−1) to partials [splits, O·I + O]; dense_bwd_w_reduce then sums the splits (eight interleaved
// chains per element, added in a fixed order, see there). No
// atomics: d_x, d_w, d_b are deterministic for given shapes (and the same on every card).
// NaN policy: a NaN in x, w or b propagates to y (act keeps NaN); in the backward, an inactive ReLU unit
// selects 0 whatever d_y is (like PyTorch's threshold_backward). In the tensor-core kernels a ±Inf in an
// operand gives NaN (its lo part is Inf − Inf) where the SIMT kernels may give ±Inf.
// Single-output layers (O = 1, the opacity head) run GEMV kernels instead (dense_gemv_*, at the end of this
// file), which read x once at DRAM bandwidth and reduce d_w, d_b inside dense_gemv_bwd_w.
// Bytes/FLOP (compulsory, as the launchers in src/cuda/mlp.rs declare them; the _tc variants declare the
// same, with their own splits, and count 2·M·I·O useful FLOP though the tensor cores execute three times
// that; w is read once per block, and dense_bwd_w_tc reads an x row once per output tile and a y, d_y row
// once per input tile; those repeats come from L2):
//   dense_fwd          4·(M·I + O·I + O + M·O) bytes, 2·M·I·O FLOP
//   dense_bwd_x        4·(2·M·O + O·I + M·I) bytes,   2·M·I·O FLOP
//   dense_bwd_w        4·(2·M·O + M·I + splits·(O·I + O)) bytes, 2·M·I·O + M·O FLOP
//   dense_bwd_w_reduce 4·(splits + 1)·(O·I + O) bytes, splits·(O·I + O) FLOP
// measured: H200, commit b4f6151: 50 000 × 64→128 ReLU forward 57 µs (14.4 TFLOP/s), forward + backward 333 µs;
// 400 000 × 128→128 forward 522 µs (25.1 TFLOP/s), forward + backward 2.45 ms (16.0 TFLOP/s).
// measured (tensor-core kernels), H200, commit 8b47a2c: 50 000 × 64→128 ReLU forward 36 µs (23 TFLOP/s),
// forward + backward 107 µs; 400 000 × 64→128 forward 234 µs (28 TFLOP/s); 32 736 × 128→128 forward 42 µs,
// forward + backward 118 µs (27 TFLOP/s of useful FLOP; three mma per product).
// measured (GEMV kernels), H200, commit 09b5b8e, the canonical step's opacity head 32 736 × 128→1 (profiler):
// dense_gemv_fwd 8.0 µs, dense_gemv_bwd_x 9.1 µs, dense_gemv_bwd_w 21.2 µs; the n32 SIMT path took 19.1, 12.5
// and 49.0 + 6.5 µs (reduce).

#define DENSE_THREADS 256
#define DENSE_BK 8
#define DENSE_REDUCE_THREADS 256

#include "activation.cuh"

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
    name(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b, int m,        \
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
    name(const float* __restrict__ d_y, const float* __restrict__ y, const float* __restrict__ x, int m,      \
         int n_in, int n_out, int act, int rows_per_split, float* __restrict__ partials) {                    \
        dense_bwd_w_tile<TM>(d_y, y, x, m, n_in, n_out, act, rows_per_split, partials);                       \
    }
DENSE_BWD_W_ENTRY(dense_bwd_w, 8)
DENSE_BWD_W_ENTRY(dense_bwd_w_n64, 4)
DENSE_BWD_W_ENTRY(dense_bwd_w_n32, 2)

// ---------------------------------------------------------------------------------------------------------------
// Tensor-core kernels (3xTF32): dense_fwd_tc, dense_bwd_x_tc, dense_bwd_w_tc. Same arguments and results as the
// SIMT kernels above, within fp32 rounding (the summation order inside an mma differs from the SIMT order).
// ---------------------------------------------------------------------------------------------------------------

#define TC_THREADS 256
#define TC_BK 16

// (hi, lo) with hi = tf32(v) and lo = tf32(v − hi), both rounded to nearest, ties away (cvt.rna). v − hi is
// exact (Sterbenz), so hi + lo keeps 22 of v's 24 significand bits. A NaN v gives NaN parts; ±Inf gives
// (±Inf, NaN), so an Inf input ends as NaN (see the header).
__device__ __forceinline__ float2 tf32_split(float v) {
    unsigned hi, lo;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(hi) : "f"(v));
    float rest = v - __uint_as_float(hi);
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(lo) : "f"(rest));
    return make_float2(__uint_as_float(hi), __uint_as_float(lo));
}

// c += a·b for one 16 × 8 × 8 tile; fragments as in the PTX ISA (mma.m16n8k8, .tf32): g = lane / 4,
// t = lane % 4; a = {A(g,t), A(g+8,t), A(g,t+4), A(g+8,t+4)}, b = {B(t,g), B(t+4,g)},
// c = {C(g,2t), C(g,2t+1), C(g+8,2t), C(g+8,2t+1)}.
__device__ __forceinline__ void mma_tf32(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// A thread's share of an R × C tile (C a multiple of 4) of a row-major matrix, in float4 chunks: chunk j is
// tile row row(j), columns col() .. col() + 3 (consecutive threads take consecutive chunks of a row, so a
// warp reads whole 32-byte sectors). The same map stages the tile into shared memory.
template <int R, int C>
struct TcChunks {
    static constexpr int PER_ROW = C / 4;
    static constexpr int CPT = R * PER_ROW / TC_THREADS;
    static_assert(CPT >= 1 && R * PER_ROW % TC_THREADS == 0 && TC_THREADS % PER_ROW == 0, "tile vs threads");
    static __device__ __forceinline__ int row(int j) { return (int)threadIdx.x / PER_ROW + j * (TC_THREADS / PER_ROW); }
    static __device__ __forceinline__ int col() { return ((int)threadIdx.x % PER_ROW) * 4; }
};

// v[j] = g[(r0 + row(j))·ld + c0 + col() ..+3], 0 where the row is ≥ r_end or the chunk is ≥ c_end (c_end a
// multiple of 4, so a chunk is all in or all out). g and ld·4 bytes are 16-byte aligned.
template <int R, int C>
__device__ __forceinline__ void tc_load(float4 (&v)[TcChunks<R, C>::CPT], const float* __restrict__ g, long long ld,
                                        long long r0, long long r_end, int c0, int c_end) {
    using T = TcChunks<R, C>;
#pragma unroll
    for (int j = 0; j < T::CPT; ++j) {
        long long r = r0 + T::row(j);
        int c = c0 + T::col();
        v[j] = r < r_end && c < c_end ? __ldg(reinterpret_cast<const float4*>(g + r * ld + c))
                                      : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
}

// Stores four values split into (hi, lo) pairs at s[0..3] (32 bytes, 16-byte aligned).
__device__ __forceinline__ void tc_put4(float2* s, float a, float b, float c, float d) {
    float2 p = tf32_split(a), q = tf32_split(b), u = tf32_split(c), w = tf32_split(d);
    reinterpret_cast<float4*>(s)[0] = make_float4(p.x, p.y, q.x, q.y);
    reinterpret_cast<float4*>(s)[1] = make_float4(u.x, u.y, w.x, w.y);
}

// Stages the loaded chunks split into shared memory s[R][C + 4] (float2 (hi, lo) pairs).
template <int R, int C>
__device__ __forceinline__ void tc_store(float2* s, const float4 (&v)[TcChunks<R, C>::CPT]) {
    using T = TcChunks<R, C>;
#pragma unroll
    for (int j = 0; j < T::CPT; ++j) tc_put4(s + T::row(j) * (C + 4) + T::col(), v[j].x, v[j].y, v[j].z, v[j].w);
}

// As tc_store for P = act'(y) ⊙ d_y from loaded y and d_y chunks; adds each P to sum[0..3] (the chunk's
// columns are the same for every j).
template <int R, int C>
__device__ __forceinline__ void tc_store_p(float2* s, const float4 (&y)[TcChunks<R, C>::CPT],
                                           const float4 (&d_y)[TcChunks<R, C>::CPT], int act, float (&sum)[4]) {
    using T = TcChunks<R, C>;
#pragma unroll
    for (int j = 0; j < T::CPT; ++j) {
        float p0 = act_vjp(y[j].x, d_y[j].x, act), p1 = act_vjp(y[j].y, d_y[j].y, act);
        float p2 = act_vjp(y[j].z, d_y[j].z, act), p3 = act_vjp(y[j].w, d_y[j].w, act);
        sum[0] += p0, sum[1] += p1, sum[2] += p2, sum[3] += p3;
        tc_put4(s + T::row(j) * (C + 4) + T::col(), p0, p1, p2, p3);
    }
}

// Warp tiling of a BM × BN block tile: WARPS_N = BN / 32 warps across, the rest down; each warp owns
// WM × 32 = MT × NT tiles of 16 × 8.
template <int BM, int BN>
struct TcWarps {
    static constexpr int WARPS_N = BN / 32, WARPS_M = TC_THREADS / 32 / WARPS_N;
    static constexpr int WM = BM / WARPS_M, MT = WM / 16, NT = 4;
    static_assert(WARPS_M * WARPS_N * 32 == TC_THREADS && MT * 16 * WARPS_M == BM, "warp tiling");
};

// Element (i, k) of a staged operand: K_CONTIG tiles are s[i][TC_BK + 4] (i the tile row, k contiguous),
// the others s[k][MN + 4] (i contiguous).
template <bool K_CONTIG, int MN>
__device__ __forceinline__ float2 tc_at(const float2* s, int i, int k) {
    return K_CONTIG ? s[i * (TC_BK + 4) + k] : s[k * (MN + 4) + i];
}

// acc += A·B over one staged k step of TC_BK: A(i, k) from as (i < BM), B(k, j) from bs (j < BN).
// Per 8-deep slice: acc += A_lo·B_hi, then A_hi·B_lo, then A_hi·B_hi (small terms first); A_lo·B_lo
// (≈ 2⁻²² relative) is dropped.
template <int BM, int BN, bool A_K, bool B_K>
__device__ __forceinline__ void tc_tile_mma(const float2* as, const float2* bs,
                                            float (&acc)[TcWarps<BM, BN>::MT][4][4]) {
    using W = TcWarps<BM, BN>;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    int wm = (warp / W::WARPS_N) * W::WM, wn = (warp % W::WARPS_N) * 32;
#pragma unroll
    for (int kk = 0; kk < TC_BK; kk += 8) {
        int k = kk + t;
        unsigned bh[W::NT][2], bl[W::NT][2];
#pragma unroll
        for (int nt = 0; nt < W::NT; ++nt) {
            int j = wn + nt * 8 + g;
            float2 v0 = tc_at<B_K, BN>(bs, j, k), v1 = tc_at<B_K, BN>(bs, j, k + 4);
            bh[nt][0] = __float_as_uint(v0.x), bl[nt][0] = __float_as_uint(v0.y);
            bh[nt][1] = __float_as_uint(v1.x), bl[nt][1] = __float_as_uint(v1.y);
        }
#pragma unroll
        for (int mt = 0; mt < W::MT; ++mt) {
            int i = wm + mt * 16 + g;
            float2 v0 = tc_at<A_K, BM>(as, i, k), v1 = tc_at<A_K, BM>(as, i + 8, k);
            float2 v2 = tc_at<A_K, BM>(as, i, k + 4), v3 = tc_at<A_K, BM>(as, i + 8, k + 4);
            unsigned ah[4] = {__float_as_uint(v0.x), __float_as_uint(v1.x), __float_as_uint(v2.x),
                              __float_as_uint(v3.x)};
            unsigned al[4] = {__float_as_uint(v0.y), __float_as_uint(v1.y), __float_as_uint(v2.y),
                              __float_as_uint(v3.y)};
#pragma unroll
            for (int nt = 0; nt < W::NT; ++nt) {
                mma_tf32(acc[mt][nt], al, bh[nt]);
                mma_tf32(acc[mt][nt], ah, bl[nt]);
                mma_tf32(acc[mt][nt], ah, bh[nt]);
            }
        }
    }
}

// Calls f(i, j, v0, v1) for this thread's accumulator pairs: tile row i, tile columns j and j + 1.
template <int BM, int BN, typename F>
__device__ __forceinline__ void tc_for_pairs(const float (&acc)[TcWarps<BM, BN>::MT][4][4], F f) {
    using W = TcWarps<BM, BN>;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    int wm = (warp / W::WARPS_N) * W::WM, wn = (warp % W::WARPS_N) * 32;
#pragma unroll
    for (int mt = 0; mt < W::MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < W::NT; ++nt)
#pragma unroll
            for (int h = 0; h < 2; ++h)
                f(wm + mt * 16 + g + 8 * h, wn + nt * 8 + 2 * t, acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
}

// x [M,I], w [O,I], b [O] or null -> y [M,O]. Block tile BM rows × BN outputs; grid (ceil(O/BN), ceil(M/BM)).
// A = x tile s[BM][TC_BK + 4], B = w tile s[BN][TC_BK + 4] (both k-contiguous).
template <int BM, int BN>
__device__ __forceinline__ void dense_fwd_tc_tile(const float* __restrict__ x, const float* __restrict__ w,
                                                  const float* __restrict__ b, int m, int n_in, int n_out, int act,
                                                  float* __restrict__ y) {
    __shared__ __align__(16) float2 as[BM * (TC_BK + 4)];
    __shared__ __align__(16) float2 bs[BN * (TC_BK + 4)];
    long long row0 = (long long)blockIdx.y * BM;
    int col0 = blockIdx.x * BN;
    float acc[TcWarps<BM, BN>::MT][4][4] = {};
    float4 va[TcChunks<BM, TC_BK>::CPT], vb[TcChunks<BN, TC_BK>::CPT];
    tc_load<BM, TC_BK>(va, x, n_in, row0, m, 0, n_in);
    tc_load<BN, TC_BK>(vb, w, n_in, col0, n_out, 0, n_in);
    for (int k0 = 0; k0 < n_in; k0 += TC_BK) {
        __syncthreads();
        tc_store<BM, TC_BK>(as, va);
        tc_store<BN, TC_BK>(bs, vb);
        __syncthreads();
        if (k0 + TC_BK < n_in) {
            tc_load<BM, TC_BK>(va, x, n_in, row0, m, k0 + TC_BK, n_in);
            tc_load<BN, TC_BK>(vb, w, n_in, col0, n_out, k0 + TC_BK, n_in);
        }
        tc_tile_mma<BM, BN, true, true>(as, bs, acc);
    }
    tc_for_pairs<BM, BN>(acc, [&](int i, int j, float v0, float v1) {
        long long row = row0 + i;
        int o = col0 + j;
        if (row >= m || o >= n_out) return;
        if (b) v0 += b[o], v1 += b[o + 1];
        *reinterpret_cast<float2*>(y + row * n_out + o) = make_float2(act_apply(v0, act), act_apply(v1, act));
    });
}

#define DENSE_FWD_TC_ENTRY(name, BM, BN)                                                                      \
    extern "C" __global__ void __launch_bounds__(TC_THREADS, 2)                                               \
    name(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b, int m,        \
         int n_in, int n_out, int act, float* __restrict__ y) {                                               \
        dense_fwd_tc_tile<BM, BN>(x, w, b, m, n_in, n_out, act, y);                                           \
    }
DENSE_FWD_TC_ENTRY(dense_fwd_tc, 64, 128)
DENSE_FWD_TC_ENTRY(dense_fwd_tc_n64, 128, 64)

// d_y [M,O], y [M,O], w [O,I] -> d_x [M,I] (overwritten). Block tile BM rows × BN inputs; grid (ceil(I/BN),
// ceil(M/BM)). A = P tile s[BM][TC_BK + 4] (k = output, contiguous), B = w tile s[TC_BK][BN + 4].
template <int BM, int BN>
__device__ __forceinline__ void dense_bwd_x_tc_tile(const float* __restrict__ d_y, const float* __restrict__ y,
                                                    const float* __restrict__ w, int m, int n_in, int n_out,
                                                    int act, float* __restrict__ d_x) {
    __shared__ __align__(16) float2 as[BM * (TC_BK + 4)];
    __shared__ __align__(16) float2 bs[TC_BK * (BN + 4)];
    long long row0 = (long long)blockIdx.y * BM;
    int col0 = blockIdx.x * BN;
    float acc[TcWarps<BM, BN>::MT][4][4] = {};
    float4 vy[TcChunks<BM, TC_BK>::CPT], vd[TcChunks<BM, TC_BK>::CPT], vb[TcChunks<TC_BK, BN>::CPT];
    float unused[4] = {};
    tc_load<BM, TC_BK>(vy, y, n_out, row0, m, 0, n_out);
    tc_load<BM, TC_BK>(vd, d_y, n_out, row0, m, 0, n_out);
    tc_load<TC_BK, BN>(vb, w, n_in, 0, n_out, col0, n_in);
    for (int k0 = 0; k0 < n_out; k0 += TC_BK) {
        __syncthreads();
        tc_store_p<BM, TC_BK>(as, vy, vd, act, unused);
        tc_store<TC_BK, BN>(bs, vb);
        __syncthreads();
        if (k0 + TC_BK < n_out) {
            tc_load<BM, TC_BK>(vy, y, n_out, row0, m, k0 + TC_BK, n_out);
            tc_load<BM, TC_BK>(vd, d_y, n_out, row0, m, k0 + TC_BK, n_out);
            tc_load<TC_BK, BN>(vb, w, n_in, k0 + TC_BK, n_out, col0, n_in);
        }
        tc_tile_mma<BM, BN, true, false>(as, bs, acc);
    }
    tc_for_pairs<BM, BN>(acc, [&](int i, int j, float v0, float v1) {
        long long row = row0 + i;
        int c = col0 + j;
        if (row < m && c < n_in) *reinterpret_cast<float2*>(d_x + row * n_in + c) = make_float2(v0, v1);
    });
}

#define DENSE_BWD_X_TC_ENTRY(name, BM, BN)                                                                    \
    extern "C" __global__ void __launch_bounds__(TC_THREADS, 2)                                               \
    name(const float* __restrict__ d_y, const float* __restrict__ y, const float* __restrict__ w, int m,      \
         int n_in, int n_out, int act, float* __restrict__ d_x) {                                             \
        dense_bwd_x_tc_tile<BM, BN>(d_y, y, w, m, n_in, n_out, act, d_x);                                     \
    }
DENSE_BWD_X_TC_ENTRY(dense_bwd_x_tc, 64, 128)
DENSE_BWD_X_TC_ENTRY(dense_bwd_x_tc_i64, 128, 64)

// d_y [M,O], y [M,O], x [M,I] -> partials [splits, O·I + O], as dense_bwd_w. Block tile 64 outputs × BN
// inputs over one row chunk; grid (ceil(I/BN), ceil(O/64), splits). A = P tile s[TC_BK][64 + 4],
// B = x tile s[TC_BK][BN + 4] (k = row; both k-major). Bias partials: each thread sums the P of its chunk
// columns over its rows while staging; the blocks of column tile 0 then add those sums across the threads
// that share the columns, in thread order, through shared memory.
template <int BN>
__device__ __forceinline__ void dense_bwd_w_tc_tile(const float* __restrict__ d_y, const float* __restrict__ y,
                                                    const float* __restrict__ x, int m, int n_in, int n_out,
                                                    int act, int rows_per_split, float* __restrict__ partials) {
    constexpr int BM = 64, AS = TC_BK * (BM + 4), BS = TC_BK * (BN + 4);
    using PA = TcChunks<TC_BK, BM>;
    extern __shared__ __align__(16) float2 tc_w_smem[];  // 2 × (AS + BS) pairs: step s uses half s % 2
    int o0 = blockIdx.y * BM, i0 = blockIdx.x * BN;
    long long begin = (long long)blockIdx.z * rows_per_split;
    long long end = min((long long)m, begin + rows_per_split);
    float acc[TcWarps<BM, BN>::MT][4][4] = {};
    float bias[4] = {};
    float4 vy[PA::CPT], vd[PA::CPT], vb[TcChunks<TC_BK, BN>::CPT];
    tc_load<TC_BK, BM>(vy, y, n_out, begin, end, o0, n_out);
    tc_load<TC_BK, BM>(vd, d_y, n_out, begin, end, o0, n_out);
    tc_load<TC_BK, BN>(vb, x, n_in, begin, end, i0, n_in);
    // Double-buffered: step s stores into half s % 2, last read by step s − 2's mma, which every warp
    // finished before the barrier of step s − 1; one barrier per step.
    int parity = 0;
    for (long long k0 = begin; k0 < end; k0 += TC_BK, parity ^= 1) {
        float2* as = tc_w_smem + parity * (AS + BS);
        float2* bs = as + AS;
        tc_store_p<TC_BK, BM>(as, vy, vd, act, bias);
        tc_store<TC_BK, BN>(bs, vb);
        __syncthreads();
        if (k0 + TC_BK < end) {
            tc_load<TC_BK, BM>(vy, y, n_out, k0 + TC_BK, end, o0, n_out);
            tc_load<TC_BK, BM>(vd, d_y, n_out, k0 + TC_BK, end, o0, n_out);
            tc_load<TC_BK, BN>(vb, x, n_in, k0 + TC_BK, end, i0, n_in);
        }
        tc_tile_mma<BM, BN, false, false>(as, bs, acc);
    }
    long long stride = (long long)n_out * n_in + n_out;
    float* part = partials + blockIdx.z * stride;
    tc_for_pairs<BM, BN>(acc, [&](int i, int j, float v0, float v1) {
        int o = o0 + i, c = i0 + j;
        if (o < n_out && c < n_in) *reinterpret_cast<float2*>(part + (long long)o * n_in + c) = make_float2(v0, v1);
    });
    if (blockIdx.x == 0) {
        // red[h][c]: thread h·PER_ROW + c/4's sums; TC_THREADS/PER_ROW × BM floats (4 KiB) over the staging
        // buffers, once every warp is past its last mma.
        float* red = reinterpret_cast<float*>(tc_w_smem);
        static_assert(TC_THREADS * 4 <= (AS + BS) * 2, "bias reduction fits in the staging buffers");
        __syncthreads();
        int h = threadIdx.x / PA::PER_ROW, c = PA::col();
#pragma unroll
        for (int q = 0; q < 4; ++q) red[h * BM + c + q] = bias[q];
        __syncthreads();
        if (threadIdx.x < BM && o0 + (int)threadIdx.x < n_out) {
            float s = 0.0f;
            for (int r = 0; r < TC_THREADS / PA::PER_ROW; ++r) s += red[r * BM + threadIdx.x];
            part[(long long)n_out * n_in + o0 + threadIdx.x] = s;
        }
    }
}

#define DENSE_BWD_W_TC_ENTRY(name, BN)                                                                        \
    extern "C" __global__ void __launch_bounds__(TC_THREADS, 2)                                               \
    name(const float* __restrict__ d_y, const float* __restrict__ y, const float* __restrict__ x, int m,      \
         int n_in, int n_out, int act, int rows_per_split, float* __restrict__ partials) {                    \
        dense_bwd_w_tc_tile<BN>(d_y, y, x, m, n_in, n_out, act, rows_per_split, partials);                    \
    }
DENSE_BWD_W_TC_ENTRY(dense_bwd_w_tc, 128)
DENSE_BWD_W_TC_ENTRY(dense_bwd_w_tc_i64, 64)

// partials [splits, O·I + O] -> d_w [O,I], d_b [O] (null: skipped), overwritten (0 splits give zeros).
// A block sums DENSE_REDUCE_COLS = 32 consecutive elements: warp s (of DENSE_REDUCE_LANES = 8) sums splits
// s, s + 8, s + 16, ... in order, one element per lane (a warp reads 128 contiguous bytes per split), and
// warp 0 then adds the 8 lane sums in order s = 0..7 through shared memory: a fixed order, deterministic.
// Eight chains per element instead of one: each thread issues splits/8 independent loads (16 at 128 splits)
// instead of 128 in a row, and 128 × 128 + 128 elements make 516 blocks instead of 65, so the ~8 MB of
// partials (in L2) stream at the card's rate instead of one L2 round trip per split per thread.
#define DENSE_REDUCE_COLS 32
#define DENSE_REDUCE_LANES (DENSE_REDUCE_THREADS / DENSE_REDUCE_COLS)
extern "C" __global__ void __launch_bounds__(DENSE_REDUCE_THREADS)
dense_bwd_w_reduce(const float* __restrict__ partials, int splits, int n_in, int n_out,
                   float* __restrict__ d_w, float* __restrict__ d_b) {
    __shared__ float red[DENSE_REDUCE_LANES][DENSE_REDUCE_COLS];
    long long stride = (long long)n_out * n_in + n_out;
    int e = threadIdx.x % DENSE_REDUCE_COLS, lane_s = threadIdx.x / DENSE_REDUCE_COLS;
    long long j = (long long)blockIdx.x * DENSE_REDUCE_COLS + e;
    float s = 0.0f;
    if (j < stride) {
#pragma unroll 4
        for (int z = lane_s; z < splits; z += DENSE_REDUCE_LANES) s += partials[z * stride + j];
    }
    red[lane_s][e] = s;
    __syncthreads();
    if (lane_s != 0 || j >= stride) return;
    float t = red[0][e];
#pragma unroll
    for (int q = 1; q < DENSE_REDUCE_LANES; ++q) t += red[q][e];
    if (j < (long long)n_out * n_in) d_w[j] = t;
    else if (d_b) d_b[j - (long long)n_out * n_in] = t;
}

// ---------------------------------------------------------------------------------------------------------------
// GEMV kernels for a single output (O = 1, the opacity head 128 → 1): dense_gemv_fwd, dense_gemv_bwd_x,
// dense_gemv_bwd_w. A GEMM tile would leave 31 of 32 output columns as padding (dense_fwd_n32) and
// dense_bwd_w_n32 stages x through shared memory for one useful FMA in 32; these read x once, coalesced, and
// are bound by DRAM bandwidth. src/cuda/mlp.rs picks them where dense_uses_gemv(s) holds (O = 1, I a multiple
// of 4 and ≤ GEMV_MAX_IN, at least one row) and x, d_x and the scratch are 16-byte aligned.
// Layout: GEMV_THREADS = 256 threads, 8 warps; a warp owns a row at a time and its lanes take the row's float4
// chunks c = lane, lane + 32, ... (I = 128: one float4 per lane, the warp reads the row's 512 bytes at once).
//   dense_gemv_fwd     warp w of block k: rows (8k + w)·4 + 0..3, loads of the 4 rows issued before the sums;
//                      each lane sums its chunks' products (fmaf, chunk order), then an xor butterfly over
//                      the 32 lanes; y = act(sum + b). 32 rows per block.
//   dense_gemv_bwd_x   same rows; d_x(r, ·) = P(r)·w, P = act'(y) ⊙ d_y. Block 0's thread 0 also zeroes
//                      dense_gemv_bwd_w's arrival counter (the same scratch, the next launch on the stream).
//   dense_gemv_bwd_w   block z sums rows [z·R, min(M, (z+1)·R)), R = rows_per_block (a multiple of 32); warp w
//                      takes rows w, w + 8, ... in order, four per step; lane float4 accumulators of Σ P·x
//                      (d_w) and Σ P (d_b). The 8 warps' sums are added in warp order through shared memory
//                      and the block's partial written to partials [blocks, I] (d_b partials after them,
//                      [blocks]). Then each block increments the arrival counter (after __threadfence); the
//                      block that arrives last adds the partials: thread (s, c) sums chunk c over blocks
//                      s, s + S, ... (S = 256 / (I/4) chains), the S chain sums are added in order s, and warp
//                      0 sums the d_b partials (lane l: blocks l, l + 32, ...; then an xor butterfly). Every
//                      sum has a fixed order whichever block arrives last: deterministic. It writes d_w, d_b
//                      and resets the counter. No separate reduction launch.
// The sums differ from the twin's order (k, or rows, increasing) only by rounding.
// Bytes (compulsory): fwd 4·(M·I + I + 1 + M), bwd_x 4·(2·M + I + M·I), bwd_w 4·(2·M + M·I + 2·blocks·(I + 1)).
// Expected at 32 736 × 128 (16.8 MB of x or d_x) on an H200 (~4 TB/s): ~5 µs each; bwd_w adds the last
// block's reduction of 256 × 129 partials (32 loads per thread in 4 unrolled batches): ~1–2 µs.

#define GEMV_THREADS 256
#define GEMV_WARPS (GEMV_THREADS / 32)
#define GEMV_ROWS 4
#define GEMV_MAX_IN 1024
#define GEMV_MAX_CPL (GEMV_MAX_IN / 128)  // float4 chunks per lane at most

// Sum over the 32 lanes of a warp; every lane ends with the same value (a + b = b + a at each level).
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// x [M,I], w [1,I], b [1] or null -> y [M]. grid ceil(M / 32).
extern "C" __global__ void __launch_bounds__(GEMV_THREADS)
dense_gemv_fwd(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b, int m,
               int n_in, int act, float* __restrict__ y) {
    int lane = threadIdx.x % 32, c4 = n_in / 4;
    long long row0 = ((long long)blockIdx.x * GEMV_WARPS + threadIdx.x / 32) * GEMV_ROWS;
    const float4* x4 = reinterpret_cast<const float4*>(x);
    const float4* w4 = reinterpret_cast<const float4*>(w);
    float acc[GEMV_ROWS] = {};
    for (int c = lane; c < c4; c += 32) {
        float4 wv = __ldg(w4 + c), xv[GEMV_ROWS];
#pragma unroll
        for (int r = 0; r < GEMV_ROWS; ++r)
            xv[r] = row0 + r < m ? __ldg(x4 + (row0 + r) * c4 + c) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
        for (int r = 0; r < GEMV_ROWS; ++r) {
            acc[r] = fmaf(xv[r].x, wv.x, acc[r]);
            acc[r] = fmaf(xv[r].y, wv.y, acc[r]);
            acc[r] = fmaf(xv[r].z, wv.z, acc[r]);
            acc[r] = fmaf(xv[r].w, wv.w, acc[r]);
        }
    }
    float bias = b ? b[0] : 0.0f;
#pragma unroll
    for (int r = 0; r < GEMV_ROWS; ++r) {
        float s = warp_sum(acc[r]);
        if (lane == r && row0 + r < m) y[row0 + r] = act_apply(b ? s + bias : s, act);
    }
}

// d_y [M], y [M], w [1,I] -> d_x [M,I] (overwritten); zeroes *counter (dense_gemv_bwd_w's). grid ceil(M / 32).
extern "C" __global__ void __launch_bounds__(GEMV_THREADS)
dense_gemv_bwd_x(const float* __restrict__ d_y, const float* __restrict__ y, const float* __restrict__ w, int m,
                 int n_in, int act, float* __restrict__ d_x, unsigned* __restrict__ counter) {
    if (blockIdx.x == 0 && threadIdx.x == 0) *counter = 0u;
    int lane = threadIdx.x % 32, c4 = n_in / 4;
    long long row0 = ((long long)blockIdx.x * GEMV_WARPS + threadIdx.x / 32) * GEMV_ROWS;
    const float4* w4 = reinterpret_cast<const float4*>(w);
    float4* dx4 = reinterpret_cast<float4*>(d_x);
    float p[GEMV_ROWS];
#pragma unroll
    for (int r = 0; r < GEMV_ROWS; ++r) p[r] = row0 + r < m ? act_vjp(y[row0 + r], d_y[row0 + r], act) : 0.0f;
    for (int c = lane; c < c4; c += 32) {
        float4 wv = __ldg(w4 + c);
#pragma unroll
        for (int r = 0; r < GEMV_ROWS; ++r)
            if (row0 + r < m) dx4[(row0 + r) * c4 + c] = make_float4(p[r] * wv.x, p[r] * wv.y, p[r] * wv.z, p[r] * wv.w);
    }
}

__device__ __forceinline__ void f4_fma(float4& a, float p, float4 v) {
    a.x = fmaf(p, v.x, a.x), a.y = fmaf(p, v.y, a.y), a.z = fmaf(p, v.z, a.z), a.w = fmaf(p, v.w, a.w);
}
__device__ __forceinline__ void f4_add(float4& a, float4 v) { a.x += v.x, a.y += v.y, a.z += v.z, a.w += v.w; }

// d_y [M], y [M], x [M,I] -> d_w [1,I], d_b [1] (null: skipped), overwritten. partials: gridDim.x · (I + 1)
// floats; *counter is 0 on entry (dense_gemv_bwd_x zeroes it) and on exit. grid ceil(M / rows_per_block).
extern "C" __global__ void __launch_bounds__(GEMV_THREADS)
dense_gemv_bwd_w(const float* __restrict__ d_y, const float* __restrict__ y, const float* __restrict__ x, int m,
                 int n_in, int act, int rows_per_block, float* __restrict__ partials,
                 unsigned* __restrict__ counter, float* __restrict__ d_w, float* __restrict__ d_b) {
    // red: the warps' sums [GEMV_WARPS][I], later the last block's chain sums [S][I] (S·I ≤ 4·GEMV_THREADS).
    __shared__ __align__(16) float4 red[GEMV_WARPS * GEMV_MAX_IN / 4];
    __shared__ float red_b[GEMV_WARPS];
    __shared__ bool last;
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, c4 = n_in / 4;
    long long begin = (long long)blockIdx.x * rows_per_block;
    long long end = min((long long)m, begin + rows_per_block);
    const float4* x4 = reinterpret_cast<const float4*>(x);
    float4 acc[GEMV_MAX_CPL];
#pragma unroll
    for (int j = 0; j < GEMV_MAX_CPL; ++j) acc[j] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    float acc_b = 0.0f;
    for (long long r0 = begin + warp; r0 < end; r0 += GEMV_WARPS * GEMV_ROWS) {
        float p[GEMV_ROWS];
#pragma unroll
        for (int r = 0; r < GEMV_ROWS; ++r) {
            long long row = r0 + r * GEMV_WARPS;
            p[r] = row < end ? act_vjp(y[row], d_y[row], act) : 0.0f;
        }
#pragma unroll
        for (int j = 0; j < GEMV_MAX_CPL; ++j) {
            int c = lane + 32 * j;
            if (c >= c4) break;
            float4 xv[GEMV_ROWS];
#pragma unroll
            for (int r = 0; r < GEMV_ROWS; ++r) {
                long long row = r0 + r * GEMV_WARPS;
                xv[r] = row < end ? __ldg(x4 + row * c4 + c) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            }
#pragma unroll
            for (int r = 0; r < GEMV_ROWS; ++r) f4_fma(acc[j], p[r], xv[r]);
        }
#pragma unroll
        for (int r = 0; r < GEMV_ROWS; ++r) acc_b += p[r];
    }
#pragma unroll
    for (int j = 0; j < GEMV_MAX_CPL; ++j) {
        int c = lane + 32 * j;
        if (c < c4) red[warp * c4 + c] = acc[j];
    }
    if (lane == 0) red_b[warp] = acc_b;
    __syncthreads();
    float4* part4 = reinterpret_cast<float4*>(partials);
    float* part_b = partials + (long long)gridDim.x * n_in;
    for (int c = threadIdx.x; c < c4; c += GEMV_THREADS) {
        float4 s = red[c];
#pragma unroll
        for (int q = 1; q < GEMV_WARPS; ++q) f4_add(s, red[q * c4 + c]);
        part4[(long long)blockIdx.x * c4 + c] = s;
    }
    if (threadIdx.x == 0) {
        float s = red_b[0];
#pragma unroll
        for (int q = 1; q < GEMV_WARPS; ++q) s += red_b[q];
        part_b[blockIdx.x] = s;
    }
    // Publish the partial, then count this block in; the last block to arrive sees every partial.
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(counter, 1u) == gridDim.x - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    int blocks = gridDim.x, chains = GEMV_THREADS / c4;  // c4 ≤ GEMV_THREADS, so chains ≥ 1
    int c = threadIdx.x % c4, s = threadIdx.x / c4;
    __syncthreads();  // red is reused below
    if (s < chains) {
        float4 t = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 8
        for (int z = s; z < blocks; z += chains) f4_add(t, __ldcg(part4 + (long long)z * c4 + c));
        red[s * c4 + c] = t;
    }
    if (warp == 0) {
        float t = 0.0f;
        for (int z = lane; z < blocks; z += 32) t += __ldcg(part_b + z);
        t = warp_sum(t);
        if (lane == 0) {
            if (d_b) d_b[0] = t;
            *counter = 0u;
        }
    }
    __syncthreads();
    float4* dw4 = reinterpret_cast<float4*>(d_w);
    for (int cc = threadIdx.x; cc < c4; cc += GEMV_THREADS) {
        float4 t = red[cc];
        for (int q = 1; q < chains; ++q) f4_add(t, red[q * c4 + cc]);
        dw4[cc] = t;
    }
}
