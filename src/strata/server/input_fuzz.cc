// libFuzzer target for what clients and the disk hand the server (built and run by
// scripts/fuzz.sh input; docs/testing.md).
//
// Client input, straight from HTTP: POST /v1/viewing/events bodies (ParseViewingEvents,
// simdjson On-Demand), bucket policies (ParseBucketPolicy), Range headers (ParseRange) and
// percent-encoded path segments (DecodePathSegment). Each must answer an error or a value
// that holds its promises: accepted events pass ValidateRecord and fit the batch limit, every
// rejected one names its field, a range lies inside the object.
//
// Row values read from disk: the media rows (media/rows.h), the collector's records
// (gc/records.h) and the scrub's (scrub/records.h). Whatever a decoder accepts is encoded again;
// that encoding must decode and re-encode to the same bytes.
//
// The first input byte picks the target; the rest is its input. With
// STRATA_INPUT_FUZZ_WRITE_SEEDS=<dir> in the environment the binary writes a seed corpus into
// <dir> and exits.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "strata/gc/records.h"
#include "strata/media/rows.h"
#include "strata/scrub/records.h"
#include "strata/server/media_json.h"
#include "strata/server/viewing_json.h"
#include "strata/viewing/validation.h"

namespace strata::server {
namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "input_fuzz: %s\n", what);
  std::abort();
}

// "field: what is wrong", the field a lower-case API name.
bool NamesAField(std::string_view error) {
  const size_t colon = error.find(": ");
  if (colon == 0 || colon == std::string_view::npos) return false;
  for (char c : error.substr(0, colon)) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  }
  return true;
}

void FuzzViewingEvents(std::string_view body) {
  auto parsed = ParseViewingEvents(body);
  if (!parsed.ok()) {
    if (parsed.status().message().substr(0, 6) != "body: ") Fail("body error names no field");
    return;
  }
  if (parsed->valid.size() + parsed->rejected.size() > kMaxEventsPerBatch) {
    Fail("more events than a batch may hold");
  }
  for (const auto& r : parsed->valid) {
    if (!viewing::ValidateRecord(r).ok()) Fail("an accepted event fails validation");
  }
  size_t previous = 0;
  for (size_t i = 0; i < parsed->rejected.size(); ++i) {
    const RejectedEvent& e = parsed->rejected[i];
    if (!NamesAField(e.error)) Fail("a rejected event's error names no field");
    if (i > 0 && e.index <= previous) Fail("rejected indexes not ascending");
    previous = e.index;
  }
}

void FuzzRange(std::string_view in) {
  if (in.size() < 8) return;
  uint64_t size = 0;
  for (int i = 0; i < 8; ++i) size = size << 8 | static_cast<uint8_t>(in[i]);
  size >>= static_cast<uint8_t>(in[0]) % 64;  // small sizes too
  auto range = ParseRange(in.substr(8), size);
  if (!range.ok()) return;
  if (range->length == 0 || range->first >= size || range->length > size - range->first) {
    Fail("range outside the object");
  }
}

// Decode, encode, decode again, encode again: the two encodings must be equal.
template <typename Decode, typename Encode>
void RoundTrip(std::string_view in, Decode decode, Encode encode, const char* what) {
  auto first = decode(in);
  if (!first.ok()) return;
  const std::string once = encode(*first);
  auto second = decode(once);
  if (!second.ok()) Fail(what);
  if (encode(*second) != once) Fail(what);
}

void FuzzOne(std::string_view data) {
  if (data.empty()) return;
  const uint8_t target = static_cast<uint8_t>(data[0]);
  std::string_view in = data.substr(1);
  switch (target % 12) {
    case 0:
    case 1:
    case 2:  // the busiest input gets more of the runs
      FuzzViewingEvents(in);
      break;
    case 3:
      (void)ParseBucketPolicy(in);
      break;
    case 4:
      FuzzRange(in);
      break;
    case 5:
      if (auto s = DecodePathSegment(in, "key");
          !s.ok() && !NamesAField(std::string(s.status().message()))) {
        Fail("path segment error names no field");
      }
      break;
    case 6:
      RoundTrip(in, media::DecodeBucketRow, media::EncodeBucketRow, "bucket row round trip");
      break;
    case 7:
      RoundTrip(in, media::DecodeObjectRow, media::EncodeObjectRow, "object row round trip");
      break;
    case 8:
      RoundTrip(in, media::DecodeSupersededRow, media::EncodeSupersededRow,
                "superseded row round trip");
      RoundTrip(in, media::DecodeUploadRow, media::EncodeUploadRow, "upload row round trip");
      break;
    case 9:
      RoundTrip(in, gc::DecodeWorkItem, gc::EncodeWorkItem, "work item round trip");
      break;
    case 10:
      RoundTrip(in, gc::DecodeRunRecord, gc::EncodeRunRecord, "run record round trip");
      break;
    case 11:
      RoundTrip(in, gc::DecodeAuditEntry, gc::EncodeAuditEntry, "audit entry round trip");
      RoundTrip(in, gc::DecodeTotals, gc::EncodeTotals, "totals round trip");
      RoundTrip(in, scrub::DecodeScrubState, scrub::EncodeScrubState, "scrub state round trip");
      RoundTrip(
          in,
          [](std::string_view v) -> absl::StatusOr<scrub::DamageRecord> {
            scrub::DamageRecord d;
            if (absl::Status s = scrub::DecodeDamageRecord(v, &d); !s.ok()) return s;
            return d;
          },
          scrub::EncodeDamageRecord, "scrub damage record round trip");
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Seed corpus (STRATA_INPUT_FUZZ_WRITE_SEEDS=<dir>; tests/fuzz/input_corpus was made so).

void WriteSeed(const std::string& dir, const std::string& name, char target,
               std::string_view bytes) {
  std::ofstream f(dir + "/" + name, std::ios::binary);
  f.put(target);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) Fail("cannot write seed");
}

void WriteSeeds(const std::string& dir) {
  const std::string event =
      R"({"member":1,"kind":"play","title":7,"session":"99","started_at":1760000000000,)"
      R"("event_time":1760000060000,"position_ms":60000,"watched_ms":60000,"device":"tv",)"
      R"("country":"US","content_lang":"en","audio_lang":"en","subtitle_lang":""})";
  const std::string bad_event =
      R"({"member":0,"kind":"trailer","title":-1,"session":"","started_at":"x","event_time":1})";
  WriteSeed(dir, "events-array", 0, "[" + event + "," + bad_event + "," + event + "]");
  WriteSeed(dir, "events-ndjson", 1, event + "\n" + bad_event + "\n");
  WriteSeed(dir, "policy", 3, R"({"ttl":"30d","grace":"7d","storage_class":"hot"})");
  WriteSeed(dir, "range", 4, std::string("\0\0\0\0\0\x01\0\0bytes=0-99", 18));
  WriteSeed(dir, "range-suffix", 4, std::string("\0\0\0\0\0\x01\0\0bytes=-50", 17));
  WriteSeed(dir, "path", 5, "a%2Fb%20c+d");

  media::BucketRow bucket;
  bucket.policy.ttl_ms = 86'400'000;
  bucket.created_at = 1'760'000'000'000;
  bucket.updated_at = bucket.created_at + 5;
  WriteSeed(dir, "bucket-row", 6, media::EncodeBucketRow(bucket));
  media::ObjectRow object;
  object.generation = 42;
  object.created_at = 1'760'000'000'000;
  object.ttl_ms = 86'400'000;
  object.size = 12345;
  object.parts = 2;
  object.storage_class = "hot";
  object.blob = "b/42";
  object.sha1 = std::string(20, 's');
  object.md5 = std::string(16, 'm');
  object.xxh3 = 99;
  object.content_type = "text/plain";
  object.meta = {{"lang", "en"}, {"show", "demo"}};
  WriteSeed(dir, "object-row", 7, media::EncodeObjectRow(object));
  media::SupersededRow superseded;
  superseded.blob = "b/41";
  superseded.size = 7;
  superseded.parts = 1;
  superseded.storage_class = "hot";
  superseded.superseded_at = 1'760'000'000'000;
  WriteSeed(dir, "superseded-row", 8, media::EncodeSupersededRow(superseded));
  media::UploadRow upload;
  upload.blob = "b/43";
  upload.storage_class = "cold";
  upload.started_at = 1'760'000'000'000;
  WriteSeed(dir, "upload-row", 8, media::EncodeUploadRow(upload));
  WriteSeed(dir, "work-item", 9, gc::EncodeWorkItem(gc::WorkItem{}));
  WriteSeed(dir, "run-record", 10, gc::EncodeRunRecord(gc::RunRecord{}));
  WriteSeed(dir, "audit-entry", 11, gc::EncodeAuditEntry(gc::AuditEntry{}));
  WriteSeed(dir, "totals", 11, gc::EncodeTotals(gc::Totals{}));
  scrub::ScrubState scrub_state;
  scrub_state.current = scrub::PassRecord{2, 1'760'000'000'000, 0, 40, 1 << 20, 1, 0, 3};
  scrub_state.position_bucket = "media";
  scrub_state.position_key = "shows/pilot.mxf";
  scrub_state.last =
      scrub::PassRecord{1, 1'759'000'000'000, 1'759'000'100'000, 38, 1 << 20, 0, 0, 2};
  scrub_state.damaged_objects = 1;
  WriteSeed(dir, "scrub-state", 11, scrub::EncodeScrubState(scrub_state));
  scrub::DamageRecord damage;
  damage.blob = "hot/media/k@0000000000000001";
  damage.kind = "checksum";
  damage.detail = "xxh3 stored 0000000000000001, read 0000000000000002";
  damage.size = 5;
  damage.detected_at = 1'760'000'000'000;
  damage.last_pass = 2;
  WriteSeed(dir, "scrub-damage", 11, scrub::EncodeDamageRecord(damage));
}

}  // namespace
}  // namespace strata::server

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  if (const char* dir = std::getenv("STRATA_INPUT_FUZZ_WRITE_SEEDS")) {
    strata::server::WriteSeeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  strata::server::FuzzOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
