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

namespace {

// The shapes of x, offset, mask, weight and bias (when given) as op_rules takes them.
std::string deform_conv_shapes(nvinfer1::Dims const* in, int32_t nb_inputs, DeformConvShapes& s) {
    Dims4* four[4] = {&s.x, &s.offset, &s.mask, &s.weight};
    for (int32_t i = 0; i < 4; ++i) {
        if (!dims4(in[i], *four[i])) return "x, offset, mask and weight must be 4-D";
    }
    s.bias_size = -1;
    if (nb_inputs == 5) {
        if (in[4].nbDims != 1) return "bias must be 1-D";
        s.bias_size = in[4].d[0];
    }
    return {};
}

}  // namespace

std::string DeformConvOp::check_shapes(Attrs const& a, nvinfer1::Dims const* inputs, int32_t nb_inputs) {
    DeformConvShapes shapes;
    Dims4 out{};
    std::string error = deform_conv_shapes(inputs, nb_inputs, shapes);
    return error.empty() ? deform_conv_output_shape(shapes, a, out) : error;
}

std::size_t DeformConvOp::workspace_size(nvinfer1::PluginTensorDesc const* in, int32_t) {
    Dims4 weight{};
    if (!dims4(in[3].dims, weight)) return 0;
    return deform_conv_cuda_workspace_bytes(weight, in[0].type == nvinfer1::DataType::kHALF ? 2 : 4);
}

std::string DeformConvOp::enqueue(Attrs const& a, nvinfer1::PluginTensorDesc const* in, int32_t nb_inputs,
                                  void const* const* inputs, void* output, void* workspace, cudaStream_t stream) {
    nvinfer1::Dims dims[5];
    for (int32_t i = 0; i < nb_inputs; ++i) dims[i] = in[i].dims;
    DeformConvShapes s;
    const std::string invalid = deform_conv_shapes(dims, nb_inputs, s);
    if (!invalid.empty()) return invalid;
    const int32_t attrs[6] = {a.stride[0], a.stride[1], a.padding[0], a.padding[1], a.dilation[0], a.dilation[1]};
    char error[512];
    if (dpanet_deform_conv_cuda(inputs[0], s.x.data(), inputs[1], s.offset.data(), inputs[2], s.mask.data(),
                                inputs[3], s.weight.data(), s.bias_size >= 0 ? inputs[4] : nullptr, s.bias_size, attrs,
                                kernel_dtype(in[0].type), output, workspace, workspace_size(in, nb_inputs), stream,
                                error, sizeof(error)) != 0) {
        return error;
    }
    return {};
}

template class OpPlugin<DeformConvOp>;
template class OpPluginCreator<DeformConvOp>;

}  // namespace dpanet::trt
