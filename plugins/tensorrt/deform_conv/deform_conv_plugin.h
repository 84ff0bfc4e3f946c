// DPANetModulatedDeformConv2d: the traits that make OpPlugin the DCNv2 plugin (README.md beside this).
#pragma once

#include <string>

#include "op_plugin.h"

namespace dpanet::trt {

struct DeformConvOp {
    using Attrs = DeformConvAttrs;
    static constexpr char const* kName = "DPANetModulatedDeformConv2d";
    static constexpr auto const& kFields = kDeformConvFields;
    static constexpr int32_t kMinInputs = 4;  // x, offset, mask, weight
    static constexpr int32_t kMaxInputs = 5;  // and bias

    static std::string output_shape(Attrs const& attrs, nvinfer1::DimsExprs const* inputs, int32_t nb_inputs,
                                    nvinfer1::DimsExprs& out, nvinfer1::IExprBuilder& builder);
    static std::string check_shapes(Attrs const& attrs, nvinfer1::Dims const* inputs, int32_t nb_inputs);
    static std::size_t workspace_size(nvinfer1::PluginTensorDesc const* in, int32_t nb_inputs);
    static std::string enqueue(Attrs const& attrs, nvinfer1::PluginTensorDesc const* in, int32_t nb_inputs,
                               void const* const* inputs, void* output, void* workspace, cudaStream_t stream);
};

using DeformConvPlugin = OpPlugin<DeformConvOp>;
using DeformConvPluginCreator = OpPluginCreator<DeformConvOp>;

}  // namespace dpanet::trt
