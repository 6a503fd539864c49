#include "observe/journal_sink.h"

#include <sys/stat.h>
#include <sys/uio.h>
// CODE_FILE/CODE_LINE would name this file, not the decision's origin.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "observe/journal_events.h"

namespace specact::observe {

bool stream_is_journal(const char* journal_stream, int fd) {
  if (!journal_stream) return false;
  unsigned long long dev = 0, ino = 0;
  char extra = 0;
  if (std::sscanf(journal_stream, "%llu:%llu%c", &dev, &ino, &extra) != 2) return false;
  struct stat st {};
  if (fstat(fd, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

bool stderr_is_journal() { return stream_is_journal(std::getenv("JOURNAL_STREAM"), STDERR_FILENO); }

int JournalSink::send(const nlohmann::json& event) const {
  for (const auto& fields : journal_entries(event)) {
    std::vector<iovec> iov;
    iov.reserve(fields.size());
    for (const auto& f : fields)
      iov.push_back({const_cast<char*>(f.data()), f.size()});  // sendv copies, never writes
    const int r = sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
    if (r < 0) return r;
  }
  return 0;
}

}  // namespace specact::observe
