/* C ABI of the CUDA kernels (libdpanet_cuda, also linked into the TensorRT plugins).
 * Semantics: docs/ops.md.
 *
 * Pointers are device pointers to C-contiguous NCHW tensors, all of `dtype` (DPANET_FLOAT32 or
 * DPANET_FLOAT16; accumulation is float32 either way). Work is enqueued on `stream` (a
 * cudaStream_t; NULL is the default stream) and the call returns without synchronising. Shapes and
 * DCN attributes are given as in cpu_ops.h. Functions return 0, DPANET_INVALID_ARGUMENT (bad shapes
 * or attributes) or DPANET_CUDA_ERROR (a failed launch), with a message in `error`.
 */
#ifndef DPANET_CUDA_OPS_H
#define DPANET_CUDA_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "dpanet/api.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DPANET_FLOAT32 0
#define DPANET_FLOAT16 1

DPANET_API int dpanet_correlation_cuda(const void* first, const int64_t first_shape[4], const void* second,
                                       const int64_t second_shape[4], int32_t max_displacement, int32_t dtype,
                                       void* out, void* stream, char* error, size_t error_size);

/* Workspace for dpanet_deform_conv_cuda: the weight rearranged tap-major, O*C*KH*KW elements
 * (0 for an invalid dtype). */
DPANET_API size_t dpanet_deform_conv_cuda_workspace_size(const int64_t weight_shape[4], int32_t dtype);

/* Modulated deformable convolution as one fused sampling + GEMM kernel. `workspace` is device
 * memory of at least dpanet_deform_conv_cuda_workspace_size() bytes, used on `stream`. */
DPANET_API int dpanet_deform_conv_cuda(const void* x, const int64_t x_shape[4], const void* offset,
                                       const int64_t offset_shape[4], const void* mask, const int64_t mask_shape[4],
                                       const void* weight, const int64_t weight_shape[4], const void* bias,
                                       int64_t bias_size, const int32_t attrs[6], int32_t dtype, void* out,
                                       void* workspace, size_t workspace_size, void* stream, char* error,
                                       size_t error_size);

#ifdef __cplusplus
}
#endif

#endif /* DPANET_CUDA_OPS_H */
