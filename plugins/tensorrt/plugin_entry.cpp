// The entry points TensorRT looks up in a plugin library loaded at run time
// (trtexec --dynamicPlugins, IPluginRegistry::loadLibrary, trt.get_plugin_registry().load_library).
#include "correlation/correlation_plugin.h"
#include "deform_conv/deform_conv_plugin.h"
#include "dpanet/api.h"

extern "C" DPANET_API void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
    dpanet::trt::set_logger_finder(finder);
}

extern "C" DPANET_API nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
    static dpanet::trt::CorrelationPluginCreator correlation;
    static dpanet::trt::DeformConvPluginCreator deform_conv;
    static nvinfer1::IPluginCreatorInterface* const creators[] = {&correlation, &deform_conv};
    nbCreators = 2;
    return creators;
}
