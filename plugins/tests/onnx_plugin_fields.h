// The PluginFieldCollection TensorRT's ONNX parser hands a plugin creator for a node it imports
// through the plugin registry, built here the way the parser builds it, from the node's attributes.
//
// Source read (not copied): onnx/onnx-tensorrt, onnxOpImporters.cpp, loadFields(), called by
// addPluginWithCreator() for an op_type the parser does not know (FallbackPluginImporter), at tag
// 10.1-GA (96e7811) and at commit 0137504e (version 10.6.0); both identical in what matters here:
//   - only the fields the creator declares in getFieldNames() are looked up, in that order; an
//     attribute the creator does not declare (plugin_version, plugin_namespace, any other) is not
//     passed; a declared field the node lacks is skipped with a warning (the creator's default);
//   - INT    -> kINT32, length 1, the int64 attribute narrowed to int32 (OnnxAttrs::get<int32_t>);
//   - INTS   -> kINT32, length n (get<std::vector<int>>);
//   - FLOAT  -> kFLOAT32, length 1;  FLOATS -> kFLOAT32, length n;
//   - STRING -> kCHAR, the bytes and a terminating NUL, length = size + 1.
// The field's declared type in getFieldNames() is not consulted. createPlugin() is then called with
// TensorRTPhase::kBUILD (importerUtils.cpp, createPlugin() for IPluginCreatorV3One, at 10.1-GA and in
// a later version that also handles IPluginCreatorV3Quick). The 11.x parser's source was not
// available to read; the same collection is assumed for both majors.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

namespace dpanet::test {

// An ONNX node attribute (onnx.AttributeProto) of the kinds the parser turns into fields.
struct OnnxAttribute {
    enum class Kind { Int, Ints, Float, Floats, String };
    std::string name;
    Kind kind;
    std::vector<int64_t> ints{};
    std::vector<float> floats{};
    std::string text{};

    static OnnxAttribute i(std::string n, int64_t v) { return {std::move(n), Kind::Int, {v}, {}, {}}; }
    static OnnxAttribute is(std::string n, std::vector<int64_t> v) {
        return {std::move(n), Kind::Ints, std::move(v), {}, {}};
    }
    static OnnxAttribute f(std::string n, float v) { return {std::move(n), Kind::Float, {}, {v}, {}}; }
    static OnnxAttribute s(std::string n, std::string v) { return {std::move(n), Kind::String, {}, {}, std::move(v)}; }
};

class ParserFields {
public:
    ParserFields(std::vector<OnnxAttribute> const& node, nvinfer1::PluginFieldCollection const* declared) {
        for (int32_t k = 0; declared != nullptr && k < declared->nbFields; ++k) {
            const std::string name = declared->fields[k].name;
            OnnxAttribute const* attr = nullptr;
            for (OnnxAttribute const& a : node)
                if (a.name == name) attr = &a;
            if (attr == nullptr) {
                skipped.push_back(name);
                continue;
            }
            add(*attr);
        }
        collection_.nbFields = static_cast<int32_t>(fields_.size());
        collection_.fields = fields_.data();
    }
    ParserFields(ParserFields const&) = delete;
    ParserFields& operator=(ParserFields const&) = delete;

    nvinfer1::PluginFieldCollection const* collection() const { return &collection_; }
    std::vector<std::string> skipped;  // declared fields the node has no attribute for (the parser warns)

private:
    template <class T>
    void store(std::string const& name, std::vector<T> const& values, nvinfer1::PluginFieldType type, int32_t length) {
        std::vector<uint8_t>& bytes = data_.emplace_back(values.size() * sizeof(T));
        if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
        fields_.emplace_back(names_.emplace_back(name).c_str(), bytes.data(), type, length);
    }

    void add(OnnxAttribute const& a) {
        using Type = nvinfer1::PluginFieldType;
        switch (a.kind) {
            case OnnxAttribute::Kind::Int:
            case OnnxAttribute::Kind::Ints: {
                std::vector<int32_t> narrowed;
                for (int64_t v : a.ints) narrowed.push_back(static_cast<int32_t>(v));
                store(a.name, narrowed, Type::kINT32, static_cast<int32_t>(narrowed.size()));
                break;
            }
            case OnnxAttribute::Kind::Float:
            case OnnxAttribute::Kind::Floats:
                store(a.name, a.floats, Type::kFLOAT32, static_cast<int32_t>(a.floats.size()));
                break;
            case OnnxAttribute::Kind::String: {
                std::vector<char> chars(a.text.begin(), a.text.end());
                chars.push_back('\0');
                store(a.name, chars, Type::kCHAR, static_cast<int32_t>(chars.size()));
                break;
            }
        }
    }

    std::deque<std::string> names_;  // deques: elements stay where they are as more are added
    std::deque<std::vector<uint8_t>> data_;
    std::vector<nvinfer1::PluginField> fields_;
    nvinfer1::PluginFieldCollection collection_{};
};

}  // namespace dpanet::test
