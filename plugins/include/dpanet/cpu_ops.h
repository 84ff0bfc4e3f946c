/* C ABI of the float32 CPU kernels (libdpanet_cpu). Semantics: docs/ops.md.
 *
 * Tensors are C-contiguous NCHW float32; shapes are int64[4]. DCN attributes are int32[6]:
 * stride (y, x), padding (y, x), dilation (y, x). bias_size is the length of bias, or -1 for no bias
 * (bias may then be NULL). num_threads <= 0 uses the OpenMP default.
 *
 * Every function returns 0 on success; otherwise it writes a NUL-terminated message naming the
 * problem into `error` (at most error_size bytes) and returns DPANET_INVALID_ARGUMENT, or
 * DPANET_OUT_OF_MEMORY when a kernel cannot allocate its workspace (nothing is written to `out`
 * then).
 */
#ifndef DPANET_CPU_OPS_H
#define DPANET_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "dpanet/api.h"

#ifdef __cplusplus
extern "C" {
#endif


DPANET_API int dpanet_correlation_output_shape(const int64_t first_shape[4], const int64_t second_shape[4],
                                    int32_t max_displacement, int64_t out_shape[4], char* error,
                                    size_t error_size);

DPANET_API int dpanet_correlation_cpu(const float* first, const int64_t first_shape[4], const float* second,
                           const int64_t second_shape[4], int32_t max_displacement, float* out,
                           int32_t num_threads, char* error, size_t error_size);

DPANET_API int dpanet_deform_conv_output_shape(const int64_t x_shape[4], const int64_t offset_shape[4],
                                    const int64_t mask_shape[4], const int64_t weight_shape[4], int64_t bias_size,
                                    const int32_t attrs[6], int64_t out_shape[4], char* error, size_t error_size);

DPANET_API int dpanet_deform_conv_cpu(const float* x, const int64_t x_shape[4], const float* offset,
                           const int64_t offset_shape[4], const float* mask, const int64_t mask_shape[4],
                           const float* weight, const int64_t weight_shape[4], const float* bias, int64_t bias_size,
                           const int32_t attrs[6], float* out, int32_t num_threads, char* error, size_t error_size);

/* The TensorRT plugin fields of `plugin` ("DPANetCorrelation" or "DPANetModulatedDeformConv2d"),
 * from the table the plugin creators use: the name of field `index`, or NULL past the end or for an
 * unknown plugin. Lets the exporter's tests check ONNX attributes against the plugins. */
DPANET_API const char* dpanet_plugin_field_name(const char* plugin, int32_t index);

/* Bytes of workspace dpanet_deform_conv_cpu uses at these shapes (0 if they are invalid). Up to
 * 64 MiB is kept by the calling thread for its next call; a larger workspace is freed on return. */
DPANET_API size_t dpanet_deform_conv_cpu_workspace_size(const int64_t x_shape[4], const int64_t weight_shape[4],
                                                        const int32_t attrs[6], int32_t num_threads);

/* The instruction set of the kernels in use: "baseline" (SSE2 on x86-64, NEON on aarch64), "avx2",
 * "avx512" (chosen at the first call for this CPU, or by the environment variable DPANET_CPU_KERNELS)
 * or "native" (a -march=native build). */
DPANET_API const char* dpanet_cpu_kernels(void);

#ifdef __cplusplus
}
#endif

#endif /* DPANET_CPU_OPS_H */
