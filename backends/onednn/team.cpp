// The adaptive team (team.hpp): sampling the machine's load and this process's CPU time.
#include "team.hpp"

#include <omp.h>
#include <sys/resource.h>

#include <cstdio>

namespace lamina::onednn {
namespace {

// The busy and total clock ticks of all CPUs since boot, from the first line of /proc/stat.
bool read_cpu_ticks(uint64_t& busy, uint64_t& total) {
  std::FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return false;
  unsigned long long v[8] = {};
  const int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                            &v[4], &v[5], &v[6], &v[7]);
  std::fclose(f);
  if (n < 5) return false;
  total = 0;
  for (unsigned long long t : v) total += t;
  busy = total - v[3] - v[4];  // all but idle and iowait
  return true;
}

double own_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         1e-6 * double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

}  // namespace

void AdaptiveTeam::enable(int cores, int machine_cpus) {
  cores_ = cores;
  machine_cpus_ = machine_cpus;
  last_ns_ = 0;
}

void AdaptiveTeam::sample(int64_t now_ns) {
  uint64_t busy = 0, total = 0;
  if (!read_cpu_ticks(busy, total)) {
    cores_ = 0;  // no /proc/stat: keep the team as it is
    return;
  }
  const double own = own_cpu_seconds();
  if (last_ns_ != 0 && total > total_ticks_ && now_ns > last_ns_) {
    const double wall = 1e-9 * double(now_ns - last_ns_);
    const double machine_busy = double(busy - busy_ticks_) / double(total - total_ticks_) * machine_cpus_;
    const int team = threads_for_load(machine_busy, (own - own_seconds_) / wall, cores_);
    if (team != omp_get_max_threads()) omp_set_num_threads(team);
  }
  last_ns_ = now_ns, busy_ticks_ = busy, total_ticks_ = total, own_seconds_ = own;
}

}  // namespace lamina::onednn
