// Running a check in a forked child process (child.cpp).
#pragma once

#include <functional>
#include <string>

namespace lamina {

// Runs `body` in a forked child process and waits for it, at most `timeout_seconds`. The child ends
// with _exit(0) when `body` returns or throws; anything else — a signal, exit() with another status
// inside `body`, a sanitizer's report — is what the caller looks for. `unknown` when no child could be
// run or waited for: the caller goes on as without the check.
struct ChildOutcome {
  enum Verdict { unknown, ok, signalled, exited, timed_out } verdict = unknown;
  int code = 0;             // the signal or the exit status
  std::string description;  // "signal 11, Segmentation fault", "exit status 3"
};
ChildOutcome run_in_child(const std::function<void()>& body, double timeout_seconds);

}  // namespace lamina
