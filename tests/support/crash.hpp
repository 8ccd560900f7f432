#pragma once
// Runs `work` in a child process that dies with SIGKILL at a named crash point (core::crash_point),
// as a power cut would stop it. Returns true if the child was killed there, false if it finished.

#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "avps/core/fs.hpp"

namespace avps::testing {

inline bool run_until_crash(const std::string& crash_point, const std::function<void()>& work) {
  pid_t pid = ::fork();
  if (pid == 0) {
    core::set_crash_point(crash_point);
    work();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

}  // namespace avps::testing
