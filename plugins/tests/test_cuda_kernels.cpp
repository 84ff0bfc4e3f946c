// The CUDA kernels run on the CPU (cuda_emulation.h) against the CPU kernels, on shapes that cross
// tiles, channel chunks and displacement groups: this checks the kernels' indexing, tiling and
// boundary handling on machines without a GPU (float32; the GPU tests cover float16 and speed).
#include "cuda_emulation.h"
// the emulation must come first
#include <cmath>
#include <random>
#include <vector>

#include "check.h"
#include "correlation_kernel.cuh"
#include "deform_conv_kernel.cuh"
#include "dpanet/cpu_ops.h"

using dpanet::Dims4;

namespace {

std::vector<float> uniform(int64_t n, float scale, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-scale, scale);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (float& x : v) x = dist(rng);
    return v;
}

int64_t count(Dims4 const& d) { return d[0] * d[1] * d[2] * d[3]; }

// Every element within `tolerance`: a NaN on either side (an output cell the kernel never wrote
// keeps the NaN it was filled with) fails, since no comparison with NaN is true.
bool all_close(std::vector<float> const& expected, std::vector<float> const& got, float tolerance) {
    if (expected.size() != got.size()) return false;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        if (!(std::fabs(expected[i] - got[i]) <= tolerance)) return false;
    }
    return true;
}

void correlation_matches_cpu(Dims4 s, int d) {
    auto first = uniform(count(s), 1.0f, 1), second = uniform(count(s), 1.0f, 2);
    Dims4 out{};
    char error[256];
    CHECK(dpanet_correlation_output_shape(s.data(), s.data(), d, out.data(), error, sizeof error) == 0);
    std::vector<float> expected(count(out)), got(count(out), NAN);
    CHECK(dpanet_correlation_cpu(first.data(), s.data(), second.data(), s.data(), d, expected.data(), 1, error,
                                 sizeof error) == 0);
    emulate_launch(dpanet::cuda::correlation_grid(s, d), dpanet::cuda::correlation_block(),
                   dpanet::cuda::correlation_kernel<float>, first.data(), second.data(), got.data(),
                   static_cast<int>(s[1]), static_cast<int>(s[2]), static_cast<int>(s[3]), d);
    CHECK(all_close(expected, got, 1e-5f));
}

void deform_conv_matches_cpu(Dims4 x_shape, Dims4 w_shape, dpanet::DeformConvAttrs a, float offset_scale,
                             bool with_bias) {
    Dims4 out{};
    CHECK(dpanet::deform_conv_output_dims(x_shape, w_shape, a, out).empty());
    const int64_t taps = w_shape[2] * w_shape[3];
    Dims4 offset_shape{x_shape[0], 2 * taps, out[2], out[3]}, mask_shape{x_shape[0], taps, out[2], out[3]};
    auto x = uniform(count(x_shape), 1.0f, 3), offset = uniform(count(offset_shape), offset_scale, 4);
    auto mask = uniform(count(mask_shape), 1.0f, 5), weight = uniform(count(w_shape), 0.2f, 6);
    auto bias = uniform(w_shape[0], 1.0f, 7);
    for (float& m : mask) m = std::fabs(m);
    const int64_t bias_size = with_bias ? w_shape[0] : -1;
    const int32_t attrs[6] = {a.stride[0], a.stride[1], a.padding[0], a.padding[1], a.dilation[0], a.dilation[1]};
    std::vector<float> expected(count(out)), got(count(out), NAN);
    char error[256];
    CHECK(dpanet_deform_conv_cpu(x.data(), x_shape.data(), offset.data(), offset_shape.data(), mask.data(),
                                 mask_shape.data(), weight.data(), w_shape.data(), bias.data(), bias_size, attrs,
                                 expected.data(), 1, error, sizeof error) == 0);
    const dpanet::DeformConvShapes shapes{x_shape, offset_shape, mask_shape, w_shape, bias_size};
    const auto g = dpanet::cuda::deform_conv_geometry(shapes, a, out);
    std::vector<float> tap_major(dpanet::deform_conv_cuda_workspace_bytes(w_shape, sizeof(float)) / sizeof(float));
    emulate_launch(dpanet::cuda::rearrange_weight_grid(g), dim3(dpanet::cuda::kThreads),
                   dpanet::cuda::rearrange_weight_kernel<float>, static_cast<float const*>(weight.data()),
                   tap_major.data(), g.out_channels, g.channels, g.taps);
    emulate_launch(dpanet::cuda::deform_conv_grid(g, out[0]), dim3(dpanet::cuda::kThreads),
                   dpanet::cuda::deform_conv_kernel<float>, static_cast<float const*>(x.data()),
                   static_cast<float const*>(offset.data()), static_cast<float const*>(mask.data()),
                   static_cast<float const*>(tap_major.data()),
                   with_bias ? static_cast<float const*>(bias.data()) : nullptr, got.data(), g);
    CHECK(all_close(expected, got, 1e-5f));
}

}  // namespace

int main() {
    correlation_matches_cpu({1, 1, 1, 1}, 0);
    correlation_matches_cpu({2, 3, 5, 7}, 1);
    correlation_matches_cpu({1, 20, 11, 37}, 4);  // two channel chunks, two x tiles, two y tiles
    correlation_matches_cpu({1, 3, 6, 20}, 12);   // three dx groups, displacements past the image
    deform_conv_matches_cpu({1, 3, 7, 9}, {4, 3, 3, 3}, {{1, 1}, {1, 1}, {1, 1}}, 1.5f, true);
    deform_conv_matches_cpu({2, 4, 5, 6}, {3, 4, 3, 3}, {{2, 1}, {2, 0}, {1, 2}}, 2.0f, false);
    deform_conv_matches_cpu({1, 37, 11, 13}, {70, 37, 3, 3}, {{1, 1}, {1, 1}, {1, 1}}, 12.0f, true);  // > 1 tile
    deform_conv_matches_cpu({1, 5, 9, 8}, {3, 5, 2, 3}, {{1, 2}, {0, 3}, {2, 1}}, 0.7f, true);
    return dpanet::test::summary("test_cuda_kernels");
}
