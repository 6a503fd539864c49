// Decisions as structured journal entries: the fields composed per event, and
// how specactd tells that its stderr is the journal. (sd_journal_sendv itself
// is exercised in the nspawn e2e, tests/e2e/run_e2e.sh, against a real
// journald.)
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "observe/journal_events.h"
#include "observe/journal_sink.h"

namespace specact::observe {
namespace {

using nlohmann::json;
using Entry = std::vector<std::string>;

std::string field(const Entry& e, const std::string& name) {
  for (const auto& f : e)
    if (f.rfind(name + "=", 0) == 0) return f.substr(name.size() + 1);
  return "<absent>";
}

TEST(JournalEvents, AnApplyIsOneEntryPerChangedKnob) {
  json e = {{"seq", 42},
            {"type", "applied"},
            {"kind", "provisional"},
            {"who", "speculator"},
            {"why", "request-size prior"},
            {"from", {{"task.nice", 0}, {"task.slice_us", 3000}, {"task.policy", 0}}},
            {"config", {{"task.nice", -10}, {"task.slice_us", 390}, {"task.policy", 0}}},
            {"summary", "speculator applied provisional: ..."}};
  auto entries = journal_entries(e);
  ASSERT_EQ(entries.size(), 2u);
  std::set<std::string> knobs;
  for (const auto& en : entries) {
    knobs.insert(field(en, "SPECACT_KNOB"));
    EXPECT_EQ(field(en, "SPECACT_EVENT"), "applied");
    EXPECT_EQ(field(en, "MESSAGE_ID"), "99f5e66395ed4d949acea87b84a0853d");
    EXPECT_EQ(field(en, "MESSAGE"), "speculator applied provisional: ...");
    EXPECT_EQ(field(en, "PRIORITY"), "6");
    EXPECT_EQ(field(en, "SYSLOG_IDENTIFIER"), "specactd");
    EXPECT_EQ(field(en, "SPECACT_SEQ"), "42");
    EXPECT_EQ(field(en, "SPECACT_WHO"), "speculator");
    EXPECT_EQ(field(en, "SPECACT_WHY"), "request-size prior");
    EXPECT_EQ(field(en, "SPECACT_KIND"), "provisional");
  }
  EXPECT_EQ(knobs, (std::set<std::string>{"task.nice", "task.slice_us"}));
  const Entry& nice = field(entries[0], "SPECACT_KNOB") == "task.nice" ? entries[0] : entries[1];
  EXPECT_EQ(field(nice, "SPECACT_OLD"), "0");
  EXPECT_EQ(field(nice, "SPECACT_NEW"), "-10");
}

TEST(JournalEvents, RevertsNameWhatTheyUndid) {
  json user = {{"type", "reverted"},
               {"who", "user"},
               {"reason", "revert to baseline"},
               {"was", {{"task.nice", 7}}},
               {"config", {{"task.nice", 0}}},
               {"miss", false}};
  auto entries = journal_entries(user);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(field(entries[0], "SPECACT_EVENT"), "reverted");
  EXPECT_EQ(field(entries[0], "SPECACT_WHO"), "user");
  EXPECT_EQ(field(entries[0], "SPECACT_WHY"), "revert to baseline");
  EXPECT_EQ(field(entries[0], "SPECACT_KNOB"), "task.nice");
  EXPECT_EQ(field(entries[0], "SPECACT_OLD"), "7");
  EXPECT_EQ(field(entries[0], "SPECACT_NEW"), "0");
  EXPECT_EQ(field(entries[0], "PRIORITY"), "5");

  json safety = {{"type", "reverted"},
                 {"who", "safety"},
                 {"reason", "p95 900 us vs confirmed 400 us"},
                 {"provisional", {{"task.slice_us", 100}}},
                 {"config", {{"task.slice_us", 400}}},
                 {"miss", true}};
  entries = journal_entries(safety);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(field(entries[0], "SPECACT_OLD"), "100");
  EXPECT_EQ(field(entries[0], "SPECACT_NEW"), "400");
}

TEST(JournalEvents, EventsWithoutAChangeAreOneEntry) {
  auto entries = journal_entries(
      {{"type", "confirmed"}, {"who", "actor"}, {"config", {{"task.nice", -10}}}, {"hit", true}});
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(field(entries[0], "SPECACT_KNOB"), "<absent>");
  EXPECT_EQ(field(entries[0], "SPECACT_CONFIG"), "{\"task.nice\":-10}");
  EXPECT_EQ(field(entries[0], "MESSAGE"), "confirmed");  // no summary: the type

  entries = journal_entries({{"type", "restored"}, {"reason", "SIGTERM"}, {"ok", true}});
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(field(entries[0], "SPECACT_OK"), "1");
  EXPECT_EQ(field(entries[0], "SPECACT_WHO"), "specactd");
  EXPECT_EQ(field(entries[0], "SPECACT_WHY"), "SIGTERM");
}

TEST(JournalEvents, PinsYieldsAndRecommendations) {
  auto pin = journal_entries({{"type", "pinned"}, {"knob", "task.nice"}, {"value", 7}});
  ASSERT_EQ(pin.size(), 1u);
  EXPECT_EQ(field(pin[0], "SPECACT_WHO"), "user");
  EXPECT_EQ(field(pin[0], "SPECACT_KNOB"), "task.nice");
  EXPECT_EQ(field(pin[0], "SPECACT_NEW"), "7");
  EXPECT_EQ(field(pin[0], "SPECACT_OLD"), "<absent>");
  auto y = journal_entries({{"type", "yield_detail"},
                            {"knob", "task.nice"},
                            {"instance", "tid 12"},
                            {"expected", "-10"},
                            {"found", "5"}});
  ASSERT_EQ(y.size(), 1u);
  EXPECT_EQ(field(y[0], "SPECACT_WHO"), "external");
  EXPECT_EQ(field(y[0], "SPECACT_OLD"), "-10");
  EXPECT_EQ(field(y[0], "SPECACT_NEW"), "5");
  EXPECT_EQ(field(y[0], "SPECACT_INSTANCE"), "tid 12");
  auto rec = journal_entries(
      {{"type", "recommended"}, {"from", {{"task.nice", 0}}}, {"config", {{"task.nice", -3}}}});
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(field(rec[0], "SPECACT_WHO"), "actor");
  EXPECT_EQ(field(rec[0], "SPECACT_NEW"), "-3");
}

TEST(JournalEvents, OtherEventsAndBadInputAreNotJournalled) {
  for (const json& e : {json{{"type", "window"}}, json{{"type", "agent_called"}}, json{{"type", 3}},
                        json{{"no_type", true}}, json::array(), json("x")})
    EXPECT_TRUE(journal_entries(e).empty()) << e.dump();
  // Wrong types inside a journalled event do not throw.
  EXPECT_EQ(journal_entries({{"type", "reverted"}, {"provisional", 5}, {"ok", "yes"}}).size(), 1u);
  EXPECT_EQ(field(journal_entries({{"type", "restored"}, {"ok", "yes"}})[0], "SPECACT_OK"), "0");
}

TEST(JournalEvents, FreeTextIsCut) {
  const std::string huge(100'000, 'w');
  auto entries = journal_entries({{"type", "applied"}, {"why", huge}, {"summary", huge}});
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_LE(field(entries[0], "SPECACT_WHY").size(), kMaxJournalText + 3);
  EXPECT_LE(field(entries[0], "MESSAGE").size(), kMaxJournalText + 3);
}

TEST(JournalEvents, MessageIdsAreFixed128BitIdsOnePerKind) {
  std::set<std::string> ids;
  const std::regex hex("^[0-9a-f]{32}$");
  for (const auto& k : kJournalKinds) {
    EXPECT_TRUE(std::regex_match(std::string(k.message_id), hex)) << k.type;
    ids.insert(k.message_id);
    EXPECT_EQ(journal_kind(k.type), &k);
  }
  EXPECT_EQ(ids.size(), kJournalKinds.size());
  EXPECT_EQ(journal_kind("window"), nullptr);
}

TEST(JournalStream, MatchesOnlyTheStreamItNames) {
  char path[] = "/tmp/specact-journal-stream-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  EXPECT_TRUE(stream_is_journal(mine.c_str(), fd));
  const std::string other = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
  EXPECT_FALSE(stream_is_journal(other.c_str(), fd));
  EXPECT_FALSE(stream_is_journal(nullptr, fd));
  EXPECT_FALSE(stream_is_journal("", fd));
  EXPECT_FALSE(stream_is_journal((mine + "x").c_str(), fd));
  EXPECT_FALSE(stream_is_journal("garbage", fd));
  EXPECT_FALSE(stream_is_journal(mine.c_str(), -1));
  close(fd);
  unlink(path);
}

}  // namespace
}  // namespace specact::observe
