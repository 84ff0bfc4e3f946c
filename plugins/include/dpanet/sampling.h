// The index and sampling math of docs/ops.md, written once for the CPU and the CUDA kernels.
#pragma once

#include <cstdint>

#if !defined(__CUDACC__)
#include <math.h>
#endif

#if defined(__CUDACC__)
#define DPANET_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define DPANET_HOST_DEVICE inline
#endif

namespace dpanet {

// Sampling coordinate of tap `k` (along one axis) for output index `o`, before clamping.
DPANET_HOST_DEVICE float sampling_coordinate(int64_t o, int64_t k, int stride, int pad, int dilation,
                                             float offset) {
    return static_cast<float>(o * stride - pad + k * dilation) + offset;
}

// The four bilinear corners of one sampling point with zero padding: `index` is the element offset
// y * W + x inside one H x W plane (0 for a corner outside the image, whose weight is then 0), and
// `weight` the bilinear weight times `scale` (the DCN mask). Corner order: (y0, x0), (y0, x0 + 1),
// (y0 + 1, x0), (y0 + 1, x0 + 1).
struct BilinearCorners {
    int64_t index[4];
    float weight[4];
};

DPANET_HOST_DEVICE float clamp_coordinate(float v, float hi) {
    // Points at or beyond one pixel outside sample zero; clamping keeps floor() in integer range and
    // sends NaN to the low end (fmaxf returns the non-NaN operand).
    return fminf(fmaxf(v, -2.0f), hi + 1.0f);
}

DPANET_HOST_DEVICE BilinearCorners bilinear_corners(float py, float px, int64_t h, int64_t w, float scale) {
    py = clamp_coordinate(py, static_cast<float>(h));
    px = clamp_coordinate(px, static_cast<float>(w));
    const float fy = floorf(py);
    const float fx = floorf(px);
    const float ly = py - fy;
    const float lx = px - fx;
    const float hy = 1.0f - ly;
    const float hx = 1.0f - lx;
    const int64_t y0 = static_cast<int64_t>(fy);
    const int64_t x0 = static_cast<int64_t>(fx);
    const float bilinear[4] = {hy * hx, hy * lx, ly * hx, ly * lx};
    BilinearCorners c{};
    for (int i = 0; i < 4; ++i) {
        const int64_t y = y0 + (i >> 1);
        const int64_t x = x0 + (i & 1);
        const bool inside = y >= 0 && y < h && x >= 0 && x < w;
        c.index[i] = inside ? y * w + x : 0;
        c.weight[i] = inside ? bilinear[i] * scale : 0.0f;
    }
    return c;
}

// Correlation channel of displacement (dy, dx) in [-d, d]^2: dx runs fastest.
DPANET_HOST_DEVICE int64_t correlation_channel(int dy, int dx, int d) {
    return static_cast<int64_t>(dy + d) * (2 * d + 1) + (dx + d);
}

}  // namespace dpanet
