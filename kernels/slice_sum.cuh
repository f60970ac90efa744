// The sum of per-block partial slices, shared by the reductions after kernels that add into a slice per
// block (kernels/mlp.cu: dense_bwd_w_reduce; kernels/attention.cu: deform_reduce). A block of
// SLICE_SUM_THREADS = 256 sums 32 consecutive elements, eight chains per element: warp s sums slices s,
// s + 8, s + 16, … in order, a lane per element (a warp reads 128 contiguous bytes per slice), then the
// first warp adds the eight chains in order s = 0 … 7 through shared memory: a fixed order, deterministic.
// Each thread has slices/8 loads in flight, where one thread per element summing every slice in a row
// waited an L2 round trip per slice.
#pragma once

#define SLICE_SUM_COLS 32
#define SLICE_SUM_CHAINS 8
#define SLICE_SUM_THREADS (SLICE_SUM_COLS * SLICE_SUM_CHAINS)

// The element of this thread's lane: the block's threadIdx.x % SLICE_SUM_COLS-th.
__device__ __forceinline__ int slice_sum_col() { return threadIdx.x % SLICE_SUM_COLS; }

// Every thread of the block calls it (it holds a barrier). at: the element's offset in slice 0, read only
// where `valid`. Returns the element's sum over the `slices` slices (stride floats apart) in the first
// warp; the other warps get their chain's partial sum, to be dropped.
__device__ __forceinline__ float sum_slices(const float* __restrict__ partials, long long stride, int slices,
                                            long long at, bool valid) {
    __shared__ float chains[SLICE_SUM_CHAINS][SLICE_SUM_COLS];
    const int chain = threadIdx.x / SLICE_SUM_COLS;
    float s = 0.0f;
    if (valid) {
#pragma unroll 4
        for (int z = chain; z < slices; z += SLICE_SUM_CHAINS) s += partials[z * stride + at];
    }
    chains[chain][slice_sum_col()] = s;
    __syncthreads();
    if (chain == 0) {
#pragma unroll
        for (int q = 1; q < SLICE_SUM_CHAINS; ++q) s += chains[q][slice_sum_col()];
    }
    return s;
}
