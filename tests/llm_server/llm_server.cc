#include "llm_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "agents/policy.h"
#include "agents/prompts.h"

namespace specact::testing {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

LlmStep LlmStep::reply(std::string content) {
  LlmStep s;
  s.kind = Kind::Reply;
  s.content = std::move(content);
  return s;
}

LlmStep LlmStep::policy() { return LlmStep{}; }

LlmStep LlmStep::make_fault(std::string fault) {
  LlmStep s;
  s.kind = Kind::Fault;
  s.fault = std::move(fault);
  return s;
}

LlmStep LlmStep::from_json(const json& j) {
  LlmStep s;
  if (j.contains("reply")) {
    s.kind = Kind::Reply;
    s.content = j["reply"].is_string() ? j["reply"].get<std::string>() : j["reply"].dump();
  } else if (j.contains("fault")) {
    s.kind = Kind::Fault;
    s.fault = j["fault"].get<std::string>();
  } else if (j.value("policy", false)) {
    s.kind = Kind::Policy;
  } else {
    throw std::invalid_argument("script step needs reply, fault or policy: " + j.dump());
  }
  s.retry_after_s = j.value("retry_after", 1);
  s.bytes = j.value("bytes", s.bytes);
  s.slow_total_ms = j.value("slow_total_ms", s.slow_total_ms);
  s.delay_ms = j.value("delay_ms", int64_t{-1});
  return s;
}

LlmServerOptions LlmServerOptions::from_json(const json& j) {
  LlmServerOptions o;
  o.port = j.value("port", 0);
  o.when_empty = j.value("when_empty", "policy");
  if (j.contains("prompt_cache")) {
    const json& c = j["prompt_cache"];
    o.prompt_cache.min_tokens = c.value("min_tokens", o.prompt_cache.min_tokens);
    o.prompt_cache.block_tokens = c.value("block_tokens", o.prompt_cache.block_tokens);
    o.prompt_cache.entries = c.value("entries", o.prompt_cache.entries);
  }
  if (j.contains("latency_ms"))
    for (const auto& [role, ms] : j["latency_ms"].items()) o.latency_ms[role] = ms.get<int64_t>();
  if (j.contains("script"))
    for (const auto& [role, steps] : j["script"].items())
      for (const auto& s : steps) o.script[role].push_back(LlmStep::from_json(s));
  return o;
}

namespace {

bool send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string status_text(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
  }
  return "Status";
}

std::string response_head(int code, size_t length, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(code) + " " + status_text(code) +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(length) +
         "\r\nConnection: close\r\n" + extra + "\r\n";
}

bool send_response(int fd, int code, const std::string& body, const std::string& extra = "") {
  return send_all(fd, response_head(code, body.size(), extra) + body);
}

std::string error_body(const std::string& msg, const std::string& type) {
  return json{{"error", {{"message", msg}, {"type", type}}}}.dump();
}

json envelope(const std::string& content, uint64_t prompt_tokens, uint64_t cached_tokens,
              bool with_usage = true) {
  static std::atomic<uint64_t> id{0};
  json j = {{"id", "chatcmpl-test-" + std::to_string(++id)},
            {"object", "chat.completion"},
            {"created", 1700000000},
            {"model", "specact-test"},
            {"choices",
             {{{"index", 0},
               {"message", {{"role", "assistant"}, {"content", content}}},
               {"finish_reason", "stop"}}}}};
  if (with_usage)
    j["usage"] = {{"prompt_tokens", prompt_tokens},
                  {"completion_tokens", tokens_of(content.size())},
                  {"total_tokens", prompt_tokens + tokens_of(content.size())},
                  {"prompt_tokens_details", {{"cached_tokens", cached_tokens}}}};
  return j;
}

}  // namespace

TestLlmServer::TestLlmServer(LlmServerOptions options)
    : options_(std::move(options)), prompt_cache_(options_.prompt_cache) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("socket: " + std::string(strerror(errno)));
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // never reachable from outside
  addr.sin_port = htons(options_.port);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    std::string err = strerror(errno);
    ::close(listen_fd_);
    throw std::runtime_error("bind/listen 127.0.0.1:" + std::to_string(options_.port) + ": " + err);
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

TestLlmServer::~TestLlmServer() { stop(); }

std::string TestLlmServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/v1";
}

void TestLlmServer::stop() {
  if (stop_.exchange(true)) return;
  if (acceptor_.joinable()) acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

void TestLlmServer::push(const std::string& role, LlmStep step) {
  std::lock_guard<std::mutex> lock(mu_);
  options_.script[role].push_back(std::move(step));
}

void TestLlmServer::set_latency(const std::string& role, int64_t ms) {
  std::lock_guard<std::mutex> lock(mu_);
  options_.latency_ms[role] = ms;
}

LlmServerStats TestLlmServer::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

std::string TestLlmServer::detect_role(const json& request) {
  if (!request.contains("messages") || !request["messages"].is_array()) return "unknown";
  std::string system, user;
  for (const auto& m : request["messages"]) {
    if (!m.is_object() || !m.contains("content") || !m["content"].is_string()) continue;
    (m.value("role", "") == "system" ? system : user) += m["content"].get<std::string>();
  }
  if (auto state = extract_state(user);
      state && state->contains("role") && (*state)["role"].is_string())
    return (*state)["role"].get<std::string>();
  if (system.find("ROLE: actor") != std::string::npos) return "actor";
  if (system.find("ROLE: speculator") != std::string::npos) return "speculator";
  return "unknown";
}

void TestLlmServer::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    workers_.emplace_back([this, fd] {
      serve(fd);
      ::close(fd);
    });
  }
}

// Sleeps in slices; false if the server stops or (with fd) the client hangs up.
bool TestLlmServer::sleep_unless_stopped(int64_t ms, int fd) {
  auto until = SteadyClock::now() + std::chrono::milliseconds(ms);
  while (!stop_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - SteadyClock::now());
    if (left.count() <= 0) return true;
    int slice = static_cast<int>(std::min<int64_t>(left.count(), 20));
    if (fd >= 0) {
      pollfd p{fd, POLLIN | POLLRDHUP, 0};
      if (::poll(&p, 1, slice) > 0) {
        char c;
        if (::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) return false;  // client went away
        std::this_thread::sleep_for(std::chrono::milliseconds(slice));
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(slice));
    }
  }
  return false;
}

void TestLlmServer::serve(int fd) {
  // Read the head, then Content-Length bytes of body.
  std::string buf;
  size_t head_end = std::string::npos;
  char chunk[65536];
  auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  while (head_end == std::string::npos) {
    if (stop_ || SteadyClock::now() > deadline || buf.size() > (1 << 20)) return;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return;
    buf.append(chunk, static_cast<size_t>(n));
    if (static_cast<unsigned char>(buf[0]) == 0x16) {
      // A TLS ClientHello: this server speaks plain HTTP only, as a real one would say.
      send_response(fd, 400, error_body("plain HTTP server", "invalid_request_error"));
      return;
    }
    head_end = buf.find("\r\n\r\n");
  }
  std::string head = buf.substr(0, head_end);
  std::string body = buf.substr(head_end + 4);
  std::string method, path;
  {
    size_t sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos) {
      send_response(fd, 400, error_body("bad request line", "invalid_request_error"));
      return;
    }
    method = head.substr(0, sp1);
    path = head.substr(sp1 + 1, sp2 - sp1 - 1);
  }
  size_t content_length = 0;
  std::string authorization;
  {
    size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos < head.size()) {
      size_t next = head.find("\r\n", pos + 2);
      std::string line =
          head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      std::string lower = line;
      for (auto& ch : lower) ch = static_cast<char>(::tolower(static_cast<unsigned char>(ch)));
      if (lower.rfind("content-length:", 0) == 0) content_length = std::stoul(line.substr(15));
      if (lower.rfind("authorization:", 0) == 0) {
        authorization = line.substr(14);
        authorization.erase(0, authorization.find_first_not_of(' '));
      }
      pos = next;
    }
  }
  if (content_length > (64u << 20)) {
    send_response(fd, 400, error_body("request too large", "invalid_request_error"));
    return;
  }
  while (body.size() < content_length) {
    if (stop_ || SteadyClock::now() > deadline) return;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return;
    body.append(chunk, static_cast<size_t>(n));
  }

  if (method == "GET" && (path == "/health" || path == "/v1/models")) {
    send_response(fd, 200, R"({"object":"list","data":[{"id":"specact-test","object":"model"}]})");
    return;
  }
  if (method != "POST" || (path != "/v1/chat/completions" && path != "/chat/completions")) {
    send_response(fd, 404, error_body("no route " + method + " " + path, "not_found"));
    return;
  }
  json request = json::parse(body, nullptr, false);
  if (request.is_discarded() || !request.is_object()) {
    send_response(fd, 400, error_body("request body is not JSON", "invalid_request_error"));
    return;
  }
  std::string role = detect_role(request);
  size_t prompt_chars = 0;
  std::string user;
  std::vector<std::pair<std::string, std::string>> messages;
  if (request.contains("messages") && request["messages"].is_array())
    for (const auto& m : request["messages"])
      if (m.is_object() && m.contains("content") && m["content"].is_string()) {
        prompt_chars += m["content"].get_ref<const std::string&>().size();
        if (m.value("role", "") != "system") user += m["content"].get<std::string>();
        messages.emplace_back(m.value("role", ""), m["content"].get<std::string>());
      }
  const uint64_t prompt_tokens = tokens_of(prompt_chars);
  const uint64_t cached_tokens =
      std::min(prompt_tokens, prompt_cache_.lookup_and_store(prompt_text(messages)));

  LlmStep step;
  int64_t latency = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.requests++;
    stats_.per_role[role]++;
    stats_.last_body = body;
    stats_.last_authorization = authorization;
    stats_.paths.push_back(path);
    auto take = [&](const std::string& key) {
      auto it = options_.script.find(key);
      if (it == options_.script.end() || it->second.empty()) return false;
      step = it->second.front();
      it->second.pop_front();
      return true;
    };
    if (!take(role) && !take("any")) {
      if (options_.when_empty == "policy")
        step = LlmStep::policy();
      else
        step = LlmStep::make_fault("500");
    }
    if (step.kind == LlmStep::Kind::Fault) stats_.faults[step.fault]++;
    auto lat = options_.latency_ms.find(role);
    latency =
        step.delay_ms >= 0 ? step.delay_ms : (lat == options_.latency_ms.end() ? 0 : lat->second);
  }
  if (latency > 0 && !sleep_unless_stopped(latency, fd)) return;

  if (step.kind == LlmStep::Kind::Policy) {
    auto state = extract_state(user);
    if (!state) {
      send_response(
          fd, 400,
          error_body("policy mode: no <state> block in the prompt", "invalid_request_error"));
      return;
    }
    std::string content;
    try {
      content = reply_to_json(builtin_propose(state_from_json(*state))).dump();
    } catch (const std::exception& e) {
      send_response(fd, 400,
                    error_body(std::string("policy mode: ") + e.what(), "invalid_request_error"));
      return;
    }
    send_response(fd, 200, envelope(content, prompt_tokens, cached_tokens).dump());
    return;
  }
  if (step.kind == LlmStep::Kind::Reply) {
    send_response(fd, 200, envelope(step.content, prompt_tokens, cached_tokens).dump());
    return;
  }
  const std::string& f = step.fault;
  if (f == "500") {
    send_response(fd, 500, error_body("injected failure", "server_error"));
  } else if (f == "429") {
    send_response(fd, 429, error_body("rate limited", "rate_limit_error"),
                  "Retry-After: " + std::to_string(step.retry_after_s) + "\r\n");
  } else if (f == "401") {
    send_response(fd, 401, error_body("Incorrect API key provided", "invalid_request_error"));
  } else if (f == "400_response_format") {
    send_response(fd, 400,
                  error_body("response_format json_schema is not supported by this model",
                             "invalid_request_error"));
  } else if (f == "hang") {
    sleep_unless_stopped(INT32_MAX, fd);
  } else if (f == "slow_body") {
    std::string payload =
        envelope(reply_to_json(
                     builtin_propose(state_from_json(extract_state(user).value_or(json::object()))))
                     .dump(),
                 prompt_tokens, cached_tokens)
            .dump();
    if (!send_all(fd, response_head(200, payload.size()))) return;
    size_t pieces = 20;
    size_t per = (payload.size() + pieces - 1) / pieces;
    for (size_t off = 0; off < payload.size(); off += per) {
      if (!sleep_unless_stopped(step.slow_total_ms / static_cast<int64_t>(pieces))) return;
      if (!send_all(fd, payload.substr(off, per))) return;
    }
  } else if (f == "malformed_json") {
    send_response(fd, 200, "{\"choices\": [this is not json");
  } else if (f == "huge_body" || f == "huge_body_chunked") {
    std::string head =
        f == "huge_body"
            ? response_head(200, step.bytes)
            : "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
    if (!send_all(fd, head)) return;
    std::string block(1 << 16, ' ');
    block[0] = '{';
    for (uint64_t sent = 0; sent < step.bytes && !stop_; sent += block.size())
      if (!send_all(fd, block)) return;
  } else if (f == "reset") {
    linger l{1, 0};  // close with RST instead of FIN
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  } else if (f == "invalid_utf8") {
    std::string payload = envelope("PLACEHOLDER", prompt_tokens, cached_tokens).dump();
    payload.replace(payload.find("PLACEHOLDER"), 11, "{\"candidates\": [\xff\xfe\xc3]}");
    send_response(fd, 200, payload);
  } else if (f == "truncated_json") {
    std::string payload =
        envelope(R"({"candidates":[{"config":{},"confidence":0.5}]})", prompt_tokens, cached_tokens)
            .dump();
    send_response(fd, 200, payload.substr(0, payload.size() / 2));
  } else if (f == "truncated_body") {
    std::string payload = envelope(R"({"candidates":[]})", prompt_tokens, cached_tokens).dump();
    send_all(fd, response_head(200, payload.size()) + payload.substr(0, payload.size() / 2));
  } else if (f == "empty_choices") {
    send_response(fd, 200, R"({"id":"x","object":"chat.completion","choices":[]})");
  } else if (f == "no_usage") {
    auto state = extract_state(user);
    std::string content =
        state ? reply_to_json(builtin_propose(state_from_json(*state))).dump() : "{}";
    send_response(fd, 200,
                  envelope(content, prompt_tokens, cached_tokens, /*with_usage=*/false).dump());
  } else {
    send_response(fd, 500, error_body("unknown injected fault " + f, "server_error"));
  }
}

}  // namespace specact::testing
