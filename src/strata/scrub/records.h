// Rows of the scrub (specified in docs/media.md, "Scrub"): its state -- the pass in progress
// with the position it reached, and the last complete pass -- and one record per damaged
// object. Every value starts with a format version byte (1); decoders refuse other versions
// and trailing bytes (DataLoss). Pure; thread-safe.
//
// Table `media_scrub`:
//   partition "s", clustering "state"                          -> ScrubState
//   partition "d", clustering bucket 0x00 key 0x00 u64be(gen)  -> DamageRecord
// (Buckets and keys never contain 0x00, so damage records sort by bucket, key, generation.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "strata/base/clock.h"

namespace strata::scrub {

inline constexpr char kStatePartition[] = "s";
inline constexpr char kStateClustering[] = "state";
inline constexpr char kDamagePartition[] = "d";

// One pass over every object: what it verified so far (or in all, once finished).
struct PassRecord {
  uint64_t id = 0;
  Millis started_at = 0;
  Millis finished_at = 0;  // 0 while running
  uint64_t objects = 0;    // objects whose bytes were read and checked
  uint64_t bytes = 0;
  uint64_t damaged = 0;  // objects found damaged (each counted once per pass)
  uint64_t errors = 0;   // objects that could not be read (I/O errors): checked next pass
  uint64_t skipped = 0;  // rewritten, moved or collected while being read; GC-eligible ones
};

struct ScrubState {
  // The pass in progress, and the last object it finished with: the pass resumes after
  // (bucket, key) -- buckets in byte order, keys in byte order within each.
  std::optional<PassRecord> current;
  std::string position_bucket;
  std::string position_key;
  std::optional<PassRecord> last;  // the last complete pass
  uint64_t damaged_objects = 0;    // damage records stored
};

std::string EncodeScrubState(const ScrubState& s);
absl::StatusOr<ScrubState> DecodeScrubState(std::string_view in);

// An object whose bytes do not match its row: stored until a later pass finds it readable
// and correct again, or the object is rewritten or collected. Never acted on otherwise (the
// bytes are not deleted, the object is not hidden; a whole-object GET answers 500 anyway).
struct DamageRecord {
  std::string bucket;
  std::string key;
  uint64_t generation = 0;
  std::string blob;
  // "checksum": bytes whose SHA-1, MD5 or XXH3 differ from the row's; "size": fewer or more
  // bytes than the row says; "missing": no bytes at all under the row's blob name.
  std::string kind;
  std::string detail;      // which checksums differ, stored and read values
  uint64_t size = 0;       // the row's size
  Millis detected_at = 0;  // first detection
  uint64_t last_pass = 0;  // the last pass that found it damaged
};

std::string DamageClustering(std::string_view bucket, std::string_view key, uint64_t generation);
// Splits a damage clustering key into *record (bucket, key, generation); false if malformed.
bool ParseDamageClustering(std::string_view clustering, DamageRecord* record);
// The value (everything but bucket, key and generation, which are the key).
std::string EncodeDamageRecord(const DamageRecord& d);
absl::Status DecodeDamageRecord(std::string_view in, DamageRecord* d);

}  // namespace strata::scrub
