// Elementwise and reduction helpers used by every stage: fill, axpy, scale, sum/mean.
//
// Mapping (axpy, scale): one thread per element, ELEMENTWISE_THREADS per block, grid = ceil(n/threads).
//   Bytes: scale 8n; axpy 12n (read x, y; write y). FLOP: scale n, axpy 2n.
// fill: up to FILL_SPANS buffers in one launch (a step zeroes six gradient buffers at once: six launches
//   took 33 µs for 25 MB at B = 8, N = 50 000), each grid-strided in turn; grid = ceil(Σn/(threads·8)).
//   Bytes: 4·Σn written.
// unit_from_u8: y = x / 255 (image bytes to [0, 1] floats), IEEE division as in the twin. Bytes 5n.
// Reduction (sum_partial + sum_final): a fixed grid of SUM_BLOCKS blocks (fewer for small n) strides over x,
//   each thread accumulating in float, then a warp-shuffle tree and one partial per block; sum_final reduces
//   the partials with one block and multiplies by `multiplier` (1 for a sum, 1/n for a mean). No atomics: the
//   result is deterministic for a given n. Bytes: 4n read. FLOP: n.
// CPU twins: src/cpu/elementwise.rs (same names).

#define ELEMENTWISE_THREADS 256
#define SUM_THREADS 256
#define SUM_BLOCKS 1024

#define FILL_SPANS 6

__device__ __forceinline__ void fill_span(float* __restrict__ x, long long n, float value) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) x[i] = value;
}

// x_s[0, n_s) = value for the FILL_SPANS spans (unused ones: n_s = 0).
extern "C" __global__ void fill(float* x0, long long n0, float* x1, long long n1, float* x2, long long n2, float* x3,
                                long long n3, float* x4, long long n4, float* x5, long long n5, float value) {
    fill_span(x0, n0, value);
    fill_span(x1, n1, value);
    fill_span(x2, n2, value);
    fill_span(x3, n3, value);
    fill_span(x4, n4, value);
    fill_span(x5, n5, value);
}

// y[n] += a * x[n]
extern "C" __global__ void axpy(float* __restrict__ y, const float* __restrict__ x, long long n, float a) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = y[i] + a * x[i];
}

// y[n] = x[n] / 255
extern "C" __global__ void unit_from_u8(float* __restrict__ y, const unsigned char* __restrict__ x, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = (float)x[i] / 255.0f;
}

// x[n] *= a
extern "C" __global__ void scale(float* __restrict__ x, long long n, float a) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = a * x[i];
}

__device__ __forceinline__ float block_sum(float s) {
    __shared__ float warp_sums[SUM_THREADS / 32];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) warp_sums[warp] = s;
    __syncthreads();
    s = lane < SUM_THREADS / 32 ? warp_sums[lane] : 0.0f;
    if (warp == 0) {
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    }
    return s;  // valid in thread 0
}

// x [n] -> partials [gridDim.x]
extern "C" __global__ void __launch_bounds__(SUM_THREADS)
sum_partial(const float* __restrict__ x, long long n, float* __restrict__ partials) {
    float s = 0.0f;
    for (long long i = (long long)blockIdx.x * SUM_THREADS + threadIdx.x; i < n; i += (long long)gridDim.x * SUM_THREADS)
        s += x[i];
    s = block_sum(s);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

// partials [count] -> out [1] = multiplier * sum(partials); launched with one block.
extern "C" __global__ void __launch_bounds__(SUM_THREADS)
sum_final(const float* __restrict__ partials, int count, float* __restrict__ out, float multiplier) {
    float s = 0.0f;
    for (int i = threadIdx.x; i < count; i += SUM_THREADS) s += partials[i];
    s = block_sum(s);
    if (threadIdx.x == 0) out[0] = s * multiplier;
}
