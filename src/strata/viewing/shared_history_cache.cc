#include "strata/viewing/shared_history_cache.h"

#include <xxhash.h>

#include <random>

#include "absl/strings/str_cat.h"
#include "strata/base/coding.h"
#include "strata/base/status.h"
#include "strata/viewing/codec.h"
#include "strata/viewing/segments.h"

namespace strata::viewing {
namespace {

constexpr char kEntryFormat = 1;
// Partition (and clustering key) of the deployment id: 10 bytes, so no member's 8-byte
// partition can be it.
constexpr char kDeploymentPartition[] = "deployment";

std::string MemberPartition(MemberId member) {
  std::string k;
  coding::PutFixed64BE(&k, member);
  return k;
}

std::string TokenClustering(int data_type) {
  return std::string(1, static_cast<char>(data_type));
}

// A token no other write will pick: 64 random bits from a per-thread generator seeded by the
// system's entropy source.
std::string NewToken() {
  thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }());
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t v = rng();
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[static_cast<size_t>(i)] = kHex[v & 15];
  return out;
}

absl::Status Malformed(const char* what) {
  return absl::DataLossError(absl::StrCat("shared history cache entry: ", what));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SharedHistoryCache>> SharedHistoryCache::Open(
    store::Cache* cache, store::RowStore* store, MetricsRegistry* metrics, Millis entry_ttl_ms) {
  if (cache == nullptr) return absl::InvalidArgumentError("cache: must not be null");
  if (entry_ttl_ms < 0) return absl::InvalidArgumentError("entry_ttl_ms: must not be negative");
  STRATA_ASSIGN_OR_RETURN(store::Table * tokens,
                          store->OpenTable({kTokenTable, store::TableProfile::kLive}));
  // The deployment id: the first server to start writes it. Two servers starting at once may
  // both write one; each reads back what is stored then, so at worst a server that raced
  // uses its own until restart -- its entries are not shared, never wrong.
  auto deployment = tokens->Get(kDeploymentPartition, kDeploymentPartition);
  if (absl::IsNotFound(deployment.status())) {
    store::WriteBatch batch;
    batch.Put(kDeploymentPartition, NewToken());
    STRATA_RETURN_IF_ERROR(tokens->Apply(kDeploymentPartition, batch));
    deployment = tokens->Get(kDeploymentPartition, kDeploymentPartition);
  }
  STRATA_RETURN_IF_ERROR(deployment.status());
  return std::unique_ptr<SharedHistoryCache>(new SharedHistoryCache(
      cache, store, tokens, std::move(*deployment), metrics, entry_ttl_ms));
}

SharedHistoryCache::SharedHistoryCache(store::Cache* cache, store::RowStore* store,
                                       store::Table* tokens, std::string deployment,
                                       MetricsRegistry* metrics, Millis entry_ttl_ms)
    : cache_(cache),
      store_(store),
      tokens_(tokens),
      deployment_(std::move(deployment)),
      entry_ttl_ms_(entry_ttl_ms) {
  hits_ = metrics->GetCounter("strata_viewing_shared_cache_hits_total",
                              "History reads answered from the shared cache (memcached)");
  misses_ = metrics->GetCounter("strata_viewing_shared_cache_misses_total",
                                "History reads the shared cache could not answer (loaded from "
                                "the row store); includes errors");
  errors_ = metrics->GetCounter("strata_viewing_shared_cache_errors_total",
                                "Shared cache calls that failed (server down, timeout, a "
                                "malformed entry): answered from the row store");
  fills_ = metrics->GetCounter("strata_viewing_shared_cache_fills_total",
                               "Histories stored in the shared cache after a miss");
  too_large_ = metrics->GetCounter("strata_viewing_shared_cache_too_large_total",
                                   "Histories too large for one cache item (not cached)");
  invalidations_ = metrics->GetCounter(
      "strata_viewing_shared_cache_invalidations_total",
      "Member histories given a new version token after a write, roll-up, rotation or erase");
}

std::string SharedHistoryCache::EntryKey(std::string_view deployment, int data_type,
                                         MemberId member, const std::string& token) {
  return absl::StrCat("strata:vh1:", std::string(deployment), ":", data_type, ":", member, ":",
                      token);
}

absl::StatusOr<SharedHistoryCache::Lookup> SharedHistoryCache::Get(int data_type,
                                                                   MemberId member, Kind kind) {
  Lookup out;
  auto token = tokens_->Get(MemberPartition(member), TokenClustering(data_type));
  if (token.ok()) {
    out.token = std::move(*token);
  } else if (absl::IsNotFound(token.status())) {
    // Never written since the shared cache was enabled. Tokens are never deleted (EraseMember
    // writes a new one), so "0" cannot come back once a write replaced it.
    out.token = "0";
  } else {
    return token.status();
  }
  absl::StatusOr<std::string> bytes = cache_->Get(EntryKey(deployment_, data_type, member, out.token));
  if (!bytes.ok()) {
    if (!absl::IsNotFound(bytes.status())) errors_->Inc();
    misses_->Inc();
    return out;
  }
  absl::StatusOr<CachedHistory> entry = DecodeEntry(*bytes, member, kind);
  if (!entry.ok()) {
    errors_->Inc();
    misses_->Inc();
    return out;
  }
  hits_->Inc();
  out.entry = std::move(*entry);
  return out;
}

void SharedHistoryCache::Fill(int data_type, MemberId member, const std::string& token,
                              const CachedHistory& h) {
  const std::string bytes = EncodeEntry(h);
  if (bytes.size() > store::kMaxCacheValueBytes) {
    too_large_->Inc();
    return;
  }
  if (cache_->Set(EntryKey(deployment_, data_type, member, token), bytes, entry_ttl_ms_).ok()) {
    fills_->Inc();
  } else {
    errors_->Inc();
  }
}

absl::Status SharedHistoryCache::Invalidate(std::span<const std::pair<int, MemberId>> changed) {
  if (changed.empty()) return absl::OkStatus();
  std::vector<store::PartitionWrite> writes;
  writes.reserve(changed.size());
  for (const auto& [data_type, member] : changed) {
    store::PartitionWrite w{tokens_, MemberPartition(member), {}};
    w.batch.Put(TokenClustering(data_type), NewToken());
    writes.push_back(std::move(w));
  }
  STRATA_RETURN_IF_ERROR(store_->Write(writes));
  invalidations_->Inc(changed.size());
  return absl::OkStatus();
}

std::string SharedHistoryCache::EncodeEntry(const CachedHistory& h) {
  std::string out(1, kEntryFormat);
  if (h.compressed) {
    out.push_back(1);
    coding::PutLengthPrefixed(&out, EncodeMeta(h.compressed->meta));
    uint64_t loaded = 0;
    for (const auto& s : h.compressed->segments) loaded += s ? 1 : 0;
    coding::PutVarint64(&out, loaded);
    for (size_t i = 0; i < h.compressed->segments.size(); ++i) {
      if (!h.compressed->segments[i]) continue;
      coding::PutVarint64(&out, i);
      coding::PutLengthPrefixed(&out, *h.compressed->segments[i]);
    }
  } else {
    out.push_back(0);
  }
  const std::vector<ViewingRecord>& live = h.Live();
  coding::PutVarint64(&out, live.size());
  for (const ViewingRecord& r : live) {
    coding::PutLengthPrefixed(&out, LiveClusteringKey(r.started_at, r.session));
    coding::PutLengthPrefixed(&out, EncodeLiveValue(r));
  }
  return out;
}

absl::StatusOr<CachedHistory> SharedHistoryCache::DecodeEntry(std::string_view in,
                                                              MemberId member, Kind kind) {
  if (in.size() < 2 || in[0] != kEntryFormat) return Malformed("unknown format");
  const bool has_compressed = in[1] == 1;
  in.remove_prefix(2);
  CachedHistory h;
  if (has_compressed) {
    std::string_view meta_bytes;
    if (!coding::GetLengthPrefixed(&in, &meta_bytes)) return Malformed("truncated metadata");
    auto history = std::make_shared<CompressedHistory>();
    STRATA_ASSIGN_OR_RETURN(history->meta, DecodeMeta(meta_bytes));
    history->segments.resize(history->meta.segments.size());
    uint64_t loaded = 0;
    if (!coding::GetVarint64(&in, &loaded)) return Malformed("truncated chunk count");
    for (uint64_t k = 0; k < loaded; ++k) {
      uint64_t i = 0;
      std::string_view bytes;
      if (!coding::GetVarint64(&in, &i) || !coding::GetLengthPrefixed(&in, &bytes)) {
        return Malformed("truncated chunk");
      }
      if (i >= history->segments.size()) return Malformed("chunk index out of range");
      const SegmentRef& ref = history->meta.segments[i];
      if (bytes.size() != ref.bytes || XXH3_64bits(bytes.data(), bytes.size()) != ref.checksum) {
        return Malformed("chunk checksum mismatch");
      }
      history->segments[i] = std::make_shared<const std::string>(bytes);
      history->bytes += bytes.size();
    }
    h.compressed = std::move(history);
  }
  uint64_t n = 0;
  if (!coding::GetVarint64(&in, &n) || n > in.size()) return Malformed("truncated live rows");
  auto live = std::make_shared<std::vector<ViewingRecord>>();
  live->reserve(n);
  for (uint64_t k = 0; k < n; ++k) {
    std::string_view key, value;
    if (!coding::GetLengthPrefixed(&in, &key) || !coding::GetLengthPrefixed(&in, &value)) {
      return Malformed("truncated live row");
    }
    ViewingRecord r;
    r.member = member;
    r.kind = kind;
    STRATA_RETURN_IF_ERROR(ParseLiveClusteringKey(key, &r.started_at, &r.session));
    STRATA_RETURN_IF_ERROR(DecodeLiveValue(value, &r));
    live->push_back(std::move(r));
  }
  if (!in.empty()) return Malformed("trailing bytes");
  h.live = std::move(live);
  return h;
}

}  // namespace strata::viewing
