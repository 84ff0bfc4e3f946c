// Modulated deformable convolution (docs/ops.md) as fused chunks of "sample into a column block,
// then GEMM": x is made channels-last so that each bilinear corner is a contiguous run of C values;
// each thread takes a chunk of output pixels and, tap by tap, fills the chunk's column block (one
// row of C samples per pixel, small enough to stay in cache) and has OpenBLAS (scipy-openblas32,
// single-threaded inside our threads; docs/plugins.md) add that tap's weight times it straight into
// the output planes.
#include <cblas.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "dpanet/sampling.h"
#include "kernels.h"
#include "parallel.h"
#include "simd.h"

namespace dpanet::cpu::DPANET_CPU_ISA {
namespace {

// One tap's column block of a chunk: at most 1 MiB, so that it is still in the core's cache (1 MiB of
// L2 on the Zen 4 measured) when OpenBLAS packs it; 2 and 4 MiB measured no faster (docs/plugins.md).
constexpr std::size_t kChunkColumnBytes = std::size_t{1} << 20;
constexpr int64_t kMinChunk = 1024;  // output pixels per chunk at least, unless the 1 MiB block allows fewer
// A workspace up to this size is kept by the calling thread for its next call: fresh memory costs a
// page fault per 4 KiB, several percent of a call at DPANet's quarter-frame sizes (docs/plugins.md).
constexpr std::size_t kKeptWorkspaceBytes = std::size_t{64} << 20;

struct Geometry {
    int64_t batch, channels, height, width;
    int64_t kernel_h, kernel_w, taps, k_size;  // k_size = taps * channels
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
    const int64_t row_bytes = std::max<int64_t>(1, g.channels) * 4;
    const int64_t fits = std::max<int64_t>(1, static_cast<int64_t>(kChunkColumnBytes) / row_bytes);
    // about four chunks per thread, so that a thread held up by another process does not hold up
    // the rest, unless that makes them so small that OpenBLAS repacks the weight too often
    const int64_t quarter = (g.out_pixels + 4 * threads - 1) / (4 * threads);
    const int64_t largest = std::min(fits, std::max(quarter, kMinChunk));
    // a multiple of `threads` chunks of equal size, so that no thread waits for another's last one
    const int64_t rounds = std::max<int64_t>(1, (g.out_pixels + threads * largest - 1) / (threads * largest));
    g.chunk = std::max<int64_t>(1, (g.out_pixels + threads * rounds - 1) / (threads * rounds));
    return g;
}

// Floats of the workspace: the tap-major weight, a channels-last image, a column block per thread.
int64_t workspace_floats(Geometry const& g, int threads) {
    return g.out_channels * g.k_size + g.height * g.width * g.channels + threads * g.chunk * g.channels;
}

// xt[p * C + c] = x[c][p] for one image (p = y * W + x), in tiles of kTile pixels x kTile channels so
// that the reads and the writes of a tile stay within a few cache lines.
void to_channels_last(float const* x, Geometry const& g, float* xt, int threads) {
    constexpr int64_t kTile = 16;
    const int64_t plane = g.height * g.width;
    parallel_for((plane + kTile - 1) / kTile, threads, [&](int64_t tile) {
        const int64_t p0 = tile * kTile;
        const int64_t p1 = std::min(plane, p0 + kTile);
        for (int64_t c0 = 0; c0 < g.channels; c0 += kTile) {
            const int64_t c1 = std::min(g.channels, c0 + kTile);
            for (int64_t p = p0; p < p1; ++p) {
                for (int64_t c = c0; c < c1; ++c) xt[p * g.channels + c] = x[c * plane + p];
            }
        }
    });
}

// The column block of tap t for `count` output pixels from p0: row i holds, for every channel,
// mask * bilinear sample of pixel p0 + i.
void fill_tap(float const* xt, float const* offset, float const* mask, Geometry const& g, DeformConvAttrs const& a,
              int64_t t, int64_t p0, int64_t count, float* columns) {
    const int64_t c_size = g.channels;
    const int64_t vec_end = c_size / kLanes * kLanes;
    const int64_t ky = t / g.kernel_w;
    const int64_t kx = t % g.kernel_w;
    float const* off_y = offset + (2 * t) * g.out_pixels;
    float const* off_x = offset + (2 * t + 1) * g.out_pixels;
    float const* msk = mask + t * g.out_pixels;
    for (int64_t i = 0; i < count; ++i) {
        const int64_t p = p0 + i;
        const float py = sampling_coordinate(p / g.out_w, ky, a.stride[0], a.padding[0], a.dilation[0], off_y[p]);
        const float px = sampling_coordinate(p % g.out_w, kx, a.stride[1], a.padding[1], a.dilation[1], off_x[p]);
        const BilinearCorners cr = bilinear_corners(py, px, g.height, g.width, msk[p]);
        float const* v0 = xt + cr.index[0] * c_size;
        float const* v1 = xt + cr.index[1] * c_size;
        float const* v2 = xt + cr.index[2] * c_size;
        float const* v3 = xt + cr.index[3] * c_size;
        float* dst = columns + i * c_size;
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

// The workspace of one call: the calling thread's kept buffer when it fits under
// kKeptWorkspaceBytes (grown as needed), otherwise memory of its own, released on return.
class Workspace {
public:
    explicit Workspace(int64_t floats) {
        const auto size = static_cast<std::size_t>(floats);
        if (size * sizeof(float) <= kKeptWorkspaceBytes) {
            static thread_local std::vector<float> kept;
            if (kept.size() < size) kept.resize(size);
            data_ = kept.data();
        } else {
            own_.reset(new float[size]);
            data_ = own_.get();
        }
    }
    float* data() const { return data_; }

private:
    std::unique_ptr<float[]> own_;
    float* data_ = nullptr;
};

}  // namespace

void deform_conv(float const* x, float const* offset, float const* mask, float const* weight, float const* bias,
                 DeformConvShapes const& shapes, DeformConvAttrs const& attrs, Dims4 const& out_shape, float* out,
                 int threads) {
    const Geometry g = geometry(shapes.x, shapes.weight, out_shape, threads);
    if (g.batch == 0 || g.out_channels == 0 || g.out_pixels == 0) return;
    const Workspace workspace(workspace_floats(g, threads));
    // weight (O, C, KH, KW) -> O x K with column k = t * C + c, so that tap t is an O x C block
    float* w = workspace.data();
    float* xt = w + g.out_channels * g.k_size;
    float* columns = xt + g.height * g.width * g.channels;
    parallel_for(g.out_channels, threads, [&](int64_t o) {
        for (int64_t c = 0; c < g.channels; ++c) {
            float const* src = weight + (o * g.channels + c) * g.taps;
            for (int64_t t = 0; t < g.taps; ++t) w[o * g.k_size + t * g.channels + c] = src[t];
        }
    });
    // our threads call OpenBLAS concurrently: its own pool would only compete with them
    scipy_openblas_set_num_threads(1);
    const int64_t chunks = (g.out_pixels + g.chunk - 1) / g.chunk;
    for (int64_t n = 0; n < g.batch; ++n) {
        to_channels_last(x + n * g.channels * g.height * g.width, g, xt, threads);
        float const* off = offset + n * 2 * g.taps * g.out_pixels;
        float const* msk = mask + n * g.taps * g.out_pixels;
        float* dst = out + n * g.out_channels * g.out_pixels;
        parallel_for(chunks, threads, [&](int64_t chunk) {
            const int64_t p0 = chunk * g.chunk;
            const int64_t count = std::min(g.chunk, g.out_pixels - p0);
            float* cols = columns + thread_index() * g.chunk * g.channels;
            for (int64_t o = 0; o < g.out_channels; ++o) {
                std::fill_n(dst + o * g.out_pixels + p0, count, bias != nullptr ? bias[o] : 0.0f);
            }
            for (int64_t t = 0; t < g.taps && g.channels > 0; ++t) {
                fill_tap(xt, off, msk, g, attrs, t, p0, count, cols);
                // out[o][p0 + i] += sum_c w[o][t * C + c] * cols[i][c]
                scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(g.out_channels),
                                  static_cast<blasint>(count), static_cast<blasint>(g.channels), 1.0f,
                                  w + t * g.channels, static_cast<blasint>(g.k_size), cols,
                                  static_cast<blasint>(g.channels), 1.0f, dst + p0, static_cast<blasint>(g.out_pixels));
            }
        });
    }
}

std::size_t deform_conv_workspace_bytes(Dims4 const& x, Dims4 const& weight, Dims4 const& out_shape, int threads) {
    return static_cast<std::size_t>(workspace_floats(geometry(x, weight, out_shape, threads), threads)) * 4;
}

}  // namespace dpanet::cpu::DPANET_CPU_ISA
