// Running risky work (a third-party plugin's init, libhdf5 on an untrusted file) in a forked child
// process first, so that a crash or a hang there is reported instead of taking the process down.
#include "child.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

// Set by AddressSanitizer's runtime, and by libFuzzer to save the input that killed the process.
extern "C" void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

namespace lamina {

ChildOutcome run_in_child(const std::function<void()>& body, double timeout_seconds) {
  ChildOutcome outcome;
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return outcome;  // no verdict: the caller goes on as without a probe
  std::fflush(nullptr);                       // nothing buffered is written twice
  pid_t child = ::fork();
  if (child < 0) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return outcome;
  }
  if (child == 0) {
    ::close(pipe_fds[0]);
    // A crash is a plain signal here, as in a build without sanitizers: their handlers would report
    // a crash inside a third-party library, and a fuzzer would record it as its own finding. (A
    // sanitizer's report of a memory error still ends the child with a non-zero status.)
    for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(s, SIG_DFL);
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(nullptr);
    // The write end stays open until the child ends: the parent sees the pipe close at that moment.
    try {
      body();
    } catch (...) {
    }
    ::_exit(0);  // no atexit handlers, no flushing of the parent's buffers
  }
  ::close(pipe_fds[1]);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  for (;;) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{pipe_fds[0], POLLIN, 0};
    int r = ::poll(&p, 1, int(std::min<int64_t>(left.count(), 1000)));
    if (r < 0 && errno != EINTR) break;
    if (r > 0) {
      char c;
      if (::read(pipe_fds[0], &c, 1) <= 0) break;  // closed: the child has ended
    }
  }
  ::close(pipe_fds[0]);
  int status = 0;
  pid_t got = ::waitpid(child, &status, WNOHANG);
  if (got == 0) {
    // Still running at the deadline (or another process inherited the pipe and keeps it open):
    // give it a last moment, then kill it.
    for (int i = 0; i < 20 && got == 0; ++i) {
      ::usleep(5000);
      got = ::waitpid(child, &status, WNOHANG);
    }
    if (got == 0) {
      ::kill(child, SIGKILL);
      while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
      }
      outcome.verdict = ChildOutcome::timed_out;
      return outcome;
    }
  }
  if (got < 0) return outcome;  // reaped elsewhere (SIGCHLD ignored): no verdict
  if (WIFSIGNALED(status)) {
    outcome.verdict = ChildOutcome::signalled;
    outcome.code = WTERMSIG(status);
    const char* name = ::strsignal(outcome.code);
    outcome.description = "signal " + std::to_string(outcome.code) + (name ? std::string(", ") + name : "");
  } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    outcome.verdict = ChildOutcome::exited;
    outcome.code = WEXITSTATUS(status);
    outcome.description = "exit status " + std::to_string(outcome.code);
  } else {
    outcome.verdict = ChildOutcome::ok;
  }
  return outcome;
}

}  // namespace lamina
