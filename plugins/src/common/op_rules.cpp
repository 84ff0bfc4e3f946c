#include "dpanet/op_rules.h"

#include <cstring>
#include <sstream>
#include <tuple>
#include <type_traits>

namespace dpanet {
namespace {

std::string str(Dims4 const& d) {
    std::ostringstream s;
    s << "(" << d[0] << ", " << d[1] << ", " << d[2] << ", " << d[3] << ")";
    return s.str();
}

std::string str(std::array<int32_t, 2> const& p) {
    std::ostringstream s;
    s << "(" << p[0] << ", " << p[1] << ")";
    return s.str();
}

std::string check_dims(char const* op, char const* label, Dims4 const& d) {
    for (int64_t v : d) {
        if (v < 0) {
            return std::string(op) + ": " + label + " has a negative dimension " + str(d);
        }
    }
    return {};
}

// Reads a scalar integer field (int32 or int64) that fits in int32.
std::string read_int32(FieldView const& f, int32_t& out) {
    if (f.type != FieldType::Int32 && f.type != FieldType::Int64) {
        return std::string("field ") + f.name + " must be int32 or int64";
    }
    if (f.length != 1 || f.data == nullptr) {
        std::ostringstream s;
        s << "field " << f.name << " has " << f.length << " values, expected 1";
        return s.str();
    }
    int64_t value;
    if (f.type == FieldType::Int32) {
        int32_t v;
        std::memcpy(&v, f.data, 4);
        value = v;
    } else {
        std::memcpy(&value, f.data, 8);
    }
    if (value < INT32_MIN || value > INT32_MAX) return std::string("field ") + f.name + " is out of range";
    out = static_cast<int32_t>(value);
    return {};
}

bool named(FieldView const& f, char const* name) { return f.name != nullptr && std::strcmp(f.name, name) == 0; }

}  // namespace

std::string check_attrs(CorrelationAttrs const& attrs) {
    if (attrs.max_displacement < 0) {
        return "correlation: max_displacement must be >= 0, got " + std::to_string(attrs.max_displacement);
    }
    return {};
}

std::string check_attrs(DeformConvAttrs const& a) {
    if (a.stride[0] < 1 || a.stride[1] < 1 || a.padding[0] < 0 || a.padding[1] < 0 || a.dilation[0] < 1 ||
        a.dilation[1] < 1) {
        return "modulated_deform_conv2d: need stride >= 1, padding >= 0, dilation >= 1; got stride " +
               str(a.stride) + ", padding " + str(a.padding) + ", dilation " + str(a.dilation);
    }
    return {};
}

std::string correlation_output_shape(Dims4 const& first, Dims4 const& second, CorrelationAttrs const& attrs,
                                     Dims4& out) {
    for (auto err : {check_attrs(attrs), check_dims("correlation", "first", first),
                     check_dims("correlation", "second", second)}) {
        if (!err.empty()) return err;
    }
    if (first != second) {
        return "correlation: first " + str(first) + " and second " + str(second) + " differ in shape";
    }
    if (first[1] == 0) return "correlation: inputs have zero channels";
    int64_t size = 2 * static_cast<int64_t>(attrs.max_displacement) + 1;
    out = {first[0], size * size, first[2], first[3]};
    return {};
}

std::string deform_conv_output_dims(Dims4 const& x, Dims4 const& weight, DeformConvAttrs const& a, Dims4& out) {
    char const* op = "modulated_deform_conv2d";
    for (auto err : {check_attrs(a), check_dims(op, "x", x), check_dims(op, "weight", weight)}) {
        if (!err.empty()) return err;
    }
    if (weight[1] != x[1]) {
        return std::string(op) + ": weight " + str(weight) + " expects " + std::to_string(weight[1]) +
               " input channels, x has " + std::to_string(x[1]);
    }
    if (weight[2] < 1 || weight[3] < 1) return std::string(op) + ": weight " + str(weight) + " has an empty kernel";
    IntArith arith;
    int64_t out_h = conv_output_extent(arith, x[2], weight[2], a.stride[0], a.padding[0], a.dilation[0]);
    int64_t out_w = conv_output_extent(arith, x[3], weight[3], a.stride[1], a.padding[1], a.dilation[1]);
    if (out_h < 1 || out_w < 1) {
        return std::string(op) + ": output would be " + std::to_string(out_h) + " x " + std::to_string(out_w) +
               " for input " + std::to_string(x[2]) + " x " + std::to_string(x[3]);
    }
    out = {x[0], weight[0], out_h, out_w};
    return {};
}

std::string deform_conv_output_shape(DeformConvShapes const& s, DeformConvAttrs const& a, Dims4& out) {
    char const* op = "modulated_deform_conv2d";
    Dims4 dims{};
    for (auto err : {deform_conv_output_dims(s.x, s.weight, a, dims), check_dims(op, "offset", s.offset),
                     check_dims(op, "mask", s.mask)}) {
        if (!err.empty()) return err;
    }
    int64_t taps = s.weight[2] * s.weight[3];
    Dims4 expected_offset{s.x[0], 2 * taps, dims[2], dims[3]};
    Dims4 expected_mask{s.x[0], taps, dims[2], dims[3]};
    for (auto [label, got, expected] : {std::make_tuple("offset", s.offset, expected_offset),
                                        std::make_tuple("mask", s.mask, expected_mask)}) {
        if (got != expected) {
            return std::string(op) + ": " + label + " has shape " + str(got) + ", expected " + str(expected) +
                   " for x " + str(s.x) + " and weight " + str(s.weight);
        }
    }
    if (s.bias_size != -1 && s.bias_size != s.weight[0]) {
        return std::string(op) + ": bias has shape (" + std::to_string(s.bias_size) + ",), expected (" +
               std::to_string(s.weight[0]) + ",)";
    }
    out = dims;
    return {};
}

std::string check_deform_conv_pointers(void const* x, void const* offset, void const* mask, void const* weight,
                                       void const* bias, int64_t bias_size, void const* out) {
    if (bias_size >= 0 && bias == nullptr) {
        return "modulated_deform_conv2d: bias is NULL but bias_size is " + std::to_string(bias_size) +
               " (pass -1 for no bias)";
    }
    if (x == nullptr || offset == nullptr || mask == nullptr || weight == nullptr || out == nullptr) {
        return "modulated_deform_conv2d: a tensor pointer is NULL";
    }
    return {};
}

namespace {

// Reads the fields of `table` into a copy of `attrs`; `attrs` changes only when all are valid.
template <class Attrs, std::size_t N>
std::string parse_table(char const* plugin, std::array<Field<Attrs>, N> const& table, FieldView const* fields,
                        int32_t count, Attrs& attrs, std::vector<std::string>& ignored) {
    Attrs parsed;
    std::array<bool, N> given{};
    for (int32_t i = 0; i < count; ++i) {
        FieldView const& f = fields[i];
        std::size_t k = 0;
        while (k < N && !named(f, table[k].name)) ++k;
        if (k == N) {
            ignored.emplace_back(f.name != nullptr ? f.name : "(unnamed)");
            continue;
        }
        auto err = read_int32(f, table[k].value(parsed));
        if (!err.empty()) return std::string(plugin) + ": " + err;
        given[k] = true;
    }
    if constexpr (std::is_same_v<Attrs, CorrelationAttrs>) {  // a given -1 is out of range, not missing
        if (!given[0]) return std::string(plugin) + ": field max_displacement is required";
    }
    auto err = check_attrs(parsed);
    if (!err.empty()) return std::string(plugin) + ": " + err;
    attrs = parsed;
    return {};
}

}  // namespace

std::string parse_fields(FieldView const* fields, int32_t count, CorrelationAttrs& attrs,
                         std::vector<std::string>& ignored) {
    return parse_table("DPANetCorrelation", kCorrelationFields, fields, count, attrs, ignored);
}

std::string parse_fields(FieldView const* fields, int32_t count, DeformConvAttrs& attrs,
                         std::vector<std::string>& ignored) {
    return parse_table("DPANetModulatedDeformConv2d", kDeformConvFields, fields, count, attrs, ignored);
}

bool supports_format(int32_t pos, TensorFormat const* io) {
    TensorFormat const& t = io[pos];
    if (!t.linear) return false;
    if (pos == 0) return t.type == ElementType::Float32 || t.type == ElementType::Float16;
    return t.type == io[0].type;
}

std::size_t deform_conv_cuda_workspace_bytes(Dims4 const& weight, std::size_t element_bytes) {
    for (int64_t v : weight) {
        if (v < 0) return 0;
    }
    return static_cast<std::size_t>(weight[0] * weight[1] * weight[2] * weight[3]) * element_bytes;
}

}  // namespace dpanet
