#include "strata/scrub/scrubber.h"

#include <algorithm>

#include "strata/base/log.h"
#include "strata/base/status.h"
#include "strata/base/thread_pool.h"
#include "strata/media/checksums.h"
#include "strata/media/rows.h"

namespace strata::scrub {
namespace {

constexpr size_t kLoopStepObjects = 64;
constexpr const char* kKinds[] = {"checksum", "size", "missing"};

// Whether the garbage collector may be removing this object (its bytes can vanish at any
// moment, legitimately): such objects are not the scrub's business.
bool Collectable(const media::ObjectRow& row, Millis now) {
  return row.GracePassed(now) || row.Expired(now);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Scrubber>> Scrubber::Open(store::RowStore* rows,
                                                         media::MediaService* media, Clock* clock,
                                                         MetricsRegistry* metrics,
                                                         ScrubOptions options) {
  if (options.interval_ms < 0) return absl::InvalidArgumentError("interval_ms: must be >= 0");
  if (options.checkpoint_objects < 1) {
    return absl::InvalidArgumentError("checkpoint_objects: must be at least 1");
  }
  if (options.read_bytes < 4096) return absl::InvalidArgumentError("read_bytes: at least 4096");
  std::unique_ptr<Scrubber> s(new Scrubber(rows, media, clock, options));
  // One small state row and a row per damaged object: read and written rarely.
  STRATA_ASSIGN_OR_RETURN(s->table_, rows->OpenTable({"media_scrub", store::TableProfile::kLive}));
  absl::StatusOr<std::string> v = s->table_->Get(kStatePartition, kStateClustering);
  if (v.ok()) {
    STRATA_ASSIGN_OR_RETURN(s->state_, DecodeScrubState(*v));
  } else if (!absl::IsNotFound(v.status())) {
    return v.status();
  }
  s->metrics_ = metrics;
  s->objects_total_ = metrics->GetCounter("strata_scrub_objects_total",
                                          "Objects whose bytes the scrub read and checked");
  s->bytes_total_ = metrics->GetCounter("strata_scrub_bytes_total", "Bytes the scrub read");
  s->errors_total_ = metrics->GetCounter(
      "strata_scrub_errors_total", "Objects the scrub could not read (I/O errors; next pass)");
  s->passes_total_ = metrics->GetCounter("strata_scrub_passes_total", "Scrub passes completed");
  for (const char* kind : kKinds) {
    metrics->GetCounter("strata_scrub_damaged_total",
                        "Objects the scrub found damaged, by kind (once per pass that finds them)",
                        std::string("kind=\"") + kind + "\"");
  }
  Scrubber* self = s.get();
  metrics->AddGauge("strata_scrub_damaged_objects",
                    "Objects marked damaged now (GET /v1/admin/scrub lists them)", [self] {
                      std::lock_guard<std::mutex> lock(self->mu_);
                      return std::vector<std::pair<std::string, double>>{
                          {"", static_cast<double>(self->state_.damaged_objects)}};
                    });
  metrics->AddGauge("strata_scrub_last_pass_finished_timestamp_seconds",
                    "When the last complete scrub pass finished (0: none yet)", [self] {
                      std::lock_guard<std::mutex> lock(self->mu_);
                      const double t = self->state_.last ? self->state_.last->finished_at / 1e3 : 0;
                      return std::vector<std::pair<std::string, double>>{{"", t}};
                    });
  return s;
}

Scrubber::~Scrubber() { Stop(); }

absl::Status Scrubber::Start() {
  if (options_.rate_bytes_per_s == 0) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return absl::OkStatus();
  if (state_.current) {
    STRATA_LOG_INFO("scrub: resuming the pass", "pass", state_.current->id, "bucket",
                    state_.position_bucket, "key", state_.position_key);
  }
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void Scrubber::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // What the pass reached since its last checkpoint.
  std::lock_guard<std::mutex> lock(mu_);
  if (state_.current) {
    absl::Status s = SaveState();
    if (!s.ok()) STRATA_LOG_WARN("scrub: state not saved", "error", s.ToString());
  }
}

absl::Status Scrubber::SaveState() {
  return table_->Put(kStatePartition, kStateClustering, EncodeScrubState(state_));
}

absl::StatusOr<PassRecord> Scrubber::RequestPass() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_.current) {
    return absl::FailedPreconditionError("scrub: pass " + std::to_string(state_.current->id) +
                                         " is running (GET /v1/admin/scrub shows how far it is)");
  }
  PassRecord pass;
  pass.id = (state_.last ? state_.last->id : 0) + 1;
  pass.started_at = clock_->NowMillis();
  state_.current = pass;
  state_.position_bucket.clear();
  state_.position_key.clear();
  STRATA_RETURN_IF_ERROR(SaveState());
  STRATA_LOG_INFO("scrub: pass started", "pass", pass.id, "requested", true);
  cv_.notify_all();
  return pass;
}

absl::StatusOr<ScrubReport> Scrubber::Report(size_t limit) {
  if (limit < 1 || limit > 1000) return absl::InvalidArgumentError("limit: must be 1..1000");
  ScrubReport r;
  r.rate_bytes_per_s = options_.rate_bytes_per_s;
  r.interval_ms = options_.interval_ms;
  {
    std::lock_guard<std::mutex> lock(mu_);
    r.state = state_;
  }
  if (!r.state.current) {
    r.next_pass_at =
        r.state.last ? r.state.last->started_at + options_.interval_ms : clock_->NowMillis();
  }
  store::ScanOptions scan;
  scan.limit = std::min(limit + 1, store::kMaxPageRows);
  STRATA_ASSIGN_OR_RETURN(store::ScanPage page, table_->Scan(kDamagePartition, scan));
  for (const store::Row& row : page.rows) {
    if (r.damaged.size() == limit) {
      r.truncated = true;
      break;
    }
    DamageRecord d;
    if (!ParseDamageClustering(row.clustering, &d)) continue;
    STRATA_RETURN_IF_ERROR(DecodeDamageRecord(row.value, &d));
    r.damaged.push_back(std::move(d));
  }
  if (!page.next_cursor.empty()) r.truncated = true;
  return r;
}

absl::StatusOr<size_t> Scrubber::Step(size_t max_objects) { return StepImpl(max_objects, false); }

void Scrubber::Loop() {
  ThreadPool::NameCurrentThread("strata-scrub");
  ThreadPool::LowerCurrentThreadPriority(options_.nice);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    absl::StatusOr<size_t> n = StepImpl(kLoopStepObjects, /*throttled=*/true);
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) return;
    if (!n.ok()) {
      STRATA_LOG_WARN("scrub: step failed; trying again in 10 s", "error", n.status().ToString());
      cv_.wait_for(lock, std::chrono::seconds(10), [this] { return stopping_; });
      continue;
    }
    if (state_.current) continue;
    // Idle until the next pass is due, a pass is requested, or a minute has passed (the
    // injected clock may move without this thread knowing).
    const Millis due = state_.last ? state_.last->started_at + options_.interval_ms : 0;
    const Millis wait_ms = std::clamp<Millis>(due - clock_->NowMillis(), 0, 60'000);
    if (wait_ms > 0) {
      cv_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                   [this] { return stopping_ || state_.current.has_value(); });
    }
  }
}

bool Scrubber::Throttle(uint64_t bytes) {
  const Pacer::Clock::time_point start = pacer_.Next(Pacer::Clock::now(), bytes);
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, start, [this] { return stopping_; });
  return !stopping_;
}

absl::StatusOr<std::vector<std::string>> Scrubber::Buckets() {
  std::vector<std::string> out;
  STRATA_ASSIGN_OR_RETURN(std::vector<store::KeyRange> ranges,
                          media_->buckets_table()->SplitRanges(1));
  for (const store::KeyRange& range : ranges) {
    std::string cursor;
    do {
      STRATA_ASSIGN_OR_RETURN(store::TableScanPage page, media_->buckets_table()->ScanRange(
                                                             range, store::kMaxPageRows, cursor));
      for (const store::TableRow& r : page.rows) out.push_back(r.partition);
      cursor = page.next_cursor;
    } while (!cursor.empty());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

absl::StatusOr<size_t> Scrubber::StepImpl(size_t max_objects, bool throttled) {
  std::lock_guard<std::mutex> step(step_mu_);
  std::string from_bucket, from_key;
  uint64_t pass = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!state_.current) {
      const Millis now = clock_->NowMillis();
      if (state_.last && now < state_.last->started_at + options_.interval_ms) return 0;
      PassRecord p;
      p.id = (state_.last ? state_.last->id : 0) + 1;
      p.started_at = now;
      state_.current = p;
      state_.position_bucket.clear();
      state_.position_key.clear();
      STRATA_RETURN_IF_ERROR(SaveState());
      STRATA_LOG_INFO("scrub: pass started", "pass", p.id);
    }
    pass = state_.current->id;
    from_bucket = state_.position_bucket;
    from_key = state_.position_key;
  }
  STRATA_ASSIGN_OR_RETURN(std::vector<std::string> buckets, Buckets());
  size_t handled = 0;  // rows passed (verified, skipped or failed)
  for (const std::string& bucket : buckets) {
    if (bucket < from_bucket) continue;
    store::ScanOptions scan;
    scan.start = "o";
    if (bucket == from_bucket && !from_key.empty()) scan.start += from_key + '\0';
    scan.end = "p";
    // A page no larger than what this step may handle: the next step scans on from the
    // position anyway.
    scan.limit = std::clamp<size_t>(max_objects + 1, 1, store::kMaxPageRows);
    std::string last_key;
    do {
      STRATA_ASSIGN_OR_RETURN(store::ScanPage page, media_->objects_table()->Scan(bucket, scan));
      for (const store::Row& r : page.rows) {
        if (handled == max_objects) return handled;
        const std::string key = r.clustering.substr(1);
        absl::StatusOr<media::ObjectRow> row = media::DecodeObjectRow(r.value);
        Checked checked;
        if (!row.ok()) {
          checked.verdict = Verdict::kError;
          STRATA_LOG_WARN("scrub: undecodable object row", "bucket", bucket, "key", key, "error",
                          row.status().ToString());
        } else if (Collectable(*row, clock_->NowMillis())) {
          checked.verdict = Verdict::kSkipped;
        } else {
          checked = Verify(bucket, key, *row, throttled);
          if (checked.verdict == Verdict::kStopped) return handled;  // not done: not passed
        }
        bool count_damage = checked.verdict == Verdict::kDamaged;
        if (count_damage) {
          absl::StatusOr<bool> first_this_pass = RecordDamage(bucket, key, *row, checked, pass);
          if (!first_this_pass.ok()) {
            STRATA_LOG_WARN("scrub: damage not recorded", "bucket", bucket, "key", key, "error",
                            first_this_pass.status().ToString());
          }
          count_damage = first_this_pass.value_or(true);
        }
        std::lock_guard<std::mutex> lock(mu_);
        PassRecord& p = *state_.current;
        switch (checked.verdict) {
          case Verdict::kOk:
          case Verdict::kDamaged:
            ++p.objects;
            p.bytes += checked.bytes;
            objects_total_->Inc();
            bytes_total_->Inc(checked.bytes);
            if (count_damage) ++p.damaged;
            break;
          case Verdict::kSkipped:
          case Verdict::kStopped:
            ++p.skipped;
            break;
          case Verdict::kError:
            ++p.errors;
            errors_total_->Inc();
            break;
        }
        state_.position_bucket = bucket;
        state_.position_key = key;
        last_key = key;
        ++handled;
        if (++since_checkpoint_ >= options_.checkpoint_objects) {
          since_checkpoint_ = 0;
          STRATA_RETURN_IF_ERROR(SaveState());
        }
      }
      scan.cursor = page.next_cursor;
    } while (!scan.cursor.empty());
    // The bucket is done: a restart goes on with the next one.
    std::lock_guard<std::mutex> lock(mu_);
    state_.position_bucket = bucket;
    state_.position_key = last_key.empty() && bucket == from_bucket ? from_key : last_key;
    since_checkpoint_ = 0;
    STRATA_RETURN_IF_ERROR(SaveState());
  }
  // Every bucket is done: the pass is complete.
  STRATA_RETURN_IF_ERROR(RevisitDamage(pass));
  std::lock_guard<std::mutex> lock(mu_);
  PassRecord p = *state_.current;
  p.finished_at = clock_->NowMillis();
  state_.last = p;
  state_.current.reset();
  state_.position_bucket.clear();
  state_.position_key.clear();
  since_checkpoint_ = 0;
  STRATA_RETURN_IF_ERROR(SaveState());
  passes_total_->Inc();
  STRATA_LOG_INFO("scrub: pass done", "pass", p.id, "objects", p.objects, "bytes", p.bytes,
                  "damaged", p.damaged, "errors", p.errors, "skipped", p.skipped, "damaged_now",
                  state_.damaged_objects);
  return handled;
}

Scrubber::Checked Scrubber::Verify(const std::string& bucket, const std::string& key,
                                   const media::ObjectRow& row, bool throttled) {
  Checked c;
  // Bytes missing under the row's name: damage only if the row still names them and the
  // collector is not removing it (archival moves bytes, the collector deletes them).
  auto missing = [&]() -> Checked {
    Checked m;
    absl::StatusOr<media::ObjectRow> now = media_->RowAtGeneration(bucket, key, row.generation);
    if (now.ok() && now->blob == row.blob && !Collectable(*now, clock_->NowMillis())) {
      m.verdict = Verdict::kDamaged;
      m.kind = "missing";
      m.detail = "no bytes under " + row.blob;
    } else if (now.ok() || absl::IsNotFound(now.status()) ||
               absl::IsFailedPrecondition(now.status())) {
      m.verdict = Verdict::kSkipped;
    } else {
      m.verdict = Verdict::kError;
    }
    return m;
  };
  auto error = [&](const absl::Status& s) {
    STRATA_LOG_WARN("scrub: object not readable (checked again next pass)", "bucket", bucket, "key",
                    key, "blob", row.blob, "error", s.ToString());
    Checked e;
    e.verdict = Verdict::kError;
    return e;
  };
  absl::StatusOr<std::unique_ptr<blob::BlobReader>> reader = media_->blobs()->NewReader(row.blob);
  if (absl::IsNotFound(reader.status())) return missing();
  if (!reader.ok()) return error(reader.status());
  const uint64_t size = (*reader)->size();
  if (size != row.size) {
    c.verdict = Verdict::kDamaged;
    c.kind = "size";
    c.detail = "the row says " + std::to_string(row.size) + " bytes, the blob holds " +
               std::to_string(size);
    return c;
  }
  media::ObjectHasher hasher;
  std::string piece;
  for (uint64_t off = 0; off < size || off == 0; off += options_.read_bytes) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(options_.read_bytes, size - off));
    if (throttled &&
        !Throttle(std::max<uint64_t>(n, off == 0 ? options_.min_object_cost_bytes : 0))) {
      c.verdict = Verdict::kStopped;
      return c;
    }
    if (n == 0) break;
    piece.clear();
    absl::Status s = (*reader)->ReadAt(off, n, &piece);
    if (absl::IsNotFound(s)) return missing();  // S3, unversioned: deleted while read
    if (absl::IsDataLoss(s)) {                  // a part file shorter than when opened
      c.verdict = Verdict::kDamaged;
      c.kind = "size";
      c.detail = s.ToString();
      return c;
    }
    if (!s.ok()) return error(s);
    hasher.Update(piece);
    c.bytes += piece.size();
  }
  const media::Digests d = hasher.Finish();
  std::string detail;
  auto compare = [&](const char* name, const std::string& stored, const std::string& read) {
    if (stored.empty() || stored == read) return;  // (an empty stored value: none kept)
    if (!detail.empty()) detail += "; ";
    detail += std::string(name) + " stored " + stored + ", read " + read;
  };
  compare("sha1", media::Hex(row.sha1), media::Hex(d.sha1));
  compare("md5", media::Hex(row.md5), media::Hex(d.md5));
  compare("xxh3", media::Hex64(row.xxh3), media::Hex64(d.xxh3));
  if (!detail.empty()) {
    c.verdict = Verdict::kDamaged;
    c.kind = "checksum";
    c.detail = std::move(detail);
  }
  return c;
}

absl::StatusOr<bool> Scrubber::RecordDamage(const std::string& bucket, const std::string& key,
                                            const media::ObjectRow& row, const Checked& checked,
                                            uint64_t pass) {
  const std::string clustering = DamageClustering(bucket, key, row.generation);
  DamageRecord d;
  bool known = false;
  absl::StatusOr<std::string> v = table_->Get(kDamagePartition, clustering);
  if (v.ok()) {
    STRATA_RETURN_IF_ERROR(DecodeDamageRecord(*v, &d));
    known = true;
  } else if (!absl::IsNotFound(v.status())) {
    return v.status();
  } else {
    d.detected_at = clock_->NowMillis();
  }
  // Found again by the same pass (it resumed after a restart): counted once.
  const bool first_this_pass = !known || d.last_pass != pass;
  d.blob = row.blob;
  d.kind = checked.kind;
  d.detail = checked.detail;
  d.size = row.size;
  d.last_pass = pass;
  STRATA_RETURN_IF_ERROR(table_->Put(kDamagePartition, clustering, EncodeDamageRecord(d)));
  if (!known) {
    std::lock_guard<std::mutex> lock(mu_);
    ++state_.damaged_objects;
  }
  if (first_this_pass) {
    metrics_->GetCounter("strata_scrub_damaged_total", "", "kind=\"" + d.kind + "\"")->Inc();
    // Marked, nothing deleted; reads answer 500 as before.
    STRATA_LOG_ERROR("scrub: object bytes are damaged", "bucket", bucket, "key", key, "generation",
                     row.generation, "blob", row.blob, "kind", d.kind, "detail", d.detail, "pass",
                     pass);
  }
  return first_this_pass;
}

absl::Status Scrubber::RevisitDamage(uint64_t pass) {
  std::vector<std::pair<std::string, DamageRecord>> stale;
  store::ScanOptions scan;
  do {
    STRATA_ASSIGN_OR_RETURN(store::ScanPage page, table_->Scan(kDamagePartition, scan));
    for (const store::Row& r : page.rows) {
      DamageRecord d;
      if (!ParseDamageClustering(r.clustering, &d)) continue;
      STRATA_RETURN_IF_ERROR(DecodeDamageRecord(r.value, &d));
      if (d.last_pass != pass) stale.emplace_back(r.clustering, std::move(d));
    }
    scan.cursor = page.next_cursor;
  } while (!scan.cursor.empty());
  for (auto& [clustering, d] : stale) {
    absl::StatusOr<media::ObjectRow> row = media_->RowAtGeneration(d.bucket, d.key, d.generation);
    bool drop = absl::IsNotFound(row.status()) || absl::IsFailedPrecondition(row.status());
    if (row.ok() && !Collectable(*row, clock_->NowMillis())) {
      // Not confirmed by this pass: read correctly (restored), moved, or not read at all.
      const Checked checked = Verify(d.bucket, d.key, *row, /*throttled=*/false);
      if (checked.verdict == Verdict::kOk) {
        drop = true;
      } else if (checked.verdict == Verdict::kDamaged) {
        STRATA_ASSIGN_OR_RETURN(bool first, RecordDamage(d.bucket, d.key, *row, checked, pass));
        std::lock_guard<std::mutex> lock(mu_);
        if (first && state_.current) ++state_.current->damaged;
      }
    } else if (!row.ok() && !drop) {
      return row.status();
    }
    if (!drop) continue;
    STRATA_RETURN_IF_ERROR(table_->Delete(kDamagePartition, clustering));
    STRATA_LOG_INFO("scrub: damage mark dropped (object rewritten, collected or correct again)",
                    "bucket", d.bucket, "key", d.key, "generation", d.generation);
    std::lock_guard<std::mutex> lock(mu_);
    if (state_.damaged_objects > 0) --state_.damaged_objects;
  }
  return absl::OkStatus();
}

}  // namespace strata::scrub
