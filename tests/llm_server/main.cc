// specact-test-llm: the test LLM server as a program (for benchmarks and manual
// runs). Prints the chosen port on the first line of stdout, then serves until
// SIGINT/SIGTERM.
//   specact-test-llm [--port N] [--config FILE] [--speculator-latency-ms N]
//                    [--actor-latency-ms N] [--when-empty policy|error]
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "llm_server.h"

int main(int argc, char** argv) {
  using specact::testing::LlmServerOptions;
  LlmServerOptions opts;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
        return argv[++i];
      };
      if (a == "--port") {
        opts.port = static_cast<uint16_t>(std::stoi(next()));
      } else if (a == "--config") {
        std::string path = next();
        std::ifstream f(path);
        if (!f) throw std::invalid_argument("cannot read " + path);
        uint16_t port = opts.port;
        auto latency = opts.latency_ms;
        opts = LlmServerOptions::from_json(nlohmann::json::parse(f));
        if (port) opts.port = port;
        for (auto& [k, v] : latency) opts.latency_ms[k] = v;
      } else if (a == "--speculator-latency-ms") {
        opts.latency_ms["speculator"] = std::stoll(next());
      } else if (a == "--actor-latency-ms") {
        opts.latency_ms["actor"] = std::stoll(next());
      } else if (a == "--when-empty") {
        opts.when_empty = next();
      } else if (a == "--help" || a == "-h") {
        std::printf(
            "usage: specact-test-llm [--port N] [--config FILE] [--speculator-latency-ms N]\n"
            "                        [--actor-latency-ms N] [--when-empty policy|error]\n");
        return 0;
      } else {
        throw std::invalid_argument("unknown argument " + a);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "specact-test-llm: %s\n", e.what());
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before threads start: only sigwait sees them
  try {
    specact::testing::TestLlmServer server(opts);
    std::cout << server.port() << std::endl;
    std::fprintf(stderr, "specact-test-llm: serving %s\n", server.base_url().c_str());
    int sig = 0;
    sigwait(&set, &sig);
    server.stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "specact-test-llm: %s\n", e.what());
    return 1;
  }
  return 0;
}
