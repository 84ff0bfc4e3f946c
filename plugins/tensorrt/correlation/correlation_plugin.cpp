#include "correlation/correlation_plugin.h"

#include "dpanet/cuda_ops.h"

namespace dpanet::trt {

std::string CorrelationOp::output_shape(Attrs const& attrs, nvinfer1::DimsExprs const* inputs, int32_t,
                                        nvinfer1::DimsExprs& out, nvinfer1::IExprBuilder& builder) {
    if (inputs[0].nbDims != 4 || inputs[1].nbDims != 4) return "first and second must be 4-D (NCHW)";
    const int64_t size = 2 * static_cast<int64_t>(attrs.max_displacement) + 1;
    out.nbDims = 4;
    out.d[0] = inputs[0].d[0];
    out.d[1] = builder.constant(size * size);
    out.d[2] = inputs[0].d[2];
    out.d[3] = inputs[0].d[3];
    return {};
}

std::string CorrelationOp::check_shapes(Attrs const& attrs, nvinfer1::Dims const* inputs, int32_t) {
    Dims4 first{}, second{}, out{};
    if (!dims4(inputs[0], first) || !dims4(inputs[1], second)) return "first and second must be 4-D (NCHW)";
    return correlation_output_shape(first, second, attrs, out);
}

std::size_t CorrelationOp::workspace_size(nvinfer1::PluginTensorDesc const*, int32_t) { return 0; }

std::string CorrelationOp::enqueue(Attrs const& attrs, nvinfer1::PluginTensorDesc const* in, int32_t,
                                   void const* const* inputs, void* output, void*, cudaStream_t stream) {
    Dims4 first{}, second{};
    if (!dims4(in[0].dims, first) || !dims4(in[1].dims, second)) return "first and second must be 4-D (NCHW)";
    char error[512];
    if (dpanet_correlation_cuda(inputs[0], first.data(), inputs[1], second.data(), attrs.max_displacement,
                                kernel_dtype(in[0].type), output, stream, error, sizeof(error)) != 0) {
        return error;
    }
    return {};
}

template class OpPlugin<CorrelationOp>;
template class OpPluginCreator<CorrelationOp>;

}  // namespace dpanet::trt
