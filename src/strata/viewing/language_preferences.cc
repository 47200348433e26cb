#include "strata/viewing/language_preferences.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "strata/base/coding.h"
#include "strata/base/status.h"
#include "strata/base/ttl.h"
#include "strata/viewing/codec.h"
#include "strata/viewing/viewing_internal.h"

namespace strata::viewing {
namespace {

using internal::kLockStripes;
using internal::MemberKey;
using internal::StripeOf;

std::string CurrentLanguageKey(std::string_view content_lang) {
  std::string k = "c";
  k.append(content_lang);
  return k;
}

// "h" + ordered event_time + content_lang.
std::string LanguageChangeKey(Millis event_time, std::string_view content_lang) {
  std::string k = "h";
  coding::PutOrderedInt64(&k, event_time);
  k.append(content_lang);
  return k;
}

bool SameChoice(const LanguagePreference& p, const ViewingRecord& r) {
  return p.audio_lang == r.audio_lang && p.subtitle_lang == r.subtitle_lang;
}

// A cached comparison point that records "no current preference stored" (Prefetch read the
// row and it was absent), so PlanChanges does not read it again.
constexpr Millis kAbsentMarker = std::numeric_limits<Millis>::min();

}  // namespace

// The current language preference per (member, content language): the comparison point of
// the write filter. One bounded map per member stripe, guarded by that stripe's lock.
struct LanguagePreferences::Cache {
  static constexpr size_t kMaxEntriesPerStripe = 256;
  struct Key {
    MemberId member;
    std::string content_lang;
    bool operator==(const Key&) const = default;
  };
  template <typename H>
  friend H AbslHashValue(H h, const Key& k) {
    return H::combine(std::move(h), k.member, k.content_lang);
  }
  // Open addressing: a lookup touches one group of slots instead of a bucket list and a
  // node (the node map's lookups took ~3.5% of the server's CPU during ingest).
  using Map = absl::flat_hash_map<Key, LanguagePreference>;
  std::unique_ptr<Map[]> stripes{new Map[kLockStripes]};
};

LanguagePreferences::LanguagePreferences(store::Table* table, Millis change_ttl_ms,
                                         Counter* changes, Counter* unchanged)
    : table_(table),
      change_ttl_ms_(change_ttl_ms),
      changes_(changes),
      unchanged_(unchanged),
      locks_(new std::mutex[kLockStripes]),
      cache_(std::make_unique<Cache>()) {}

LanguagePreferences::~LanguagePreferences() = default;

absl::Status LanguagePreferences::PlanChanges(
    std::span<const ViewingRecord* const> member_records,
    std::vector<store::PartitionWrite>* writes, std::vector<MemberId>* touched) {
  if (member_records.empty()) return absl::OkStatus();
  const MemberId member = member_records.front()->member;
  std::vector<const ViewingRecord*> by_time(member_records.begin(), member_records.end());
  std::stable_sort(by_time.begin(), by_time.end(), [](const auto* a, const auto* b) {
    return a->event_time < b->event_time;
  });
  store::PartitionWrite w{table_, MemberKey(member), {}};
  const size_t stripe = StripeOf(member);
  std::lock_guard<std::mutex> stripe_lock(locks_[stripe]);
  Cache::Map& current_prefs = cache_->stripes[stripe];
  // The preference the previous record left for its content language, when known: a member's
  // events in one batch mostly repeat it, and then no lookup is needed.
  const ViewingRecord* same_as = nullptr;
  uint64_t unchanged = 0;
  for (const ViewingRecord* r : by_time) {
    if (r->content_lang.empty()) continue;
    if (same_as && same_as->content_lang == r->content_lang &&
        same_as->audio_lang == r->audio_lang && same_as->subtitle_lang == r->subtitle_lang) {
      ++unchanged;  // equal to the current preference (and not older than what set it)
      continue;
    }
    same_as = nullptr;
    Cache::Key key{member, r->content_lang};
    auto it = current_prefs.find(key);
    if (it != current_prefs.end() && it->second.event_time == kAbsentMarker) {
      current_prefs.erase(it);  // known absent: the first preference follows
      it = current_prefs.end();
    } else if (it == current_prefs.end()) {
      // Not known here (first sight, or after a restart): the stored current preference.
      LanguagePreference stored;
      auto row = table_->Get(w.partition, CurrentLanguageKey(r->content_lang));
      if (row.ok()) {
        STRATA_RETURN_IF_ERROR(DecodeLanguageValue(*row, &stored));
        if (current_prefs.size() >= Cache::kMaxEntriesPerStripe) {
          current_prefs.clear();  // crude bound; entries are refilled from the store
        }
        it = current_prefs.emplace(key, std::move(stored)).first;
      } else if (!absl::IsNotFound(row.status())) {
        return row.status();
      }
    }
    if (it != current_prefs.end() &&
        (r->event_time <= it->second.event_time || SameChoice(it->second, *r))) {
      ++unchanged;
      if (SameChoice(it->second, *r)) same_as = r;
      continue;
    }
    LanguagePreference next{r->content_lang, r->audio_lang, r->subtitle_lang, r->event_time};
    std::string value = EncodeLanguageValue(next);
    w.batch.PutIfNewer(CurrentLanguageKey(r->content_lang),
                       static_cast<uint64_t>(r->event_time), value);
    w.batch.Put(LanguageChangeKey(r->event_time, r->content_lang), value,
                TtlExpiresAt(r->event_time, change_ttl_ms_));
    changes_->Inc();
    same_as = r;
    if (it != current_prefs.end()) {
      it->second = std::move(next);
    } else {
      if (current_prefs.size() >= Cache::kMaxEntriesPerStripe) current_prefs.clear();
      current_prefs.emplace(std::move(key), std::move(next));
    }
  }
  if (unchanged > 0) unchanged_->Inc(unchanged);
  if (!w.batch.empty()) {
    writes->push_back(std::move(w));
    touched->push_back(member);
  }
  return absl::OkStatus();
}

absl::Status LanguagePreferences::Prefetch(std::span<const ViewingRecord* const> plays) {
  // The distinct (member, content language) pairs that memory does not hold. Ingest passes
  // the plays ordered by member: one lock per member, and a member's few content languages
  // are told apart by a scan of what it already asked for.
  std::vector<Cache::Key> missing;
  for (size_t begin = 0; begin < plays.size();) {
    const MemberId member = plays[begin]->member;
    size_t end = begin;
    while (end < plays.size() && plays[end]->member == member) ++end;
    const size_t stripe = StripeOf(member);
    const size_t first_missing = missing.size();
    std::lock_guard<std::mutex> lock(locks_[stripe]);
    std::string_view previous;
    for (size_t i = begin; i < end; ++i) {
      const std::string& lang = plays[i]->content_lang;
      if (lang.empty() || lang == previous) continue;
      previous = lang;
      Cache::Key key{member, lang};
      if (cache_->stripes[stripe].contains(key)) continue;
      bool asked = false;
      for (size_t m = first_missing; m < missing.size() && !asked; ++m) {
        asked = missing[m].content_lang == lang;
      }
      if (!asked) missing.push_back(std::move(key));
    }
    begin = end;
  }
  if (missing.empty()) return absl::OkStatus();
  std::vector<std::string> partitions, clusterings;
  partitions.reserve(missing.size());
  clusterings.reserve(missing.size());
  std::vector<store::RowKey> keys;
  keys.reserve(missing.size());
  for (const Cache::Key& k : missing) {
    partitions.push_back(MemberKey(k.member));
    clusterings.push_back(CurrentLanguageKey(k.content_lang));
  }
  for (size_t i = 0; i < missing.size(); ++i) keys.push_back({partitions[i], clusterings[i]});
  std::vector<absl::StatusOr<std::string>> rows = table_->MultiGet(keys);
  for (size_t i = 0; i < missing.size(); ++i) {
    LanguagePreference stored;
    if (rows[i].ok()) {
      STRATA_RETURN_IF_ERROR(DecodeLanguageValue(*rows[i], &stored));
    } else if (absl::IsNotFound(rows[i].status())) {
      stored.event_time = kAbsentMarker;
    } else {
      return rows[i].status();
    }
    const size_t stripe = StripeOf(missing[i].member);
    std::lock_guard<std::mutex> lock(locks_[stripe]);
    Cache::Map& current_prefs = cache_->stripes[stripe];
    // A PlanChanges of another batch may have moved this point on since the read: keep its.
    if (current_prefs.contains(missing[i])) continue;
    if (current_prefs.size() >= Cache::kMaxEntriesPerStripe) current_prefs.clear();
    current_prefs.emplace(std::move(missing[i]), std::move(stored));
  }
  return absl::OkStatus();
}

void LanguagePreferences::Forget(MemberId member) {
  std::lock_guard<std::mutex> lock(locks_[StripeOf(member)]);
  DropCachedLocked(member);
}

void LanguagePreferences::DropCachedLocked(MemberId member) {
  absl::erase_if(cache_->stripes[StripeOf(member)],
                 [member](const auto& entry) { return entry.first.member == member; });
}

absl::StatusOr<LanguageHistory> LanguagePreferences::Read(MemberId member) {
  LanguageHistory out;
  store::ScanOptions scan;
  const std::string partition = MemberKey(member);
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(store::ScanPage page, table_->Scan(partition, scan));
    for (const auto& row : page.rows) {
      LanguagePreference p;
      STRATA_RETURN_IF_ERROR(DecodeLanguageValue(row.value, &p));
      if (row.clustering[0] == 'c') {
        p.content_lang = row.clustering.substr(1);
        out.current.push_back(std::move(p));
      } else if (row.clustering[0] == 'h' && row.clustering.size() >= 9) {
        p.content_lang = row.clustering.substr(9);
        out.changes.push_back(std::move(p));
      }
    }
    if (page.next_cursor.empty()) break;
    scan.cursor = std::move(page.next_cursor);
  }
  std::reverse(out.changes.begin(), out.changes.end());
  return out;
}

std::unique_lock<std::mutex> LanguagePreferences::LockMember(MemberId member) {
  return std::unique_lock<std::mutex>(locks_[StripeOf(member)]);
}

absl::Status LanguagePreferences::EraseLocked(MemberId member) {
  STRATA_RETURN_IF_ERROR(table_->DeleteRange(MemberKey(member), "", ""));
  DropCachedLocked(member);
  return absl::OkStatus();
}

}  // namespace strata::viewing
