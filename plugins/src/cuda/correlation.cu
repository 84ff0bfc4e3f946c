// Launcher and C ABI of the correlation kernel (correlation_kernel.cuh).
#include "correlation_kernel.cuh"
#include "dpanet/cuda_ops.h"

namespace dpanet::cuda {
namespace {

template <typename T>
void launch(void const* first, void const* second, void* out, Dims4 const& s, int d, cudaStream_t stream) {
    correlation_kernel<T><<<correlation_grid(s, d), correlation_block(), 0, stream>>>(
        static_cast<T const*>(first), static_cast<T const*>(second), static_cast<T*>(out), s[1], s[2], s[3], d);
}

}  // namespace
}  // namespace dpanet::cuda

extern "C" int dpanet_correlation_cuda(const void* first, const int64_t first_shape[4], const void* second,
                                       const int64_t second_shape[4], int32_t max_displacement, int32_t dtype,
                                       void* out, void* stream, char* error, size_t error_size) {
    using namespace dpanet::cuda;
    dpanet::Dims4 out_shape{};
    auto err = dpanet::correlation_output_shape(dims(first_shape), dims(second_shape), {max_displacement},
                                                out_shape);
    if (!err.empty()) return invalid(err, error, error_size);
    const dpanet::Dims4 s = dims(first_shape);
    const int64_t y_blocks = s[0] * ((s[2] + kTileY - 1) / kTileY);
    if (y_blocks > 65535 || s[1] * s[2] * s[3] > INT32_MAX || max_displacement > 4096) {
        return invalid("correlation: shape or max_displacement too large for the CUDA kernel", error, error_size);
    }
    if (s[0] * s[2] * s[3] == 0) return 0;
    auto cuda_stream = static_cast<cudaStream_t>(stream);
    if (dtype == DPANET_FLOAT32) {
        launch<float>(first, second, out, s, max_displacement, cuda_stream);
    } else if (dtype == DPANET_FLOAT16) {
        launch<__half>(first, second, out, s, max_displacement, cuda_stream);
    } else {
        return invalid("correlation: dtype must be DPANET_FLOAT32 or DPANET_FLOAT16", error, error_size);
    }
    return launch_status("correlation", error, error_size);
}
