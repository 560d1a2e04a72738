// The spatial part of the Mix-FFN (MODEL.md §2.7 steps 1–3, after the conv_inverted GEMM):
// u = SiLU(x) (conv_inverted's activation, applied as inputs are read), y = dwconv3x3(u) + bias
// over 2F channels (zero padding 1, per frame), out = y[:F] · SiLU(y[F:]).
// Channels-last (frames, H, W, 2F) in, (frames, H, W, F) out; weights tap-major (9, 2F).
//
// The op is a stream: at 720p (22 frames of 22×40, F = 6720) it reads 520 MB and writes 260 MB,
// 0.22 ms at the H200's copy rate; the arithmetic is 9 FMAs and one SiLU per input element and a
// SiLU per output. So the kernel reads every input from DRAM once, SiLUs it once, and keeps its
// instruction count near those FMAs and SiLUs:
//
// depthwise3x3_glu_bf16, grid (F/32, column tiles, frames), 16·R threads (R ≤ 16 runs of 4
// columns; a tile is 4R ≤ 64 columns: the whole width up to W = 64, else ⌈W/64⌉ equal tiles).
// A block owns 32 value channels and their 32 gate channels (64 + 64 contiguous bytes of each
// pixel) of one column tile of one frame and walks the frame top to bottom, one input row a step:
//   - the tile's row (4R + 2 pixels with the halo columns, zeros outside the frame) is copied
//     into a ring of 4 shared-memory stages with 16-byte cp.async, 3 rows ahead: 10–15 KB in
//     flight per block at 720p, 30–45 KB per SM (3 blocks), above the ~27 KB that 3.5 TB/s × 1 µs
//     asks for, held by shared memory rather than by registers;
//   - thread (run, g) SiLUs its 4 pixels × (2 value + 2 gate) channels once, publishes its first
//     and last pixel in shared memory and reads its neighbours' (the horizontal halo);
//   - it keeps two rows of partial sums in registers: input row r completes output row r−1 (taps
//     ky = 2), advances row r (ky = 1) and starts row r+1 (ky = 0), so each input row is read
//     and SiLU'd once for the three output rows that use it. The GLU is applied to the completed
//     row, stored as bf16 pairs.
// Bytes per call: 2F·2 read (plus 2 halo columns per column tile when W > 64) + F·2 written per
// pixel, nothing re-read (v3's blocks of two output rows loaded each input row twice).
// Shared memory per input element: 2 B written by the copy and 2 B read, 4 B of halo exchange.
// Per thread and row (16 inputs, 8 outputs) ~350 instructions, of them 144 FFMA and 24 SiLUs of
// 3 (one MUFU.TANH each, see silu_fast): at 720p ~0.17 ms of issue and ~0.1 ms of MUFU (16 per SM
// per clock) at 1.98 GHz, both under the DRAM time, which they have to overlap. 122–125
// registers: 3 blocks of 5 warps per SM at 720p. Stages are padded to 144 B per pixel so that
// the two runs of a warp (4 pixels apart) read disjoint banks.
//
// depthwise3x3_glu_any_bf16: one thread per output element, for the shapes the fast kernel does
// not take (F not a multiple of 32, unaligned buffers, a frame of 2^31 elements or more, over
// 65535 frames): the test's small shapes.
//
// temporal_shift_bf16 lays out the temporal conv's input for one K = 3C GEMM.
// Measured on the H200 (720p, B=2, F=6720): v1 (one thread per output element, 64-bit index
// math, 54 scalar loads per output pair) 3.0 ms; v2 (one row per thread, no prefetch, IEEE
// division in SiLU) 2.4 ms; v3 (a thread per bf16x2 channel pair walking 2 output rows with a
// 4×3 window in registers, 4-byte loads, each input loaded from L2/DRAM twice and SiLU'd twice)
// 0.56 ms; this version: see BENCHMARKS.md.
#include "common.cuh"

static constexpr int kGroups = 16;               // channel pairs per block (threads per run)
static constexpr int kChannels = 2 * kGroups;    // value channels per block (as many gate ones)
static constexpr int kRun = 4;                   // output columns per thread
static constexpr int kMaxRuns = 16;              // runs per block: ≤ 256 threads
static constexpr int kDepth = 3;                 // input rows in flight
static constexpr int kStages = kDepth + 1;       // shared-memory ring of rows (a power of two)
static constexpr int kPixelBytes = 144;          // 64 B value + 64 B gate + 16 B bank padding
static constexpr int kChunksPerPixel = 8;        // 16-byte copies per pixel
static_assert((kStages & (kStages - 1)) == 0, "ring index is a mask");

// SiLU as x/2 · (1 + tanh(x/2)): one MUFU.TANH and two FP32 instructions, where common.cuh's
// silu() takes MUFU.EX2 + MUFU.RCP and three more. The MUFU pipe (16 lanes per SM per clock) was
// as busy as the issue slots in v4 (2 MUFU per input plus 1 per output: ~0.19 ms at 720p), this
// halves it. tanh.approx.f32's error (~2^-11 absolute) stays below the bf16 rounding of the
// kernel's output; for x < −18 tanh is exactly −1 and the result 0 (SiLU(x) > −3e−7 there).
__device__ __forceinline__ float silu_fast(float x) {
    const float h = 0.5f * x;
    float t;
    asm("tanh.approx.f32 %0, %1;" : "=f"(t) : "f"(h));
    return fmaf(h, t, h);
}

// cp_async16 to a shared-memory address computed once (the generic-to-shared conversion is not
// free, and a register-starved kernel recomputes it for every copy)
__device__ __forceinline__ void cp_async16_s(unsigned smem, const void* gmem, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(gmem), "r"(valid ? 16 : 0));
}

// a bf16 pair as two floats: each half shifted into the top of a word (2 instructions, where
// __bfloat1622float2 takes 3)
__device__ __forceinline__ float2 unpack_bf16x2(unsigned v) {
    return make_float2(__uint_as_float(v << 16), __uint_as_float(v & 0xffff0000u));
}

// SiLU'd (value.x, value.y, gate.x, gate.y) of one pixel's channel pair in a shared-memory stage.
__device__ __forceinline__ float4 silu_pixel(const unsigned char* pixel, int g) {
    const float2 v = unpack_bf16x2(*reinterpret_cast<const unsigned*>(pixel + 4 * g));
    const float2 t = unpack_bf16x2(*reinterpret_cast<const unsigned*>(pixel + 64 + 4 * g));
    return make_float4(silu_fast(v.x), silu_fast(v.y), silu_fast(t.x), silu_fast(t.y));
}

// acc += w ⊙ u, elementwise
__device__ __forceinline__ void fma4(float4& acc, const float4& w, const float4& u) {
    acc.x = fmaf(w.x, u.x, acc.x);
    acc.y = fmaf(w.y, u.y, acc.y);
    acc.z = fmaf(w.z, u.z, acc.z);
    acc.w = fmaf(w.w, u.w, acc.w);
}

// acc + Σ_kx w[kx] ⊙ u[kx]: one kernel row's three taps
__device__ __forceinline__ float4 taps3(float4 acc, const float4* w, const float4* u) {
    fma4(acc, w[0], u[0]);
    fma4(acc, w[1], u[1]);
    fma4(acc, w[2], u[2]);
    return acc;
}

// value · SiLU(gate) of a completed output pixel, stored as a bf16 pair
__device__ __forceinline__ void store_glu(bf16* out, const float4& y) {
    *reinterpret_cast<__nv_bfloat162*>(out) = __floats2bfloat162_rn(y.x * silu_fast(y.z), y.y * silu_fast(y.w));
}

extern "C" __global__ void __launch_bounds__(kGroups * kMaxRuns, 2) depthwise3x3_glu_bf16(const DepthwiseGluParams p) {
    extern __shared__ uint4 smem_words[];
    unsigned char* smem = reinterpret_cast<unsigned char*>(smem_words);
    const int f = p.f, c2 = 2 * f, width = p.w_, height = p.h;
    const int runs = blockDim.x / kGroups, tile_cols = runs * kRun;
    const int x_begin = blockIdx.y * tile_cols;  // tile column 0 is x_begin − 1
    if (x_begin >= width) return;                // (whole block: no barrier is left waiting)
    const int tid = threadIdx.x, g = tid & (kGroups - 1), run = tid / kGroups;
    const int frame = blockIdx.z, cv = blockIdx.x * kChannels + 2 * g;  // this thread's value pair
    const int stage_bytes = (tile_cols + 2) * kPixelBytes;
    // halo exchange: first_u[i] = run i's first pixel (i = runs: the tile's right halo column),
    // last_u[i] = run i−1's last pixel (i = 0: the left halo column); [runs + 1][kGroups] each
    float4* first_u = reinterpret_cast<float4*>(smem + kStages * stage_bytes);
    float4* last_u = first_u + (runs + 1) * kGroups;

    // taps as (value.x, value.y, gate.x, gate.y), k = ky·3 + kx
    float4 wt[9];
    const __nv_bfloat162* w = dptr<const __nv_bfloat162>(p.w);
#pragma unroll
    for (int k = 0; k < 9; ++k) {
        const float2 a = __bfloat1622float2(w[(k * c2 + cv) >> 1]), b = __bfloat1622float2(w[(k * c2 + f + cv) >> 1]);
        wt[k] = make_float4(a.x, a.y, b.x, b.y);
    }
    const __nv_bfloat162* bias2 = dptr<const __nv_bfloat162>(p.bias);
    const float2 bv = __bfloat1622float2(bias2[cv >> 1]), bg = __bfloat1622float2(bias2[(f + cv) >> 1]);
    const float4 bias = make_float4(bv.x, bv.y, bg.x, bg.y);

    // This thread's 16-byte pieces of a tile row (the same for every row): piece k is part k % 8
    // (0–3 value, 4–7 gate channels) of tile pixel k / 8. A row has 8·(4R + 2) = 2·blockDim + 16
    // pieces: thread t copies part t % 8 of pixels t / 8, t / 8 + 2R and (t < 16) t / 8 + 4R.
    // Pieces outside the frame's columns are zero-filled (from a mapped address, reading nothing).
    const int part = tid % kChunksPerPixel, pixel0 = tid / kChunksPerPixel, pixel_step = 2 * runs;
    const bf16* src = dptr<const bf16>(p.x) + (int64_t)frame * height * width * c2 +
                      ((part >> 2) * f + blockIdx.x * kChannels + (part & 3) * 8);  // row 0's piece channel
    int src_off[3];
    bool inside[3];
#pragma unroll
    for (int j = 0; j < 3; ++j) {
        const int x = x_begin - 1 + pixel0 + j * pixel_step;
        inside[j] = (unsigned)x < (unsigned)width;
        src_off[j] = inside[j] ? x * c2 : 0;
    }
    const bool third = tid < 2 * kChunksPerPixel;
    const int row_elems = width * c2;
    const unsigned smem_s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
    const unsigned dst0 = smem_s + pixel0 * kPixelBytes + part * 16, dst_step = pixel_step * kPixelBytes;
    // copies input row r (the next after the previous call's) into its stage; one commit group per
    // call, empty past the last row, so that wait_group counts rows
    auto issue_row = [&](int r) {
        if (r < height) {
            const unsigned dst = dst0 + (r & (kStages - 1)) * stage_bytes;
            cp_async16_s(dst, src + src_off[0], inside[0]);
            cp_async16_s(dst + dst_step, src + src_off[1], inside[1]);
            if (third) cp_async16_s(dst + 2 * dst_step, src + src_off[2], inside[2]);
            src += row_elems;
        }
        cp_async_commit();
    };
#pragma unroll
    for (int r = 0; r < kDepth; ++r) issue_row(r);

    // Partial sums before input row r: acc_a = output row r−1 (taps ky = 0, 1 applied: rows r−2,
    // r−1), acc_b = output row r (ky = 0: row r−1). Row −1 is zero padding: acc_b starts at the
    // bias, acc_a (output row −1) is never stored.
    float4 acc_a[kRun], acc_b[kRun];
#pragma unroll
    for (int j = 0; j < kRun; ++j) acc_a[j] = acc_b[j] = bias;
    const int x0 = x_begin + run * kRun;      // this thread's first output column
    const int ncols = min(kRun, width - x0);  // of which inside the frame (≤ 0: none)
    const int out_row = width * f;
    bf16* out = dptr<bf16>(p.out) + (int64_t)frame * height * out_row + (x0 * f + cv);  // (row 0, x0)
    const unsigned char* own = smem + (run * kRun + 1) * kPixelBytes;  // own pixels in stage 0
    float4* first_mine = first_u + run * kGroups + g;       // written: first_u[run]
    float4* last_mine = last_u + (run + 1) * kGroups + g;   // written: last_u[run + 1]

    for (int r = 0; r < height; ++r) {
        cp_async_wait<kDepth - 1>();
        __syncthreads();  // row r is in its stage for every thread; iteration r−1 is done everywhere
        issue_row(r + kDepth);  // into the stage of row r − 1, free since the barrier
        const int stage = (r & (kStages - 1)) * stage_bytes;
        // u[i] = SiLU(x) at column x0 − 1 + i of row r
        float4 u[kRun + 2];
#pragma unroll
        for (int j = 0; j < kRun; ++j) u[j + 1] = silu_pixel(own + stage + j * kPixelBytes, g);
        *first_mine = u[1];
        *last_mine = u[kRun];
        // the tile's halo columns: zero padding at the frame's edges (no SiLU to spend there)
        if (run == 0) last_u[g] = x_begin > 0 ? silu_pixel(smem + stage, g) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (run == runs - 1)
            first_u[runs * kGroups + g] = x_begin + tile_cols < width
                                              ? silu_pixel(smem + stage + (tile_cols + 1) * kPixelBytes, g)
                                              : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        __syncthreads();  // halo published (rewritten only after the next iteration's barrier)
        u[0] = *(last_mine - kGroups);         // last_u[run]: column x0 − 1
        u[kRun + 1] = *(first_mine + kGroups);  // first_u[run + 1]: column x0 + 4
        if (r > 0) {
#pragma unroll
            for (int j = 0; j < kRun; ++j)
                if (j < ncols) store_glu(out + j * f, taps3(acc_a[j], wt + 6, u + j));
            out += out_row;
        }
#pragma unroll
        for (int j = 0; j < kRun; ++j) {
            acc_a[j] = taps3(acc_b[j], wt + 3, u + j);
            acc_b[j] = taps3(bias, wt, u + j);
        }
    }
    // row H is zero padding: output row H − 1 is complete
#pragma unroll
    for (int j = 0; j < kRun; ++j)
        if (j < ncols) store_glu(out + j * f, acc_a[j]);
}

// The same op for any shape: one thread per output element (frames, H, W, F), grid-stride.
extern "C" __global__ void __launch_bounds__(256) depthwise3x3_glu_any_bf16(const DepthwiseGluParams p) {
    const int f = p.f, c2 = 2 * f;
    const bf16* x = dptr<const bf16>(p.x);
    const bf16* w = dptr<const bf16>(p.w);
    const bf16* bias = dptr<const bf16>(p.bias);
    bf16* out = dptr<bf16>(p.out);
    const int64_t total = (int64_t)p.frames * p.h * p.w_ * f;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int c = (int)(i % f);
        const int64_t pixel = i / f;
        const int xx = (int)(pixel % p.w_);
        const int64_t frame_row = pixel / p.w_;  // frame · H + y
        const int y = (int)(frame_row % p.h);
        const bf16* xf = x + (frame_row - y) * p.w_ * c2;  // the frame's first pixel
        float v = to_f32(bias[c]), t = to_f32(bias[f + c]);
        for (int ky = 0; ky < 3; ++ky) {
            const int yy = y + ky - 1;
            if (yy < 0 || yy >= p.h) continue;
            for (int kx = 0; kx < 3; ++kx) {
                const int xs = xx + kx - 1;
                if (xs < 0 || xs >= p.w_) continue;
                const bf16* px = xf + ((int64_t)yy * p.w_ + xs) * c2;
                const bf16* wk = w + (ky * 3 + kx) * c2;
                v += silu(to_f32(px[c])) * to_f32(wk[c]);
                t += silu(to_f32(px[f + c])) * to_f32(wk[f + c]);
            }
        }
        out[i] = to_bf16(v * silu(t));
    }
}

// The operand [z[t−1] | z[t] | z[t+1]] (zero outside 0..T) of the temporal (3,1) conv as one GEMM
// with K = 3C (MODEL.md §2.7 step 5), buf (B·T·HW, 3C): conv_point's product has written z into
// the middle third; this fills the outer two from it. Each source row r = (b, t, s) has its middle
// third read once and written as the left third of row (b, t+1, s) and the right third of row
// (b, t−1, s); frame 0's left thirds and frame T−1's right thirds are zeroed by the threads of
// those frames. Block (kShiftLanes, kShiftRows): a row per threadIdx.y, its chunks strided over
// threadIdx.x, kShiftBatch chunks loaded before any is stored so that each thread has several
// loads in flight (v1 had one; it was not timed on its own). H200 720p: 68 µs, 72% of DRAM
// bandwidth (ncu). 16-byte chunks when C is a multiple of 8 (2240 is), elements otherwise.
// Bytes: C·2 read, 2C·2 written per row (the v1 concat also read and wrote the middle third).
static constexpr int kShiftLanes = 64, kShiftRows = 4, kShiftBatch = 5;  // 5·64 ≥ 280 chunks at C = 2240

template <class Chunk>
__device__ __forceinline__ void temporal_shift(const TemporalShiftParams& p) {
    static constexpr int kPer = sizeof(Chunk) / sizeof(bf16);
    const int chunks = p.c / kPer;
    const int64_t rows = (int64_t)p.b * p.t * p.hw;
    const int64_t row = (int64_t)blockIdx.x * kShiftRows + threadIdx.y;  // (b, t, s) row-major
    if (row >= rows) return;
    const int t = (int)((row / p.hw) % p.t);
    const int64_t ld = 3 * (int64_t)p.c;  // elements per row of buf
    bf16* buf = dptr<bf16>(p.buf);
    const Chunk* src = reinterpret_cast<const Chunk*>(buf + row * ld + p.c);
    Chunk* left_next = t + 1 < p.t ? reinterpret_cast<Chunk*>(buf + (row + p.hw) * ld) : nullptr;
    Chunk* right_prev = t > 0 ? reinterpret_cast<Chunk*>(buf + (row - p.hw) * ld + 2 * p.c) : nullptr;
    Chunk* left_own = t == 0 ? reinterpret_cast<Chunk*>(buf + row * ld) : nullptr;
    Chunk* right_own = t + 1 == p.t ? reinterpret_cast<Chunk*>(buf + row * ld + 2 * p.c) : nullptr;
    for (int base = threadIdx.x; base < chunks; base += kShiftLanes * kShiftBatch) {
        Chunk v[kShiftBatch];
#pragma unroll
        for (int j = 0; j < kShiftBatch; ++j) {
            const int i = base + j * kShiftLanes;
            if (i < chunks) v[j] = src[i];
        }
#pragma unroll
        for (int j = 0; j < kShiftBatch; ++j) {
            const int i = base + j * kShiftLanes;
            if (i >= chunks) break;
            if (left_next) left_next[i] = v[j];
            if (right_prev) right_prev[i] = v[j];
            if (left_own) left_own[i] = Chunk{};
            if (right_own) right_own[i] = Chunk{};
        }
    }
}

extern "C" __global__ void __launch_bounds__(kShiftLanes * kShiftRows) temporal_shift_bf16(const TemporalShiftParams p) {
    if (p.c % 8 == 0)
        temporal_shift<uint4>(p);
    else
        temporal_shift<unsigned short>(p);
}
