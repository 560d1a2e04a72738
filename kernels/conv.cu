// Video convolutions for the autoencoders (MODEL.md §3; CPU twin backend/cpu/conv.rs).
//
// Two kernels, the launcher in backend/cuda/conv.rs picking one per conv (`conv_path`):
// - conv3d_igemm_*: implicit GEMM on the tensor cores, the taps gathered in shared memory (up to
//   256 output channels: the full-resolution layers, conv_out to RGB);
// - im2col_bf16: a bounded slab of rows (output positions) x columns (taps x input channels,
//   channel fastest as the weights are stored) for one cuBLASLt product per slab, where cuBLASLt's
//   wgmma kernels beat ours (> 256 output channels) or C_in fits no implicit-GEMM K-step.
// Both can read x through a nearest spatial upsampling (up_shift = 1: the Wan decoder's x2
// upsampling, never materialised): taps and padding are on the upsampled grid, the load from
// (h >> up_shift, w >> up_shift). Both can add the result into out (accumulate: the resnets'
// residual) without a separate pass: cuBLASLt (im2col's beta = 1) before its one rounding, the
// implicit GEMM as it stores its bf16 tile (the same two roundings as a separate add).
#include "common.cuh"
#include "conv.cuh"

static constexpr int kThreads = 256;

// cols (rows, kt*kh*kw*C_in) for output rows [row0, row0 + rows): zeros where a tap reads padding.
// One thread per (row, tap, group of `vec` channels): the index arithmetic is paid once per
// group, and with C_in % 8 == 0 each thread moves 16 bytes (the autoencoders' 96..512 channels).
template <typename Chunk>
__device__ __forceinline__ void im2col_body(const ConvParams& p, const Chunk zero) {
    const int groups = p.c_in / (int)(sizeof(Chunk) / sizeof(bf16));
    const int taps = p.kt * p.kh * p.kw;
    const int64_t total = (int64_t)p.rows * taps * groups;
    const Chunk* x = dptr<const Chunk>(p.x);
    Chunk* cols = dptr<Chunk>(p.out);
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int g = (int)(i % groups);
        const int64_t rt = i / groups;
        int tap = (int)(rt % taps);
        const int row = (int)(p.row0 + rt / taps);
        const int iw = tap % p.kw; tap /= p.kw;
        const int ih = tap % p.kh;
        const int it = tap / p.kh;
        const int wo = row % p.w_out;
        const int ho = (row / p.w_out) % p.h_out;
        const int to = row / (p.w_out * p.h_out);
        const int ti = source_index(to, it, p.st, p.pt, p.t, 0);
        const int hi = source_index(ho, ih, p.sh, p.ph, p.h << p.up_shift, p.reflect);
        const int wi = source_index(wo, iw, p.sw, p.pw, p.w_in << p.up_shift, p.reflect);
        const int64_t src = (((int64_t)ti * p.h + (hi >> p.up_shift)) * p.w_in + (wi >> p.up_shift)) * groups + g;
        cols[i] = (ti < 0 || hi < 0 || wi < 0) ? zero : x[src];
    }
}

extern "C" __global__ void __launch_bounds__(kThreads) im2col_bf16(const ConvParams p) {
    if (p.c_in % 8 == 0)
        im2col_body<uint4>(p, make_uint4(0, 0, 0, 0));
    else
        im2col_body<bf16>(p, __float2bfloat16(0.0f));
}

// ---- implicit GEMM ------------------------------------------------------------------------
// out (M = T'·H'·W' rows, C_out) = A (M, K) · Wᵀ with A's row m the taps of output position m,
// never materialised: each K-step (one tap, BK input channels) gathers a BM × BK tile of A
// straight from x into shared memory (cp.async, zero-filled where a tap reads padding) next to a
// BN × BK tile of W. BM / 32 warps ((BM / 64) × 2, 64 × BN/2 each) multiply them with mma.sync m16n8k16 from
// ldmatrix fragments, f32 accumulation, with STAGES tiles in flight to hide the gather latency.
// BN is 64, 96 or 128 (the launcher picks the one that pads C_out least); BK is 16, 32 or 64 (64
// halves the barriers per product, where C_in allows it and the stages fit in shared memory).
// BM is 128 or 256. The block's BM output positions are decoded into (t, h, w) once, into shared memory; each
// thread rebuilds its rows' source pointers once per tap. The bf16 result tile goes out through
// shared memory so each thread writes 16 contiguous bytes. Blocks are numbered with the N tile
// fastest, so the blocks reading one A tile run together and share it in L2.
// Needs C_in % BK == 0 (a K-step never straddles two taps, every 16-byte copy is aligned).

// One K-step of BK channels for one warp's 64 × (8·NT) accumulator tile: A rows from a_rows[i]
// (this lane's ldmatrix row of m16 tile i, at channel 0 of the step; each kernel maps positions to
// shared-memory rows its own way), B from b_lane (this lane's ldmatrix row of the warp's first
// n16 pair). Both row strides are kLd bf16.
template <int BK, int NT, int kLd>
__device__ __forceinline__ void warp_mma_step(float (&acc)[4][NT][4], const bf16* const (&a_rows)[4],
                                              const bf16* b_lane) {
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
        uint32_t a[4][4], b[NT][2];
#pragma unroll
        for (int i = 0; i < 4; ++i) ldmatrix_x4(a[i], a_rows[i] + kk);
#pragma unroll
        for (int j = 0; j < NT; j += 2) {
            uint32_t r[4];
            ldmatrix_x4(r, b_lane + j * 8 * kLd + kk);
            b[j][0] = r[0], b[j][1] = r[1], b[j + 1][0] = r[2], b[j + 1][1] = r[3];
        }
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < NT; ++j) mma_16816(acc[i][j], a[i], b[j][0], b[j][1]);
    }
}

// The epilogue both kernels share: bias added to the f32 tile, rounded to bf16 into shared memory
// (c_s, BM × (BN + 8), over the spent stages), then written so each thread moves 16 contiguous
// bytes, added onto out where p.accumulate. out_row(r) is the output row of tile row r, or -1.
template <int BM, int BN, int NT, typename RowFn>
__device__ __forceinline__ void store_tile(const ConvGemmParams& p, const float (&acc)[4][NT][4], bf16* c_s, int n0,
                                           int wm, int wn, RowFn out_row) {
    constexpr int kLdc = BN + 8, kThreads = BM;
    const int tid = threadIdx.x, lane = tid % 32, g = lane / 4, qd = lane % 4;
    const bf16* bias = dptr<const bf16>(p.bias);
#pragma unroll
    for (int j = 0; j < NT; ++j) {
        const int c = wn + j * 8 + 2 * qd;
        const float b0 = p.bias && n0 + c < p.c_out ? to_f32(bias[n0 + c]) : 0.0f;
        const float b1 = p.bias && n0 + c + 1 < p.c_out ? to_f32(bias[n0 + c + 1]) : 0.0f;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int r = wm + i * 16 + g;
            *reinterpret_cast<uint32_t*>(c_s + r * kLdc + c) = pack_bf16x2(acc[i][j][0] + b0, acc[i][j][1] + b1);
            *reinterpret_cast<uint32_t*>(c_s + (r + 8) * kLdc + c) = pack_bf16x2(acc[i][j][2] + b0, acc[i][j][3] + b1);
        }
    }
    __syncthreads();
    write_staged_tile<BM, BN, kThreads>(p, c_s, n0, out_row);
}

// One B (weights) tile: BN output channels × BK channels of K from k0, zeros past C_out.
template <int BN, int BK, int kThreads, int kLd>
__device__ __forceinline__ void load_weight_tile(const ConvGemmParams& p, bf16* b_s, int n0, int64_t k0,
                                                 int64_t k_dim) {
    constexpr int kChunks = BK / 8;
    const bf16* w = dptr<const bf16>(p.w);
#pragma unroll
    for (int q = threadIdx.x; q < BN * kChunks; q += kThreads) {
        const int n = q / kChunks, kc = (q % kChunks) * 8, co = n0 + n;
        const bool ok = co < p.c_out;
        cp_async16(b_s + n * kLd + kc, ok ? w + co * k_dim + k0 + kc : w, ok);
    }
}

template <int BM, int BN, int BK, int STAGES>
__device__ __forceinline__ void conv3d_igemm(const ConvGemmParams& p) {
    constexpr int kBM = BM, kThreads = BM;  // one thread per position
    constexpr int kWarpsM = BM / 64;
    constexpr int kLd = BK + 8;  // smem row stride (bf16): 80 or 144 bytes, so 8 ldmatrix rows hit 8 bank groups
    constexpr int kChunks = BK / 8;              // 16-byte chunks per tile row
    constexpr int kRowStep = kThreads / kChunks;  // rows between one thread's A chunks
    constexpr int kRows = kBM / kRowStep;         // A rows per thread
    constexpr int kWarpN = BN / 2, kNTiles = kWarpN / 8;  // n8 tiles per warp
    constexpr int kStageElems = (kBM + BN) * kLd;
    static_assert(kNTiles % 2 == 0, "B fragments are loaded two n8 tiles at a time");
    static_assert(kBM * (BN + 8) <= STAGES * kStageElems, "the epilogue tile reuses the stages");
    extern __shared__ __align__(128) unsigned char smem_raw[];
    __shared__ int row_t[kBM], row_h[kBM], row_w[kBM];
    bf16* stages = reinterpret_cast<bf16*>(smem_raw);
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int n_blocks = (p.c_out + BN - 1) / BN;
    const int64_t m_total = (int64_t)p.t_out * p.h_out * p.w_out;
    const int64_t m0 = (int64_t)(blockIdx.x / n_blocks) * kBM;
    const int n0 = (blockIdx.x % n_blocks) * BN;
    const int cblocks = p.c_in / BK, steps = p.kt * p.kh * p.kw * cblocks;
    const int64_t k_dim = (int64_t)p.kt * p.kh * p.kw * p.c_in;
    const bf16* x = dptr<const bf16>(p.x);

    decode_rows<kBM, kThreads>(p, m0, row_t, row_h, row_w);
    __syncthreads();

    // this thread's A chunks: rows tid / kChunks + kRowStep·i, 8 channels at (tid % kChunks)·8.
    // The loader walks the K-steps in order: row pointers rebuilt once per tap, not per step.
    const int chunk = (tid % kChunks) * 8, row0 = tid / kChunks;
    const bf16* a_src[kRows];
    int ld_tap = 0, ld_cb = 0;
    auto load_stage = [&](int slot) {
        bf16* a_s = stages + slot * kStageElems;
        bf16* b_s = a_s + kBM * kLd;
        if (ld_cb == 0) {
            const int iw = ld_tap % p.kw, ih = (ld_tap / p.kw) % p.kh, it = ld_tap / (p.kw * p.kh);
#pragma unroll
            for (int i = 0; i < kRows; ++i) {
                const int r = row0 + i * kRowStep;
                const bf16* src = tap_source(p, x, row_t[r], row_h[r], row_w[r], it, ih, iw);
                a_src[i] = src ? src + chunk : nullptr;
            }
        }
        const int c0 = ld_cb * BK;
#pragma unroll
        for (int i = 0; i < kRows; ++i)
            cp_async16(a_s + (row0 + i * kRowStep) * kLd + chunk, a_src[i] ? a_src[i] + c0 : x, a_src[i] != nullptr);
        load_weight_tile<BN, BK, kThreads, kLd>(p, b_s, n0, (int64_t)ld_tap * p.c_in + c0, k_dim);
        if (++ld_cb == cblocks) ld_cb = 0, ++ld_tap;
    };

    // fragment layouts (PTX m16n8k16): an accumulator's lane holds rows g, g + 8 and columns
    // 2·qd, 2·qd + 1. ldmatrix row addresses: A matrices (rows 0–7 | 8–15) × (k 0–7 | 8–15),
    // rows fastest; B (n × k, k contiguous) matrices (k 0–7 | 8–15) × (n 0–7 | 8–15), k fastest.
    const int wm = (warp % kWarpsM) * 64, wn = (warp / kWarpsM) * kWarpN;
    const int a_row = (lane % 8) + ((lane / 8) % 2) * 8, a_col = (lane / 16) * 8;
    const int b_row = (lane / 16) * 8 + (lane % 8), b_col = ((lane / 8) % 2) * 8;
    float acc[4][kNTiles][4] = {};

    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < steps) load_stage(s);
        cp_async_commit();
    }
    for (int step = 0; step < steps; ++step) {
        // the group of `step` has landed once at most STAGES - 2 newer groups are pending
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        // refill the slot consumed in the previous iteration (every warp is past it now)
        if (step + STAGES - 1 < steps) load_stage((step + STAGES - 1) % STAGES);
        cp_async_commit();
        const bf16* a_s = stages + (step % STAGES) * kStageElems;
        const bf16* b_s = a_s + kBM * kLd;
        const bf16* const a_rows[4] = {a_s + (wm + a_row) * kLd + a_col, a_s + (wm + 16 + a_row) * kLd + a_col,
                                       a_s + (wm + 32 + a_row) * kLd + a_col, a_s + (wm + 48 + a_row) * kLd + a_col};
        warp_mma_step<BK, kNTiles, kLd>(acc, a_rows, b_s + (wn + b_row) * kLd + b_col);
    }
    cp_async_wait<0>();
    __syncthreads();  // every warp done with the stages: reuse them for the bf16 tile
    store_tile<BM, BN, kNTiles>(p, acc, stages, n0, wm, wn, [&](int r) { return m0 + r < m_total ? m0 + r : -1; });
}

// ---- halo-tiled implicit GEMM (3×3 spatial taps, stride 1, no upsampling) ----------------------
// The gather above reads every input position 9 times per temporal tap, through L2: the bound of
// the 96–256-channel full-resolution convs. Here a block owns a (BM / tile_w) × tile_w patch of
// output positions in one frame; per (temporal tap, BK channels) it stages the patch's input halo,
// (rows + 2) × (tile_w + 2) positions, once, and the 9 spatial taps read their A rows from it at
// offsets (ih, iw): one ldmatrix row address per lane, so no copy per tap. The weight tiles still
// stream one per K-step in STAGES slots; the halo has 2 slots, loaded with the first K-step of
// its group, 9 steps ahead of the slot's previous use (STAGES ≤ 10).
namespace halo {
constexpr int kMaxPositions = 264;  // (2 + 2) × (64 + 2) at tile_w = 64; 204 at 32, 180 at 16 (BM = 128)
}  // namespace halo

template <int BM, int BN, int BK, int STAGES>
__device__ __forceinline__ void conv3d_halo(const ConvGemmParams& p) {
    constexpr int kThreads = BM, kWarpsM = BM / 64;
    constexpr int kLd = BK + 8, kChunks = BK / 8;
    constexpr int kWarpN = BN / 2, kNTiles = kWarpN / 8;
    constexpr int kHaloElems = halo::kMaxPositions * kLd, kWeightElems = BN * kLd;
    static_assert(kNTiles % 2 == 0, "B fragments are loaded two n8 tiles at a time");
    static_assert(STAGES <= 10, "a halo slot is refilled 10 - STAGES steps after its last use");
    static_assert(BM * (BN + 8) <= 2 * kHaloElems + STAGES * kWeightElems, "the epilogue tile reuses the stages");
    extern __shared__ __align__(128) unsigned char smem_raw[];
    bf16* halos = reinterpret_cast<bf16*>(smem_raw);
    bf16* weights = halos + 2 * kHaloElems;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int tw = p.tile_w, th = BM / tw, hw = tw + 2, halo_positions = (th + 2) * hw;
    const int tiles_w = (p.w_out + tw - 1) / tw, tiles_h = (p.h_out + th - 1) / th;
    const int n_blocks = (p.c_out + BN - 1) / BN;
    const int n0 = (blockIdx.x % n_blocks) * BN;
    int tile = blockIdx.x / n_blocks;
    const int wo0 = (tile % tiles_w) * tw;
    tile /= tiles_w;
    const int ho0 = (tile % tiles_h) * th, to = tile / tiles_h;
    const int cblocks = p.c_in / BK, groups = p.kt * cblocks, steps = groups * 9;
    const int64_t k_dim = (int64_t)p.kt * 9 * p.c_in;
    const bf16* x = dptr<const bf16>(p.x);

    // group g = (temporal tap it, channel block cb): its halo, zeros where it reads padding
    auto load_halo = [&](int g, bf16* h_s) {
        const int it = g / cblocks, c0 = (g % cblocks) * BK;
        const int ti = source_index(to, it, p.st, p.pt, p.t, 0);
        for (int q = tid; q < halo_positions * kChunks; q += kThreads) {
            const int pos = q / kChunks, kc = (q % kChunks) * 8;
            const int hi = source_index(ho0, pos / hw, 1, p.ph, p.h, p.reflect);
            const int wi = source_index(wo0, pos % hw, 1, p.pw, p.w_in, p.reflect);
            const bool ok = ti >= 0 && hi >= 0 && hi < p.h && wi >= 0 && wi < p.w_in;
            const int64_t px = ((int64_t)ti * p.h + hi) * p.w_in + wi;
            cp_async16(h_s + pos * kLd + kc, ok ? x + px * p.c_in + c0 + kc : x, ok);
        }
    };
    auto load_step = [&](int s) {
        const int g = s / 9, tap = s % 9;
        if (tap == 0) load_halo(g, halos + (g % 2) * kHaloElems);
        const int it = g / cblocks, c0 = (g % cblocks) * BK;
        const int64_t k0 = (int64_t)(it * 9 + tap) * p.c_in + c0;
        load_weight_tile<BN, BK, kThreads, kLd>(p, weights + (s % STAGES) * kWeightElems, n0, k0, k_dim);
    };

    const int wm = (warp % kWarpsM) * 64, wn = (warp / kWarpsM) * kWarpN;
    const int a_row = (lane % 8) + ((lane / 8) % 2) * 8, a_col = (lane / 16) * 8;
    const int b_row = (lane / 16) * 8 + (lane % 8), b_col = ((lane / 8) % 2) * 8;
    int a_pos[4];  // halo position of this lane's A row in m16 tile i at tap (0, 0)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int m = wm + i * 16 + a_row;
        a_pos[i] = (m / tw) * hw + m % tw;
    }
    float acc[4][kNTiles][4] = {};

    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < steps) load_step(s);
        cp_async_commit();
    }
    for (int step = 0; step < steps; ++step) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        if (step + STAGES - 1 < steps) load_step(step + STAGES - 1);
        cp_async_commit();
        const int tap = step % 9, offset = (tap / 3) * hw + tap % 3;
        const bf16* h_s = halos + ((step / 9) % 2) * kHaloElems + a_col;
        const bf16* const a_rows[4] = {h_s + (a_pos[0] + offset) * kLd, h_s + (a_pos[1] + offset) * kLd,
                                       h_s + (a_pos[2] + offset) * kLd, h_s + (a_pos[3] + offset) * kLd};
        const bf16* b_s = weights + (step % STAGES) * kWeightElems;
        warp_mma_step<BK, kNTiles, kLd>(acc, a_rows, b_s + (wn + b_row) * kLd + b_col);
    }
    cp_async_wait<0>();
    __syncthreads();
    store_tile<BM, BN, kNTiles>(p, acc, halos, n0, wm, wn, [&](int r) -> int64_t {
        const int ho = ho0 + r / tw, wo = wo0 + r % tw;
        return ho < p.h_out && wo < p.w_out ? ((int64_t)to * p.h_out + ho) * p.w_out + wo : -1;
    });
}

// K-steps of 32 channels in 4 stages (80 KB at BM = BN = 128: fits every sm_80+ part), of 64 in
// 3 stages (111 KB at BM = BN = 128: sm_80 and sm_90 only; the launcher checks the device's
// limit), or of 16 in 4 stages (49 KB). BM = 256 (8 warps, 166 KB at BN = 128), 64-channel K-steps
// only: it reads each weight tile once per 256 positions instead of 128, which wins from 256 input
// channels up (`sana bench conv`, 2026-12-03: 256→256 7.10 vs 7.43 ms); with 32-channel K-steps it
// was never the fastest path on any shape and was dropped.
#define CONV3D_IGEMM(BM, BN, BK, STAGES)                                                 \
    extern "C" __global__ void __launch_bounds__(BM) conv3d_igemm_m##BM##_n##BN##_k##BK##_bf16( \
        const ConvGemmParams p) {                                                        \
        conv3d_igemm<BM, BN, BK, STAGES>(p);                                             \
    }
CONV3D_IGEMM(128, 64, 32, 4)
CONV3D_IGEMM(128, 96, 32, 4)
CONV3D_IGEMM(128, 128, 32, 4)
CONV3D_IGEMM(128, 64, 64, 3)
CONV3D_IGEMM(128, 96, 64, 3)
CONV3D_IGEMM(128, 128, 64, 3)
// 16-channel K-steps: the LTX-2 encoder's conv_in (48 = 3 × 4 × 4 patchified channels).
CONV3D_IGEMM(128, 64, 16, 4)
CONV3D_IGEMM(128, 96, 16, 4)
CONV3D_IGEMM(128, 128, 16, 4)
// 256 positions per block: 256 and more input channels.
CONV3D_IGEMM(256, 64, 64, 3)
CONV3D_IGEMM(256, 96, 64, 3)
CONV3D_IGEMM(256, 128, 64, 3)
// Halo-tiled: 32-channel K-steps, 4 weight stages (2 × 21 KB halos + 4 × 10 KB at BN = 128).
#define CONV3D_HALO(BM, BN, BK, STAGES)                                                    \
    extern "C" __global__ void __launch_bounds__(BM) conv3d_halo_m##BM##_n##BN##_k##BK##_bf16( \
        const ConvGemmParams p) {                                                          \
        conv3d_halo<BM, BN, BK, STAGES>(p);                                                \
    }
CONV3D_HALO(128, 64, 32, 4)
CONV3D_HALO(128, 96, 32, 4)
CONV3D_HALO(128, 128, 32, 4)
