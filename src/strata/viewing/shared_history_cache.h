// SharedHistoryCache: the viewing history cache of a deployment where several `strata serve`
// processes share one cluster ([cache] backend = "memcached"). Entries live in a
// store::Cache that every server reads (memcached), so a member's history loaded by one
// server is a hit on all of them.
//
// No server may serve a history older than a write some server acknowledged. Entries are
// never updated in place; they are keyed by a version token that lives in the row store, the
// only thing every server agrees on:
//
//   token row   table viewing_cache_tokens, partition = member (8 bytes BE),
//               clustering = the data type (1 byte), value = a random 64-bit token
//   entry key   "strata:vh1:<deployment>:<data type>:<member>:<token>"   (vh1 = format 1)
//
// <deployment> is a random id stored once in the same table (partition "deployment"), so
// two deployments -- or a row store rebuilt from scratch -- that share a memcached never
// read each other's entries (a member never written has token "0" in every deployment).
//
//  * Read: read the token row (one point read of the row store), then the entry under that
//    token. Miss: load from the row store and store the entry under the token read BEFORE
//    the load.
//  * Write (ingest, roll-up, rotation, erase): after the row store acknowledged the data
//    write, write a fresh random token (Invalidate), and only then acknowledge.
//  A fill racing with a write therefore either read the token after the write's new token
//  (and then loads after the data write, so it holds the write), or stores its entry under
//  an old token that no reader asks for again. Entries under old tokens are garbage that
//  memcached evicts (LRU) or expires (entry_ttl_ms). No read-modify-write and no clock is
//  involved, so concurrent writers on different servers need no coordination: whichever
//  token lands last is as good as the other.
//
// Cost, against the in-process cache: every read does one row-store point read (the token)
// and one cache round trip; every write batch does one more row-store write (the tokens of
// the members it touched, one batch); the first read of a member after a write is a miss
// (a full load: live rows, metadata, newest chunks). A process that crashes between the data
// write and the token write leaves the old entry readable until the write is retried (the
// client saw no acknowledgement, so it retries; the retry writes a new token).
//
// The cache may fail or lose entries at any time: every cache error is a miss (counted in
// strata_viewing_shared_cache_errors_total) and reads are answered from the row store.
// Entries that do not fit a cache item (store::kMaxCacheValueBytes) are not cached.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "strata/base/metrics.h"
#include "strata/store/cache.h"
#include "strata/store/row_store.h"
#include "strata/viewing/history_cache.h"
#include "strata/viewing/record.h"

namespace strata::viewing {

class SharedHistoryCache {
 public:
  static constexpr char kTokenTable[] = "viewing_cache_tokens";

  // `cache` and `store` must outlive this. Opens the token table.
  static absl::StatusOr<std::unique_ptr<SharedHistoryCache>> Open(store::Cache* cache,
                                                                   store::RowStore* store,
                                                                   MetricsRegistry* metrics,
                                                                   Millis entry_ttl_ms);

  struct Lookup {
    std::string token;                  // for Fill after a miss
    std::optional<CachedHistory> entry;  // nullopt = miss (or a cache error)
  };
  // The member's token from the row store (errors are the row store's), then its entry from
  // the cache (a cache error is a miss).
  absl::StatusOr<Lookup> Get(int data_type, MemberId member, Kind kind);
  // Stores a history loaded from the row store under the token Get returned (best effort).
  void Fill(int data_type, MemberId member, const std::string& token, const CachedHistory& h);
  // New tokens for each (data type, member): call after the row store acknowledged a change
  // to their history and before acknowledging it. One row-store write for all of them.
  absl::Status Invalidate(std::span<const std::pair<int, MemberId>> changed);

  // The cache key of an entry.
  static std::string EntryKey(std::string_view deployment, int data_type, MemberId member,
                              const std::string& token);
  const std::string& deployment() const { return deployment_; }
  // The entry's bytes: format byte 1, the compressed metadata and loaded chunks, the live
  // rows (their clustering keys and values as stored). DecodeEntry checks each chunk against
  // the metadata's size and checksum; DataLoss for anything malformed.
  static std::string EncodeEntry(const CachedHistory& h);
  static absl::StatusOr<CachedHistory> DecodeEntry(std::string_view bytes, MemberId member,
                                                   Kind kind);

 private:
  SharedHistoryCache(store::Cache* cache, store::RowStore* store, store::Table* tokens,
                     std::string deployment, MetricsRegistry* metrics, Millis entry_ttl_ms);

  store::Cache* cache_;
  store::RowStore* store_;
  store::Table* tokens_;
  const std::string deployment_;
  Millis entry_ttl_ms_;
  Counter* hits_;
  Counter* misses_;
  Counter* errors_;
  Counter* fills_;
  Counter* too_large_;
  Counter* invalidations_;
};

}  // namespace strata::viewing
