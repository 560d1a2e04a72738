// ReLU linear attention with 3D RoPE (MODEL.md §2.4–2.5), from the fused qkv projection.
//
//   φq = ReLU(RMSNorm(q)·w_q), φk = ReLU(RMSNorm(k)·w_k)   (RMS over all heads of a token)
//   q̃ = RoPE(φq), k̃ = RoPE(φk)                              (interleaved channel pairs)
//   S = Σ_j v_j k̃_jᵀ (d×d), z = Σ_j φk_j (d)                 per (sample, head), f32
//   out_i = S q̃_i / (φq_i · z + eps)
//
// Four kernels (launcher: src/backend/cuda/linear_attn.rs); the features are computed where they
// are consumed and never stored:
//   linear_attn_inv_rms_bf16  a warp per token: 1/rms of its q and k rows (the RMS spans every
//                             head, so it is a pass of its own).
//   linear_attn_state_bf16    grid (chunks, H, B), 8 warps: one run of `chunk_rows` tokens of one
//                             head, in 32-token tiles. Raw k, v and the tile's RoPE angles arrive
//                             by cp.async (two stages: the next tile's copies are in flight while
//                             this one computes); the threads turn k into k̃ in shared memory as
//                             a bf16 pair hi + lo (hi = bf16(k̃), lo = bf16(k̃ − hi): 16 mantissa
//                             bits) and sum z in registers; warp w accumulates row tile w of the
//                             chunk's S = Vᵀ·K̃ with mma.sync m16n8k16 (A = Vᵀ, exact in bf16; the
//                             hi and lo products into one f32 accumulator).
//   linear_attn_reduce_state  grid (dp, B·H): a row of S summed over the chunks in chunk order
//                             (deterministic), then stored in f16 divided by the row's largest
//                             |entry| (the scale kept in f32): f16's 10 mantissa bits without
//                             its range limit. z likewise summed.
//   linear_attn_output_bf16   grid (blocks, H, B), `out_rows` tokens per block, up to 12 warps
//                             (as many as the device's shared memory per block holds: 12 on
//                             sm_90, 4 on sm_86/89): the head's S in shared memory once
//                             per block; each warp takes 16 tokens at a time, its raw q rows,
//                             cos/sin and inv_rms staged by cp.async (the next 16 tokens' copies
//                             issued as soon as this tile's features are made): q̃ (f16) into
//                             its shared tile with den = φq·z (warp sums), num = Q̃·Sᵀ with
//                             mma.sync (f16 operands, f32 accumulation), out = num·scale / (den +
//                             eps) staged through the same tile for 16-byte stores.
// dp = ⌈d/16⌉·16 (≤ 128): channels past d are zero in shared memory and in S. Shared-memory rows
// are dp + 8 elements long, so the eight rows an ldmatrix reads fall in distinct bank groups.
// Range: q̃ is stored in f16, so |q̃| = |RMSNorm(q)·w_q| must stay under 65504 (RMSNorm bounds
// |q·inv_rms| by √D; the released w_q are O(1)).
//
// Per call and token: the inv_rms pass reads q and k (4·D bytes), the state pass k and v (4·D),
// the output pass q (2·D) and writes the output (2·D). S and the per-chunk partials are
// (B·H·chunks·dp²) f32, a few MB. v7 (TF32 WMMA, fragments loaded element by element, S read
// from global per warp) took 1.16 ms per 720p block on the H200; see BENCHMARKS.md.
#include "common.cuh"

static constexpr int kWarps = 8;
static constexpr int kThreads = kWarps * 32;
static constexpr int kMaxHeadDim = 128;
static constexpr int kMaxColTiles = kMaxHeadDim / 8;  // 8-column accumulator tiles of a 16-row band
static constexpr int kTileTokens = 32;                // state kernel: tokens per pipeline stage
static constexpr int kMaxOutWarps = 12;               // output kernel: warps per block at most
static constexpr int kReduceThreads = kMaxHeadDim;

// inv_rms[row] = (1/rms(q_row), 1/rms(k_row)): a warp per token, 16-byte loads when D % 8 = 0.
extern "C" __global__ void __launch_bounds__(kThreads) linear_attn_inv_rms_bf16(const LinearAttnParams p) {
    const int d_model = p.heads * p.head_dim, lane = threadIdx.x % 32;
    const int64_t token = (int64_t)blockIdx.x * kWarps + threadIdx.x / 32;
    if (token >= (int64_t)p.b * p.n) return;
    const bf16* row = dptr<const bf16>(p.qkv) + token * 3 * d_model;
    float sq = 0.0f, sk = 0.0f;
    if (d_model % 8 == 0) {
        const uint4* q4 = reinterpret_cast<const uint4*>(row);
        const uint4* k4 = reinterpret_cast<const uint4*>(row + d_model);
        for (int c = lane; c < d_model / 8; c += 32) {
            const uint4 qv = q4[c], kv = k4[c];
            const __nv_bfloat162* qh = reinterpret_cast<const __nv_bfloat162*>(&qv);
            const __nv_bfloat162* kh = reinterpret_cast<const __nv_bfloat162*>(&kv);
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const float2 qf = __bfloat1622float2(qh[e]), kf = __bfloat1622float2(kh[e]);
                sq += qf.x * qf.x + qf.y * qf.y;
                sk += kf.x * kf.x + kf.y * kf.y;
            }
        }
    } else {
        for (int c = lane; c < d_model; c += 32) {
            const float q = to_f32(row[c]), k = to_f32(row[d_model + c]);
            sq += q * q;
            sk += k * k;
        }
    }
    sq = warp_sum(sq);
    sk = warp_sum(sk);
    if (lane == 0)
        dptr<float2>(p.inv_rms)[token] = make_float2(rsqrtf(sq / d_model + p.norm_eps), rsqrtf(sk / d_model + p.norm_eps));
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

// Shared memory of the state kernel (offsets in bytes from the dynamic base), for dp and ld = dp + 8;
// its size, inv_rms(2), is computed again by the launcher (state_smem in linear_attn.rs).
struct StateSmem {
    int ld, halfp;
    __device__ StateSmem(int dp) : ld(dp + 8), halfp(dp / 2) {}
    // raw k (kv = 0) or v (kv = 1) rows of a stage, bf16 [token][ld]
    __device__ int raw(int stage, int kv) const { return ((stage * 2 + kv) * kTileTokens * ld) * 2; }
    // k̃ hi (part 0) and lo (part 1), bf16 [token][ld]
    __device__ int k_tilde(int part) const { return ((4 + part) * kTileTokens * ld) * 2; }
    // cos (table 0) and sin (table 1) of a stage, f32 [token][halfp]
    __device__ int trig(int stage, int table) const { return 6 * kTileTokens * ld * 2 + ((stage * 2 + table) * kTileTokens * halfp) * 4; }
    // the stage's (1/rms q, 1/rms k) per token, f32 [token][2]
    __device__ int inv_rms(int stage) const { return trig(2, 0) + stage * kTileTokens * 8; }
};

// One 32-token tile into a stage: raw k and v of head h (channels past d zero), the tile's
// cos/sin rows and inv_rms, zero past the chunk. cp.async when every row is 16-byte aligned and
// made of whole chunks (d % 8 = 0: the released models); element copies otherwise (tiny test
// models). Slots are (token, section, 16-byte chunk) with power-of-two strides, so the mapping
// is shifts and masks: the integer divisions of a flat index were 40% of the kernel's
// instructions.
__device__ __forceinline__ void stage_state_tile(unsigned char* smem, const StateSmem& L, int stage,
                                                 const LinearAttnParams& p, int b, int h, int t0, int t_end, bool vec) {
    static_assert(kMaxHeadDim / 8 == 16 && kTileTokens * 32 % kThreads == 0, "slot mapping");
    const int d = p.head_dim, dp = p.padded_head_dim, half = d / 2, d_model = p.heads * d;
    const int64_t tok0 = (int64_t)b * p.n + t0;
    const bf16* k_row0 = dptr<const bf16>(p.qkv) + tok0 * 3 * d_model + d_model + h * d;  // token t0's k
    const float* cos_row0 = dptr<const float>(p.cos) + (int64_t)t0 * half;
    const float* sin_row0 = dptr<const float>(p.sin) + (int64_t)t0 * half;
    if (threadIdx.x < kTileTokens) {
        const int t = threadIdx.x;
        const bool valid = t0 + t < t_end;
        cp_async8(smem + L.inv_rms(stage) + t * 8, dptr<const float2>(p.inv_rms) + (valid ? tok0 + t : 0), valid);
    }
    if (vec) {
        const int chunks = dp / 8, trig_chunks = L.halfp / 4;
#pragma unroll
        for (int j = 0; j < kTileTokens * 32 / kThreads; ++j) {
            const int slot = threadIdx.x + j * kThreads;
            const int t = slot >> 5, sec = (slot >> 4) & 1, c = slot & 15;  // sec: k | v, cos | sin
            const bool row_ok = t0 + t < t_end;
            if (c < chunks) {
                const bool valid = row_ok && 8 * c < d;
                const bf16* src = k_row0 + (t * 3 + sec) * d_model + 8 * c;
                cp_async16(smem + L.raw(stage, sec) + (t * L.ld + 8 * c) * 2, valid ? src : k_row0, valid);
            }
            if (c < trig_chunks) {
                const bool valid = row_ok && 4 * c < half;
                const float* src = (sec == 0 ? cos_row0 : sin_row0) + t * half + 4 * c;
                cp_async16(smem + L.trig(stage, sec) + (t * L.halfp + 4 * c) * 4, valid ? src : cos_row0, valid);
            }
        }
        return;
    }
    for (int i = threadIdx.x; i < kTileTokens * 2 * dp; i += kThreads) {
        const int t = i / (2 * dp), kv = (i / dp) % 2, c = i % dp;
        const bool valid = t0 + t < t_end && c < d;
        bf16* dst = reinterpret_cast<bf16*>(smem + L.raw(stage, kv)) + t * L.ld + c;
        *dst = valid ? k_row0[(t * 3 + kv) * d_model + c] : to_bf16(0.0f);
    }
    for (int i = threadIdx.x; i < kTileTokens * 2 * L.halfp; i += kThreads) {
        const int t = i / (2 * L.halfp), table = (i / L.halfp) % 2, c = i % L.halfp;
        const bool valid = t0 + t < t_end && c < half;
        const float* src = table == 0 ? cos_row0 : sin_row0;
        reinterpret_cast<float*>(smem + L.trig(stage, table))[t * L.halfp + c] = valid ? src[t * half + c] : 0.0f;
    }
}

extern "C" __global__ void __launch_bounds__(kThreads, 2) linear_attn_state_bf16(const LinearAttnParams p) {
    extern __shared__ __align__(16) unsigned char smem[];
    const int d = p.head_dim, dp = p.padded_head_dim, half = d / 2, d_model = p.heads * d;
    const StateSmem L(dp);
    const int chunk = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int64_t bh = (int64_t)b * p.heads + h;
    const int t_begin = chunk * p.chunk_rows, t_end = min(p.n, t_begin + p.chunk_rows);
    const int tiles = (t_end - t_begin + kTileTokens - 1) / kTileTokens;
    const bool vec = d % 8 == 0 && d_model % 8 == 0;  // then half % 4 = 0: whole cos/sin chunks too

    // feature mapping: each thread keeps one channel pair and walks token rows, so z stays in
    // registers; rows_per_pass ≥ 4 as halfp ≤ 64
    const int rows_per_pass = kThreads / L.halfp;
    const int pair = threadIdx.x % L.halfp, trow = threadIdx.x / L.halfp;
    const bool filler = trow < rows_per_pass, real_pair = pair < half;
    const __nv_bfloat162 w_k =
        real_pair ? dptr<const __nv_bfloat162>(p.norm_k)[(h * d) / 2 + pair] : __floats2bfloat162_rn(0.f, 0.f);
    float2 z = make_float2(0.0f, 0.0f);

    // warp w accumulates rows 16w .. 16w + 15 of S (v channels) × every k̃ column
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const bool has_rows = 16 * warp < dp;
    const int n_pairs = dp / 16;  // 16-column pairs of accumulator tiles
    float acc[kMaxColTiles][4];
#pragma unroll
    for (int j = 0; j < kMaxColTiles; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
    // ldmatrix.trans row addresses (rows are tokens): A = Vᵀ, matrices (m 0–7 | 8–15) × (k 0–7 |
    // 8–15) in a0..a3 order; B = K̃, matrices (k 0–7 | 8–15) × (n 0–7 | 8–15), k fastest
    const int a_tok = (lane / 16) * 8 + lane % 8, a_col = 16 * warp + ((lane / 8) % 2) * 8;
    const int b_tok = ((lane / 8) % 2) * 8 + lane % 8, b_col = (lane / 16) * 8;

    stage_state_tile(smem, L, 0, p, b, h, t_begin, t_end, vec);
    cp_async_commit();
    for (int it = 0; it < tiles; ++it) {
        const int t0 = t_begin + it * kTileTokens, stage = it % 2;
        // the other stage was last read by the previous tile's products, before its last barrier
        if (it + 1 < tiles) stage_state_tile(smem, L, 1 - stage, p, b, h, t0 + kTileTokens, t_end, vec);
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();  // this tile's copies have landed for every thread
        if (filler) {
            const bf16* raw_k = reinterpret_cast<const bf16*>(smem + L.raw(stage, 0));
            const float* cos_s = reinterpret_cast<const float*>(smem + L.trig(stage, 0));
            const float* sin_s = reinterpret_cast<const float*>(smem + L.trig(stage, 1));
            const float2* inv_s = reinterpret_cast<const float2*>(smem + L.inv_rms(stage));
            __nv_bfloat162* hi = reinterpret_cast<__nv_bfloat162*>(smem + L.k_tilde(0));
            __nv_bfloat162* lo = reinterpret_cast<__nv_bfloat162*>(smem + L.k_tilde(1));
#pragma unroll 4  // fully unrolled, the in-flight loads beside the accumulators spill on sm_80
            for (int r = 0; r < kTileTokens / 4; ++r) {
                const int t = trow + r * rows_per_pass;
                if (t >= kTileTokens) break;
                float2 kr = make_float2(0.0f, 0.0f);
                if (t0 + t < t_end && real_pair) {
                    const __nv_bfloat162 k2 = reinterpret_cast<const __nv_bfloat162*>(raw_k + t * L.ld)[pair];
                    const float2 fk = feature_pair(k2, w_k, inv_s[t].y);
                    kr = rotate(fk, cos_s[t * L.halfp + pair], sin_s[t * L.halfp + pair]);
                    z.x += fk.x;
                    z.y += fk.y;
                }
                const __nv_bfloat162 kh = __floats2bfloat162_rn(kr.x, kr.y);
                const float2 khf = __bfloat1622float2(kh);
                hi[(t * L.ld) / 2 + pair] = kh;
                lo[(t * L.ld) / 2 + pair] = __floats2bfloat162_rn(kr.x - khf.x, kr.y - khf.y);
            }
        }
        __syncthreads();  // k̃ complete
        if (has_rows) {
            const bf16* v_s = reinterpret_cast<const bf16*>(smem + L.raw(stage, 1));
            const bf16* hi = reinterpret_cast<const bf16*>(smem + L.k_tilde(0));
            const bf16* lo = reinterpret_cast<const bf16*>(smem + L.k_tilde(1));
#pragma unroll 1  // as in the output kernel: unrolled, it spills on sm_80
            for (int ks = 0; ks < kTileTokens / 16; ++ks) {
                uint32_t a[4];
                ldmatrix_x4_trans(a, v_s + (ks * 16 + a_tok) * L.ld + a_col);
#pragma unroll
                for (int np = 0; np < kMaxColTiles / 2; ++np) {
                    if (np >= n_pairs) break;
                    uint32_t bh_[4], bl_[4];
                    ldmatrix_x4_trans(bh_, hi + (ks * 16 + b_tok) * L.ld + np * 16 + b_col);
                    ldmatrix_x4_trans(bl_, lo + (ks * 16 + b_tok) * L.ld + np * 16 + b_col);
                    mma_16816(acc[2 * np], a, bh_[0], bh_[1]);
                    mma_16816(acc[2 * np], a, bl_[0], bl_[1]);
                    mma_16816(acc[2 * np + 1], a, bh_[2], bh_[3]);
                    mma_16816(acc[2 * np + 1], a, bl_[2], bl_[3]);
                }
            }
        }
        __syncthreads();  // the stage and k̃ are free for the next tile
    }

    // the chunk's S: accumulator (row g | g + 8, columns 2t, 2t + 1) of each 8-column tile
    const int64_t part = bh * p.chunks + chunk;
    if (has_rows) {
        const int g = lane / 4, tq = lane % 4;
        float* s = dptr<float>(p.partial) + (part * dp + 16 * warp) * dp;
#pragma unroll
        for (int j = 0; j < kMaxColTiles; ++j) {
            if (j >= 2 * n_pairs) break;
            *reinterpret_cast<float2*>(s + g * dp + 8 * j + 2 * tq) = make_float2(acc[j][0], acc[j][1]);
            *reinterpret_cast<float2*>(s + (g + 8) * dp + 8 * j + 2 * tq) = make_float2(acc[j][2], acc[j][3]);
        }
    }
    // z: the filler rows' sums, added in row order through shared memory (free after the last barrier)
    float* z_s = reinterpret_cast<float*>(smem);
    if (filler) {
        z_s[trow * dp + 2 * pair] = z.x;
        z_s[trow * dp + 2 * pair + 1] = z.y;
    }
    __syncthreads();
    for (int c = threadIdx.x; c < dp; c += blockDim.x) {
        float sum = 0.0f;
        for (int r = 0; r < rows_per_pass; ++r) sum += z_s[r * dp + c];
        dptr<float>(p.partial_z)[part * dp + c] = sum;
    }
}

// Row i of S[bh] = Σ_chunk partial[bh, chunk, i] in chunk order, stored as f16 S(i, ·)/m_i with
// m_i = max_j |S(i, j)| (row_scale); z[bh] = Σ_chunk partial_z[bh, chunk]. Grid (dp, B·H).
extern "C" __global__ void __launch_bounds__(kReduceThreads) linear_attn_reduce_state(const LinearAttnParams p) {
    const int dp = p.padded_head_dim, i = blockIdx.x, j = threadIdx.x;
    const int64_t bh = blockIdx.y;
    float acc = 0.0f;
    if (j < dp) {
        const float* partial = dptr<const float>(p.partial) + (bh * p.chunks * dp + i) * dp + j;
#pragma unroll 8
        for (int c = 0; c < p.chunks; ++c) acc += partial[(int64_t)c * dp * dp];
    }
    const float m = block_max(fabsf(acc));
    const float inv = m > 0.0f ? 1.0f / m : 0.0f;
    if (j < dp) dptr<__half>(p.state)[(bh * dp + i) * dp + j] = __float2half_rn(acc * inv);
    if (j == 0) dptr<float>(p.row_scale)[bh * dp + i] = m;
    if (i == 0 && j < dp) {
        const float* partial = dptr<const float>(p.partial_z) + bh * p.chunks * dp + j;
        float zs = 0.0f;
        for (int c = 0; c < p.chunks; ++c) zs += partial[(int64_t)c * dp];
        dptr<float>(p.z)[bh * dp + j] = zs;
    }
}

// Shared memory of the output kernel (byte offsets): S (f16 [dp][ld]), z and the row scales
// (f32 [dp] each), then per warp: its staged raw q rows (bf16 [16][ld]), their cos/sin (f32
// [2][16][halfp]) and inv_rms (f32 [16][2]), and its tile (f16 q̃, then the bf16 output, [16][ld]).
// The launcher computes the same sizes (shared + warps · per_warp in linear_attn.rs).
struct OutSmem {
    int ld, dp, halfp, warp_bytes;
    __device__ OutSmem(int dp_) : ld(dp_ + 8), dp(dp_), halfp(dp_ / 2) {
        warp_bytes = 16 * ld * 2 + 2 * 16 * halfp * 4 + 16 * 8 + 16 * ld * 2;
    }
    __device__ int s() const { return 0; }
    __device__ int z() const { return dp * ld * 2; }
    __device__ int scale() const { return z() + dp * 4; }
    __device__ int warp_base(int warp) const { return scale() + dp * 4 + warp * warp_bytes; }
    __device__ int raw(int warp) const { return warp_base(warp); }
    __device__ int trig(int warp, int table) const { return warp_base(warp) + 16 * ld * 2 + table * 16 * halfp * 4; }
    __device__ int inv_rms(int warp) const { return trig(warp, 2); }
    __device__ int tile(int warp) const { return inv_rms(warp) + 16 * 8; }
};

// A warp's 16 tokens from tok0 into its staging: raw q of head h, cos/sin rows, inv_rms; zero
// past n. cp.async (16-byte chunks, slots (token, section, chunk) by shifts) when d % 8 = 0,
// element copies otherwise.
__device__ __forceinline__ void stage_output_tile(unsigned char* smem, const OutSmem& L, int warp, int lane,
                                                  const LinearAttnParams& p, int b, int h, int tok0, bool vec) {
    const int d = p.head_dim, half = d / 2, d_model = p.heads * d;
    const int64_t row0 = (int64_t)b * p.n + tok0;
    const bf16* q_row0 = dptr<const bf16>(p.qkv) + row0 * 3 * d_model + h * d;
    const float* cos_row0 = dptr<const float>(p.cos) + (int64_t)tok0 * half;
    const float* sin_row0 = dptr<const float>(p.sin) + (int64_t)tok0 * half;
    if (lane < 16) {
        const bool valid = tok0 + lane < p.n;
        cp_async8(smem + L.inv_rms(warp) + lane * 8, dptr<const float2>(p.inv_rms) + (valid ? row0 + lane : 0), valid);
    }
    if (vec) {
        const int chunks = L.dp / 8, trig_chunks = L.halfp / 4;
#pragma unroll
        for (int j = 0; j < 16 * 16 / 32; ++j) {  // raw q: slots (token, chunk)
            const int slot = lane + 32 * j, t = slot >> 4, c = slot & 15;
            if (c < chunks) {
                const bool valid = tok0 + t < p.n && 8 * c < d;
                const bf16* src = q_row0 + t * 3 * d_model + 8 * c;
                cp_async16(smem + L.raw(warp) + (t * L.ld + 8 * c) * 2, valid ? src : q_row0, valid);
            }
        }
#pragma unroll
        for (int j = 0; j < 16 * 32 / 32; ++j) {  // cos | sin: slots (token, table, chunk)
            const int slot = lane + 32 * j, t = slot >> 5, table = (slot >> 4) & 1, c = slot & 15;
            if (c < trig_chunks) {
                const bool valid = tok0 + t < p.n && 4 * c < half;
                const float* src = (table == 0 ? cos_row0 : sin_row0) + t * half + 4 * c;
                cp_async16(smem + L.trig(warp, table) + (t * L.halfp + 4 * c) * 4, valid ? src : cos_row0, valid);
            }
        }
        return;
    }
    for (int i = lane; i < 16 * L.dp; i += 32) {
        const int t = i / L.dp, c = i % L.dp;
        const bool valid = tok0 + t < p.n && c < d;
        reinterpret_cast<bf16*>(smem + L.raw(warp))[t * L.ld + c] = valid ? q_row0[t * 3 * d_model + c] : to_bf16(0.0f);
    }
    for (int i = lane; i < 2 * 16 * L.halfp; i += 32) {
        const int table = i / (16 * L.halfp), t = (i / L.halfp) % 16, c = i % L.halfp;
        const bool valid = tok0 + t < p.n && c < half;
        const float* src = table == 0 ? cos_row0 : sin_row0;
        reinterpret_cast<float*>(smem + L.trig(warp, table))[t * L.halfp + c] = valid ? src[t * half + c] : 0.0f;
    }
}

extern "C" __global__ void __launch_bounds__(kMaxOutWarps * 32, 1) linear_attn_output_bf16(const LinearAttnParams p) {
    extern __shared__ __align__(16) unsigned char smem[];
    const int d = p.head_dim, dp = p.padded_head_dim, half = d / 2, halfp = dp / 2, d_model = p.heads * d;
    const OutSmem L(dp);
    const int h = blockIdx.y, b = blockIdx.z;
    const int64_t bh = (int64_t)b * p.heads + h;
    // warps per block: up to 12, as many as the device's shared memory holds (the launcher's choice)
    const int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const bool vec = d % 8 == 0 && d_model % 8 == 0;
    const int block_tok0 = blockIdx.x * p.out_rows, block_end = min(p.n, block_tok0 + p.out_rows);
    __half* s_s = reinterpret_cast<__half*>(smem + L.s());
    float* z_s = reinterpret_cast<float*>(smem + L.z());
    float* scale_s = reinterpret_cast<float*>(smem + L.scale());

    // the warp's first tile and the head's S, z and row scales, in flight together
    int tok0 = block_tok0 + warp * 16;
    if (tok0 < block_end) stage_output_tile(smem, L, warp, lane, p, b, h, tok0, vec);
    {
        const __half* src = dptr<const __half>(p.state) + bh * dp * dp;
        for (int i = threadIdx.x; i < dp * dp / 8; i += blockDim.x) {
            const int row = i / (dp / 8), c = i % (dp / 8);
            cp_async16(s_s + row * L.ld + 8 * c, src + 8 * i, true);
        }
        for (int c = threadIdx.x; c < dp; c += blockDim.x) {
            z_s[c] = dptr<const float>(p.z)[bh * dp + c];
            scale_s[c] = dptr<const float>(p.row_scale)[bh * dp + c];
        }
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();

    // this lane's channel pairs (lane, lane + 32): w_q and z in registers
    const __nv_bfloat162 zero2 = __floats2bfloat162_rn(0.0f, 0.0f);
    __nv_bfloat162 w_q[2];
    float2 z[2];
#pragma unroll
    for (int it = 0; it < 2; ++it) {
        const int pr = lane + 32 * it;
        const bool real = pr < half;
        w_q[it] = real ? dptr<const __nv_bfloat162>(p.norm_q)[(h * d) / 2 + pr] : zero2;
        z[it] = pr < halfp ? make_float2(z_s[2 * pr], z_s[2 * pr + 1]) : make_float2(0.0f, 0.0f);
    }
    const __nv_bfloat162* raw_q = reinterpret_cast<const __nv_bfloat162*>(smem + L.raw(warp));
    const float* cos_s = reinterpret_cast<const float*>(smem + L.trig(warp, 0));
    const float* sin_s = reinterpret_cast<const float*>(smem + L.trig(warp, 1));
    const float2* inv_s = reinterpret_cast<const float2*>(smem + L.inv_rms(warp));
    __half2* q2 = reinterpret_cast<__half2*>(smem + L.tile(warp));  // [16][ld/2] pairs
    // ldmatrix (non-transposed) row addresses: A = Q̃ rows (m 0–7 | 8–15) × (k 0–7 | 8–15) in
    // a0..a3 order; B = S rows (n), matrices (n 0–7: k 0–7, k 8–15 | n 8–15: k 0–7, k 8–15)
    const int a_row = lane % 16, a_col = (lane / 16) * 8;
    const int b_row = (lane / 16) * 8 + lane % 8, b_col = ((lane / 8) % 2) * 8;
    const int g = lane / 4, tq = lane % 4, n_pairs = dp / 16;

    for (; tok0 < block_end; tok0 += warps * 16) {
        __syncwarp();  // every lane's copies of this tile are complete (each waited for its own)
        float den_row = 0.0f;  // lane r < 16 keeps den of token tok0 + r
#pragma unroll 4
        for (int r = 0; r < 16; ++r) {
            const float inv = inv_s[r].x;
            float den = 0.0f;
#pragma unroll
            for (int it = 0; it < 2; ++it) {
                const int pr = lane + 32 * it;
                if (pr >= halfp) break;
                const float2 fq = feature_pair(raw_q[(r * L.ld) / 2 + pr], w_q[it], inv);
                den += fq.x * z[it].x + fq.y * z[it].y;
                const float2 qr = rotate(fq, cos_s[r * halfp + pr], sin_s[r * halfp + pr]);
                q2[(r * L.ld) / 2 + pr] = __floats2half2_rn(qr.x, qr.y);
            }
            den = warp_sum(den);
            if (lane == r) den_row = den;
        }
        __syncwarp();  // q̃ complete; the staging is free
        const int next = tok0 + warps * 16;
        if (next < block_end) stage_output_tile(smem, L, warp, lane, p, b, h, next, vec);
        cp_async_commit();

        float acc[kMaxColTiles][4];
#pragma unroll
        for (int j = 0; j < kMaxColTiles; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
        const __half* q_w = reinterpret_cast<const __half*>(q2);
#pragma unroll 1  // unrolled, the later steps' fragment loads are hoisted and spill
        for (int ks = 0; ks < n_pairs; ++ks) {
            uint32_t a[4];
            ldmatrix_x4(a, q_w + a_row * L.ld + ks * 16 + a_col);
#pragma unroll
            for (int np = 0; np < kMaxColTiles / 2; ++np) {
                if (np >= n_pairs) break;
                uint32_t bs[4];
                ldmatrix_x4(bs, s_s + (np * 16 + b_row) * L.ld + ks * 16 + b_col);
                mma_16816_f16(acc[2 * np], a, bs[0], bs[1]);
                mma_16816_f16(acc[2 * np + 1], a, bs[2], bs[3]);
            }
        }
        __syncwarp();  // every lane has read q̃ before the output overwrites the tile
        const float inv0 = 1.0f / (__shfl_sync(0xffffffffu, den_row, g) + p.attn_eps);
        const float inv1 = 1.0f / (__shfl_sync(0xffffffffu, den_row, g + 8) + p.attn_eps);
        __nv_bfloat162* o2 = reinterpret_cast<__nv_bfloat162*>(q2);
#pragma unroll
        for (int j = 0; j < kMaxColTiles; ++j) {
            if (j >= 2 * n_pairs) break;
            const int col = 8 * j + 2 * tq;
            const float m0 = scale_s[col], m1 = scale_s[col + 1];
            o2[(g * L.ld + col) / 2] = __floats2bfloat162_rn(acc[j][0] * m0 * inv0, acc[j][1] * m1 * inv0);
            o2[((g + 8) * L.ld + col) / 2] = __floats2bfloat162_rn(acc[j][2] * m0 * inv1, acc[j][3] * m1 * inv1);
        }
        __syncwarp();  // the output rows come from every lane
        const bf16* o_w = reinterpret_cast<const bf16*>(q2);
        bf16* out = dptr<bf16>(p.out) + ((int64_t)b * p.n + tok0) * d_model + h * d;
        const int rows = min(16, p.n - tok0);
        if (vec) {
            const int chunks = d / 8;
            for (int i = lane; i < rows * chunks; i += 32) {
                const int r = i / chunks, c = i - r * chunks;
                *reinterpret_cast<uint4*>(out + r * d_model + 8 * c) = *reinterpret_cast<const uint4*>(o_w + r * L.ld + 8 * c);
            }
        } else {
            for (int i = lane; i < rows * d; i += 32) {
                const int r = i / d, c = i % d;
                out[r * d_model + c] = o_w[r * L.ld + c];
            }
        }
        cp_async_wait<0>();  // the next tile (this lane's copies); __syncwarp at the loop top
    }
}
