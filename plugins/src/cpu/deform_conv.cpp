// Modulated deformable convolution (docs/ops.md) as fused chunks of "sample into a column matrix,
// then GEMM": x is made channels-last so that each bilinear corner is a contiguous run of C values;
// each thread fills the column matrix of a chunk of output pixels (one row per pixel) and has
// OpenBLAS (scipy-openblas32, single-threaded inside our threads; docs/plugins.md) multiply the
// weight by it, straight into the output planes.
#include <cblas.h>

#include <algorithm>
#include <vector>

#include "dpanet/sampling.h"
#include "kernels.h"
#include "parallel.h"
#include "simd.h"

namespace dpanet::cpu {
namespace {

constexpr std::size_t kChunkColumnBytes = std::size_t{16} << 20;  // column matrix of one chunk
constexpr int64_t kMinChunk = 1024;  // output pixels per chunk, when there are enough

struct Geometry {
    int64_t batch, channels, height, width;
    int64_t kernel_h, kernel_w, taps, k_size;  // k_size = taps * channels (tap-major columns)
    int64_t out_channels, out_h, out_w, out_pixels;
    int64_t chunk;  // output pixels per GEMM
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
    const int64_t row_bytes = std::max<int64_t>(1, g.k_size) * 4;
    const int64_t fits = static_cast<int64_t>(kChunkColumnBytes) / row_bytes;
    const int64_t share = (g.out_pixels + threads - 1) / threads;  // every thread gets work
    // about four chunks per thread, so that a thread held up by another process does not hold up
    // the rest, unless that makes them so small that OpenBLAS repacks the weight too often
    const int64_t quarter = (g.out_pixels + 4 * threads - 1) / (4 * threads);
    g.chunk = std::max<int64_t>(1, std::min({fits, share, std::max(quarter, kMinChunk)}));
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
    if (g.batch == 0 || g.out_channels == 0 || g.out_pixels == 0) return;
    // weight (O, C, KH, KW) -> O x K, column k = t * C + c (the column matrix's order)
    std::vector<float> w(static_cast<std::size_t>(g.out_channels * g.k_size));
    parallel_for(g.out_channels, threads, [&](int64_t o) {
        for (int64_t k = 0; k < g.k_size; ++k) {
            w[o * g.k_size + k] = weight[(o * g.channels + k % g.channels) * g.taps + k / g.channels];
        }
    });
    std::vector<float> xt(static_cast<std::size_t>(g.height * g.width * g.channels));
    std::vector<std::vector<float>> columns(threads);
    for (auto& c : columns) c.resize(static_cast<std::size_t>(g.chunk * g.k_size));
    // our threads call OpenBLAS concurrently: its own pool would only compete with them
    scipy_openblas_set_num_threads(1);
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
            fill_columns(xt.data(), off, msk, g, attrs, p0, count, cols);
            for (int64_t o = 0; o < g.out_channels; ++o) {
                std::fill_n(dst + o * g.out_pixels + p0, count, bias != nullptr ? bias[o] : 0.0f);
            }
            // out[o][p0 + i] += sum_k w[o][k] * cols[i][k]
            scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(g.out_channels),
                              static_cast<blasint>(count), static_cast<blasint>(g.k_size), 1.0f, w.data(),
                              static_cast<blasint>(g.k_size), cols, static_cast<blasint>(g.k_size), 1.0f, dst + p0,
                              static_cast<blasint>(g.out_pixels));
        });
    }
}

std::size_t deform_conv_workspace_bytes(Dims4 const& x, Dims4 const& weight, Dims4 const& out_shape, int threads) {
    const Geometry g = geometry(x, weight, out_shape, threads);
    const int64_t floats = g.height * g.width * g.channels + g.out_channels * g.k_size + threads * g.chunk * g.k_size;
    return static_cast<std::size_t>(floats) * 4;
}

}  // namespace dpanet::cpu
