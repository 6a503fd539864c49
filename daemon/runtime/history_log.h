// The audit trail of a run: history.jsonl under the state directory, one line
// per event, plus a bounded in-memory tail for GetHistory. An EventSink
// subscriber; the sink numbers and stamps the lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "common/control.h"
#include "common/state_dir.h"
#include "runtime/event_sink.h"

namespace specact {

class HistoryLog : public EventSubscriber {
 public:
  static constexpr const char* kHistoryName = "history.jsonl";
  // A full disk fails every line: one warning a minute is enough, the status
  // says it all the time.
  static constexpr long kWarnIntervalS = 60;

  explicit HistoryLog(size_t keep = 10000) : keep_(keep) {}
  ~HistoryLog() override;
  HistoryLog(const HistoryLog&) = delete;
  HistoryLog& operator=(const HistoryLog&) = delete;
  // Opens <state_dir>/history.jsonl for appending through StateDir (a checked
  // directory, created 0700; no symlink or hard link followed). Throws
  // ConfigError naming the path.
  void open(const std::string& state_dir);
  const std::string& path() const { return path_; }
  // Writes the event's line and keeps it in the tail.
  void on_event(const RecordedEvent& e) override;
  std::vector<HistoryEvent> since(uint64_t seq) const;
  // Why the last line could not be written ("" when the last write worked).
  const std::string& error() const { return error_; }

 private:
  void write_line(const std::string& line);

  std::optional<StateDir> dir_;
  int fd_ = -1;
  std::string error_;
  long last_warn_s_ = -1;  // CLOCK_MONOTONIC seconds of the last warning
  std::string path_;
  size_t keep_;
  std::deque<HistoryEvent> tail_;
};

}  // namespace specact
