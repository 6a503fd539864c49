#include "agents/policy/search.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "agents/policy/rules.h"

namespace specact::policy {
namespace {

using evidence::Verdict;

struct Point {
  int64_t value = 0;
  const ConfigEvidence* e = nullptr;
};

// Measured configs equal to `base` on every knob but k, sorted by k's value.
std::vector<Point> line(const PolicyInput& in, const std::vector<ConfigEvidence>& evidence,
                        const KnobInfo& k, const Config& base) {
  std::vector<Point> out;
  for (const auto& e : evidence) {
    Config f = full_config(in, e.config);
    bool on_line = true;
    for (const auto& o : in.knobs)
      if (o.name != k.name && f.at(o.name) != base.at(o.name)) on_line = false;
    if (on_line) out.push_back({f.at(k.name), &e});
  }
  std::sort(out.begin(), out.end(),
            [](const Point& a, const Point& b) { return a.value < b.value; });
  return out;
}

bool is_log(const KnobInfo& k) { return k.domain.scale == KnobScale::Log && k.domain.min > 0; }

// Half-way from v to the edge in direction dir (geometric for log knobs).
int64_t halfway(const KnobInfo& k, int64_t v, int dir) {
  const int64_t edge = dir < 0 ? k.domain.min : k.domain.max;
  double mid =
      is_log(k)
          ? std::sqrt(static_cast<double>(std::max<int64_t>(v, 1)) * static_cast<double>(edge))
          : (static_cast<double>(v) + static_cast<double>(edge)) / 2;
  int64_t m = k.domain.clamp(std::llround(mid));
  if (evidence::same_value(k, m, v)) m = edge;
  return m;
}

// Midpoint of an interval (geometric for log knobs); nullopt when the
// interval is within the knob's tolerance.
std::optional<int64_t> between(const KnobInfo& k, int64_t a, int64_t b) {
  if (evidence::same_value(k, a, b)) return std::nullopt;
  double mid = is_log(k) ? std::sqrt(static_cast<double>(a) * static_cast<double>(b))
                         : (static_cast<double>(a) + static_cast<double>(b)) / 2;
  int64_t m = std::llround(mid);
  if (evidence::same_value(k, m, a) || evidence::same_value(k, m, b)) return std::nullopt;
  return m;
}

double width(const KnobInfo& k, int64_t a, int64_t b) {
  if (is_log(k)) return std::fabs(std::log(static_cast<double>(b) / static_cast<double>(a)));
  return std::fabs(static_cast<double>(b - a)) /
         std::max<double>(1, static_cast<double>(k.domain.max - k.domain.min));
}

Verdict verdict(const PolicyInput& in, const ConfigEvidence& e, const ConfigEvidence& base) {
  return evidence::compare(e.est, base.est, in.opts);
}

// A point measured better than `base` by at least one window standard
// deviation (and more than matters) but still within the noise, while more
// windows can still settle it (fewer than settling_windows). A smaller gain
// is within one window's own spread: on a plateau most neighbours read like
// that, and chasing each would cost more windows than it could win. Such a
// point is no plateau.
bool unresolved_gain(const PolicyInput& in, const ConfigEvidence& e, const ConfigEvidence& base) {
  if (&e == &base || !e.est.confident || !base.est.confident) return false;
  if (verdict(in, e, base) != Verdict::Unknown) return false;
  const double gain = evidence::log_gain(e.est, base.est);
  if (gain < evidence::effect_threshold(e.est, base.est, in.opts) ||
      gain < std::max(e.est.window_sd, base.est.window_sd))
    return false;
  return e.est.windows < settling_windows(in);
}

// An unresolved gain known less well than `base`: one more window of it is
// the cheapest way to settle the comparison (equal windows per side make the
// difference's standard error smallest). Only
//  - while every window of it came in below base's typical window: a point
//    no better than base breaks that run with probability 1/2 per window (a
//    sign test), so a lucky one is not chased into a false "better" by
//    repeated looks;
//  - while it is fresh: measured within the windows a chase takes on both
//    sides (2 x settling_windows) of the newest window. An older one is a
//    question the search has moved on from; re-opening it from a converged
//    config would move knobs without evidence that anything changed.
bool promising(const PolicyInput& in, const ConfigEvidence& e, const ConfigEvidence& base,
               uint64_t newest_window) {
  return unresolved_gain(in, e, base) && e.est.windows < base.est.windows &&
         e.est.window_worst_us < std::exp(base.est.window_log_mean) &&
         e.last_window + 2 * static_cast<uint64_t>(settling_windows(in)) >= newest_window;
}

bool flat(const PolicyInput& in, const ConfigEvidence& e, const ConfigEvidence& base) {
  Verdict v = verdict(in, e, base);
  return v == Verdict::Same || (v == Verdict::Unknown && !unresolved_gain(in, e, base));
}

// The points on the line beyond `at` in direction dir (not the same value).
std::vector<Point> beyond(const KnobInfo& k, const std::vector<Point>& pts, int64_t at, int dir) {
  std::vector<Point> out;
  for (const auto& p : pts)
    if ((p.value - at) * dir > 0 && !evidence::same_value(k, p.value, at)) out.push_back(p);
  if (dir < 0) std::reverse(out.begin(), out.end());  // nearest first
  return out;
}

const Point* at_value(const KnobInfo& k, const std::vector<Point>& pts, int64_t v) {
  for (const auto& p : pts)
    if (evidence::same_value(k, p.value, v)) return &p;
  return nullptr;
}

// Whether k's largest steps around `base` all stayed within the noise: every
// screened direction reached (log knobs: the edge, after widening) and no
// point on the line differs measurably from base.
bool set_aside_around(const PolicyInput& in, const std::vector<ConfigEvidence>& evidence,
                      const KnobInfo& k, const ConfigEvidence& base) {
  const Config b = full_config(in, base.config);
  const int64_t v = b.at(k.name);
  auto pts = line(in, evidence, k, b);
  for (const auto& p : pts)
    if (p.e != &base && (!p.e->est.confident || !flat(in, *p.e, base))) return false;
  if (k.domain.scale == KnobScale::Enum) {
    for (int dir : {-1, +1})
      if (k.domain.contains(v + dir) && !at_value(k, pts, v + dir)) return false;
    return true;
  }
  for (int dir : {-1, +1}) {
    const int64_t edge = dir < 0 ? k.domain.min : k.domain.max;
    if (evidence::same_value(k, v, edge)) continue;
    auto far = beyond(k, pts, v, dir);
    if (far.empty()) return false;
    // The largest step of the direction: the edge for a log knob (plateaus
    // widen), half-way for a linear one.
    const int64_t reach = far.back().value;
    const int64_t largest = is_log(k) ? edge : halfway(k, v, dir);
    if (!evidence::same_value(k, reach, largest) && (reach - largest) * dir < 0) return false;
  }
  return true;
}

bool set_aside(const PolicyInput& in, const std::vector<ConfigEvidence>& evidence,
               const KnobInfo& k) {
  for (const auto& e : evidence)
    if (e.est.confident && set_aside_around(in, evidence, k, e)) return true;
  return false;
}

std::string arrow(const KnobInfo& k, int64_t from, int64_t to) {
  return k.name + " " + format_knob_value(k, from) + "->" + format_knob_value(k, to);
}

}  // namespace

// With n windows a side the difference's standard error is sd * sqrt(2 / n),
// so a gain of one window standard deviation is beyond decide_z from
// n = 2 * decide_z^2 on.
int settling_windows(const PolicyInput& in) { return evidence::settling_windows(in.opts); }

const ConfigEvidence* champion(const PolicyInput& in, const std::vector<ConfigEvidence>& evidence) {
  const ConfigEvidence* best = nullptr;
  double best_score = INFINITY;
  for (const auto& e : evidence) {
    if (!e.est.confident) continue;
    if (!evidence::guard_violation(e.est, in.guard, in.opts, in.metric == Metric::CommandP95)
             .empty())
      continue;
    double s = evidence::rank_score(e.est);
    if (s < best_score) {
      best = &e;
      best_score = s;
    }
  }
  return best;
}

const ConfigEvidence* incumbent(const PolicyInput& in, const std::vector<ConfigEvidence>& evidence,
                                const Config& reference) {
  const ConfigEvidence* ref = find_evidence(in, evidence, reference);
  const bool command = in.metric == Metric::CommandP95;
  if (!ref || !ref->est.confident ||
      !evidence::guard_violation(ref->est, in.guard, in.opts, command).empty())
    return champion(in, evidence);
  const ConfigEvidence* best = ref;
  double best_score = evidence::rank_score(ref->est);
  for (const auto& e : evidence) {
    if (!e.est.confident || !evidence::guard_violation(e.est, in.guard, in.opts, command).empty())
      continue;
    if (evidence::compare(e.est, ref->est, in.opts) != Verdict::Better) continue;
    const double s = evidence::rank_score(e.est);
    if (s < best_score) {
      best = &e;
      best_score = s;
    }
  }
  return best;
}

const ConfigEvidence* unsettled_side(const PolicyInput& in,
                                     const std::vector<ConfigEvidence>& evidence,
                                     const Config& reference) {
  const ConfigEvidence* inc = incumbent(in, evidence, reference);
  const ConfigEvidence* lead = champion(in, evidence);
  if (!inc || !lead || lead == inc || verdict(in, *lead, *inc) != Verdict::Unknown) return nullptr;
  return lead->est.se >= inc->est.se ? lead : inc;
}

std::vector<Step> next_steps(const PolicyInput& in, const std::vector<ConfigEvidence>& evidence,
                             const ConfigEvidence& incumbent) {
  const Config base = full_config(in, incumbent.config);
  std::vector<const KnobInfo*> order;
  for (const auto& k : in.knobs)
    if (searched(k)) order.push_back(&k);
  std::stable_sort(order.begin(), order.end(), [&](const KnobInfo* a, const KnobInfo* b) {
    return screen_rank(in, *a) < screen_rank(in, *b);
  });

  std::vector<Step> confirms, screens, refines;
  // One promising point at a time, the best ranked: every chase is another
  // chance for a lucky point to look better, so they are not run in parallel.
  const ConfigEvidence* chase = nullptr;
  const KnobInfo* chase_knob = nullptr;
  int64_t chase_value = 0;
  uint64_t newest = 0;
  for (const auto& e : evidence) newest = std::max(newest, e.last_window);
  std::map<Config, bool> proposed;
  auto propose = [&](std::vector<Step>& into, Step::Kind kind, const KnobInfo& k, int64_t v,
                     std::string why) {
    Config c = base;
    c[k.name] = k.domain.clamp(v);
    if (c == base || proposed.count(c)) return;
    proposed[c] = true;
    into.push_back({kind, c, k.name, arrow(k, base.at(k.name), c.at(k.name)) + ": " + why});
  };

  for (size_t i = 0; i < order.size(); ++i) {
    const KnobInfo& k = *order[i];
    if (set_aside(in, evidence, k)) continue;
    const int64_t v = base.at(k.name);
    auto pts = line(in, evidence, k, base);
    // A point still being measured answers this knob's question soon.
    bool pending = false;
    for (const auto& p : pts)
      if (!p.e->est.confident) pending = true;
    if (pending) continue;
    for (const auto& p : pts)
      if (promising(in, *p.e, incumbent, newest) &&
          (!chase || evidence::rank_score(p.e->est) < evidence::rank_score(chase->est))) {
        chase = p.e;
        chase_knob = &k;
        chase_value = p.value;
      }

    if (k.domain.scale == KnobScale::Enum) {
      for (int dir : {-1, +1})
        if (k.domain.contains(v + dir) && !at_value(k, pts, v + dir))
          propose(screens, Step::Kind::Screen, k, v + dir, "screening the neighbouring value");
      continue;
    }
    if (auto s = slice_for_burst(in, k);
        s && !at_value(k, pts, *s) && !evidence::same_value(k, *s, v))
      propose(screens, Step::Kind::Burst, k, *s,
              "just above the target's " + std::to_string(std::llround(*burst_us(in))) +
                  " us burst: a woken request finishes within one slice on an early deadline");
    bool screened_both = true;
    const int first = first_direction(in, k, i);
    for (int dir : {first, -first}) {
      const int64_t edge = dir < 0 ? k.domain.min : k.domain.max;
      if (evidence::same_value(k, v, edge)) continue;
      auto far = beyond(k, pts, v, dir);
      if (far.empty()) {
        screened_both = false;
        int64_t to = halfway(k, v, dir);
        std::string why =
            std::string("screening half-way to the ") + (dir < 0 ? "lower" : "upper") + " edge";
        // A step that paid off is repeated at least as large (pattern
        // search's expansion): the incumbent came from a worse point behind it.
        auto back = beyond(k, pts, v, -dir);
        if (!back.empty() && verdict(in, *back.front().e, incumbent) == Verdict::Worse) {
          const double b = static_cast<double>(back.front().value);
          const double x = static_cast<double>(v);
          const int64_t mirror = k.domain.clamp(std::llround(is_log(k) ? x * x / b : 2 * x - b));
          if ((mirror - to) * dir > 0) {
            to = mirror;
            why = "the step that got here paid off: repeating it";
          }
        }
        propose(screens, Step::Kind::Screen, k, to, why);
        continue;
      }
      const Point& last = far.back();
      if (is_log(k) && !evidence::same_value(k, last.value, edge) && flat(in, *last.e, incumbent)) {
        screened_both = false;
        propose(screens, Step::Kind::Widen, k, edge,
                "the half-way step stayed within the noise: trying the edge (a plateau can end "
                "in a cliff)");
      }
    }
    if (!screened_both) continue;
    // Bracketing: only towards a side measured worse than the incumbent (a
    // side within the noise is a plateau: nothing to gain there).
    std::optional<int64_t> best_mid;
    double best_width = 0;
    for (int dir : {-1, +1}) {
      auto near = beyond(k, pts, v, dir);
      if (near.empty() || verdict(in, *near.front().e, incumbent) != Verdict::Worse) continue;
      auto mid = between(k, v, near.front().value);
      if (!mid || at_value(k, pts, *mid)) continue;
      double w = width(k, v, near.front().value);
      if (w > best_width) {
        best_width = w;
        best_mid = mid;
      }
    }
    if (best_mid)
      propose(refines, Step::Kind::Refine, k, *best_mid,
              "bracketing: halving the widest gap to a worse neighbour");
  }
  if (chase)
    propose(confirms, Step::Kind::Confirm, *chase_knob, chase_value,
            "measuring again: p95 " + std::to_string(std::llround(chase->est.p95_us)) +
                " us over " + std::to_string(chase->est.windows) +
                " windows, below the best config's but still within the noise");
  for (auto& r : screens) confirms.push_back(std::move(r));
  for (auto& r : refines) confirms.push_back(std::move(r));
  return confirms;
}

}  // namespace specact::policy
