// The OpenMP team size of the onednn backend when no thread count is set: one thread per core this
// process can have now, measured while it runs.
//
// A team larger than the cores a process gets is the worst case for a training step made of many
// short parallel regions: every region waits at its barrier for the thread that is not running, for
// up to a scheduler time slice (docs/performance.md, under load). So every kInterval the backend
// compares the machine's busy time (/proc/stat) with its own CPU time (getrusage): the difference is
// the cores other processes hold, and the team shrinks to the cores left (at least one), or grows
// back when they are free again. The sampling runs on kernel entry, outside parallel regions, and
// costs a coarse clock read otherwise.
//
// A fixed count (backends.onednn.threads, LAMINA_NUM_THREADS or OMP_NUM_THREADS) turns this off:
// sums split over threads (oneDNN's weight gradients, the backend's reductions) add in an order
// that depends on the team size, so only a fixed team gives bit-for-bit repeatable runs.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>

namespace lamina::onednn {

// The team for the next interval: the cores other processes kept busy over the last one are
// `machine_busy − own` (both in cores); the team takes what is left of `cores`, rounded to the
// nearest whole core, at least 1.
inline int threads_for_load(double machine_busy, double own, int cores) {
  const double others = std::max(0.0, machine_busy - own);
  const double left = double(cores) - others;
  return std::max(1, std::min(cores, int(std::floor(left + 0.5))));
}

class AdaptiveTeam {
 public:
  static constexpr std::chrono::milliseconds kInterval{250};

  // Adapt between 1 and `cores` threads on a machine of `machine_cpus` CPUs (all of which this
  // process may use: /proc/stat's totals cover them all).
  void enable(int cores, int machine_cpus);
  bool enabled() const { return cores_ > 0; }
  // Called on every kernel entry, outside parallel regions. It reads the coarse monotonic clock
  // (milliseconds of resolution, ample for kInterval): a few nanoseconds against the ~20 of the
  // precise one, on a path the seed MLP takes 23 times a step.
  void adapt() {
    if (cores_ == 0) return;
    const int64_t now = coarse_now_ns();
    if (now - last_ns_ >= kIntervalNs) sample(now);
  }

 private:
  static constexpr int64_t kIntervalNs = std::chrono::nanoseconds(kInterval).count();
  static int64_t coarse_now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return int64_t(ts.tv_sec) * 1'000'000'000 + int64_t(ts.tv_nsec);
  }
  void sample(int64_t now_ns);
  int cores_ = 0;
  int64_t last_ns_ = 0;                        // 0: not sampled yet
  uint64_t busy_ticks_ = 0, total_ticks_ = 0;  // /proc/stat, all CPUs
  double own_seconds_ = 0;                     // this process's CPU time
  int machine_cpus_ = 1;
};

}  // namespace lamina::onednn
