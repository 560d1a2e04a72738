// ReLU linear attention with 3D RoPE (MODEL.md §2.4–2.5), from the fused qkv projection.
//
//   φq = ReLU(RMSNorm(q)·w_q), φk = ReLU(RMSNorm(k)·w_k)   (RMS over all heads of a token)
//   q̃ = RoPE(φq), k̃ = RoPE(φk)                              (interleaved channel pairs)
//   S = Σ_j v_j k̃_jᵀ (d×d), z = Σ_j φk_j (d)                 per (sample, head), f32
//   out_i = S q̃_i / (φq_i · z + eps)
//
// Four kernels (launcher: src/backend/cuda/linear_attn.rs); the features are computed where they
// are consumed and never stored:
//   linear_attn_inv_rms_bf16  grid B·N, 256 threads: 1/rms of each token's q and k rows (the RMS
//                             spans every head, so it is a pass of its own).
//   linear_attn_state_bf16    grid (chunks, H, B), 8 warps: one run of `chunk_rows` tokens of one
//                             head. Per 32-token tile, k̃ and v go to shared memory (TF32-rounded)
//                             and the warps accumulate the chunk's S (dp × dp, a warp per two
//                             row tiles × half the column tiles) on the TF32 tensor cores (WMMA m16n16k8, f32
//                             accumulation); z in registers. Writes the chunk's S and z.
//   linear_attn_reduce_state  grid (⌈dp²/256⌉, B·H): S and z summed over chunks, in chunk order
//                             (deterministic); S stored TF32-rounded, the output product's operand.
//   linear_attn_output_bf16   grid (⌈N/64⌉, H, B), 4 warps of 16 tokens: a warp computes its
//                             tokens' q̃ (shared memory) and den = φq·z (warp sum); num = Q̃ Sᵀ on
//                             the tensor cores, a pair of warps per 32 tokens splitting the
//                             columns; then out = num / (den + eps).
// dp = ⌈d/16⌉·16 (≤ 128): channels past d are zero in shared memory and in S.
//
// Per call and token: reads k, v (4·D bytes) and q (2·D) once each after the inv_rms pass reads
// q, k; writes the output (2·D). S and the per-chunk partials are (B·H·chunks·dp²) f32, a few MB.
// The previous version stored q̃, k̃, v in f32 (12·D bytes per token, 0.7 GB at 720p) for two
// cuBLASLt TF32 products and took 1.5 ms per block at 720p on the H200; see BENCHMARKS.md.
#include <mma.h>
#include "common.cuh"

using namespace nvcuda;

static constexpr int kThreads = 256;
static constexpr int kMaxHeadDim = 128;
static constexpr int kMaxTiles = kMaxHeadDim / 16;  // 16-wide column tiles of S
static constexpr int kHalfTiles = kMaxTiles / 2;    // column tiles per warp in both products
static constexpr int kLd = kMaxHeadDim + 4;         // smem row stride bound (floats), off 32 banks
static constexpr int kStateTokens = 32;             // tokens per shared-memory tile
static constexpr int kStateThreads = 256;
static constexpr int kOutWarps = 4;
static constexpr int kOutThreads = kOutWarps * 32;

typedef wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> FragAcol;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> FragArow;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> FragBrow;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> FragBcol;
typedef wmma::fragment<wmma::accumulator, 16, 16, 8, float> FragC;

// inv_rms[row] = (1/rms(q_row), 1/rms(k_row))
extern "C" __global__ void __launch_bounds__(kThreads) linear_attn_inv_rms_bf16(const LinearAttnParams p) {
    const int d_model = p.heads * p.head_dim;
    const bf16* row = dptr<const bf16>(p.qkv) + (int64_t)blockIdx.x * 3 * d_model;
    float sq = 0.0f, sk = 0.0f;
    for (int c = threadIdx.x; c < d_model; c += blockDim.x) {
        const float q = to_f32(row[c]), k = to_f32(row[d_model + c]);
        sq += q * q;
        sk += k * k;
    }
    sq = block_sum(sq);
    sk = block_sum(sk);
    if (threadIdx.x == 0) {
        float* out = dptr<float>(p.inv_rms) + 2 * (int64_t)blockIdx.x;
        out[0] = rsqrtf(sq / d_model + p.norm_eps);
        out[1] = rsqrtf(sk / d_model + p.norm_eps);
    }
}

// φ = ReLU(x·inv_rms·w) of a channel pair.
__device__ __forceinline__ float2 feature_pair(__nv_bfloat162 x, __nv_bfloat162 w, float inv_rms) {
    const float2 xf = __bfloat1622float2(x), wf = __bfloat1622float2(w);
    return make_float2(fmaxf(xf.x * inv_rms * wf.x, 0.0f), fmaxf(xf.y * inv_rms * wf.y, 0.0f));
}

// (a·cos − b·sin, a·sin + b·cos)
__device__ __forceinline__ float2 rotate(float2 v, float c, float s) {
    return make_float2(v.x * c - v.y * s, v.x * s + v.y * c);
}

__device__ __forceinline__ void store_tf32_pair(float* dst, float2 v) {
    dst[0] = wmma::__float_to_tf32(v.x);
    dst[1] = wmma::__float_to_tf32(v.y);
}

extern "C" __global__ void __launch_bounds__(kStateThreads, 2) linear_attn_state_bf16(const LinearAttnParams p) {
    __shared__ __align__(32) float k_s[kStateTokens * kLd];  // [token][channel]: k̃
    __shared__ __align__(32) float v_s[kStateTokens * kLd];  // [token][channel]: v
    const int d = p.head_dim, dp = p.padded_head_dim, half = d / 2, halfp = dp / 2, ld = dp + 4;
    const int pairs = p.heads * half;  // channel pairs per token and q/k/v section
    const int chunk = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int64_t bh = (int64_t)b * p.heads + h;
    const int t_begin = chunk * p.chunk_rows, t_end = min(p.n, t_begin + p.chunk_rows);
    // fill mapping: each thread keeps one channel pair and walks token rows, so z stays in registers
    const int rows_per_pass = kStateThreads / halfp;
    const int pair = threadIdx.x % halfp, trow = threadIdx.x / halfp;
    const bool filler = trow < rows_per_pass, real_pair = pair < half;
    const int i = h * half + pair;  // this pair's index within a token's q/k/v section
    const __nv_bfloat162* __restrict__ qkv = dptr<const __nv_bfloat162>(p.qkv);
    const __nv_bfloat162 w_k = real_pair ? dptr<const __nv_bfloat162>(p.norm_k)[i] : __floats2bfloat162_rn(0.f, 0.f);
    const float2* __restrict__ inv_rms = dptr<const float2>(p.inv_rms);
    const float* __restrict__ cos_t = dptr<const float>(p.cos);
    const float* __restrict__ sin_t = dptr<const float>(p.sin);
    float2 z = make_float2(0.0f, 0.0f);

    // warp w owns S's row tiles 2⌊w/2⌋, 2⌊w/2⌋+1 and half of its column tiles: each fragment it
    // loads serves two products (a row of tiles per warp loaded 8 fragments per 7 products)
    const int warp = threadIdx.x / 32, tiles = dp / 16;
    const int row_tile = (warp / 2) * 2, first_col = (warp % 2) * kHalfTiles;
    FragC acc[2][kHalfTiles];
#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int j = 0; j < kHalfTiles; ++j) wmma::fill_fragment(acc[m][j], 0.0f);

    for (int t0 = t_begin; t0 < t_end; t0 += kStateTokens) {
        const int count = min(kStateTokens, t_end - t0);
        if (filler) {
            // unrolled to a fixed bound (rows_per_pass ≥ 4 as halfp ≤ 64), so the loads of all of a
            // thread's rows are in flight together: one row at a time was latency-bound (0.58 ms
            // per 720p call)
#pragma unroll
            for (int it = 0; it < kStateTokens / 4; ++it) {
                const int t = trow + it * rows_per_pass;
                if (t >= kStateTokens) break;
                float2 kr = make_float2(0.0f, 0.0f), vv = make_float2(0.0f, 0.0f);
                if (t < count && real_pair) {
                    const int64_t token = (int64_t)b * p.n + t0 + t;
                    const __nv_bfloat162* row = qkv + token * 3 * pairs;
                    const float2 fk = feature_pair(row[pairs + i], w_k, inv_rms[token].y);
                    const int64_t angle = (int64_t)(t0 + t) * half + pair;
                    kr = rotate(fk, cos_t[angle], sin_t[angle]);
                    vv = __bfloat1622float2(row[2 * pairs + i]);
                    z.x += fk.x;
                    z.y += fk.y;
                }
                store_tf32_pair(&k_s[t * ld + 2 * pair], kr);
                store_tf32_pair(&v_s[t * ld + 2 * pair], vv);
            }
        }
        __syncthreads();
        // S(i, j) += Σ_t v(t, i) k̃(t, j): A = Vᵀ (col-major view of v_s), B = K̃ (row-major k_s)
        if (row_tile < tiles) {
#pragma unroll 1  // unrolled, the B loads of later steps are hoisted and the accumulators spill
            for (int ks = 0; ks < kStateTokens / 8; ++ks) {
                FragAcol a[2];
#pragma unroll
                for (int m = 0; m < 2; ++m)
                    if (row_tile + m < tiles) wmma::load_matrix_sync(a[m], v_s + ks * 8 * ld + (row_tile + m) * 16, ld);
#pragma unroll
                for (int j = 0; j < kHalfTiles; ++j) {
                    if (first_col + j < tiles) {
                        FragBrow bk;
                        wmma::load_matrix_sync(bk, k_s + ks * 8 * ld + (first_col + j) * 16, ld);
#pragma unroll
                        for (int m = 0; m < 2; ++m)
                            if (row_tile + m < tiles) wmma::mma_sync(acc[m][j], a[m], bk, acc[m][j]);
                    }
                }
            }
        }
        __syncthreads();
    }

    const int64_t part = bh * p.chunks + chunk;
#pragma unroll
    for (int m = 0; m < 2; ++m) {
        if (row_tile + m >= tiles) continue;
        float* s = dptr<float>(p.partial) + (part * dp + (row_tile + m) * 16) * dp;
#pragma unroll
        for (int j = 0; j < kHalfTiles; ++j)
            if (first_col + j < tiles) wmma::store_matrix_sync(s + (first_col + j) * 16, acc[m][j], dp, wmma::mem_row_major);
    }
    // z: the filler rows' sums, added in row order through k_s (free after the last barrier)
    if (filler) {
        k_s[trow * ld + 2 * pair] = z.x;
        k_s[trow * ld + 2 * pair + 1] = z.y;
    }
    __syncthreads();
    for (int c = threadIdx.x; c < dp; c += blockDim.x) {
        float sum = 0.0f;
        for (int r = 0; r < rows_per_pass; ++r) sum += k_s[r * ld + c];
        dptr<float>(p.partial_z)[part * dp + c] = sum;
    }
}

// S[bh] = Σ_chunk partial[bh, chunk] (dp × dp, TF32-rounded), z[bh] = Σ_chunk partial_z[bh, chunk];
// grid (⌈dp²/256⌉, B·H), one element per thread, so the chunk loads of all threads are in flight
// together.
extern "C" __global__ void __launch_bounds__(kThreads) linear_attn_reduce_state(const LinearAttnParams p) {
    const int dp = p.padded_head_dim, dd = dp * dp;
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t bh = blockIdx.y;
    if (e < dd) {
        const float* partial = dptr<const float>(p.partial) + bh * p.chunks * dd + e;
        float acc = 0.0f;
#pragma unroll 8
        for (int c = 0; c < p.chunks; ++c) acc += partial[(int64_t)c * dd];
        dptr<float>(p.state)[bh * dd + e] = wmma::__float_to_tf32(acc);
    }
    if (blockIdx.x == 0 && threadIdx.x < dp) {
        const float* partial = dptr<const float>(p.partial_z) + bh * p.chunks * dp + threadIdx.x;
        float acc = 0.0f;
        for (int c = 0; c < p.chunks; ++c) acc += partial[(int64_t)c * dp];
        dptr<float>(p.z)[bh * dp + threadIdx.x] = acc;
    }
}

extern "C" __global__ void __launch_bounds__(kOutThreads) linear_attn_output_bf16(const LinearAttnParams p) {
    __shared__ __align__(32) float q_s[kOutWarps * 16 * kLd];  // [token][channel]: q̃, then num
    const int d = p.head_dim, dp = p.padded_head_dim, half = d / 2, halfp = dp / 2, ld = dp + 4;
    const int pairs = p.heads * half, tiles = dp / 16;
    const int h = blockIdx.y, b = blockIdx.z;
    const int64_t bh = (int64_t)b * p.heads + h;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int tok0 = blockIdx.x * (kOutWarps * 16) + warp * 16;  // this warp's first token
    float* qw = q_s + warp * 16 * ld;  // the 16 rows whose q̃ this warp writes and output it stores
    const __nv_bfloat162* __restrict__ qkv = dptr<const __nv_bfloat162>(p.qkv);
    const __nv_bfloat162* __restrict__ norm_q = dptr<const __nv_bfloat162>(p.norm_q);
    const float* __restrict__ z = dptr<const float>(p.z) + bh * dp;
    float den_row = 0.0f;  // lane r < 16 keeps den of token tok0 + r
    // unrolled (halfp ≤ 64: two pairs per lane) so several tokens' loads are in flight at once
#pragma unroll 4
    for (int r = 0; r < 16; ++r) {
        const int t = tok0 + r;
        float den = 0.0f;
#pragma unroll
        for (int it = 0; it < 2; ++it) {
            const int pr = lane + 32 * it;
            if (pr >= halfp) break;
            float2 qr = make_float2(0.0f, 0.0f);
            if (t < p.n && pr < half) {
                const int64_t token = (int64_t)b * p.n + t;
                const int i = h * half + pr;
                const float2 fq = feature_pair(qkv[token * 3 * pairs + i], norm_q[i], dptr<const float2>(p.inv_rms)[token].x);
                den += fq.x * z[2 * pr] + fq.y * z[2 * pr + 1];
                const int64_t angle = (int64_t)t * half + pr;
                qr = rotate(fq, dptr<const float>(p.cos)[angle], dptr<const float>(p.sin)[angle]);
            }
            store_tf32_pair(&qw[r * ld + 2 * pr], qr);
        }
        den = warp_sum(den);
        if (lane == r) den_row = den;
    }
    __syncthreads();  // every warp's q̃ rows written: the products read two warps' rows
    // num(t, i) = Σ_j q̃(t, j) S(i, j): A = Q̃ (row-major), B(j, i) = S(i, j) (col-major view of S).
    // Warp w takes the 32 tokens of warps 2⌊w/2⌋ and 2⌊w/2⌋+1 and half of the 16-column tiles, so
    // every S fragment it loads serves two token tiles (one tile each, all columns, was L1-bound).
    const int group = warp / 2, first_tile = (warp % 2) * kHalfTiles;
    float* qg = q_s + group * 32 * ld;
    FragC acc[2][kHalfTiles];
#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int j = 0; j < kHalfTiles; ++j) wmma::fill_fragment(acc[m][j], 0.0f);
    const float* s = dptr<const float>(p.state) + bh * dp * dp;
    for (int ks = 0; ks < dp / 8; ++ks) {
        FragArow a0, a1;
        wmma::load_matrix_sync(a0, qg + ks * 8, ld);
        wmma::load_matrix_sync(a1, qg + 16 * ld + ks * 8, ld);
#pragma unroll
        for (int j = 0; j < kHalfTiles; ++j) {
            if (first_tile + j < tiles) {
                FragBcol bs;
                wmma::load_matrix_sync(bs, s + (first_tile + j) * 16 * dp + ks * 8, dp);
                wmma::mma_sync(acc[0][j], a0, bs, acc[0][j]);
                wmma::mma_sync(acc[1][j], a1, bs, acc[1][j]);
            }
        }
    }
    __syncthreads();  // both warps of a group are done reading q̃ before num overwrites it
#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int j = 0; j < kHalfTiles; ++j)
            if (first_tile + j < tiles)
                wmma::store_matrix_sync(qg + m * 16 * ld + (first_tile + j) * 16, acc[m][j], ld, wmma::mem_row_major);
    __syncthreads();  // the warp's 16 rows of num come from two warps
    __nv_bfloat162* out = dptr<__nv_bfloat162>(p.out);
    for (int r = 0; r < 16; ++r) {
        const int t = tok0 + r;
        if (t >= p.n) break;
        const float inv = 1.0f / (__shfl_sync(0xffffffffu, den_row, r) + p.attn_eps);
        const int64_t base = ((int64_t)b * p.n + t) * pairs + h * half;
        for (int c2 = lane; c2 < half; c2 += 32)
            out[base + c2] = __floats2bfloat162_rn(qw[r * ld + 2 * c2] * inv, qw[r * ld + 2 * c2 + 1] * inv);
    }
}
