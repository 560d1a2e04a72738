// Softmax cross-attention of the video tokens to the caption (MODEL.md §2.6), fused:
// out = softmax(Q·Kᵀ/√d + key_bias)·V per (sample, head), on the bf16 tensor cores (WMMA,
// f32 accumulation), the scores never leaving shared memory.
//
// Grid (⌈N/64⌉, H, B), 128 threads = 4 warps, each warp 16 query rows. The head dim is padded
// to dp = ⌈d/16⌉·16 with zeros in shared memory (so any d ≤ 128 works) and the keys to
// Lp = ⌈L/64⌉·64 (padding keys get −∞). Phases: Q tile → smem; for each 64-key tile, K tile →
// smem, S = Q·Kᵀ into the warp's f32 score rows; row softmax in f32 (one warp per row, the bf16
// probabilities written over the start of their own score row); for each 64-key tile, V tile →
// smem, O += P·V in registers; O → smem → bf16 output.
// Dynamic shared memory: Q and K/V tiles 2·64·(dp+8)·2 bytes + key bias Lp·4 + scores
// 64·(Lp+4)·4 (L ≤ 512: ≤ 169 KB). Row strides are padded so wmma tiles avoid bank conflicts.
// Per call: reads Q once and K, V once per query tile (from L2), writes the output once;
// 4·N·L·d FLOPs per head. v1 (cuBLASLt scores in f32 + a softmax kernel + cuBLASLt P·V) took
// 1.5 ms per block at 720p on the H200; see BENCHMARKS.md.
#include <mma.h>
#include "common.cuh"

using namespace nvcuda;

static constexpr int kWarps = 4;
static constexpr int kThreads = kWarps * 32;
static constexpr int kQueries = kWarps * 16;  // query rows per block
static constexpr int kKeyTile = 64;

typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> FragA;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> FragBT;  // Kᵀ from row-major K
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> FragB;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> FragC;

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

extern "C" __global__ void __launch_bounds__(kThreads) cross_attention_bf16(const CrossAttnParams p) {
    extern __shared__ __align__(32) unsigned char smem_raw[];
    // smem row strides padded off a multiple of 32 banks: dp + 8 bf16 (16 bytes), lp + 4 floats
    const int d = p.head_dim, dp = p.padded_head_dim, lp = p.padded_l, width = p.heads * d;
    const int ldt = dp + 8, lds = lp + 4;
    const int h = blockIdx.y, b = blockIdx.z, q0 = blockIdx.x * kQueries;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    bf16* q_s = reinterpret_cast<bf16*>(smem_raw);                   // [kQueries][ldt]
    bf16* kv_s = q_s + kQueries * ldt;                               // [kKeyTile][ldt]
    float* bias_s = reinterpret_cast<float*>(kv_s + kKeyTile * ldt);  // [lp]
    float* s_all = bias_s + lp;                                      // [kQueries][lds]
    float* s_w = s_all + warp * 16 * lds;                            // this warp's 16 rows
    bf16* p_w = reinterpret_cast<bf16*>(s_w);                        // probabilities, row stride 2·lds

    const bf16* q = dptr<const bf16>(p.q) + ((int64_t)b * p.n + q0) * width + h * d;
    const bf16* k = dptr<const bf16>(p.k) + (int64_t)b * p.l * width + h * d;
    const bf16* v = dptr<const bf16>(p.v) + (int64_t)b * p.l * width + h * d;
    // 16-byte loads need 16-byte aligned rows: d and D multiples of 8 (base pointers are 256-aligned)
    const bool vec = (d % 8 == 0) && (width % 8 == 0);
    load_tile(q_s, q, width, kQueries, min(kQueries, p.n - q0), d, dp, ldt, vec);
    // key bias once per block; −∞ for the padding keys
    for (int j = threadIdx.x; j < lp; j += kThreads)
        bias_s[j] = j < p.l ? dptr<const float>(p.key_bias)[(int64_t)b * p.l + j] : neg_inf();

    // S = Q·Kᵀ, one 64-key tile at a time
    for (int kt = 0; kt < lp; kt += kKeyTile) {
        __syncthreads();  // q_s ready / previous K tile consumed
        load_tile(kv_s, k + (int64_t)kt * width, width, kKeyTile, p.l - kt, d, dp, ldt, vec);
        __syncthreads();
        for (int j = 0; j < kKeyTile / 16; ++j) {
            FragC acc;
            wmma::fill_fragment(acc, 0.0f);
            for (int kk = 0; kk < dp; kk += 16) {
                FragA a;
                FragBT bt;
                wmma::load_matrix_sync(a, q_s + warp * 16 * ldt + kk, ldt);
                wmma::load_matrix_sync(bt, kv_s + j * 16 * ldt + kk, ldt);
                wmma::mma_sync(acc, a, bt, acc);
            }
            wmma::store_matrix_sync(s_w + kt + j * 16, acc, lds, wmma::mem_row_major);
        }
    }
    __syncwarp();

    // softmax over each of the warp's 16 rows; P (bf16) overwrites the start of its own row
    static constexpr int kMaxPerLane = 512 / 32;
    for (int r = 0; r < 16; ++r) {
        float* row = s_w + r * lds;
        float vals[kMaxPerLane];
        float max_v = neg_inf();
#pragma unroll
        for (int i = 0; i < kMaxPerLane; ++i) {
            const int j = lane + 32 * i;
            vals[i] = (j < lp) ? row[j] * p.scale + bias_s[j] : neg_inf();
            max_v = fmaxf(max_v, vals[i]);
        }
        for (int o = 16; o > 0; o >>= 1) max_v = fmaxf(max_v, __shfl_xor_sync(0xffffffffu, max_v, o));
        float total = 0.0f;
#pragma unroll
        for (int i = 0; i < kMaxPerLane; ++i) {
            vals[i] = (lane + 32 * i) < p.l ? __expf(vals[i] - max_v) : 0.0f;
            total += vals[i];
        }
        const float inv = 1.0f / warp_sum(total);
        __syncwarp();  // every lane has read the row before it is overwritten
        bf16* prow = p_w + r * 2 * lds;
#pragma unroll
        for (int i = 0; i < kMaxPerLane; ++i) {
            const int j = lane + 32 * i;
            if (j < lp) prow[j] = to_bf16(vals[i] * inv);
        }
    }
    __syncwarp();

    // O = P·V, one 64-key tile at a time; dp/16 accumulator tiles per warp
    static constexpr int kMaxOutTiles = 128 / 16;
    FragC o[kMaxOutTiles];
#pragma unroll
    for (int c = 0; c < kMaxOutTiles; ++c) wmma::fill_fragment(o[c], 0.0f);
    for (int kt = 0; kt < lp; kt += kKeyTile) {
        __syncthreads();  // previous V tile consumed (and, first time, every K tile)
        load_tile(kv_s, v + (int64_t)kt * width, width, kKeyTile, p.l - kt, d, dp, ldt, vec);
        __syncthreads();
        for (int kk = 0; kk < kKeyTile; kk += 16) {
            FragA a;
            wmma::load_matrix_sync(a, p_w + kt + kk, 2 * lds);
#pragma unroll
            for (int c = 0; c < kMaxOutTiles; ++c) {
                if (c * 16 >= dp) break;
                FragB bv;
                wmma::load_matrix_sync(bv, kv_s + kk * ldt + c * 16, ldt);
                wmma::mma_sync(o[c], a, bv, o[c]);
            }
        }
    }
    __syncwarp();
    // O → the warp's score rows (free now) → bf16 output rows that exist
#pragma unroll
    for (int c = 0; c < kMaxOutTiles; ++c) {
        if (c * 16 >= dp) break;
        wmma::store_matrix_sync(s_w + c * 16, o[c], lds, wmma::mem_row_major);
    }
    __syncwarp();
    bf16* out = dptr<bf16>(p.out) + ((int64_t)b * p.n + q0 + warp * 16) * width + h * d;
    const int rows = min(16, p.n - q0 - warp * 16);
    for (int i = lane; i < 16 * d; i += 32) {
        const int r = i / d, c = i % d;
        if (r < rows) out[(int64_t)r * width + c] = to_bf16(s_w[r * lds + c]);
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
