// JournalLog: under systemd, decisions go to the journal as structured
// entries and only the other events' lines to stderr; a decision the journal
// refuses falls back to its stderr line. The journal itself is a stand-in
// here (the real journald is exercised in tests/e2e/run_e2e.sh).
#include "runtime/journal_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/log.h"
#include "observe/journal_events.h"

namespace specact {
namespace {

using engine::EventKind;
using nlohmann::json;

// What the code under test writes to stderr (fd 2) while it runs.
std::string stderr_of(const std::function<void()>& f) {
  char path[] = "/tmp/specact-journal-log-XXXXXX";
  const int fd = mkstemp(path);
  std::fflush(stderr);
  const int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  f();
  std::fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fd);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  unlink(path);
  return ss.str();
}

void deliver(JournalLog& log, EventKind kind, const std::string& summary) {
  HistoryEvent entry{1, {{"type", engine::to_string(kind)}, {"summary", summary}}};
  const json window = nullptr;
  log.on_event(RecordedEvent{kind, entry, summary, window});
}

TEST(JournalLog, DecisionsGoToTheJournalOtherLinesToStderr) {
  log::set_min_level(log::Level::Info);
  StderrLog lines;
  std::vector<json> sent;
  JournalLog journal(lines, [&](const json& e) {
    sent.push_back(e);
    return 0;
  });
  const std::string out = stderr_of([&] {
    deliver(journal, EventKind::Reverted, "reverted to baseline task.nice=0");
    deliver(journal, EventKind::SessionStarted, "tuning pid 42");
    deliver(journal, EventKind::Window, "window 3: service_p95 300 us");  // routine: debug
  });
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["type"], "reverted");
  EXPECT_EQ(out.find("reverted to baseline"), std::string::npos) << out;
  EXPECT_NE(out.find("tuning pid 42"), std::string::npos) << out;
  EXPECT_EQ(out.find("window 3"), std::string::npos) << out;
}

TEST(JournalLog, ARefusedEntryIsPrintedInsteadAndWarnedOnce) {
  log::set_min_level(log::Level::Info);
  StderrLog lines;
  int tries = 0;
  JournalLog journal(lines, [&](const json&) {
    ++tries;
    return -ECONNREFUSED;
  });
  const std::string out = stderr_of([&] {
    deliver(journal, EventKind::Applied, "speculator applied provisional: a");
    deliver(journal, EventKind::Applied, "speculator applied provisional: b");
  });
  EXPECT_EQ(tries, 2);
  EXPECT_NE(out.find("applied provisional: a"), std::string::npos) << out;
  EXPECT_NE(out.find("applied provisional: b"), std::string::npos) << out;
  size_t warnings = 0;
  for (size_t at = out.find("cannot send a structured entry"); at != std::string::npos;
       at = out.find("cannot send a structured entry", at + 1))
    ++warnings;
  EXPECT_EQ(warnings, 1u) << out;
}

// The journal's event types are the runtime's: a renamed kind would silently
// stop being journalled.
TEST(JournalLog, EveryJournalledTypeIsAnEventKind) {
  for (const auto& k : observe::kJournalKinds)
    EXPECT_TRUE(engine::event_kind_from_string(k.type)) << k.type;
}

}  // namespace
}  // namespace specact
