// polkit authorisation (daemon/dbus/polkit_authority.*) against a fake
// org.freedesktop.PolicyKit1 on a private system-type bus: the real
// CheckAuthorization wire format, the verdicts, no polkit on the bus, and the
// surface wrapper that guards the mutating commands.
#include "dbus/polkit_authority.h"

#include <gtest/gtest.h>
#include <sdbus-c++/sdbus-c++.h>

#include <atomic>
#include <mutex>

#include "bus_fixture.h"
#include "test_support.h"

namespace specact::testing {
namespace {

using Subject = sdbus::Struct<std::string, std::map<std::string, sdbus::Variant>>;
using AuthResult = sdbus::Struct<bool, bool, std::map<std::string, std::string>>;

// Answers CheckAuthorization with `allow` and records what it was asked.
class FakePolkit {
 public:
  explicit FakePolkit(const std::string& address)
      : conn_(sdbus::createSessionBusConnectionWithAddress(address)) {
    conn_->requestName("org.freedesktop.PolicyKit1");
    object_ = sdbus::createObject(*conn_, "/org/freedesktop/PolicyKit1/Authority");
    object_->registerMethod("CheckAuthorization")
        .onInterface("org.freedesktop.PolicyKit1.Authority")
        .implementedAs([this](const Subject& subject, const std::string& action,
                              const std::map<std::string, std::string>&, const uint32_t& flags,
                              const std::string&) {
          std::lock_guard<std::mutex> lock(mu_);
          ++calls;
          subject_kind = subject.get<0>();
          auto it = subject.get<1>().find("name");
          subject_name = it == subject.get<1>().end() ? "" : it->second.get<std::string>();
          asked_action = action;
          asked_flags = flags;
          return AuthResult(allow.load(), !allow.load(), {});
        });
    object_->finishRegistration();
    conn_->enterEventLoopAsync();
  }
  ~FakePolkit() {
    object_.reset();
    conn_->leaveEventLoop();
  }

  std::atomic<bool> allow{false};
  int calls = 0;
  std::string subject_kind, subject_name, asked_action;
  uint32_t asked_flags = 99;
  std::mutex mu_;

 private:
  std::unique_ptr<sdbus::IConnection> conn_;
  std::unique_ptr<sdbus::IObject> object_;
};

// A client connection whose unique name is the "caller".
std::string caller_name(sdbus::IConnection& c) { return c.getUniqueName(); }

TEST(PolkitAuthority, NoPolkitOnTheBusLeavesItToTheBusPolicy) {
  PrivateBus bus;
  auto client = sdbus::createSessionBusConnectionWithAddress(bus.address());
  PolkitAuthority auth({bus.address(), /*trust_root=*/false});
  auto d = auth.check(caller_name(*client));
  EXPECT_EQ(d.verdict, PolkitAuthority::Verdict::kNoPolkit) << d.detail;
  EXPECT_TRUE(d.allowed());
}

TEST(PolkitAuthority, AsksPolkitAboutTheCallerAndFollowsTheAnswer) {
  PrivateBus bus;
  FakePolkit polkit(bus.address());
  auto client = sdbus::createSessionBusConnectionWithAddress(bus.address());
  PolkitAuthority auth({bus.address(), /*trust_root=*/false});

  auto no = auth.check(caller_name(*client));
  EXPECT_EQ(no.verdict, PolkitAuthority::Verdict::kDenied) << no.detail;
  EXPECT_FALSE(no.allowed());
  {
    std::lock_guard<std::mutex> lock(polkit.mu_);
    EXPECT_EQ(polkit.subject_kind, "system-bus-name");
    EXPECT_EQ(polkit.subject_name, caller_name(*client));
    EXPECT_EQ(polkit.asked_action, "org.specact.manage");
    EXPECT_EQ(polkit.asked_flags, 0u);  // never interactive
  }
  polkit.allow = true;
  auto yes = auth.check(caller_name(*client));
  EXPECT_EQ(yes.verdict, PolkitAuthority::Verdict::kAllowed) << yes.detail;
  EXPECT_TRUE(yes.allowed());
}

TEST(PolkitAuthority, RootIsNotAskedWhenTrusted) {
  SPECACT_REQUIRE_ROOT_BPF();  // the caller must be root
  PrivateBus bus;
  FakePolkit polkit(bus.address());
  auto client = sdbus::createSessionBusConnectionWithAddress(bus.address());
  PolkitAuthority auth({bus.address(), /*trust_root=*/true});
  auto d = auth.check(caller_name(*client));
  EXPECT_EQ(d.verdict, PolkitAuthority::Verdict::kRoot) << d.detail;
  std::lock_guard<std::mutex> lock(polkit.mu_);
  EXPECT_EQ(polkit.calls, 0);
}

TEST(PolkitAuthority, SurfaceGuardsCommandsAndPassesReads) {
  PrivateBus bus;
  FakePolkit polkit(bus.address());
  auto client = sdbus::createSessionBusConnectionWithAddress(bus.address());
  FakeSurface inner;
  auto guarded = make_polkit_surface(
      inner, std::make_shared<PolkitAuthority>(PolkitAuthority::Options{bus.address(), false}),
      [&] { return caller_name(*client); });

  EXPECT_NO_THROW(guarded->status());
  EXPECT_NO_THROW(guarded->list_knobs());
  try {
    guarded->start();
    ADD_FAILURE() << "start was not refused";
  } catch (const sdbus::Error& e) {
    EXPECT_EQ(e.getName(), "org.freedesktop.DBus.Error.AccessDenied");
  }
  EXPECT_THROW(guarded->pin("task.slice_us", 500), sdbus::Error);
  EXPECT_EQ(inner.status().state, "stopped");
  polkit.allow = true;
  guarded->start();
  EXPECT_EQ(inner.status().state, "running");
}

}  // namespace
}  // namespace specact::testing
