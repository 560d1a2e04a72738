// Implicit-GEMM 3D convolution on Hopper's warpgroup MMA (wgmma, sm_90a only: build.rs compiles
// this file for sm_90a alone and the loader skips it on other devices; CPU twin
// backend/cpu/conv.rs, mma.sync twin kernels/conv.cu).
//
// The same product as conv3d_igemm in conv.cu, out (M = T'·H'·W' rows, C_out) = A (M, K) · Wᵀ with
// A's row m the taps of output position m gathered straight from x, but the tiles feed
// wgmma.mma_async from shared memory instead of mma.sync from ldmatrix fragments: mma.sync topped
// out near 300 TFLOP/s on the H200 (`sana bench conv`), the wgmma products cuBLASLt runs reach
// 500+. A block is two warpgroups (256 threads) on BM positions × BN output channels; warpgroup g
// owns rows [g·BM/2, (g + 1)·BM/2) and every column, as BM/128 m64 × BN wgmma tiles. K-steps are
// one tap × 64 input channels: each position's 64 channels are one 128-byte shared-memory row,
// stored with the 128-byte swizzle (16-byte chunk c of row r at chunk c ^ (r mod 8)) that the
// wgmma descriptors name, so both operands are read conflict-free and K-major. Tiles are gathered
// by cp.async (zero-filled where a tap reads padding) STAGES − 2 K-steps ahead of the product, and
// one wgmma group stays in flight while the next tiles are issued: the slot a copy refills was
// last read two K-steps before, by a group every warpgroup has waited for.
// Needs C_in % 64 == 0. The epilogue (bias, bf16 rounding, 16-byte stores, the residual add) is
// conv.cuh's, as for the mma.sync kernels.
#include "common.cuh"
#include "conv.cuh"

namespace wg {
constexpr int kThreads = 256;  // two warpgroups
constexpr int kBK = 64;        // input channels per K-step: one 128-byte row per position

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

// Byte offset of 16-byte chunk c of row r in a tile of 128-byte rows under the 128-byte swizzle.
__device__ __forceinline__ uint32_t swizzled(int r, int c) { return r * 128 + ((c ^ (r & 7)) << 4); }

// The wgmma shared-memory matrix descriptor of a K-major tile with 128-byte swizzled rows starting
// at addr (its swizzle atom, 8 rows × 128 bytes, 1024-byte aligned; addr may step 32 bytes into it
// for the next 16 channels): start address >> 4, leading byte offset 1 (unused by swizzled K-major
// tiles), stride byte offset 1024 (8 rows to the next 8), swizzle mode 1 (128 bytes).
__device__ __forceinline__ uint64_t descriptor(uint32_t addr) {
    return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)1 << 16) | ((uint64_t)(1024 >> 4) << 32) | ((uint64_t)1 << 62);
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ void mma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void mma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void mma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
// cp.async writes shared memory through the generic proxy, wgmma reads it through the async one
__device__ __forceinline__ void proxy_fence() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// d (64 × 128 f32, the warpgroup's fragment) += A (64 × 16, desc a) · B (128 × 16, desc b)ᵀ, both
// K-major bf16 in shared memory (scale-d = 1: accumulate; the caller zeroes d first).
__device__ __forceinline__ void mma_m64n128k16(float (&d)[64], uint64_t a, uint64_t b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
        "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(a), "l"(b), "n"(1)
        : "memory");
}

// d (64 × 256 f32, the warpgroup's fragment) += A (64 × 16, desc a) · B (256 × 16, desc b)ᵀ, both
// K-major bf16 in shared memory (scale-d = 1: accumulate; the caller zeroes d first).
__device__ __forceinline__ void mma_m64n256k16(float (&d)[128], uint64_t a, uint64_t b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
        "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
        "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
        "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
        "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
        "}, %128, %129, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
          "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
          "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
          "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
          "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
          "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
          "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
          "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
          "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
        : "l"(a), "l"(b), "n"(1)
        : "memory");
}

template <int BN>
__device__ __forceinline__ void mma_tile(float (&d)[BN / 2], uint64_t a, uint64_t b) {
    if constexpr (BN == 256)
        mma_m64n256k16(d, a, b);
    else
        mma_m64n128k16(d, a, b);
}

template <int BM, int BN, int STAGES>
__device__ __forceinline__ void conv3d_wgmma(const ConvGemmParams& p) {
    constexpr int kMI = BM / 128;             // m64 tiles per warpgroup
    constexpr int kAcc = BN / 2;              // f32 accumulators per thread per m64 tile
    constexpr int kABytes = BM * 128, kStageBytes = (BM + BN) * 128;
    constexpr int kARows = BM / 32, kBRows = BN / 32;  // 16-byte chunks per thread per tile
    static_assert(STAGES >= 3, "one group in flight and one tile ahead");
    static_assert(BM * (BN + 8) * 2 <= STAGES * kStageBytes, "the epilogue tile reuses the stages");
    extern __shared__ unsigned char smem_raw[];
    // swizzle atoms are 1024-byte aligned: so are the stages (the launcher adds 1024 bytes)
    unsigned char* smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
    int* row_t = reinterpret_cast<int*>(smem + STAGES * kStageBytes);
    int* row_h = row_t + BM;
    int* row_w = row_h + BM;
    const int tid = threadIdx.x, group = tid / 128, warp = (tid % 128) / 32, lane = tid % 32;
    const int n_blocks = (p.c_out + BN - 1) / BN;
    const int64_t m_total = (int64_t)p.t_out * p.h_out * p.w_out;
    const int64_t m0 = (int64_t)(blockIdx.x / n_blocks) * BM;
    const int n0 = (blockIdx.x % n_blocks) * BN;
    const int cblocks = p.c_in / kBK, steps = p.kt * p.kh * p.kw * cblocks;
    const int64_t k_dim = (int64_t)p.kt * p.kh * p.kw * p.c_in;
    const bf16* x = dptr<const bf16>(p.x);
    const bf16* w = dptr<const bf16>(p.w);

    decode_rows<BM, kThreads>(p, m0, row_t, row_h, row_w);
    __syncthreads();

    // this thread's chunks: rows row0 + 32·i of the A and B tiles, channels chunk·8 .. + 7 of the
    // step; A's source pointers rebuilt once per tap
    const int chunk = tid % 8, row0 = tid / 8;
    const bf16* a_src[kARows];
    int ld_tap = 0, ld_cb = 0;
    auto load_stage = [&](int slot) {
        unsigned char* a_s = smem + slot * kStageBytes;
        unsigned char* b_s = a_s + kABytes;
        if (ld_cb == 0) {
            const int iw = ld_tap % p.kw, ih = (ld_tap / p.kw) % p.kh, it = ld_tap / (p.kw * p.kh);
#pragma unroll
            for (int i = 0; i < kARows; ++i) {
                const int r = row0 + i * 32;
                const bf16* src = tap_source(p, x, row_t[r], row_h[r], row_w[r], it, ih, iw);
                a_src[i] = src ? src + chunk * 8 : nullptr;
            }
        }
        const int c0 = ld_cb * kBK;
#pragma unroll
        for (int i = 0; i < kARows; ++i)
            cp_async16(a_s + swizzled(row0 + i * 32, chunk), a_src[i] ? a_src[i] + c0 : x, a_src[i] != nullptr);
        const int64_t k0 = (int64_t)ld_tap * p.c_in + c0 + chunk * 8;
#pragma unroll
        for (int i = 0; i < kBRows; ++i) {
            const int n = row0 + i * 32, co = n0 + n;
            const bool ok = co < p.c_out;
            cp_async16(b_s + swizzled(n, chunk), ok ? w + co * k_dim + k0 : w, ok);
        }
        if (++ld_cb == cblocks) ld_cb = 0, ++ld_tap;
    };

    float acc[kMI][kAcc];
#pragma unroll
    for (int mi = 0; mi < kMI; ++mi)
#pragma unroll
        for (int i = 0; i < kAcc; ++i) acc[mi][i] = 0.0f;

    for (int s = 0; s < STAGES - 2; ++s) {
        if (s < steps) load_stage(s);
        cp_async_commit();
    }
    for (int step = 0; step < steps; ++step) {
        // the group of `step` has landed once at most STAGES - 3 newer groups are pending
        cp_async_wait<STAGES - 3>();
        proxy_fence();
        __syncthreads();
        // refill the slot of step - 2: every warpgroup waited for that step's products (the
        // mma_wait<1> of the previous iteration) before the barrier above
        if (step + STAGES - 2 < steps) load_stage((step + STAGES - 2) % STAGES);
        cp_async_commit();
        const uint32_t a_base = smem_u32(smem + (step % STAGES) * kStageBytes) + group * (BM / 2) * 128;
        const uint32_t b_base = smem_u32(smem + (step % STAGES) * kStageBytes + kABytes);
        mma_fence();
#pragma unroll
        for (int kk = 0; kk < kBK / 16; ++kk)
#pragma unroll
            for (int mi = 0; mi < kMI; ++mi)
                mma_tile<BN>(acc[mi], descriptor(a_base + mi * 64 * 128 + kk * 32), descriptor(b_base + kk * 32));
        mma_commit();
        mma_wait<1>();
    }
    mma_wait<0>();
    cp_async_wait<0>();
    __syncthreads();  // every product done with the stages: reuse them for the bf16 tile

    // accumulator i of an m64 tile: row 16·warp + lane / 4 (+ 8 for i % 4 ≥ 2), column
    // 8·(i / 4) + 2·(lane % 4) + i % 2
    constexpr int kLdc = BN + 8;
    bf16* c_s = reinterpret_cast<bf16*>(smem);
    const bf16* bias = dptr<const bf16>(p.bias);
    const int g = lane / 4, qd = lane % 4;
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
        const int c = j * 8 + 2 * qd;
        const float b0 = p.bias && n0 + c < p.c_out ? to_f32(bias[n0 + c]) : 0.0f;
        const float b1 = p.bias && n0 + c + 1 < p.c_out ? to_f32(bias[n0 + c + 1]) : 0.0f;
#pragma unroll
        for (int mi = 0; mi < kMI; ++mi) {
            const int r = group * (BM / 2) + mi * 64 + warp * 16 + g;
            const float* d = &acc[mi][4 * j];
            *reinterpret_cast<uint32_t*>(c_s + r * kLdc + c) = pack_bf16x2(d[0] + b0, d[1] + b1);
            *reinterpret_cast<uint32_t*>(c_s + (r + 8) * kLdc + c) = pack_bf16x2(d[2] + b0, d[3] + b1);
        }
    }
    __syncthreads();
    write_staged_tile<BM, BN, kThreads>(p, c_s, n0, [&](int r) { return m0 + r < m_total ? m0 + r : -1; });
}
#endif
}  // namespace wg

// 4 stages of 48 KB at BM + BN = 384 (194.5 KB with the alignment and row coordinates: sm_90's
// 227 KB), 6 of 32 KB at BM = BN = 128.
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define CONV3D_WGMMA_BODY(BM, BN, STAGES) wg::conv3d_wgmma<BM, BN, STAGES>(p);
#else
#define CONV3D_WGMMA_BODY(BM, BN, STAGES) __trap();
#endif
#define CONV3D_WGMMA(BM, BN, STAGES)                                                                  \
    extern "C" __global__ void __launch_bounds__(wg::kThreads, 1) conv3d_wgmma_m##BM##_n##BN##_bf16( \
        const ConvGemmParams p) {                                                                     \
        CONV3D_WGMMA_BODY(BM, BN, STAGES)                                                             \
    }
CONV3D_WGMMA(128, 256, 4)
CONV3D_WGMMA(256, 128, 4)
CONV3D_WGMMA(128, 128, 6)
