#include "strata/gc/orphan_scan.h"

#include <algorithm>
#include <functional>

#include "strata/base/log.h"
#include "strata/base/status.h"

namespace strata::gc {
namespace {

uint64_t HashName(std::string_view blob) { return std::hash<std::string_view>()(blob); }

}  // namespace

void ReferencedBlobs::Add(std::string_view blob) { hashes_.push_back(HashName(blob)); }

void ReferencedBlobs::Merge(ReferencedBlobs&& other) {
  hashes_.insert(hashes_.end(), other.hashes_.begin(), other.hashes_.end());
  other.hashes_.clear();
  other.hashes_.shrink_to_fit();
}

void ReferencedBlobs::Seal() {
  std::sort(hashes_.begin(), hashes_.end());
  hashes_.erase(std::unique(hashes_.begin(), hashes_.end()), hashes_.end());
  hashes_.shrink_to_fit();
}

bool ReferencedBlobs::Contains(std::string_view blob) const {
  return std::binary_search(hashes_.begin(), hashes_.end(), HashName(blob));
}

Millis OrphanAge(const blob::BlobInfo& info, uint64_t generation, Millis as_of) {
  // A generation is max(now_us, previous + 1) at BeginPut: its milliseconds are at or after
  // the upload's start, so this age is at most the upload's.
  Millis age = as_of - static_cast<Millis>(generation / 1000);
  if (info.modified_ms != 0) age = std::min(age, as_of - info.modified_ms);
  return age;
}

absl::StatusOr<OrphanScanCounts> ScanOrphanBlobs(media::MediaService* media,
                                                 const ReferencedBlobs* referenced,
                                                 const OrphanScanOptions& options,
                                                 const OrphanScanHooks& hooks) {
  if (options.page_size < 1 || options.page_size > blob::kMaxListLimit) {
    return absl::InvalidArgumentError("page_size: must be 1..1000");
  }
  auto stop = [] { return absl::CancelledError("orphan scan: stopped"); };
  blob::BlobStore* blobs = media->blobs();
  OrphanScanCounts counts;
  std::string after;
  for (;;) {
    if (!hooks.acquire()) return stop();
    STRATA_ASSIGN_OR_RETURN(blob::ListPage page, blobs->List("", after, options.page_size));
    for (const blob::BlobInfo& info : page.blobs) {
      ++counts.listed;
      if (referenced != nullptr && referenced->Contains(info.name)) continue;
      media::BlobNameParts name;
      if (!media::ParseBlobName(info.name, &name)) {
        ++counts.foreign;
        continue;
      }
      const Millis age = OrphanAge(info, name.generation, options.as_of);
      if (!hooks.acquire()) return stop();
      if (age < options.min_age_ms || options.dry_run) {
        // Counted only if no row names it: a blob written after the mark is no orphan.
        absl::StatusOr<bool> named =
            media->BlobReferenced(name.bucket, name.key, name.generation, info.name);
        if (!named.ok()) {
          ++counts.errors;
          STRATA_LOG_WARN("gc: orphan check failed (the next run tries again)", "blob", info.name,
                          "error", named.status().ToString());
          continue;
        }
        if (*named) continue;
        if (age < options.min_age_ms) {
          ++counts.young;
        } else {
          ++counts.found;
          counts.found_bytes += info.size;
        }
        continue;
      }
      absl::StatusOr<bool> deleted =
          media->DeleteUnreferencedBlob(name.bucket, name.key, name.generation, info.name);
      if (!deleted.ok()) {
        ++counts.errors;
        STRATA_LOG_WARN("gc: orphan check or delete failed (the next run tries again)", "blob",
                        info.name, "error", deleted.status().ToString());
        continue;
      }
      if (!*deleted) continue;  // a row names it now
      ++counts.found;
      counts.found_bytes += info.size;
      ++counts.collected;
      counts.collected_bytes += info.size;
      if (hooks.collected) {
        hooks.collected(
            CollectedOrphan{info.name, std::move(name), info.size, info.modified_ms, age});
      }
    }
    if (hooks.progress) hooks.progress(counts);
    if (page.next_after.empty()) return counts;
    after = std::move(page.next_after);
  }
}

}  // namespace strata::gc
