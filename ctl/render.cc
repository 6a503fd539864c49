#include "render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <set>
#include <sstream>

#include "common/knob_info.h"

namespace specactctl {

using nlohmann::json;

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

size_t display_width(const std::string& s) {
  // UTF-8: count code points, not bytes (the chart uses block characters).
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::string pad(const std::string& s, size_t w, bool right) {
  size_t dw = display_width(s);
  if (dw >= w) return s;
  return right ? std::string(w - dw, ' ') + s : s + std::string(w - dw, ' ');
}

double num(const json& j, const char* key, double dflt = 0) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return dflt;
  return j[key].get<double>();
}

std::string str(const json& j, const char* key, const std::string& dflt = "") {
  if (!j.is_object() || !j.contains(key)) return dflt;
  if (j[key].is_string()) return j[key].get<std::string>();
  if (j[key].is_null()) return dflt;
  return j[key].dump();
}

const json* find_knob(const json& knobs, const std::string& name) {
  if (!knobs.is_array()) return nullptr;
  for (const auto& k : knobs)
    if (k.is_object() && k.value("name", "") == name) return &k;
  return nullptr;
}

double window_p95(const json& w) {
  if (!w.is_object()) return NAN;
  if (w.contains("objective_us"))
    return w["objective_us"].is_number() ? w["objective_us"].get<double>() : NAN;
  if (w.contains("command") && w["command"].is_object() && w["command"].contains("p95_us"))
    return num(w["command"], "p95_us", NAN);
  if (w.contains("service") && num(w["service"], "count") > 0)
    return num(w["service"], "p95_us", NAN);
  return NAN;
}

std::string config_cell(const json& config, const json& knobs, const std::string& name) {
  if (!config.is_object() || !config.contains(name) || !config[name].is_number_integer())
    return "-";
  return format_value(knobs, name, config[name].get<int64_t>());
}

}  // namespace

std::string format_us(double us) {
  if (!std::isfinite(us) || us < 0) return "-";
  if (us < 1000) return fmt("%.0f us", us);
  if (us < 1e6) return fmt("%.2f ms", us / 1e3);
  return fmt("%.2f s", us / 1e6);
}

std::string format_uptime(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
  auto s = static_cast<uint64_t>(seconds);
  char buf[64];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lluh %02llum %02llus", (unsigned long long)(s / 3600),
                  (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%llum %02llus", (unsigned long long)(s / 60),
                  (unsigned long long)(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%llus", (unsigned long long)s);
  return buf;
}

std::string describe_target(const json& t) {
  if (!t.is_object() || t.empty()) return "(none)";
  if (t.contains("pids") && t["pids"].is_array()) {
    std::string s = t["pids"].size() == 1 ? "pid " : "pids ";
    for (size_t i = 0; i < t["pids"].size(); ++i) s += (i ? "," : "") + t["pids"][i].dump();
    return s;
  }
  if (t.contains("pid")) return "pid " + t["pid"].dump();
  if (t.contains("unit")) return "unit " + str(t, "unit");
  if (t.contains("cgroup")) return "cgroup " + str(t, "cgroup");
  if (t.contains("comm")) return "comm ~ /" + str(t, "comm") + "/";
  return t.dump();
}

std::string format_value(const json& knobs, const std::string& name, int64_t v) {
  const json* k = find_knob(knobs, name);
  return k ? specact::format_knob_value(specact::knob_info_from_json(*k), v) : std::to_string(v);
}

std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows,
                         const std::vector<bool>& right_align) {
  std::vector<size_t> w(header.size(), 0);
  for (size_t c = 0; c < header.size(); ++c) w[c] = display_width(header[c]);
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size() && c < w.size(); ++c)
      w[c] = std::max(w[c], display_width(r[c]));
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < cells.size() && c < w.size(); ++c) {
      bool right = c < right_align.size() && right_align[c];
      bool last = c + 1 == cells.size();
      out += (c ? "  " : "") + (last && !right ? cells[c] : pad(cells[c], w[c], right));
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(header);
  for (const auto& r : rows) out += line(r);
  return out;
}

std::string render_status(const json& s, const json& knobs) {
  std::ostringstream o;
  o << "specactd " << str(s, "version", "?") << ": " << str(s, "state", "?") << ", mode "
    << str(s, "mode", "?") << ", up " << format_uptime(num(s, "uptime_s")) << "\n";
  o << "Target:    " << describe_target(s.value("target", json())) << "\n";
  if (s.contains("settings") && s["settings"].is_object()) {
    // Where each setting in force came from: the config file, or D-Bus (saved).
    const json& st = s["settings"];
    auto source = [&](const char* k) {
      return st.contains(k) && st[k].is_object() ? str(st[k], "source", "?") : std::string("?");
    };
    o << "Settings:  target " << source("target");
    if (source("target") != "config" && st["target"].is_object()) {
      const json configured = st["target"].value("config", json());
      o << " (config: " << (configured.is_object() ? describe_target(configured) : "none") << ")";
    }
    o << ", mode " << source("mode");
    if (source("mode") != "config" && st["mode"].is_object())
      o << " (config: " << str(st["mode"], "config", "?") << ")";
    o << ", pins " << source("pins") << ", paused " << source("paused") << "\n";
  }
  if (s.contains("warnings") && s["warnings"].is_array())
    for (const auto& w : s["warnings"])
      if (w.is_string()) o << "Warning:   " << w.get<std::string>() << "\n";
  double base = num(s, "baseline_p95_us", 0);
  const json& lw = s.contains("last_window") ? s["last_window"] : json();
  double last = window_p95(lw);
  o << "Windows:   " << static_cast<uint64_t>(num(s, "windows")) << " measured";
  if (lw.is_object()) {
    o << ", last #" << str(lw, "window", "?") << " p95 " << format_us(last);
    if (lw.value("low_confidence", false)) o << " (low confidence)";
  }
  o << "\n";
  o << "Baseline:  p95 " << (base > 0 ? format_us(base) : std::string("-"));
  if (base > 0 && std::isfinite(last)) o << fmt(" (now %+.1f%%)", (last - base) / base * 100.0);
  o << "\n";
  o << "Hit rate:  " << fmt("%.1f %%", num(s, "hit_rate") * 100.0)
    << " of actor decisions confirmed the speculation\n";
  std::vector<std::vector<std::string>> agent_rows;
  for (const char* role : {"speculator", "actor"}) {
    json u = s.contains("usage") && s["usage"].contains(role) ? s["usage"][role] : json::object();
    agent_rows.push_back({role, fmt("%.0f", num(u, "calls")), fmt("%.0f", num(u, "prompt_tokens")),
                          fmt("%.0f", num(u, "cached_tokens")),
                          fmt("%.0f", num(u, "completion_tokens")),
                          fmt("$%.4f", num(u, "cost_usd")), fmt("%.0f", num(u, "errors")),
                          fmt("%.0f", num(u, "rejected"))});
  }
  o << "\n"
    << render_table({"AGENT", "CALLS", "PROMPT_TOK", "CACHED_TOK", "COMPL_TOK", "COST", "ERRORS",
                     "REJECTED"},
                    agent_rows, {false, true, true, true, true, true, true, true});
  // Spend against the budgets: the session, the last hour (the rate) and
  // what is left of each limit ("-": no limit).
  if (s.contains("spend") && s["spend"].is_object()) {
    std::vector<std::vector<std::string>> spend_rows;
    for (const char* role : {"speculator", "actor"}) {
      if (!s["spend"].contains(role) || !s["spend"][role].is_object()) continue;
      const json& p = s["spend"][role];
      const json left = p.value("left", json::object());
      auto tok_left = [&](const char* k) {
        return left.contains(k) && left[k].is_number() ? fmt("%.0f", left[k].get<double>())
                                                       : std::string("-");
      };
      auto usd_left = [&](const char* k) {
        return left.contains(k) && left[k].is_number() ? fmt("$%.4f", left[k].get<double>())
                                                       : std::string("-");
      };
      const json lim = p.contains("limited_by") ? p["limited_by"] : json();
      spend_rows.push_back(
          {role, fmt("%.0f", num(p, "tokens")), fmt("$%.4f", num(p, "usd")),
           fmt("%.0f", num(p, "tokens_last_hour")), fmt("$%.4f", num(p, "usd_last_hour")),
           tok_left("tokens"), usd_left("usd"), tok_left("tokens_this_hour"),
           usd_left("usd_this_hour"), lim.is_string() ? lim.get<std::string>() : std::string("-")});
    }
    if (!spend_rows.empty())
      o << "\n"
        << render_table({"SPEND", "TOKENS", "USD", "TOK/HOUR", "USD/HOUR", "TOK_LEFT", "USD_LEFT",
                         "TOK_LEFT/H", "USD_LEFT/H", "LIMITED_BY"},
                        spend_rows, {false, true, true, true, true, true, true, true, true, false});
  }

  std::set<std::string> names;
  std::set<std::string> pinned;
  for (const char* key : {"current", "confirmed", "baseline"})
    if (s.contains(key) && s[key].is_object())
      for (const auto& [k, v] : s[key].items()) names.insert(k);
  if (s.contains("pinned") && s["pinned"].is_array())
    for (const auto& p : s["pinned"])
      pinned.insert(p.get<std::string>()), names.insert(p.get<std::string>());
  o << "\n";
  if (names.empty()) {
    o << "No knobs tuned yet.\n";
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const auto& n : names)
      rows.push_back({n, config_cell(s.value("current", json()), knobs, n),
                      config_cell(s.value("confirmed", json()), knobs, n),
                      config_cell(s.value("baseline", json()), knobs, n),
                      pinned.count(n) ? "pinned" : ""});
    o << render_table({"KNOB", "CURRENT", "CONFIRMED", "BASELINE", "PIN"}, rows,
                      {false, true, true, true, false});
  }
  return o.str();
}

std::string render_knobs(const json& knobs) {
  std::vector<std::vector<std::string>> rows;
  if (knobs.is_array()) {
    for (const auto& k : knobs) {
      std::string range;
      if (k.contains("values") && k["values"].is_array()) {
        for (size_t i = 0; i < k["values"].size(); ++i)
          range += (i ? "|" : "") + k["values"][i].get<std::string>();
      } else {
        range = str(k, "min") + ".." + str(k, "max");
        if (str(k, "scale") == "log") range += " (log)";
      }
      std::string current = "-";
      if (k.contains("current") && k["current"].is_number_integer())
        current = format_value(knobs, str(k, "name"), k["current"].get<int64_t>());
      bool avail = k.value("available", false);
      rows.push_back({str(k, "name"), str(k, "family"), current, range, str(k, "unit"),
                      avail ? "yes" : "no: " + str(k, "unavailable_reason")});
    }
  }
  return render_table({"KNOB", "FAMILY", "CURRENT", "RANGE", "UNIT", "AVAILABLE"}, rows,
                      {false, false, true, false, false, false});
}

std::string describe_event(const json& e, const json& knobs) {
  // The engine writes one line for people per event; prefer it.
  if (e.contains("summary") && e["summary"].is_string() && !e["summary"].get<std::string>().empty())
    return e["summary"].get<std::string>();
  std::ostringstream o;
  std::string type = str(e, "type", "event");
  o << type;
  for (const char* who : {"by", "role", "source", "who"})
    if (e.contains(who) && e[who].is_string()) {
      o << " by " << e[who].get<std::string>();
      break;
    }
  // Knob moves: {"changes":{knob:{"from":a,"to":b}}} or {"config":{knob:v}}.
  if (e.contains("changes") && e["changes"].is_object()) {
    for (const auto& [k, v] : e["changes"].items()) {
      o << " " << k << " ";
      if (v.is_object() && v.contains("from") && v["from"].is_number_integer())
        o << format_value(knobs, k, v["from"].get<int64_t>()) << "->";
      if (v.is_object() && v.contains("to") && v["to"].is_number_integer())
        o << format_value(knobs, k, v["to"].get<int64_t>());
      else if (v.is_number_integer())
        o << format_value(knobs, k, v.get<int64_t>());
      else
        o << v.dump();
    }
  } else if (e.contains("config") && e["config"].is_object()) {
    for (const auto& [k, v] : e["config"].items())
      o << " " << k << "="
        << (v.is_number_integer() ? format_value(knobs, k, v.get<int64_t>()) : v.dump());
  } else if (e.contains("knob")) {
    o << " " << str(e, "knob");
    if (e.contains("value") && e["value"].is_number_integer())
      o << "=" << format_value(knobs, str(e, "knob"), e["value"].get<int64_t>());
  }
  for (const char* why : {"reason", "why", "message", "error"})
    if (e.contains(why) && e[why].is_string()) {
      o << " (" << e[why].get<std::string>() << ")";
      break;
    }
  return o.str();
}

std::string render_history(const json& events) {
  std::vector<std::vector<std::string>> rows;
  if (events.is_array())
    for (const auto& e : events) {
      std::string time = str(e, "time", "");
      rows.push_back({str(e, "seq"), time, describe_event(e, json())});
    }
  if (rows.empty()) return "No events.\n";
  return render_table({"SEQ", "TIME", "EVENT"}, rows, {true, false, false});
}

std::vector<std::string> render_chart(const std::vector<double>& p95, int width, int height) {
  static const char* kBlocks[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  height = std::max(height, 2);
  width = std::max(width, 10);
  const int label_w = 10;
  int cols = std::max(1, width - label_w - 1);
  size_t first = p95.size() > static_cast<size_t>(cols) ? p95.size() - cols : 0;
  double top = 0;
  for (size_t i = first; i < p95.size(); ++i)
    if (std::isfinite(p95[i])) top = std::max(top, p95[i]);
  if (top <= 0) top = 1;
  top *= 1.05;  // headroom so the maximum is visible as a full bar
  std::vector<std::string> lines;
  for (int row = height - 1; row >= 0; --row) {
    double row_lo = top * row / height;
    std::string label;
    if (row == height - 1)
      label = format_us(top);
    else if (row == 0)
      label = "0";
    else if (row == height / 2)
      label = format_us(top * (row + 1) / height);
    std::string line = pad(label, label_w - 1, true) + " ┤";
    for (size_t i = first; i < p95.size(); ++i) {
      double v = p95[i];
      if (!std::isfinite(v)) {
        line += row == 0 ? "·" : " ";
        continue;
      }
      double frac = (v - row_lo) / (top / height);
      int eighths = static_cast<int>(std::clamp(frac, 0.0, 1.0) * 8 + 0.5);
      if (row == 0 && eighths == 0 && v > 0) eighths = 1;
      line += kBlocks[eighths];
    }
    lines.push_back(line);
  }
  size_t shown = p95.size() - first;
  lines.push_back(std::string(label_w - 1, ' ') + " └" + std::string(shown, '-'));
  return lines;
}

}  // namespace specactctl
