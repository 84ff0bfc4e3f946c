// The plain-C++ plugin logic: validation, output shapes, fields (parse and serialise), formats.
#include <cstdint>
#include <string>
#include <vector>

#include "check.h"
#include "dpanet/op_rules.h"

using namespace dpanet;
using dpanet::test::contains;

namespace {

void correlation_shapes() {
    Dims4 out{};
    CHECK(correlation_output_shape({2, 16, 24, 40}, {2, 16, 24, 40}, {4}, out).empty());
    CHECK((out == Dims4{2, 81, 24, 40}));
    CHECK(correlation_output_shape({1, 3, 5, 7}, {1, 3, 5, 7}, {0}, out).empty());
    CHECK((out == Dims4{1, 1, 5, 7}));
    CHECK(contains(correlation_output_shape({1, 2, 3, 4}, {1, 2, 3, 5}, {1}, out), "differ in shape"));
    CHECK(contains(correlation_output_shape({1, 0, 3, 4}, {1, 0, 3, 4}, {1}, out), "zero channels"));
    CHECK(contains(correlation_output_shape({1, 2, 3, 4}, {1, 2, 3, 4}, {-1}, out), "max_displacement"));
    CHECK(contains(correlation_output_shape({1, 2, -3, 4}, {1, 2, -3, 4}, {1}, out), "negative"));
}

int64_t reference_extent(int64_t size, int64_t k, int64_t s, int64_t p, int64_t d) {
    // the formula of docs/ops.md, with Python's floor division
    int64_t num = size + 2 * p - d * (k - 1) - 1;
    int64_t q = num / s;
    if (num % s != 0 && num < 0) --q;
    return q + 1;
}

void output_extent_matches_formula() {
    IntArith arith;
    for (int64_t size = 1; size < 12; ++size)
        for (int64_t k = 1; k < 5; ++k)
            for (int32_t s = 1; s < 4; ++s)
                for (int32_t p = 0; p < 3; ++p)
                    for (int32_t d = 1; d < 4; ++d) {
                        CHECK(conv_output_extent(arith, size, k, s, p, d) == reference_extent(size, k, s, p, d));
                    }
}

DeformConvShapes dcn(Dims4 x, Dims4 weight, int64_t ho, int64_t wo, int64_t bias) {
    const int64_t taps = weight[2] * weight[3];
    return {x, {x[0], 2 * taps, ho, wo}, {x[0], taps, ho, wo}, weight, bias};
}

void deform_conv_shapes() {
    Dims4 out{};
    DeformConvAttrs same{{1, 1}, {1, 1}, {1, 1}};
    CHECK(deform_conv_output_shape(dcn({1, 64, 140, 210}, {64, 64, 3, 3}, 140, 210, 64), same, out).empty());
    CHECK((out == Dims4{1, 64, 140, 210}));
    DeformConvAttrs odd{{2, 1}, {2, 0}, {1, 2}};
    CHECK(deform_conv_output_shape(dcn({2, 4, 5, 6}, {3, 4, 3, 3}, 4, 2, -1), odd, out).empty());
    CHECK((out == Dims4{2, 3, 4, 2}));
    auto bad = dcn({1, 3, 5, 5}, {2, 3, 3, 3}, 5, 5, 2);
    bad.offset[1] = 16;
    CHECK(contains(deform_conv_output_shape(bad, same, out), "offset has shape"));
    bad = dcn({1, 3, 5, 5}, {2, 3, 3, 3}, 5, 5, 2);
    bad.mask[2] = 4;
    CHECK(contains(deform_conv_output_shape(bad, same, out), "mask has shape"));
    CHECK(contains(deform_conv_output_shape(dcn({1, 3, 5, 5}, {2, 4, 3, 3}, 5, 5, 2), same, out), "input channels"));
    CHECK(contains(deform_conv_output_shape(dcn({1, 3, 5, 5}, {2, 3, 3, 3}, 5, 5, 3), same, out), "bias has shape"));
    DeformConvAttrs zero_stride{{0, 1}, {1, 1}, {1, 1}};
    CHECK(contains(deform_conv_output_shape(dcn({1, 3, 5, 5}, {2, 3, 3, 3}, 5, 5, 2), zero_stride, out), "stride >= 1"));
    DeformConvAttrs no_pad{{1, 1}, {0, 0}, {1, 1}};
    CHECK(contains(deform_conv_output_dims({1, 3, 2, 2}, {2, 3, 3, 3}, no_pad, out), "output would be"));
}

FieldView int32_field(char const* name, std::vector<int32_t> const& v) {
    return {name, FieldType::Int32, static_cast<int32_t>(v.size()), v.data()};
}

void correlation_fields() {
    std::vector<std::string> ignored;
    CorrelationAttrs attrs;
    std::vector<int32_t> four{4};
    std::vector<int64_t> three{3};
    std::vector<int32_t> version{1};
    std::vector<FieldView> fields{int32_field("max_displacement", four), int32_field("plugin_version", version)};
    CHECK(parse_fields(fields.data(), 2, attrs, ignored).empty());
    CHECK(attrs.max_displacement == 4);
    CHECK(ignored.size() == 1 && ignored[0] == "plugin_version");
    FieldView wide{"max_displacement", FieldType::Int64, 1, three.data()};
    CHECK(parse_fields(&wide, 1, attrs, ignored).empty() && attrs.max_displacement == 3);
    CHECK(contains(parse_fields(nullptr, 0, attrs, ignored), "max_displacement is required"));
    std::vector<int32_t> negative{-2};
    FieldView neg = int32_field("max_displacement", negative);
    CHECK(contains(parse_fields(&neg, 1, attrs, ignored), "must be >= 0"));
    CHECK(attrs.max_displacement == 3);  // left unchanged by a failed parse
    float real = 4.0f;
    FieldView wrong_type{"max_displacement", FieldType::Other, 1, &real};
    CHECK(contains(parse_fields(&wrong_type, 1, attrs, ignored), "int32 or int64"));
    std::vector<int32_t> two{4, 4};
    FieldView too_long = int32_field("max_displacement", two);
    CHECK(contains(parse_fields(&too_long, 1, attrs, ignored), "has 2 values"));
    FieldView no_data{"max_displacement", FieldType::Int32, 1, nullptr};
    CHECK(!parse_fields(&no_data, 1, attrs, ignored).empty());
}

void deform_conv_fields() {
    std::vector<std::string> ignored;
    DeformConvAttrs attrs;
    CHECK(parse_fields(nullptr, 0, attrs, ignored).empty());  // ONNX DeformConv defaults
    CHECK((attrs.stride == std::array<int32_t, 2>{1, 1} && attrs.padding == std::array<int32_t, 2>{0, 0}));
    std::vector<std::vector<int32_t>> values{{2}, {1}, {3}, {3}, {1}, {2}};
    std::vector<FieldView> fields;
    for (std::size_t k = 0; k < values.size(); ++k) fields.push_back(int32_field(kDeformConvFields[k].name, values[k]));
    CHECK(parse_fields(fields.data(), 6, attrs, ignored).empty());
    CHECK((attrs.stride == std::array<int32_t, 2>{2, 1}));
    CHECK((attrs.padding == std::array<int32_t, 2>{3, 3}));
    CHECK((attrs.dilation == std::array<int32_t, 2>{1, 2}));
    std::vector<int32_t> zero{0};
    FieldView bad = int32_field("dilation_x", zero);
    CHECK(contains(parse_fields(&bad, 1, attrs, ignored), "dilation >= 1"));
    std::vector<int32_t> two{1, 1};
    FieldView too_long = int32_field("stride_y", two);
    CHECK(contains(parse_fields(&too_long, 1, attrs, ignored), "expected 1"));
    std::vector<int32_t> one{1};
    FieldView pair_name = int32_field("stride", one);  // the pair name of earlier drafts is not a field
    CHECK(parse_fields(&pair_name, 1, attrs, ignored).empty() && ignored.back() == "stride");
}

// What a plugin serialises (its fields, read through the table) parses back to the same attributes.
template <class Attrs, std::size_t N>
Attrs round_trip(Attrs attrs, std::array<Field<Attrs>, N> const& table) {
    std::vector<FieldView> views;
    for (Field<Attrs> const& f : table) views.push_back({f.name, FieldType::Int32, 1, &f.value(attrs)});
    Attrs parsed;
    std::vector<std::string> ignored;
    CHECK(parse_fields(views.data(), static_cast<int32_t>(views.size()), parsed, ignored).empty());
    CHECK(ignored.empty());
    return parsed;
}

void serialisation_round_trips() {
    CHECK(round_trip(CorrelationAttrs{7}, kCorrelationFields).max_displacement == 7);
    DeformConvAttrs a{{2, 3}, {0, 4}, {5, 1}};
    DeformConvAttrs b = round_trip(a, kDeformConvFields);
    CHECK((a.stride == b.stride && a.padding == b.padding && a.dilation == b.dilation));
}

void formats() {
    const TensorFormat f32{ElementType::Float32, true}, f16{ElementType::Float16, true};
    const TensorFormat other{ElementType::Other, true}, f32_vec{ElementType::Float32, false};
    TensorFormat io[3] = {f32, f32, f32};
    CHECK(supports_format(0, io) && supports_format(1, io) && supports_format(2, io));
    TensorFormat half[2] = {f16, f16};
    CHECK(supports_format(0, half) && supports_format(1, half));
    TensorFormat mixed[2] = {f32, f16};
    CHECK(!supports_format(1, mixed));
    CHECK(!supports_format(0, &other));
    CHECK(!supports_format(0, &f32_vec));
}

}  // namespace

int main() {
    correlation_shapes();
    output_extent_matches_formula();
    deform_conv_shapes();
    correlation_fields();
    deform_conv_fields();
    serialisation_round_trips();
    formats();
    return dpanet::test::summary("test_op_rules");
}
