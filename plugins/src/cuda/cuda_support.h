// Shared by the CUDA launchers: element conversion, shape/attribute unpacking and error reports.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <string>

#include "../common/error_buffer.h"
#include "dpanet/api.h"
#include "dpanet/op_rules.h"

namespace dpanet::cuda {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
    return v;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
    return __float2half_rn(v);
}

inline Dims4 dims(int64_t const* shape) { return {shape[0], shape[1], shape[2], shape[3]}; }

inline DeformConvAttrs deform_attrs(int32_t const* a) { return {{a[0], a[1]}, {a[2], a[3]}, {a[4], a[5]}}; }

inline int invalid(std::string const& message, char* error, size_t error_size) {
    return write_error(message, error, error_size, DPANET_INVALID_ARGUMENT);
}

// The status of the launches just enqueued.
inline int launch_status(char const* what, char* error, size_t error_size) {
    const cudaError_t status = cudaGetLastError();
    if (status == cudaSuccess) return 0;
    return write_error(std::string(what) + ": " + cudaGetErrorString(status), error, error_size,
                       DPANET_CUDA_ERROR);
}

}  // namespace dpanet::cuda
