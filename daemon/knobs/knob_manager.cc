// The knob manager: the one gate through which specact changes a kernel
// setting. Every knob goes through the same steps, whatever backend writes it:
//   write gate -> plan (backend reads) -> journal (durable) -> write (backend)
#include "knobs/knob_manager.h"

#include <stdexcept>

#include "common/log.h"
#include "knobs/file_backend.h"
#include "knobs/journal.h"
#include "knobs/knob_backend.h"
#include "knobs/knob_defs.h"
#include "knobs/restore.h"
#include "knobs/task_backend.h"
#include "knobs/write_gate.h"

namespace specact {
using namespace knobs;

namespace {

// A knob that passed the gate and its backend's plan: something to write.
struct Pending {
  size_t idx;                     // into ApplyResult::results
  std::optional<int64_t> before;  // what was in force when planned
  std::unique_ptr<PlannedWrite> write;
};

}  // namespace

struct KnobManager::Impl {
  KnobsConfig& cfg;
  SteadyClock steady;
  const Clock* clock;
  const std::vector<KnobDef> defs;
  WriteGate gate;
  KnobEnv env;
  FileKnobBackend files{env};
  TaskKnobBackend tasks{env};
  const std::vector<KnobBackend*> backends{&files, &tasks};
  RestoreScope scope;  // what restore may touch (the same roots and defs)
  JournalStore store;
  JournalState journal;
  bool journal_ready = false;
  std::map<std::string, std::string> yielded;  // knob -> why

  Impl(KnobsConfig& c, const TargetResolver* t, const Clock* clk)
      : cfg(c),
        clock(clk ? clk : &steady),
        defs(configured_defs(c)),
        gate(WriteGate::from(c)),
        env(c, t),
        scope(RestoreScope::from(c)),
        store(c.state_dir, c.fault) {
    env.yield = [this](const std::string& knob, const std::string& why) { yield(knob, why); };
    for (const auto& d : defs) backend_for(d);  // every knob has its backend
  }

  const KnobDef* find(const std::string& name) const {
    for (const auto& d : defs)
      if (d.info.name == name) return &d;
    return nullptr;
  }

  KnobBackend& backend_for(const KnobDef& d) const {
    for (KnobBackend* b : backends)
      if (b->handles(d)) return *b;
    throw std::logic_error("knobs: no backend writes " + d.info.name);
  }

  void yield(const std::string& knob, const std::string& why) {
    if (!yielded.count(knob)) log::warn("knobs: yielding " + knob + ": " + why);
    yielded[knob] = why;
    for (KnobBackend* b : backends) b->forget(knob);
  }

  std::string yield_error(const std::string& knob) const {
    return "yielded: " + yielded.at(knob) + "; no longer managed";
  }

  // The gate, then the knob's backend reads what is there: a write to make,
  // or null with r's status and error final. Writes nothing.
  std::unique_ptr<PlannedWrite> plan(const std::string& name, int64_t requested, int64_t now,
                                     KnobResult* r) {
    auto settle = [r](KnobResult::Status s, std::string error) {
      r->status = s;
      r->error = std::move(error);
      return nullptr;
    };
    const KnobDef* d = find(name);
    if (!d)
      return settle(KnobResult::Status::Rejected,
                    "unknown knob '" + name + "' (see `specactd knobs`)");
    if (std::string why = gate.check_allowed(name); !why.empty())
      return settle(KnobResult::Status::Rejected, why);
    if (yielded.count(name)) return settle(KnobResult::Status::Yielded, yield_error(name));
    std::string why;
    std::optional<int64_t> v = gate.check_value(d->info, requested, &why);
    if (!v) return settle(KnobResult::Status::Rejected, why);
    r->clamped = *v != requested;
    r->written = *v;
    KnobPlan p = backend_for(*d).plan(*d, *v, journal, r);
    if (!p.write) {
      if (p.status == KnobResult::Status::Unavailable)
        return settle(p.status, name + " unavailable: " + p.why);
      if (p.status == KnobResult::Status::Yielded) return settle(p.status, yield_error(name));
      return settle(p.status, p.why);  // NoChange, Failed
    }
    if (std::string why = gate.check_rate(name, now); !why.empty())
      return settle(KnobResult::Status::RateLimited, why);
    return std::move(p.write);
  }

  // Opens the journal before the first write: takes the state directory's
  // lock and restores what a crashed earlier run left. "" or why not.
  std::string ensure_journal() {
    if (journal_ready) return "";
    if (std::string err = store.lock(); !err.empty()) return err;
    JournalState left;
    std::string message, aside;
    switch (store.load(&left, &message, &aside, &scope)) {
      case JournalStore::Load::Missing:
        break;
      case JournalStore::Load::KeptAside:
        // Unusable journal from an earlier run: it is kept aside for the admin.
        log::error("knobs: " + message);
        break;
      case JournalStore::Load::Refused:
        log::error("knobs: " + message);
        return message;  // left in place: refuse to overwrite it
      case JournalStore::Load::Ok:
        if (!left.empty()) {
          log::warn("knobs: journal left by an earlier run found in " + store.dir() +
                    "; restoring it before changing anything");
          RestoreReport r;
          restore_state(&left, false, scope, &r);
          for (const auto& i : r.items)
            log::info("knobs: recovered " + i.knob + " (" + i.instance + "): " + i.outcome +
                      (i.detail.empty() ? "" : " — " + i.detail));
          // Entries that failed stay journalled (their originals are the true ones).
          journal = left;
        }
        break;
    }
    journal.boot_id = read_boot_id();
    if (std::string err = commit(journal); !err.empty()) return err;
    journal_ready = true;
    return "";
  }

  // Drops what no restore could use (threads and processes that have exited:
  // a recycled id has another start time), so the journal stays as large as
  // the live target, not its history. True when anything went.
  bool prune(JournalState* st, bool keep_applied = true) const {
    bool changed = false;
    for (KnobBackend* b : backends) changed = b->prune(st, keep_applied) || changed;
    return changed;
  }

  // Every commit prunes first.
  std::string commit(JournalState& st) {
    prune(&st);
    return store.commit(st);
  }

  // Journal first: the originals of everything `writes` change and the values
  // they write, durably, before any of them runs. "" or why not.
  std::string journal_before(const std::vector<const PlannedWrite*>& writes, bool* unavailable) {
    if (std::string err = ensure_journal(); !err.empty()) {
      *unavailable = true;
      return err;
    }
    JournalState next = journal;
    for (const PlannedWrite* w : writes) w->journal(&next);
    if (std::string err = commit(next); !err.empty()) return err;
    journal = std::move(next);
    env.step("journal-committed");
    return "";
  }

  // Commits what the in-memory journal learned since (read-backs, exits).
  void recommit(const std::string& when) {
    if (std::string err = commit(journal); !err.empty())
      log::warn("knobs: journal update " + (when.empty() ? "" : when + " ") + "failed: " + err);
  }
};

// ------------------------------------------------------------------ public

KnobManager::KnobManager(KnobsConfig config, const TargetResolver* target, const Clock* clock)
    : cfg_(std::move(config)), impl_(std::make_unique<Impl>(cfg_, target, clock)) {}

KnobManager::~KnobManager() {
  Impl& m = *impl_;
  if (!m.journal_ready || m.journal.empty()) return;
  if (cfg_.restore_on_exit) {
    auto r = restore_all();
    log::info("knobs: restored on exit: " + std::to_string(r.count("restored")) + " restored, " +
              std::to_string(r.count("failed")) + " failed");
    return;
  }
  // What stays behind must be what a later restore can act on: no entry for
  // tasks that are all gone (no new thread is tuned after this).
  if (m.prune(&m.journal, /*keep_applied=*/false))
    if (std::string err = m.store.commit(m.journal); !err.empty())
      log::warn("knobs: journal update on exit failed: " + err);
  if (m.journal.empty()) {
    log::info("knobs: every tuned task has exited; nothing left to restore, journal removed");
    return;
  }
  log::info(
      "knobs: keeping the current settings on exit (restore_on_exit=false); "
      "`specactd restore` undoes them from " +
      m.store.path());
}

std::vector<KnobInfo> KnobManager::catalogue() {
  Impl& m = *impl_;
  std::vector<KnobInfo> out;
  for (const auto& d : m.defs) {
    KnobInfo k = d.info;
    KnobProbe p = m.backend_for(d).probe(d);
    k.current = p.current;
    if (d.default_slice_divisor > 0 && m.env.slice_probe().default_slice_ns > 0)
      k.default_value = m.env.slice_probe().default_slice_ns / d.default_slice_divisor;
    if (!m.gate.allowed(d.info.name)) {
      k.available = false;
      k.unavailable_reason = "not in the allow-list (knobs.allow / knobs.deny)";
    } else if (m.yielded.count(d.info.name)) {
      k.available = false;
      k.unavailable_reason = "yielded: " + m.yielded[d.info.name];
    } else {
      k.available = p.reason.empty();
      k.unavailable_reason = p.reason;
    }
    out.push_back(std::move(k));
  }
  return out;
}

Config KnobManager::read_current() {
  Impl& m = *impl_;
  Config c;
  for (const auto& d : m.defs) {
    if (!m.gate.allowed(d.info.name) || m.yielded.count(d.info.name)) continue;
    KnobProbe p = m.backend_for(d).probe(d);
    if (p.reason.empty() && p.current) c[d.info.name] = *p.current;
  }
  return c;
}

std::set<std::string> KnobManager::yielded() const {
  std::set<std::string> out;
  for (const auto& [k, v] : impl_->yielded) out.insert(k);
  return out;
}

bool KnobManager::has_managed() const { return impl_->journal_ready && !impl_->journal.empty(); }

ApplyResult KnobManager::apply(const Config& desired, const std::string& who_why) {
  Impl& m = *impl_;
  ApplyResult out;
  std::vector<Pending> pending;
  int64_t now = m.clock->now_ns();
  for (const auto& [name, requested] : desired) {
    KnobResult& r = out.results.emplace_back();
    r.knob = name;
    r.requested = requested;
    if (auto w = m.plan(name, requested, now, &r)) {
      pending.push_back({out.results.size() - 1, r.read_back, std::move(w)});
      r.read_back.reset();  // from here on: what the write reads back
    }
  }
  if (pending.empty()) return out;

  std::vector<const PlannedWrite*> writes;
  for (const auto& p : pending) writes.push_back(p.write.get());
  bool unavailable = false;
  if (std::string err = m.journal_before(writes, &unavailable); !err.empty()) {
    if (!unavailable) log::error("knobs: journal write failed, no knob changed: " + err);
    for (auto& p : pending) {
      KnobResult& r = out.results[p.idx];
      r.status = KnobResult::Status::Failed;
      r.error = std::string(unavailable ? "journal unavailable (" : "journal not written (") + err +
                "); nothing was changed";
      r.read_back = p.before;  // still in force
    }
    return out;
  }

  bool recommit = false;
  for (auto& p : pending) {
    KnobResult& r = out.results[p.idx];
    std::string failure = p.write->write(&m.journal, &r, &recommit);
    m.gate.wrote(r.knob, now);
    if (failure.empty()) {
      r.status = KnobResult::Status::Applied;
      // The runtime logs each decision once at info; this per-write line is detail.
      log::debug("knobs: " + r.knob + " = " + format_knob_value(m.find(r.knob)->info, *r.written) +
                 (r.clamped ? " (clamped from " + std::to_string(r.requested) + ")" : "") +
                 (r.read_back && *r.read_back != *r.written
                      ? " (kernel reads back " + std::to_string(*r.read_back) + ")"
                      : "") +
                 " by " + who_why);
    } else {
      r.status = KnobResult::Status::Failed;
      r.error = failure;
      log::warn("knobs: " + r.knob + ": " + failure);
    }
  }
  if (recommit) m.recommit("after write");
  return out;
}

std::vector<YieldEvent> KnobManager::check_yielded() {
  Impl& m = *impl_;
  std::vector<YieldEvent> events;
  if (!m.journal_ready) return events;
  bool changed = false;
  for (KnobBackend* b : m.backends) changed = b->check_yielded(&m.journal, &events) || changed;
  changed = m.prune(&m.journal) || changed;
  if (changed) m.recommit("");
  return events;
}

size_t KnobManager::reapply_to_new_threads() {
  Impl& m = *impl_;
  if (!m.journal_ready) return 0;
  size_t adopted = 0;
  std::vector<std::unique_ptr<PlannedWrite>> writes;
  for (KnobBackend* b : m.backends)
    for (auto& w : b->plan_new_instances(m.journal, &adopted)) writes.push_back(std::move(w));
  // Forget threads and processes that exited: under churn (a comm target
  // whose processes come and go) they would otherwise pile up.
  if (writes.empty() && !m.prune(&m.journal)) return 0;
  std::vector<const PlannedWrite*> plain;
  for (const auto& w : writes) plain.push_back(w.get());
  bool unavailable = false;
  if (std::string err = m.journal_before(plain, &unavailable); !err.empty()) {
    log::warn("knobs: not applying settings to new threads: journal write failed: " + err);
    return 0;
  }
  bool recommit = false;
  for (auto& w : writes) {
    KnobResult ignored;  // a thread that exits or refuses now is tried again next window
    w->write(&m.journal, &ignored, &recommit);
  }
  if (recommit) m.recommit("after write");
  if (adopted)
    log::debug("knobs: " + std::to_string(adopted) + " new task(s) brought under management");
  return adopted;
}

RestoreReport KnobManager::restore_all() {
  Impl& m = *impl_;
  RestoreReport report;
  report.journal_path = m.store.path();
  if (std::string err = m.ensure_journal(); !err.empty()) {
    report.ok = false;
    report.problems.push_back(err);
    return report;
  }
  if (m.journal.empty()) {
    report.nothing_to_do = true;
    return report;
  }
  restore_state(&m.journal, false, m.scope, &report);
  if (std::string err = m.commit(m.journal); !err.empty()) {
    report.ok = false;
    report.problems.push_back("could not update the journal: " + err);
  }
  if (report.count("failed")) {
    report.ok = false;
    report.problems.push_back(std::to_string(report.count("failed")) +
                              " knob instance(s) could not be restored; they stay journalled");
  }
  for (KnobBackend* b : m.backends) b->forget_all();
  m.gate.forget_writes();
  return report;
}

RestoreReport KnobManager::recover_leftover() {
  Impl& m = *impl_;
  RestoreReport report;
  report.journal_path = m.store.path();
  if (m.journal_ready) {
    report.nothing_to_do = true;
    return report;
  }
  if (std::string err = m.store.lock(); !err.empty()) {
    report.ok = false;
    report.problems.push_back(err);
    return report;
  }
  std::string message, aside;
  JournalState left;
  switch (m.store.load(&left, &message, &aside, &m.scope)) {
    case JournalStore::Load::Missing:
      report.nothing_to_do = true;
      break;
    case JournalStore::Load::KeptAside:
    case JournalStore::Load::Refused:
      report.ok = false;
      report.problems.push_back(message);
      break;
    case JournalStore::Load::Ok:
      restore_state(&left, false, m.scope, &report);
      if (std::string err = m.commit(left); !err.empty()) {
        report.ok = false;
        report.problems.push_back("could not update the journal: " + err);
      }
      if (report.count("failed") || report.count("refused")) report.ok = false;
      m.journal = left;  // failed entries stay managed and journalled
      m.journal.boot_id = read_boot_id();
      m.journal_ready = aside.empty() || !left.empty();
      if (report.items.empty()) report.nothing_to_do = true;
      break;
  }
  for (const auto& a : m.store.kept_aside())
    report.notes.push_back("earlier journal kept aside, needs review: " + a);
  if (report.problems.empty() && !m.journal_ready) {
    m.journal.boot_id = read_boot_id();
    m.journal_ready = true;
  }
  return report;
}

}  // namespace specact
