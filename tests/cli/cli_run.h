// The trainsim binary (or any command) run as a user runs it, for the CLI tests: exit code and
// stdout + stderr together.
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace tscli {

struct CmdResult {
  int rc = -1;
  std::string out;   // stdout and stderr together
};

inline CmdResult run_cmd(const std::string& cmd) {
  CmdResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The source tree (scenarios, test data).
inline const std::string kSrc = TRAINSIM_SOURCE_DIR;

// `trainsim ARGS`.
inline CmdResult run(const std::string& args) { return run_cmd(std::string(TRAINSIM_BINARY) + " " + args); }

}  // namespace tscli
