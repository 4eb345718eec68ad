// The LAMINA_PROFILE table (profiler.hpp).
#include "profiler.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace lamina {

namespace {

// Seconds and calls by entry, printed when the process exits.
struct OpProfile {
  std::mutex mutex;
  std::map<std::string, std::pair<double, int64_t>> totals;  // seconds, calls
  ~OpProfile() {
    std::vector<std::pair<std::string, std::pair<double, int64_t>>> rows(totals.begin(), totals.end());
    std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.first > b.second.first; });
    double all = 0;
    for (auto& r : rows) all += r.second.first;
    std::fprintf(stderr, "\nlamina op profile (%.3f s in kernels)\n", all);
    for (auto& [name, t] : rows)
      std::fprintf(stderr, "  %-36s %9.3f s %5.1f%% %9lld calls\n", name.c_str(), t.first,
                   all > 0 ? 100.0 * t.first / all : 0.0, static_cast<long long>(t.second));
  }
};
OpProfile* profile() {
  static OpProfile* p = std::getenv("LAMINA_PROFILE") ? new OpProfile : nullptr;
  static bool registered = p && std::atexit([] { delete profile(); }) == 0;
  (void)registered;
  return p;
}

}  // namespace

void profile_record(const std::string& name, double seconds) {
  OpProfile* prof = profile();
  if (!prof) return;
  std::lock_guard lock(prof->mutex);
  auto& slot = prof->totals[name];
  slot.first += seconds;
  slot.second += 1;
}
bool profiling() {
  return profile() != nullptr;
}

}  // namespace lamina
