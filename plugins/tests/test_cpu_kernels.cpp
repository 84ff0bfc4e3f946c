// The CPU kernels through their C ABI against float64 loops written from docs/ops.md (no code shared
// with the kernels), on shapes that cross vector blocks, channel tails, border blocks, displacement
// groups and DCN chunks, at 1 and 3 threads. The same references on every machine: x86-64 (each
// instruction-set variant, chosen with DPANET_CPU_KERNELS) and aarch64 under qemu (the NEON path).
//
//   test_cpu_kernels [ISA [THREADS...]]   fails unless the library runs the kernels of ISA ("baseline",
//       "avx2", ...; "any": whichever it chose), exits 77 (ctest: skipped) when this CPU cannot run
//       them; THREADS: the thread counts to test (default 1 and 3)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "dpanet/cpu_ops.h"

namespace {

using Shape = std::vector<int64_t>;  // NCHW

constexpr int kSkipped = 77;

int64_t count(Shape const& s) { return s[0] * s[1] * s[2] * s[3]; }

std::vector<float> uniform(int64_t n, float lo, float hi, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (float& x : v) x = dist(rng);
    return v;
}

// |got - expected| <= 1e-5 * (1 + the sum of |terms|) for every element, where `scale` holds that
// sum: float32 accumulation errors grow with it. NaN (never written) fails.
bool all_close(std::vector<double> const& expected, std::vector<double> const& scale, std::vector<float> const& got,
               char const* what) {
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const double tolerance = 1e-5 * (1.0 + scale[i]);
        if (!(std::fabs(got[i] - expected[i]) <= tolerance)) {
            std::fprintf(stderr, "%s: element %zu is %.8g, expected %.8g (tolerance %.2g)\n", what, i, got[i],
                         expected[i], tolerance);
            return false;
        }
    }
    return true;
}

void correlation_matches_reference(Shape s, int d, int threads) {
    const int64_t n_size = s[0], c_size = s[1], h = s[2], w = s[3];
    const auto first = uniform(count(s), -1.0f, 1.0f, 11), second = uniform(count(s), -1.0f, 1.0f, 12);
    const int size = 2 * d + 1;
    const std::size_t out_count = static_cast<std::size_t>(n_size * size * size * h * w);
    std::vector<double> expected(out_count), scale(out_count);
    auto at = [&](std::vector<float> const& t, int64_t n, int64_t c, int64_t y, int64_t x) {
        return static_cast<double>(t[static_cast<std::size_t>(((n * c_size + c) * h + y) * w + x)]);
    };
    for (int64_t n = 0; n < n_size; ++n)
        for (int dy = -d; dy <= d; ++dy)
            for (int dx = -d; dx <= d; ++dx)
                for (int64_t y = 0; y < h; ++y)
                    for (int64_t x = 0; x < w; ++x) {
                        double sum = 0.0, magnitude = 0.0;
                        if (y + dy >= 0 && y + dy < h && x + dx >= 0 && x + dx < w) {
                            for (int64_t c = 0; c < c_size; ++c) {
                                const double p = at(first, n, c, y, x) * at(second, n, c, y + dy, x + dx);
                                sum += p;
                                magnitude += std::fabs(p);
                            }
                        }
                        const int64_t k = (dy + d) * size + (dx + d);
                        const auto i = static_cast<std::size_t>(((n * size * size + k) * h + y) * w + x);
                        expected[i] = sum / static_cast<double>(c_size);
                        scale[i] = magnitude / static_cast<double>(c_size);
                    }
    std::vector<float> out(out_count, NAN);
    char error[256] = "";
    const int status = dpanet_correlation_cpu(first.data(), s.data(), second.data(), s.data(), d, out.data(), threads,
                                              error, sizeof error);
    CHECK(status == 0);
    const std::string what = "correlation " + std::to_string(c_size) + "x" + std::to_string(h) + "x" +
                             std::to_string(w) + " d=" + std::to_string(d) + " threads=" + std::to_string(threads);
    CHECK(all_close(expected, scale, out, what.c_str()));
    std::printf("%s: done\n", what.c_str());
}

struct Dcn {
    Shape x;
    int64_t out_channels, kernel;
    int stride[2], padding[2], dilation[2];
    bool bias;
    float offset_range;  // offsets uniform in [-range, range]: beyond the border for large ones
};

// bilinear sample of plane `v` (h x w) at (py, px), zero outside, in float64
double sample(float const* v, int64_t h, int64_t w, float py, float px) {
    const double y0 = std::floor(static_cast<double>(py)), x0 = std::floor(static_cast<double>(px));
    const double ly = py - y0, lx = px - x0;
    auto value = [&](double y, double x) {
        if (y < 0 || y >= h || x < 0 || x >= w) return 0.0;
        return static_cast<double>(v[static_cast<int64_t>(y) * w + static_cast<int64_t>(x)]);
    };
    return (1 - ly) * (1 - lx) * value(y0, x0) + (1 - ly) * lx * value(y0, x0 + 1) + ly * (1 - lx) * value(y0 + 1, x0) +
           ly * lx * value(y0 + 1, x0 + 1);
}

void deform_conv_matches_reference(Dcn const& p, int threads) {
    const int64_t n_size = p.x[0], c_size = p.x[1], h = p.x[2], w = p.x[3], k = p.kernel, taps = k * k;
    const int64_t ho = (h + 2 * p.padding[0] - p.dilation[0] * (k - 1) - 1) / p.stride[0] + 1;
    const int64_t wo = (w + 2 * p.padding[1] - p.dilation[1] * (k - 1) - 1) / p.stride[1] + 1;
    const Shape offset_shape{n_size, 2 * taps, ho, wo}, mask_shape{n_size, taps, ho, wo};
    const Shape weight_shape{p.out_channels, c_size, k, k};
    const auto x = uniform(count(p.x), -1.0f, 1.0f, 21);
    const auto offset = uniform(count(offset_shape), -p.offset_range, p.offset_range, 22);
    const auto mask = uniform(count(mask_shape), 0.0f, 1.0f, 23);
    const auto weight = uniform(count(weight_shape), -0.5f, 0.5f, 24);
    const auto bias = uniform(p.out_channels, -1.0f, 1.0f, 25);
    const std::size_t out_count = static_cast<std::size_t>(n_size * p.out_channels * ho * wo);
    std::vector<double> expected(out_count), scale(out_count);
    for (int64_t n = 0; n < n_size; ++n)
        for (int64_t o = 0; o < p.out_channels; ++o)
            for (int64_t oy = 0; oy < ho; ++oy)
                for (int64_t ox = 0; ox < wo; ++ox) {
                    double sum = p.bias ? bias[static_cast<std::size_t>(o)] : 0.0;
                    double magnitude = std::fabs(sum);
                    for (int64_t t = 0; t < taps; ++t) {
                        const int64_t ky = t / k, kx = t % k;
                        auto field = [&](std::vector<float> const& f, int64_t channels, int64_t ch) {
                            return f[static_cast<std::size_t>(((n * channels + ch) * ho + oy) * wo + ox)];
                        };
                        // sampling coordinates in float32, as docs/ops.md specifies
                        const float py = static_cast<float>(oy * p.stride[0] - p.padding[0] + ky * p.dilation[0]) +
                                         field(offset, 2 * taps, 2 * t);
                        const float px = static_cast<float>(ox * p.stride[1] - p.padding[1] + kx * p.dilation[1]) +
                                         field(offset, 2 * taps, 2 * t + 1);
                        const double m = field(mask, taps, t);
                        for (int64_t c = 0; c < c_size; ++c) {
                            const auto plane = static_cast<std::size_t>((n * c_size + c) * h * w);
                            const auto tap = static_cast<std::size_t>(((o * c_size + c) * k + ky) * k + kx);
                            const double term = weight[tap] * m * sample(&x[plane], h, w, py, px);
                            sum += term;
                            magnitude += std::fabs(term);
                        }
                    }
                    const auto i = static_cast<std::size_t>(((n * p.out_channels + o) * ho + oy) * wo + ox);
                    expected[i] = sum;
                    scale[i] = magnitude;
                }
    const int32_t attrs[6] = {p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.dilation[0], p.dilation[1]};
    std::vector<float> out(out_count, NAN);
    char error[256] = "";
    const int status = dpanet_deform_conv_cpu(x.data(), p.x.data(), offset.data(), offset_shape.data(), mask.data(),
                                              mask_shape.data(), weight.data(), weight_shape.data(),
                                              p.bias ? bias.data() : nullptr, p.bias ? p.out_channels : -1, attrs,
                                              out.data(), threads, error, sizeof error);
    CHECK(status == 0);
    const std::string what = "deform_conv " + std::to_string(c_size) + "x" + std::to_string(h) + "x" +
                             std::to_string(w) + " -> " + std::to_string(p.out_channels) +
                             " threads=" + std::to_string(threads);
    CHECK(all_close(expected, scale, out, what.c_str()));
    std::printf("%s: done\n", what.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows under a slow emulator too
    const std::string isa = dpanet_cpu_kernels();
    std::printf("CPU kernels: %s\n", isa.c_str());
    if (argc > 1 && std::strcmp(argv[1], "any") != 0 && isa != argv[1]) {
        std::printf("this CPU cannot run the %s kernels (or they are not built): skipped\n", argv[1]);
        return kSkipped;
    }
    std::vector<int> thread_counts{1, 3};
    if (argc > 2) thread_counts.assign(argc - 2, 0);
    for (int i = 2; i < argc; ++i) thread_counts[static_cast<std::size_t>(i - 2)] = std::atoi(argv[i]);
    for (int threads : thread_counts) {
        // widths below, at and past one vector (4, 8 or 16 floats), border blocks on both sides
        correlation_matches_reference({1, 3, 5, 7}, 4, threads);
        correlation_matches_reference({2, 5, 6, 37}, 4, threads);
        correlation_matches_reference({1, 17, 9, 33}, 3, threads);
        correlation_matches_reference({1, 2, 4, 18}, 0, threads);
        correlation_matches_reference({1, 4, 3, 21}, 5, threads);  // 11 displacements: a group of 9 and of 2
        // channel counts with vector tails (5, 19) and without (32), strides, dilation, no padding,
        // offsets far outside, no bias; several DCN chunks at 96 x 40 output pixels
        deform_conv_matches_reference({{1, 5, 9, 11}, 7, 3, {1, 1}, {1, 1}, {1, 1}, true, 2.0f}, threads);
        deform_conv_matches_reference({{2, 19, 8, 13}, 4, 3, {2, 1}, {0, 1}, {1, 2}, false, 6.0f}, threads);
        deform_conv_matches_reference({{1, 32, 6, 7}, 9, 1, {1, 2}, {0, 0}, {1, 1}, true, 1.5f}, threads);
        deform_conv_matches_reference({{1, 16, 96, 40}, 3, 3, {1, 1}, {1, 1}, {1, 1}, true, 3.0f}, threads);
    }
    return dpanet::test::summary(("test_cpu_kernels (" + isa + ")").c_str());
}
