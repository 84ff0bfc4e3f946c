// What both TensorRT plugins share: logging through TensorRT's logger, the check that the running
// TensorRT has the major version of the headers, conversion between TensorRT types and the plain
// ones of dpanet/op_rules.h, and field storage for serialisation.
#pragma once

#include <NvInferRuntime.h>

#include <array>
#include <string>
#include <vector>

#include "dpanet/op_rules.h"

namespace dpanet::trt {

inline constexpr char const* kPluginVersion = "1";
inline constexpr char const* kPluginNamespace = "dpanet";

// The finder TensorRT hands to setLoggerFinder(); without one, messages go to stderr.
void set_logger_finder(nvinfer1::ILoggerFinder* finder);
void log(nvinfer1::ILogger::Severity severity, std::string const& message);

// Whether the TensorRT that calls the library (`caller`: an address in its code) has the major
// version this library was compiled for; logs why not. The ABI of ILoggerFinder differs between
// 10.x and 11.x, so a library is built per major version. True when no TensorRT is found in the
// process (the unit tests link the library without one).
bool running_tensorrt_matches(void const* caller);

std::vector<FieldView> field_views(nvinfer1::PluginFieldCollection const* fields);

// A plugin's fields for getFieldsToSerialize: int32 PluginFields pointing into its own copy of the
// attributes, one per entry of the op's field table.
template <class Attrs, std::size_t N>
class FieldStorage {
public:
    FieldStorage(Attrs const& attrs, std::array<Field<Attrs>, N> const& table) : attrs_(attrs) {
        for (Field<Attrs> const& f : table) {
            fields_.emplace_back(f.name, &f.value(attrs_), nvinfer1::PluginFieldType::kINT32, 1);
        }
        collection_.nbFields = static_cast<int32_t>(fields_.size());
        collection_.fields = fields_.data();
    }
    FieldStorage(FieldStorage const&) = delete;
    FieldStorage& operator=(FieldStorage const&) = delete;
    nvinfer1::PluginFieldCollection const* collection() const { return &collection_; }

private:
    Attrs attrs_;
    std::vector<nvinfer1::PluginField> fields_;
    nvinfer1::PluginFieldCollection collection_{};
};

// Field declarations for IPluginCreatorV3One::getFieldNames (int32 scalars, no data).
template <class Attrs, std::size_t N>
std::vector<nvinfer1::PluginField> declared_fields(std::array<Field<Attrs>, N> const& table) {
    std::vector<nvinfer1::PluginField> fields;
    for (Field<Attrs> const& f : table) fields.emplace_back(f.name, nullptr, nvinfer1::PluginFieldType::kINT32, 1);
    return fields;
}

TensorFormat tensor_format(nvinfer1::PluginTensorDesc const& desc);
ElementType element_type(nvinfer1::DataType type);
int32_t kernel_dtype(nvinfer1::DataType type);  // DPANET_FLOAT32 / DPANET_FLOAT16
bool dims4(nvinfer1::Dims const& dims, Dims4& out);
// The min or max dims of each input at build time (configurePlugin).
std::vector<nvinfer1::Dims> profile_dims(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nb, bool max);

// conv_output_extent() on IExprBuilder expressions.
struct ExprArith {
    nvinfer1::IExprBuilder& builder;
    using Value = nvinfer1::IDimensionExpr const*;
    Value constant(int64_t v) { return builder.constant(v); }
    Value add(Value a, Value b) { return builder.operation(nvinfer1::DimensionOperation::kSUM, *a, *b); }
    Value sub(Value a, Value b) { return builder.operation(nvinfer1::DimensionOperation::kSUB, *a, *b); }
    Value mul(Value a, Value b) { return builder.operation(nvinfer1::DimensionOperation::kPROD, *a, *b); }
    Value floor_div(Value a, Value b) { return builder.operation(nvinfer1::DimensionOperation::kFLOOR_DIV, *a, *b); }
};

}  // namespace dpanet::trt
