#include "runtime/history_log.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/log.h"
#include "runtime/run_config.h"
#include "runtime/state_file.h"

namespace specact {

HistoryLog::~HistoryLog() {
  if (fd_ >= 0) ::close(fd_);
}

void HistoryLog::open(const std::string& state_dir) {
  dir_.emplace(open_state_dir(state_dir));
  path_ = dir_->path_of(kHistoryName);
  fd_ = dir_->open_append(kHistoryName);
  if (fd_ < 0) throw ConfigError("state_dir: " + dir_->error(kHistoryName, -fd_));
}

void HistoryLog::write_line(const std::string& line) {
  if (fd_ < 0) return;
  // One write(2) per line on an O_APPEND fd: a line is whole or absent, and a
  // short write (a full file system) is an error like any other.
  ssize_t n = ::write(fd_, line.data(), line.size());
  int err = n < 0 ? errno : (static_cast<size_t>(n) == line.size() ? 0 : ENOSPC);
  if (err == 0) {
    if (!error_.empty()) {
      log::info("history: writing " + path_ + " again after: " + error_);
      error_.clear();
    }
    return;
  }
  error_ =
      "cannot append to " + path_ + ": " + std::strerror(err) + " (events are kept in memory only)";
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (last_warn_s_ < 0 || now.tv_sec - last_warn_s_ >= kWarnIntervalS) {
    last_warn_s_ = now.tv_sec;
    log::warn("history: " + error_);
  }
}

void HistoryLog::on_event(const RecordedEvent& e) {
  write_line(e.entry.data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  tail_.push_back(e.entry);
  while (tail_.size() > keep_) tail_.pop_front();
}

std::vector<HistoryEvent> HistoryLog::since(uint64_t seq) const {
  std::vector<HistoryEvent> out;
  for (const auto& e : tail_)
    if (e.seq > seq) out.push_back(e);
  return out;
}

}  // namespace specact
