#include "bench/compare_bench.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>
#include <utility>

#include "bench/child_process.h"
#include "bench/compare_bench_internal.h"
#include "bench/compare_systems.h"
#include "bench/history_workload.h"
#include "bench/kernel_bursts.h"
#include "bench/run_support.h"
#include "bench/viewing_workload.h"
#include "strata/base/status.h"
#include "strata/base/thread_pool.h"

namespace strata::bench {

// ---- Response parsing (no JSON library: the bench stays light) ------------------------------

namespace internal {
namespace {

void SkipSpace(std::string_view s, size_t* i) {
  while (*i < s.size() && (s[*i] == ' ' || s[*i] == '\n' || s[*i] == '\t' || s[*i] == '\r')) {
    ++*i;
  }
}

bool Expect(std::string_view s, size_t* i, char c) {
  SkipSpace(s, i);
  if (*i >= s.size() || s[*i] != c) return false;
  ++*i;
  return true;
}

bool ParseString(std::string_view s, size_t* i, std::string* out) {
  if (*i >= s.size() || s[*i] != '"') return false;
  ++*i;
  out->clear();
  while (*i < s.size()) {
    const char c = s[(*i)++];
    if (c == '"') return true;
    if (c != '\\') {
      out->push_back(c);
      continue;
    }
    if (*i >= s.size()) return false;
    const char e = s[(*i)++];
    switch (e) {
      case '"':
      case '\\':
      case '/':
        out->push_back(e);
        break;
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'u': {
        if (*i + 4 > s.size()) return false;
        unsigned v = 0;
        auto [end, ec] = std::from_chars(s.data() + *i, s.data() + *i + 4, v, 16);
        if (ec != std::errc() || end != s.data() + *i + 4) return false;
        *i += 4;
        out->push_back(v < 0x80 ? static_cast<char>(v) : '?');  // the API's fields are ASCII
        break;
      }
      default:
        return false;
    }
  }
  return false;
}

bool ParseInt(std::string_view s, size_t* i, int64_t* out) {
  auto [end, ec] = std::from_chars(s.data() + *i, s.data() + s.size(), *out);
  if (ec != std::errc()) return false;
  *i = static_cast<size_t>(end - s.data());
  return true;
}

// Skips one value of any type.
bool SkipValue(std::string_view s, size_t* i) {
  SkipSpace(s, i);
  if (*i >= s.size()) return false;
  std::string ignored;
  if (s[*i] == '"') return ParseString(s, i, &ignored);
  if (s[*i] == '{' || s[*i] == '[') {
    int depth = 0;
    while (*i < s.size()) {
      const char c = s[*i];
      if (c == '"') {
        if (!ParseString(s, i, &ignored)) return false;
        continue;
      }
      ++*i;
      if (c == '{' || c == '[') ++depth;
      if ((c == '}' || c == ']') && --depth == 0) return true;
    }
    return false;
  }
  // A number or a literal: up to the next delimiter.
  while (*i < s.size() && s[*i] != ',' && s[*i] != '}' && s[*i] != ']') ++*i;
  return true;
}

bool ParseRecord(std::string_view s, size_t* i, StoredPlay* r) {
  if (!Expect(s, i, '{')) return false;
  SkipSpace(s, i);
  if (*i < s.size() && s[*i] == '}') {
    ++*i;
    return true;
  }
  std::string key;
  for (;;) {
    SkipSpace(s, i);
    if (!ParseString(s, i, &key) || !Expect(s, i, ':')) return false;
    SkipSpace(s, i);
    int64_t v = 0;
    std::string* text = nullptr;
    int64_t* number = nullptr;
    if (key == "session") text = &r->session;
    if (key == "device") text = &r->device;
    if (key == "country") text = &r->country;
    if (key == "content_lang") text = &r->content_lang;
    if (key == "audio_lang") text = &r->audio_lang;
    if (key == "subtitle_lang") text = &r->subtitle_lang;
    if (key == "started_at") number = &r->started_at;
    if (key == "event_time") number = &r->event_time;
    if (key == "position_ms") number = &r->position_ms;
    if (key == "watched_ms") number = &r->watched_ms;
    if (text != nullptr) {
      if (!ParseString(s, i, text)) return false;
    } else if (number != nullptr) {
      if (!ParseInt(s, i, number)) return false;
    } else if (key == "member" || key == "title") {
      if (!ParseInt(s, i, &v)) return false;
      (key == "member" ? r->member : r->title) = static_cast<uint64_t>(v);
    } else if (!SkipValue(s, i)) {
      return false;
    }
    SkipSpace(s, i);
    if (*i >= s.size()) return false;
    if (s[*i] == ',') {
      ++*i;
      continue;
    }
    if (s[*i] == '}') {
      ++*i;
      return true;
    }
    return false;
  }
}

}  // namespace

bool ParseHistoryRecords(std::string_view body, std::vector<StoredPlay>* out, bool* detail_from) {
  out->clear();
  *detail_from = body.find("\"detail_from\"") != std::string_view::npos;
  const size_t at = body.find("\"records\"");
  if (at == std::string_view::npos) return false;
  size_t i = at + 9;
  if (!Expect(body, &i, ':') || !Expect(body, &i, '[')) return false;
  SkipSpace(body, &i);
  if (i < body.size() && body[i] == ']') return true;
  for (;;) {
    StoredPlay r;
    if (!ParseRecord(body, &i, &r)) return false;
    out->push_back(std::move(r));
    SkipSpace(body, &i);
    if (i >= body.size()) return false;
    if (body[i] == ']') return true;
    if (body[i++] != ',') return false;
  }
}

std::optional<std::string> FlagValue(const std::vector<std::string>& args, std::string_view flag) {
  std::optional<std::string> value;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (a == flag && i + 1 < args.size()) {
      value = args[++i];
    } else if (a.size() > flag.size() && a.substr(0, flag.size()) == flag &&
               a[flag.size()] == '=') {
      value = std::string(a.substr(flag.size() + 1));
    }
  }
  return value;
}

}  // namespace internal

namespace {

using compare::Connection;
using compare::System;
using compare::Workload;

constexpr Millis kHourMs = 3'600'000;
constexpr Millis kDayMs = 24 * kHourMs;
constexpr int kOracleExamples = 5;
// Other processes' CPU during a timed phase, as a share of one core, above which the table
// warns that the phase's figures are not the server's alone.
constexpr double kBusyMachineShare = 0.25;

Millis WallMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---- The workload, generated once -----------------------------------------------------------

// Phase 2's request counts do not depend on when it starts: due times are offsets.
uint64_t Phase2Batches(const CompareOptions& o) {
  const SteadyClock::time_point zero{};
  const auto end = zero + std::chrono::duration_cast<SteadyClock::duration>(
                              std::chrono::duration<double>(o.phase2_s));
  const double rate = static_cast<double>(o.events_per_s) / o.batch_size;
  uint64_t n = 0;
  for (int w = 0; w < o.write_connections; ++w) {
    n += CountDue(zero, rate, w, o.write_connections, 0, end);
  }
  return n;
}
uint64_t Phase2Reads(const CompareOptions& o) {
  const SteadyClock::time_point zero{};
  const auto end = zero + std::chrono::duration_cast<SteadyClock::duration>(
                              std::chrono::duration<double>(o.phase2_s));
  return CountDue(zero, static_cast<double>(o.reads_per_s), 0, 1, 0, end);
}

HistoryOracleOptions OracleOptionsFor(const CompareOptions& o, std::vector<uint64_t> members) {
  HistoryOracleOptions oo;
  oo.members = std::move(members);
  // The server's own filters, when the bench passes it other values.
  if (auto v = internal::FlagValue(o.strata_args, "--min-preview-ms")) {
    oo.strata_min_preview_ms = std::strtoll(v->c_str(), nullptr, 10);
  }
  if (auto v = internal::FlagValue(o.strata_args, "--preview-ttl-ms")) {
    const Millis ttl = std::strtoll(v->c_str(), nullptr, 10);
    oo.strata_preview_ttl_ms = ttl > 0 ? ttl : INT64_MAX / 2;
  }
  return oo;
}

Workload Generate(const CompareOptions& o, std::ostream& out) {
  const auto t0 = SteadyClock::now();
  Workload w;
  w.t0 = WallMillis();
  HistoryWorkloadOptions wo;
  wo.members = o.members;
  wo.zipf_s = o.zipf_s;
  wo.titles = o.titles;
  wo.seed = o.seed;
  HistoryWorkload gen(wo);
  w.oracle = std::make_unique<HistoryOracle>(
      OracleOptionsFor(o, OracleMembers(gen, static_cast<size_t>(o.oracle_members), o.seed)));
  std::vector<uint32_t> per_member(o.members + 1, 0);
  auto add = [&](std::vector<ViewingEvent>& batch, Millis now) {
    ViewingEvent e = gen.Next(now);
    w.oracle->Observe(e, w.t0);
    ++per_member[e.member];
    batch.push_back(e);
  };

  // Phase 1: the history, replayed in time order over [t0 - history, t0 - 1 h].
  const auto history = static_cast<Millis>(o.history_days * static_cast<double>(kDayMs));
  const Millis begin = w.t0 - history;
  const double step = static_cast<double>(history - kHourMs) / static_cast<double>(o.events);
  w.phase1_batches = (o.events + o.batch_size - 1) / o.batch_size;
  w.batches.reserve(w.phase1_batches + Phase2Batches(o));
  uint64_t k = 0;
  for (size_t b = 0; b < w.phase1_batches; ++b) {
    std::vector<ViewingEvent>& batch = w.batches.emplace_back();
    batch.reserve(o.batch_size);
    for (int j = 0; j < o.batch_size && k < o.events; ++j, ++k) {
      add(batch, begin + static_cast<Millis>(step * static_cast<double>(k + 1)));
    }
    w.phase1_events += batch.size();
  }
  // Phase 2: today's stream; each batch's events are as of its due time after t0 (so never
  // later than when it is sent).
  w.phase2_batches = Phase2Batches(o);
  const double batches_per_s = static_cast<double>(o.events_per_s) / o.batch_size;
  for (size_t b = 0; b < w.phase2_batches; ++b) {
    const Millis now = w.t0 + static_cast<Millis>(1000.0 * static_cast<double>(b) / batches_per_s);
    std::vector<ViewingEvent>& batch = w.batches.emplace_back();
    batch.reserve(o.batch_size);
    for (int j = 0; j < o.batch_size; ++j) add(batch, now);
    w.phase2_events += batch.size();
  }
  w.counts = gen.counts();

  Rng reads(Mix64(o.seed ^ 0x5EAD5));
  w.reads.resize(Phase2Reads(o));
  for (auto& m : w.reads) m = gen.SampleMember(reads);
  w.warmup.resize(static_cast<size_t>(o.read_connections) * o.warmup_reads);
  for (auto& m : w.warmup) m = gen.SampleMember(reads);

  std::vector<uint32_t> sorted(per_member.begin() + 1, per_member.end());
  std::sort(sorted.begin(), sorted.end());
  w.busiest_events = sorted.empty() ? 0 : sorted.back();
  w.median_events = sorted.empty() ? 0 : sorted[sorted.size() / 2];
  w.active_members = static_cast<uint64_t>(
      sorted.end() - std::upper_bound(sorted.begin(), sorted.end(), uint32_t{0}));

  const uint64_t total = w.phase1_events + w.phase2_events;
  out << "workload: " << Thousands(w.phase1_events) << " history events over "
      << Fmt("%.0f", o.history_days) << " days + " << Thousands(w.phase2_events) << " live events; "
      << Thousands(w.counts.plays) << " plays and " << Thousands(w.counts.previews)
      << " previews started, " << Thousands(w.counts.updates) << " progress updates ("
      << Fmt("%.1f", 100.0 * w.counts.updates / total) << "%), " << Thousands(w.counts.late)
      << " late older events (" << Fmt("%.1f", 100.0 * w.counts.late / total) << "%)\n"
      << "members: " << Thousands(w.active_members) << " of " << Thousands(o.members)
      << " active; busiest " << Thousands(w.busiest_events) << " events ("
      << Fmt("%.1f", 100.0 * w.busiest_events / total) << "%), median "
      << Thousands(w.median_events) << "; " << Thousands(w.reads.size())
      << " phase-2 reads, oracle sample " << w.oracle->members().size() << " members; generated in "
      << Fmt("%.1f", SecondsSince(t0)) << " s\n";
  return w;
}

// ---- Measurement helpers ---------------------------------------------------------------------

double CpuSeconds(const System& sys) {
  auto cpu = ProcessTreeCpuSeconds(sys.pid());
  return cpu.ok() ? *cpu : -1;
}

// CPU seconds used so far by the server, the bench, and the whole machine.
struct CpuSnapshot {
  double server = -1;
  double bench = 0;
  MachineCpu machine;
};
CpuSnapshot TakeCpu(const System& sys) {
  return CpuSnapshot{CpuSeconds(sys), SelfCpuSeconds(), MachineCpuSeconds()};
}
// CPU seconds over a phase, by whom.
struct PhaseCpu {
  double server = -1;  // -1 = unknown
  double bench = 0;
  double kernel = 0;   // kernel threads and interrupts
  double others = -1;  // every other process (other users' work on a shared machine)
};
PhaseCpu CpuBetween(const CpuSnapshot& a, const CpuSnapshot& b) {
  PhaseCpu c;
  c.bench = b.bench - a.bench;
  c.kernel = (b.machine.kernel_threads - a.machine.kernel_threads) +
             (b.machine.interrupts - a.machine.interrupts);
  if (a.server < 0 || b.server < a.server) return c;
  c.server = b.server - a.server;
  c.others = std::max(0.0, (b.machine.busy - a.machine.busy) - c.server - c.bench - c.kernel);
  return c;
}
std::string Describe(const PhaseCpu& c) {
  return "CPU: server " + Fmt("%.1f", c.server) + " s, bench " + Fmt("%.1f", c.bench) +
         " s, kernel threads and interrupts " + Fmt("%.1f", c.kernel) + " s, other processes " +
         Fmt("%.1f", c.others) + " s";
}

// Opens n connections.
absl::StatusOr<std::vector<std::unique_ptr<Connection>>> Connections(System& sys, int n) {
  std::vector<std::unique_ptr<Connection>> out;
  for (int i = 0; i < n; ++i) {
    STRATA_ASSIGN_OR_RETURN(auto c, sys.Connect());
    out.push_back(std::move(c));
  }
  return out;
}

// Sends the batches `indices` closed-loop over the connections (each takes the next index
// as soon as it has an answer). Marks acknowledged batches in *acked.
struct ClosedLoopResult {
  OpStats stats;
  double seconds = 0;
  uint64_t events = 0;  // in acknowledged batches
  std::string first_error;
};

// The first error any of the connections saw (they are idle now).
std::string FirstError(const std::vector<std::unique_ptr<Connection>>& conns) {
  for (const auto& c : conns) {
    if (!c->last_error.empty()) return c->last_error;
  }
  return "";
}
ClosedLoopResult SendClosedLoop(const std::vector<size_t>& indices, const Workload& w,
                                std::vector<std::unique_ptr<Connection>>& conns, int slice_us,
                                std::vector<uint8_t>* acked) {
  ClosedLoopResult result;
  for (auto& c : conns) c->last_error.clear();
  std::atomic<size_t> next{0};
  std::vector<OpStats> stats(conns.size());
  std::vector<uint64_t> events(conns.size(), 0);
  const auto t0 = SteadyClock::now();
  std::vector<std::thread> threads;
  for (size_t c = 0; c < conns.size(); ++c) {
    threads.emplace_back([&, c] {
      if (slice_us > 0) ThreadPool::SetCurrentThreadSlice(slice_us);
      for (size_t k = next.fetch_add(1); k < indices.size(); k = next.fetch_add(1)) {
        const size_t b = indices[k];
        const auto sent = SteadyClock::now();
        const int code = conns[c]->Write(b);
        stats[c].Add(code, MicrosSince(sent));
        if (code == 200) {
          (*acked)[b] = 1;
          events[c] += w.batches[b].size();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  result.seconds = SecondsSince(t0);
  for (size_t c = 0; c < conns.size(); ++c) {
    result.stats.Merge(stats[c]);
    result.events += events[c];
  }
  result.first_error = FirstError(conns);
  return result;
}

// Re-sends the batches of [first, last) not acknowledged yet, up to 3 rounds. Returns how
// many were sent; *failed = those still not acknowledged.
uint64_t CatchUp(size_t first, size_t last, const Workload& w,
                 std::vector<std::unique_ptr<Connection>>& conns, std::vector<uint8_t>* acked,
                 uint64_t* failed) {
  uint64_t sent = 0;
  std::vector<size_t> todo;
  for (int round = 0; round < 3; ++round) {
    todo.clear();
    for (size_t b = first; b < last; ++b) {
      if (!(*acked)[b]) todo.push_back(b);
    }
    if (todo.empty()) break;
    sent += todo.size();
    SendClosedLoop(todo, w, conns, 0, acked);
  }
  *failed = 0;
  for (size_t b = first; b < last; ++b) *failed += (*acked)[b] ? 0 : 1;
  return sent;
}

OracleCheck CheckOracle(System& sys, const HistoryOracle& oracle, int limit) {
  OracleCheck check;
  check.ran = true;
  auto conn = sys.Connect();
  for (uint64_t member : oracle.members()) {
    ++check.members;
    std::string problem;
    std::vector<StoredPlay> got;
    if (!conn.ok()) {
      problem = conn.status().ToString();
    } else if (absl::Status s = (*conn)->NewestPlays(member, &got); !s.ok()) {
      problem = s.ToString();
    } else {
      check.records += got.size();
      problem = CompareNewestPlays(oracle.NewestPlays(member, static_cast<size_t>(limit)), got);
    }
    if (problem.empty()) continue;
    ++check.mismatches;
    if (check.examples.size() < kOracleExamples) {
      check.examples.push_back("member " + std::to_string(member) + ": " + problem);
    }
  }
  return check;
}

void PrintOracle(const std::string& name, const char* when, const OracleCheck& c,
                 std::ostream& out) {
  out << name << ": oracle " << when << ": " << (c.passed() ? "PASS" : "FAIL") << " (" << c.members
      << " members, " << Thousands(c.records) << " plays compared field by field, " << c.mismatches
      << " mismatching)\n";
  for (const auto& e : c.examples) out << "    " << e << "\n";
}

// The last lines of a server's log (it goes with the temporary directory).
void PrintLogTail(const std::string& path, std::ostream& out) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(std::move(line));
    if (lines.size() > 20) lines.erase(lines.begin());
  }
  if (lines.empty()) return;
  out << "last lines of " << path << ":\n";
  for (const auto& line : lines) out << "  | " << line << "\n";
}

// One phase-2 request as the trace file records it.
struct TracedRequest {
  SteadyClock::time_point due, sent, done;
  int status = 0;
};

// Appends one system's phase-2 requests to the trace file (see CompareOptions::trace_path),
// in due order within each kind.
absl::Status AppendTrace(const std::string& path, const std::string& system,
                         SteadyClock::time_point start,
                         const std::vector<std::vector<TracedRequest>>& writes,
                         const std::vector<std::vector<TracedRequest>>& reads) {
  std::ofstream f(path, std::ios::app);
  if (!f) return absl::InternalError("cannot open " + path + ": " + std::strerror(errno));
  auto us = [&](SteadyClock::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t - start).count();
  };
  struct Line {
    const char* kind;
    size_t connection;
    const TracedRequest* r;
  };
  // The phase's start on the wall clock, to line the trace up with servers' logs.
  const auto wall_start = std::chrono::system_clock::now() - (SteadyClock::now() - start);
  f << "# " << system << " phase 2 started at unix time "
    << std::chrono::duration_cast<std::chrono::microseconds>(wall_start.time_since_epoch()).count()
    << " us, CLOCK_MONOTONIC "
    << std::chrono::duration_cast<std::chrono::microseconds>(start.time_since_epoch()).count()
    << " us\n";
  for (const auto& [kind, per_connection] : {std::pair{"write", &writes}, {"read", &reads}}) {
    std::vector<Line> lines;
    for (size_t c = 0; c < per_connection->size(); ++c) {
      for (const auto& r : (*per_connection)[c]) lines.push_back({kind, c, &r});
    }
    std::sort(lines.begin(), lines.end(),
              [](const Line& a, const Line& b) { return a.r->due < b.r->due; });
    for (const auto& l : lines) {
      f << system << '\t' << l.kind << '\t' << l.connection << '\t' << us(l.r->due) << '\t'
        << us(l.r->sent) << '\t' << us(l.r->done) << '\t' << l.r->status << '\n';
    }
  }
  f.flush();
  if (!f) return absl::InternalError("writing " + path + " failed");
  return absl::OkStatus();
}

// ---- One system's run ------------------------------------------------------------------------

void RunPhase2(System& sys, const Workload& w, const CompareOptions& o,
               std::vector<std::unique_ptr<Connection>>& writers,
               std::vector<std::unique_ptr<Connection>>& readers, std::vector<uint8_t>* acked,
               SystemRun* run) {
  for (auto* conns : {&writers, &readers}) {
    for (auto& c : *conns) c->last_error.clear();
  }
  // Warm-up: untimed reads on each read connection.
  {
    std::vector<std::thread> threads;
    for (size_t c = 0; c < readers.size(); ++c) {
      threads.emplace_back([&, c] {
        size_t rows = 0;
        for (int i = 0; i < o.warmup_reads; ++i) {
          (void)readers[c]->Read(w.warmup[c * o.warmup_reads + i], &rows);
        }
      });
    }
    for (auto& t : threads) t.join();
  }

  const double batches_per_s = static_cast<double>(o.events_per_s) / o.batch_size;
  const int nw = static_cast<int>(writers.size());
  std::vector<OpStats> write_stats(writers.size());
  std::vector<OpStats> read_stats(readers.size());
  std::vector<uint64_t> late_batches(writers.size(), 0), unsent_batches(writers.size(), 0);
  std::vector<uint64_t> late_reads(readers.size(), 0), unsent_reads(readers.size(), 0);
  std::vector<uint64_t> rows(readers.size(), 0);
  const CpuSnapshot cpu0 = TakeCpu(sys);
  const std::map<std::string, double> roles0 = ThreadCpuSecondsByRole(sys.pid());
  const auto start = SteadyClock::now() + std::chrono::milliseconds(20);
  const auto end = start + std::chrono::duration_cast<SteadyClock::duration>(
                               std::chrono::duration<double>(o.phase2_s));
  ArrivalSchedule arrivals(start, end, static_cast<double>(o.reads_per_s));
  const bool tracing = !o.trace_path.empty();
  // Reads are always kept (for the kernel-burst figures); writes only for the trace.
  std::vector<std::vector<TracedRequest>> write_trace(writers.size()), read_trace(readers.size());
  for (auto& v : write_trace) v.reserve(tracing ? 1 << 12 : 0);
  for (auto& v : read_trace) v.reserve(1 << 16);
  KernelBurstWatch kernel(FindThreadsNamed(kKernelThreadPrefix));
  kernel.Start();
  std::vector<std::thread> threads;
  for (int c = 0; c < nw; ++c) {
    threads.emplace_back([&, c] {
      if (o.client_slice_us > 0) ThreadPool::SetCurrentThreadSlice(o.client_slice_us);
      for (uint64_t i = 0;; ++i) {
        const auto due = Due(start, batches_per_s, c, nw, i);
        if (due >= end) return;
        if (SteadyClock::now() >= end) {
          unsent_batches[c] += CountDue(start, batches_per_s, c, nw, i, end);
          return;
        }
        // The batches in due order: request i of connection c is batch i * nw + c.
        const size_t b = w.phase1_batches + i * nw + c;
        if (b >= w.batches.size()) return;  // (never: the schedule made the batches)
        if (SleepUntilDue(due)) ++late_batches[c];
        const auto sent = SteadyClock::now();
        const int code = writers[c]->Write(b);
        write_stats[c].Add(code, MicrosSince(due));
        if (code == 200) (*acked)[b] = 1;
        if (tracing) write_trace[c].push_back({due, sent, SteadyClock::now(), code});
      }
    });
  }
  for (size_t c = 0; c < readers.size(); ++c) {
    threads.emplace_back([&, c] {
      if (o.client_slice_us > 0) ThreadPool::SetCurrentThreadSlice(o.client_slice_us);
      for (;;) {
        SteadyClock::time_point due;
        uint64_t n = 0;
        const ArrivalSchedule::Take take = arrivals.Next(&due, &n);
        if (take == ArrivalSchedule::Take::kDone) return;
        if (take == ArrivalSchedule::Take::kUnsent) {
          ++unsent_reads[c];
          continue;
        }
        if (SleepUntilDue(due)) ++late_reads[c];
        const auto sent = SteadyClock::now();
        size_t got = 0;
        const int code = readers[c]->Read(w.reads[n % w.reads.size()], &got);
        read_stats[c].Add(code, MicrosSince(due));
        rows[c] += got;
        read_trace[c].push_back({due, sent, SteadyClock::now(), code});
      }
    });
  }
  for (auto& t : threads) t.join();
  run->phase2_s = SecondsSince(start);
  kernel.Stop();
  const PhaseCpu cpu = CpuBetween(cpu0, TakeCpu(sys));
  if (tracing) {
    if (absl::Status s = AppendTrace(o.trace_path, sys.name(), start, write_trace, read_trace);
        !s.ok()) {
      std::cerr << "trace: " << s << "\n";
    }
  }
  run->phase2_cpu_s = cpu.server;
  run->phase2_bench_cpu_s = cpu.bench;
  run->phase2_kernel_cpu_s = cpu.kernel;
  run->phase2_others_cpu_s = cpu.others;
  for (const auto& [role, seconds] : ThreadCpuSecondsByRole(sys.pid())) {
    const auto before = roles0.find(role);
    const double used = seconds - (before == roles0.end() ? 0.0 : before->second);
    if (used > 0) run->phase2_cpu_by_role.emplace_back(role, used);
  }
  std::sort(run->phase2_cpu_by_role.begin(), run->phase2_cpu_by_role.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  OpStats ws, rs;
  for (auto& s : write_stats) ws.Merge(s);
  for (auto& s : read_stats) rs.Merge(s);
  run->write_batch = MakeOpReport("write batch", ws, run->phase2_s);
  run->read = MakeOpReport("read", rs, run->phase2_s);
  uint64_t total_rows = 0;
  for (size_t c = 0; c < readers.size(); ++c) {
    run->late_reads += late_reads[c];
    run->unsent_reads += unsent_reads[c];
    total_rows += rows[c];
  }
  for (int c = 0; c < nw; ++c) {
    run->late_batches += late_batches[c];
    run->unsent_batches += unsent_batches[c];
  }
  if (kernel.watching()) {
    std::vector<TimedRequest> reads;
    for (const auto& per_connection : read_trace) {
      for (const auto& r : per_connection) {
        reads.push_back({r.due, r.done, r.status >= 200 && r.status < 300});
      }
    }
    run->read_bursts = ShareOfBursts(kernel.bursts(), kernel.cpu_ns(), reads, run->read.p99_ms);
  }
  const uint64_t ok_reads = run->read.count - run->read.errors;
  run->rows_per_read = ok_reads > 0 ? static_cast<double>(total_rows) / ok_reads : 0;
  for (size_t b = w.phase1_batches; b < w.batches.size(); ++b) {
    if ((*acked)[b]) run->phase2_events += w.batches[b].size();
  }
}

SystemRun RunSystem(System& sys, const Workload& w, const CompareOptions& o, std::ostream& out) {
  SystemRun run;
  run.name = sys.name();
  const std::string& name = run.name;
  auto fail = [&](const absl::Status& s) {
    run.error = s.ToString();
    out << name << ": ERROR: " << run.error << "\n";
    (void)sys.Stop();
    PrintLogTail(sys.log_path(), out);
    out << std::flush;
    return run;
  };
  out << "\n== " << name << " ==\n" << std::flush;
  sys.BuildPayloads(w, out);
  if (absl::Status s = sys.Start(); !s.ok()) return fail(s);
  run.settings = sys.Settings();
  for (const auto& line : run.settings) out << line << "\n";
  out << std::flush;

  std::vector<uint8_t> acked(w.batches.size(), 0);
  auto writers = Connections(sys, o.write_connections);
  if (!writers.ok()) return fail(writers.status());
  auto readers = Connections(sys, o.read_connections);
  if (!readers.ok()) return fail(readers.status());
  const auto sampling_from = SteadyClock::now();
  PeakPssSampler pss(sys.pid(), o.pss_interval_s);

  // Phase 1, closed loop.
  out << name << ": phase 1: " << Thousands(w.phase1_events) << " events in batches of "
      << o.batch_size << " on " << o.write_connections << " connections, closed loop ...\n"
      << std::flush;
  std::vector<size_t> phase1(w.phase1_batches);
  for (size_t b = 0; b < phase1.size(); ++b) phase1[b] = b;
  const CpuSnapshot cpu0 = TakeCpu(sys);
  ClosedLoopResult p1 = SendClosedLoop(phase1, w, *writers, o.client_slice_us, &acked);
  const PhaseCpu cpu1 = CpuBetween(cpu0, TakeCpu(sys));
  run.phase1_cpu_s = cpu1.server;
  run.phase1_bench_cpu_s = cpu1.bench;
  run.phase1_kernel_cpu_s = cpu1.kernel;
  run.phase1_others_cpu_s = cpu1.others;
  run.phase1_events = p1.events;
  run.phase1_s = p1.seconds;
  run.phase1_events_per_s = p1.seconds > 0 ? static_cast<double>(p1.events) / p1.seconds : 0;
  run.phase1_batch = MakeOpReport("phase 1 batch", p1.stats, p1.seconds);
  out << name << ": phase 1: " << Thousands(p1.events) << " events in " << Fmt("%.1f", p1.seconds)
      << " s = " << Fmt("%.0f", run.phase1_events_per_s) << " events/s; batch p50 "
      << Fmt("%.1f", run.phase1_batch.p50_ms) << " ms, p99 " << Fmt("%.1f", run.phase1_batch.p99_ms)
      << " ms, errors " << run.phase1_batch.errors << "; " << Describe(cpu1) << "\n";
  if (!p1.first_error.empty()) {
    run.first_error = p1.first_error;
    out << name << ": phase 1: first error: " << run.first_error << "\n";
  }
  uint64_t failed = 0;
  run.caught_up_batches += CatchUp(0, w.phase1_batches, w, *writers, &acked, &failed);
  run.failed_batches += failed;
  if (const std::string line = sys.Diagnostics(); !line.empty()) {
    out << name << " after phase 1: " << line << "\n";
  }
  if (const std::string line = sys.AfterLoad(); !line.empty()) {
    out << name << ": " << line << "\n";
    run.settings.push_back(line);
  }

  // Phase 2, open loop.
  out << name << ": phase 2: " << Fmt("%.0f", o.phase2_s) << " s, " << Thousands(o.events_per_s)
      << " events/s on " << o.write_connections << " connections + " << Thousands(o.reads_per_s)
      << " reads/s of the newest " << o.read_limit << " plays on " << o.read_connections
      << " others (after " << o.warmup_reads << " warm-up reads each), open loop ...\n"
      << std::flush;
  RunPhase2(sys, w, o, *writers, *readers, &acked, &run);
  out << name << ": phase 2: reads p50 " << Fmt("%.2f", run.read.p50_ms) << " / p99 "
      << Fmt("%.2f", run.read.p99_ms) << " / p99.9 " << Fmt("%.2f", run.read.p999_ms) << " / max "
      << Fmt("%.2f", run.read.max_ms) << " ms (" << Thousands(run.read.count) << " reads, avg "
      << Fmt("%.1f", run.rows_per_read) << " plays, " << run.read.errors << " errors, "
      << run.late_reads << " late, " << run.unsent_reads << " unsent); write batches p50 "
      << Fmt("%.1f", run.write_batch.p50_ms) << " / p99 " << Fmt("%.1f", run.write_batch.p99_ms)
      << " / max " << Fmt("%.1f", run.write_batch.max_ms) << " ms ("
      << Thousands(run.write_batch.count) << " batches, " << run.write_batch.errors << " errors, "
      << run.late_batches << " late, " << run.unsent_batches << " unsent)\n"
      << name << ": phase 2: "
      << Describe(PhaseCpu{run.phase2_cpu_s, run.phase2_bench_cpu_s, run.phase2_kernel_cpu_s,
                           run.phase2_others_cpu_s})
      << "\n";
  if (run.read_bursts.watched) {
    out << name << ": phase 2: " << DescribeShare(run.read_bursts, "reads") << "\n";
  }
  if (!run.phase2_cpu_by_role.empty()) {
    // Threads that exited during the phase are missing; the largest roles are what matters.
    out << name << ": phase 2: server CPU by thread, % of a core:";
    for (size_t i = 0; i < run.phase2_cpu_by_role.size() && i < 10; ++i) {
      out << (i == 0 ? " " : ", ") << run.phase2_cpu_by_role[i].first << " "
          << Fmt("%.0f", 100 * run.phase2_cpu_by_role[i].second / run.phase2_s) << "%";
    }
    out << "\n";
  }
  for (const auto* conns : {&*writers, &*readers}) {
    const std::string e = FirstError(*conns);
    if (!e.empty() && run.write_batch.errors + run.read.errors > 0) {
      out << name << ": phase 2: an error: " << e << "\n";
      if (run.first_error.empty()) run.first_error = e;
    }
  }
  const uint64_t before = run.caught_up_batches;
  run.caught_up_batches +=
      CatchUp(w.phase1_batches, w.batches.size(), w, *writers, &acked, &failed);
  run.failed_batches += failed;
  if (run.caught_up_batches > before) {
    out << name << ": sent " << run.caught_up_batches - before
        << " batches not acknowledged in phase 2 afterwards, untimed (both systems end with "
           "the same data)\n";
  }
  if (const std::string line = sys.Diagnostics(); !line.empty()) {
    out << name << " after phase 2: " << line << "\n";
  }
  run.peak_pss = pss.Stop();
  out << name << ": peak PSS " << MiB(run.peak_pss) << " MiB (" << pss.samples()
      << " samples, one per "
      << Fmt("%.0f", 1000 * SecondsSince(sampling_from) / std::max<uint64_t>(pss.samples(), 1))
      << " ms, " << Fmt("%.1f", pss.mean_sample_ms()) << " ms of CPU each)\n";
  run.rejected_events = sys.rejected.load();
  run.accepted_events = sys.accepted.load();
  run.dropped_events = sys.dropped.load();
  writers->clear();
  readers->clear();
  sys.DropPayloads();
  if (run.failed_batches > 0) {
    return fail(absl::UnavailableError(std::to_string(run.failed_batches) +
                                       " batches were never acknowledged"));
  }

  // Sizes and the oracle, right after the run.
  run.records = sys.Records(*w.oracle);
  auto size = sys.Size();
  if (!size.ok()) return fail(size.status());
  run.bytes_after_run = size->bytes;
  run.wal_after_run = size->wal;
  run.counted_records = sys.CountRecords();
  if (!w.oracle->members().empty()) {
    const std::string plan = sys.ReadPlan(w.oracle->members().front());
    if (!plan.empty()) run.settings.push_back("newest-plays plan: " + plan);
  }
  out << name << ": after phase 2: " << MiB(run.bytes_after_run) << " MiB on disk for "
      << Thousands(run.records) << " records = "
      << Fmt("%.1f", static_cast<double>(run.bytes_after_run) / std::max<uint64_t>(run.records, 1))
      << " bytes/record"
      << (run.counted_records ? " (the table counts " + Thousands(run.counted_records) + ")" : "")
      << "\n";
  run.after_run = CheckOracle(sys, *w.oracle, o.read_limit);
  PrintOracle(name, "after phase 2", run.after_run, out);

  // Idle.
  out << name << ": idle " << Fmt("%.0f", o.idle_s) << " s ...\n" << std::flush;
  std::this_thread::sleep_for(std::chrono::duration<double>(o.idle_s));
  size = sys.Size();
  if (!size.ok()) return fail(size.status());
  run.bytes_after_idle = size->bytes;
  run.wal_after_idle = size->wal;
  out << name << ": after idle: " << MiB(run.bytes_after_idle) << " MiB on disk = "
      << Fmt("%.1f", static_cast<double>(run.bytes_after_idle) / std::max<uint64_t>(run.records, 1))
      << " bytes/record\n";
  if (const std::string line = sys.Diagnostics(); !line.empty()) {
    out << name << " after idle: " << line << "\n";
  }
  run.after_idle = CheckOracle(sys, *w.oracle, o.read_limit);
  PrintOracle(name, "after idle", run.after_idle, out);

  // kill -9 and restart.
  sys.Crash();
  const auto t0 = SteadyClock::now();
  if (absl::Status s = sys.Restart(); !s.ok()) return fail(s);
  run.restart_s = SecondsSince(t0);
  run.after_restart = CheckOracle(sys, *w.oracle, o.read_limit);
  out << name << ": killed with SIGKILL, restarted in " << Fmt("%.1f", run.restart_s) << " s\n";
  PrintOracle(name, "after kill -9 and restart", run.after_restart, out);

  if (absl::Status s = sys.Stop(); !s.ok()) out << name << ": stop: " << s.ToString() << "\n";
  run.completed = true;
  return run;
}

// ---- The run ---------------------------------------------------------------------------------

absl::Status Validate(const CompareOptions& o) {
  if (o.peer != "postgres" && o.peer != "none") {
    return absl::InvalidArgumentError("peer: must be \"postgres\" or \"none\"");
  }
  if (o.order != "strata-first" && o.order != "postgres-first") {
    return absl::InvalidArgumentError("order: must be \"strata-first\" or \"postgres-first\"");
  }
  if (o.members < 1) return absl::InvalidArgumentError("members: must be >= 1");
  if (!(o.zipf_s > 0) || o.zipf_s > 10)
    return absl::InvalidArgumentError("zipf: must be in (0, 10]");
  if (o.titles < 1) return absl::InvalidArgumentError("titles: must be >= 1");
  if (!(o.history_days >= 1) || o.history_days > 725) {
    return absl::InvalidArgumentError(
        "history_days: must be 1..725 (Strata keeps plays older than 730 days only as summaries)");
  }
  if (o.events < 1) return absl::InvalidArgumentError("events: must be >= 1");
  if (o.batch_size < 1 || o.batch_size > 5000) {
    return absl::InvalidArgumentError(
        "batch: must be 1..5000 (PostgreSQL takes at most 65535 parameters per statement)");
  }
  if (o.write_connections < 1 || o.write_connections > 256 || o.read_connections < 1 ||
      o.read_connections > 256) {
    return absl::InvalidArgumentError("write_connections, read_connections: must be 1..256");
  }
  if (!(o.phase2_s > 0)) return absl::InvalidArgumentError("duration: must be > 0");
  if (o.events_per_s < 1 || o.reads_per_s < 1) {
    return absl::InvalidArgumentError("events_per_s, reads_per_s: must be >= 1 in compare mode");
  }
  if (o.warmup_reads < 0) return absl::InvalidArgumentError("warmup_reads: must be >= 0");
  if (o.read_limit < 1 || o.read_limit > 1000) {
    return absl::InvalidArgumentError("read_limit: must be 1..1000");
  }
  if (o.oracle_members < 1) return absl::InvalidArgumentError("oracle_members: must be >= 1");
  if (!(o.idle_s >= 0)) return absl::InvalidArgumentError("idle: must be >= 0");
  if (!(o.pss_interval_s > 0)) return absl::InvalidArgumentError("pss_interval_s: must be > 0");
  if (o.client_slice_us < 0 || o.client_slice_us > 100000) {
    return absl::InvalidArgumentError("client_slice_us: must be 0..100000");
  }
  return CheckStrataArgs(o.strata_args, "strata_args");
}

}  // namespace

absl::StatusOr<CompareReport> RunCompareBench(const CompareOptions& options, std::ostream& out) {
  STRATA_RETURN_IF_ERROR(Validate(options));
  if (options.peer == "postgres") {
    for (const char* tool : {"/initdb", "/postgres"}) {
      if (access((options.pg_bin_dir + tool).c_str(), X_OK) != 0) {
        return absl::FailedPreconditionError(
            "pg_bin_dir: no " + options.pg_bin_dir + tool +
            " (install postgresql-15: scripts/install-deps.sh), or run with --peer none");
      }
    }
  }
  if (!options.trace_path.empty()) {
    std::ofstream f(options.trace_path, std::ios::trunc);
    f << "system\tkind\tconnection\tdue_us\tsent_us\tanswered_us\tstatus\n";
    if (!f) {
      return absl::InvalidArgumentError("trace: cannot write " + options.trace_path + ": " +
                                        std::strerror(errno));
    }
  }
  STRATA_ASSIGN_OR_RETURN(auto dir,
                          WorkDir::Create(options.work_dir, options.keep_dirs, "strata-compare"));
  out << "strata bench viewing --mode compare: Strata vs "
      << (options.peer == "postgres" ? "PostgreSQL 15" : "nothing (--peer none)") << "\n"
      << "command: " << CommandLine() << "\n"
      << "machine: " << Machine(dir->path()) << "\n"
      << std::flush;

  Workload w = Generate(options, out);
  CompareReport report;
  std::vector<std::unique_ptr<System>> systems;
  systems.push_back(compare::MakeStrataSystem(options, dir->path()));
  if (options.peer == "postgres") {
    auto pg = compare::MakePostgresSystem(options, dir->path());
    if (options.order == "postgres-first") {
      systems.insert(systems.begin(), std::move(pg));
    } else {
      systems.push_back(std::move(pg));
    }
  }
  for (auto& sys : systems) report.systems.push_back(RunSystem(*sys, w, options, out));
  systems.clear();  // servers stopped before their directory goes
  report.passed = true;
  for (const auto& r : report.systems) {
    report.passed = report.passed && r.completed && r.oracle_passed() && r.rejected_events == 0;
  }
  if (options.keep_dirs) out << "\ndata kept in " << dir->path() << "\n";
  PrintCompareTable(options, report, out);
  return report;
}

// ---- The table -------------------------------------------------------------------------------

namespace {

struct Row {
  std::string label;
  std::string strata;
  std::string pg;
  std::string ratio;
  std::string better;
};

}  // namespace

void PrintCompareTable(const CompareOptions& o, const CompareReport& report, std::ostream& out) {
  const SystemRun* s = nullptr;
  const SystemRun* p = nullptr;
  for (const auto& r : report.systems) (r.name == "Strata" ? s : p) = &r;
  std::vector<Row> rows;
  // A numeric row: each side's value (nullopt = not available), its format, and whether
  // higher is better (for the ratio column).
  auto add = [&](const std::string& label, std::optional<double> sv, std::optional<double> pv,
                 const char* fmt, bool higher_better, bool thousands = false) {
    auto cell = [&](std::optional<double> v) -> std::string {
      if (!v) return "-";
      return thousands ? Thousands(static_cast<uint64_t>(std::llround(*v))) : Fmt(fmt, *v);
    };
    Row r{label, cell(sv), cell(pv), "", higher_better ? "higher" : "lower"};
    if (sv && pv && *pv > 0 && *sv >= 0) r.ratio = Fmt("%.2fx", *sv / *pv);
    rows.push_back(std::move(r));
  };
  auto text = [&](const std::string& label, const std::string& sv, const std::string& pv) {
    rows.push_back(Row{label, sv, pv, "", ""});
  };
  auto val = [](const SystemRun* r, auto f) -> std::optional<double> {
    if (r == nullptr || r->phase1_s <= 0) return std::nullopt;
    return f(*r);
  };
  auto per_record = [](uint64_t bytes, const SystemRun& r) {
    return static_cast<double>(bytes) / static_cast<double>(std::max<uint64_t>(r.records, 1));
  };

  add("phase 1: ingest events/s (closed loop)",
      val(s, [](const SystemRun& r) { return r.phase1_events_per_s; }),
      val(p, [](const SystemRun& r) { return r.phase1_events_per_s; }), "%.0f", true, true);
  add("phase 1: batch p99 ms", val(s, [](const SystemRun& r) { return r.phase1_batch.p99_ms; }),
      val(p, [](const SystemRun& r) { return r.phase1_batch.p99_ms; }), "%.1f", false);
  auto cpu_per_event = [](const SystemRun& r) {
    return r.phase1_cpu_s >= 0 && r.phase1_events > 0
               ? 1e6 * r.phase1_cpu_s / static_cast<double>(r.phase1_events)
               : -1.0;
  };
  add("phase 1: server CPU us/event", val(s, cpu_per_event), val(p, cpu_per_event), "%.2f", false);
  auto p2 = [&](auto f) { return std::make_pair(val(s, f), val(p, f)); };
  auto [r50s, r50p] = p2([](const SystemRun& r) { return r.read.p50_ms; });
  add("phase 2: read p50 ms", r50s, r50p, "%.2f", false);
  auto [r99s, r99p] = p2([](const SystemRun& r) { return r.read.p99_ms; });
  add("phase 2: read p99 ms", r99s, r99p, "%.2f", false);
  auto [r999s, r999p] = p2([](const SystemRun& r) { return r.read.p999_ms; });
  add("phase 2: read p99.9 ms", r999s, r999p, "%.2f", false);
  auto [rmaxs, rmaxp] = p2([](const SystemRun& r) { return r.read.max_ms; });
  add("phase 2: read max ms", rmaxs, rmaxp, "%.2f", false);
  const bool kernel_rows =
      (s != nullptr && s->read_bursts.watched) || (p != nullptr && p->read_bursts.watched);
  if (kernel_rows) {
    auto in_bursts = [](const SystemRun* r) {
      if (r == nullptr || !r->read_bursts.watched) return std::string("-");
      return Thousands(r->read_bursts.slow_in_bursts) + " of " + Thousands(r->read_bursts.slow);
    };
    text("  reads >= p99 in kdamond bursts (4)", in_bursts(s), in_bursts(p));
    auto burst_figure = [&](double BurstShare::*field) {
      auto one = [&](const SystemRun* r) -> std::optional<double> {
        if (r == nullptr || !r->read_bursts.watched || r->phase1_s <= 0) return std::nullopt;
        return r->read_bursts.*field;
      };
      return std::make_pair(one(s), one(p));
    };
    auto [i99s, i99p] = burst_figure(&BurstShare::p99_inside_ms);
    add("  read p99 ms, the reads in bursts (4)", i99s, i99p, "%.2f", false);
    auto [o99s, o99p] = burst_figure(&BurstShare::p99_outside_ms);
    add("  read p99 ms, the reads outside (4)", o99s, o99p, "%.2f", false);
    auto [o999s, o999p] = burst_figure(&BurstShare::p999_outside_ms);
    add("  read p99.9 ms, the reads outside (4)", o999s, o999p, "%.2f", false);
  }
  auto [w50s, w50p] = p2([](const SystemRun& r) { return r.write_batch.p50_ms; });
  add("phase 2: write batch p50 ms", w50s, w50p, "%.1f", false);
  auto [w99s, w99p] = p2([](const SystemRun& r) { return r.write_batch.p99_ms; });
  add("phase 2: write batch p99 ms", w99s, w99p, "%.1f", false);
  auto [w999s, w999p] = p2([](const SystemRun& r) { return r.write_batch.p999_ms; });
  add("phase 2: write batch p99.9 ms", w999s, w999p, "%.1f", false);
  auto [wmaxs, wmaxp] = p2([](const SystemRun& r) { return r.write_batch.max_ms; });
  add("phase 2: write batch max ms", wmaxs, wmaxp, "%.1f", false);
  auto counts = [](const SystemRun* r, uint64_t late, uint64_t unsent, uint64_t errors) {
    if (r == nullptr || r->phase2_s <= 0) return std::string("-");
    return Thousands(late) + " / " + Thousands(unsent) + " / " + Thousands(errors);
  };
  text("phase 2: reads late>1ms/unsent/errors",
       s ? counts(s, s->late_reads, s->unsent_reads, s->read.errors) : "-",
       p ? counts(p, p->late_reads, p->unsent_reads, p->read.errors) : "-");
  text("phase 2: batches late/unsent/errors",
       s ? counts(s, s->late_batches, s->unsent_batches, s->write_batch.errors) : "-",
       p ? counts(p, p->late_batches, p->unsent_batches, p->write_batch.errors) : "-");
  auto cpu2 = [](const SystemRun& r) {
    return r.phase2_cpu_s >= 0 && r.phase2_s > 0 ? 100 * r.phase2_cpu_s / r.phase2_s : -1.0;
  };
  add("phase 2: server CPU, % of a core", val(s, cpu2), val(p, cpu2), "%.0f%%", false);
  auto share = [](double cpu_s, double secs) {
    return cpu_s >= 0 && secs > 0 ? Fmt("%.0f%%", 100 * cpu_s / secs) : std::string("?");
  };
  auto load_cells = [&](const SystemRun* r) {
    if (r == nullptr || r->phase2_s <= 0) return std::string("-");
    return share(r->phase2_bench_cpu_s, r->phase2_s) + " / " +
           share(r->phase2_kernel_cpu_s, r->phase2_s) + " / " +
           share(r->phase2_others_cpu_s, r->phase2_s);
  };
  text("phase 2: CPU of bench / kernel / others (3)", load_cells(s), load_cells(p));
  add("records held", val(s, [](const SystemRun& r) { return static_cast<double>(r.records); }),
      val(p, [](const SystemRun& r) { return static_cast<double>(r.records); }), "%.0f", true,
      true);
  rows.back().ratio.clear();
  rows.back().better.clear();
  auto done = [](const SystemRun* r) { return r != nullptr && r->bytes_after_run > 0; };
  auto size_val = [&](const SystemRun* r, uint64_t SystemRun::*field) -> std::optional<double> {
    if (!done(r) || r->*field == 0) return std::nullopt;
    return per_record(r->*field, *r);
  };
  add("disk bytes/record after phase 2 (1)", size_val(s, &SystemRun::bytes_after_run),
      size_val(p, &SystemRun::bytes_after_run), "%.1f", false);
  add("disk bytes/record after " + Fmt("%.0f", o.idle_s) + " s idle (1)",
      size_val(s, &SystemRun::bytes_after_idle), size_val(p, &SystemRun::bytes_after_idle), "%.1f",
      false);
  auto wal_share = [&](const SystemRun* r) {
    if (!done(r) || r->bytes_after_idle == 0) return std::string("-");
    return Fmt("%.0f%%", 100.0 * r->wal_after_run / r->bytes_after_run) + " / " +
           Fmt("%.0f%%", 100.0 * r->wal_after_idle / r->bytes_after_idle);
  };
  auto pg_wal = [&](const SystemRun* r) {
    if (!done(r)) return std::string("-");
    return MiB(r->wal_after_run) + " / " + MiB(r->wal_after_idle) + " MiB";
  };
  text("  WAL: Strata's share; PG's pg_wal (2)", wal_share(s), pg_wal(p));
  add("peak PSS MiB (server process tree)",
      val(s, [](const SystemRun& r) { return r.peak_pss / 1048576.0; }),
      val(p, [](const SystemRun& r) { return r.peak_pss / 1048576.0; }), "%.0f", false);
  auto oracle = [](const SystemRun* r) {
    if (r == nullptr) return std::string("-");
    auto one = [](const OracleCheck& c) {
      return std::string(!c.ran ? "-" : c.passed() ? "pass" : "FAIL");
    };
    return one(r->after_run) + " / " + one(r->after_idle) + " / " + one(r->after_restart);
  };
  text("oracle after phase 2 / idle / kill -9", oracle(s), oracle(p));

  out << "\n== Strata vs " << (o.peer == "postgres" ? "PostgreSQL 15" : "(no peer)")
      << ": same workload, same machine, one after the other ==\n";
  char line[256];
  std::snprintf(line, sizeof(line), "%-40s  %20s  %20s  %9s  %s\n", "", "Strata",
                o.peer == "postgres" ? "PostgreSQL" : "-", "Strata/PG", "better");
  out << line;
  for (const auto& r : rows) {
    std::snprintf(line, sizeof(line), "%-40s  %20s  %20s  %9s  %s\n", r.label.c_str(),
                  r.strata.c_str(), r.pg.c_str(), r.ratio.c_str(), r.better.c_str());
    out << line;
  }
  out << "ratio = Strata / PostgreSQL; \"better\" says which direction wins for that row.\n"
         "(1) Strata: every file of its data directory (WAL, SSTs, queue), no forced "
         "compaction, per record\n"
         "    it holds; PostgreSQL: pg_total_relation_size of the table with its index after "
         "VACUUM and\n"
         "    CHECKPOINT, per record it holds.\n"
         "(2) PostgreSQL's WAL directory (pg_wal), not counted in its bytes/record.\n"
         "(3) % of a core: the load generator itself; kernel threads and interrupts (I/O, journal "
         "and\n    writeback work the servers' writes cause); every other process on the machine "
         "(other users'\n    work on shared cores, which the figures above then suffer from).\n";
  if (kernel_rows) {
    out << "(4) kdamond: the kernel's DAMON memory monitor, which this machine runs. Its bursts "
           "(a few ms of\n    CPU that preempt=none kernels do not interrupt, every few hundred "
           "ms) slow every process;\n    a read overlaps one when its due-to-answer interval "
           "meets a burst +-"
        << kBurstMargin.count()
        << " ms. The rows above count\n    every read; these say how much of the tail is the "
           "machine's (bench/kernel_bursts.h).\n";
  }
  for (const SystemRun* r : {s, p}) {
    if (r == nullptr) continue;
    out << r->name << ": ";
    if (r->name == "Strata") {
      out << "holds " << Thousands(r->records)
          << " records: every play, and the previews it keeps (watched >= 5 s, event_time "
             "within its 30-day\n    preview TTL): its write filters dropped "
          << Thousands(r->dropped_events) << " of the events it accepted "
          << Thousands(r->accepted_events) << "+" << Thousands(r->dropped_events) << "; ";
    } else {
      out << "holds " << Thousands(r->records) << " records: every play and every preview";
      if (r->counted_records > 0)
        out << " (SELECT count(*): " << Thousands(r->counted_records) << ")";
      out << "; ";
    }
    out << "rejected events " << r->rejected_events << "; batches re-sent after a phase "
        << r->caught_up_batches << "; restart after kill -9 " << Fmt("%.1f", r->restart_s)
        << " s\n";
    for (const auto& line : r->settings) out << "    " << line << "\n";
    if (!r->first_error.empty()) out << "    first request error: " << r->first_error << "\n";
    if (!r->completed) out << "    run did not complete: " << r->error << "\n";
  }
  // A timed phase that shared the cores with much other work measured that work as much as
  // the server: say so where the reader looks.
  for (const SystemRun* r : {s, p}) {
    if (r == nullptr) continue;
    for (auto [phase, others, secs] :
         {std::tuple{"phase 1", r->phase1_others_cpu_s, r->phase1_s},
          std::tuple{"phase 2", r->phase2_others_cpu_s, r->phase2_s}}) {
      if (secs > 0 && others / secs > kBusyMachineShare) {
        out << "WARNING: other processes used " << Fmt("%.0f", 100 * others / secs)
            << "% of a core during " << r->name << "'s " << phase << ": its " << phase
            << " figures measure that load too; rerun on a quiet machine to compare.\n";
      }
    }
  }
  out << "result: " << (report.passed ? "PASS" : "FAIL")
      << " (every system completed and returned exactly the oracle's newest plays)\n";
}

}  // namespace strata::bench
