#include "avps/core/process.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "avps/core/parallel.hpp"

extern char** environ;

namespace avps::core {

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  const std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    end = end == std::string::npos ? dirs.size() : end;
    const std::string dir = dirs.substr(start, end - start);
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) {
      return true;
    }
    start = end + 1;
  }
  return false;
}

Result<std::string> run_program(const std::vector<std::string>& args, const std::string& what, bool capture) {
  if (args.empty()) {
    return make_error(ErrorCode::invalid_argument, what + ": no program to run");
  }
  std::vector<std::string> owned = args;
  std::vector<char*> argv;
  for (std::string& a : owned) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  int out[2] = {-1, -1};
  if (capture && ::pipe2(out, O_CLOEXEC) != 0) {
    return make_error(ErrorCode::io_error, what + ": cannot make a pipe: " + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (capture) {
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  }
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int spawned = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  std::string output;
  if (capture) {
    ::close(out[1]);
    if (spawned == 0) {
      char buffer[4096];
      for (;;) {
        const ssize_t n = ::read(out[0], buffer, sizeof buffer);
        if (n > 0) {
          output.append(buffer, static_cast<size_t>(n));
        } else if (n == 0 || errno != EINTR) {
          break;
        }
      }
    }
    ::close(out[0]);
  }
  if (spawned != 0) {
    return make_error(ErrorCode::io_error, what + ": cannot start " + args[0] + ": " + std::strerror(spawned));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return make_error(ErrorCode::io_error,
                      what + ": " + args[0] + " failed (status " + std::to_string(status) + ")");
  }
  return output;
}

Result<ScratchDir> ScratchDir::make(const std::string& prefix) {
  std::error_code ec;
  std::string pattern = (std::filesystem::temp_directory_path(ec) / (prefix + "-XXXXXX")).string();
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  if (::mkdtemp(name.data()) == nullptr) {
    return make_error(ErrorCode::io_error, "cannot make a temporary folder " + pattern + ": " + std::strerror(errno));
  }
  return ScratchDir(std::filesystem::path(name.data()));
}

ScratchDir::~ScratchDir() {
  if (!m_path.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
  }
}

void run_parallel(size_t count, int threads, const std::function<void(size_t)>& work) {
  for_each_index(count, static_cast<size_t>(std::max(1, threads)), 1, [&](size_t, size_t i) { work(i); });
}

}  // namespace avps::core
