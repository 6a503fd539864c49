// Helpers of the observability tests: programs the tests need (promtool,
// prometheus), and running promtool on exposition text.
#pragma once

#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "test_support.h"

namespace specact::testing {

inline std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t at = 0;
  while (at <= dirs.size()) {
    size_t colon = dirs.find(':', at);
    if (colon == std::string::npos) colon = dirs.size();
    std::string candidate = dirs.substr(at, colon - at) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    at = colon + 1;
  }
  return "";
}

// A TCP port on 127.0.0.1 that was free a moment ago (for a server the test
// starts next; the kernel does not hand it out again at once).
inline uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0)
    port = ntohs(sa.sin_port);
  close(fd);
  return port;
}

struct HttpReply {
  long status = 0;  // 0: no answer
  std::string body;
};

// GET over libcurl, never through a proxy (the tests talk to 127.0.0.1 only).
inline HttpReply http_get(const std::string& url, long timeout_ms = 10'000) {
  HttpReply r;
  CURL* c = curl_easy_init();
  if (!c) return r;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(
      c, CURLOPT_WRITEFUNCTION, +[](char* p, size_t size, size_t n, void* out) {
        static_cast<std::string*>(out)->append(p, size * n);
        return size * n;
      });
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_cleanup(c);
  return r;
}

// A query string value, percent-encoded.
inline std::string url_encode(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char ch : s) {
    if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      std::snprintf(buf, sizeof buf, "%%%02X", ch);
      out += buf;
    }
  }
  return out;
}

// A Grafana dashboard query as Grafana sends it with its template variables
// ($instance, $knob) at "All".
inline std::string grafana_query_for_all(std::string q) {
  for (const std::string var : {"$instance", "$knob"})
    for (size_t at = q.find(var); at != std::string::npos; at = q.find(var))
      q.replace(at, var.size(), ".*");
  return q;
}

}  // namespace specact::testing

// Debian's prometheus package (scripts/install-deps.sh) provides both
// programs; without it the test skips, and fails under SPECACT_REQUIRE_PRIVILEGED=1.
#define SPECACT_REQUIRE_PROGRAM(name)                                \
  do {                                                               \
    if (::specact::testing::find_program(name).empty()) {            \
      if (::specact::testing::privileged_required())                 \
        FAIL() << name << " not found (apt install prometheus) but " \
               << "SPECACT_REQUIRE_PRIVILEGED=1";                    \
      GTEST_SKIP() << name << " not found (apt install prometheus)"; \
    }                                                                \
  } while (0)

namespace specact::observe {

struct PromtoolResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// `promtool check metrics` reads the exposition on stdin.
inline PromtoolResult promtool_check_metrics(const std::string& text) {
  char path[] = "/tmp/specact-promtool-XXXXXX";
  int fd = mkstemp(path);
  PromtoolResult r;
  if (fd < 0) return r;
  if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    close(fd);
    unlink(path);
    return r;
  }
  close(fd);
  FILE* p = popen(("promtool check metrics < " + std::string(path) + " 2>&1").c_str(), "r");
  if (p) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    int status = pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  unlink(path);
  return r;
}

}  // namespace specact::observe
