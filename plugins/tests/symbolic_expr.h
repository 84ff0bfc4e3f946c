// Test doubles of TensorRT's shape-expression builder, so that a plugin's getOutputShapes can be
// checked without libnvinfer. IExprBuilder and IDimensionExpr (NvInferRuntime.h, 10.x and 11.x) are
// header-inline wrappers that forward every call to their protected `mImpl`, an
// apiv::VExprBuilder / apiv::VDimensionExpr (NvInferImpl.h); their destructors are protected (pure
// with an inline definition in 11.x), so the sound way to obtain real ones is to derive and point
// `mImpl` at our implementation of the apiv interface. The plugin then calls the real wrappers.
//
// The expressions are symbolic: constants, named symbols (N, H, W) and operations, evaluated for any
// binding of the symbols, so that a test checks the output-size formula at many H and W, not only the
// rank. As TensorRT does, an operation on two constants is folded into a constant.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace dpanet::test {

using Bindings = std::map<std::string, int64_t>;

class SymbolicExpr final : public nvinfer1::IDimensionExpr {
public:
    explicit SymbolicExpr(int64_t value) : constant_(true), value_(value) { mImpl = &impl_; }
    explicit SymbolicExpr(std::string symbol) : symbol_(std::move(symbol)) { mImpl = &impl_; }
    SymbolicExpr(nvinfer1::DimensionOperation op, SymbolicExpr const& a, SymbolicExpr const& b)
        : op_(op), a_(&a), b_(&b) {
        mImpl = &impl_;
        if (a.constant_ && b.constant_) {
            constant_ = true;
            value_ = apply(op, a.value_, b.value_);
        }
    }
    ~SymbolicExpr() noexcept override = default;

    // The value for the given symbols; throws std::domain_error for an unbound symbol or a division by 0.
    int64_t evaluate(Bindings const& symbols) const {
        if (constant_) return value_;
        if (a_ == nullptr) {
            auto it = symbols.find(symbol_);
            if (it == symbols.end()) throw std::domain_error("unbound symbol " + symbol_);
            return it->second;
        }
        return apply(op_, a_->evaluate(symbols), b_->evaluate(symbols));
    }

    // TensorRT's DimensionOperation on integers (NvInferRuntime.h documents each).
    static int64_t apply(nvinfer1::DimensionOperation op, int64_t a, int64_t b) {
        using Op = nvinfer1::DimensionOperation;
        switch (op) {
            case Op::kSUM:
                return a + b;
            case Op::kPROD:
                return a * b;
            case Op::kMAX:
                return a > b ? a : b;
            case Op::kMIN:
                return a < b ? a : b;
            case Op::kSUB:
                return a - b;
            case Op::kEQUAL:
                return a == b ? 1 : 0;
            case Op::kLESS:
                return a < b ? 1 : 0;
            case Op::kFLOOR_DIV:
            case Op::kCEIL_DIV: {
                if (b == 0) throw std::domain_error("division by zero");
                const int64_t q = a / b, r = a % b;
                const bool inexact = r != 0;
                if (op == Op::kFLOOR_DIV) return inexact && ((r < 0) != (b < 0)) ? q - 1 : q;
                return inexact && ((r < 0) == (b < 0)) ? q + 1 : q;
            }
        }
        throw std::domain_error("unknown DimensionOperation " + std::to_string(static_cast<int32_t>(op)));
    }

private:
    class Impl final : public nvinfer1::apiv::VDimensionExpr {
    public:
        explicit Impl(SymbolicExpr const& e) : e_(e) {}
        bool isConstant() const override { return e_.constant_; }
        int64_t getConstantValue() const override {
            return e_.constant_ ? e_.value_ : std::numeric_limits<int64_t>::min();
        }
        bool isSizeTensor() const override { return false; }

    private:
        SymbolicExpr const& e_;
    };

    bool constant_ = false;
    int64_t value_ = 0;
    std::string symbol_;
    nvinfer1::DimensionOperation op_ = nvinfer1::DimensionOperation::kSUM;
    SymbolicExpr const* a_ = nullptr;
    SymbolicExpr const* b_ = nullptr;
    Impl impl_{*this};
};

// Owns every expression it makes. An operand that is not one of ours (or null) makes the result
// null and is counted in foreign_operands(), as TensorRT would reject it.
class SymbolicExprBuilder final : public nvinfer1::IExprBuilder {
public:
    SymbolicExprBuilder() { mImpl = &impl_; }
    ~SymbolicExprBuilder() noexcept override = default;

    SymbolicExpr const* symbol(std::string const& name) { return keep(std::make_unique<SymbolicExpr>(name)); }
    SymbolicExpr const* number(int64_t value) { return keep(std::make_unique<SymbolicExpr>(value)); }
    int32_t foreign_operands() const { return foreign_; }
    int32_t size_tensors_declared() const { return size_tensors_; }

    // The expression behind a pointer the plugin wrote into its DimsExprs; null when it is not ours.
    static SymbolicExpr const* ours(nvinfer1::IDimensionExpr const* e) { return dynamic_cast<SymbolicExpr const*>(e); }

private:
    class Impl final : public nvinfer1::apiv::VExprBuilder {
    public:
        explicit Impl(SymbolicExprBuilder& b) : b_(b) {}
        nvinfer1::IDimensionExpr const* constant(int64_t value) override { return b_.number(value); }
        nvinfer1::IDimensionExpr const* operation(nvinfer1::DimensionOperation op,
                                                  nvinfer1::IDimensionExpr const& first,
                                                  nvinfer1::IDimensionExpr const& second) override {
            SymbolicExpr const* a = ours(&first);
            SymbolicExpr const* b = ours(&second);
            if (a == nullptr || b == nullptr) {
                ++b_.foreign_;
                return nullptr;
            }
            try {
                return b_.keep(std::make_unique<SymbolicExpr>(op, *a, *b));
            } catch (std::exception const&) {  // a constant division by zero: TensorRT reports an error
                ++b_.foreign_;
                return nullptr;
            }
        }
        nvinfer1::IDimensionExpr const* declareSizeTensor(int32_t, nvinfer1::IDimensionExpr const&,
                                                          nvinfer1::IDimensionExpr const&) override {
            ++b_.size_tensors_;  // neither plugin has data-dependent output shapes
            return nullptr;
        }

    private:
        SymbolicExprBuilder& b_;
    };

    SymbolicExpr const* keep(std::unique_ptr<SymbolicExpr> e) {
        nodes_.push_back(std::move(e));
        return nodes_.back().get();
    }

    std::vector<std::unique_ptr<SymbolicExpr>> nodes_;
    int32_t foreign_ = 0;
    int32_t size_tensors_ = 0;
    Impl impl_{*this};
};

}  // namespace dpanet::test
