// The metrics endpoint on a real socket: what it serves, and what it does
// with clients that send too much, too slowly, too many at once or the
// wrong thing. The server runs on its own io_context thread, as the daemon
// runs it on its loop; the test is the client.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "observe/exposition.h"
#include "observe/metrics_server.h"

namespace specact::observe {
namespace {

class ServerFixture : public ::testing::Test {
 protected:
  void start(MetricsServerOptions opts = {}) {
    ListenAddress at = parse_listen_address("127.0.0.1:1", false);
    at.port = 0;  // the kernel picks a free one
    server_ = std::make_unique<MetricsServer>(
        io_, at,
        [this] {
          ++renders_;
          return std::string("# HELP x A test.\n# TYPE x gauge\nx 1\n");
        },
        opts);
    port_ = server_->endpoint().port();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (thread_.joinable()) {
      boost::asio::post(io_, [this] { server_.reset(); });
      guard_.reset();
      io_.stop();
      thread_.join();
    }
    server_.reset();
  }
  // Runs f on the server's loop and waits for its result.
  template <typename F>
  auto on_loop(F f) {
    std::promise<decltype(f())> p;
    boost::asio::post(io_, [&] { p.set_value(f()); });
    return p.get_future().get();
  }

  int connect() const {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port_);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }
  static void send_all(int fd, const std::string& s) {
    size_t done = 0;
    while (done < s.size()) {
      ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }
  // Reads until the server closes the connection; gives up after 20 s so a
  // broken server fails the test instead of hanging it.
  static std::string read_until_closed(int fd, bool* closed = nullptr) {
    std::string out;
    char buf[4096];
    for (int waited = 0; waited < 20'000; waited += 100) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        if (closed) *closed = true;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    if (closed) *closed = false;
    return out;
  }
  std::string request(const std::string& raw) const {
    int fd = connect();
    EXPECT_GE(fd, 0);
    send_all(fd, raw);
    std::string out = read_until_closed(fd);
    close(fd);
    return out;
  }
  static std::string get(const std::string& target, const std::string& method = "GET") {
    return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  }
  static size_t count(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
    return n;
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{
      io_.get_executor()};
  std::unique_ptr<MetricsServer> server_;
  std::thread thread_;
  uint16_t port_ = 0;
  std::atomic<int> renders_{0};
};

TEST_F(ServerFixture, GetMetricsServesTheRenderedText) {
  start();
  const std::string r = request(get("/metrics"));
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find(std::string("Content-Type: ") + kExpositionContentType + "\r\n"),
            std::string::npos)
      << r;
  EXPECT_NE(r.find("\r\n\r\n# HELP x A test.\n# TYPE x gauge\nx 1\n"), std::string::npos) << r;
  EXPECT_EQ(renders_, 1);
  EXPECT_EQ(request(get("/metrics?name[]=x")).rfind("HTTP/1.1 200", 0), 0u);
}

TEST_F(ServerFixture, HeadHasTheLengthButNoBody) {
  start();
  const std::string r = request(get("/metrics", "HEAD"));
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Length: 36\r\n"), std::string::npos) << r;
  EXPECT_EQ(r.substr(r.find("\r\n\r\n") + 4), "") << r;
}

TEST_F(ServerFixture, OtherPathsAre404AndOtherMethods405) {
  start();
  for (const char* path : {"/", "/metricsx", "/metrics/", "/../etc/passwd", "*"}) {
    const std::string r = request(get(path));
    EXPECT_EQ(r.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << path << ": " << r;
  }
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    const std::string r = request(get("/metrics", method));
    EXPECT_EQ(r.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u) << method << ": " << r;
    EXPECT_NE(r.find("Allow: GET, HEAD\r\n"), std::string::npos) << r;
  }
  EXPECT_EQ(renders_, 0);
}

TEST_F(ServerFixture, KeepAliveServesPipelinedRequestsOnOneConnection) {
  start();
  const std::string r =
      request("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n" +
              get("/metrics"));
  EXPECT_EQ(count(r, "HTTP/1.1 200 OK"), 2u) << r;
  EXPECT_EQ(count(r, "HTTP/1.1 404"), 1u) << r;
}

TEST_F(ServerFixture, AnOversizedHeaderIs431AndTheConnectionCloses) {
  start();
  const std::string big(MetricsServer::kMaxHeaderBytes + 100, 'a');
  const std::string r = request("GET /metrics HTTP/1.1\r\nHost: a\r\nX-Big: " + big + "\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 431", 0), 0u) << r.substr(0, 200);
  EXPECT_EQ(renders_, 0);
}

TEST_F(ServerFixture, ABodyOrGarbageIs400) {
  start();
  std::string r = request("POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0u) << r;
  r = request("hello there\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0u) << r;
  EXPECT_EQ(renders_, 0);
}

TEST_F(ServerFixture, ASlowClientIsDisconnectedAndOthersAreServedMeanwhile) {
  MetricsServerOptions opts;
  opts.timeout = std::chrono::milliseconds(300);
  start(opts);
  int slow = connect();
  ASSERT_GE(slow, 0);
  send_all(slow, "GET /met");  // and never the rest
  EXPECT_EQ(request(get("/metrics")).rfind("HTTP/1.1 200", 0), 0u);
  bool closed = false;
  const std::string r = read_until_closed(slow, &closed);
  close(slow);
  EXPECT_TRUE(closed) << "the server kept a request that never completed";
  EXPECT_EQ(r, "");
  // An idle keep-alive connection goes the same way.
  int idle = connect();
  send_all(idle, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
  const std::string served = read_until_closed(idle, &closed);
  close(idle);
  EXPECT_TRUE(closed);
  EXPECT_EQ(served.rfind("HTTP/1.1 200", 0), 0u) << served;
}

TEST_F(ServerFixture, ConnectionsOverTheLimitAreClosedAtOnce) {
  MetricsServerOptions opts;
  opts.max_connections = 2;
  start(opts);
  int a = connect(), b = connect();
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  // Both accepted (the kernel completes connects before the loop accepts).
  for (int i = 0; i < 200 && on_loop([&] { return server_->open_connections(); }) < 2; ++i)
    usleep(10'000);
  ASSERT_EQ(on_loop([&] { return server_->open_connections(); }), 2u);
  int c = connect();
  bool closed = false;
  EXPECT_EQ(read_until_closed(c, &closed), "");
  EXPECT_TRUE(closed);
  close(c);
  EXPECT_EQ(on_loop([&] { return server_->refused_connections(); }), 1u);
  close(a);
  for (int i = 0; i < 200 && on_loop([&] { return server_->open_connections(); }) > 1; ++i)
    usleep(10'000);
  EXPECT_EQ(request(get("/metrics")).rfind("HTTP/1.1 200", 0), 0u);
  close(b);
}

TEST_F(ServerFixture, DestroyingTheServerClosesItsConnections) {
  start();
  int fd = connect();
  send_all(fd, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
  std::string first;
  char buf[4096];
  while (first.find("x 1\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    ASSERT_GT(poll(&p, 1, 20'000), 0);
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    first.append(buf, static_cast<size_t>(n));
  }
  on_loop([&] {
    server_.reset();
    return 0;
  });
  bool closed = false;
  read_until_closed(fd, &closed);
  close(fd);
  EXPECT_TRUE(closed);
  EXPECT_LT(connect(), 0) << "still listening";
}

TEST(MetricsServer, AnAddressInUseIsANamedError) {
  boost::asio::io_context io;
  ListenAddress at = parse_listen_address("127.0.0.1:1", false);
  at.port = 0;
  MetricsServer first(io, at, [] { return std::string(); });
  at.port = first.endpoint().port();
  try {
    MetricsServer second(io, at, [] { return std::string(); });
    FAIL() << "bound twice";
  } catch (const MetricsServerError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:" + std::to_string(at.port)),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace specact::observe
