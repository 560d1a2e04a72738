// Space-to-depth (with a mean over groups of k consecutive output channels) and depth-to-space
// (with the fine channels tiled k times) between channels-last clips: fine (t, h, w, c), coarse
// (t/st, h/sh, w/sw, c·st·sh·sw). LTX-2's patchify / unpatchify and its down- and upsamplers with
// their residual paths (MODEL.md §3.2). Coarse channel of fine channel c at sub-position
// (it, ih, iw): ((c·st + it)·sh + ih)·sw + iw for order 0, ((c·st + it)·sw + iw)·sh + ih for 1.
// One thread per output element, grid-stride; pure data movement (reads k bf16 per output for
// space_to_depth, one for depth_to_space), the group sum in f32.
#include "common.cuh"

static constexpr int kThreads = 256;

// coarse channel → (c, it, ih, iw), the inverse of the order's channel formula
__device__ __forceinline__ void sub_position(const ShuffleParams& p, int q, int& c, int& it, int& ih, int& iw) {
    const int s2 = p.order == 0 ? p.sw : p.sh;
    const int s1 = p.order == 0 ? p.sh : p.sw;
    const int i2 = q % s2; q /= s2;
    const int i1 = q % s1; q /= s1;
    it = q % p.st;
    c = q / p.st;
    ih = p.order == 0 ? i1 : i2;
    iw = p.order == 0 ? i2 : i1;
}

extern "C" __global__ void __launch_bounds__(kThreads) space_to_depth_bf16(const ShuffleParams p) {
    const int to_n = p.t / p.st, ho_n = p.h / p.sh, wo_n = p.w / p.sw;
    const int c_out = p.c * p.st * p.sh * p.sw / p.k;
    const int64_t total = (int64_t)to_n * ho_n * wo_n * c_out;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i;
        const int j = (int)(r % c_out); r /= c_out;
        const int wo = (int)(r % wo_n); r /= wo_n;
        const int ho = (int)(r % ho_n); r /= ho_n;
        const int to = (int)r;
        float sum = 0.0f;
        for (int g = 0; g < p.k; ++g) {
            int c, it, ih, iw;
            sub_position(p, j * p.k + g, c, it, ih, iw);
            const int64_t src = (((int64_t)(to * p.st + it) * p.h + ho * p.sh + ih) * p.w + wo * p.sw + iw) * p.c + c;
            sum += to_f32(dptr<const bf16>(p.x)[src]);
        }
        dptr<bf16>(p.out)[i] = to_bf16(sum / (float)p.k);
    }
}

extern "C" __global__ void __launch_bounds__(kThreads) depth_to_space_bf16(const ShuffleParams p) {
    const int ho_n = p.h / p.sh, wo_n = p.w / p.sw;
    const int cc = p.c * p.st * p.sh * p.sw;
    const int c_out = p.c * p.k;
    const int64_t total = (int64_t)p.t * p.h * p.w * c_out;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i;
        const int c = (int)(r % c_out) % p.c; r /= c_out;
        const int w = (int)(r % p.w); r /= p.w;
        const int h = (int)(r % p.h); r /= p.h;
        const int t = (int)r;
        const int it = t % p.st, ih = h % p.sh, iw = w % p.sw;
        const int q = p.order == 0 ? ((c * p.st + it) * p.sh + ih) * p.sw + iw : ((c * p.st + it) * p.sw + iw) * p.sh + ih;
        const int64_t coarse = ((int64_t)(t / p.st) * ho_n + h / p.sh) * wo_n + w / p.sw;
        dptr<bf16>(p.out)[i] = dptr<const bf16>(p.x)[coarse * cc + q];
    }
}
