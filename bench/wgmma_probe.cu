// wgmma probe (Hopper, sm_90a; standalone, not part of the engine): the layouts and the speed that the
// sm_90a variant of kernels/attention.cu relies on, checked against host references.
//   1. The F_d heads' first layer (5 heads, 64 -> 128, fp16 operands, fp32 accumulation) over 400 000 rows,
//      as the portable kernels do it (mma.sync, one 8-byte shared load per lane per fragment) and as the
//      sm_90a ones do (wgmma m64n128k16, B from shared memory in K-major core matrices), with both
//      readings of the descriptor's two strides; the faster is timed against mma.sync.
//   2. A weight-gradient product dW = dᵀ·x over 128 rows with both operands staged MN-major in core
//      matrices (bf16, wgmma m64n72k16, both transposed), for both readings of the strides: what a
//      wgmma block_dw would need.
// Build and run on the GPU machine: bench/gpu.sh wgmma-probe (nvcc -gencode=arch=compute_90a,code=sm_90a).
#include <cuda_fp16.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <vector>
#include <string.h>
#include <algorithm>

#define ROWS 400000
#define HEADS 5
#define WARPS 12

// d += A·B, A 64×16 fp16 from registers (this warp's 16 rows), B 16×128 fp16 from shared memory (desc).
__device__ __forceinline__ void wgmma_n128(float (&d)[64], const uint32_t (&a)[4], uint64_t desc) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
        "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
        "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"
        "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63},"
        " {%64,%65,%66,%67"
        "}, %68, p, 1, 1, 0;\n"
        "}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc));
}

// d += Aᵀ-style product: A (64 × 16, bf16) and B (16 × 72, bf16) both from shared memory, both MN-major.
__device__ __forceinline__ void wgmma_n72_ss(float (&d)[36], uint64_t da, uint64_t db) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n72k16.f32.bf16.bf16 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,"
        "%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35}, %36, %37, p, 1, 1, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35])
        : "l"(da), "l"(db));
}

__device__ __forceinline__ uint32_t pack_f16(float lo, float hi) {
    uint32_t r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// This warp's 16 rows of g as 4 k-steps of fp16 A fragments.
__device__ __forceinline__ void load_a(const float* g, int row0, uint32_t (&a)[4][4]) {
    const int lane = threadIdx.x & 31, gr = lane >> 2, t = lane & 3;
    const float* r0 = g + (long long)(row0 + gr) * 64;
    const float* r1 = r0 + 8 * 64;
#pragma unroll
    for (int s = 0; s < 4; ++s) {
        float2 x0 = *reinterpret_cast<const float2*>(r0 + 16 * s + 2 * t);
        float2 x1 = *reinterpret_cast<const float2*>(r1 + 16 * s + 2 * t);
        float2 x2 = *reinterpret_cast<const float2*>(r0 + 16 * s + 2 * t + 8);
        float2 x3 = *reinterpret_cast<const float2*>(r1 + 16 * s + 2 * t + 8);
        a[s][0] = pack_f16(x0.x, x0.y);
        a[s][1] = pack_f16(x1.x, x1.y);
        a[s][2] = pack_f16(x2.x, x2.y);
        a[s][3] = pack_f16(x3.x, x3.y);
    }
}

// verify: hid to out [ROWS][HEADS][128]; else Σ ReLU(hid) per row and head to out [ROWS][HEADS].
__device__ __forceinline__ void epilogue(const float (&acc)[64], int row0, int h, bool verify, float* out) {
    const int lane = threadIdx.x & 31, gr = lane >> 2, t = lane & 3;
    if (verify) {
#pragma unroll
        for (int j = 0; j < 16; ++j)
#pragma unroll
            for (int r = 0; r < 2; ++r)
                *reinterpret_cast<float2*>(out + ((long long)(row0 + gr + 8 * r) * HEADS + h) * 128 + 8 * j + 2 * t) =
                    make_float2(acc[4 * j + 2 * r], acc[4 * j + 2 * r + 1]);
        return;
    }
    float s0 = 0.0f, s1 = 0.0f;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
        s0 += fmaxf(acc[4 * j], 0.0f) + fmaxf(acc[4 * j + 1], 0.0f);
        s1 += fmaxf(acc[4 * j + 2], 0.0f) + fmaxf(acc[4 * j + 3], 0.0f);
    }
    s0 += __shfl_xor_sync(0xffffffffu, s0, 1);
    s0 += __shfl_xor_sync(0xffffffffu, s0, 2);
    s1 += __shfl_xor_sync(0xffffffffu, s1, 1);
    s1 += __shfl_xor_sync(0xffffffffu, s1, 2);
    if (t == 0) {
        out[(long long)(row0 + gr) * HEADS + h] = s0;
        out[(long long)(row0 + gr + 8) * HEADS + h] = s1;
    }
}

__device__ __forceinline__ void init_bias(float (&acc)[64], const float* bias) {
    const int t = threadIdx.x & 3;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
        const float2 b = *reinterpret_cast<const float2*>(bias + 8 * j + 2 * t);
        acc[4 * j] = acc[4 * j + 2] = b.x;
        acc[4 * j + 1] = acc[4 * j + 3] = b.y;
    }
}

// frag: [HEADS][16 column tiles][4 k-steps][32 lanes] uint2 (mma.sync B fragments).
extern "C" __global__ void __launch_bounds__(WARPS * 32, 1)
heads_mma(const float* g, const uint2* frag, const float* bias, int rows, bool verify, float* out) {
    extern __shared__ __align__(16) uint2 wsm[];
    for (int e = threadIdx.x; e < HEADS * 64 * 32; e += blockDim.x) wsm[e] = frag[e];
    __syncthreads();
    const int lane = threadIdx.x & 31;
    for (int tile = blockIdx.x * WARPS + (threadIdx.x >> 5); tile < rows / 16; tile += gridDim.x * WARPS) {
        uint32_t a[4][4];
        load_a(g, tile * 16, a);
#pragma unroll 1
        for (int h = 0; h < HEADS; ++h) {
            float acc[64];
            init_bias(acc, bias + h * 128);
            const uint2* w = wsm + h * 64 * 32;
#pragma unroll
            for (int s = 0; s < 4; ++s)
#pragma unroll
                for (int j = 0; j < 16; ++j) {
                    const uint2 b2 = w[(j * 4 + s) * 32 + lane];
                    const uint32_t b[2] = {b2.x, b2.y};
                    mma16816(*reinterpret_cast<float(*)[4]>(&acc[4 * j]), a[s], b);
                }
            epilogue(acc, tile * 16, h, verify, out);
        }
    }
}

__device__ __forceinline__ uint64_t desc_of(const void* smem, uint32_t lbo, uint32_t sbo) {
    const uint32_t addr = (uint32_t)__cvta_generic_to_shared(smem);
    return (uint64_t)((addr >> 4) & 0x3fff) | (uint64_t)((lbo >> 4) & 0x3fff) << 16 | (uint64_t)((sbo >> 4) & 0x3fff) << 32;
}

__device__ __forceinline__ void fence_acc(float (&acc)[64]) {
#pragma unroll
    for (int i = 0; i < 64; ++i) asm volatile("" : "+f"(acc[i])::"memory");
}

// core: [HEADS][16 column tiles][4 k-steps] blocks of 256 bytes: two 8 × 8 core matrices (k 0–7, 8–15 of
// the step), row n at 16·(n % 8).
extern "C" __global__ void __launch_bounds__(WARPS * 32, 1)
heads_wgmma(const float* g, const uint2* core, const float* bias, int rows, bool verify, float* out, uint32_t lbo,
            uint32_t sbo) {
    extern __shared__ __align__(16) uint2 wsm[];
    for (int e = threadIdx.x; e < HEADS * 64 * 32; e += blockDim.x) wsm[e] = core[e];
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
    const int warp = threadIdx.x >> 5, wg = warp >> 2, wq = warp & 3;
    for (int grp = blockIdx.x * (WARPS / 4) + wg; grp < rows / 64; grp += gridDim.x * (WARPS / 4)) {
        const int row0 = grp * 64 + wq * 16;
        uint32_t a[4][4];
        load_a(g, row0, a);
#pragma unroll 1
        for (int h = 0; h < HEADS; ++h) {
            float acc[64];
            init_bias(acc, bias + h * 128);
            fence_acc(acc);
            asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
            for (int s = 0; s < 4; ++s) wgmma_n128(acc, a[s], desc_of(wsm + h * 64 * 32 + s * 32, lbo, sbo));
            asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
            asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
            fence_acc(acc);
            epilogue(acc, row0, h, verify, out);
        }
    }
}


// dW probe: C[64][72] = Σ_k A[k][m]·X[k][n] over k < 128, A and X staged MN-major in core matrices:
// element (mn, k) at core(mn / 8, k / 8) + 16·(k % 8) + 2·(mn % 8); cores at (kc·MC + mc)·128.
extern "C" __global__ void dw_wgmma(const uint16_t* a, const uint16_t* x, float* out, uint32_t la, uint32_t sa,
                                    uint32_t lx, uint32_t sx) {
    __shared__ __align__(128) uint16_t sm_a[128 * 64], sm_x[128 * 72];
    for (int e = threadIdx.x; e < 128 * 64; e += 128) sm_a[e] = a[e];
    for (int e = threadIdx.x; e < 128 * 72; e += 128) sm_x[e] = x[e];
    __syncthreads();
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
    float d[36];
    for (int i = 0; i < 36; ++i) d[i] = 0.0f;
    for (int i = 0; i < 36; ++i) asm volatile("" : "+f"(d[i])::"memory");
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int s = 0; s < 8; ++s) {
        const uint64_t da = (uint64_t)(((uint32_t)__cvta_generic_to_shared(sm_a + s * 2 * 8 * 64) >> 4) & 0x3fff) |
                            (uint64_t)(la >> 4) << 16 | (uint64_t)(sa >> 4) << 32;
        const uint64_t dx = (uint64_t)(((uint32_t)__cvta_generic_to_shared(sm_x + s * 2 * 9 * 64) >> 4) & 0x3fff) |
                            (uint64_t)(lx >> 4) << 16 | (uint64_t)(sx >> 4) << 32;
        wgmma_n72_ss(d, da, dx);
    }
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    for (int i = 0; i < 36; ++i) asm volatile("" : "+f"(d[i])::"memory");
    const int w = threadIdx.x >> 5, g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
    for (int j = 0; j < 9; ++j)
        for (int e = 0; e < 4; ++e) out[(16 * w + g + 8 * (e >> 1)) * 72 + 8 * j + 2 * t + (e & 1)] = d[4 * j + e];
}

static uint16_t bf(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
static float unbf(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

static void dw_probe() {
    std::vector<uint16_t> a(128 * 64), x(128 * 72);
    std::vector<float> af(128 * 64), xf(128 * 72);
    for (int k = 0; k < 128; ++k) {
        for (int m = 0; m < 64; ++m) {
            uint16_t h = bf(-1.0f + 2.0f * (rand() / (float)RAND_MAX));
            af[k * 64 + m] = unbf(h);
            a[((k / 8) * 8 + m / 8) * 64 + (k % 8) * 8 + m % 8] = h;
        }
        for (int n = 0; n < 72; ++n) {
            uint16_t h = bf(-1.0f + 2.0f * (rand() / (float)RAND_MAX));
            xf[k * 72 + n] = unbf(h);
            x[((k / 8) * 9 + n / 8) * 64 + (k % 8) * 8 + n % 8] = h;
        }
    }
    uint16_t *da, *dx;
    float* dout;
    cudaMalloc(&da, a.size() * 2);
    cudaMalloc(&dx, x.size() * 2);
    cudaMalloc(&dout, 64 * 72 * 4);
    cudaMemcpy(da, a.data(), a.size() * 2, cudaMemcpyHostToDevice);
    cudaMemcpy(dx, x.data(), x.size() * 2, cudaMemcpyHostToDevice);
    std::vector<float> out(64 * 72);
    // (K-direction core stride, MN-direction core stride) of A: 1024, 128; of X: 1152, 128.
    const uint32_t conf[2][4] = {{1024, 128, 1152, 128}, {128, 1024, 128, 1152}};
    for (int c = 0; c < 2; ++c) {
        cudaMemset(dout, 0, 64 * 72 * 4);
        dw_wgmma<<<1, 128>>>(da, dx, dout, conf[c][0], conf[c][1], conf[c][2], conf[c][3]);
        cudaError_t err = cudaDeviceSynchronize();
        cudaMemcpy(out.data(), dout, out.size() * 4, cudaMemcpyDeviceToHost);
        double worst = 0.0;
        for (int m = 0; m < 64; ++m)
            for (int n = 0; n < 72; ++n) {
                double ref = 0.0;
                for (int k = 0; k < 128; ++k) ref += (double)af[k * 64 + m] * xf[k * 72 + n];
                worst = std::max(worst, fabs(ref - out[m * 72 + n]));
            }
        printf("dW wgmma MN-major, lbo = %s stride, sbo = %s stride: %s, max |error| %.3g\n", c ? "MN" : "K",
               c ? "K" : "MN", cudaGetErrorString(err), worst);
    }
}

static uint16_t h16(float v) {
    __half x = __float2half_rn(v);
    return *reinterpret_cast<uint16_t*>(&x);
}
static float rf16(float v) { return __half2float(__float2half_rn(v)); }

int main() {
    srand(1);
    dw_probe();
    auto rnd = [](float lo, float hi) { return lo + (hi - lo) * (rand() / (float)RAND_MAX); };
    std::vector<float> g((size_t)ROWS * 64), v(HEADS * 128 * 64), bias(HEADS * 128);
    for (auto& x : g) x = rnd(0.0f, 1.0f);
    for (auto& x : v) x = rnd(-0.2f, 0.2f);
    for (auto& x : bias) x = rnd(-0.5f, 0.5f);
    // B[k][n] = V[h][n][k]
    std::vector<uint32_t> frag(HEADS * 64 * 32 * 2);
    std::vector<uint16_t> core(HEADS * 64 * 128);
    for (int h = 0; h < HEADS; ++h)
        for (int j = 0; j < 16; ++j)
            for (int s = 0; s < 4; ++s) {
                for (int l = 0; l < 32; ++l) {
                    int gr = l >> 2, t = l & 3, n = 8 * j + gr;
                    auto B = [&](int k) { return h16(v[(h * 128 + n) * 64 + k]); };
                    size_t f = ((size_t)(h * 64 + j * 4 + s) * 32 + l) * 2;
                    frag[f] = B(16 * s + 2 * t) | (uint32_t)B(16 * s + 2 * t + 1) << 16;
                    frag[f + 1] = B(16 * s + 2 * t + 8) | (uint32_t)B(16 * s + 2 * t + 9) << 16;
                }
                for (int c = 0; c < 2; ++c)
                    for (int r = 0; r < 8; ++r)
                        for (int e = 0; e < 8; ++e)
                            core[(size_t)(h * 64 + j * 4 + s) * 128 + c * 64 + r * 8 + e] =
                                h16(v[(h * 128 + 8 * j + r) * 64 + 16 * s + 8 * c + e]);
            }
    float *dg, *dbias, *dout;
    uint2 *dfrag, *dcore;
    const int vrows = 64 * 132 * 3 * 2;  // verify rows: every block and warpgroup twice
    cudaMalloc(&dg, g.size() * 4);
    cudaMalloc(&dbias, bias.size() * 4);
    cudaMalloc(&dout, (size_t)ROWS * HEADS * 128 * 4);
    cudaMalloc(&dfrag, frag.size() * 4);
    cudaMalloc(&dcore, core.size() * 2);
    cudaMemcpy(dg, g.data(), g.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dbias, bias.data(), bias.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dfrag, frag.data(), frag.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dcore, core.data(), core.size() * 2, cudaMemcpyHostToDevice);
    const int smem = HEADS * 64 * 32 * 8;
    cudaFuncSetAttribute(heads_mma, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    cudaFuncSetAttribute(heads_wgmma, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    int sms;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    std::vector<float> out((size_t)vrows * HEADS * 128);
    auto check = [&](const char* name) {
        cudaError_t err = cudaDeviceSynchronize();
        if (err != cudaSuccess) {
            printf("%s: %s\n", name, cudaGetErrorString(err));
            exit(1);
        }
        cudaMemcpy(out.data(), dout, out.size() * 4, cudaMemcpyDeviceToHost);
        double worst = 0.0;
        for (int r = 0; r < vrows; ++r)
            for (int h = 0; h < HEADS; ++h)
                for (int n = 0; n < 128; ++n) {
                    double ref = bias[h * 128 + n];
                    for (int k = 0; k < 64; ++k) ref += (double)rf16(g[(size_t)r * 64 + k]) * rf16(v[(h * 128 + n) * 64 + k]);
                    worst = std::max(worst, fabs(ref - out[((size_t)r * HEADS + h) * 128 + n]));
                }
        printf("%s: max |error| %.3g\n", name, worst);
        return worst;
    };
    heads_mma<<<sms, WARPS * 32, smem>>>(dg, dfrag, dbias, vrows, true, dout);
    check("mma.sync");
    uint32_t lbo = 128, sbo = 1024;
    heads_wgmma<<<sms, WARPS * 32, smem>>>(dg, dcore, dbias, vrows, true, dout, 128, 1024);
    double e1 = check("wgmma lbo 128 sbo 1024");
    cudaMemset(dout, 0, out.size() * 4);
    heads_wgmma<<<sms, WARPS * 32, smem>>>(dg, dcore, dbias, vrows, true, dout, 1024, 128);
    double e2 = check("wgmma lbo 1024 sbo 128");
    if (e2 < e1) lbo = 1024, sbo = 128;
    cudaEvent_t t0, t1;
    cudaEventCreate(&t0);
    cudaEventCreate(&t1);
    for (int variant = 0; variant < 2; ++variant) {
        std::vector<float> ms;
        for (int rep = 0; rep < 25; ++rep) {
            cudaEventRecord(t0);
            if (variant == 0) heads_mma<<<sms, WARPS * 32, smem>>>(dg, dfrag, dbias, ROWS, false, dout);
            else heads_wgmma<<<sms, WARPS * 32, smem>>>(dg, dcore, dbias, ROWS, false, dout, lbo, sbo);
            cudaEventRecord(t1);
            cudaEventSynchronize(t1);
            float m;
            cudaEventElapsedTime(&m, t0, t1);
            if (rep >= 5) ms.push_back(m);
        }
        std::sort(ms.begin(), ms.end());
        printf("%s: median %.3f ms over %d rows x %d heads (64 -> 128)\n", variant ? "wgmma" : "mma.sync", ms[ms.size() / 2], ROWS,
               HEADS);
    }
    return 0;
}
