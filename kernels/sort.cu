// Prefix sums and the LSD radix sort of the rasterizer's tile pairs. CPU twins: src/cpu/sort.rs
// (exclusive_scan for scan_lookback; radix_histograms for radix_hist_all; radix_sort_pass for radix_onesweep).
// Launchers: src/cuda/sort.rs.
//
// Both use decoupled look-back (Merrill & Garland 2016; the sort is the "onesweep" LSD sort of Adinets &
// Merrill 2022): a block takes its tile id from an atomic counter, publishes its tile's aggregate, then walks
// back over lower tile ids, summing aggregates until it meets an inclusive prefix, and publishes its own.
// Ids handed out in order guarantee forward progress: every lower id belongs to a block that is running or
// done, and a block publishes its aggregate before it waits on anyone. A status word packs the value and a
// flag (0 = nothing yet), so a publication is one store and a reader never sees a value without its flag;
// nothing else crosses blocks, so volatile loads and stores (no fences) suffice. Status arrays and counters
// must be zero when a kernel starts (a memset by the launcher, or radix_hist_all for the sort's status).
// Integer adds only: deterministic.
//
// Exclusive scan of n ints, one launch (scan_lookback): one block per SCAN_BLOCK (1024) items.
// Bytes: 4n read + 4n written + 8 per block of status.
//
// Radix sort of (u64 key, u32 value) pairs, 8 bits per pass over only the bits the caller asks for; the pair
// count lives on the device (num_pairs, clamped to the buffers' capacity), so grids are sized by capacity and
// blocks past the count do nothing. One sort, passes = ceil(bits / 8):
//   radix_hist_all: reads the keys once, digit histograms of every pass → hist [MAX_PASSES, RADIX]
//   radix_onesweep (once per pass): global digit offsets from hist, tile counts published with look-back,
//                   stable ranks from __match_any_sync, the tile staged in shared memory in digit order and
//                   written out in runs.
// Bytes per sort: 8 KiB memset + 8P (hist) + passes · (24P scatter + 2 KiB status per tile). Stable,
// deterministic.
// measured: H200, commit 09b5b8e (profiler): canonical step (~130 k pairs, 6 passes) radix_hist_all 19 µs +
// radix_onesweep 6 × 12.5 µs, scan_lookback 5.7 µs: ~100 µs per step, from ~190 µs with radix_hist + the
// three-kernel scan + radix_scatter per pass (30 launches); B = 8 face-like (1.56 M pairs) 33 + 6 × 38 µs.

#define SCAN_THREADS 256
#define SCAN_ITEMS 4
#define SCAN_BLOCK (SCAN_THREADS * SCAN_ITEMS)
#define SORT_THREADS 256
#define SORT_ITEMS 8
#define SORT_TILE (SORT_THREADS * SORT_ITEMS)
#define HIST_ITEMS 16
#define HIST_TILE (SORT_THREADS * HIST_ITEMS)
#define RADIX_BITS 8
#define RADIX (1 << RADIX_BITS)
#define MAX_PASSES 8

// Sort status word: bits 0..29 the count, bit 30 "tile aggregate", bit 31 "inclusive prefix of tiles 0..t".
#define SORT_AGGREGATE (1u << 30)
#define SORT_PREFIX (1u << 31)
#define SORT_VALUE (SORT_AGGREGATE - 1u)
// Scan status word: low 32 bits the int value, bit 32 "block aggregate", bit 33 "inclusive prefix".
#define SCAN_AGGREGATE (1ull << 32)
#define SCAN_PREFIX (2ull << 32)

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

// Exclusive prefix of the block with dynamic id `tile` (> 0): sums the values of tiles tile-1, tile-2, ...
// up to and including the first one with an inclusive prefix. Called by all of warp 0; 32 predecessors per
// step, each lane spinning on its own status word. Returns the prefix in every lane.
__device__ __forceinline__ int scan_look_back(const volatile unsigned long long* status, int tile) {
    int lane = threadIdx.x & 31;
    int prefix = 0;
    for (int end = tile; end > 0; end -= 32) {
        int j = end - 1 - lane;  // lane 0 is the nearest predecessor
        unsigned long long s = SCAN_PREFIX;  // before tile 0: an inclusive prefix of 0
        if (j >= 0) {
            do {
                s = status[j];
            } while (s == 0);
        }
        unsigned stop = __ballot_sync(0xffffffffu, (s & SCAN_PREFIX) != 0);
        // Sum the lanes up to the nearest inclusive prefix (all 32 when there is none in this window).
        int last = stop ? __ffs(stop) - 1 : 31;
        int v = lane <= last ? (int)(unsigned)s : 0;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        prefix += v;
        if (stop) break;
    }
    return prefix;
}

// in [n] -> out [n] exclusive prefix sums, total [1] = Σ in. One block per SCAN_BLOCK items (gridDim.x =
// max(1, ceil(n / SCAN_BLOCK))); block b takes dynamic tile id t = atomicAdd(counter) and owns items
// [t·1024, t·1024 + 1024), 4 consecutive per thread. status [gridDim.x] and counter [1] must be zero.
// Shared: 8 warp sums + 2 ints. The block with the last id writes the total.
extern "C" __global__ void __launch_bounds__(SCAN_THREADS)
scan_lookback(const int* __restrict__ in, int n, unsigned long long* status, int* counter, int* __restrict__ out,
              int* __restrict__ total) {
    __shared__ int s_tile, s_prefix;
    if (threadIdx.x == 0) s_tile = atomicAdd(counter, 1);
    __syncthreads();
    int tile = s_tile;
    int base = tile * SCAN_BLOCK + threadIdx.x * SCAN_ITEMS;
    int v[SCAN_ITEMS], s = 0;
    for (int k = 0; k < SCAN_ITEMS; ++k) {
        v[k] = base + k < n ? in[base + k] : 0;
        s += v[k];
    }
    int aggregate;
    int pre = block_exclusive_scan(s, aggregate);
    volatile unsigned long long* st = status;
    if (threadIdx.x < 32) {
        int prefix = 0;
        if (tile > 0) {
            if (threadIdx.x == 0) st[tile] = SCAN_AGGREGATE | (unsigned)aggregate;
            prefix = scan_look_back(st, tile);
        }
        if (threadIdx.x == 0) {
            st[tile] = SCAN_PREFIX | (unsigned)(prefix + aggregate);
            if (tile == gridDim.x - 1) *total = prefix + aggregate;
            s_prefix = prefix;
        }
    }
    __syncthreads();
    pre += s_prefix;
    for (int k = 0; k < SCAN_ITEMS; ++k) {
        if (base + k < n) out[base + k] = pre;
        pre += v[k];
    }
}

// Adds one to s_hist[digit] for every lane of the warp (digit == RADIX: no count), one shared atomic per
// distinct digit: keys of neighbouring pairs often share a digit, and same-address atomics serialise.
__device__ __forceinline__ void warp_count(int* s_hist, int digit) {
    unsigned peers = __match_any_sync(0xffffffffu, digit);
    int lane = threadIdx.x & 31;
    if (digit < RADIX && (peers & ((1u << lane) - 1u)) == 0) atomicAdd(&s_hist[digit], __popc(peers));
}

// keys [capacity] (first n = min(*num_pairs, capacity) valid) -> hist [MAX_PASSES, RADIX] += counts of digit
// (key >> 8p) & 255 for passes p < passes. hist must be zero before. One block per HIST_TILE (4096) keys,
// 16 per thread (coalesced); shared: passes × RADIX ints (≤ 8 KiB); then one global integer atomicAdd per
// nonzero (pass, digit) per block (order-independent: deterministic).
// Also zeroes radix_onesweep's status [passes, tiles, RADIX] rows of the two sort tiles it covers, for every
// pass: only tiles that hold pairs (t·2048 < n) are ever looked at, and those all lie in blocks that run.
// Bytes: 8P read, 4 KiB · passes written per block.
extern "C" __global__ void __launch_bounds__(SORT_THREADS)
radix_hist_all(const unsigned long long* __restrict__ keys, const int* __restrict__ num_pairs, int capacity,
               int passes, int* __restrict__ hist, unsigned int* __restrict__ status, int tiles) {
    __shared__ int s_hist[MAX_PASSES][RADIX];
    int n = min(*num_pairs, capacity);
    int base = blockIdx.x * HIST_TILE;
    if (base >= n) return;
    for (int p = 0; p < passes; ++p) s_hist[p][threadIdx.x] = 0;
    for (int t = base / SORT_TILE; t * SORT_TILE < min(n, base + HIST_TILE); ++t)
        for (int p = 0; p < passes; ++p) status[(p * tiles + t) * RADIX + threadIdx.x] = 0u;
    __syncthreads();
    for (int k = 0; k < HIST_ITEMS; ++k) {
        int i = base + k * SORT_THREADS + threadIdx.x;
        bool valid = i < n;
        unsigned long long key = valid ? keys[i] : 0ull;
        for (int p = 0; p < passes; ++p)
            warp_count(s_hist[p], valid ? (int)((key >> (p * RADIX_BITS)) & (RADIX - 1)) : RADIX);
    }
    __syncthreads();
    for (int p = 0; p < passes; ++p) {
        int c = s_hist[p][threadIdx.x];
        if (c) atomicAdd(&hist[p * RADIX + threadIdx.x], c);
    }
}

// One pass: keys_in, values_in [capacity] (first n = min(*num_pairs, capacity) valid) -> keys_out, values_out
// [capacity], stably ordered by digit (key >> 8·pass) & 255; pairs past n are neither read nor written.
//   hist [MAX_PASSES, RADIX] from radix_hist_all; status [gridDim.x, RADIX] of this pass (rows of tiles that
//   hold pairs zeroed by radix_hist_all), counter [1] of this pass, zero.
// One block per SORT_TILE (2048) pairs (gridDim.x = ceil(capacity / 2048)); the block with dynamic tile id t
// owns pairs [2048t, 2048t + 2048); warp w the 256 pairs from 2048t + 256w, 8 per lane, round k holding
// pairs 2048t + 256w + 32k + lane (coalesced), so tile order is (warp, round, lane) order.
//   1. stable rank of each pair within its warp: per round __match_any_sync finds the lanes with its digit,
//      the warp's own digit counts (shared, no barrier) give the pairs of earlier rounds
//   2. thread d for digit d: the tile's count (sum over warps) → status[t][d] = AGGREGATE | count (PREFIX
//      for t = 0), and the warps' counts turned into exclusive prefixes over warps
//   3. the tile's pairs staged in shared memory in digit order (local start of the digit + earlier warps'
//      count + rank within the warp)
//   4. digit offset = exclusive scan of hist[pass] (each block redoes this 256-entry scan)
//   5. look-back, thread d for digit d: prefix of tiles < t → status[t][d] = PREFIX | (prefix + count)
//   6. staged pair j goes to offset[d] + prefix[d] + j − local start[d]: consecutive threads write runs of
//      consecutive addresses (coalesced within each digit's run)
// Shared: local starts, output bases (2 × RADIX ints) + 8 warps × RADIX counts (8 KiB) + staged pairs
// (2048 × 12 B = 24 KiB) = 34 KiB.
// Bytes: 12 read + 12 written per pair, 1 KiB hist read + 1 KiB status written (+ look-back reads) per tile.
// Spin-waits only on lower tile ids, which are valid whenever t is (t·2048 < n): tiles past n return at once.
// measured: H200, B = 8 face-like (1.56 M pairs), one pass: 38 µs with block-wide ranking (three barriers per
// round of 256 pairs), 30 µs with the warp ranks (ncu before: latency-bound, 0.7 eligible warps per scheduler).
extern "C" __global__ void __launch_bounds__(SORT_THREADS)
radix_onesweep(const unsigned long long* __restrict__ keys_in, const unsigned int* __restrict__ values_in,
               const int* __restrict__ num_pairs, int capacity, int pass, const int* __restrict__ hist,
               unsigned int* status, int* counter, unsigned long long* __restrict__ keys_out,
               unsigned int* __restrict__ values_out) {
    __shared__ int s_tile;
    __shared__ int s_run[RADIX];   // the digit's local start in the staged tile
    __shared__ int s_base[RADIX];  // output index of staged pair j of digit d: s_base[d] + j
    __shared__ int s_warp[SORT_THREADS / 32][RADIX];  // per-warp digit counts, then prefixes over warps
    __shared__ unsigned long long s_key[SORT_TILE];
    __shared__ unsigned int s_value[SORT_TILE];
    if (threadIdx.x == 0) s_tile = atomicAdd(counter, 1);
    for (int w = 0; w < SORT_THREADS / 32; ++w) s_warp[w][threadIdx.x] = 0;
    __syncthreads();
    int n = min(*num_pairs, capacity);
    int tile = s_tile;
    int base = tile * SORT_TILE;
    if (base >= n) return;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, shift = pass * RADIX_BITS;
    int first = base + warp * 32 * SORT_ITEMS + lane;

    unsigned long long key[SORT_ITEMS];
    unsigned int value[SORT_ITEMS];
    int digit[SORT_ITEMS], rank[SORT_ITEMS];
    for (int k = 0; k < SORT_ITEMS; ++k) {
        int i = first + 32 * k;
        bool valid = i < n;
        key[k] = valid ? keys_in[i] : 0ull;
        value[k] = valid ? values_in[i] : 0u;
        digit[k] = valid ? (int)((key[k] >> shift) & (RADIX - 1)) : RADIX;  // RADIX: a group of its own
    }

    // 1. stable ranks within the warp
    int* counts = s_warp[warp];
    for (int k = 0; k < SORT_ITEMS; ++k) {
        unsigned peers = __match_any_sync(0xffffffffu, digit[k]);
        int below = __popc(peers & ((1u << lane) - 1u));
        bool valid = digit[k] < RADIX;
        rank[k] = below + (valid ? counts[digit[k]] : 0);
        __syncwarp();
        if (valid && below == 0) counts[digit[k]] += __popc(peers);
        __syncwarp();
    }
    __syncthreads();

    // 2. the tile's counts, published as early as possible (later tiles may be waiting on them)
    int count = 0;
    for (int w = 0; w < SORT_THREADS / 32; ++w) {
        int c = s_warp[w][threadIdx.x];
        s_warp[w][threadIdx.x] = count;
        count += c;
    }
    volatile unsigned int* st = status;
    st[tile * RADIX + threadIdx.x] = (tile == 0 ? SORT_PREFIX : SORT_AGGREGATE) | (unsigned)count;

    // 3. stage the tile in digit order
    int tile_pairs;
    int local_start = block_exclusive_scan(count, tile_pairs);
    s_run[threadIdx.x] = local_start;
    __syncthreads();
    for (int k = 0; k < SORT_ITEMS; ++k) {
        if (digit[k] < RADIX) {
            int j = s_run[digit[k]] + counts[digit[k]] + rank[k];
            s_key[j] = key[k];
            s_value[j] = value[k];
        }
    }

    // 4. where each digit starts in the output
    int all;
    int offset = block_exclusive_scan(hist[pass * RADIX + threadIdx.x], all);

    // 5. look-back for digit threadIdx.x
    if (tile > 0) {
        int prefix = 0;
        for (int j = tile - 1; j >= 0; --j) {
            unsigned s;
            do {
                s = st[j * RADIX + threadIdx.x];
            } while (s == 0u);
            prefix += (int)(s & SORT_VALUE);
            if (s & SORT_PREFIX) break;
        }
        st[tile * RADIX + threadIdx.x] = SORT_PREFIX | (unsigned)(prefix + count);
        offset += prefix;
    }
    s_base[threadIdx.x] = offset - local_start;
    __syncthreads();

    // 6. write out in staged order
    for (int k = 0; k < SORT_ITEMS; ++k) {
        int j = k * SORT_THREADS + threadIdx.x;
        if (j < tile_pairs) {
            unsigned long long kj = s_key[j];
            int pos = s_base[(int)((kj >> shift) & (RADIX - 1))] + j;
            keys_out[pos] = kj;
            values_out[pos] = s_value[j];
        }
    }
}
