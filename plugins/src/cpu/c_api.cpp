// The C ABI of include/dpanet/cpu_ops.h: validate with op_rules, then call the kernels.
#include <cstring>
#include <new>
#include <string>

#include "../common/error_buffer.h"
#include "dpanet/cpu_ops.h"
#include "dpanet/op_rules.h"
#include "kernels.h"
#include "parallel.h"

namespace {

using dpanet::Dims4;

Dims4 dims(int64_t const* shape) { return {shape[0], shape[1], shape[2], shape[3]}; }

dpanet::DeformConvAttrs deform_attrs(int32_t const* a) {
    return {{a[0], a[1]}, {a[2], a[3]}, {a[4], a[5]}};
}

dpanet::DeformConvShapes deform_shapes(int64_t const* x, int64_t const* offset, int64_t const* mask,
                                       int64_t const* weight, int64_t bias_size) {
    return {dims(x), dims(offset), dims(mask), dims(weight), bias_size};
}

int report(std::string const& message, char* error, size_t error_size) {
    return dpanet::write_error(message, error, error_size, DPANET_INVALID_ARGUMENT);
}

// Runs a kernel, turning a failed workspace allocation into DPANET_OUT_OF_MEMORY with the message
// `describe()` (the kernels allocate before they write anything, so the output is untouched then).
template <class Kernel, class Describe>
int run(Kernel kernel, Describe describe, char* error, size_t error_size) {
    try {
        kernel();
        return 0;
    } catch (std::bad_alloc const&) {
        return dpanet::write_error(describe(), error, error_size, DPANET_OUT_OF_MEMORY);
    }
}

}  // namespace

extern "C" {

int dpanet_correlation_output_shape(const int64_t first_shape[4], const int64_t second_shape[4],
                                    int32_t max_displacement, int64_t out_shape[4], char* error,
                                    size_t error_size) {
    Dims4 out{};
    auto err = dpanet::correlation_output_shape(dims(first_shape), dims(second_shape), {max_displacement}, out);
    if (!err.empty()) return report(err, error, error_size);
    std::memcpy(out_shape, out.data(), sizeof(out));
    return 0;
}

int dpanet_correlation_cpu(const float* first, const int64_t first_shape[4], const float* second,
                           const int64_t second_shape[4], int32_t max_displacement, float* out,
                           int32_t num_threads, char* error, size_t error_size) {
    Dims4 out_shape{};
    auto err = dpanet::correlation_output_shape(dims(first_shape), dims(second_shape), {max_displacement},
                                                out_shape);
    if (!err.empty()) return report(err, error, error_size);
    if (first == nullptr || second == nullptr || out == nullptr) {
        return report("correlation: a tensor pointer is NULL", error, error_size);
    }
    const int threads = dpanet::cpu::resolve_threads(num_threads);
    return run(
        [&] { dpanet::cpu::kernels().correlation(first, second, dims(first_shape), max_displacement, out, threads); },
        [] { return std::string("correlation: out of memory for its scratch rows"); }, error, error_size);
}

int dpanet_deform_conv_output_shape(const int64_t x_shape[4], const int64_t offset_shape[4],
                                    const int64_t mask_shape[4], const int64_t weight_shape[4], int64_t bias_size,
                                    const int32_t attrs[6], int64_t out_shape[4], char* error, size_t error_size) {
    Dims4 out{};
    auto err = dpanet::deform_conv_output_shape(
        deform_shapes(x_shape, offset_shape, mask_shape, weight_shape, bias_size), deform_attrs(attrs), out);
    if (!err.empty()) return report(err, error, error_size);
    std::memcpy(out_shape, out.data(), sizeof(out));
    return 0;
}

int dpanet_deform_conv_cpu(const float* x, const int64_t x_shape[4], const float* offset,
                           const int64_t offset_shape[4], const float* mask, const int64_t mask_shape[4],
                           const float* weight, const int64_t weight_shape[4], const float* bias, int64_t bias_size,
                           const int32_t attrs[6], float* out, int32_t num_threads, char* error, size_t error_size) {
    const auto shapes = deform_shapes(x_shape, offset_shape, mask_shape, weight_shape, bias_size);
    const auto a = deform_attrs(attrs);
    Dims4 out_shape{};
    auto err = dpanet::deform_conv_output_shape(shapes, a, out_shape);
    if (err.empty()) err = dpanet::check_deform_conv_pointers(x, offset, mask, weight, bias, bias_size, out);
    if (!err.empty()) return report(err, error, error_size);
    const int threads = dpanet::cpu::resolve_threads(num_threads);
    return run(
        [&] {
            dpanet::cpu::kernels().deform_conv(x, offset, mask, weight, bias_size >= 0 ? bias : nullptr, shapes, a,
                                               out_shape, out, threads);
        },
        [&] {
            const auto bytes =
                dpanet::cpu::kernels().deform_conv_workspace_bytes(shapes.x, shapes.weight, out_shape, threads);
            return "modulated_deform_conv2d: out of memory for its workspace of " + std::to_string(bytes >> 20) +
                   " MiB (docs/plugins.md)";
        },
        error, error_size);
}

const char* dpanet_plugin_field_name(const char* plugin, int32_t index) {
    if (plugin == nullptr || index < 0) return nullptr;
    auto name_in = [index](auto const& table) -> const char* {
        return static_cast<std::size_t>(index) < table.size() ? table[static_cast<std::size_t>(index)].name : nullptr;
    };
    if (std::strcmp(plugin, "DPANetCorrelation") == 0) return name_in(dpanet::kCorrelationFields);
    if (std::strcmp(plugin, "DPANetModulatedDeformConv2d") == 0) return name_in(dpanet::kDeformConvFields);
    return nullptr;
}

size_t dpanet_deform_conv_cpu_workspace_size(const int64_t x_shape[4], const int64_t weight_shape[4],
                                             const int32_t attrs[6], int32_t num_threads) {
    const auto a = deform_attrs(attrs);
    Dims4 out_shape{};
    if (!dpanet::deform_conv_output_dims(dims(x_shape), dims(weight_shape), a, out_shape).empty()) return 0;
    return dpanet::cpu::kernels().deform_conv_workspace_bytes(dims(x_shape), dims(weight_shape), out_shape,
                                                    dpanet::cpu::resolve_threads(num_threads));
}

const char* dpanet_cpu_kernels(void) { return dpanet::cpu::kernels().isa; }

}  // extern "C"
