// One small JSON document of the daemon's own in the state directory
// (settings.json, learned.json). Read through StateDir (openat, O_NOFOLLOW,
// a regular file with one link, size-capped), checked before anything uses
// it, and replaced atomically (temp, fsync, rename, fsync of the directory).
// A file that cannot be trusted (a link, not JSON, another program's file, a
// newer format, a value the checks refuse) is set aside under a name that
// never overwrites an earlier one, and the caller starts from its defaults:
// never trusted blindly, never a reason for the daemon to stop.
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/state_dir.h"

namespace specact {

// StateDir::open(state_dir) for the runtime: creates it (0700) when missing;
// a refusal is a ConfigError naming the path (the daemon cannot start).
StateDir open_state_dir(const std::string& state_dir);

class StateFile {
 public:
  // `name`: the file name in the state directory; `kind`: the document's
  // "kind" field (another kind is a foreign file); `format`: the version
  // written, and the newest read; `max_bytes`: a larger file is refused.
  StateFile(std::string name, std::string kind, int format, size_t max_bytes)
      : name_(std::move(name)), kind_(std::move(kind)), format_(format), max_bytes_(max_bytes) {}

  // Opens the state directory (created 0700 when missing). Throws ConfigError
  // naming the path, like the history.
  void open(const std::string& state_dir);
  const std::string& path() const { return path_; }

  struct Loaded {
    bool found = false;   // a file was there
    bool used = false;    // it passed every check and `parse` took it
    std::string problem;  // why it was not used ("" when used or absent)
    std::string kept_as;  // the name it was set aside under ("" when it was not)
  };
  // Reads the file and hands the checked document to `parse`, which throws
  // (any std::exception, its message the reason) when a value is not
  // acceptable; then the file is set aside. A file that cannot be read for
  // another reason (EACCES, EIO) is reported and left where it is.
  Loaded load(const std::function<void(const nlohmann::json&)>& parse);
  // Atomically replaces the file with `doc` plus "kind" and "format". "" or
  // the error (the old file is intact then).
  std::string save(nlohmann::json doc) const;

 private:
  Loaded set_aside(Loaded l, const char* label, const std::string& why);

  std::string name_, kind_;
  int format_;
  size_t max_bytes_;
  std::optional<StateDir> dir_;
  std::string path_;
};

}  // namespace specact
