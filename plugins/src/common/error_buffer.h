// Copies a message into a C caller's error buffer (NUL-terminated, truncated to fit).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

namespace dpanet {

inline int write_error(std::string const& message, char* error, std::size_t error_size, int code) {
    if (error != nullptr && error_size > 0) {
        const std::size_t n = std::min(message.size(), error_size - 1);
        std::memcpy(error, message.data(), n);
        error[n] = '\0';
    }
    return code;
}

}  // namespace dpanet
