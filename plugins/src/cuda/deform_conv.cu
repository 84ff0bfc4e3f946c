// Launcher and C ABI of the fused DCN kernel (deform_conv_kernel.cuh).
#include "deform_conv_kernel.cuh"
#include "dpanet/cuda_ops.h"

namespace dpanet::cuda {
namespace {

template <typename T>
void launch(void const* x, void const* offset, void const* mask, void const* weight, void const* bias, void* out,
            void* workspace, Geometry const& g, int64_t batch, cudaStream_t stream) {
    auto* tap_major = static_cast<T*>(workspace);
    rearrange_weight_kernel<T><<<rearrange_weight_grid(g), kThreads, 0, stream>>>(
        static_cast<T const*>(weight), tap_major, g.out_channels, g.channels, g.taps);
    deform_conv_kernel<T><<<deform_conv_grid(g, batch), kThreads, 0, stream>>>(
        static_cast<T const*>(x), static_cast<T const*>(offset), static_cast<T const*>(mask), tap_major,
        static_cast<T const*>(bias), static_cast<T*>(out), g);
}

}  // namespace
}  // namespace dpanet::cuda

extern "C" int dpanet_deform_conv_cuda(const void* x, const int64_t x_shape[4], const void* offset,
                                       const int64_t offset_shape[4], const void* mask, const int64_t mask_shape[4],
                                       const void* weight, const int64_t weight_shape[4], const void* bias,
                                       int64_t bias_size, const int32_t attrs[6], int32_t dtype, void* out,
                                       void* workspace, size_t workspace_size, void* stream, char* error,
                                       size_t error_size) {
    using namespace dpanet::cuda;
    const dpanet::DeformConvShapes s{dims(x_shape), dims(offset_shape), dims(mask_shape), dims(weight_shape),
                                     bias_size};
    const dpanet::DeformConvAttrs a = deform_attrs(attrs);
    dpanet::Dims4 os{};
    auto err = dpanet::deform_conv_output_shape(s, a, os);
    if (err.empty()) err = dpanet::check_deform_conv_pointers(x, offset, mask, weight, bias, bias_size, out);
    if (!err.empty()) return invalid(err, error, error_size);
    if (os[0] > 65535 || s.x[1] * s.x[2] * s.x[3] > INT32_MAX || os[1] * os[2] * os[3] > INT32_MAX ||
        2 * s.weight[2] * s.weight[3] * os[2] * os[3] > INT32_MAX) {
        return invalid("modulated_deform_conv2d: tensors too large for the CUDA kernel", error, error_size);
    }
    if (dtype != DPANET_FLOAT32 && dtype != DPANET_FLOAT16) {
        return invalid("modulated_deform_conv2d: dtype must be DPANET_FLOAT32 or DPANET_FLOAT16", error, error_size);
    }
    const size_t needed = dpanet::deform_conv_cuda_workspace_bytes(s.weight, dtype == DPANET_FLOAT16 ? 2 : 4);
    if (workspace_size < needed || (needed > 0 && workspace == nullptr)) {
        return invalid("modulated_deform_conv2d: workspace of " + std::to_string(workspace_size) + " bytes, needs " +
                           std::to_string(needed),
                       error, error_size);
    }
    if (os[0] * os[1] * os[2] * os[3] == 0) return 0;
    const Geometry g = deform_conv_geometry(s, a, os);
    void const* b = bias_size >= 0 ? bias : nullptr;  // a bias pointer without a size is ignored, as on the CPU
    auto cuda_stream = static_cast<cudaStream_t>(stream);
    if (dtype == DPANET_FLOAT32) {
        launch<float>(x, offset, mask, weight, b, out, workspace, g, os[0], cuda_stream);
    } else {
        launch<__half>(x, offset, mask, weight, b, out, workspace, g, os[0], cuda_stream);
    }
    return launch_status("modulated_deform_conv2d", error, error_size);
}

extern "C" size_t dpanet_deform_conv_cuda_workspace_size(const int64_t weight_shape[4], int32_t dtype) {
    if (dtype != DPANET_FLOAT32 && dtype != DPANET_FLOAT16) return 0;
    return dpanet::deform_conv_cuda_workspace_bytes(dpanet::cuda::dims(weight_shape), dtype == DPANET_FLOAT16 ? 2 : 4);
}
