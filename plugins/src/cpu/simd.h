// Portable SIMD through the GCC/Clang vector extension: the widest float vector the compilation
// enables (AVX-512, AVX/AVX2, otherwise 128-bit: SSE2, NEON), so the same code vectorises on x86 and
// Jetson. The kernels are compiled once per instruction set (kernels.h), each in its own namespace.
#pragma once

#include <cstring>

#include "kernels.h"

namespace dpanet::cpu::DPANET_CPU_ISA {

#if defined(__AVX512F__)
#define DPANET_VECTOR_BYTES 64
#elif defined(__AVX__)
#define DPANET_VECTOR_BYTES 32
#else
#define DPANET_VECTOR_BYTES 16
#endif

typedef float Vec __attribute__((vector_size(DPANET_VECTOR_BYTES)));
constexpr int kLanes = DPANET_VECTOR_BYTES / 4;

inline Vec load(float const* p) {
    Vec v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

inline void store(float* p, Vec v) { std::memcpy(p, &v, sizeof v); }

inline Vec splat(float x) { return Vec{} + x; }

}  // namespace dpanet::cpu::DPANET_CPU_ISA
