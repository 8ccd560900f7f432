#include "avps/core/fs.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>

#include "avps/core/text.hpp"

namespace avps::core {
namespace fs = std::filesystem;

namespace {

Error io_error(const std::string& what, const fs::path& path, int err) {
  return make_error(ErrorCode::io_error, what + " " + path.string() + ": " + std::strerror(err));
}

Result<void> fsync_fd(int fd, const fs::path& path) {
  if (inject_fault(FaultOp::fsync)) {
    return io_error("cannot fsync", path, EIO);
  }
  if (::fsync(fd) != 0) {
    return io_error("cannot fsync", path, errno);
  }
  return ok();
}

Result<void> write_all(int fd, std::string_view data, const fs::path& path) {
  if (inject_fault(FaultOp::write)) {
    return io_error("cannot write", path, EIO);
  }
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return io_error("cannot write", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return ok();
}

std::string random_suffix() {
  static std::mutex mutex;
  static std::mt19937_64 generator{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mutex);
  static constexpr char k_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s;
  for (int i = 0; i < 10; ++i) {
    s.push_back(k_chars[generator() % (sizeof(k_chars) - 1)]);
  }
  return s;
}

}  // namespace

AtomicFile::AtomicFile(fs::path path, fs::path temp, int fd, Durability d)
    : m_path(std::move(path)), m_temp(std::move(temp)), m_fd(fd), m_durability(d) {}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : m_path(std::move(other.m_path)),
      m_temp(std::move(other.m_temp)),
      m_fd(other.m_fd),
      m_durability(other.m_durability),
      m_committed(other.m_committed) {
  other.m_fd = -1;
  other.m_committed = true;  // the moved-from object owns nothing
}

AtomicFile::~AtomicFile() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
  if (!m_committed) {
    // A half-written temp file is never left behind for a reader to find.
    std::error_code ignored;
    fs::remove(m_temp, ignored);
  }
}

Result<AtomicFile> AtomicFile::create(const fs::path& path, Durability durability) {
  // The temp file lives in the destination folder so that publishing is a same-filesystem
  // rename/link. Its name starts with '.' and ends in '.tmp' so no scanner mistakes it for an
  // artifact.
  // The pid keeps a forked child and its parent (same generator state) apart; a name that is
  // still taken, by a temp file a killed writer left, is simply skipped.
  fs::path temp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    temp = path.parent_path() /
           ("." + path.filename().string() + "." + std::to_string(::getpid()) + random_suffix() + ".tmp");
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && (errno != EEXIST || attempt >= 16)) {
      return io_error("cannot create", temp, errno);
    }
  }
  return AtomicFile(path, temp, fd, durability);
}

Result<void> AtomicFile::write(std::string_view data) {
  return write_all(m_fd, data, m_temp);
}

Result<void> AtomicFile::commit(Overwrite overwrite) {
  crash_point("atomic.before_fsync");
  if (m_durability != Durability::cached) {
    AVPS_TRY(fsync_fd(m_fd, m_temp));
  }
  if (::close(m_fd) != 0) {
    m_fd = -1;
    return io_error("cannot close", m_temp, errno);
  }
  m_fd = -1;
  crash_point("atomic.before_publish");
  if (overwrite == Overwrite::yes) {
    if (inject_fault(FaultOp::rename)) {
      return io_error("cannot rename into", m_path, EIO);
    }
    if (::rename(m_temp.c_str(), m_path.c_str()) != 0) {
      return io_error("cannot rename into", m_path, errno);
    }
  } else {
    if (inject_fault(FaultOp::rename)) {
      return io_error("cannot publish", m_path, EIO);
    }
    // link() fails with EEXIST instead of replacing: write-once even against a racing writer.
    if (::link(m_temp.c_str(), m_path.c_str()) != 0) {
      int err = errno;
      if (err == EEXIST) {
        return make_error(ErrorCode::already_exists,
                          "refusing to overwrite existing file " + m_path.string());
      }
      return io_error("cannot publish", m_path, err);
    }
    crash_point("atomic.after_link");
    if (::unlink(m_temp.c_str()) != 0) {
      return io_error("cannot remove temp file", m_temp, errno);
    }
  }
  m_committed = true;
  crash_point("atomic.before_dir_sync");
  if (m_durability == Durability::durable) {
    fs::path dir = m_path.parent_path().empty() ? fs::path(".") : m_path.parent_path();
    AVPS_TRY(sync_directory(dir));
  }
  return ok();
}

bool is_atomic_temp_name(std::string_view name) {
  return name.size() > 5 && name.front() == '.' && name.substr(name.size() - 4) == ".tmp";
}

Result<void> write_file_atomic(const fs::path& path, std::string_view data, Overwrite overwrite,
                               Durability durability) {
  AVPS_TRY_ASSIGN(AtomicFile file, AtomicFile::create(path, durability));
  AVPS_TRY(file.write(data));
  return file.commit(overwrite);
}

namespace {
// A file opened for reading: not_found when it is not there, an io_error naming it otherwise.
Result<int> open_for_reading(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) {
      return make_error(ErrorCode::not_found, "no such file: " + path.string());
    }
    return io_error("cannot open", path, err);
  }
  return fd;
}
}  // namespace

Result<std::string> read_file(const fs::path& path) {
  AVPS_TRY_ASSIGN(int fd, open_for_reading(path));
  // Read straight into a string of the file's size (a large file appended chunk by chunk was
  // copied again at each growth); a file that grows meanwhile is read on to its end.
  struct stat st {};
  std::string out(::fstat(fd, &st) == 0 && st.st_size > 0 ? static_cast<size_t>(st.st_size) + 1 : 65536, '\0');
  size_t filled = 0;
  for (;;) {
    if (filled == out.size()) {
      out.resize(out.size() * 2);
    }
    ssize_t n = ::read(fd, out.data() + filled, out.size() - filled);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      int err = errno;
      ::close(fd);
      return io_error("cannot read", path, err);
    }
    if (n == 0) {
      break;
    }
    filled += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(filled);
  return out;
}

Result<std::string> read_file_tail(const fs::path& path, size_t max_bytes) {
  AVPS_TRY_ASSIGN(int fd, open_for_reading(path));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return io_error("cannot stat", path, err);
  }
  const size_t size = st.st_size > 0 ? static_cast<size_t>(st.st_size) : 0;
  const size_t start = size > max_bytes ? size - max_bytes : 0;
  std::string out(size - start, '\0');
  size_t filled = 0;
  while (filled < out.size()) {
    ssize_t n = ::pread(fd, out.data() + filled, out.size() - filled, static_cast<off_t>(start + filled));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      int err = errno;
      ::close(fd);
      return io_error("cannot read", path, err);
    }
    if (n == 0) {
      break;  // cut short meanwhile: what is there
    }
    filled += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(filled);
  return out;
}

Result<std::string> read_text_file(const fs::path& path) {
  AVPS_TRY_ASSIGN(std::string text, read_file(path));
  if (std::optional<std::size_t> bad = first_invalid_utf8(text)) {
    const auto line = std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(*bad), '\n') + 1;
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[*bad]));
    return make_error(ErrorCode::invalid_argument,
                      path.string() + " is not UTF-8 text: byte " + byte + " at offset " + std::to_string(*bad) +
                          " (line " + std::to_string(line) + "); save it as UTF-8 and try again");
  }
  return text;
}

Result<void> append_file_durable(const fs::path& path, std::string_view data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return io_error("cannot open for append", path, errno);
  }
  // Written in two halves with a crash point between them, so tests can produce a torn line.
  std::string_view first = data.substr(0, data.size() / 2);
  Result<void> written = write_all(fd, first, path);
  if (written) {
    crash_point("append.torn");
    written = write_all(fd, data.substr(first.size()), path);
  }
  if (written) {
    written = fsync_fd(fd, path);
  }
  ::close(fd);
  return written;
}

Result<void> sync_directory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return io_error("cannot open folder", dir, errno);
  }
  Result<void> synced = fsync_fd(fd, dir);
  ::close(fd);
  return synced;
}

Result<void> create_directories_durable(const fs::path& dir) {
  if (dir.empty() || fs::is_directory(dir)) {
    return ok();
  }
  AVPS_TRY(create_directories_durable(dir.parent_path()));
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return io_error("cannot create folder", dir, errno);
  }
  fs::path parent = dir.parent_path().empty() ? fs::path(".") : dir.parent_path();
  return sync_directory(parent);
}

namespace {

struct CrashPlan {
  std::mutex mutex;
  std::string label;
  long remaining = 0;  // crash when it drops to zero
  bool loaded = false;
};

CrashPlan& crash_plan() {
  static CrashPlan plan;
  return plan;
}

void parse_crash_spec(CrashPlan& plan, std::string_view spec) {
  plan.label.clear();
  plan.remaining = 0;
  if (spec.empty()) {
    return;
  }
  auto colon = spec.rfind(':');
  long count = 1;
  if (colon != std::string_view::npos) {
    count = std::strtol(std::string(spec.substr(colon + 1)).c_str(), nullptr, 10);
    spec = spec.substr(0, colon);
  }
  plan.label = std::string(spec);
  plan.remaining = count < 1 ? 1 : count;
}

}  // namespace

void set_crash_point(std::string_view label_and_count) {
  CrashPlan& plan = crash_plan();
  std::lock_guard<std::mutex> lock(plan.mutex);
  parse_crash_spec(plan, label_and_count);
  plan.loaded = true;
}

void crash_point(std::string_view label) {
  CrashPlan& plan = crash_plan();
  std::lock_guard<std::mutex> lock(plan.mutex);
  if (!plan.loaded) {
    const char* env = std::getenv("AVPS_CRASH_AT");
    parse_crash_spec(plan, env ? env : "");
    plan.loaded = true;
  }
  if (plan.label.empty() || plan.label != label) {
    return;
  }
  if (--plan.remaining == 0) {
    ::kill(::getpid(), SIGKILL);
  }
}

namespace {

// The fault plan. Counters are atomics: SQLite's VFS calls come from any thread that commits.
struct FaultPlan {
  std::once_flag env_read;
  std::atomic<bool> active{false};
  std::atomic<int> op{-1};  // the FaultOp to fail, -1 for none ("count")
  std::atomic<long> k{0};
  std::atomic<long> counts[3] = {0, 0, 0};
};

FaultPlan& fault_plan() {
  static FaultPlan plan;
  return plan;
}

void parse_fault_spec(FaultPlan& plan, std::string_view spec) {
  for (std::atomic<long>& c : plan.counts) {
    c = 0;
  }
  plan.op = -1;
  plan.k = 0;
  plan.active = !spec.empty();
  auto colon = spec.rfind(':');
  if (colon == std::string_view::npos) {
    return;  // "count" (or anything without a number): count only
  }
  const std::string_view name = spec.substr(0, colon);
  const long k = std::strtol(std::string(spec.substr(colon + 1)).c_str(), nullptr, 10);
  const int op = name == "write" ? 0 : name == "fsync" ? 1 : name == "rename" ? 2 : -1;
  if (op >= 0 && k >= 1) {
    plan.k = k;
    plan.op = op;
  }
}

void read_fault_env(FaultPlan& plan) {
  std::call_once(plan.env_read, [&plan] {
    const char* env = std::getenv("AVPS_FAULT_AT");
    parse_fault_spec(plan, env ? env : "");
  });
}

}  // namespace

void set_fault_point(std::string_view spec) {
  FaultPlan& plan = fault_plan();
  read_fault_env(plan);  // so the variable, read later, does not replace this plan
  parse_fault_spec(plan, spec);
}

bool fault_plan_active() {
  FaultPlan& plan = fault_plan();
  read_fault_env(plan);
  return plan.active.load(std::memory_order_relaxed);
}

bool inject_fault(FaultOp op) {
  if (!fault_plan_active()) {
    return false;
  }
  FaultPlan& plan = fault_plan();
  const int index = static_cast<int>(op);
  const long n = ++plan.counts[index];
  return plan.op.load() == index && n == plan.k.load();
}

FaultCounts fault_counts() {
  FaultPlan& plan = fault_plan();
  return FaultCounts{plan.counts[0].load(), plan.counts[1].load(), plan.counts[2].load()};
}

}  // namespace avps::core
