// libFuzzer target for the viewing-record codecs (built and run by scripts/fuzz.sh codec).
//
// Every input is offered to each decoder: DecodeHistory (a whole blob: version byte + zstd
// frame), internal::DecodeHistoryPayload (the columnar payload without zstd, which mutations
// reach far more easily than through a checksummed frame), DecodeLiveValue and
// ParseLiveClusteringKey, the age tiers' summary decoders, language-preference values and
// history cursors (client input). Whatever a decoder accepts is encoded again and decoded
// again, and must come back equal; any difference aborts, which the fuzzer reports as a crash.
//
// With STRATA_CODEC_FUZZ_WRITE_SEEDS=<dir> in the environment the binary instead writes a
// seed corpus of valid encodings into <dir> and exits (tests/fuzz/codec_corpus was made so).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "strata/viewing/codec.h"
#include "strata/viewing/segments.h"
#include "strata/viewing/summary.h"

namespace strata::viewing {
namespace {

constexpr MemberId kMember = 7;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "codec_fuzz: %s\n", what);
  std::abort();
}

void CheckHistoryRoundTrip(const std::vector<ViewingRecord>& records, Kind kind) {
  if (!ValidateForEncoding(records).ok()) Fail("decoded history is not valid encoder input");
  auto from_payload =
      internal::DecodeHistoryPayload(internal::EncodeHistoryPayload(records), kMember, kind);
  if (!from_payload.ok()) Fail("re-encoded payload does not decode");
  if (*from_payload != records) Fail("payload round trip changed the records");
  auto from_blob = DecodeHistory(EncodeHistory(records, 1), kMember, kind);
  if (!from_blob.ok()) Fail("re-encoded blob does not decode");
  if (*from_blob != records) Fail("blob round trip changed the records");
}

void FuzzOne(std::string_view in) {
  if (auto records = DecodeHistory(in, kMember, Kind::kPlay); records.ok()) {
    CheckHistoryRoundTrip(*records, Kind::kPlay);
  }
  if (auto records = internal::DecodeHistoryPayload(in, kMember, Kind::kPreview); records.ok()) {
    CheckHistoryRoundTrip(*records, Kind::kPreview);
  }

  Millis started_at = 0;
  std::string live_session;
  if (ParseLiveClusteringKey(in, &started_at, &live_session).ok()) {
    if (LiveClusteringKey(started_at, live_session) != in) Fail("live key round trip");
  }

  // The compressed history's metadata row (segments.h) is read from disk too.
  if (auto meta = DecodeMeta(in); meta.ok()) {
    auto again = DecodeMeta(EncodeMeta(*meta));
    if (!again.ok() || again->segments.size() != meta->segments.size() ||
        again->records() != meta->records() || again->garbage != meta->garbage) {
      Fail("metadata round trip");
    }
  }

  // The age tiers' summary blobs and state rows (summary.h).
  if (auto titles = DecodeSummary(in); titles.ok()) {
    auto again = DecodeSummary(EncodeSummary(*titles, 1));
    if (!again.ok() || *again != *titles) Fail("summary round trip");
  }
  if (auto past = DecodePastState(in); past.ok()) {
    auto again = DecodePastState(EncodePastState(*past, 1));
    if (!again.ok() || again->rotated_until != past->rotated_until ||
        again->summary_from != past->summary_from || again->summary != past->summary) {
      Fail("past state round trip");
    }
  }
  if (auto hist = DecodeHistoricalState(in); hist.ok()) {
    auto again = DecodeHistoricalState(EncodeHistoricalState(*hist, 1));
    if (!again.ok() || again->until != hist->until || again->summary != hist->summary) {
      Fail("historical state round trip");
    }
  }

  // Language-preference rows, and the history cursor every client can send.
  LanguagePreference pref;
  if (DecodeLanguageValue(in, &pref).ok()) {
    LanguagePreference again;
    if (!DecodeLanguageValue(EncodeLanguageValue(pref), &again).ok() ||
        again.audio_lang != pref.audio_lang || again.subtitle_lang != pref.subtitle_lang ||
        again.event_time != pref.event_time) {
      Fail("language value round trip");
    }
  }
  Millis cursor_at = 0;
  std::string cursor_session;
  if (absl::Status s = DecodeCursor(in, &cursor_at, &cursor_session); s.ok()) {
    if (EncodeCursor(cursor_at, cursor_session) != in) Fail("cursor round trip");
  } else if (std::string(s.message()).rfind("cursor: ", 0) != 0) {
    Fail("cursor error names no field");
  }

  ViewingRecord r;
  r.started_at = 1'700'000'000'000;
  if (DecodeLiveValue(in, &r).ok()) {
    ViewingRecord again;
    again.started_at = r.started_at;
    if (!DecodeLiveValue(EncodeLiveValue(r), &again).ok()) Fail("re-encoded live value");
    if (again != r) Fail("live value round trip changed the record");
  }
}

// ---------------------------------------------------------------------------------------------
// Seed corpus.

ViewingRecord SeedRecord(uint64_t i) {
  static const char* kDevices[] = {"tv", "phone", "tablet", "web", "console"};
  ViewingRecord r;
  r.member = kMember;
  r.title = 80'000'000 + (i * 7) % 5;
  r.session = std::to_string(8231 + i);
  r.started_at = 1'700'000'000'000 + static_cast<Millis>(i) * 3'600'123;
  r.watched_ms = static_cast<int64_t>(600 + i * 37 % 3000) * 1000 + static_cast<int64_t>(i % 1000);
  r.position_ms = (i % 3 == 0) ? r.watched_ms : r.watched_ms + 1'234'567;
  r.event_time = r.started_at + r.watched_ms + static_cast<Millis>(i % 5000);
  r.device = kDevices[i % 3];
  r.country = "US";
  r.content_lang = i % 4 == 0 ? "es" : "en";
  r.audio_lang = r.content_lang;
  r.subtitle_lang = i % 5 == 0 ? "en" : "";
  return r;
}

void WriteSeed(const std::string& dir, const std::string& name, std::string_view bytes) {
  std::ofstream f(dir + "/" + name, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) Fail("cannot write seed");
}

void WriteHistorySeeds(const std::string& dir, const std::string& name,
                       const std::vector<ViewingRecord>& records) {
  WriteSeed(dir, "blob-" + name, EncodeHistory(records));
  WriteSeed(dir, "payload-" + name, internal::EncodeHistoryPayload(records));
}

void WriteSeeds(const std::string& dir) {
  WriteHistorySeeds(dir, "empty", {});
  WriteHistorySeeds(dir, "one", {SeedRecord(0)});

  std::vector<ViewingRecord> realistic;
  for (uint64_t i = 0; i < 24; ++i) realistic.push_back(SeedRecord(i));
  WriteHistorySeeds(dir, "realistic", realistic);

  // Whole seconds (scaled columns), equal started_at with byte-ordered sessions, numeric and
  // non-numeric sessions, negative and extreme values, many devices (4-bit indexes).
  std::vector<ViewingRecord> mixed;
  const char* sessions[] = {"0", "007", "1", "18446744073709551615", "9", "abc"};
  for (uint64_t i = 0; i < 6; ++i) {
    ViewingRecord r = SeedRecord(i);
    r.started_at = -5'000;
    r.session = sessions[i];
    r.watched_ms = static_cast<int64_t>(i) * 1000;
    r.position_ms = -static_cast<int64_t>(i) * 60'000;
    r.event_time = INT64_MIN + static_cast<int64_t>(i);
    r.device = std::string(1, static_cast<char>('a' + i));
    mixed.push_back(r);
  }
  ViewingRecord last = SeedRecord(99);
  last.started_at = INT64_MAX;
  last.session = std::string(kMaxSessionBytes, 'z');
  last.country = std::string(kMaxShortStringBytes, 'C');
  mixed.push_back(last);
  WriteHistorySeeds(dir, "mixed", mixed);

  // More than 256 distinct titles: indexes stored as planes rather than packed bits.
  std::vector<ViewingRecord> many_titles;
  for (uint64_t i = 0; i < 300; ++i) {
    ViewingRecord r = SeedRecord(i);
    r.title = i;
    r.session = std::to_string(i);
    many_titles.push_back(r);
  }
  WriteSeed(dir, "payload-many-titles", internal::EncodeHistoryPayload(many_titles));

  WriteSeed(dir, "live-value", EncodeLiveValue(SeedRecord(3)));
  WriteSeed(dir, "live-value-extreme", EncodeLiveValue(mixed[2]));
  WriteSeed(dir, "live-key", LiveClusteringKey(1'700'000'000'000, "8231"));
  WriteSeed(dir, "language-value", EncodeLanguageValue({"es", "en", "es", 1'700'000'000'000}));
  WriteSeed(dir, "cursor", EncodeCursor(1'700'000'000'000, "8231"));
  WriteSeed(dir, "live-key-long", LiveClusteringKey(-1, std::string(kMaxSessionBytes, 's')));
  std::vector<TitleSummary> titles = {{3, 2, 120'000, 1'690'000'000'000, 1'700'000'000'000, 5},
                                      {80'000'123, 1, 0, -5, -5, 0},
                                      {90'000'000, 40, 9'000'000, 1'600'000'000'000,
                                       1'700'000'000'000, 1'234'567}};
  WriteSeed(dir, "summary", EncodeSummary(titles));
  WriteSeed(dir, "past-state",
            EncodePastState({1'700'000'000'000, 1'650'000'000'000, 7, titles}));
  WriteSeed(dir, "historical-state", EncodeHistoricalState({3, 1'650'000'000'000, titles}));
}

}  // namespace
}  // namespace strata::viewing

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  if (const char* dir = std::getenv("STRATA_CODEC_FUZZ_WRITE_SEEDS")) {
    strata::viewing::WriteSeeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  strata::viewing::FuzzOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
