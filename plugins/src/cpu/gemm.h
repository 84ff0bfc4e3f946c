// A register-tiled float32 GEMM for the DCN: C[rows x cols] = A[rows x K] * B[K x cols], with A the
// column matrix (row-major, one row per output pixel) and B the weight packed into panels of
// kPanel columns. No BLAS is available on the project machines; this loop reaches about 80% of the
// CPU's float32 FMA rate (see docs/plugins.md), and the compiler maps it to AVX-512, AVX2 or NEON.
#pragma once

#include <cstdint>
#include <vector>

#include "parallel.h"
#include "simd.h"

namespace dpanet::cpu {

constexpr int kPanel = 2 * kLanes;                       // B columns per register tile
constexpr int kTileRows = DPANET_VECTOR_BYTES == 64 ? 8 : 6;  // A rows per register tile

// B[k][o] = value(o, k), packed as ceil(O / kPanel) panels of K x kPanel (zero columns past O).
template <class Value>
std::vector<float> pack_panels(int64_t out_channels, int64_t k_size, Value value, int threads) {
    const int64_t panels = (out_channels + kPanel - 1) / kPanel;
    std::vector<float> packed(static_cast<std::size_t>(panels * k_size * kPanel), 0.0f);
    parallel_for(out_channels, threads, [&](int64_t o) {
        float* dst = packed.data() + (o / kPanel) * k_size * kPanel + o % kPanel;
        for (int64_t k = 0; k < k_size; ++k) {
            dst[k * kPanel] = value(o, k);
        }
    });
    return packed;
}

// C tile (kTileRows x kPanel, row stride ldc) = A tile (kTileRows rows of stride lda) * one panel.
inline void tile_kernel(int64_t k_size, float const* a, int64_t lda, float const* panel, float* c, int64_t ldc) {
    Vec acc[kTileRows][2] = {};
    for (int64_t k = 0; k < k_size; ++k) {
        const Vec b0 = load(panel + k * kPanel);
        const Vec b1 = load(panel + k * kPanel + kLanes);
#pragma GCC unroll 16
        for (int i = 0; i < kTileRows; ++i) {
            const Vec ai = splat(a[i * lda + k]);
            acc[i][0] += ai * b0;
            acc[i][1] += ai * b1;
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < kTileRows; ++i) {
        store(c + i * ldc, acc[i][0]);
        store(c + i * ldc + kLanes, acc[i][1]);
    }
}

// C (rows x panels*kPanel, row-major) = A (rows x K, row stride K) * packed B; rows % kTileRows == 0.
inline void gemm(int64_t rows, int64_t k_size, int64_t panels, float const* a, float const* packed, float* c) {
    const int64_t ldc = panels * kPanel;
    for (int64_t j = 0; j < panels; ++j) {
        float const* panel = packed + j * k_size * kPanel;
        for (int64_t i = 0; i < rows; i += kTileRows) {
            tile_kernel(k_size, a + i * k_size, k_size, panel, c + i * ldc + j * kPanel, ldc);
        }
    }
}

}  // namespace dpanet::cpu
