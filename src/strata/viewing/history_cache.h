// HistoryCache: the per-member, per-data-type cache of viewing history.
//
// An entry mirrors what the store holds for one member in one shard: the committed
// compressed history (its chunks kept in compressed form, shared, never copied) and the
// member's live records, into which every acknowledged write is merged. Reads that hit need
// no storage I/O.
//
// Correctness under concurrent writes (never serve a history missing an acknowledged write):
// each member stripe has a generation number, bumped by every write, roll-up and erase under
// the shard mutex. A miss reads the generation, loads from the store, and inserts only if the
// generation is unchanged (FillIfUnchanged); a write racing with the load either happened
// before the load (so the load saw it) or bumped the generation (so the fill is dropped), and
// a write after the insert merges into the entry.
//
// Bounded by a byte budget with LRU eviction per shard. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "strata/base/metrics.h"
#include "strata/viewing/record.h"
#include "strata/viewing/segments.h"

namespace strata::viewing {

struct CachedHistory {
  // The committed compressed history; null when none is committed.
  std::shared_ptr<const CompressedHistory> compressed;
  // Live records in arrival order; may hold several events of one playback. Readers merge
  // them with MergeRecords (latest event_time wins). Shared and immutable once handed out:
  // a cache hit shares the entry's vector instead of copying it (a hot member's reads used
  // to copy up to thousands of records each); the cache appends writes in place while no
  // reader has been given the vector, and copies it once first when one has (so a hot
  // member costs a copy per write that follows reads, not one per read). Null = none.
  std::shared_ptr<const std::vector<ViewingRecord>> live;

  const std::vector<ViewingRecord>& Live() const {
    static const std::vector<ViewingRecord> kNone;
    return live ? *live : kNone;
  }

  size_t ApproximateBytes() const;
};

// Merges `update` into `records` (sorted, unique by PlaybackKey): a record with the same
// playback key is replaced when update.event_time is later or equal. O(n) per call: use
// MergeRecords for more than a few updates.
void MergeRecord(std::vector<ViewingRecord>* records, const ViewingRecord& update);
// Merges many updates (any order, duplicates allowed) into `records` (sorted, unique by
// PlaybackKey) in one linear pass; for each playback the latest event_time wins.
void MergeRecords(std::vector<ViewingRecord>* records, std::span<const ViewingRecord> updates);

class HistoryCache {
 public:
  // `capacity_bytes`: budget over all entries. `data_types`: number of shards of data
  // (plays, previews) that share it.
  HistoryCache(size_t capacity_bytes, MetricsRegistry* metrics);

  // Hit: the entry (its compressed history and live records are shared, not copied). Miss: nullopt and *generation is set for
  // a later FillIfUnchanged.
  std::optional<CachedHistory> Get(int data_type, uint64_t member, uint64_t* generation);
  // The member's cached compressed history, if cached (no effect on statistics or LRU).
  std::shared_ptr<const CompressedHistory> PeekCompressed(int data_type, uint64_t member);
  // Inserts a freshly loaded entry unless a write touched the member since `generation`.
  void FillIfUnchanged(int data_type, uint64_t member, uint64_t generation, CachedHistory entry);
  // Merges acknowledged writes into the member's entry if present; bumps the generation.
  void MergeWrites(int data_type, uint64_t member,
                   std::span<const ViewingRecord* const> records);
  // Installs a new entry (after a roll-up); bumps the generation.
  void Replace(int data_type, uint64_t member, CachedHistory entry);
  // Swaps the committed compressed history of the member's entry, if present, keeping its
  // live records (after a rotation moved old records out); bumps the generation.
  void ReplaceCompressed(int data_type, uint64_t member,
                         std::shared_ptr<const CompressedHistory> compressed);
  // After live rows were moved out of the live table (rolled up, or rotated to another
  // tier): installs `compressed` (null: keep the current one) and drops from the entry's live
  // records every one that a `moved` record covers -- same playback, event_time not later.
  // Records written meanwhile (later events) stay. `moved` is sorted and unique by
  // PlaybackKey. Bumps the generation.
  // With `install_if_absent` (the caller knows the member has no live rows left) and no
  // entry for the member, installs {compressed, no live records} while the cache holds less
  // than half its budget: a roll-up has just read and written the member's newest chunks, so
  // the next read of a recently active member hits instead of reading and decoding them
  // again; the other half stays for what reads bring in.
  void CommitLiveMove(int data_type, uint64_t member,
                      std::shared_ptr<const CompressedHistory> compressed,
                      std::span<const ViewingRecord> moved, bool install_if_absent = false);
  // Drops the member's entry; bumps the generation.
  void Erase(int data_type, uint64_t member);
  // Drops every entry (an operator's cold-cache test); returns how many there were. Entries
  // hold committed state plus acknowledged writes, all in the store too, so fills in flight
  // (whose generation check still guards against writes) stay valid.
  size_t Clear();

  uint64_t hits() const { return hits_->Value(); }
  uint64_t misses() const { return misses_->Value(); }
  size_t bytes() const;
  size_t entries() const;

 private:
  static constexpr size_t kShards = 32;
  static constexpr size_t kStripes = 8192;
  struct Key {
    int data_type;
    uint64_t member;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<uint64_t>()(k.member * 0x9E3779B97F4A7C15ull + k.data_type);
    }
  };
  struct Slot {
    CachedHistory history;
    size_t bytes = 0;
    std::list<Key>::iterator lru;
    // Whether only the cache can hold history.live (see MutableLive in the .cc): false when
    // the entry came from a caller or went to a reader since its vector was last copied.
    bool live_private = false;
  };
  struct ShardState {
    mutable std::mutex mu;
    std::unordered_map<Key, Slot, KeyHash> map;
    std::list<Key> lru;  // front = most recent
    size_t bytes = 0;
  };
  static size_t StripeOf(const Key& k) { return KeyHash()(k) % kStripes; }
  ShardState& ShardOf(size_t stripe) { return shards_[stripe % kShards]; }
  void EvictLocked(ShardState& s);
  void RemoveLocked(ShardState& s, const Key& k);
  void SetSlotLocked(ShardState& s, const Key& k, CachedHistory entry,
                     bool live_private = false);

  size_t capacity_per_shard_;
  ShardState shards_[kShards];
  std::unique_ptr<uint64_t[]> generations_;  // guarded by the stripe's shard mutex
  Counter* hits_;
  Counter* misses_;
  Counter* evictions_;
  Counter* write_fills_;
};

}  // namespace strata::viewing
