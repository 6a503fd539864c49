#include "agents/agent_config.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

namespace specact {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw AgentConfigError(path + ": " + why);
}

int64_t get_int(const json& v, const std::string& path, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) fail(path, std::string("expected integer, got ") + v.type_name());
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    fail(path, "out of range");
  int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    fail(path, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return x;
}

double get_double(const json& v, const std::string& path, double lo, double hi) {
  if (!v.is_number()) fail(path, std::string("expected number, got ") + v.type_name());
  double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    fail(path, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return x;
}

std::string get_string(const json& v, const std::string& path) {
  if (!v.is_string()) fail(path, std::string("expected string, got ") + v.type_name());
  return v.get<std::string>();
}

}  // namespace

AgentConfig AgentConfig::from_json(const json& j, const std::string& path) {
  if (!j.is_object()) fail(path, std::string("expected object, got ") + j.type_name());
  AgentConfig c;
  std::string backend = "builtin";
  if (j.contains("backend")) backend = get_string(j.at("backend"), path + ".backend");
  static const std::set<std::string> common = {"backend", "top_k"};
  static const std::set<std::string> builtin_keys = {"delay_ms", "seed"};
  static const std::set<std::string> openai_keys = {
      "base_url",           "model",
      "api_key_env",        "api_key_file",
      "timeout_ms",         "connect_timeout_ms",
      "max_retries",        "temperature",
      "price_in_per_mtok",  "price_out_per_mtok",
      "prompt_dir",         "response_format",
      "max_response_bytes", "price_cached_in_per_mtok"};
  const std::set<std::string>* allowed = nullptr;
  if (backend == "builtin") {
    c.backend = Backend::Builtin;
    allowed = &builtin_keys;
  } else if (backend == "openai") {
    c.backend = Backend::OpenAI;
    allowed = &openai_keys;
  } else {
    fail(path + ".backend", "unknown backend \"" + backend + "\" (builtin, openai)");
  }
  for (const auto& [key, v] : j.items()) {
    std::string p = path + "." + key;
    if (common.count(key) == 0 && allowed->count(key) == 0) {
      bool other = builtin_keys.count(key) || openai_keys.count(key);
      fail(p, other ? "not valid for backend \"" + backend + "\"" : "unknown key");
    }
    if (key == "top_k")
      c.top_k = static_cast<int>(get_int(v, p, 1, 16));
    else if (key == "delay_ms")
      c.delay_ms = get_int(v, p, 0, 3'600'000);
    else if (key == "seed")
      c.seed = get_int(v, p, 0, INT64_MAX);
    else if (key == "base_url")
      c.base_url = get_string(v, p);
    else if (key == "model")
      c.model = get_string(v, p);
    else if (key == "api_key_env")
      c.api_key_env = get_string(v, p);
    else if (key == "api_key_file")
      c.api_key_file = get_string(v, p);
    else if (key == "timeout_ms")
      c.timeout_ms = get_int(v, p, 1, 3'600'000);
    else if (key == "connect_timeout_ms")
      c.connect_timeout_ms = get_int(v, p, 1, 600'000);
    else if (key == "max_retries")
      c.max_retries = static_cast<int>(get_int(v, p, 0, 10));
    else if (key == "temperature")
      c.temperature = get_double(v, p, 0, 2);
    else if (key == "price_in_per_mtok")
      c.price_in_per_mtok = get_double(v, p, 0, 1e6);
    else if (key == "price_out_per_mtok")
      c.price_out_per_mtok = get_double(v, p, 0, 1e6);
    else if (key == "price_cached_in_per_mtok")
      c.price_cached_in_per_mtok = get_double(v, p, 0, 1e6);
    else if (key == "prompt_dir")
      c.prompt_dir = get_string(v, p);
    else if (key == "max_response_bytes")
      c.max_response_bytes = get_int(v, p, 1024, 1 << 30);
    else if (key == "response_format") {
      c.response_format = get_string(v, p);
      if (c.response_format != "json_schema" && c.response_format != "json_object" &&
          c.response_format != "none")
        fail(p, "must be json_schema, json_object or none");
    }
  }
  if (c.backend == Backend::OpenAI) {
    if (c.base_url.empty()) fail(path + ".base_url", "required for backend \"openai\"");
    if (c.base_url.rfind("http://", 0) != 0 && c.base_url.rfind("https://", 0) != 0)
      fail(path + ".base_url", "must start with http:// or https://");
    if (c.model.empty()) fail(path + ".model", "required for backend \"openai\"");
    if (!c.api_key_env.empty() && !c.api_key_file.empty())
      fail(path, "api_key_env and api_key_file are exclusive");
  }
  return c;
}

json AgentConfig::to_json() const {
  if (backend == Backend::Builtin) {
    json j = {{"backend", "builtin"}, {"delay_ms", delay_ms}};
    if (seed >= 0) j["seed"] = seed;
    if (top_k) j["top_k"] = top_k;
    return j;
  }
  json j = {{"backend", "openai"},
            {"base_url", base_url},
            {"model", model},
            {"timeout_ms", timeout_ms},
            {"connect_timeout_ms", connect_timeout_ms},
            {"max_retries", max_retries},
            {"temperature", temperature},
            {"price_in_per_mtok", price_in_per_mtok},
            {"price_out_per_mtok", price_out_per_mtok},
            {"response_format", response_format},
            {"max_response_bytes", max_response_bytes}};
  if (!api_key_env.empty()) j["api_key_env"] = api_key_env;
  if (!api_key_file.empty()) j["api_key_file"] = api_key_file;
  if (!prompt_dir.empty()) j["prompt_dir"] = prompt_dir;
  if (price_cached_in_per_mtok) j["price_cached_in_per_mtok"] = *price_cached_in_per_mtok;
  if (top_k) j["top_k"] = top_k;
  return j;
}

}  // namespace specact
