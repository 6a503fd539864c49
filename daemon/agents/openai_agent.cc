#include "agents/openai_agent.h"

#include <curl/curl.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "agents/validate.h"
#include "common/log.h"

namespace specact {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::once_flag curl_init_once;

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t\r\n");
  auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string read_key(const AgentConfig& c, const std::string& role) {
  if (!c.api_key_env.empty()) {
    const char* v = std::getenv(c.api_key_env.c_str());
    if (!v || trim(v).empty())
      throw AgentConfigError(role + ".api_key_env: environment variable " + c.api_key_env +
                             " is not set or empty");
    return trim(v);
  }
  if (!c.api_key_file.empty()) {
    std::ifstream f(c.api_key_file);
    std::string line;
    if (!f || !std::getline(f, line) || trim(line).empty())
      throw AgentConfigError(role + ".api_key_file: cannot read a key from " + c.api_key_file);
    struct stat st {};
    if (stat(c.api_key_file.c_str(), &st) == 0 && (st.st_mode & 0077))
      log::warn(role + ": API key file " + c.api_key_file +
                " is readable by group or others; chmod 600 it");
    return trim(line);
  }
  return "";  // local servers (llama.cpp, Ollama, vLLM) usually need none
}

json reply_schema(const AgentContext& ctx) {
  json knob_props = json::object();
  json required = json::array();
  for (const auto& k : ctx.knobs) {
    knob_props[k.name] = {{"type", "integer"}};
    required.push_back(k.name);
  }
  json candidate = {{"type", "object"},
                    {"additionalProperties", false},
                    {"required", {"config", "confidence", "rationale"}},
                    {"properties",
                     {{"config",
                       {{"type", "object"},
                        {"additionalProperties", false},
                        {"required", required},
                        {"properties", knob_props}}},
                      {"confidence", {{"type", "number"}}},
                      {"rationale", {{"type", "string"}}}}}};
  return {{"type", "object"},
          {"additionalProperties", false},
          {"required", {"candidates", "wants_more_evidence"}},
          {"properties",
           {{"candidates", {{"type", "array"}, {"items", candidate}}},
            {"wants_more_evidence", {{"type", "boolean"}}}}}};
}

size_t write_cb(char* data, size_t size, size_t nmemb, void* user);
size_t header_cb(char* data, size_t size, size_t nmemb, void* user);
int socket_cb(CURL*, curl_socket_t s, int what, void* self, void*);
int timer_cb(CURLM*, long timeout_ms, void* self);

}  // namespace

struct OpenAIAgent::Call {
  AgentContext ctx;
  Callback done;
  std::string body;
  Clock::time_point started;
  int attempt = 0;  // attempts made so far (retries = attempt - 1)
  // Current transfer.
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string response;
  size_t max_bytes = 0;
  bool too_large = false;
  std::string retry_after;
  std::vector<std::string> attempt_errors;
};

namespace {

size_t write_cb(char* data, size_t size, size_t nmemb, void* user) {
  auto* call = static_cast<OpenAIAgent::Call*>(user);
  size_t n = size * nmemb;
  if (call->response.size() + n > call->max_bytes) {
    call->too_large = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  call->response.append(data, n);
  return n;
}

size_t header_cb(char* data, size_t size, size_t nmemb, void* user) {
  auto* call = static_cast<OpenAIAgent::Call*>(user);
  std::string line(data, size * nmemb);
  std::string lower = line;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (lower.rfind("retry-after:", 0) == 0) call->retry_after = trim(line.substr(12));
  if (lower.rfind("http/", 0) == 0) call->retry_after.clear();  // a new response starts
  return size * nmemb;
}

}  // namespace

OpenAIAgent::OpenAIAgent(AgentRole role, const AgentConfig& config, boost::asio::io_context& io)
    : role_(role),
      config_(config),
      io_(io),
      curl_timer_(io),
      backoff_timer_(io),
      response_format_(config.response_format),
      jitter_rng_(std::random_device{}()) {
  std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  api_key_ = read_key(config, to_string(role));
  try {
    templates_ = config.prompt_dir.empty() ? PromptTemplates::defaults()
                                           : PromptTemplates::load(config.prompt_dir);
  } catch (const std::exception& e) {
    throw AgentConfigError(std::string(to_string(role)) + ".prompt_dir: " + e.what());
  }
  multi_ = curl_multi_init();
  if (!multi_) throw AgentConfigError("curl_multi_init failed");
  CURLM* m = static_cast<CURLM*>(multi_);
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, this);
}

OpenAIAgent::~OpenAIAgent() {
  *alive_ = false;
  cancel();
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
  sockets_.clear();
}

std::string OpenAIAgent::describe() const {
  return "openai:" + config_.model + "@" + config_.base_url;
}

std::string OpenAIAgent::build_body(const AgentContext& ctx, const ChatPrompt& prompt) const {
  json body = {{"model", config_.model},
               {"temperature", config_.temperature},
               {"messages",
                {{{"role", "system"}, {"content", prompt.system}},
                 {{"role", "user"}, {"content", prompt.user}}}}};
  if (response_format_ == "json_schema")
    body["response_format"] = {
        {"type", "json_schema"},
        {"json_schema",
         {{"name", "specact_reply"}, {"strict", true}, {"schema", reply_schema(ctx)}}}};
  else if (response_format_ == "json_object")
    body["response_format"] = {{"type", "json_object"}};
  return body.dump();
}

void OpenAIAgent::request(const AgentContext& ctx, Callback done) {
  std::weak_ptr<bool> alive = alive_;
  if (call_) {
    AgentReply r;
    r.error = "agent busy: one request at a time";
    boost::asio::post(io_, [alive, done = std::move(done), r]() mutable {
      if (auto a = alive.lock(); a && *a) done(std::move(r));
    });
    return;
  }
  call_ = std::make_unique<Call>();
  call_->ctx = ctx;
  call_->ctx.role = role_;
  if (config_.top_k > 0) call_->ctx.top_k = std::min(call_->ctx.top_k, config_.top_k);
  call_->done = std::move(done);
  call_->started = Clock::now();
  call_->max_bytes = static_cast<size_t>(config_.max_response_bytes);
  std::vector<std::string> own(own_replies_.begin(), own_replies_.end());
  ChatPrompt prompt = build_prompt(call_->ctx, templates_, own);
  call_->body = build_body(call_->ctx, prompt);
  ++generation_;
  totals_.calls++;
  start_attempt();
}

void OpenAIAgent::start_attempt() {
  Call& c = *call_;
  c.attempt++;
  totals_.attempts++;
  if (c.attempt > 1) totals_.retries++;
  c.response.clear();
  c.too_large = false;
  c.retry_after.clear();
  last_body_ = c.body;
  CURL* easy = curl_easy_init();
  if (!easy) {
    AgentReply r;
    r.error = "curl_easy_init failed";
    finish(std::move(r));
    return;
  }
  c.easy = easy;
  std::string url = config_.base_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += "/chat/completions";
  c.headers = curl_slist_append(nullptr, "Content-Type: application/json");
  c.headers = curl_slist_append(c.headers, "Accept: application/json");
  if (!api_key_.empty())
    c.headers = curl_slist_append(c.headers, ("Authorization: Bearer " + api_key_).c_str());
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, c.headers);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, c.body.c_str());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(c.body.size()));
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout_ms));
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config_.connect_timeout_ms));
  curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(c.max_bytes));
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &c);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &c);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "specactd");
  // Registers the transfer; curl asks for sockets and timeouts through the callbacks.
  curl_multi_add_handle(static_cast<CURLM*>(multi_), easy);
}

struct OpenAIAgent::SocketWatch {
  SocketWatch(boost::asio::io_context& io, int fd) : fd(fd), sd(io, fd) {}
  ~SocketWatch() { sd.release(); }  // curl owns and closes the socket
  int fd;
  boost::asio::posix::stream_descriptor sd;
  int what = 0;  // CURL_POLL_IN / OUT / INOUT
  bool reading = false, writing = false, removed = false;
};

namespace {
int socket_cb(CURL*, curl_socket_t s, int what, void* self, void*) {
  static_cast<OpenAIAgent*>(self)->on_socket_change_for_curl(s, what);
  return 0;
}
int timer_cb(CURLM*, long timeout_ms, void* self) {
  static_cast<OpenAIAgent*>(self)->on_timer_change_for_curl(timeout_ms);
  return 0;
}
}  // namespace

void OpenAIAgent::on_socket_change(int fd, int what) {
  auto it = sockets_.find(fd);
  if (what == CURL_POLL_REMOVE) {
    if (it != sockets_.end()) {
      it->second->removed = true;
      sockets_.erase(it);
    }
    return;
  }
  std::shared_ptr<SocketWatch> w;
  if (it != sockets_.end()) {
    w = it->second;
  } else {
    try {
      w = std::make_shared<SocketWatch>(io_, fd);
    } catch (const std::exception& e) {
      // curl's own timeout still ends the transfer.
      log::warn(std::string(to_string(role_)) + ": cannot watch socket: " + e.what());
      return;
    }
    sockets_[fd] = w;
  }
  w->what = what;
  arm(w);
}

void OpenAIAgent::arm(const std::shared_ptr<SocketWatch>& w) {
  std::weak_ptr<SocketWatch> weak = w;
  auto watch = [this, weak](bool read) {
    return [this, weak, read](const boost::system::error_code& ec) {
      auto sw = weak.lock();
      if (!sw) return;
      (read ? sw->reading : sw->writing) = false;
      if (ec || sw->removed) return;
      socket_action(sw->fd, read ? CURL_CSELECT_IN : CURL_CSELECT_OUT);
      if (!sw->removed) arm(sw);
    };
  };
  if ((w->what & CURL_POLL_IN) && !w->reading) {
    w->reading = true;
    w->sd.async_wait(boost::asio::posix::stream_descriptor::wait_read, watch(true));
  }
  if ((w->what & CURL_POLL_OUT) && !w->writing) {
    w->writing = true;
    w->sd.async_wait(boost::asio::posix::stream_descriptor::wait_write, watch(false));
  }
}

void OpenAIAgent::on_timer_change(long timeout_ms) {
  curl_timer_.cancel();
  if (timeout_ms < 0) return;
  std::weak_ptr<bool> alive = alive_;
  curl_timer_.expires_after(std::chrono::milliseconds(timeout_ms));
  curl_timer_.async_wait([this, alive](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto a = alive.lock(); !a || !*a) return;
    socket_action(CURL_SOCKET_TIMEOUT, 0);
  });
}

void OpenAIAgent::socket_action(int fd, int events) {
  int running = 0;
  curl_multi_socket_action(static_cast<CURLM*>(multi_), fd, events, &running);
  check_done();
}

void OpenAIAgent::check_done() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(static_cast<CURLM*>(multi_), &left)) {
    if (msg->msg == CURLMSG_DONE && call_ && msg->easy_handle == call_->easy) {
      on_transfer_done(msg->data.result);
      return;
    }
  }
}

void OpenAIAgent::cleanup_transfer() {
  if (!call_) return;
  if (call_->easy) {
    curl_multi_remove_handle(static_cast<CURLM*>(multi_), call_->easy);
    curl_easy_cleanup(call_->easy);
    call_->easy = nullptr;
  }
  if (call_->headers) {
    curl_slist_free_all(call_->headers);
    call_->headers = nullptr;
  }
}

void OpenAIAgent::on_transfer_done(int code) {
  Call& c = *call_;
  auto rc = static_cast<CURLcode>(code);
  long http = 0;
  curl_easy_getinfo(c.easy, CURLINFO_RESPONSE_CODE, &http);
  bool too_large = c.too_large || rc == CURLE_FILESIZE_EXCEEDED;
  cleanup_transfer();
  std::string who = std::string(to_string(role_)) + ": ";

  if (too_large) {
    AgentReply r;
    r.error = "response larger than " + std::to_string(config_.max_response_bytes) + " bytes";
    finish(std::move(r));
    return;
  }
  if (rc != CURLE_OK) {
    std::string what = curl_easy_strerror(rc);
    switch (rc) {
      case CURLE_OPERATION_TIMEDOUT:
        retry_or_fail("timeout (" + what + ")", std::chrono::milliseconds(0));
        return;
      case CURLE_COULDNT_CONNECT:
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_RESOLVE_PROXY:
      case CURLE_RECV_ERROR:
      case CURLE_SEND_ERROR:
      case CURLE_GOT_NOTHING:
      case CURLE_PARTIAL_FILE:
        retry_or_fail("connection error (" + what + ")", std::chrono::milliseconds(0));
        return;
      default: {
        AgentReply r;
        bool tls = rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
                   rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CIPHER ||
                   rc == CURLE_SSL_CACERT_BADFILE;
        r.error = (tls ? "TLS error: " : "transport error: ") + what;
        finish(std::move(r));
        return;
      }
    }
  }
  if (http == 429) {
    std::chrono::milliseconds wait(0);
    if (!c.retry_after.empty()) {
      char* end = nullptr;
      double s = std::strtod(c.retry_after.c_str(), &end);
      if (end != c.retry_after.c_str() && std::isfinite(s) && s >= 0)
        wait = std::chrono::milliseconds(static_cast<int64_t>(std::min(s, 60.0) * 1000));
    }
    retry_or_fail(
        "rate limited (HTTP 429" +
            (c.retry_after.empty() ? std::string(")") : ", Retry-After " + c.retry_after + ")"),
        wait);
    return;
  }
  if (http >= 500) {
    retry_or_fail("server error (HTTP " + std::to_string(http) + ")", std::chrono::milliseconds(0));
    return;
  }
  if (http == 400 && response_format_ != "none" &&
      (c.response.find("response_format") != std::string::npos ||
       c.response.find("json_schema") != std::string::npos)) {
    // The server does not support structured output: fall back to the tolerant parser.
    std::string next = response_format_ == "json_schema" ? "json_object" : "none";
    log::warn(who + "server refused response_format " + response_format_ + "; using " + next);
    response_format_ = next;
    ChatPrompt prompt = build_prompt(
        c.ctx, templates_, std::vector<std::string>(own_replies_.begin(), own_replies_.end()));
    c.body = build_body(c.ctx, prompt);
    c.attempt--;  // a protocol negotiation, not a retry
    totals_.attempts--;
    start_attempt();
    return;
  }
  if (http != 200) {
    AgentReply r;
    if (http == 401 || http == 403)
      r.error = "authentication failed (HTTP " + std::to_string(http) + "): check the API key";
    else
      r.error = "HTTP " + std::to_string(http) + " from server";
    finish(std::move(r));
    return;
  }
  // Envelope.
  AgentReply reply;
  json env = json::parse(c.response, nullptr, /*allow_exceptions=*/false);
  std::string content;
  if (env.is_discarded() || !env.is_object()) {
    reply.error = "malformed response: not JSON (" + std::to_string(c.response.size()) + " bytes)";
  } else if (!env.contains("choices") || !env["choices"].is_array() || env["choices"].empty() ||
             !env["choices"][0].is_object() || !env["choices"][0].contains("message") ||
             !env["choices"][0]["message"].is_object()) {
    reply.error = "malformed response: no choices[0].message";
  } else {
    const json& msg = env["choices"][0]["message"];
    if (msg.contains("content") && msg["content"].is_string())
      content = msg["content"].get<std::string>();
    else if (msg.contains("refusal") && msg["refusal"].is_string())
      reply.error = "model refused: " + msg["refusal"].get<std::string>().substr(0, 200);
    else
      reply.error = "malformed response: message has no content";
  }
  uint64_t in_tok = 0, out_tok = 0, cached_tok = 0;
  bool estimated = true;
  if (!env.is_discarded() && env.is_object() && env.contains("usage") && env["usage"].is_object()) {
    const json& u = env["usage"];
    if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_unsigned() &&
        u.contains("completion_tokens") && u["completion_tokens"].is_number_unsigned()) {
      in_tok = u["prompt_tokens"].get<uint64_t>();
      out_tok = u["completion_tokens"].get<uint64_t>();
      estimated = false;
      // Prompt-cache hits, where the server reports them (OpenAI, vLLM,
      // llama.cpp): never more than the prompt itself.
      if (auto d = u.find("prompt_tokens_details"); d != u.end() && d->is_object())
        if (auto c = d->find("cached_tokens"); c != d->end() && c->is_number_unsigned())
          cached_tok = std::min(in_tok, c->get<uint64_t>());
    }
  }
  if (estimated) {
    // No usage from the server: ~4 characters per token, so budgets still bind.
    in_tok = (c.body.size() + 3) / 4;
    out_tok = (content.size() + 3) / 4;
  }
  if (reply.error.empty()) {
    ValidationResult v = validate_reply(content, c.ctx);
    for (const auto& n : v.notes) log::info(who + n);
    reply = std::move(v.reply);
    if (!reply.error.empty()) reply.error = "invalid reply: " + reply.error;
    if (reply.error.empty()) {
      own_replies_.push_back(reply_summary(reply, c.ctx));
      while (own_replies_.size() > kOwnRepliesInPrompt) own_replies_.pop_front();
    }
  }
  reply.usage.prompt_tokens = in_tok;
  reply.usage.cached_tokens = cached_tok;
  reply.usage.completion_tokens = out_tok;
  finish(std::move(reply));
}

void OpenAIAgent::retry_or_fail(const std::string& why, std::chrono::milliseconds min_delay) {
  Call& c = *call_;
  c.attempt_errors.push_back(why);
  std::string who = std::string(to_string(role_)) + ": ";
  if (c.attempt > config_.max_retries) {
    AgentReply r;
    r.error = why;
    if (c.attempt > 1) r.error += " (after " + std::to_string(c.attempt) + " attempts)";
    finish(std::move(r));
    return;
  }
  // Exponential backoff with +-50 % jitter so many daemons do not retry in step.
  double base = 200.0 * std::pow(2.0, c.attempt - 1);
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  auto delay = std::chrono::milliseconds(
      static_cast<int64_t>(std::min(base * jitter(jitter_rng_), 10000.0)));
  delay = std::max(delay, min_delay);
  log::warn(who + why + "; retry " + std::to_string(c.attempt) + "/" +
            std::to_string(config_.max_retries) + " in " + std::to_string(delay.count()) + " ms");
  std::weak_ptr<bool> alive = alive_;
  uint64_t gen = generation_;
  backoff_timer_.expires_after(delay);
  backoff_timer_.async_wait([this, alive, gen](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto a = alive.lock(); !a || !*a) return;
    if (gen != generation_ || !call_) return;
    start_attempt();
  });
}

void OpenAIAgent::finish(AgentReply reply) {
  std::unique_ptr<Call> c = std::move(call_);
  reply.usage.latency_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - c->started).count();
  const uint64_t fresh = reply.usage.prompt_tokens - reply.usage.cached_tokens;
  reply.usage.cost_usd =
      static_cast<double>(fresh) * config_.price_in_per_mtok / 1e6 +
      static_cast<double>(reply.usage.cached_tokens) * config_.cached_in_price() / 1e6 +
      static_cast<double>(reply.usage.completion_tokens) * config_.price_out_per_mtok / 1e6;
  totals_.prompt_tokens += reply.usage.prompt_tokens;
  totals_.cached_tokens += reply.usage.cached_tokens;
  totals_.completion_tokens += reply.usage.completion_tokens;
  totals_.cost_usd += reply.usage.cost_usd;
  totals_.rejected += reply.rejected;
  if (!reply.ok()) {
    totals_.errors++;
    log::warn(std::string(to_string(role_)) + ": call failed: " + reply.error);
  }
  // The callback always runs from a fresh handler, never inside request().
  std::weak_ptr<bool> alive = alive_;
  uint64_t gen = generation_;
  boost::asio::post(
      io_, [this, alive, gen, done = std::move(c->done), reply = std::move(reply)]() mutable {
        if (auto a = alive.lock(); !a || !*a) return;
        if (gen != generation_) return;  // cancelled after finishing, before delivery
        done(std::move(reply));
      });
}

void OpenAIAgent::cancel() {
  ++generation_;
  curl_timer_.cancel();
  backoff_timer_.cancel();
  cleanup_transfer();
  call_.reset();
}

}  // namespace specact
