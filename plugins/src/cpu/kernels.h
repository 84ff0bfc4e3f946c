// The float32 CPU kernels behind the C ABI (include/dpanet/cpu_ops.h). Arguments are validated by
// the caller (dpanet/op_rules.h); tensors are C-contiguous NCHW.
//
// correlation.cpp, deform_conv.cpp and kernel_table.cpp are compiled once per instruction set the
// build targets (plugins/CMakeLists.txt: a baseline every CPU of the architecture has, and on x86-64
// AVX2 and AVX-512 variants), each with -DDPANET_CPU_ISA=<name> and so in its own namespace;
// dispatch.cpp picks the widest one this CPU runs, once, at the first call.
#pragma once

#include <cstddef>

#include "dpanet/op_rules.h"

namespace dpanet::cpu {

using CorrelationKernel = void(float const* first, float const* second, Dims4 const& shape,
                               int32_t max_displacement, float* out, int threads);
using DeformConvKernel = void(float const* x, float const* offset, float const* mask, float const* weight,
                              float const* bias, DeformConvShapes const& shapes, DeformConvAttrs const& attrs,
                              Dims4 const& out_shape, float* out, int threads);
using WorkspaceBytes = std::size_t(Dims4 const& x, Dims4 const& weight, Dims4 const& out_shape, int threads);

// The kernels of one instruction set.
struct Kernels {
    char const* isa;  // "baseline", "avx2", "avx512" or "native" (-march=native, the only one then)
    CorrelationKernel* correlation;
    DeformConvKernel* deform_conv;
    // Memory deform_conv uses for itself: a channels-last copy of one image, the reordered weight and,
    // per thread, one tap's column block of a chunk of output pixels (at most 1 MiB, or one pixel's C
    // floats where that is more). A workspace up to 64 MiB is kept by the calling thread for its next call.
    WorkspaceBytes* deform_conv_workspace_bytes;
};

// The kernels for this CPU: the widest built instruction set it supports, or the one named by the
// environment variable DPANET_CPU_KERNELS where that one is built and supported (docs/plugins.md).
Kernels const& kernels();

}  // namespace dpanet::cpu

#if defined(DPANET_CPU_ISA)
namespace dpanet::cpu::DPANET_CPU_ISA {

CorrelationKernel correlation;
DeformConvKernel deform_conv;
WorkspaceBytes deform_conv_workspace_bytes;
extern Kernels const table;

}  // namespace dpanet::cpu::DPANET_CPU_ISA
#endif
