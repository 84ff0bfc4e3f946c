// Correlation (docs/ops.md) vectorised along x: for a block of kLanes output pixels and one dy, each
// channel loads the `first` vector once and multiplies it with the shifted `second` vectors of a
// group of up to kGroup displacements dx held in registers. Blocks whose window leaves the image
// are copied into zero-padded scratch rows first, so the inner loop has no bounds checks.
#include <algorithm>
#include <vector>

#include "dpanet/sampling.h"
#include "kernels.h"
#include "parallel.h"
#include "simd.h"

namespace dpanet::cpu::DPANET_CPU_ISA {
namespace {

constexpr int kGroup = 9;

struct Rows {
    float const* first;  // channel 0 of the block, then every `first_stride`
    int64_t first_stride;
    float const* second;  // x0 - d of row y + dy, channel 0, then every `second_stride`
    int64_t second_stride;
};

// acc[g] = sum_c first[c] * second[c][dx0 + g], g < G
template <int G>
void accumulate(Rows const& r, int64_t channels, int dx0, Vec* acc) {
    Vec sum[G] = {};
    for (int64_t c = 0; c < channels; ++c) {
        const Vec f = load(r.first + c * r.first_stride);
        float const* s = r.second + c * r.second_stride + dx0;
#pragma GCC unroll 16
        for (int g = 0; g < G; ++g) sum[g] += f * load(s + g);
    }
    for (int g = 0; g < G; ++g) acc[g] = sum[g];
}

void accumulate_group(int size, Rows const& r, int64_t channels, int dx0, Vec* acc) {
    switch (size) {
        case 1: return accumulate<1>(r, channels, dx0, acc);
        case 2: return accumulate<2>(r, channels, dx0, acc);
        case 3: return accumulate<3>(r, channels, dx0, acc);
        case 4: return accumulate<4>(r, channels, dx0, acc);
        case 5: return accumulate<5>(r, channels, dx0, acc);
        case 6: return accumulate<6>(r, channels, dx0, acc);
        case 7: return accumulate<7>(r, channels, dx0, acc);
        case 8: return accumulate<8>(r, channels, dx0, acc);
        default: return accumulate<kGroup>(r, channels, dx0, acc);
    }
}

// Copies `count` values starting at column x of every channel row into zero-padded scratch rows
// of `width` values (columns outside [0, W) read as zero).
void copy_padded(float const* row0, int64_t plane, int64_t channels, int64_t image_w, int64_t x, int64_t width,
                 float* scratch) {
    for (int64_t c = 0; c < channels; ++c) {
        float const* src = row0 + c * plane;
        float* dst = scratch + c * width;
        for (int64_t i = 0; i < width; ++i) {
            const int64_t xx = x + i;
            dst[i] = xx >= 0 && xx < image_w ? src[xx] : 0.0f;
        }
    }
}

}  // namespace

void correlation(float const* first, float const* second, Dims4 const& shape, int32_t max_displacement,
                 float* out, int threads) {
    const int64_t n_size = shape[0], channels = shape[1], h = shape[2], w = shape[3];
    const int d = max_displacement;
    const int size = 2 * d + 1;
    const int64_t plane = h * w;
    const int64_t padded_w = kLanes + 2 * d;
    const Vec channel_count = splat(static_cast<float>(channels));
    std::vector<std::vector<float>> scratch(threads);
    for (auto& s : scratch) s.resize(static_cast<std::size_t>(channels * (kLanes + padded_w)));

    parallel_for(n_size * h, threads, [&](int64_t task) {
        const int64_t n = task / h;
        const int64_t y = task % h;
        float const* f_image = first + n * channels * plane;
        float const* s_image = second + n * channels * plane;
        float* o_image = out + n * static_cast<int64_t>(size) * size * plane;
        float* f_scratch = scratch[thread_index()].data();
        float* s_scratch = f_scratch + channels * kLanes;
        Vec acc[kGroup];
        for (int64_t x0 = 0; x0 < w; x0 += kLanes) {
            const int64_t valid = std::min<int64_t>(kLanes, w - x0);
            const bool full = valid == kLanes;
            if (!full) copy_padded(f_image + y * w, plane, channels, w, x0, kLanes, f_scratch);
            for (int dy = -d; dy <= d; ++dy) {
                const int64_t yy = y + dy;
                float* o_row = o_image + correlation_channel(dy, -d, d) * plane + y * w + x0;
                if (yy < 0 || yy >= h) {
                    for (int dx = 0; dx < size; ++dx) std::fill(o_row + dx * plane, o_row + dx * plane + valid, 0.0f);
                    continue;
                }
                Rows rows{f_image + y * w + x0, plane, s_image + yy * w + x0 - d, plane};
                if (!full) rows.first = f_scratch, rows.first_stride = kLanes;
                if (!full || x0 - d < 0 || x0 + kLanes + d > w) {
                    copy_padded(s_image + yy * w, plane, channels, w, x0 - d, padded_w, s_scratch);
                    rows.second = s_scratch;
                    rows.second_stride = padded_w;
                }
                for (int dx0 = 0; dx0 < size; dx0 += kGroup) {
                    const int group = std::min(kGroup, size - dx0);
                    accumulate_group(group, rows, channels, dx0, acc);
                    for (int g = 0; g < group; ++g) {
                        float* o = o_row + (dx0 + g) * plane;
                        const Vec v = acc[g] / channel_count;
                        if (full) {
                            store(o, v);
                        } else {
                            float lanes[kLanes];
                            store(lanes, v);
                            std::copy(lanes, lanes + valid, o);
                        }
                    }
                }
            }
        }
    });
}

}  // namespace dpanet::cpu::DPANET_CPU_ISA
