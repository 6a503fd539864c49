#include "runtime/state_file.h"

#include <cerrno>

#include "runtime/run_config.h"

namespace specact {

using nlohmann::json;

StateDir open_state_dir(const std::string& state_dir) {
  try {
    return StateDir::open(state_dir, /*create=*/true);
  } catch (const StateDirError& e) {
    throw ConfigError(std::string("state_dir: ") + e.what());
  }
}

void StateFile::open(const std::string& state_dir) {
  dir_.emplace(open_state_dir(state_dir));
  path_ = dir_->path_of(name_);
}

StateFile::Loaded StateFile::set_aside(Loaded l, const char* label, const std::string& why) {
  l.problem = why;
  std::string kept;
  if (int err = dir_->set_aside(name_, label, &kept); err != 0) {
    l.problem += "; it could not be set aside (" + StateDir::describe(err) + ")";
    return l;
  }
  l.kept_as = kept;
  return l;
}

StateFile::Loaded StateFile::load(const std::function<void(const json&)>& parse) {
  Loaded l;
  if (!dir_) return l;
  std::string text;
  const int err = dir_->read(name_, &text, max_bytes_);
  if (err == ENOENT) return l;
  l.found = true;
  switch (err) {
    case 0:
      break;
    case ELOOP:
    case EINVAL:
    case EMLINK:
      // A link or a special file where ours should be: not ours to follow.
      return set_aside(l, "unsafe", path_ + " " + StateDir::describe(err));
    case EFBIG:
      return set_aside(l, "corrupt",
                       path_ + " is larger than " + std::to_string(max_bytes_) + " bytes");
    default:
      l.problem = "cannot read " + path_ + ": " + StateDir::describe(err);
      return l;
  }
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    return set_aside(l, "corrupt", path_ + " is not valid JSON: " + e.what());
  }
  if (!doc.is_object() || !doc.contains("kind") || doc["kind"] != kind_)
    return set_aside(l, "foreign", path_ + " is not a " + kind_ + " file");
  const json& format = doc.contains("format") ? doc["format"] : json();
  if (!format.is_number_integer() || format.get<int64_t>() < 1 || format.get<int64_t>() > format_)
    return set_aside(l, "foreign",
                     path_ + " has format " + format.dump() + "; this specactd reads 1.." +
                         std::to_string(format_));
  try {
    parse(doc);
  } catch (const std::exception& e) {
    return set_aside(l, "corrupt", path_ + ": " + e.what());
  }
  l.used = true;
  return l;
}

std::string StateFile::save(json doc) const {
  if (!dir_) return "the state directory is not open";
  doc["kind"] = kind_;
  doc["format"] = format_;
  const std::string text = doc.dump(1, ' ', false, json::error_handler_t::replace) + "\n";
  if (text.size() > max_bytes_)
    return path_ + " would be " + std::to_string(text.size()) + " bytes (at most " +
           std::to_string(max_bytes_) + ")";
  if (int err = dir_->replace(name_, text); err != 0)
    return "cannot write " + path_ + ": " + StateDir::describe(err);
  return "";
}

}  // namespace specact
