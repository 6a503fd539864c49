#include "cli/knobs_config_file.h"

#include <cstdio>
#include <fstream>

namespace specact {

bool load_knobs_config(const std::string& path, const char* cmd, KnobsConfig* cfg,
                       nlohmann::json* whole) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "specactd %s: cannot open config %s\n", cmd, path.c_str());
    return false;
  }
  try {
    *whole = nlohmann::json::parse(in);
    const nlohmann::json& j = *whole;
    if (j.is_object() && j.contains("knobs")) *cfg = KnobsConfig::from_json(j["knobs"]);
    bool knobs_dir = j.is_object() && j.contains("knobs") && j["knobs"].is_object() &&
                     j["knobs"].contains("state_dir");
    if (!knobs_dir && j.is_object() && j.contains("state_dir") && j["state_dir"].is_string())
      cfg->state_dir = j["state_dir"].get<std::string>();
  } catch (const nlohmann::json::parse_error& e) {
    std::fprintf(stderr, "specactd %s: %s is not valid JSON: %s\n", cmd, path.c_str(), e.what());
    return false;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "specactd %s: %s: %s\n", cmd, path.c_str(), e.what());
    return false;
  }
  return true;
}

}  // namespace specact
