// The address the metrics endpoint listens on: "IPv4:port" or "[IPv6]:port".
// Only numeric addresses (a root daemon resolves no names at start), and no
// wildcard address (0.0.0.0, ::) unless the caller allows it: the metrics
// name the target's knobs and the agents' spend, so exposing them on every
// interface must be a deliberate choice.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace specact::observe {

class ListenAddressError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct ListenAddress {
  boost::asio::ip::address address;
  uint16_t port = 0;              // 0 only when built in code (tests): the kernel picks one
  std::string to_string() const;  // "127.0.0.1:9477", "[::1]:9477"
};

// Throws ListenAddressError saying what is wrong and what to write instead.
ListenAddress parse_listen_address(const std::string& text, bool allow_wildcard);

}  // namespace specact::observe
