// What the plugins and the C ABI decide without touching a tensor: attributes and their fields,
// validation, output shapes, type/format rules and workspace sizes. Plain C++ (no TensorRT, no
// CUDA), so that every rule is unit-tested on the CPU; docs/ops.md is the contract.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dpanet {

using Dims4 = std::array<int64_t, 4>;  // N, C, H, W

struct CorrelationAttrs {
    int32_t max_displacement = -1;  // required: no default
};

struct DeformConvAttrs {  // (y, x) pairs; defaults are those of ONNX DeformConv
    std::array<int32_t, 2> stride{1, 1};
    std::array<int32_t, 2> padding{0, 0};
    std::array<int32_t, 2> dilation{1, 1};
};

struct DeformConvShapes {
    Dims4 x{}, offset{}, mask{}, weight{};
    int64_t bias_size = -1;  // -1: no bias input
};

// Validation: an empty string means valid, otherwise a message that names the mismatch.
std::string check_attrs(CorrelationAttrs const& attrs);
std::string check_attrs(DeformConvAttrs const& attrs);
std::string correlation_output_shape(Dims4 const& first, Dims4 const& second, CorrelationAttrs const& attrs,
                                     Dims4& out);
std::string deform_conv_output_shape(DeformConvShapes const& shapes, DeformConvAttrs const& attrs, Dims4& out);
// The tensor pointers of a DCN call: every one non-NULL, except bias when there is none (bias_size -1).
std::string check_deform_conv_pointers(void const* x, void const* offset, void const* mask, void const* weight,
                                       void const* bias, int64_t bias_size, void const* out);
// The output shape from x, weight and the attributes alone (checks those, not offset, mask, bias).
std::string deform_conv_output_dims(Dims4 const& x, Dims4 const& weight, DeformConvAttrs const& attrs, Dims4& out);

// The DCN output extent, (size + 2*pad - dilation*(kernel - 1) - 1) // stride + 1, for any arithmetic
// with constant(), add(), sub(), mul() and floor_div(): plain integers here, IExprBuilder expressions
// in the TensorRT plugin (dynamic H and W).
template <class Arith>
typename Arith::Value conv_output_extent(Arith& a, typename Arith::Value size, typename Arith::Value kernel,
                                         int32_t stride, int32_t pad, int32_t dilation) {
    auto span = a.sub(a.add(size, a.constant(2 * pad + dilation - 1)), a.mul(a.constant(dilation), kernel));
    return a.add(a.floor_div(span, a.constant(stride)), a.constant(1));
}

struct IntArith {
    using Value = int64_t;
    Value constant(int64_t v) const { return v; }
    Value add(Value a, Value b) const { return a + b; }
    Value sub(Value a, Value b) const { return a - b; }
    Value mul(Value a, Value b) const { return a * b; }
    Value floor_div(Value a, Value b) const { return a >= 0 ? a / b : -((-a + b - 1) / b); }
};

// Plugin fields: every attribute is one scalar int32 field (docs/ops.md says why). One table per
// op names each field and the attribute it sets; parsing, serialising and the creators' field
// declarations all read it. TensorRT may hand an integer field as int32 or int64.
template <class Attrs>
struct Field {
    char const* name;
    int32_t& (*value)(Attrs&);
};

inline constexpr std::array<Field<CorrelationAttrs>, 1> kCorrelationFields{
    {{"max_displacement", [](CorrelationAttrs& a) -> int32_t& { return a.max_displacement; }}}};
inline constexpr std::array<Field<DeformConvAttrs>, 6> kDeformConvFields{
    {{"stride_y", [](DeformConvAttrs& a) -> int32_t& { return a.stride[0]; }},
     {"stride_x", [](DeformConvAttrs& a) -> int32_t& { return a.stride[1]; }},
     {"padding_y", [](DeformConvAttrs& a) -> int32_t& { return a.padding[0]; }},
     {"padding_x", [](DeformConvAttrs& a) -> int32_t& { return a.padding[1]; }},
     {"dilation_y", [](DeformConvAttrs& a) -> int32_t& { return a.dilation[0]; }},
     {"dilation_x", [](DeformConvAttrs& a) -> int32_t& { return a.dilation[1]; }}}};

// A field as TensorRT hands it over, without TensorRT's types.
enum class FieldType { Int32, Int64, Other };

struct FieldView {
    char const* name;
    FieldType type;
    int32_t length;
    void const* data;
};

// Parse and validate; names of fields the op does not know go to `ignored` (the caller warns).
std::string parse_fields(FieldView const* fields, int32_t count, CorrelationAttrs& attrs,
                         std::vector<std::string>& ignored);
std::string parse_fields(FieldView const* fields, int32_t count, DeformConvAttrs& attrs,
                         std::vector<std::string>& ignored);

// Types and formats: linear float32 or float16, every input and the output of one type.
enum class ElementType { Float32, Float16, Other };

struct TensorFormat {
    ElementType type;
    bool linear;
};

// TensorRT's supportsFormatCombination: decides position `pos` from io[0..pos] only.
bool supports_format(int32_t pos, TensorFormat const* io);

// Workspace of the CUDA DCN: the weight rearranged tap-major, (KH*KW) x C x O, so that the kernel
// reads it coalesced; O*C*KH*KW elements of `element_bytes` (2 or 4).
std::size_t deform_conv_cuda_workspace_bytes(Dims4 const& weight, std::size_t element_bytes);

}  // namespace dpanet
