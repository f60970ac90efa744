// Prefix sums and the LSD radix sort of the rasterizer's tile pairs. CPU twins: src/cpu/sort.rs
// (exclusive_scan for scan_reduce + scan_spine + scan_apply; radix_sort_pass for radix_hist + radix_scatter).
// Launchers: src/cuda/sort.rs.
//
// Exclusive scan of n ints, three launches, no host synchronisation:
//   scan_reduce: one block per SCAN_BLOCK (1024) items → block_sums [blocks]
//   scan_spine:  one block scans block_sums in place (chunks of 1024 with a carry), writes the total
//   scan_apply:  one block per 1024 items: local scan + its block offset → out [n]
// Bytes: 4n read (reduce) + 8n (apply). Integer adds, no atomics: deterministic.
//
// Radix sort of (u64 key, u32 value) pairs, 8 bits per pass over only the bits the caller asks for; the pair
// count lives on the device (num_pairs, clamped to the buffers' capacity), so grids are sized by capacity and
// blocks past the count do nothing. One pass:
//   radix_hist:    one block per SORT_TILE (2048) pairs, shared-memory digit histogram → hist [RADIX, blocks]
//                  digit-major, so an exclusive scan of hist gives every (digit, block) its output offset
//   exclusive_scan of hist
//   radix_scatter: same blocks; stable rank of each pair among equal digits: 8 rounds of 256 pairs, warp
//                  ranks from __match_any_sync, warp counts in shared memory, a running base per digit
// Bytes per pass: 8P (hist) + 24P (scatter: read 12, write 12) + scan of 256·blocks. Stable, deterministic.

#define SCAN_THREADS 256
#define SCAN_ITEMS 4
#define SCAN_BLOCK (SCAN_THREADS * SCAN_ITEMS)
#define SORT_THREADS 256
#define SORT_ITEMS 8
#define SORT_TILE (SORT_THREADS * SORT_ITEMS)
#define RADIX_BITS 8
#define RADIX (1 << RADIX_BITS)

// Exclusive scan of one int per thread over a block of SCAN_THREADS threads; *total gets the block's sum.
__device__ __forceinline__ int block_exclusive_scan(int v, int& total) {
    __shared__ int warp_sums[SCAN_THREADS / 32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int x = v;
    for (int o = 1; o < 32; o <<= 1) {
        int y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x += y;
    }
    if (lane == 31) warp_sums[warp] = x;
    __syncthreads();
    if (warp == 0) {
        int w = lane < SCAN_THREADS / 32 ? warp_sums[lane] : 0;
        for (int o = 1; o < 32; o <<= 1) {
            int y = __shfl_up_sync(0xffffffffu, w, o);
            if (lane >= o) w += y;
        }
        if (lane < SCAN_THREADS / 32) warp_sums[lane] = w;
    }
    __syncthreads();
    int incl = x + (warp > 0 ? warp_sums[warp - 1] : 0);
    total = warp_sums[SCAN_THREADS / 32 - 1];
    __syncthreads();  // warp_sums is reused by the next call
    return incl - v;
}

// in [n] -> block_sums [ceil(n / SCAN_BLOCK)]
extern "C" __global__ void __launch_bounds__(SCAN_THREADS)
scan_reduce(const int* __restrict__ in, int n, int* __restrict__ block_sums) {
    int base = blockIdx.x * SCAN_BLOCK + threadIdx.x * SCAN_ITEMS;
    int s = 0;
    for (int k = 0; k < SCAN_ITEMS; ++k)
        if (base + k < n) s += in[base + k];
    int total;
    block_exclusive_scan(s, total);
    if (threadIdx.x == 0) block_sums[blockIdx.x] = total;
}

// block_sums [count] scanned in place (exclusive); total [1] = Σ. One block.
extern "C" __global__ void __launch_bounds__(SCAN_THREADS)
scan_spine(int* __restrict__ block_sums, int count, int* __restrict__ total) {
    int carry = 0;
    for (int base = 0; base < count; base += SCAN_BLOCK) {
        int idx = base + threadIdx.x * SCAN_ITEMS;
        int v[SCAN_ITEMS], s = 0;
        for (int k = 0; k < SCAN_ITEMS; ++k) {
            v[k] = idx + k < count ? block_sums[idx + k] : 0;
            s += v[k];
        }
        int chunk;
        int pre = carry + block_exclusive_scan(s, chunk);
        for (int k = 0; k < SCAN_ITEMS; ++k) {
            if (idx + k < count) block_sums[idx + k] = pre;
            pre += v[k];
        }
        carry += chunk;
    }
    if (threadIdx.x == 0) *total = carry;
}

// in [n], block_sums (scanned) -> out [n] exclusive prefix sums of in
extern "C" __global__ void __launch_bounds__(SCAN_THREADS)
scan_apply(const int* __restrict__ in, int n, const int* __restrict__ block_sums, int* __restrict__ out) {
    int base = blockIdx.x * SCAN_BLOCK + threadIdx.x * SCAN_ITEMS;
    int v[SCAN_ITEMS], s = 0;
    for (int k = 0; k < SCAN_ITEMS; ++k) {
        v[k] = base + k < n ? in[base + k] : 0;
        s += v[k];
    }
    int total;
    int pre = block_sums[blockIdx.x] + block_exclusive_scan(s, total);
    for (int k = 0; k < SCAN_ITEMS; ++k) {
        if (base + k < n) out[base + k] = pre;
        pre += v[k];
    }
}

// keys [capacity] (first min(*num_pairs, capacity) valid) -> hist [RADIX, gridDim.x] counts of digit
// (key >> shift) & 255 per block. Shared: RADIX ints; shared atomics on integers (order-independent).
extern "C" __global__ void __launch_bounds__(SORT_THREADS)
radix_hist(const unsigned long long* __restrict__ keys, const int* __restrict__ num_pairs, int capacity, int shift,
           int* __restrict__ hist) {
    __shared__ int s_hist[RADIX];
    s_hist[threadIdx.x] = 0;
    __syncthreads();
    int n = min(*num_pairs, capacity);
    int base = blockIdx.x * SORT_TILE;
    for (int k = 0; k < SORT_ITEMS; ++k) {
        int i = base + k * SORT_THREADS + threadIdx.x;
        if (i < n) atomicAdd(&s_hist[(int)((keys[i] >> shift) & (RADIX - 1))], 1);
    }
    __syncthreads();
    hist[threadIdx.x * gridDim.x + blockIdx.x] = s_hist[threadIdx.x];
}

// keys_in, values_in [capacity]; offsets [RADIX, gridDim.x] (exclusive scan of radix_hist's output)
// -> keys_out, values_out [capacity], stably ordered by digit (key >> shift) & 255.
// Shared: RADIX base offsets + 8 warps × RADIX counts = 9 KiB.
extern "C" __global__ void __launch_bounds__(SORT_THREADS)
radix_scatter(const unsigned long long* __restrict__ keys_in, const unsigned int* __restrict__ values_in,
              const int* __restrict__ num_pairs, int capacity, int shift, const int* __restrict__ offsets,
              unsigned long long* __restrict__ keys_out, unsigned int* __restrict__ values_out) {
    __shared__ int s_base[RADIX];
    __shared__ int s_cnt[SORT_THREADS / 32][RADIX];
    int n = min(*num_pairs, capacity);
    int base = blockIdx.x * SORT_TILE;
    if (base >= n) return;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    s_base[threadIdx.x] = offsets[threadIdx.x * gridDim.x + blockIdx.x];
    for (int w = 0; w < SORT_THREADS / 32; ++w) s_cnt[w][threadIdx.x] = 0;
    __syncthreads();
    for (int k = 0; k < SORT_ITEMS; ++k) {
        int i = base + k * SORT_THREADS + threadIdx.x;
        bool valid = i < n;
        unsigned long long key = valid ? keys_in[i] : 0ull;
        int digit = valid ? (int)((key >> shift) & (RADIX - 1)) : RADIX;  // RADIX: a group of its own
        unsigned peers = __match_any_sync(0xffffffffu, digit);
        int rank = __popc(peers & ((1u << lane) - 1u));
        if (valid && rank == 0) s_cnt[warp][digit] = __popc(peers);
        __syncthreads();
        if (valid) {
            int pos = s_base[digit] + rank;
            for (int w = 0; w < warp; ++w) pos += s_cnt[w][digit];
            keys_out[pos] = key;
            values_out[pos] = values_in[i];
        }
        __syncthreads();
        int add = 0;
        for (int w = 0; w < SORT_THREADS / 32; ++w) {
            add += s_cnt[w][threadIdx.x];
            s_cnt[w][threadIdx.x] = 0;
        }
        s_base[threadIdx.x] += add;
        __syncthreads();
    }
}
