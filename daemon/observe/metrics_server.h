// The Prometheus endpoint: a small HTTP/1.1 server (Boost.Beast) on the
// daemon's own single-threaded Asio loop. It answers GET and HEAD /metrics
// with the text that `render` returns at that moment, 405 for other methods
// on /metrics and 404 for every other path. Against careless or hostile
// clients: a request header is at most kMaxHeaderBytes and may carry no body,
// each request must arrive (and each response be taken) within the timeout,
// and at most max_connections are open at once (more are closed at accept).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "observe/listen_address.h"

namespace specact::observe {

namespace detail {
struct ServerState;  // the listener and its connections (metrics_server.cc)
}

class MetricsServerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct MetricsServerOptions {
  // A Prometheus HA pair, a node's second scraper and a person with curl fit;
  // a client that opens more waits for its own connections to close.
  size_t max_connections = 8;
  // Time to receive one request (an idle keep-alive connection is closed after
  // it too) and to send one response: Prometheus's default scrape_timeout.
  std::chrono::milliseconds timeout{10'000};
};

class MetricsServer {
 public:
  // A scrape request is a few hundred bytes; 8 KiB leaves room for proxies'
  // headers and bounds what one connection can make the daemon buffer.
  static constexpr uint32_t kMaxHeaderBytes = 8192;

  using Render = std::function<std::string()>;
  // Binds and listens at once (port 0: the kernel picks one, see endpoint()).
  // Throws MetricsServerError naming the address and the reason.
  MetricsServer(boost::asio::io_context& io, const ListenAddress& at, Render render,
                MetricsServerOptions options = {});
  // Closes the listener and every connection; `render` is not called again.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  boost::asio::ip::tcp::endpoint endpoint() const;
  size_t open_connections() const;
  uint64_t refused_connections() const;  // closed at accept: over max_connections

 private:
  std::shared_ptr<detail::ServerState> shared_;
};

}  // namespace specact::observe
