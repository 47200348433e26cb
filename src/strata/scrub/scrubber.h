// The scrub: a background job that reads every media object's bytes at a throttled rate and
// checks them against the checksums stored in its row (SHA-1, MD5 and XXH3-64, computed in
// one pass while the object was uploaded), so that bytes that rotted on disk, were cut short
// or went missing are found before a client asks for them (docs/media.md, "Scrub").
//
// A pass visits the object rows bucket by bucket (buckets in byte order, keys in byte order
// within each, read from the live rows: no snapshot is needed, a row that changes during the
// pass is simply re-read when its turn comes), skipping objects the garbage collector may
// already be removing (soft-deleted past grace, expired). The position reached (last bucket
// and key) is persisted every `checkpoint_objects` objects and at every bucket's end, so a
// restart resumes the pass there, re-reading at most that many objects. A new pass starts
// `interval_ms` after the previous one started, or at once on request (RequestPass).
//
// On a mismatch the object is marked -- a DamageRecord row (records.h), listed by Report and
// GET /v1/admin/scrub -- counted (strata_scrub_damaged_total{kind}) and logged as an error.
// Nothing else: its bytes are never deleted or rewritten (they may be all that is left, and
// only an operator can tell), reads behave as they always do (a whole-object GET answers 500
// when the XXH3 does not match, a range GET is served unchecked). A record goes when a later
// pass finds the object correct again (restored by an operator), rewritten or collected.
//
// Never blocks requests: reads only (bytes through a BlobReader, rows without the key lock
// but for one re-check when bytes are missing), at the throttled rate, on its own thread at a
// lower CPU priority.
//
// Thread-safe. Owns its thread (Start/Stop). `rows`, `media`, `clock` and `metrics` must
// outlive it.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/base/metrics.h"
#include "strata/media/media_service.h"
#include "strata/scrub/records.h"
#include "strata/store/row_store.h"

namespace strata::scrub {

struct ScrubOptions {
  // Bytes read per second, at most (the throttle), averaged over the pass. 0 = no background
  // scrub (Step and RequestPass still work; the server then answers 409). Default 16 MiB/s:
  // 1.3 TiB a day, a few percent of a disk's sequential bandwidth and ~5% of one core for
  // the three checksums (SHA-1 and MD5 dominate).
  uint64_t rate_bytes_per_s = uint64_t{16} << 20;
  // Every object costs at least this many bytes of the rate: a small object's read is a row
  // read and a file open, not free. Default 64 KiB (at most 256 objects/s at the default rate).
  uint64_t min_object_cost_bytes = uint64_t{64} << 10;
  // A pass starts this long after the previous one started (at once if a pass took longer).
  // Default 7 days: each object is read about once a week, as Ceph's deep scrub does.
  Millis interval_ms = 7LL * 86'400'000;
  // The position is persisted after this many objects (and at each bucket's end): what a
  // restart reads again. Default 1000.
  size_t checkpoint_objects = 1000;
  // Bytes per read of an object. Default 1 MiB.
  size_t read_bytes = size_t{1} << 20;
  // Nice increment of the scrub thread. Default 10 (below request threads).
  int nice = 10;
};

// The scrub's throttle: spaces reads so that they average at most `rate` bytes per second.
// A read may start at the later of now and the end of the previous read's share of time;
// idle time is not banked, so a pass that resumes after a pause does not burst. Not
// thread-safe (the scrub thread owns it).
class Pacer {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Pacer(uint64_t bytes_per_s) : rate_(static_cast<double>(bytes_per_s)) {}
  // When a read of `bytes` may start, given the time `now`; books its share.
  Clock::time_point Next(Clock::time_point now, uint64_t bytes) {
    const Clock::time_point start = std::max(now, next_);
    next_ = start + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(bytes) / rate_));
    return start;
  }

 private:
  double rate_;
  Clock::time_point next_{};
};

struct ScrubReport {
  uint64_t rate_bytes_per_s = 0;
  Millis interval_ms = 0;
  ScrubState state;
  Millis next_pass_at = 0;            // when the next pass starts (0: one is running)
  std::vector<DamageRecord> damaged;  // the first `limit` records, by bucket, key, generation
  bool truncated = false;             // more records than listed
};

class Scrubber {
 public:
  static absl::StatusOr<std::unique_ptr<Scrubber>> Open(store::RowStore* rows,
                                                        media::MediaService* media, Clock* clock,
                                                        MetricsRegistry* metrics,
                                                        ScrubOptions options);
  ~Scrubber();

  // Starts the background thread (when rate_bytes_per_s > 0); a pass in progress resumes
  // where it stopped.
  absl::Status Start();
  void Stop();

  // Starts a pass now. FailedPrecondition while one runs.
  absl::StatusOr<PassRecord> RequestPass();
  // The state and up to `limit` (1..1000) damage records.
  absl::StatusOr<ScrubReport> Report(size_t limit);

  // One step of the background loop, unthrottled (tests; the thread calls it throttled):
  // starts a pass if none runs and one is due or requested, else verifies up to
  // `max_objects` objects of the running pass (finishing it if they were the last).
  // Returns the objects verified.
  absl::StatusOr<size_t> Step(size_t max_objects);

 private:
  Scrubber(store::RowStore* rows, media::MediaService* media, Clock* clock, ScrubOptions options)
      : rows_(rows), media_(media), clock_(clock), options_(options) {}

  // kStopped: Stop came while the object was being read (not checked; not passed either).
  enum class Verdict { kOk, kDamaged, kSkipped, kError, kStopped };
  struct Checked {
    Verdict verdict = Verdict::kOk;
    uint64_t bytes = 0;
    std::string kind, detail;
  };

  void Loop();
  absl::StatusOr<size_t> StepImpl(size_t max_objects, bool throttled);
  // Verifies one object row; reads its bytes at the throttled rate when `throttled`.
  Checked Verify(const std::string& bucket, const std::string& key, const media::ObjectRow& row,
                 bool throttled);
  // Records (or refreshes) damage found by pass `pass`; true if this is the pass's first
  // finding of it (a pass resumed after a restart may read an object twice).
  absl::StatusOr<bool> RecordDamage(const std::string& bucket, const std::string& key,
                                    const media::ObjectRow& row, const Checked& checked,
                                    uint64_t pass);
  // End of a pass: damage records the pass did not confirm are checked again and dropped
  // if the object is gone, rewritten or now correct.
  absl::Status RevisitDamage(uint64_t pass);
  // The bucket names in byte order.
  absl::StatusOr<std::vector<std::string>> Buckets();
  absl::Status SaveState();  // mu_ held
  // Waits until the throttle lets `bytes` more be read; false when stopping.
  bool Throttle(uint64_t bytes);

  store::RowStore* rows_;
  media::MediaService* media_;
  Clock* clock_;
  const ScrubOptions options_;
  store::Table* table_ = nullptr;

  std::mutex mu_;  // guards state_, requested_, stopping_
  std::condition_variable cv_;
  ScrubState state_;
  bool requested_ = false;
  bool stopping_ = false;
  std::thread thread_;
  std::mutex step_mu_;  // one Step at a time
  size_t since_checkpoint_ = 0;

  Pacer pacer_{options_.rate_bytes_per_s == 0 ? 1 : options_.rate_bytes_per_s};

  Counter* objects_total_ = nullptr;
  Counter* bytes_total_ = nullptr;
  Counter* errors_total_ = nullptr;
  Counter* passes_total_ = nullptr;
  MetricsRegistry* metrics_ = nullptr;
};

}  // namespace strata::scrub
