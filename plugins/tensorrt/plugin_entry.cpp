// The entry points TensorRT looks up in a plugin library loaded at run time
// (trtexec --dynamicPlugins, IPluginRegistry::loadLibrary, trt.get_plugin_registry().load_library);
// the only symbols the library exports (exports.map). Under a TensorRT of another major version
// both refuse: the finder is not used (its ABI differs) and no creator is returned.
#include "correlation/correlation_plugin.h"
#include "deform_conv/deform_conv_plugin.h"
#include "dpanet/api.h"

extern "C" DPANET_API void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
    const bool matches = dpanet::trt::running_tensorrt_matches(__builtin_return_address(0));
    dpanet::trt::set_logger_finder(matches ? finder : nullptr);
}

extern "C" DPANET_API nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
    if (!dpanet::trt::running_tensorrt_matches(__builtin_return_address(0))) {
        nbCreators = 0;
        return nullptr;
    }
    static dpanet::trt::CorrelationPluginCreator correlation;
    static dpanet::trt::DeformConvPluginCreator deform_conv;
    static nvinfer1::IPluginCreatorInterface* const creators[] = {&correlation, &deform_conv};
    nbCreators = 2;
    return creators;
}
