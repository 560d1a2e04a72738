// Softmax cross-attention of the video tokens to the caption (MODEL.md §2.6), fused in the
// manner of FlashAttention-2: out = softmax(Q·Kᵀ/√d + key_bias)·V per (sample, head), on the
// bf16 tensor cores (mma.sync m16n8k16, f32 accumulation), with an online softmax so neither the
// scores nor the probabilities leave registers.
//
// Grid (⌈N/128⌉, H, B), 256 threads = 8 warps, each warp 16 query rows. Per 32-key tile: K and V
// → shared memory (the block's warps share them; two stages, the next tile's cp.async in flight
// during this tile's products); S = Q·Kᵀ in registers (Q and K fragments by
// ldmatrix); running row max m and sum l updated, O rescaled by exp(m_old − m_new); P (bf16,
// repacked from the S accumulators in registers as the A operand) · V (ldmatrix.trans) added
// into O. Finally O / l → the warp's Q rows of shared memory → bf16 output.
// The head dim is padded to dp = ⌈d/16⌉·16 with zeros in shared memory (any d ≤ 112) and the
// keys to Lp = ⌈L/32⌉·32 (padding keys get a −∞ bias, so probability 0).
// Dynamic shared memory: (128 + 4·32)·(dp + 8)·2 bytes + Lp·4 (62 KB at d = 112, L = 300). Row
// strides of dp + 8 bf16 keep the ldmatrix row reads conflict-free.
// Per call: reads Q once and K, V once per 128 queries (from L2), writes the output once;
// 4·N·L·d FLOPs per head. v3 (WMMA, all scores of 64 queries in shared memory: 115 KB, one block
// per SM) took 1.5 ms per block at 720p on the H200; see BENCHMARKS.md.
#include "common.cuh"

static constexpr int kWarps = 8;
static constexpr int kThreads = kWarps * 32;
static constexpr int kQueries = kWarps * 16;  // query rows per block
static constexpr int kKeyTile = 32;  // 64 needs 16 more registers for S: spills on sm_86/89
// 8-column output tiles at the largest head dim, 112 (the released models'): at 128 the O
// accumulators no longer fit two blocks' registers per SM without spilling; the launcher sends
// larger heads to the unfused path.
static constexpr int kMaxHeadDim = 112;
static constexpr int kMaxOutTiles = kMaxHeadDim / 8;

// rows × dp tile of a (rows, D) bf16 head slice into smem, zero beyond `valid_rows` and `d`.
// 16-byte loads when every row start is 16-byte aligned and d is a multiple of 8 (the released
// d = 112 is); element loads otherwise (the tiny test models).
__device__ __forceinline__ void load_tile(bf16* dst, const bf16* src, int64_t row_stride, int rows, int valid_rows,
                                          int d, int dp, int ld, bool vec) {
    if (vec) {
        const int chunks = dp / 8;  // 8 bf16 per 16-byte chunk
        for (int i = threadIdx.x; i < rows * chunks; i += kThreads) {
            const int r = i / chunks, c = (i - r * chunks) * 8;
            uint4 val = make_uint4(0, 0, 0, 0);
            if (r < valid_rows && c < d) val = *reinterpret_cast<const uint4*>(src + (int64_t)r * row_stride + c);
            *reinterpret_cast<uint4*>(dst + r * ld + c) = val;
        }
        return;
    }
    for (int i = threadIdx.x; i < rows * dp; i += kThreads) {
        const int r = i / dp, c = i % dp;
        dst[r * ld + c] = (r < valid_rows && c < d) ? src[(int64_t)r * row_stride + c] : to_bf16(0.0f);
    }
}

// 2^x (MUFU.EX2, flushing denormal results to zero: a probability below 2^-126 of the row max)
__device__ __forceinline__ float exp2_ftz(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

static constexpr float kLog2e = 1.4426950408889634f;

// max over the 4 lanes of a quad (the lanes holding one row of an mma accumulator)
__device__ __forceinline__ float quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

extern "C" __global__ void __launch_bounds__(kThreads, 2) cross_attention_bf16(const CrossAttnParams p) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    const int d = p.head_dim, dp = p.padded_head_dim, lp = p.padded_l, width = p.heads * d, ldt = dp + 8;
    const int h = blockIdx.y, b = blockIdx.z, q0 = blockIdx.x * kQueries;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    bf16* q_s = reinterpret_cast<bf16*>(smem_raw);  // [kQueries][ldt]
    bf16* kv_s = q_s + kQueries * ldt;              // 2 stages × (K, V) × [kKeyTile][ldt]
    float* bias_s = reinterpret_cast<float*>(kv_s + 4 * kKeyTile * ldt);  // [lp]

    const bf16* q = dptr<const bf16>(p.q) + ((int64_t)b * p.n + q0) * width + h * d;
    const bf16* k = dptr<const bf16>(p.k) + (int64_t)b * p.l * width + h * d;
    const bf16* v = dptr<const bf16>(p.v) + (int64_t)b * p.l * width + h * d;
    // 16-byte loads need 16-byte aligned rows: d and D multiples of 8 (base pointers are 256-aligned)
    const bool vec = (d % 8 == 0) && (width % 8 == 0);
    // Row × 16-byte-chunk slots with power-of-two strides (16 chunk slots per row, dp ≤ 128), so
    // the index math is shifts and masks: runtime divisions by the chunk count were a third of
    // the kernel's instructions.
    static_assert(kMaxHeadDim / 8 <= 16, "16 chunk slots per row");
    if (vec) {  // Q by cp.async, in the first tile's group
        const int q_rows = min(kQueries, p.n - q0);
        for (int slot = threadIdx.x; slot < kQueries * 16; slot += kThreads) {
            const int r = slot >> 4, c = slot & 15;
            if (8 * c >= dp) continue;
            const bool valid = r < q_rows && 8 * c < d;
            cp_async16(q_s + r * ldt + 8 * c, valid ? q + (int64_t)r * width + 8 * c : q, valid);
        }
    } else {
        load_tile(q_s, q, width, kQueries, min(kQueries, p.n - q0), d, dp, ldt, false);
    }
    // The softmax runs in base 2: scores and key bias pre-multiplied by log2(e), so each
    // probability is one FADD and one EX2 (__expf's multiply by log2(e) is folded into the
    // score's scaling FMA).
    for (int j = threadIdx.x; j < lp; j += kThreads)
        bias_s[j] = j < p.l ? dptr<const float>(p.key_bias)[(int64_t)b * p.l + j] * kLog2e : neg_inf();
    const float scale_log2 = p.scale * kLog2e;

    // PTX fragment layouts: an accumulator's lane holds rows g and g + 8, columns 2·qd and 2·qd + 1
    const int g = lane / 4, qd = lane % 4;
    // ldmatrix row addresses. A (Q, 16×16): matrices (rows 0–7 | 8–15) × (cols 0–7 | 8–15), rows
    // fastest. B from K (keys × dims, non-transposed): two 8-key n-tiles × two 8-dim k-halves.
    // B from V (keys × dims, transposed): two 8-key k-halves × two 8-dim n-tiles.
    const int a_row = (lane % 8) + ((lane / 8) % 2) * 8, a_col = (lane / 16) * 8;
    const int bk_row = (lane / 16) * 8 + (lane % 8), bk_col = ((lane / 8) % 2) * 8;
    const int bv_row = ((lane / 8) % 2) * 8 + (lane % 8), bv_col = (lane / 16) * 8;
    const bf16* q_w = q_s + warp * 16 * ldt;
    const int ksteps = dp / 16, opairs = dp / 16;

    float o[kMaxOutTiles][4];
#pragma unroll
    for (int t = 0; t < kMaxOutTiles; ++t) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;
    float m_run[2] = {neg_inf(), neg_inf()}, l_run[2] = {0.0f, 0.0f};

    // K/V tile `it` → stage it % 2: cp.async when rows are 16-byte aligned, so the next tile's
    // loads run under this tile's products (synchronous loads were the kernel's largest stall)
    auto fetch = [&](int it) {
        const int kt = it * kKeyTile;
        bf16* stage = kv_s + (it & 1) * 2 * kKeyTile * ldt;
        if (vec) {
#pragma unroll
            for (int j = 0; j < 2 * kKeyTile * 16 / kThreads; ++j) {  // slots (K | V, row, chunk)
                const int slot = threadIdx.x + j * kThreads, c = (slot & 15) * 8, r = slot >> 4;
                if (c >= dp) continue;
                const int row = r & (kKeyTile - 1);
                const bool valid = kt + row < p.l && c < d;
                const bf16* src = (r < kKeyTile ? k : v) + (valid ? (int64_t)(kt + row) * width + c : 0);
                cp_async16(stage + r * ldt + c, src, valid);
            }
        } else {
            load_tile(stage, k + (int64_t)kt * width, width, kKeyTile, p.l - kt, d, dp, ldt, false);
            load_tile(stage + kKeyTile * ldt, v + (int64_t)kt * width, width, kKeyTile, p.l - kt, d, dp, ldt, false);
        }
        cp_async_commit();
    };
    const int tiles = lp / kKeyTile;
    fetch(0);
    for (int it = 0; it < tiles; ++it) {
        const int kt = it * kKeyTile;
        if (it + 1 < tiles) {
            fetch(it + 1);  // into the stage the previous iteration finished with (barrier below)
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();  // tile `it` visible to every warp (first time: Q and the bias too)
        const bf16* k_s = kv_s + (it & 1) * 2 * kKeyTile * ldt;
        const bf16* v_s = k_s + kKeyTile * ldt;

        // S (16 × 32) = Q_w · K_tileᵀ: four 8-key accumulators
        float s[kKeyTile / 8][4];
#pragma unroll
        for (int t = 0; t < kKeyTile / 8; ++t) s[t][0] = s[t][1] = s[t][2] = s[t][3] = 0.0f;
        for (int ks = 0; ks < ksteps; ++ks) {
            uint32_t a[4];
            ldmatrix_x4(a, q_w + a_row * ldt + ks * 16 + a_col);
#pragma unroll
            for (int np = 0; np < kKeyTile / 16; ++np) {
                uint32_t kb[4];
                ldmatrix_x4(kb, k_s + (np * 16 + bk_row) * ldt + ks * 16 + bk_col);
                mma_16816(s[2 * np], a, kb[0], kb[1]);
                mma_16816(s[2 * np + 1], a, kb[2], kb[3]);
            }
        }

        // online softmax: scale + key bias, the tile's row max, rescale what was accumulated
        float tile_max[2] = {neg_inf(), neg_inf()};
#pragma unroll
        for (int t = 0; t < kKeyTile / 8; ++t)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                s[t][e] = fmaf(s[t][e], scale_log2, bias_s[kt + t * 8 + qd * 2 + (e & 1)]);
                tile_max[e >> 1] = fmaxf(tile_max[e >> 1], s[t][e]);
            }
        float base[2], corr[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const float m_new = fmaxf(m_run[r], quad_max(tile_max[r]));
            base[r] = m_new == neg_inf() ? 0.0f : m_new;  // a row with no finite score so far
            corr[r] = exp2_ftz(m_run[r] - base[r]);        // 0 on the first tile
            m_run[r] = m_new;
        }
        float tile_sum[2] = {0.0f, 0.0f};
#pragma unroll
        for (int t = 0; t < kKeyTile / 8; ++t)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                s[t][e] = exp2_ftz(s[t][e] - base[e >> 1]);
                tile_sum[e >> 1] += s[t][e];
            }
#pragma unroll
        for (int r = 0; r < 2; ++r) l_run[r] = l_run[r] * corr[r] + tile_sum[r];  // this lane's columns
#pragma unroll
        for (int t = 0; t < kMaxOutTiles; ++t) {
            o[t][0] *= corr[0];
            o[t][1] *= corr[0];
            o[t][2] *= corr[1];
            o[t][3] *= corr[1];
        }

        // O += P · V_tile; P's A fragments are the S accumulators of two adjacent 8-key tiles
#pragma unroll
        for (int kk = 0; kk < kKeyTile / 16; ++kk) {
            const uint32_t a[4] = {pack_bf16x2(s[2 * kk][0], s[2 * kk][1]), pack_bf16x2(s[2 * kk][2], s[2 * kk][3]),
                                   pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                   pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int op = 0; op < kMaxOutTiles / 2; ++op) {
                if (op < opairs) {
                    uint32_t vb[4];
                    ldmatrix_x4_trans(vb, v_s + (kk * 16 + bv_row) * ldt + op * 16 + bv_col);
                    mma_16816(o[2 * op], a, vb[0], vb[1]);
                    mma_16816(o[2 * op + 1], a, vb[2], vb[3]);
                }
            }
        }
        __syncthreads();  // every warp is done with this stage before the next fetch refills it
    }

    // O / l → the warp's own Q rows (no other warp reads them) → bf16 output rows that exist
    const float inv0 = 1.0f / quad_sum(l_run[0]), inv1 = 1.0f / quad_sum(l_run[1]);
    bf16* o_w = q_s + warp * 16 * ldt;
    __syncwarp();
#pragma unroll
    for (int t = 0; t < kMaxOutTiles; ++t) {
        if (t < 2 * opairs) {
            const int col = t * 8 + qd * 2;
            *reinterpret_cast<uint32_t*>(o_w + g * ldt + col) = pack_bf16x2(o[t][0] * inv0, o[t][1] * inv0);
            *reinterpret_cast<uint32_t*>(o_w + (g + 8) * ldt + col) = pack_bf16x2(o[t][2] * inv1, o[t][3] * inv1);
        }
    }
    __syncwarp();
    bf16* out = dptr<bf16>(p.out) + ((int64_t)b * p.n + q0 + warp * 16) * width + h * d;
    const int rows = min(16, p.n - q0 - warp * 16);
    if (vec) {  // 16-byte stores, slots (row, chunk)
#pragma unroll
        for (int j = 0; j < 16 * 16 / 32; ++j) {
            const int slot = lane + 32 * j, r = slot >> 4, c = (slot & 15) * 8;
            if (r < rows && c < d)
                *reinterpret_cast<uint4*>(out + (int64_t)r * width + c) = *reinterpret_cast<const uint4*>(o_w + r * ldt + c);
        }
        return;
    }
    for (int i = lane; i < 16 * d; i += 32) {
        const int r = i / d, c = i % d;
        if (r < rows) out[(int64_t)r * width + c] = o_w[r * ldt + c];
    }
}

// Row softmax for attention too large for the fused kernel (L > 512 keys or head dim > 128: the
// autoencoders' spatial attention over every position of a frame): probs = softmax(scale·scores
// + key_bias) per row, f32 in, bf16 out. One block per row; the row is read three times (max,
// sum, write), from L2 at the sizes that use it (L = 6240: 25 KB).
extern "C" __global__ void __launch_bounds__(256) softmax_rows_bf16(const SoftmaxParams p) {
    const float* s = dptr<const float>(p.scores) + (int64_t)blockIdx.x * p.cols;
    const float* bias = dptr<const float>(p.key_bias);
    bf16* out = dptr<bf16>(p.probs) + (int64_t)blockIdx.x * p.cols;
    float m = neg_inf();
    for (int c = threadIdx.x; c < p.cols; c += blockDim.x) m = fmaxf(m, s[c] * p.scale + bias[c]);
    m = block_max(m);
    float z = 0.0f;
    for (int c = threadIdx.x; c < p.cols; c += blockDim.x) z += __expf(s[c] * p.scale + bias[c] - m);
    const float inv = 1.0f / block_sum(z);
    for (int c = threadIdx.x; c < p.cols; c += blockDim.x)
        out[c] = __float2bfloat16(__expf(s[c] * p.scale + bias[c] - m) * inv);
}
