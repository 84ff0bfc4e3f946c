// Both plugins driven through the call sequence of TensorRT's ONNX parser, builder and runtime, with
// the headers of one TensorRT major (this file is compiled once per major), without libnvinfer:
//   parser:  getFieldNames -> the PluginFieldCollection built from the node's attributes
//            (onnx_plugin_fields.h) -> createPlugin(kBUILD)
//   builder: capability interfaces -> getNbOutputs -> getOutputDataTypes -> getOutputShapes (real
//            IExprBuilder/IDimensionExpr over symbolic N, H, W: symbolic_expr.h) ->
//            supportsFormatCombination over every type/format -> configurePlugin at the profile's
//            min and max -> getWorkspaceSize -> clone -> onShapeChange -> getFieldsToSerialize
//   runtime: createPlugin(kRUNTIME) from the serialised fields -> attachToContext -> onShapeChange
// Every expected value comes from the op contract in docs/ops.md, written out here independently of
// op_rules (the plugin's own rules). enqueue is called only where the plugin refuses before any CUDA
// call (the DCN's workspace check), so nothing here needs a GPU.
#include <NvInferRuntime.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "onnx_plugin_fields.h"
#include "symbolic_expr.h"
#include "trt_test_support.h"

using namespace nvinfer1;
using namespace dpanet::test;

namespace {

constexpr char const* kCorrelation = "DPANetCorrelation";
constexpr char const* kDeformConv = "DPANetModulatedDeformConv2d";

CapturingLogger logger;

// Whether the last message logged contains `part`; prints it when not.
bool last_logged(std::string const& part) {
    if (contains(logger.last(), part)) return true;
    std::fprintf(stderr, "expected \"%s\" in the last message logged: %s\n", part.c_str(), logger.last().c_str());
    return false;
}

struct Counts {
    int32_t sequences = 0;     // full parser -> builder -> runtime sequences, one per case
    int32_t field_cases = 0;   // node attribute sets checked through the parser's field building
    int64_t formats = 0;       // supportsFormatCombination calls checked
    int64_t shape_points = 0;  // (N, H, W) at which a symbolic output shape was evaluated
};
std::map<std::string, Counts> counts;

// docs/ops.md: floor division, and HO = (H + 2*py - dy*(KH - 1) - 1) // sy + 1 (likewise WO)
int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0); }
int64_t conv_extent(int64_t size, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
    return floor_div(size + 2 * pad - dilation * (kernel - 1) - 1, stride) + 1;
}

// One dimension of an input or output: a constant or a symbol (N, H, W, and the op's HO, WO).
struct Term {
    Term(int64_t v) : value(v) {}  // NOLINT: implicit, so that shapes read as {"N", 8, "H", "W"}
    Term(char const* s) : symbol(s) {}  // NOLINT
    char const* symbol = nullptr;
    int64_t value = 0;
    int64_t at(Bindings const& b) const { return symbol != nullptr ? b.at(symbol) : value; }
};
using Shape = std::vector<Term>;

struct Point {
    int64_t n, h, w;
};

// One node of a plugin op at one data type: what the exporter writes, what the plugin must hold,
// the contract's shapes, and an optimisation profile.
struct Case {
    char const* plugin;
    std::string label;
    std::vector<OnnxAttribute> node;                    // attributes as export/onnx_ops.py writes them
    std::vector<std::pair<std::string, int32_t>> held;  // the plugin's fields, in declaration order
    std::vector<Shape> inputs;
    Shape output;
    std::function<Bindings(Point)> bind;  // N, H, W and what the contract derives from them
    Point min, opt, max;
    int64_t workspace_elements;  // docs/ops.md: DCN O*C*KH*KW, correlation 0
    DataType type;
};

int64_t element_bytes(DataType t) { return t == DataType::kHALF ? 2 : 4; }
char const* type_name(DataType t) { return t == DataType::kHALF ? "float16" : "float32"; }

std::vector<int64_t> concrete(Shape const& s, Bindings const& b) {
    std::vector<int64_t> out;
    for (Term const& t : s) out.push_back(t.at(b));
    return out;
}

std::vector<DynamicPluginTensorDesc> profile(Case const& c, std::vector<Shape> const& shapes) {
    std::vector<DynamicPluginTensorDesc> out;
    for (Shape const& s : shapes) {
        DynamicPluginTensorDesc d = desc(c.type);
        d.min = dims(concrete(s, c.bind(c.min)));
        d.opt = dims(concrete(s, c.bind(c.opt)));
        d.max = dims(concrete(s, c.bind(c.max)));
        d.desc.dims = d.opt;
        out.push_back(d);
    }
    return out;
}

// The inputs as enqueue and onShapeChange see them, at one point of the profile.
std::vector<PluginTensorDesc> descs_at(Case const& c, Point p) {
    std::vector<PluginTensorDesc> out;
    for (Shape const& s : c.inputs) {
        PluginTensorDesc d{};
        d.dims = dims(concrete(s, c.bind(p)));
        d.type = c.type;
        d.format = TensorFormat::kLINEAR;
        out.push_back(d);
    }
    return out;
}

template <class Capability>
Capability* capability(IPluginV3* plugin, PluginCapabilityType type) {
    return static_cast<Capability*>(plugin->getCapabilityInterface(type));
}

using Held = std::vector<std::pair<std::string, int32_t>>;

// The serialised fields must be one int32 scalar per declared field, in declaration order, holding
// `held`.
void check_serialised(PluginFieldCollection const* fc, Held const& held) {
    CHECK(fc != nullptr && fc->nbFields == static_cast<int32_t>(held.size()));
    if (fc == nullptr || fc->nbFields != static_cast<int32_t>(held.size())) return;
    for (int32_t i = 0; i < fc->nbFields; ++i) {
        PluginField const& f = fc->fields[i];
        CHECK(f.name == held[i].first);
        CHECK(f.type == PluginFieldType::kINT32 && f.length == 1 && f.data != nullptr);
        if (f.type != PluginFieldType::kINT32 || f.data == nullptr) continue;
        int32_t value = 0;
        std::memcpy(&value, f.data, sizeof(value));
        CHECK(value == held[i].second);
    }
}

// getOutputShapes on symbolic N, H, W (C, O and the kernel constant, as for an initializer weight),
// evaluated against the contract on a grid of sizes; and on constant inputs, where every output
// dimension must fold to the contract's constant.
void check_output_shapes(IPluginV3OneBuild* build, Case const& c, Counts& n) {
    const int32_t nb = static_cast<int32_t>(c.inputs.size());
    SymbolicExprBuilder eb;
    std::vector<DimsExprs> in(c.inputs.size());
    for (std::size_t i = 0; i < c.inputs.size(); ++i) {
        in[i].nbDims = static_cast<int32_t>(c.inputs[i].size());
        for (std::size_t k = 0; k < c.inputs[i].size(); ++k) {
            Term const& t = c.inputs[i][k];
            in[i].d[k] = t.symbol != nullptr ? eb.symbol(t.symbol) : eb.number(t.value);
        }
    }
    DimsExprs out{};
    CHECK(build->getOutputShapes(in.data(), nb, nullptr, 0, &out, 1, eb) == 0);
    CHECK(eb.foreign_operands() == 0 && eb.size_tensors_declared() == 0);
    CHECK(out.nbDims == static_cast<int32_t>(c.output.size()));
    if (out.nbDims != static_cast<int32_t>(c.output.size())) return;
    std::vector<SymbolicExpr const*> expr;
    for (int32_t k = 0; k < out.nbDims; ++k) {
        expr.push_back(SymbolicExprBuilder::ours(out.d[k]));
        CHECK(expr.back() != nullptr);
        if (expr.back() == nullptr) return;
        if (c.output[k].symbol == nullptr) {  // a constant of the contract stays a constant
            CHECK(out.d[k]->isConstant() && out.d[k]->getConstantValue() == c.output[k].value);
        }
    }
    int32_t mismatches = 0;
    for (int64_t batch : {1, 3}) {
        for (int64_t h = 1; h <= 41; h += 1) {
            for (int64_t w : {1, 2, 5, 8, 13, 22, 37}) {
                const Bindings b = c.bind({batch, h, w});
                bool equal = true;
                for (int32_t k = 0; k < out.nbDims; ++k) equal = equal && expr[k]->evaluate(b) == c.output[k].at(b);
                if (!equal && mismatches++ == 0) {
                    std::fprintf(stderr, "%s: output shape differs from the contract at N=%lld H=%lld W=%lld\n",
                                 c.label.c_str(), static_cast<long long>(batch), static_cast<long long>(h),
                                 static_cast<long long>(w));
                }
                ++n.shape_points;
            }
        }
    }
    if (mismatches > 0) std::fprintf(stderr, "%s: %d points differ\n", c.label.c_str(), mismatches);
    CHECK(mismatches == 0);
    // all inputs constant, at the profile's opt shape
    const Bindings opt = c.bind(c.opt);
    SymbolicExprBuilder folded;
    for (std::size_t i = 0; i < c.inputs.size(); ++i) {
        for (std::size_t k = 0; k < c.inputs[i].size(); ++k) in[i].d[k] = folded.number(c.inputs[i][k].at(opt));
    }
    CHECK(build->getOutputShapes(in.data(), nb, nullptr, 0, &out, 1, folded) == 0);
    for (int32_t k = 0; k < out.nbDims; ++k) {
        CHECK(out.d[k] != nullptr && out.d[k]->isConstant() && out.d[k]->getConstantValue() == c.output[k].at(opt));
    }
}

// What enqueue needs as workspace at the given shapes, read from the DCN's refusal of a null
// workspace ("workspace of X bytes, needs Y"): the kernel's own check, reached before any CUDA call.
// -1 when enqueue did not stop there.
int64_t enqueue_workspace_need(IPluginV3OneRuntime* runtime, std::vector<PluginTensorDesc> const& in,
                               PluginTensorDesc const& out) {
    std::vector<char> bytes(64);
    std::vector<void const*> inputs(in.size(), bytes.data());  // never read: refused before a launch
    void* outputs[1] = {bytes.data()};
    if (runtime->enqueue(in.data(), &out, inputs.data(), outputs, nullptr, nullptr) == 0) return -1;
    if (!last_logged("bytes, needs ")) return -1;
    const std::string message = logger.last();
    return std::stoll(message.substr(message.find("bytes, needs ") + 13));
}

PluginTensorDesc output_desc(Case const& c, Point p) {
    PluginTensorDesc d{};
    d.dims = dims(concrete(c.output, c.bind(p)));
    d.type = c.type;
    d.format = TensorFormat::kLINEAR;
    return d;
}

class ResourceContext : public IPluginResourceContext {
public:
    IGpuAllocator* getGpuAllocator() const noexcept override { return nullptr; }
    IErrorRecorder* getErrorRecorder() const noexcept override { return nullptr; }
};

void run_sequence(Case const& c) {
    Counts& n = counts[c.plugin];
    ++n.sequences;
    IPluginCreatorV3One* creator_ = creator(c.plugin);
    CHECK(creator_ != nullptr);
    if (creator_ == nullptr) return;
    const int32_t nb = static_cast<int32_t>(c.inputs.size());
    const bool dcn = std::strcmp(c.plugin, kDeformConv) == 0;

    // ONNX parser
    ParserFields fields(c.node, creator_->getFieldNames());
    CHECK(fields.skipped.empty());
    std::unique_ptr<IPluginV3> plugin(creator_->createPlugin("node", fields.collection(), TensorRTPhase::kBUILD));
    CHECK(plugin != nullptr);
    if (plugin == nullptr) return;

    // builder
    auto* core = capability<IPluginV3OneCore>(plugin.get(), PluginCapabilityType::kCORE);
    auto* build = capability<IPluginV3OneBuild>(plugin.get(), PluginCapabilityType::kBUILD);
    auto* runtime = capability<IPluginV3OneRuntime>(plugin.get(), PluginCapabilityType::kRUNTIME);
    CHECK(core != nullptr && build != nullptr && runtime != nullptr);
    if (core == nullptr || build == nullptr || runtime == nullptr) return;
    CHECK(std::strcmp(core->getInterfaceInfo().kind, "PLUGIN_V3ONE_CORE") == 0);
    CHECK(std::strcmp(build->getInterfaceInfo().kind, "PLUGIN_V3ONE_BUILD") == 0);
    CHECK(build->getInterfaceInfo().major == 1);  // IPluginV3OneBuild, not ...V2
    CHECK(std::strcmp(runtime->getInterfaceInfo().kind, "PLUGIN_V3ONE_RUNTIME") == 0);
    CHECK(std::strcmp(core->getPluginName(), c.plugin) == 0);
    CHECK(std::strcmp(core->getPluginVersion(), "1") == 0);
    CHECK(std::strcmp(core->getPluginNamespace(), "dpanet") == 0);
    CHECK(build->getNbOutputs() == 1);

    const std::vector<DataType> types(c.inputs.size(), c.type);
    DataType out_type = DataType::kINT8;
    CHECK(build->getOutputDataTypes(&out_type, 1, types.data(), nb) == 0 && out_type == c.type);

    check_output_shapes(build, c, n);

    std::vector<DynamicPluginTensorDesc> in = profile(c, c.inputs);
    DynamicPluginTensorDesc out = profile(c, {c.output})[0];
    CHECK(build->configurePlugin(in.data(), nb, &out, 1) == 0);
    // the second input one column too wide at the profile's largest shapes: refused when built
    std::vector<DynamicPluginTensorDesc> wide = in;
    wide[1].max.d[wide[1].max.nbDims - 1] += 1;
    std::unique_ptr<IPluginV3> other(plugin->clone());
    CHECK(other != nullptr &&
          capability<IPluginV3OneBuild>(other.get(), PluginCapabilityType::kBUILD)
                  ->configurePlugin(wide.data(), nb, &out, 1) != 0);
    CHECK(logger.has(ILogger::Severity::kERROR, "at the profile's largest shapes"));

    const std::size_t workspace = build->getWorkspaceSize(in.data(), nb, &out, 1);
    CHECK(static_cast<int64_t>(workspace) == c.workspace_elements * element_bytes(c.type));

    std::unique_ptr<IPluginV3> copy(plugin->clone());  // what the builder keeps for the engine
    CHECK(copy != nullptr && copy.get() != plugin.get());
    if (copy == nullptr) return;
    auto* copy_runtime = capability<IPluginV3OneRuntime>(copy.get(), PluginCapabilityType::kRUNTIME);
    check_serialised(copy_runtime->getFieldsToSerialize(), c.held);
    const std::vector<PluginTensorDesc> opt = descs_at(c, c.opt);
    const PluginTensorDesc opt_out = output_desc(c, c.opt);
    CHECK(copy_runtime->onShapeChange(opt.data(), nb, &opt_out, 1) == 0);
    if (dcn) {  // what enqueue needs, at the profile's smallest and largest shapes, fits the workspace
        for (Point p : {c.min, c.max}) {
            const int64_t need = enqueue_workspace_need(copy_runtime, descs_at(c, p), output_desc(c, p));
            CHECK(need > 0 && need <= static_cast<int64_t>(workspace));
        }
    }

    // engine serialisation and deserialisation
    PluginFieldCollection const* saved = copy_runtime->getFieldsToSerialize();
    std::unique_ptr<IPluginV3> restored(creator_->createPlugin("node", saved, TensorRTPhase::kRUNTIME));
    CHECK(restored != nullptr);
    if (restored == nullptr) return;
    auto* restored_runtime = capability<IPluginV3OneRuntime>(restored.get(), PluginCapabilityType::kRUNTIME);
    check_serialised(restored_runtime->getFieldsToSerialize(), c.held);

    // execution context
    ResourceContext context;
    std::unique_ptr<IPluginV3> attached(restored_runtime->attachToContext(&context));
    CHECK(attached != nullptr && attached.get() != restored.get());
    if (attached == nullptr) return;
    auto* attached_runtime = capability<IPluginV3OneRuntime>(attached.get(), PluginCapabilityType::kRUNTIME);
    check_serialised(attached_runtime->getFieldsToSerialize(), c.held);
    CHECK(attached_runtime->onShapeChange(opt.data(), nb, &opt_out, 1) == 0);
    if (dcn) CHECK(enqueue_workspace_need(attached_runtime, opt, opt_out) == c.workspace_elements * element_bytes(c.type));
}

// TensorRT asks position by position, the earlier positions fixed to formats the plugin accepted:
// position 0 over every type x format, then each later position over every type x format with the
// positions before it at each accepted choice of position 0. docs/ops.md: linear float32 or
// float16, every input and the output of one type.
void check_formats(char const* plugin_name, int32_t nb_inputs) {
    Counts& n = counts[plugin_name];
    IPluginCreatorV3One* c = creator(plugin_name);
    std::vector<OnnxAttribute> node;  // the DCN's fields all have defaults, max_displacement none
    if (std::strcmp(plugin_name, kCorrelation) == 0) node.push_back(OnnxAttribute::i("max_displacement", 4));
    ParserFields fields(node, c->getFieldNames());
    std::unique_ptr<IPluginV3> plugin(c->createPlugin("node", fields.collection(), TensorRTPhase::kBUILD));
    CHECK(plugin != nullptr);
    if (plugin == nullptr) return;
    auto* build = capability<IPluginV3OneBuild>(plugin.get(), PluginCapabilityType::kBUILD);
    auto accepted = [](DynamicPluginTensorDesc const& d) {
        return d.desc.format == TensorFormat::kLINEAR &&
               (d.desc.type == DataType::kFLOAT || d.desc.type == DataType::kHALF);
    };
    std::vector<DynamicPluginTensorDesc> all;
    for (int32_t t = 0; t < EnumMax<DataType>(); ++t) {
        for (int32_t f = 0; f < EnumMax<TensorFormat>(); ++f) {
            all.push_back(desc(static_cast<DataType>(t), static_cast<TensorFormat>(f)));
        }
    }
    const int32_t positions = nb_inputs + 1;
    std::vector<DynamicPluginTensorDesc> io(positions);
    std::vector<DynamicPluginTensorDesc> firsts;
    for (DynamicPluginTensorDesc const& first : all) {
        io[0] = first;
        const bool ok = build->supportsFormatCombination(0, io.data(), nb_inputs, 1);
        CHECK(ok == accepted(first));
        ++n.formats;
        if (ok) firsts.push_back(first);
    }
    CHECK(firsts.size() == 2);
    for (int32_t pos = 1; pos < positions; ++pos) {
        for (DynamicPluginTensorDesc const& first : firsts) {
            for (int32_t k = 0; k < pos; ++k) io[k] = first;
            for (DynamicPluginTensorDesc const& candidate : all) {
                io[pos] = candidate;
                const bool expected = accepted(candidate) && candidate.desc.type == first.desc.type;
                CHECK(build->supportsFormatCombination(pos, io.data(), nb_inputs, 1) == expected);
                ++n.formats;
            }
        }
    }
}

// The node's attributes of the wrong kind, missing or out of range, through the parser's field
// building: the creator refuses (null, the reason logged) or applies the documented default.
void check_parser_fields() {
    struct FieldCase {
        char const* plugin;
        std::vector<OnnxAttribute> node;
        char const* error;  // logged by the creator; nullptr: created
    };
    const std::vector<FieldCase> cases{
        {kCorrelation, {OnnxAttribute::i("max_displacement", 4)}, nullptr},
        {kCorrelation, {OnnxAttribute::s("plugin_version", "1")}, "max_displacement is required"},
        {kCorrelation, {OnnxAttribute::f("max_displacement", 4.0F)}, "max_displacement must be int32 or int64"},
        {kCorrelation, {OnnxAttribute::is("max_displacement", {4, 4})}, "max_displacement has 2 values, expected 1"},
        {kCorrelation, {OnnxAttribute::i("max_displacement", -1)}, "max_displacement must be >= 0"},
        {kDeformConv, {}, nullptr},  // every field has a default (docs/ops.md)
        {kDeformConv, {OnnxAttribute::is("stride_y", {2, 2})}, "stride_y has 2 values, expected 1"},
        {kDeformConv, {OnnxAttribute::f("padding_x", 1.0F)}, "padding_x must be int32 or int64"},
        {kDeformConv, {OnnxAttribute::s("dilation_y", "1")}, "dilation_y must be int32 or int64"},
        {kDeformConv, {OnnxAttribute::i("dilation_x", 0)}, "dilation"},
    };
    for (FieldCase const& fc : cases) {
        ++counts[fc.plugin].field_cases;
        IPluginCreatorV3One* c = creator(fc.plugin);
        ParserFields fields(fc.node, c->getFieldNames());
        const std::size_t logged = logger.messages.size();
        std::unique_ptr<IPluginV3> plugin(c->createPlugin("node", fields.collection(), TensorRTPhase::kBUILD));
        CHECK((plugin == nullptr) == (fc.error != nullptr));
        if (fc.error != nullptr) {
            CHECK(logger.messages.size() > logged && last_logged(fc.error));
        }
    }
    // the defaults, as serialised: stride 1, padding 0, dilation 1
    IPluginCreatorV3One* c = creator(kDeformConv);
    ParserFields none({}, c->getFieldNames());
    CHECK(none.skipped.size() == 6);
    std::unique_ptr<IPluginV3> plugin(c->createPlugin("node", none.collection(), TensorRTPhase::kBUILD));
    CHECK(plugin != nullptr);
    if (plugin != nullptr) {
        const Held defaults{{"stride_y", 1},  {"stride_x", 1},   {"padding_y", 0},
                            {"padding_x", 0}, {"dilation_y", 1}, {"dilation_x", 1}};
        check_serialised(
            capability<IPluginV3OneRuntime>(plugin.get(), PluginCapabilityType::kRUNTIME)->getFieldsToSerialize(),
            defaults);
    }
}

// The field declarations are what the parser produces for an INT attribute: int32 scalars.
void check_declared_fields(char const* plugin_name, std::vector<std::string> const& names) {
    PluginFieldCollection const* declared = creator(plugin_name)->getFieldNames();
    CHECK(declared->nbFields == static_cast<int32_t>(names.size()));
    for (int32_t i = 0; i < declared->nbFields && i < static_cast<int32_t>(names.size()); ++i) {
        CHECK(declared->fields[i].name == names[i]);
        CHECK(declared->fields[i].type == PluginFieldType::kINT32 && declared->fields[i].length == 1);
    }
}

std::vector<Case> correlation_cases() {
    std::vector<Case> cases;
    for (DataType type : {DataType::kFLOAT, DataType::kHALF}) {
        for (auto [d, channels] : std::vector<std::pair<int32_t, int64_t>>{{0, 1}, {1, 5}, {4, 8}}) {
            const int64_t size = (2 * d + 1) * (2 * d + 1);
            cases.push_back(
                {kCorrelation,
                 std::string(kCorrelation) + " d=" + std::to_string(d) + " " + type_name(type),
                 {OnnxAttribute::i("max_displacement", d), OnnxAttribute::s("plugin_version", "1"),
                  OnnxAttribute::s("plugin_namespace", "dpanet")},
                 {{"max_displacement", d}},
                 {{"N", channels, "H", "W"}, {"N", channels, "H", "W"}},
                 {"N", size, "H", "W"},
                 [](Point p) { return Bindings{{"N", p.n}, {"H", p.h}, {"W", p.w}}; },
                 {1, 2, 3},
                 {2, 7, 9},
                 {4, 16, 24},
                 0,
                 type});
        }
    }
    return cases;
}

struct Geometry {
    std::array<int32_t, 2> stride, padding, dilation;
    std::array<int64_t, 4> weight;  // O, C, KH, KW
};

std::vector<Case> deform_conv_cases() {
    const std::vector<Geometry> geometries{
        {{1, 1}, {1, 1}, {1, 1}, {8, 6, 3, 3}},  // DPANet's
        {{2, 3}, {0, 2}, {1, 2}, {4, 3, 3, 5}},
        {{3, 1}, {2, 0}, {2, 1}, {5, 2, 5, 1}},
    };
    std::vector<Case> cases;
    for (DataType type : {DataType::kFLOAT, DataType::kHALF}) {
        for (Geometry const& g : geometries) {
            for (bool bias : {false, true}) {
                const auto [o, ch, kh, kw] = g.weight;
                std::vector<Shape> inputs{{"N", ch, "H", "W"},
                                          {"N", 2 * kh * kw, "HO", "WO"},
                                          {"N", kh * kw, "HO", "WO"},
                                          {o, ch, kh, kw}};
                if (bias) inputs.push_back({o});
                std::vector<OnnxAttribute> node{
                    OnnxAttribute::i("stride_y", g.stride[0]),     OnnxAttribute::i("stride_x", g.stride[1]),
                    OnnxAttribute::i("padding_y", g.padding[0]),   OnnxAttribute::i("padding_x", g.padding[1]),
                    OnnxAttribute::i("dilation_y", g.dilation[0]), OnnxAttribute::i("dilation_x", g.dilation[1]),
                    OnnxAttribute::s("plugin_version", "1"),       OnnxAttribute::s("plugin_namespace", "dpanet")};
                cases.push_back({kDeformConv,
                                 std::string(kDeformConv) + " stride " + std::to_string(g.stride[0]) + "x" +
                                     std::to_string(g.stride[1]) + (bias ? " bias " : " ") + type_name(type),
                                 node,
                                 {{"stride_y", g.stride[0]},
                                  {"stride_x", g.stride[1]},
                                  {"padding_y", g.padding[0]},
                                  {"padding_x", g.padding[1]},
                                  {"dilation_y", g.dilation[0]},
                                  {"dilation_x", g.dilation[1]}},
                                 inputs,
                                 {"N", o, "HO", "WO"},
                                 [g, kh = kh, kw = kw](Point p) {
                                     return Bindings{
                                         {"N", p.n},
                                         {"H", p.h},
                                         {"W", p.w},
                                         {"HO", conv_extent(p.h, kh, g.stride[0], g.padding[0], g.dilation[0])},
                                         {"WO", conv_extent(p.w, kw, g.stride[1], g.padding[1], g.dilation[1])}};
                                 },
                                 {1, 9, 9},
                                 {2, 17, 23},
                                 {3, 40, 33},
                                 o * ch * kh * kw,
                                 type});
            }
        }
    }
    return cases;
}

// Issue 20, item 10: the DCN's input count (4: no bias, 5: bias; docs/ops.md) is what configurePlugin
// (build) or onShapeChange (run) was given, never assumed. The descriptions are passed with a 5th
// slot, a bias with a null pointer, standing for whatever lies past the 4 inputs TensorRT passes:
// a plugin that assumed 5 inputs reads it and refuses "bias is NULL".
void dcn_input_count_is_recorded_not_assumed() {
    IPluginCreatorV3One* c = creator(kDeformConv);
    const Case dcn = deform_conv_cases()[0];  // no bias, float32
    ParserFields fields(dcn.node, c->getFieldNames());
    CHECK(dcn.inputs.size() == 4);
    std::vector<DynamicPluginTensorDesc> in = profile(dcn, dcn.inputs);
    DynamicPluginTensorDesc out = profile(dcn, {dcn.output})[0];
    std::vector<PluginTensorDesc> with_slot = descs_at(dcn, dcn.opt);
    PluginTensorDesc bias = with_slot[0];
    bias.dims = dims({dcn.output[1].value});
    with_slot.push_back(bias);
    std::vector<char> bytes(64);
    std::vector<void const*> inputs(4, bytes.data());
    inputs.push_back(nullptr);
    void* outputs[1] = {bytes.data()};
    const PluginTensorDesc opt_out = output_desc(dcn, dcn.opt);

    // build: configurePlugin with 4 inputs, then the builder's enqueue on the plugin or a clone
    std::unique_ptr<IPluginV3> plugin(c->createPlugin("node", fields.collection(), TensorRTPhase::kBUILD));
    CHECK(plugin != nullptr);
    if (plugin == nullptr) return;
    auto* build = capability<IPluginV3OneBuild>(plugin.get(), PluginCapabilityType::kBUILD);
    CHECK(build->configurePlugin(in.data(), 4, &out, 1) == 0);
    std::unique_ptr<IPluginV3> copy(plugin->clone());
    CHECK(copy != nullptr);
    if (copy == nullptr) return;
    for (IPluginV3* p : {plugin.get(), copy.get()}) {
        auto* runtime = capability<IPluginV3OneRuntime>(p, PluginCapabilityType::kRUNTIME);
        CHECK(runtime->enqueue(with_slot.data(), &opt_out, inputs.data(), outputs, nullptr, nullptr) != 0);
        CHECK(last_logged("workspace of"));  // 4 inputs: past the shape and pointer checks
    }

    // run: a plugin deserialised and attached, before onShapeChange, does not guess
    auto* saved = capability<IPluginV3OneRuntime>(plugin.get(), PluginCapabilityType::kRUNTIME);
    std::unique_ptr<IPluginV3> restored(c->createPlugin("node", saved->getFieldsToSerialize(), TensorRTPhase::kRUNTIME));
    CHECK(restored != nullptr);
    if (restored == nullptr) return;
    auto* runtime = capability<IPluginV3OneRuntime>(restored.get(), PluginCapabilityType::kRUNTIME);
    CHECK(runtime->enqueue(with_slot.data(), &opt_out, inputs.data(), outputs, nullptr, nullptr) != 0);
    CHECK(last_logged("the number of inputs is not known"));
    CHECK(runtime->onShapeChange(with_slot.data(), 4, &opt_out, 1) == 0);
    CHECK(runtime->enqueue(with_slot.data(), &opt_out, inputs.data(), outputs, nullptr, nullptr) != 0);
    CHECK(last_logged("workspace of"));
}

}  // namespace

int main() {
    Finder finder(&logger);
    setLoggerFinder(&finder);
    check_declared_fields(kCorrelation, {"max_displacement"});
    check_declared_fields(kDeformConv, {"stride_y", "stride_x", "padding_y", "padding_x", "dilation_y", "dilation_x"});
    check_parser_fields();
    for (Case const& c : correlation_cases()) run_sequence(c);
    for (Case const& c : deform_conv_cases()) run_sequence(c);
    check_formats(kCorrelation, 2);
    check_formats(kDeformConv, 4);
    check_formats(kDeformConv, 5);
    dcn_input_count_is_recorded_not_assumed();
    for (auto const& [plugin, n] : counts) {
        std::printf("%s, TensorRT %d.%d.%d headers: %d call sequences, %d parser-field cases, %lld format "
                    "combinations, %lld symbolic shape points\n",
                    plugin.c_str(), NV_TENSORRT_MAJOR, NV_TENSORRT_MINOR, NV_TENSORRT_PATCH, n.sequences,
                    n.field_cases, static_cast<long long>(n.formats), static_cast<long long>(n.shape_points));
    }
    return summary("test_trt_harness");
}
