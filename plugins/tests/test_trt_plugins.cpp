// The TensorRT adapters without TensorRT: the plugin library is linked here without libnvinfer,
// creators and plugins are called directly and log messages are captured: field validation, the
// capability interfaces, serialisation, shape checks at build time and the refusal of another major
// version. test_trt_harness.cpp drives the full sequence of TensorRT's ONNX parser and builder,
// getOutputShapes included.
#include <NvInferRuntime.h>

#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "dpanet/api.h"
#include "dpanet/op_rules.h"
#include "trt_test_support.h"

namespace {
int32_t running_version = NV_TENSORRT_VERSION;
}  // namespace

// Stands in for libnvinfer's own (this executable exports it, so the library finds it as it finds
// TensorRT's), so that a TensorRT of the other major version can be pretended.
extern "C" DPANET_API int32_t getInferLibVersion() noexcept { return running_version; }

using namespace nvinfer1;
using dpanet::test::CapturingLogger;
using dpanet::test::creator;
using dpanet::test::desc;
using dpanet::test::dims;
using dpanet::test::Finder;

namespace {

struct Fields {
    std::vector<std::vector<int32_t>> values;
    std::vector<PluginField> fields;
    PluginFieldCollection fc{};
    void add(char const* name, std::vector<int32_t> v) {
        values.push_back(std::move(v));
        fields.emplace_back(name, values.back().data(), PluginFieldType::kINT32, static_cast<int32_t>(values.back().size()));
    }
    // the six DCN fields: stride, padding, dilation as (y, x)
    void geometry(std::array<int32_t, 6> const& v) {
        for (std::size_t k = 0; k < v.size(); ++k) add(dpanet::kDeformConvFields[k].name, {v[k]});
    }
    PluginFieldCollection const* collection() {
        // vectors above are filled before this is called, so the pointers stay valid
        for (std::size_t i = 0; i < fields.size(); ++i) fields[i].data = values[i].data();
        fc = {static_cast<int32_t>(fields.size()), fields.data()};
        return &fc;
    }
};

std::unique_ptr<IPluginV3> make(char const* name, Fields& f, TensorRTPhase phase = TensorRTPhase::kBUILD) {
    return std::unique_ptr<IPluginV3>(creator(name)->createPlugin("node", f.collection(), phase));
}

void creators_are_registered() {
    int32_t count = 0;
    IPluginCreatorInterface* const* creators = getCreators(count);
    CHECK(count == 2);
    for (char const* name : {"DPANetCorrelation", "DPANetModulatedDeformConv2d"}) {
        IPluginCreatorV3One* c = creator(name);
        CHECK(c != nullptr);
        if (c == nullptr) continue;
        CHECK(std::strcmp(c->getPluginVersion(), "1") == 0);
        CHECK(std::strcmp(c->getPluginNamespace(), "dpanet") == 0);
        CHECK(std::strcmp(c->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") == 0);
    }
    (void)creators;
    PluginFieldCollection const* names = creator("DPANetModulatedDeformConv2d")->getFieldNames();
    CHECK(names->nbFields == 6);
    CHECK(std::strcmp(names->fields[0].name, "stride_y") == 0 && names->fields[0].length == 1);
    CHECK(std::strcmp(names->fields[5].name, "dilation_x") == 0);
    CHECK(names->fields[5].type == PluginFieldType::kINT32);
    CHECK(creator("DPANetCorrelation")->getFieldNames()->nbFields == 1);
}

void invalid_fields_are_refused_with_a_logged_error(CapturingLogger& logger) {
    Fields missing;
    CHECK(make("DPANetCorrelation", missing) == nullptr);
    CHECK(logger.has(ILogger::Severity::kERROR, "max_displacement is required"));
    Fields negative;
    negative.add("max_displacement", {-1});
    CHECK(make("DPANetCorrelation", negative) == nullptr);
    Fields zero_stride;
    zero_stride.add("stride_y", {0});
    CHECK(make("DPANetModulatedDeformConv2d", zero_stride) == nullptr);
    CHECK(logger.has(ILogger::Severity::kERROR, "stride >= 1"));
    CHECK(creator("DPANetModulatedDeformConv2d")->createPlugin(nullptr, nullptr, TensorRTPhase::kBUILD) != nullptr);
    Fields unknown;
    unknown.add("max_displacement", {4});
    unknown.add("groups", {1});
    CHECK(make("DPANetCorrelation", unknown) != nullptr);
    CHECK(logger.has(ILogger::Severity::kWARNING, "ignoring unknown field groups"));
}

void plugin_capabilities_and_formats() {
    Fields f;
    f.geometry({1, 1, 1, 1, 1, 1});
    auto plugin = make("DPANetModulatedDeformConv2d", f);
    CHECK(plugin != nullptr);
    if (!plugin) return;
    auto* core = static_cast<IPluginV3OneCore*>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE));
    auto* build = static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
    auto* runtime = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    CHECK(core != nullptr && build != nullptr && runtime != nullptr);
    CHECK(std::strcmp(core->getPluginName(), "DPANetModulatedDeformConv2d") == 0);
    CHECK(std::strcmp(core->getInterfaceInfo().kind, "PLUGIN_V3ONE_CORE") == 0);
    CHECK(build->getNbOutputs() == 1);

    std::vector<DynamicPluginTensorDesc> io(6, desc(DataType::kHALF));
    for (int32_t pos = 0; pos < 6; ++pos) CHECK(build->supportsFormatCombination(pos, io.data(), 5, 1));
    io[2] = desc(DataType::kFLOAT);
    CHECK(!build->supportsFormatCombination(2, io.data(), 5, 1));
    std::vector<DynamicPluginTensorDesc> int8(5, desc(DataType::kINT8));
    CHECK(!build->supportsFormatCombination(0, int8.data(), 4, 1));
    std::vector<DynamicPluginTensorDesc> chw4(5, desc(DataType::kHALF, TensorFormat::kCHW4));
    CHECK(!build->supportsFormatCombination(0, chw4.data(), 4, 1));
    CHECK(!build->supportsFormatCombination(0, io.data(), 3, 1));  // too few inputs

    DataType out{};
    DataType halves[5] = {DataType::kHALF, DataType::kHALF, DataType::kHALF, DataType::kHALF, DataType::kHALF};
    CHECK(build->getOutputDataTypes(&out, 1, halves, 5) == 0 && out == DataType::kHALF);
    DataType mixed[4] = {DataType::kFLOAT, DataType::kFLOAT, DataType::kHALF, DataType::kFLOAT};
    CHECK(build->getOutputDataTypes(&out, 1, mixed, 4) != 0);
    for (auto& d : io) {
        d.desc.type = DataType::kHALF;
        d.max.nbDims = 4;
        d.max.d[0] = 8, d.max.d[1] = 6, d.max.d[2] = 3, d.max.d[3] = 3;  // weight (8, 6, 3, 3) at most
    }
    CHECK(build->getWorkspaceSize(io.data(), 5, io.data() + 5, 1) == 8 * 6 * 3 * 3 * 2);
}

void serialisation_recreates_the_plugin() {
    Fields f;
    f.geometry({2, 3, 4, 4, 1, 2});
    auto plugin = make("DPANetModulatedDeformConv2d", f);
    auto* runtime = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    PluginFieldCollection const* saved = runtime->getFieldsToSerialize();
    CHECK(saved->nbFields == 6);
    std::unique_ptr<IPluginV3> restored(
        creator("DPANetModulatedDeformConv2d")->createPlugin("node", saved, TensorRTPhase::kRUNTIME));
    CHECK(restored != nullptr);
    auto* again = static_cast<IPluginV3OneRuntime*>(restored->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    PluginFieldCollection const* resaved = again->getFieldsToSerialize();
    for (int32_t i = 0; i < 6; ++i) {
        CHECK(std::strcmp(saved->fields[i].name, resaved->fields[i].name) == 0);
        CHECK(resaved->fields[i].length == 1);
        CHECK(std::memcmp(saved->fields[i].data, resaved->fields[i].data, 4) == 0);
    }
    CHECK(static_cast<int32_t const*>(resaved->fields[1].data)[0] == 3);  // stride_x
    std::unique_ptr<IPluginV3> copy(plugin->clone());
    CHECK(copy != nullptr && copy->getCapabilityInterface(PluginCapabilityType::kBUILD) != nullptr);
    std::unique_ptr<IPluginV3> attached(runtime->attachToContext(nullptr));
    CHECK(attached != nullptr);
}

// Inputs as configurePlugin sees them: a profile from `smallest` to `largest` shapes.
std::vector<DynamicPluginTensorDesc> profile(std::vector<std::vector<int64_t>> const& smallest,
                                             std::vector<std::vector<int64_t>> const& largest) {
    std::vector<DynamicPluginTensorDesc> in;
    for (std::size_t i = 0; i < smallest.size(); ++i) {
        DynamicPluginTensorDesc d = desc(DataType::kFLOAT);
        d.min = dims(smallest[i]);
        d.opt = d.max = dims(largest[i]);
        d.desc.dims = d.max;
        in.push_back(d);
    }
    return in;
}

int32_t configure(char const* name, Fields& f, std::vector<DynamicPluginTensorDesc> const& in) {
    auto plugin = make(name, f);
    auto* build = static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
    DynamicPluginTensorDesc out = desc(DataType::kFLOAT);
    return build->configurePlugin(in.data(), static_cast<int32_t>(in.size()), &out, 1);
}

void shapes_are_checked_when_the_engine_is_built(CapturingLogger& logger) {
    Fields f;
    f.geometry({1, 1, 1, 1, 1, 1});
    const std::vector<int64_t> weight{2, 3, 3, 3}, bias{2};
    auto small = [](int64_t c, int64_t h) { return std::vector<int64_t>{1, c, h, h}; };
    // x, offset, mask, weight with and without bias, from 5 x 5 to 9 x 9
    CHECK(configure("DPANetModulatedDeformConv2d", f,
                    profile({small(3, 5), small(18, 5), small(9, 5), weight},
                            {small(3, 9), small(18, 9), small(9, 9), weight})) == 0);
    CHECK(configure("DPANetModulatedDeformConv2d", f,
                    profile({small(3, 5), small(18, 5), small(9, 5), weight, bias},
                            {small(3, 9), small(18, 9), small(9, 9), weight, bias})) == 0);
    // offset with 16 channels: x and weight alone gave an output shape and the engine was built
    CHECK(configure("DPANetModulatedDeformConv2d", f,
                    profile({small(3, 5), small(16, 5), small(9, 5), weight},
                            {small(3, 9), small(16, 9), small(9, 9), weight})) != 0);
    CHECK(logger.has(ILogger::Severity::kERROR, "smallest shapes: modulated_deform_conv2d: offset has shape"));
    // a mask that only fits at the smallest shapes
    CHECK(configure("DPANetModulatedDeformConv2d", f,
                    profile({small(3, 5), small(18, 5), small(9, 5), weight},
                            {small(3, 9), small(18, 9), small(9, 8), weight})) != 0);
    CHECK(logger.has(ILogger::Severity::kERROR, "largest shapes: modulated_deform_conv2d: mask has shape"));
    CHECK(configure("DPANetModulatedDeformConv2d", f,
                    profile({small(3, 5), small(18, 5), small(9, 5), weight, {3}},
                            {small(3, 5), small(18, 5), small(9, 5), weight, {3}})) != 0);
    CHECK(logger.has(ILogger::Severity::kERROR, "bias has shape (3,), expected (2,)"));
    Fields c;
    c.add("max_displacement", {4});
    CHECK(configure("DPANetCorrelation", c, profile({small(8, 4), small(8, 4)}, {small(8, 6), small(8, 6)})) == 0);
    CHECK(configure("DPANetCorrelation", c, profile({small(8, 4), small(8, 4)}, {small(8, 6), small(4, 6)})) != 0);
    CHECK(logger.has(ILogger::Severity::kERROR, "differ in shape"));
}

void another_major_version_is_refused(CapturingLogger& logger, Finder& finder) {
    running_version = NV_TENSORRT_MAJOR == 10 ? 110100 : 100300;
    int32_t count = -1;
    CHECK(getCreators(count) == nullptr && count == 0);
    CHECK(logger.has(ILogger::Severity::kERROR, "cannot be loaded by TensorRT " +
                                                    std::string(NV_TENSORRT_MAJOR == 10 ? "11.1.0" : "10.3.0")));
    CHECK(logger.has(ILogger::Severity::kERROR, NV_TENSORRT_MAJOR == 10 ? "load libdpanet_trt11_plugins.so"
                                                                        : "load libdpanet_trt10_plugins.so"));
    setLoggerFinder(&finder);  // refused: the finder of another major has another ABI
    running_version = NV_TENSORRT_VERSION;
    const std::size_t logged = logger.messages.size();
    Fields missing;
    CHECK(make("DPANetCorrelation", missing) == nullptr);  // its error goes to stderr, not to the finder
    CHECK(logger.messages.size() == logged);
    setLoggerFinder(&finder);
    CHECK(make("DPANetCorrelation", missing) == nullptr);
    CHECK(logger.messages.size() == logged + 1);
    CHECK(getCreators(count) != nullptr && count == 2);
}

}  // namespace

int main() {
    CapturingLogger logger;
    Finder finder(&logger);
    setLoggerFinder(&finder);
    creators_are_registered();
    invalid_fields_are_refused_with_a_logged_error(logger);
    plugin_capabilities_and_formats();
    serialisation_recreates_the_plugin();
    shapes_are_checked_when_the_engine_is_built(logger);
    another_major_version_is_refused(logger, finder);
    return dpanet::test::summary("test_trt_plugins");
}
