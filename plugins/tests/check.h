// A minimal check harness for the C++ tests: CHECK records a failure with its line and goes on;
// main() returns the number of failures (ctest reads the exit code).
#pragma once

#include <cstdio>
#include <string>

namespace dpanet::test {

inline int& failures() {
    static int count = 0;
    return count;
}

inline void record(bool ok, char const* expr, char const* file, int line) {
    if (!ok) {
        ++failures();
        std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
    }
}

inline bool contains(std::string const& text, std::string const& part) { return text.find(part) != std::string::npos; }

inline int summary(char const* suite) {
    std::printf("%s: %d failed check(s)\n", suite, failures());
    return failures() == 0 ? 0 : 1;
}

}  // namespace dpanet::test

#define CHECK(expr) ::dpanet::test::record(static_cast<bool>(expr), #expr, __FILE__, __LINE__)
