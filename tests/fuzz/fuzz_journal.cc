// Fuzzes the knobs journal reader the way JournalStore::load() reads
// knobs-journal.json (daemon/knobs/journal.cc): text -> nlohmann::json::parse
// -> journal_from_json. Contract: a JournalState or an exception load()
// catches (std::exception); no crash, and what is accepted survives its own
// round trip (so restore acts on exactly what the file said).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "knobs/journal.h"

using nlohmann::json;
using namespace specact;
using namespace specact::knobs;

namespace {

// The integer in the file, exactly.
bool same_int(const json& v, int64_t x) {
  if (!v.is_number_integer()) return false;
  if (v.is_number_unsigned()) return x >= 0 && v.get<uint64_t>() == static_cast<uint64_t>(x);
  return v.get<int64_t>() == x;
}
bool same_uint(const json& v, uint64_t x) {
  if (!v.is_number_integer()) return false;
  if (v.is_number_unsigned()) return v.get<uint64_t>() == x;
  return v.get<int64_t>() >= 0 && static_cast<uint64_t>(v.get<int64_t>()) == x;
}
bool same_id(const json& v, pid_t x) { return x > 0 && same_int(v, x); }

// Whether every integer of the accepted state is exactly the file's.
bool integers_exact(const JournalState& s, const json& j) {
  for (size_t i = 0; i < s.tasks.size(); ++i) {
    const auto& t = s.tasks[i];
    const json& jt = j.at("tasks").at(i);
    if (!same_int(jt.at("default_slice_ns"), t.default_slice_ns)) return false;
    for (size_t k = 0; k < t.ours.size(); ++k)
      if (!same_int(jt.at("ours").at(k), t.ours[k])) return false;
    for (size_t k = 0; k < t.procs.size(); ++k) {
      const json& p = jt.at("processes").at(k);
      if (!same_id(p.at("tgid"), t.procs[k].tgid) || !same_uint(p.at("start"), t.procs[k].start) ||
          !same_int(p.at("original"), t.procs[k].original))
        return false;
    }
    for (size_t k = 0; k < t.threads.size(); ++k) {
      const json& th = jt.at("threads").at(k);
      if (!same_id(th.at("tid"), t.threads[k].tid) || !same_id(th.at("tgid"), t.threads[k].tgid) ||
          !same_uint(th.at("start"), t.threads[k].start) ||
          !same_int(th.at("original"), t.threads[k].original))
        return false;
    }
  }
  return true;
}

void check_accepted(const JournalState& s, const json& j) {
  for (const auto& f : s.files)
    FUZZ_CHECK(!f.path.empty() && f.path[0] == '/', "relative path accepted: " + f.path);
  FUZZ_CHECK(j.at("files").size() == s.files.size(), "file entries lost or invented");
  FUZZ_CHECK(j.at("tasks").size() == s.tasks.size(), "task entries lost or invented");
  for (size_t i = 0; i < s.tasks.size(); ++i) {
    const json& jt = j.at("tasks").at(i);
    FUZZ_CHECK(jt.at("processes").size() == s.tasks[i].procs.size() &&
                   jt.at("threads").size() == s.tasks[i].threads.size(),
               "process or thread entries lost or invented");
  }
  // Restore must act on exactly the ids and values the file names.
  if (!integers_exact(s, j))
    FUZZ_CHECK(false, "integer changed on the way in: " + j.at("tasks").dump());
  // journal_to_json is what commit() writes: it must read back as the same state.
  json written = journal_to_json(s);
  std::string text = written.dump(1);
  JournalState back = journal_from_json(json::parse(text));
  FUZZ_CHECK(journal_to_json(back) == written, "journal round trip changed: " + text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = fuzz::as_string(data, size);
  json j;
  JournalState s;
  try {
    j = json::parse(text);
  } catch (const std::exception&) {
    return 0;  // load() sets the file aside and restores nothing
  }
  try {
    s = journal_from_json(j);
  } catch (const std::exception&) {
    return 0;  // as above
  }
  check_accepted(s, j);
  return 0;
}
