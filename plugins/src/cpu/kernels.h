// The float32 CPU kernels behind the C ABI (include/dpanet/cpu_ops.h). Arguments are validated by
// the caller (dpanet/op_rules.h); tensors are C-contiguous NCHW.
#pragma once

#include <cstddef>

#include "dpanet/op_rules.h"

namespace dpanet::cpu {

void correlation(float const* first, float const* second, Dims4 const& shape, int32_t max_displacement,
                 float* out, int threads);

void deform_conv(float const* x, float const* offset, float const* mask, float const* weight, float const* bias,
                 DeformConvShapes const& shapes, DeformConvAttrs const& attrs, Dims4 const& out_shape, float* out,
                 int threads);

// Memory deform_conv uses for itself: a channels-last copy of one image, the reordered weight and,
// per thread, one tap's column block of a chunk of output pixels (at most 1 MiB, or one pixel's C
// floats where that is more). A workspace up to 64 MiB is kept by the calling thread for its next call.
std::size_t deform_conv_workspace_bytes(Dims4 const& x, Dims4 const& weight, Dims4 const& out_shape, int threads);

}  // namespace dpanet::cpu
