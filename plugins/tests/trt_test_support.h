// What the TensorRT plugin tests share: the library's two entry points, a logger that keeps what
// the plugins log (handed over through an ILoggerFinder, as TensorRT does), the creator lookup, and
// tensor descriptions.
#pragma once

#include <NvInferRuntime.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "check.h"

extern "C" void setLoggerFinder(nvinfer1::ILoggerFinder* finder);
extern "C" nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);

namespace dpanet::test {

class CapturingLogger : public nvinfer1::ILogger {
public:
    void log(Severity severity, nvinfer1::AsciiChar const* msg) noexcept override {
        messages.push_back({severity, msg});
    }
    bool has(Severity severity, std::string const& part) const {
        for (auto const& m : messages)
            if (m.first == severity && contains(m.second, part)) return true;
        return false;
    }
    // The last message logged, "" when none.
    std::string last() const { return messages.empty() ? std::string() : messages.back().second; }
    std::vector<std::pair<Severity, std::string>> messages;
};

class Finder : public nvinfer1::ILoggerFinder {
public:
    explicit Finder(nvinfer1::ILogger* logger) : logger_(logger) {}
    nvinfer1::ILogger* findLogger() override { return logger_; }

private:
    nvinfer1::ILogger* logger_;
};

// The library's creator of that name (as TensorRT's registry finds it), null when there is none.
inline nvinfer1::IPluginCreatorV3One* creator(char const* name) {
    int32_t count = 0;
    nvinfer1::IPluginCreatorInterface* const* creators = getCreators(count);
    for (int32_t i = 0; i < count; ++i) {
        auto* c = static_cast<nvinfer1::IPluginCreatorV3One*>(creators[i]);
        if (std::strcmp(c->getPluginName(), name) == 0) return c;
    }
    return nullptr;
}

inline nvinfer1::Dims dims(std::vector<int64_t> const& d) {
    nvinfer1::Dims out{};
    out.nbDims = static_cast<int32_t>(d.size());
    for (std::size_t i = 0; i < d.size(); ++i) out.d[i] = d[i];
    return out;
}

inline nvinfer1::DynamicPluginTensorDesc desc(nvinfer1::DataType type,
                                              nvinfer1::TensorFormat format = nvinfer1::TensorFormat::kLINEAR) {
    nvinfer1::DynamicPluginTensorDesc d{};
    d.desc.type = type;
    d.desc.format = format;
    return d;
}

}  // namespace dpanet::test
