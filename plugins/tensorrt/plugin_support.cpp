#include "plugin_support.h"

#include <atomic>
#include <cstdio>

#include "dpanet/cuda_ops.h"

namespace dpanet::trt {
namespace {

std::atomic<nvinfer1::ILoggerFinder*> logger_finder{nullptr};

}  // namespace

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

FieldStorage::FieldStorage(std::vector<IntField> fields) : values_(std::move(fields)) {
    for (IntField const& f : values_) {
        fields_.emplace_back(f.name.c_str(), f.values.data(), nvinfer1::PluginFieldType::kINT32,
                             static_cast<int32_t>(f.values.size()));
    }
    collection_.nbFields = static_cast<int32_t>(fields_.size());
    collection_.fields = fields_.data();
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

bool dims4(nvinfer1::Dims const& dims, Dims4& out) {
    if (dims.nbDims != 4) return false;
    out = {dims.d[0], dims.d[1], dims.d[2], dims.d[3]};
    return true;
}

}  // namespace dpanet::trt
