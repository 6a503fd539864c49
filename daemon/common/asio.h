// Boost.Asio, included the one safe way: Boost 1.74's awaitable.hpp uses
// std::exchange without including <utility>, which g++ 12 in C++20 mode rejects.
#pragma once

// clang-format off
#include <utility>
#include <boost/asio.hpp>
// clang-format on
