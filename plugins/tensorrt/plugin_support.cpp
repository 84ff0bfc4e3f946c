#include "plugin_support.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdio>

#include "dpanet/cuda_ops.h"

namespace dpanet::trt {
namespace {

std::atomic<nvinfer1::ILoggerFinder*> logger_finder{nullptr};

// getInferLibVersion() of the TensorRT in this process: a global symbol (trtexec, a C++ program
// linked with libnvinfer), else the one of the library `caller` lies in (libnvinfer loaded
// privately, as by the Python bindings); 0 when there is none.
int32_t running_tensorrt_version(void const* caller) {
    void* symbol = dlsym(RTLD_DEFAULT, "getInferLibVersion");
    Dl_info info{};
    if (symbol == nullptr && caller != nullptr && dladdr(caller, &info) != 0 && info.dli_fname != nullptr) {
        if (void* library = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD)) {
            symbol = dlsym(library, "getInferLibVersion");
            dlclose(library);
        }
    }
    return symbol != nullptr ? reinterpret_cast<int32_t (*)()>(symbol)() : 0;
}

std::string version_text(int64_t version) {
    return std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "." +
           std::to_string(version % 100);
}

}  // namespace

bool running_tensorrt_matches(void const* caller) {
    const int32_t running = running_tensorrt_version(caller);
    if (running == 0 || running / 10000 == NV_TENSORRT_MAJOR) return true;
    log(nvinfer1::ILogger::Severity::kERROR,
        "libdpanet_trt" + std::to_string(NV_TENSORRT_MAJOR) + "_plugins was built with the TensorRT " +
            version_text(NV_TENSORRT_VERSION) + " headers and cannot be loaded by TensorRT " + version_text(running) +
            " (the plugin ABI differs between major versions): load libdpanet_trt" +
            std::to_string(running / 10000) + "_plugins.so, built against that version's headers (docs/plugins.md)");
    return false;
}

void set_logger_finder(nvinfer1::ILoggerFinder* finder) { logger_finder.store(finder); }

void log(nvinfer1::ILogger::Severity severity, std::string const& message) {
    nvinfer1::ILoggerFinder* finder = logger_finder.load();
    nvinfer1::ILogger* logger = finder != nullptr ? finder->findLogger() : nullptr;
    if (logger != nullptr) {
        logger->log(severity, message.c_str());
    } else {
        std::fprintf(stderr, "dpanet plugins: %s\n", message.c_str());
    }
}

std::vector<FieldView> field_views(nvinfer1::PluginFieldCollection const* fields) {
    std::vector<FieldView> views;
    if (fields == nullptr || fields->fields == nullptr) return views;
    for (int32_t i = 0; i < fields->nbFields; ++i) {
        nvinfer1::PluginField const& f = fields->fields[i];
        FieldType type = f.type == nvinfer1::PluginFieldType::kINT32   ? FieldType::Int32
                         : f.type == nvinfer1::PluginFieldType::kINT64 ? FieldType::Int64
                                                                        : FieldType::Other;
        views.push_back({f.name, type, f.length, f.data});
    }
    return views;
}

ElementType element_type(nvinfer1::DataType type) {
    switch (type) {
        case nvinfer1::DataType::kFLOAT:
            return ElementType::Float32;
        case nvinfer1::DataType::kHALF:
            return ElementType::Float16;
        default:
            return ElementType::Other;
    }
}

TensorFormat tensor_format(nvinfer1::PluginTensorDesc const& desc) {
    return {element_type(desc.type), desc.format == nvinfer1::TensorFormat::kLINEAR};
}

int32_t kernel_dtype(nvinfer1::DataType type) {
    return type == nvinfer1::DataType::kHALF ? DPANET_FLOAT16 : DPANET_FLOAT32;
}

std::vector<nvinfer1::Dims> profile_dims(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nb, bool max) {
    std::vector<nvinfer1::Dims> dims;
    for (int32_t i = 0; i < nb; ++i) dims.push_back(max ? in[i].max : in[i].min);
    return dims;
}

bool dims4(nvinfer1::Dims const& dims, Dims4& out) {
    if (dims.nbDims != 4) return false;
    out = {dims.d[0], dims.d[1], dims.d[2], dims.d[3]};
    return true;
}

}  // namespace dpanet::trt
