// RestoreReport: counts, JSON and the text `specactd restore` prints.
#include <algorithm>
#include <map>
#include <sstream>

#include "knobs/knob_manager.h"

namespace specact {

size_t RestoreReport::count(std::string_view outcome) const {
  return static_cast<size_t>(std::count_if(
      items.begin(), items.end(), [&](const RestoreItem& i) { return i.outcome == outcome; }));
}

nlohmann::json RestoreReport::to_json() const {
  nlohmann::json items_j = nlohmann::json::array();
  for (const auto& i : items)
    items_j.push_back({{"knob", i.knob},
                       {"instance", i.instance},
                       {"original", i.original},
                       {"outcome", i.outcome},
                       {"detail", i.detail}});
  nlohmann::json counts = nlohmann::json::object();
  for (const char* o : {"restored", "already", "gone", "left-alone", "failed", "refused"})
    counts[o] = count(o);
  return {{"ok", ok},
          {"nothing_to_do", nothing_to_do},
          {"journal", journal_path},
          {"counts", counts},
          {"items", items_j},
          {"problems", problems},
          {"notes", notes}};
}

std::string RestoreReport::to_text() const {
  std::ostringstream out;
  for (const auto& p : problems) out << "error: " << p << "\n";
  // Per-task knobs can cover thousands of threads: summarise them per knob.
  std::map<std::string, std::map<std::string, size_t>> per_task;
  std::map<std::string, std::string> task_details;
  for (const auto& i : items) {
    if (i.instance.rfind("tid ", 0) == 0 || i.instance.find(" threads") != std::string::npos) {
      per_task[i.knob][i.outcome]++;
      if (!i.detail.empty() && (i.outcome == "failed" || i.outcome == "left-alone"))
        task_details[i.knob] = i.instance + ": " + i.detail;
      continue;
    }
    out << i.outcome << ": " << i.knob << " (" << i.instance << ")";
    if (!i.original.empty()) out << " -> " << i.original;
    if (!i.detail.empty()) out << " — " << i.detail;
    out << "\n";
  }
  for (const auto& [knob, counts] : per_task) {
    out << knob << ": ";
    bool first = true;
    for (const auto& [o, n] : counts) {
      out << (first ? "" : ", ") << n << " thread" << (n == 1 ? "" : "s") << " " << o;
      first = false;
    }
    if (task_details.count(knob)) out << " (e.g. " << task_details[knob] << ")";
    out << "\n";
  }
  for (const auto& n : notes) out << "note: " << n << "\n";
  if (nothing_to_do && problems.empty())
    out << "nothing to restore (no journal in " << journal_path << ")\n";
  else
    out << (ok ? "restore complete: " : "restore INCOMPLETE: ") << count("restored")
        << " restored, " << count("already") << " already original, " << count("gone") << " gone, "
        << count("left-alone") << " left alone (changed by someone else), " << count("failed")
        << " failed"
        << (count("refused") ? ", " + std::to_string(count("refused")) + " refused" : "") << "\n";
  return out.str();
}

}  // namespace specact
