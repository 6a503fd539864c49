#include "observe/listen_address.h"

#include <charconv>

namespace specact::observe {

std::string ListenAddress::to_string() const {
  const std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return host + ":" + std::to_string(port);
}

ListenAddress parse_listen_address(const std::string& text, bool allow_wildcard) {
  const std::string example = " (e.g. \"127.0.0.1:9477\" or \"[::1]:9477\")";
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw ListenAddressError("'" + text + "' is not [IPv6]:port" + example);
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos)
      throw ListenAddressError("'" + text + "' has no port" + example);
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string::npos)
      throw ListenAddressError("'" + text + "': an IPv6 address needs brackets" + example);
  }
  if (host.empty())
    throw ListenAddressError("'" + text + "' has no address; write 0.0.0.0 or [::] to listen on " +
                             "every interface (needs metrics.allow_wildcard)");
  ListenAddress a;
  boost::system::error_code ec;
  a.address = boost::asio::ip::make_address(host, ec);
  if (ec)
    throw ListenAddressError("'" + host + "' is not a numeric IP address (host names are not " +
                             "resolved)" + example);
  unsigned value = 0;
  auto [end, err] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || err != std::errc() || end != port.data() + port.size() || value < 1 ||
      value > 65535)
    throw ListenAddressError("port '" + port + "' is not a number in 1..65535");
  a.port = static_cast<uint16_t>(value);
  // ::ffff:0.0.0.0 is the IPv4 wildcard in IPv6 clothes.
  const bool wildcard =
      a.address.is_unspecified() ||
      (a.address.is_v6() && a.address.to_v6().is_v4_mapped() &&
       boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.address.to_v6())
           .is_unspecified());
  if (wildcard && !allow_wildcard)
    throw ListenAddressError(a.to_string() +
                             " listens on every interface; the metrics show the target's knobs "
                             "and the agents' spend to anyone who can reach it. Listen on "
                             "127.0.0.1 (or one interface's address), or set "
                             "metrics.allow_wildcard to true");
  return a;
}

}  // namespace specact::observe
