// Modulated deformable convolution (docs/ops.md) as fused chunks of "sample into a column matrix,
// then GEMM": x is made channels-last so that each bilinear corner is a contiguous run of C values;
// each thread fills the column matrix of a chunk of output pixels (kept small enough to stay in its
// L2 cache) and multiplies it by the packed weight.
#include <algorithm>
#include <vector>

#include "dpanet/sampling.h"
#include "gemm.h"
#include "kernels.h"
#include "parallel.h"

namespace dpanet::cpu {
namespace {

constexpr std::size_t kChunkColumnBytes = std::size_t{512} << 10;

struct Geometry {
    int64_t batch, channels, height, width;
    int64_t kernel_h, kernel_w, taps, k_size;  // k_size = taps * channels (tap-major rows)
    int64_t out_channels, out_h, out_w, out_pixels;
    int64_t panels, chunk;  // GEMM panels, output pixels per chunk (a multiple of kTileRows)
};

Geometry geometry(Dims4 const& x, Dims4 const& weight, Dims4 const& out, int threads) {
    Geometry g{};
    g.batch = x[0];
    g.channels = x[1];
    g.height = x[2];
    g.width = x[3];
    g.kernel_h = weight[2];
    g.kernel_w = weight[3];
    g.taps = g.kernel_h * g.kernel_w;
    g.k_size = g.taps * g.channels;
    g.out_channels = out[1];
    g.out_h = out[2];
    g.out_w = out[3];
    g.out_pixels = g.out_h * g.out_w;
    g.panels = (g.out_channels + kPanel - 1) / kPanel;
    const int64_t row_bytes = std::max<int64_t>(1, g.k_size) * 4;
    int64_t chunk = std::max<int64_t>(1, static_cast<int64_t>(kChunkColumnBytes) / row_bytes);
    // enough chunks to keep every thread busy
    chunk = std::min(chunk, (g.out_pixels + 4 * threads - 1) / (4 * threads));
    g.chunk = (std::max<int64_t>(1, chunk) + kTileRows - 1) / kTileRows * kTileRows;
    return g;
}

// xt[(y * W + x) * C + c] = x[c][y][x] for one image.
void to_channels_last(float const* x, Geometry const& g, float* xt, int threads) {
    const int64_t plane = g.height * g.width;
    parallel_for(g.height, threads, [&](int64_t y) {
        for (int64_t c = 0; c < g.channels; ++c) {
            float const* src = x + c * plane + y * g.width;
            float* dst = xt + y * g.width * g.channels + c;
            for (int64_t i = 0; i < g.width; ++i) dst[i * g.channels] = src[i];
        }
    });
}

// One column-matrix row per output pixel: for every tap, C values mask * bilinear sample.
void fill_columns(float const* xt, float const* offset, float const* mask, Geometry const& g,
                  DeformConvAttrs const& a, int64_t p0, int64_t count, float* columns) {
    const int64_t c_size = g.channels;
    const int64_t vec_end = c_size / kLanes * kLanes;
    for (int64_t i = 0; i < count; ++i) {
        const int64_t p = p0 + i;
        const int64_t oy = p / g.out_w;
        const int64_t ox = p % g.out_w;
        float* row = columns + i * g.k_size;
        for (int64_t t = 0; t < g.taps; ++t) {
            const int64_t ky = t / g.kernel_w;
            const int64_t kx = t % g.kernel_w;
            const float py = sampling_coordinate(oy, ky, a.stride[0], a.padding[0], a.dilation[0],
                                                 offset[(2 * t) * g.out_pixels + p]);
            const float px = sampling_coordinate(ox, kx, a.stride[1], a.padding[1], a.dilation[1],
                                                 offset[(2 * t + 1) * g.out_pixels + p]);
            const BilinearCorners cr = bilinear_corners(py, px, g.height, g.width, mask[t * g.out_pixels + p]);
            float const* v0 = xt + cr.index[0] * c_size;
            float const* v1 = xt + cr.index[1] * c_size;
            float const* v2 = xt + cr.index[2] * c_size;
            float const* v3 = xt + cr.index[3] * c_size;
            float* dst = row + t * c_size;
            const Vec w0 = splat(cr.weight[0]), w1 = splat(cr.weight[1]);
            const Vec w2 = splat(cr.weight[2]), w3 = splat(cr.weight[3]);
            for (int64_t c = 0; c < vec_end; c += kLanes) {
                store(dst + c, w0 * load(v0 + c) + w1 * load(v1 + c) + w2 * load(v2 + c) + w3 * load(v3 + c));
            }
            for (int64_t c = vec_end; c < c_size; ++c) {
                dst[c] = cr.weight[0] * v0[c] + cr.weight[1] * v1[c] + cr.weight[2] * v2[c] + cr.weight[3] * v3[c];
            }
        }
    }
}

}  // namespace

void deform_conv(float const* x, float const* offset, float const* mask, float const* weight, float const* bias,
                 DeformConvShapes const& shapes, DeformConvAttrs const& attrs, Dims4 const& out_shape, float* out,
                 int threads) {
    const Geometry g = geometry(shapes.x, shapes.weight, out_shape, threads);
    if (g.batch == 0 || g.out_channels == 0) return;
    // weight (O, C, KH, KW) -> rows k = t * C + c
    const std::vector<float> packed = pack_panels(g.out_channels, g.k_size, [&](int64_t o, int64_t k) {
        return weight[(o * g.channels + k % g.channels) * g.taps + k / g.channels];
    }, threads);
    const int64_t ldc = g.panels * kPanel;
    std::vector<float> xt(static_cast<std::size_t>(g.height * g.width * g.channels));
    std::vector<std::vector<float>> columns(threads), results(threads);
    for (int i = 0; i < threads; ++i) {
        columns[i].assign(static_cast<std::size_t>(g.chunk * g.k_size), 0.0f);
        results[i].resize(static_cast<std::size_t>(g.chunk * ldc));
    }
    const int64_t chunks = (g.out_pixels + g.chunk - 1) / g.chunk;
    for (int64_t n = 0; n < g.batch; ++n) {
        to_channels_last(x + n * g.channels * g.height * g.width, g, xt.data(), threads);
        float const* off = offset + n * 2 * g.taps * g.out_pixels;
        float const* msk = mask + n * g.taps * g.out_pixels;
        float* dst = out + n * g.out_channels * g.out_pixels;
        parallel_for(chunks, threads, [&](int64_t chunk) {
            const int64_t p0 = chunk * g.chunk;
            const int64_t count = std::min(g.chunk, g.out_pixels - p0);
            float* cols = columns[thread_index()].data();
            float* res = results[thread_index()].data();
            fill_columns(xt.data(), off, msk, g, attrs, p0, count, cols);
            const int64_t rows = (count + kTileRows - 1) / kTileRows * kTileRows;
            gemm(rows, g.k_size, g.panels, cols, packed.data(), res);
            for (int64_t o = 0; o < g.out_channels; ++o) {
                const float b = bias != nullptr ? bias[o] : 0.0f;
                float* plane = dst + o * g.out_pixels + p0;
                for (int64_t i = 0; i < count; ++i) plane[i] = res[i * ldc + o] + b;
            }
        });
    }
}

std::size_t deform_conv_workspace_bytes(Dims4 const& x, Dims4 const& weight, Dims4 const& out_shape, int threads) {
    const Geometry g = geometry(x, weight, out_shape, threads);
    const int64_t floats = g.height * g.width * g.channels + g.panels * kPanel * g.k_size +
                           threads * g.chunk * (g.k_size + g.panels * kPanel);
    return static_cast<std::size_t>(floats) * 4;
}

}  // namespace dpanet::cpu
