// The daemon's Prometheus outputs, fed by the runtime on its event loop: the
// HTTP endpoint (metrics.listen) and the node_exporter textfile
// (metrics.textfile, rewritten after every window). Both are off unless
// configured; the counters are kept either way (they are cheap).
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/control.h"
#include "common/window.h"
#include "observe/listen_address.h"
#include "observe/metrics_collector.h"
#include "observe/rate_limited_warning.h"

namespace specact::observe {

class MetricsServer;
class TextfileWriter;

// The config's "metrics" section (parsed in daemon/runtime/run_config.cc).
struct MetricsSettings {
  std::optional<ListenAddress> listen;  // none: no HTTP endpoint
  bool allow_wildcard = false;          // 0.0.0.0 / [::] accepted in `listen`
  std::string textfile;                 // "": no textfile
  size_t max_connections = 8;           // MetricsServerOptions
  int timeout_ms = 10'000;
  bool any() const { return listen.has_value() || !textfile.empty(); }
};

class Observer {
 public:
  struct Options {
    MetricsSettings metrics;
    std::string version;
    std::string objective_metric;  // to_string(Metric) of the config
    double start_time_seconds = 0;
  };
  Observer(Options options, boost::asio::io_context& io, std::function<StatusSnapshot()> status);
  ~Observer();
  Observer(const Observer&) = delete;
  Observer& operator=(const Observer&) = delete;

  // Opens the endpoint (throws MetricsServerError: the config is unusable).
  void start();
  // Closes the endpoint and removes the textfile.
  void stop();

  // Every audit-trail event (its history.jsonl object).
  void on_event(const nlohmann::json& event);
  // Every closed window (its histograms).
  void on_window(const Window& w);

  // The exposition text now.
  std::string render() const;
  const MetricsServer* server() const { return server_.get(); }

 private:
  void write_textfile();

  Options opts_;
  boost::asio::io_context& io_;
  std::function<StatusSnapshot()> status_;
  MetricsCollector collector_;
  std::unique_ptr<MetricsServer> server_;
  std::unique_ptr<TextfileWriter> textfile_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for posted writes
  bool write_pending_ = false;
  RateLimitedWarning textfile_warning_;
};

}  // namespace specact::observe
