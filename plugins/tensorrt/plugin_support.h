// What both TensorRT plugins share: logging through TensorRT's logger, conversion between
// TensorRT types and the plain ones of dpanet/op_rules.h, and field storage for serialisation.
#pragma once

#include <NvInferRuntime.h>

#include <string>
#include <vector>

#include "dpanet/op_rules.h"

namespace dpanet::trt {

inline constexpr char const* kPluginVersion = "1";
inline constexpr char const* kPluginNamespace = "dpanet";

// The finder TensorRT hands to setLoggerFinder(); without one, messages go to stderr.
void set_logger_finder(nvinfer1::ILoggerFinder* finder);
void log(nvinfer1::ILogger::Severity severity, std::string const& message);

std::vector<FieldView> field_views(nvinfer1::PluginFieldCollection const* fields);

// Owns the values behind a PluginFieldCollection (int32 fields).
class FieldStorage {
public:
    explicit FieldStorage(std::vector<IntField> fields);
    FieldStorage(FieldStorage const&) = delete;
    FieldStorage& operator=(FieldStorage const&) = delete;
    nvinfer1::PluginFieldCollection const* collection() const { return &collection_; }

private:
    std::vector<IntField> values_;
    std::vector<nvinfer1::PluginField> fields_;
    nvinfer1::PluginFieldCollection collection_{};
};

// Field declarations for IPluginCreatorV3One::getFieldNames (int32, no data).
template <std::size_t N>
std::vector<nvinfer1::PluginField> declared_fields(std::array<FieldSpec, N> const& specs) {
    std::vector<nvinfer1::PluginField> fields;
    for (FieldSpec const& spec : specs) {
        fields.emplace_back(spec.name, nullptr, nvinfer1::PluginFieldType::kINT32, spec.length);
    }
    return fields;
}

TensorFormat tensor_format(nvinfer1::PluginTensorDesc const& desc);
ElementType element_type(nvinfer1::DataType type);
int32_t kernel_dtype(nvinfer1::DataType type);  // DPANET_FLOAT32 / DPANET_FLOAT16
bool dims4(nvinfer1::Dims const& dims, Dims4& out);

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
