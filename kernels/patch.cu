// Patchify (B, C, T, H, W) → (B, N, C·pt·ph·pw) with features in (c, it, ih, iw) order, and
// unpatchify (B, N, pt·ph·pw·C) with features in (it, ih, iw, c) order → (B, C, T, H, W)
// (MODEL.md §2.2 steps 2 and 7). One thread per element; pure data movement.
#include "common.cuh"

static constexpr int kThreads = 256;

extern "C" __global__ void __launch_bounds__(kThreads) patchify_bf16(const PatchParams p) {
    const int gt = p.t / p.pt, gh = p.h / p.ph, gw = p.w / p.pw;
    const int feat = p.c * p.pt * p.ph * p.pw;
    const int64_t total = (int64_t)p.b * gt * gh * gw * feat;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i;
        const int iw = (int)(r % p.pw); r /= p.pw;
        const int ih = (int)(r % p.ph); r /= p.ph;
        const int it = (int)(r % p.pt); r /= p.pt;
        const int c = (int)(r % p.c); r /= p.c;
        const int wi = (int)(r % gw); r /= gw;
        const int hi = (int)(r % gh); r /= gh;
        const int ti = (int)(r % gt); r /= gt;
        const int64_t b = r;
        const int t = ti * p.pt + it, h = hi * p.ph + ih, w = wi * p.pw + iw;
        dptr<bf16>(p.out)[i] = dptr<const bf16>(p.x)[(((b * p.c + c) * p.t + t) * p.h + h) * p.w + w];
    }
}

extern "C" __global__ void __launch_bounds__(kThreads) unpatchify_bf16(const PatchParams p) {
    const int gt = p.t / p.pt, gh = p.h / p.ph, gw = p.w / p.pw;
    const int feat = p.c * p.pt * p.ph * p.pw;
    const int64_t total = (int64_t)p.b * p.c * p.t * p.h * p.w;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i;
        const int w = (int)(r % p.w); r /= p.w;
        const int h = (int)(r % p.h); r /= p.h;
        const int t = (int)(r % p.t); r /= p.t;
        const int c = (int)(r % p.c); r /= p.c;
        const int64_t b = r;
        const int64_t token = ((b * gt + t / p.pt) * gh + h / p.ph) * gw + w / p.pw;
        const int f = (((t % p.pt) * p.ph + h % p.ph) * p.pw + w % p.pw) * p.c + c;
        dptr<bf16>(p.out)[i] = dptr<const bf16>(p.x)[token * feat + f];
    }
}
