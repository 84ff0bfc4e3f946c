// DPANetCorrelation: the traits that make OpPlugin the correlation plugin (README.md beside this).
#pragma once

#include <string>

#include "op_plugin.h"

namespace dpanet::trt {

struct CorrelationOp {
    using Attrs = CorrelationAttrs;
    static constexpr char const* kName = "DPANetCorrelation";
    static constexpr auto const& kFields = kCorrelationFields;
    static constexpr int32_t kMinInputs = 2;
    static constexpr int32_t kMaxInputs = 2;

    static std::string output_shape(Attrs const& attrs, nvinfer1::DimsExprs const* inputs, int32_t nb_inputs,
                                    nvinfer1::DimsExprs& out, nvinfer1::IExprBuilder& builder);
    static std::string check_shapes(Attrs const& attrs, nvinfer1::Dims const* inputs, int32_t nb_inputs);
    static std::size_t workspace_size(nvinfer1::PluginTensorDesc const* in, int32_t nb_inputs);
    static std::string enqueue(Attrs const& attrs, nvinfer1::PluginTensorDesc const* in, int32_t nb_inputs,
                               void const* const* inputs, void* output, void* workspace, cudaStream_t stream);
};

using CorrelationPlugin = OpPlugin<CorrelationOp>;
using CorrelationPluginCreator = OpPluginCreator<CorrelationOp>;

}  // namespace dpanet::trt
