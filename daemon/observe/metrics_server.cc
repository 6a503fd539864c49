#include "observe/metrics_server.h"

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <set>

#include "common/log.h"
#include "observe/exposition.h"

namespace specact::observe {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

namespace {
class Connection;
}

namespace detail {
struct ServerState {
  ServerState(boost::asio::io_context& io, MetricsServer::Render r, MetricsServerOptions o)
      : acceptor(io), retry(io), render(std::move(r)), options(o) {}
  tcp::acceptor acceptor;
  boost::asio::steady_timer retry;  // after a failed accept (EMFILE): no busy loop
  MetricsServer::Render render;
  MetricsServerOptions options;
  std::set<Connection*> connections;
  uint64_t refused = 0;
  bool closed = false;
};
}  // namespace detail

namespace {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, std::shared_ptr<detail::ServerState> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {
    shared_->connections.insert(this);
  }
  ~Connection() { shared_->connections.erase(this); }

  void start() { read_request(); }
  void close() {
    beast::error_code ec;
    stream_.socket().close(ec);
  }

 private:
  void read_request() {
    parser_.emplace();
    parser_->header_limit(MetricsServer::kMaxHeaderBytes);
    // The whole request, however slowly it trickles in, within one timeout.
    stream_.expires_after(shared_->options.timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (shared_->closed) return;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == boost::asio::error::operation_aborted || ec == boost::asio::error::connection_reset) {
      close();
      return;
    }
    if (ec) {
      // A malformed or oversized request gets one answer, then the connection
      // is closed: its framing can no longer be trusted.
      const bool too_big = ec == http::error::header_limit || ec == http::error::buffer_overflow;
      log::debug(std::string("metrics: bad request: ") + ec.message());
      respond(too_big ? http::status::request_header_fields_too_large : http::status::bad_request,
              "bad request: " + ec.message() + "\n", false, false);
      return;
    }
    const auto& req = parser_->get();
    const bool keep_alive = req.keep_alive();
    std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    if (path != "/metrics") {
      respond(http::status::not_found, "not found: the metrics are at /metrics\n", keep_alive,
              false);
    } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
      respond(http::status::method_not_allowed, "only GET and HEAD\n", keep_alive, false);
    } else {
      respond(http::status::ok, shared_->render(), keep_alive, req.method() == http::verb::head);
    }
  }

  void respond(http::status status, std::string body, bool keep_alive, bool head) {
    res_ = {};
    res_.result(status);
    res_.version(11);
    res_.set(http::field::server, "specactd");
    res_.set(http::field::content_type,
             status == http::status::ok ? kExpositionContentType : "text/plain; charset=utf-8");
    if (status == http::status::method_not_allowed) res_.set(http::field::allow, "GET, HEAD");
    res_.keep_alive(keep_alive);
    res_.body() = std::move(body);
    res_.prepare_payload();  // Content-Length of the body, also for HEAD
    if (head) res_.body().clear();
    stream_.expires_after(shared_->options.timeout);
    auto write_done = [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
      if (self->shared_->closed) return;
      if (ec || !keep_alive) {
        beast::error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        self->close();
        return;
      }
      self->read_request();
    };
    if (head) {
      // The header alone: Content-Length announces a body that is not sent.
      serializer_.emplace(res_);
      http::async_write_header(stream_, *serializer_, std::move(write_done));
    } else {
      http::async_write(stream_, res_, std::move(write_done));
    }
  }

  beast::tcp_stream stream_;
  std::shared_ptr<detail::ServerState> shared_;
  beast::flat_buffer buffer_{MetricsServer::kMaxHeaderBytes};
  std::optional<http::request_parser<http::empty_body>> parser_;
  http::response<http::string_body> res_;
  std::optional<http::response_serializer<http::string_body>> serializer_;
};

void accept_next(const std::shared_ptr<detail::ServerState>& shared) {
  shared->acceptor.async_accept([shared](beast::error_code ec, tcp::socket socket) {
    if (shared->closed || ec == boost::asio::error::operation_aborted) return;
    if (ec) {
      log::debug("metrics: accept failed: " + ec.message());
      shared->retry.expires_after(std::chrono::milliseconds(100));
      shared->retry.async_wait([shared](beast::error_code e) {
        if (!e && !shared->closed) accept_next(shared);
      });
      return;
    }
    if (shared->connections.size() >= shared->options.max_connections) {
      ++shared->refused;
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      std::make_shared<Connection>(std::move(socket), shared)->start();
    }
    accept_next(shared);
  });
}

}  // namespace

MetricsServer::MetricsServer(boost::asio::io_context& io, const ListenAddress& at, Render render,
                             MetricsServerOptions options)
    : shared_(std::make_shared<detail::ServerState>(io, std::move(render), options)) {
  const tcp::endpoint ep(at.address, at.port);
  beast::error_code ec;
  auto& a = shared_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  // [::]:port serves IPv6 only; IPv4 has its own 0.0.0.0.
  if (!ec && ep.address().is_v6()) a.set_option(boost::asio::ip::v6_only(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) throw MetricsServerError("cannot listen on " + at.to_string() + ": " + ec.message());
  accept_next(shared_);
}

MetricsServer::~MetricsServer() {
  shared_->closed = true;
  beast::error_code ignored;
  shared_->acceptor.close(ignored);
  shared_->retry.cancel();
  for (Connection* c : shared_->connections) c->close();
}

tcp::endpoint MetricsServer::endpoint() const {
  beast::error_code ec;
  return shared_->acceptor.local_endpoint(ec);
}

size_t MetricsServer::open_connections() const { return shared_->connections.size(); }

uint64_t MetricsServer::refused_connections() const { return shared_->refused; }

}  // namespace specact::observe
