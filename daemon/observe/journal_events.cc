#include "observe/journal_events.h"

#include <map>
#include <set>

namespace specact::observe {

namespace {

using nlohmann::json;

std::string text_of(const json& e, const char* key) {
  auto it = e.find(key);
  if (it == e.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string cut(std::string s) {
  if (s.size() > kMaxJournalText) {
    s.resize(kMaxJournalText);
    s += "...";
  }
  return s;
}

// A config object {"knob": value} as knob -> value text.
std::map<std::string, std::string> config_of(const json& e, const char* key) {
  std::map<std::string, std::string> out;
  auto it = e.find(key);
  if (it == e.end() || !it->is_object()) return out;
  for (auto kv = it->begin(); kv != it->end(); ++kv)
    out[kv.key()] = kv.value().dump(-1, ' ', false, json::error_handler_t::replace);
  return out;
}

struct Change {
  std::string knob, old_value, new_value;
};

// Knobs whose value differs between the two configs (a knob missing on one
// side has "" there).
std::vector<Change> changes(const std::map<std::string, std::string>& from,
                            const std::map<std::string, std::string>& to) {
  std::set<std::string> knobs;
  for (const auto& [k, _] : from) knobs.insert(k);
  for (const auto& [k, _] : to) knobs.insert(k);
  std::vector<Change> out;
  for (const auto& k : knobs) {
    auto f = from.find(k);
    auto t = to.find(k);
    std::string o = f == from.end() ? "" : f->second;
    std::string n = t == to.end() ? "" : t->second;
    if (o != n) out.push_back({k, o, n});
  }
  return out;
}

}  // namespace

const std::vector<JournalKind> kJournalKinds = {
    {"applied", "99f5e66395ed4d949acea87b84a0853d", 6},
    {"confirmed", "d5c42a9d40fe41c5bed2571f8b117a73", 6},
    {"overridden", "181f8522df614af78e30891638288d9a", 6},
    {"reverted", "37146415c54a49339124f56a16dc5e3a", 5},
    {"yielded", "264e9ae0f7b8467da5f05cfd97a46203", 5},
    {"yield_detail", "146a0248db9f45f7be6202f876846487", 5},
    {"recommended", "26a42cc05f014db7bca8f07fe1d94428", 6},
    {"pinned", "0a97f0a744c640ef8917afe7e7315209", 6},
    {"unpinned", "edf4f322c9004d758c7bc17d67b16cc1", 6},
    {"restored", "6f6b489a6b3e4a2288693c028f3144f4", 6},
};

const JournalKind* journal_kind(std::string_view type) {
  for (const auto& k : kJournalKinds)
    if (type == k.type) return &k;
  return nullptr;
}

std::vector<std::vector<std::string>> journal_entries(const json& e) {
  if (!e.is_object()) return {};
  const JournalKind* kind = journal_kind(text_of(e, "type"));
  if (!kind) return {};
  const std::string type = kind->type;

  std::string who = text_of(e, "who");
  if (type == "yielded" || type == "yield_detail") who = "external";
  if (type == "recommended") who = "actor";
  if (type == "pinned" || type == "unpinned") who = "user";
  if (type == "restored") who = "specactd";
  std::string why = text_of(e, "why");
  if (why.empty()) why = text_of(e, "reason");

  std::vector<std::string> common = {
      "MESSAGE=" + cut(e.contains("summary") ? text_of(e, "summary") : type),
      std::string("MESSAGE_ID=") + kind->message_id,
      "PRIORITY=" + std::to_string(kind->priority),
      "SYSLOG_IDENTIFIER=specactd",
      "SPECACT_EVENT=" + type,
  };
  if (e.contains("seq")) common.push_back("SPECACT_SEQ=" + text_of(e, "seq"));
  if (!who.empty()) common.push_back("SPECACT_WHO=" + who);
  if (!why.empty()) common.push_back("SPECACT_WHY=" + cut(why));
  if (e.contains("kind")) common.push_back("SPECACT_KIND=" + text_of(e, "kind"));
  if (e.contains("config")) common.push_back("SPECACT_CONFIG=" + cut(text_of(e, "config")));
  if (type == "restored") {
    auto ok = e.find("ok");
    const bool restored = ok != e.end() && ok->is_boolean() && ok->get<bool>();
    common.push_back(std::string("SPECACT_OK=") + (restored ? "1" : "0"));
  }
  if (type == "yield_detail" && e.contains("instance"))
    common.push_back("SPECACT_INSTANCE=" + cut(text_of(e, "instance")));

  std::vector<Change> changed;
  if (type == "applied" || type == "recommended") {
    changed = changes(config_of(e, "from"), config_of(e, "config"));
  } else if (type == "overridden") {
    changed = changes(config_of(e, "provisional"), config_of(e, "config"));
  } else if (type == "reverted") {
    auto prov = e.find("provisional");
    const char* from = prov != e.end() && prov->is_object() ? "provisional" : "was";
    changed = changes(config_of(e, from), config_of(e, "config"));
  } else if (type == "yield_detail") {
    changed.push_back({text_of(e, "knob"), cut(text_of(e, "expected")), cut(text_of(e, "found"))});
  } else if (type == "pinned") {
    changed.push_back({text_of(e, "knob"), "", text_of(e, "value")});
  } else if (type == "yielded" || type == "unpinned") {
    changed.push_back({text_of(e, "knob"), "", ""});
  }

  std::vector<std::vector<std::string>> entries;
  for (const auto& c : changed) {
    std::vector<std::string> fields = common;
    fields.push_back("SPECACT_KNOB=" + cut(c.knob));
    if (!c.old_value.empty()) fields.push_back("SPECACT_OLD=" + c.old_value);
    if (!c.new_value.empty()) fields.push_back("SPECACT_NEW=" + c.new_value);
    entries.push_back(std::move(fields));
  }
  if (entries.empty()) entries.push_back(std::move(common));
  return entries;
}

}  // namespace specact::observe
