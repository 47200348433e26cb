#include "bench/load_driver.h"

#include <cstdio>
#include <cstdlib>
#include <thread>

namespace strata::bench {

std::string AuthorizationFromEnvironment() {
  // From the environment, never a flag: a command line is visible to every user (ps).
  const char* key = std::getenv(kApiKeyVariable);
  if (key == nullptr || key[0] == '\0') return "";
  return std::string("Bearer ") + key;
}

http::Client NewClient(const std::string& host, uint16_t port, int timeout_ms) {
  http::Client client(host, port, timeout_ms);
  if (std::string auth = AuthorizationFromEnvironment(); !auth.empty()) {
    client.AddDefaultHeader("Authorization", std::move(auth));
  }
  return client;
}

SteadyClock::time_point Due(SteadyClock::time_point start, double rate, int index, int of,
                            uint64_t i) {
  double per_connection_interval = of / rate;
  double offset = per_connection_interval * (static_cast<double>(index) / of + i);
  return start +
         std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(offset));
}

uint64_t CountDue(SteadyClock::time_point start, double rate, int index, int of, uint64_t i,
                  SteadyClock::time_point end) {
  uint64_t n = 0;
  while (Due(start, rate, index, of, i + n) < end) ++n;
  return n;
}

uint64_t MicrosSince(SteadyClock::time_point t0) {
  auto d = SteadyClock::now() - t0;
  if (d.count() < 0) return 0;
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

double SecondsSince(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

bool SleepUntilDue(SteadyClock::time_point due) {
  std::this_thread::sleep_until(due);
  return SteadyClock::now() - due > kLateAfter;
}

ArrivalSchedule::Take ArrivalSchedule::Next(SteadyClock::time_point* due, uint64_t* arrival) {
  const uint64_t n = next_.fetch_add(1, std::memory_order_relaxed);
  if (arrival != nullptr) *arrival = n;
  *due = Due(start_, rate_, 0, 1, n);
  if (*due >= end_) return Take::kDone;
  if (SteadyClock::now() >= end_) return Take::kUnsent;
  return Take::kSend;
}

OpReport MakeOpReport(std::string name, const OpStats& s, double seconds) {
  OpReport r;
  r.name = std::move(name);
  r.count = s.count;
  r.errors = s.errors;
  r.per_second = seconds > 0 ? static_cast<double>(s.count) / seconds : 0;
  r.p50_ms = s.micros.Percentile(50) / 1000.0;
  r.p99_ms = s.micros.Percentile(99) / 1000.0;
  r.p999_ms = s.micros.Percentile(99.9) / 1000.0;
  r.max_ms = s.micros.max() / 1000.0;
  r.mean_ms = s.micros.mean() / 1000.0;
  r.statuses = s.statuses;
  return r;
}

std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

std::string Thousands(uint64_t v) {
  std::string digits = std::to_string(v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string MiB(uint64_t bytes) { return Fmt("%.1f", static_cast<double>(bytes) / 1048576.0); }

}  // namespace strata::bench
