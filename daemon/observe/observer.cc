#include "observe/observer.h"

#include <boost/asio/post.hpp>

#include "common/log.h"
#include "observe/exposition.h"
#include "observe/metrics_server.h"
#include "observe/textfile_writer.h"

namespace specact::observe {

namespace {

std::string type_of(const nlohmann::json& e) {
  auto t = e.is_object() ? e.find("type") : e.end();
  return t != e.end() && t->is_string() ? t->get<std::string>() : "";
}

}  // namespace

Observer::Observer(Options options, boost::asio::io_context& io,
                   std::function<StatusSnapshot()> status)
    : opts_(std::move(options)),
      io_(io),
      status_(std::move(status)),
      collector_(opts_.version, opts_.start_time_seconds, opts_.objective_metric) {
  if (!opts_.metrics.textfile.empty())
    textfile_ = std::make_unique<TextfileWriter>(opts_.metrics.textfile);
}

Observer::~Observer() {
  *alive_ = false;
  stop();
}

void Observer::start() {
  if (opts_.metrics.listen && !server_) {
    MetricsServerOptions so;
    so.max_connections = opts_.metrics.max_connections;
    so.timeout = std::chrono::milliseconds(opts_.metrics.timeout_ms);
    try {
      server_ = std::make_unique<MetricsServer>(
          io_, *opts_.metrics.listen, [this] { return render(); }, so);
    } catch (const MetricsServerError& e) {
      throw MetricsServerError(std::string("metrics.listen: ") + e.what());
    }
    log::info("serving Prometheus metrics on http://" + opts_.metrics.listen->to_string() +
              "/metrics");
  }
  if (textfile_) write_textfile();
}

void Observer::stop() {
  server_.reset();
  if (textfile_) {
    std::string err = textfile_->remove();
    if (!err.empty()) log::warn("metrics.textfile: cannot remove: " + err);
    textfile_.reset();
  }
}

std::string Observer::render() const {
  return render_exposition(collector_.snapshot(status_ ? status_() : StatusSnapshot{}));
}

void Observer::on_event(const nlohmann::json& event) {
  collector_.on_event(event);
  if (textfile_ && !write_pending_ && type_of(event) == "window") {
    // After the rest of the window's work (decisions, applies), so the file
    // shows the knobs this window ended with.
    write_pending_ = true;
    boost::asio::post(io_, [this, alive = alive_] {
      if (!*alive) return;
      write_pending_ = false;
      write_textfile();
    });
  }
}

void Observer::on_window(const Window& w) { collector_.on_window(w); }

void Observer::write_textfile() {
  if (!textfile_) return;
  std::string err = textfile_->write(render());
  if (err.empty()) return;
  collector_.on_textfile_error();
  textfile_warning_.warn("metrics.textfile: cannot write: " + err);
}

}  // namespace specact::observe
