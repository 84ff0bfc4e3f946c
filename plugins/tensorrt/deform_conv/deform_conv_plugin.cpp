#include "deform_conv/deform_conv_plugin.h"

#include "dpanet/cuda_ops.h"

namespace dpanet::trt {

std::string DeformConvOp::output_shape(Attrs const& a, nvinfer1::DimsExprs const* inputs, int32_t nb_inputs,
                                       nvinfer1::DimsExprs& out, nvinfer1::IExprBuilder& builder) {
    for (int32_t i = 0; i < 4; ++i) {
        if (inputs[i].nbDims != 4) return "x, offset, mask and weight must be 4-D";
    }
    if (nb_inputs == 5 && inputs[4].nbDims != 1) return "bias must be 1-D";
    nvinfer1::DimsExprs const& x = inputs[0];
    nvinfer1::DimsExprs const& weight = inputs[3];
    ExprArith arith{builder};
    out.nbDims = 4;
    out.d[0] = x.d[0];
    out.d[1] = weight.d[0];
    out.d[2] = conv_output_extent(arith, x.d[2], weight.d[2], a.stride[0], a.padding[0], a.dilation[0]);
    out.d[3] = conv_output_extent(arith, x.d[3], weight.d[3], a.stride[1], a.padding[1], a.dilation[1]);
    return {};
}

std::size_t DeformConvOp::workspace_size(nvinfer1::PluginTensorDesc const* in, int32_t) {
    Dims4 weight{};
    if (!dims4(in[3].dims, weight)) return 0;
    return deform_conv_cuda_workspace_bytes(weight, in[0].type == nvinfer1::DataType::kHALF ? 2 : 4);
}

std::string DeformConvOp::enqueue(Attrs const& a, nvinfer1::PluginTensorDesc const* in, int32_t nb_inputs,
                                  void const* const* inputs, void* output, void* workspace, cudaStream_t stream) {
    Dims4 shapes[4];
    for (int32_t i = 0; i < 4; ++i) {
        if (!dims4(in[i].dims, shapes[i])) return "x, offset, mask and weight must be 4-D";
    }
    const bool has_bias = nb_inputs == 5;
    if (has_bias && in[4].dims.nbDims != 1) return "bias must be 1-D";
    const int32_t attrs[6] = {a.stride[0], a.stride[1], a.padding[0], a.padding[1], a.dilation[0], a.dilation[1]};
    char error[512];
    if (dpanet_deform_conv_cuda(inputs[0], shapes[0].data(), inputs[1], shapes[1].data(), inputs[2],
                                shapes[2].data(), inputs[3], shapes[3].data(), has_bias ? inputs[4] : nullptr,
                                has_bias ? in[4].dims.d[0] : -1, attrs, kernel_dtype(in[0].type), output, workspace,
                                workspace_size(in, nb_inputs), stream, error, sizeof(error)) != 0) {
        return error;
    }
    return {};
}

template class OpPlugin<DeformConvOp>;
template class OpPluginCreator<DeformConvOp>;

}  // namespace dpanet::trt
