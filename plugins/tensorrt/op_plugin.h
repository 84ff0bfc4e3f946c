// One IPluginV3 (OneCore/OneBuild/OneRuntime) and one IPluginCreatorV3One for an op described by a
// traits class `Op`:
//   using Attrs;                          // CorrelationAttrs, DeformConvAttrs
//   static constexpr char const* kName;   // creator and plugin name (docs/ops.md)
//   static constexpr auto& kFields;       // the op's field table (op_rules.h), one per ONNX attribute
//   static constexpr int32_t kMinInputs, kMaxInputs;
//   static std::string output_shape(Attrs const&, DimsExprs const* inputs, int32_t nb, DimsExprs& out,
//                                   IExprBuilder&);
//   static std::string check_shapes(Attrs const&, Dims const* inputs, int32_t nb);  // all inputs, concrete
//   static std::size_t workspace_size(PluginTensorDesc const* in, int32_t nb);  // for the largest shapes
//   static std::string enqueue(Attrs const&, PluginTensorDesc const* in, int32_t nb, void const* const* inputs,
//                              void* output, void* workspace, cudaStream_t);
// Everything that is not TensorRT plumbing (fields, validation, shapes, formats) is in op_rules.
#pragma once

#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "plugin_support.h"

namespace dpanet::trt {

template <class Op>
class OpPlugin final : public nvinfer1::IPluginV3,
                       public nvinfer1::IPluginV3OneCore,
                       public nvinfer1::IPluginV3OneBuild,
                       public nvinfer1::IPluginV3OneRuntime {
public:
    using Attrs = typename Op::Attrs;

    explicit OpPlugin(Attrs const& attrs) : attrs_(attrs), fields_(attrs, Op::kFields) {}

    Attrs const& attrs() const { return attrs_; }

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override {
        switch (type) {
            case nvinfer1::PluginCapabilityType::kCORE:
                return static_cast<nvinfer1::IPluginV3OneCore*>(this);
            case nvinfer1::PluginCapabilityType::kBUILD:
                return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
            case nvinfer1::PluginCapabilityType::kRUNTIME:
                return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
        }
        return nullptr;
    }

    nvinfer1::IPluginV3* clone() noexcept override {
        try {
            auto copy = std::make_unique<OpPlugin>(attrs_);
            copy->nb_inputs_ = nb_inputs_;
            return copy.release();
        } catch (std::exception const& e) {
            log(nvinfer1::ILogger::Severity::kERROR, std::string(Op::kName) + ": clone failed: " + e.what());
            return nullptr;
        }
    }

    // IPluginV3OneCore
    char const* getPluginName() const noexcept override { return Op::kName; }
    char const* getPluginVersion() const noexcept override { return kPluginVersion; }
    char const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

    // IPluginV3OneBuild
    // Every input's shape is checked against the others at the profile's smallest and largest
    // shapes, so that a graph whose shapes do not fit the op fails when the engine is built,
    // not at every enqueue.
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                            nvinfer1::DynamicPluginTensorDesc const*, int32_t nbOutputs) noexcept override {
        if (!check_counts(nbInputs, nbOutputs)) return 1;
        try {
            for (bool max : {false, true}) {
                const std::vector<nvinfer1::Dims> dims = profile_dims(in, nbInputs, max);
                const std::string error = Op::check_shapes(attrs_, dims.data(), nbInputs);
                if (!error.empty()) {
                    fail(std::string("at the profile's ") + (max ? "largest" : "smallest") + " shapes: " + error);
                    return 1;
                }
            }
            nb_inputs_ = nbInputs;
            return 0;
        } catch (std::exception const& e) {
            fail(e.what());
        }
        return 1;
    }

    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
                               nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override {
        if (!check_counts(nbInputs, nbOutputs)) return 1;
        for (int32_t i = 0; i < nbInputs; ++i) {
            if (inputTypes[i] != inputTypes[0] || element_type(inputTypes[i]) == ElementType::Other) {
                fail("inputs must all be float32 or all float16");
                return 1;
            }
        }
        outputTypes[0] = inputTypes[0];
        return 0;
    }

    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const*,
                            int32_t, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                            nvinfer1::IExprBuilder& exprBuilder) noexcept override {
        if (!check_counts(nbInputs, nbOutputs)) return 1;
        try {
            const std::string error = Op::output_shape(attrs_, inputs, nbInputs, outputs[0], exprBuilder);
            if (error.empty()) return 0;
            fail(error);
        } catch (std::exception const& e) {
            fail(e.what());
        }
        return 1;
    }

    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                   int32_t nbOutputs) noexcept override {
        if (!check_counts(nbInputs, nbOutputs) || pos < 0 || pos >= nbInputs + nbOutputs) return false;
        std::vector<TensorFormat> io;
        for (int32_t i = 0; i <= pos; ++i) io.push_back(tensor_format(inOut[i].desc));
        return supports_format(pos, io.data());
    }

    int32_t getNbOutputs() const noexcept override { return 1; }

    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                            nvinfer1::DynamicPluginTensorDesc const*, int32_t) const noexcept override {
        std::vector<nvinfer1::PluginTensorDesc> largest;
        for (int32_t i = 0; i < nbInputs; ++i) {
            largest.push_back(inputs[i].desc);
            largest.back().dims = inputs[i].max;
        }
        return Op::workspace_size(largest.data(), nbInputs);
    }

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const*, int32_t nbInputs, nvinfer1::PluginTensorDesc const*,
                          int32_t nbOutputs) noexcept override {
        if (!check_counts(nbInputs, nbOutputs)) return 1;
        nb_inputs_ = nbInputs;
        return 0;
    }

    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const*,
                    void const* const* inputs, void* const* outputs, void* workspace,
                    cudaStream_t stream) noexcept override {
        if (nb_inputs_ == 0) {
            fail("enqueue before configurePlugin or onShapeChange: the number of inputs is not known");
            return 1;
        }
        try {
            const std::string error =
                Op::enqueue(attrs_, inputDesc, nb_inputs_, inputs, outputs[0], workspace, stream);
            if (error.empty()) return 0;
            fail(error);
        } catch (std::exception const& e) {
            fail(e.what());
        }
        return 1;
    }

    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext*) noexcept override { return clone(); }

    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override { return fields_.collection(); }

private:
    bool check_counts(int32_t nb_inputs, int32_t nb_outputs) const {
        if (nb_inputs >= Op::kMinInputs && nb_inputs <= Op::kMaxInputs && nb_outputs == 1) return true;
        fail("got " + std::to_string(nb_inputs) + " inputs and " + std::to_string(nb_outputs) +
             " outputs; expected " + std::to_string(Op::kMinInputs) +
             (Op::kMinInputs == Op::kMaxInputs ? "" : " to " + std::to_string(Op::kMaxInputs)) + " inputs and 1 output");
        return false;
    }

    static void fail(std::string const& message) {
        log(nvinfer1::ILogger::Severity::kERROR, std::string(Op::kName) + ": " + message);
    }

    Attrs attrs_;
    FieldStorage<Attrs, Op::kFields.size()> fields_;
    // The number of inputs (the DCN's bias is optional), which enqueue is not told: unknown (0) when
    // created, since the fields carry only the node's attributes; recorded by configurePlugin at build
    // time and onShapeChange at run time (TensorRT calls one of them before any enqueue), kept by clone.
    int32_t nb_inputs_ = 0;
};

template <class Op>
class OpPluginCreator final : public nvinfer1::IPluginCreatorV3One {
public:
    OpPluginCreator() : declared_(declared_fields(Op::kFields)) {
        field_names_.nbFields = static_cast<int32_t>(declared_.size());
        field_names_.fields = declared_.data();
    }

    char const* getPluginName() const noexcept override { return Op::kName; }
    char const* getPluginVersion() const noexcept override { return kPluginVersion; }
    char const* getPluginNamespace() const noexcept override { return kPluginNamespace; }
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override { return &field_names_; }

    // Returns nullptr, with the reason logged as an error, when a field is missing or invalid.
    nvinfer1::IPluginV3* createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fc,
                                      nvinfer1::TensorRTPhase) noexcept override {
        const std::string label = std::string(Op::kName) + " '" + (name != nullptr ? name : "") + "'";
        try {
            typename Op::Attrs attrs;
            std::vector<std::string> ignored;
            const std::vector<FieldView> views = field_views(fc);
            const std::string error = parse_fields(views.data(), static_cast<int32_t>(views.size()), attrs, ignored);
            for (std::string const& field : ignored) {
                log(nvinfer1::ILogger::Severity::kWARNING, label + ": ignoring unknown field " + field);
            }
            if (!error.empty()) {
                log(nvinfer1::ILogger::Severity::kERROR, label + ": " + error);
                return nullptr;
            }
            return new OpPlugin<Op>(attrs);
        } catch (std::exception const& e) {
            log(nvinfer1::ILogger::Severity::kERROR, label + ": " + e.what());
            return nullptr;
        }
    }

private:
    std::vector<nvinfer1::PluginField> declared_;
    nvinfer1::PluginFieldCollection field_names_{};
};

}  // namespace dpanet::trt
