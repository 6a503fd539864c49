// The node_exporter textfile collector's file (metrics.textfile): replaced
// atomically, so node_exporter never reads half a file. Root writes it into a
// directory another service reads, so it never follows a symbolic link: the
// directory is walked one component at a time with O_NOFOLLOW, the new text
// goes to a temp file created O_EXCL | O_NOFOLLOW in that directory, is
// fsync'ed and renamed over the file (a symlink or hard link planted at the
// file's name is replaced, never written through).
#pragma once

#include <string>
#include <string_view>

namespace specact::observe {

// "" when `path` can name the textfile, else why not: it must be absolute,
// name a file ending in ".prom" (node_exporter reads only those) and contain
// no "." or ".." component.
std::string check_textfile_path(const std::string& path);

class TextfileWriter {
 public:
  // `path` passed check_textfile_path(). Its directory must exist (it is not
  // created: it belongs to node_exporter's configuration).
  explicit TextfileWriter(std::string path);
  const std::string& path() const { return path_; }
  // Replaces the file's content with `text` (mode 0644: node_exporter runs as
  // another user). "" on success, else what failed; the old file is then intact.
  std::string write(std::string_view text) const;
  // Removes the file (a stopped daemon's figures are not current). "" when it
  // is gone or was never there, else what failed.
  std::string remove() const;

 private:
  // The directory's fd (O_DIRECTORY, reached without following a symlink), or
  // -errno.
  int open_dir() const;

  std::string path_, dir_, name_, temp_name_;
};

}  // namespace specact::observe
