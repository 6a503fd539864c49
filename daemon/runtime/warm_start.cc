#include "runtime/warm_start.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace specact {

using nlohmann::json;

namespace {

double decade(double x, double floor) { return std::log10(std::max(x, floor)); }

double finite_non_negative(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number())
    throw std::runtime_error(std::string("signature.") + key + ": expected a number");
  const double v = j[key].get<double>();
  if (!std::isfinite(v) || v < 0)
    throw std::runtime_error(std::string("signature.") + key + ": not a non-negative number");
  return v;
}

}  // namespace

double WorkloadSignature::distance(const WorkloadSignature& o) const {
  return std::max(
      std::abs(decade(oncpu_share, kMinOncpuShare) - decade(o.oncpu_share, kMinOncpuShare)),
      std::abs(decade(sleeps_per_s, kMinSleepsPerS) - decade(o.sleeps_per_s, kMinSleepsPerS)));
}

json WorkloadSignature::to_json() const {
  // Three significant digits: the match is on orders of magnitude.
  auto round3 = [](double v) {
    if (v <= 0) return 0.0;
    const double scale = std::pow(10.0, 2 - std::floor(std::log10(v)));
    return std::round(v * scale) / scale;
  };
  return {{"oncpu_share", round3(oncpu_share)}, {"sleeps_per_s", round3(sleeps_per_s)}};
}

WorkloadSignature WorkloadSignature::from_json(const json& j) {
  if (!j.is_object()) throw std::runtime_error("signature: expected an object");
  return {finite_non_negative(j, "oncpu_share"), finite_non_negative(j, "sleeps_per_s")};
}

std::string WorkloadSignature::describe() const {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.3g CPU, %.3g sleeps/s", oncpu_share, sleeps_per_s);
  return buf;
}

void SignatureProbe::add(const Window& w) {
  if (w.duration_ms() <= 0) return;
  oncpu_ms_ += w.oncpu_ms;
  duration_ms_ += w.duration_ms();
  nvcsw_ += w.nvcsw;
}

std::optional<WorkloadSignature> SignatureProbe::signature() const {
  if (duration_ms_ <= 0) return std::nullopt;
  return WorkloadSignature{oncpu_ms_ / duration_ms_,
                           static_cast<double>(nvcsw_) / (duration_ms_ / 1e3)};
}

std::optional<json> learned_key(const TargetSpec& t) {
  if (t.kind == TargetSpec::Kind::Pid) return std::nullopt;
  return t.to_json();
}

json LearnedConfigs::Entry::to_json() const {
  json j = {{"key", key},
            {"metric", specact::to_string(metric)},
            {"signature", signature.to_json()},
            {"config", config_to_json(config)},
            {"learned_at", learned_at},
            {"reason", reason}};
  if (p95_us) j["p95_us"] = *p95_us;
  return j;
}

LearnedConfigs::Entry LearnedConfigs::Entry::from_json(const json& j) {
  if (!j.is_object()) throw std::runtime_error("entry: expected an object");
  for (const auto& [field, _] : j.items()) {
    static const char* const kFields[] = {"key",    "metric",     "signature", "config",
                                          "p95_us", "learned_at", "reason"};
    if (std::none_of(std::begin(kFields), std::end(kFields),
                     [&](const char* f) { return field == f; }))
      throw std::runtime_error("entry: unknown field '" + field.substr(0, 64) + "'");
  }
  Entry e;
  if (!j.contains("key")) throw std::runtime_error("entry.key: missing");
  try {
    // The same checks as a target given over D-Bus.
    TargetSpec t = TargetSpec::from_json(j["key"]);
    if (!learned_key(t)) throw TargetError("a pid target is never remembered");
    e.key = t.to_json();
  } catch (const TargetError& err) {
    throw std::runtime_error(std::string("entry.key: ") + err.what());
  }
  if (!j.contains("metric") || !j["metric"].is_string())
    throw std::runtime_error("entry.metric: expected a string");
  auto metric = metric_from_string(j["metric"].get<std::string>());
  if (!metric) throw std::runtime_error("entry.metric: not a metric");
  e.metric = *metric;
  e.signature = WorkloadSignature::from_json(j.value("signature", json()));
  const json& c = j.contains("config") ? j["config"] : json();
  if (!c.is_object() || c.size() > kMaxKnobs)
    throw std::runtime_error("entry.config: expected an object of at most " +
                             std::to_string(kMaxKnobs) + " knobs");
  for (const auto& [knob, value] : c.items()) {
    if (knob.empty() || knob.size() > 256 || !value.is_number_integer() ||
        (value.is_number_unsigned() && value.get<uint64_t>() > INT64_MAX))
      throw std::runtime_error("entry.config: expected {knob: integer}");
    e.config[knob] = value.get<int64_t>();
  }
  if (j.contains("p95_us")) {
    if (!j["p95_us"].is_number() || !std::isfinite(j["p95_us"].get<double>()))
      throw std::runtime_error("entry.p95_us: expected a number");
    e.p95_us = j["p95_us"].get<double>();
  }
  for (const char* text : {"learned_at", "reason"}) {
    if (j.contains(text) && (!j[text].is_string() || j[text].get<std::string>().size() > 64))
      throw std::runtime_error(std::string("entry.") + text + ": expected a short string");
  }
  e.learned_at = j.value("learned_at", "");
  e.reason = j.value("reason", "");
  return e;
}

StateFile::Loaded LearnedConfigs::load() {
  std::vector<Entry> entries;
  StateFile::Loaded l = file_.load([&](const json& doc) {
    if (!doc.contains("entries") || !doc["entries"].is_array())
      throw std::runtime_error("entries: expected an array");
    for (const auto& e : doc["entries"]) entries.push_back(Entry::from_json(e));
  });
  if (!l.used) return l;
  if (entries.size() > max_entries_)
    entries.erase(entries.begin(), entries.end() - static_cast<ptrdiff_t>(max_entries_));
  entries_ = std::move(entries);
  return l;
}

const LearnedConfigs::Entry* LearnedConfigs::closest(const json& key, Metric metric,
                                                     const WorkloadSignature& sig) const {
  const Entry* best = nullptr;
  for (const auto& e : entries_) {
    if (e.key != key || e.metric != metric) continue;
    if (!best || e.signature.distance(sig) < best->signature.distance(sig)) best = &e;
  }
  return best;
}

const LearnedConfigs::Entry* LearnedConfigs::match(const json& key, Metric metric,
                                                   const WorkloadSignature& sig,
                                                   double decades) const {
  const Entry* e = closest(key, metric, sig);
  return e && e->signature.matches(sig, decades) ? e : nullptr;
}

std::string LearnedConfigs::remember(Entry e, double decades) {
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Entry& old) {
                                  return old.key == e.key && old.metric == e.metric &&
                                         old.signature.matches(e.signature, decades);
                                }),
                 entries_.end());
  entries_.push_back(std::move(e));
  if (entries_.size() > max_entries_)
    entries_.erase(entries_.begin(), entries_.end() - static_cast<ptrdiff_t>(max_entries_));
  return save();
}

std::string LearnedConfigs::forget(const json& key, Metric metric, const WorkloadSignature& sig,
                                   double decades) {
  const size_t before = entries_.size();
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Entry& old) {
                                  return old.key == key && old.metric == metric &&
                                         old.signature.matches(sig, decades);
                                }),
                 entries_.end());
  return entries_.size() == before ? "" : save();
}

std::string LearnedConfigs::save() const {
  json list = json::array();
  for (const auto& x : entries_) list.push_back(x.to_json());
  return file_.save({{"entries", list}});
}

Config learned_config(const Config& confirmed, const Config& baseline,
                      const std::vector<std::string>& pinned) {
  Config out;
  for (const auto& [knob, value] : confirmed) {
    if (std::find(pinned.begin(), pinned.end(), knob) != pinned.end()) continue;
    auto b = baseline.find(knob);
    if (b == baseline.end() || b->second != value) out[knob] = value;
  }
  return out;
}

std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace specact
