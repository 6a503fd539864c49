// Fuzzes what a D-Bus caller controls: the string arguments of SetTarget,
// SetMode, Pin and Unpin, taken the way daemon/dbus/dbus_service.cc and
// daemon/runtime/runtime.cc take them, without a bus: SetTarget's JSON ->
// TargetSpec::from_json -> TargetResolver::validate (on a fake /proc and cgroup
// tree); SetMode -> engine::mode_from_string -> Engine::set_mode; Pin/Unpin ->
// Engine::pin/unpin on the real knob catalogue.
//
// Input: one call per line, "<Method> <argument>", e.g.
//   SetTarget {"pids":[100,200]}
//   Pin task.nice -5
// Arguments D-Bus could not carry (invalid UTF-8, NUL) are skipped: the bus
// refuses them before the daemon sees them.
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>

#include "common/clock.h"
#include "common/control.h"
#include "engine/engine.h"
#include "fuzz_support.h"
#include "knobs/knob_defs.h"
#include "target/target.h"
#include "target_oracle.h"

using nlohmann::json;
using namespace specact;
namespace fs = std::filesystem;

namespace {

struct FakeHost {
  std::string proc, cgroup;
};

void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// A few processes and cgroups, so pid, cgroup and unit targets can resolve
// without touching the real host.
FakeHost make_fake_host() {
  char tmpl[] = "/tmp/specact-fuzz-host.XXXXXX";
  const char* dir = mkdtemp(tmpl);
  if (!dir) std::abort();
  fs::path root(dir);
  FakeHost h{(root / "proc").string(), (root / "cgroup").string()};
  for (int pid : {1, 100, 200, 4242}) {
    fs::path p = root / "proc" / std::to_string(pid);
    put(p / "stat", std::to_string(pid) + " (worker) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 " +
                        std::to_string(1000 + pid) + " 0 0\n");
    put(p / "comm", pid == 1 ? "init\n" : "worker\n");
    put(p / "task" / std::to_string(pid) / "stat", "x");
    put(p / "cgroup", "0::/system.slice/app.service\n");
  }
  put(root / "proc" / "300" / "stat", "300 (zombie) Z 1 1 1\n");
  put(root / "cgroup" / "cgroup.procs", "1\n");
  put(root / "cgroup" / "system.slice" / "cgroup.procs", "");
  put(root / "cgroup" / "system.slice" / "app.service" / "cgroup.procs", "100\n200\n");
  put(root / "cgroup" / "user.slice" / "cgroup.procs", "4242\n");
  // Not a cgroup of the fake hierarchy: a target must never resolve here.
  put(root / "outside" / "cgroup.procs", "4242\n");
  return h;
}

// Never destroyed: the atexit cleanup runs after static destructors would have.
const FakeHost& host() {
  static const FakeHost* h = [] {
    auto* x = new FakeHost(make_fake_host());
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(fs::path(host().proc).parent_path(), ec);
    });
    return x;
  }();
  return *h;
}

std::vector<KnobInfo> catalogue() {
  std::vector<KnobInfo> out;
  for (auto& d : knobs::builtin_defs({6, 18}, 2)) {
    KnobInfo k = d.info;
    k.available = true;
    k.current = k.domain.clamp(k.default_value.value_or(k.domain.min));
    out.push_back(std::move(k));
  }
  return out;
}

bool dbus_string(const std::string& s) {
  return s.find('\0') == std::string::npos && fuzz::valid_utf8(s);
}

void check_output(const engine::Output& out, const std::vector<KnobInfo>& knobs) {
  for (const auto& a : out.actions) {
    const auto* apply = std::get_if<engine::ApplyAction>(&a);
    if (!apply) continue;
    for (const auto& [name, v] : apply->config) {
      const KnobInfo* k = nullptr;
      for (const auto& x : knobs)
        if (x.name == name) k = &x;
      FUZZ_CHECK(k, "apply names unknown knob " + name);
      FUZZ_CHECK(k->domain.contains(v), name + "=" + std::to_string(v) + " outside its domain");
    }
  }
  for (const auto& e : out.events) {
    (void)e.to_json().dump();  // history.jsonl and the EngineEvent signal
    FUZZ_CHECK(e.summary.find('\n') == std::string::npos, "multi-line log summary");
  }
}

void set_target(const std::string& arg) {
  // dbus_service.cc: parse without exceptions, objects only.
  json j = json::parse(arg, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return;
  // runtime.cc: any exception from from_json becomes InvalidArgument.
  TargetSpec spec;
  try {
    spec = TargetSpec::from_json(j);
  } catch (const std::exception&) {
    return;
  }
  fuzz::check_target(spec, j);
  // A unit is looked up with systemctl when systemd runs: not once per input.
  static const bool systemd = fs::exists("/run/systemd/system");
  if (spec.kind == TargetSpec::Kind::Unit && systemd) return;
  TargetResolver probe(spec, host().proc, host().cgroup);
  try {
    probe.validate();
  } catch (const TargetError& e) {
    FUZZ_CHECK(fuzz::valid_utf8(e.what()), "TargetError text is not UTF-8");
    return;
  }
  if (auto dir = probe.cgroup_dir()) {
    std::error_code ec;
    std::string root = fs::weakly_canonical(host().cgroup, ec).string();
    std::string got = fs::weakly_canonical(*dir, ec).string();
    const bool inside = got == root || got.rfind(root + "/", 0) == 0;
    FUZZ_CHECK(inside, "target " + spec.describe() + " resolved outside the cgroup tree: " + got);
  }
  for (pid_t p : probe.processes())
    FUZZ_CHECK(p == 1 || p == 100 || p == 200 || p == 4242, "invented pid " + std::to_string(p));
}

int64_t parse_int64(const std::string& s, bool* ok) {
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  *ok = end != s.c_str() && *end == '\0' && errno == 0;
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<KnobInfo> knobs = catalogue();
  static const ManualClock clock(1'000'000'000);
  Config baseline;
  for (const auto& k : knobs) baseline[k.name] = *k.current;
  engine::Engine eng(engine::EngineOptions{}, clock, knobs, baseline);

  const std::string text = fuzz::as_string(data, size);
  size_t pos = 0;
  int calls = 0;
  while (pos <= text.size() && calls++ < 64) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() + 1 : nl + 1;
    size_t sp = line.find(' ');
    std::string method = line.substr(0, sp);
    std::string arg = sp == std::string::npos ? "" : line.substr(sp + 1);
    if (!dbus_string(arg)) continue;
    try {
      if (method == "SetTarget") {
        set_target(arg);
      } else if (method == "SetMode") {
        auto m = engine::mode_from_string(arg);
        if (!m) continue;  // runtime.cc: InvalidArgument
        check_output(eng.set_mode(*m), knobs);
        FUZZ_CHECK(eng.mode() == *m, "mode not set");
        FUZZ_CHECK(engine::to_string(*m) == arg, "mode name does not round-trip: " + arg);
      } else if (method == "Pin") {
        size_t vs = arg.rfind(' ');
        if (vs == std::string::npos) continue;
        bool ok = false;
        int64_t value = parse_int64(arg.substr(vs + 1), &ok);
        if (!ok) continue;  // D-Bus carries an int64, not text
        std::string knob = arg.substr(0, vs);
        check_output(eng.pin(knob, value), knobs);
        auto pinned = eng.pinned();
        FUZZ_CHECK(std::find(pinned.begin(), pinned.end(), knob) != pinned.end(), "not pinned");
        bool applies = eng.mode() != engine::Mode::Recommend && eng.mode() != engine::Mode::Monitor;
        FUZZ_CHECK(!applies || eng.current().at(knob) == value, "pin not in force: " + knob);
      } else if (method == "Unpin") {
        check_output(eng.unpin(arg), knobs);
        auto pinned = eng.pinned();
        FUZZ_CHECK(std::find(pinned.begin(), pinned.end(), arg) == pinned.end(), "still pinned");
      }
    } catch (const ControlError& e) {
      const std::string& n = e.name();
      FUZZ_CHECK(n == "InvalidArgument" || n == "UnknownKnob" || n == "NotRunning" || n == "Failed",
                 "unexpected error name " + n);
    }
  }
  return 0;
}
