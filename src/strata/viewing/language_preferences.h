// LanguagePreferences: the member's (audio, subtitle) language choice per content language,
// taken from plays. The viewing service's ingest asks it which changes a batch carries (the
// write filter: a change row only when the choice differs from the current preference), and
// its readers and erasure go through it.
//
// Table `languages` (profile INDEX), partition = member (8 bytes BE):
//   "c" + content_lang                          the current preference, written with
//                                               PutIfNewer(event_time): the latest wins
//   "h" + ordered event_time + content_lang     a stored change, expiring after change_ttl_ms
// Values: EncodeLanguageValue (codec.h).
//
// The filter's comparison point is cached in memory per (member, content language), one
// bounded map per member stripe (the viewing service's 4096 stripes), and re-read from the
// table after a restart or Forget.
//
// Thread safety: every method is thread-safe. PlanChanges serialises per stripe (read,
// compare, plan) under the stripe's mutex; erasure holds that mutex across the delete
// (LockMember + EraseLocked) so no concurrent ingest refills the cache from the old rows.
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/base/metrics.h"
#include "strata/store/row_store.h"
#include "strata/viewing/record.h"

namespace strata::viewing {

struct LanguageHistory {
  std::vector<LanguagePreference> current;  // one per content language
  std::vector<LanguagePreference> changes;  // stored deltas, newest first
};

class LanguagePreferences {
 public:
  // `table` (the languages table) and the counters must outlive this. change_ttl_ms: time to
  // live of change rows from their event_time (0 = kept). `changes` counts the changes
  // planned, `unchanged` the plays that carried no change.
  LanguagePreferences(store::Table* table, Millis change_ttl_ms, Counter* changes,
                      Counter* unchanged);
  ~LanguagePreferences();

  // Appends to *writes one partition write of the changes that `member_records` (plays of
  // one member, any order; those without a content language are skipped) carry, compared
  // in event-time order with the current preference, and appends the member to *touched, if
  // there are any. The comparison points move on as if the writes succeed: if they are not
  // acknowledged, call Forget for each touched member. Reads the table only for a
  // (member, content language) not in memory.
  absl::Status PlanChanges(std::span<const ViewingRecord* const> member_records,
                           std::vector<store::PartitionWrite>* writes,
                           std::vector<MemberId>* touched);

  // Loads, with one Table::MultiGet, the comparison points of every (member, content
  // language) of `plays` (any members, any order) that memory does not hold, so that the
  // PlanChanges calls of the batch that follow read nothing: on a remote row store a Get is a
  // round trip, and one per new member made the ingest wait on them one after another.
  // Rows found and rows known absent are both remembered. Optional: PlanChanges reads what
  // is still missing itself.
  absl::Status Prefetch(std::span<const ViewingRecord* const> plays);

  // Drops the member's comparison points (they are re-read from the table).
  void Forget(MemberId member);

  // The member's current preferences and stored changes, from the table.
  absl::StatusOr<LanguageHistory> Read(MemberId member);

  // Erasure: LockMember holds the member's stripe (no PlanChanges of its stripe runs
  // meanwhile); EraseLocked, called under it, deletes the member's rows and comparison
  // points.
  [[nodiscard]] std::unique_lock<std::mutex> LockMember(MemberId member);
  absl::Status EraseLocked(MemberId member);

  // The kind of a row of the table, by its clustering key: a change row (else the current
  // preference).
  static bool IsChangeRow(std::string_view clustering) {
    return !clustering.empty() && clustering[0] == 'h';
  }

 private:
  struct Cache;

  // Drops the member's comparison points; the caller holds the member's stripe lock.
  void DropCachedLocked(MemberId member);

  store::Table* const table_;
  const Millis change_ttl_ms_;
  Counter* const changes_;
  Counter* const unchanged_;
  // Per member stripe: serialises PlanChanges' read-compare-plan and guards the cache's map
  // of that stripe.
  std::unique_ptr<std::mutex[]> locks_;
  std::unique_ptr<Cache> cache_;
};

}  // namespace strata::viewing
