// The DCN kernel (docs/ops.md), fused "sample + GEMM": a block computes a 64 (output channels) x 64
// (output pixels) tile. For each tap it finds the bilinear corners of its 64 pixels once (shared
// math of dpanet/sampling.h), then walks the input channels 16 at a time: it stages the weight slice
// and the sampled column slice (mask * bilinear value, float32) in shared memory and every thread
// accumulates a 4 x 4 register tile in float32. No column matrix goes to global memory and no BLAS
// library is needed; the only workspace is the weight rearranged tap-major by rearrange_weight_kernel
// so that weight slices load coalesced. Kept apart from its launcher so that plugins/tests can also
// run it on the CPU.
#pragma once

#include "cuda_support.h"
#include "dpanet/sampling.h"

namespace dpanet::cuda {

constexpr int kTileO = 64;
constexpr int kTilePixels = 64;
constexpr int kTileC = 16;
constexpr int kThreads = 256;  // 16 x 16 threads, 4 x 4 outputs each

struct Geometry {
    int channels, height, width, kernel_w, taps, out_channels;
    int stride_y, stride_x, pad_y, pad_x, dil_y, dil_x;
    int out_w, out_pixels;
};

// tap_major[(t * C + c) * O + o] = weight[o][c][t], one thread per element.
template <typename T>
__global__ void rearrange_weight_kernel(T const* weight, T* tap_major, int out_channels, int channels, int taps) {
    const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i >= static_cast<int64_t>(out_channels) * channels * taps) return;
    const int o = static_cast<int>(i % out_channels);
    const int64_t rest = i / out_channels;
    const int c = static_cast<int>(rest % channels), t = static_cast<int>(rest / channels);
    tap_major[i] = weight[(static_cast<int64_t>(o) * channels + c) * taps + t];
}

// `weight` is tap-major, (KH*KW) x C x O (rearrange_weight_kernel).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    deform_conv_kernel(T const* x, T const* offset, T const* mask, T const* weight, T const* bias, T* out, Geometry g) {
    __shared__ float weight_tile[kTileC][kTileO];
    __shared__ float column_tile[kTileC][kTilePixels];
    __shared__ int corner_index[4][kTilePixels];
    __shared__ float corner_weight[4][kTilePixels];
    const int tid = threadIdx.x;
    const int p0 = blockIdx.x * kTilePixels;
    const int o0 = blockIdx.y * kTileO;
    const int n = blockIdx.z;
    const int64_t plane = static_cast<int64_t>(g.height) * g.width;
    T const* x_n = x + static_cast<int64_t>(n) * g.channels * plane;
    T const* offset_n = offset + static_cast<int64_t>(n) * 2 * g.taps * g.out_pixels;
    T const* mask_n = mask + static_cast<int64_t>(n) * g.taps * g.out_pixels;
    const int row = tid / 16, col = tid % 16;  // this thread's outputs: o0 + 4*row + i, p0 + 4*col + j

    float acc[4][4] = {};
    for (int t = 0; t < g.taps; ++t) {
        __syncthreads();  // the previous tap's corners are no longer read
        if (tid < kTilePixels) {
            const int p = p0 + tid;
            BilinearCorners cr{};
            if (p < g.out_pixels) {
                const int oy = p / g.out_w, ox = p % g.out_w;
                const float py = sampling_coordinate(oy, t / g.kernel_w, g.stride_y, g.pad_y, g.dil_y,
                                                     to_float(offset_n[2 * t * g.out_pixels + p]));
                const float px = sampling_coordinate(ox, t % g.kernel_w, g.stride_x, g.pad_x, g.dil_x,
                                                     to_float(offset_n[(2 * t + 1) * g.out_pixels + p]));
                cr = bilinear_corners(py, px, g.height, g.width, to_float(mask_n[t * g.out_pixels + p]));
            }
            for (int i = 0; i < 4; ++i) {
                corner_index[i][tid] = static_cast<int>(cr.index[i]);
                corner_weight[i][tid] = cr.weight[i];
            }
        }
        __syncthreads();
        for (int c0 = 0; c0 < g.channels; c0 += kTileC) {
            for (int e = tid; e < kTileC * kTileO; e += kThreads) {
                const int oo = e % kTileO, cc = e / kTileO;
                const int o = o0 + oo, c = c0 + cc;
                const bool valid = o < g.out_channels && c < g.channels;
                weight_tile[cc][oo] =
                    valid ? to_float(weight[(static_cast<int64_t>(t) * g.channels + c) * g.out_channels + o]) : 0.0f;
            }
            for (int e = tid; e < kTileC * kTilePixels; e += kThreads) {
                const int pp = e % kTilePixels, cc = e / kTilePixels;
                const int c = c0 + cc;
                float v = 0.0f;
                if (c < g.channels) {
                    T const* src = x_n + c * plane;
                    v = corner_weight[0][pp] * to_float(src[corner_index[0][pp]]) +
                        corner_weight[1][pp] * to_float(src[corner_index[1][pp]]) +
                        corner_weight[2][pp] * to_float(src[corner_index[2][pp]]) +
                        corner_weight[3][pp] * to_float(src[corner_index[3][pp]]);
                }
                column_tile[cc][pp] = v;
            }
            __syncthreads();
#pragma unroll
            for (int cc = 0; cc < kTileC; ++cc) {
                float a[4], b[4];
#pragma unroll
                for (int i = 0; i < 4; ++i) a[i] = weight_tile[cc][4 * row + i];
#pragma unroll
                for (int j = 0; j < 4; ++j) b[j] = column_tile[cc][4 * col + j];
#pragma unroll
                for (int i = 0; i < 4; ++i) {
#pragma unroll
                    for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
                }
            }
            __syncthreads();
        }
    }
    T* out_n = out + static_cast<int64_t>(n) * g.out_channels * g.out_pixels;
    for (int i = 0; i < 4; ++i) {
        const int o = o0 + 4 * row + i;
        if (o >= g.out_channels) continue;
        const float b = bias != nullptr ? to_float(bias[o]) : 0.0f;
        for (int j = 0; j < 4; ++j) {
            const int p = p0 + 4 * col + j;
            if (p < g.out_pixels) out_n[static_cast<int64_t>(o) * g.out_pixels + p] = from_float<T>(acc[i][j] + b);
        }
    }
}

inline Geometry deform_conv_geometry(DeformConvShapes const& s, DeformConvAttrs const& a, Dims4 const& out) {
    return {static_cast<int>(s.x[1]),  static_cast<int>(s.x[2]), static_cast<int>(s.x[3]),
            static_cast<int>(s.weight[3]), static_cast<int>(s.weight[2] * s.weight[3]), static_cast<int>(out[1]),
            a.stride[0], a.stride[1], a.padding[0], a.padding[1], a.dilation[0], a.dilation[1],
            static_cast<int>(out[3]), static_cast<int>(out[2] * out[3])};
}

inline dim3 rearrange_weight_grid(Geometry const& g) {
    return dim3(static_cast<unsigned>((static_cast<int64_t>(g.out_channels) * g.channels * g.taps + kThreads - 1) /
                                      kThreads));
}

inline dim3 deform_conv_grid(Geometry const& g, int64_t batch) {
    return dim3((g.out_pixels + kTilePixels - 1) / kTilePixels, (g.out_channels + kTileO - 1) / kTileO,
                static_cast<unsigned>(batch));
}

}  // namespace dpanet::cuda
