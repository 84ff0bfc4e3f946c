// The correlation kernel (docs/ops.md), tiled through shared memory: a block computes a 32 x 8
// tile of output pixels for one dy and a group of up to 9 dx. Per chunk of channels it stages the
// `first` tile and the matching zero-padded strip of `second` (40 columns) in shared memory; each
// thread then accumulates its 9 displacements in registers (float32) and writes them once, divided
// by C. Kept apart from its launcher so that plugins/tests can also run it on the CPU.
#pragma once

#include "cuda_support.h"
#include "dpanet/sampling.h"

namespace dpanet::cuda {

constexpr int kTileX = 32;
constexpr int kTileY = 8;
constexpr int kGroup = 9;
constexpr int kStripX = kTileX + kGroup - 1;
constexpr int kChannelChunk = 16;

template <typename T>
__global__ void correlation_kernel(T const* first, T const* second, T* out, int channels, int h, int w, int d) {
    __shared__ float tile[kChannelChunk][kTileY][kTileX];
    __shared__ float strip[kChannelChunk][kTileY][kStripX];
    const int size = 2 * d + 1;
    const int groups = (size + kGroup - 1) / kGroup;
    const int dy = static_cast<int>(blockIdx.x) / groups - d;
    const int dx0 = static_cast<int>(blockIdx.x) % groups * kGroup;  // first dx of the group, plus d
    const int y_tiles = (h + kTileY - 1) / kTileY;
    const int n = static_cast<int>(blockIdx.z) / y_tiles;
    const int y0 = static_cast<int>(blockIdx.z) % y_tiles * kTileY;
    const int x0 = static_cast<int>(blockIdx.y) * kTileX;
    const int tid = threadIdx.y * kTileX + threadIdx.x;
    const int64_t plane = static_cast<int64_t>(h) * w;
    T const* f_image = first + static_cast<int64_t>(n) * channels * plane;
    T const* s_image = second + static_cast<int64_t>(n) * channels * plane;

    float acc[kGroup] = {};
    for (int c0 = 0; c0 < channels; c0 += kChannelChunk) {
        const int count = min(kChannelChunk, channels - c0);
        for (int i = tid; i < count * kTileY * kTileX; i += kTileX * kTileY) {
            const int c = i / (kTileY * kTileX), ly = i / kTileX % kTileY, lx = i % kTileX;
            const int y = y0 + ly, x = x0 + lx;
            tile[c][ly][lx] = y < h && x < w ? to_float(f_image[(c0 + c) * plane + y * w + x]) : 0.0f;
        }
        for (int i = tid; i < count * kTileY * kStripX; i += kTileX * kTileY) {
            const int c = i / (kTileY * kStripX), ly = i / kStripX % kTileY, j = i % kStripX;
            const int y = y0 + ly + dy, x = x0 + dx0 - d + j;
            const bool inside = y >= 0 && y < h && x >= 0 && x < w;
            strip[c][ly][j] = inside ? to_float(s_image[(c0 + c) * plane + y * w + x]) : 0.0f;
        }
        __syncthreads();
        for (int c = 0; c < count; ++c) {
            const float f = tile[c][threadIdx.y][threadIdx.x];
#pragma unroll
            for (int g = 0; g < kGroup; ++g) acc[g] += f * strip[c][threadIdx.y][threadIdx.x + g];
        }
        __syncthreads();
    }
    const int y = y0 + threadIdx.y, x = x0 + threadIdx.x;
    if (y >= h || x >= w) return;
    T* o_image = out + static_cast<int64_t>(n) * size * size * plane + y * w + x;
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
        if (dx0 + g < size) {
            o_image[correlation_channel(dy, dx0 + g - d, d) * plane] = from_float<T>(acc[g] / channels);
        }
    }
}

// The launch shape for an N x C x H x W input and max_displacement d.
inline dim3 correlation_grid(Dims4 const& s, int d) {
    const int size = 2 * d + 1;
    return dim3(size * ((size + kGroup - 1) / kGroup), static_cast<unsigned>((s[3] + kTileX - 1) / kTileX),
                static_cast<unsigned>(s[0] * ((s[2] + kTileY - 1) / kTileY)));
}

inline dim3 correlation_block() { return dim3(kTileX, kTileY); }

}  // namespace dpanet::cuda
