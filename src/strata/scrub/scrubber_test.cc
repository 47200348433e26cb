// The scrub on the real stores (RocksDB, local files, inline rows) with a manual clock: row
// encodings, healthy passes, every kind of damage (flipped bytes in a file and in an inline
// row, a short file, missing bytes), marks that stay and go, resumption after a restart,
// the pass schedule, and the background thread end to end.
#include "strata/scrub/scrubber.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "strata/blob/inline/inline_blob_store.h"
#include "strata/blob/local/local_blob_store.h"
#include "strata/media/checksums.h"
#include "strata/store/rocksdb/rocksdb_row_store.h"

namespace strata::scrub {
namespace {

namespace fs = std::filesystem;
constexpr Millis kDay = 86'400'000;

TEST(ScrubRecordsTest, StateAndDamageRoundTrip) {
  ScrubState s;
  EXPECT_EQ(DecodeScrubState(EncodeScrubState(s))->damaged_objects, 0u);
  s.current = PassRecord{3, 1000, 0, 10, 4096, 1, 2, 3};
  s.position_bucket = "media";
  s.position_key = "a/b";
  s.last = PassRecord{2, 10, 20, 9, 9000, 0, 0, 1};
  s.damaged_objects = 7;
  auto d = DecodeScrubState(EncodeScrubState(s));
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(d->current && d->last);
  EXPECT_EQ(d->current->id, 3u);
  EXPECT_EQ(d->current->bytes, 4096u);
  EXPECT_EQ(d->current->skipped, 3u);
  EXPECT_EQ(d->position_key, "a/b");
  EXPECT_EQ(d->last->finished_at, 20);
  EXPECT_EQ(d->damaged_objects, 7u);
  EXPECT_FALSE(DecodeScrubState(EncodeScrubState(s) + "x").ok());
  EXPECT_FALSE(DecodeScrubState("\x02").ok());

  DamageRecord r;
  const std::string clustering = DamageClustering("media", "k/1", 0x0000ff0000000100ULL);
  ASSERT_TRUE(ParseDamageClustering(clustering, &r));
  EXPECT_EQ(r.bucket, "media");
  EXPECT_EQ(r.key, "k/1");
  EXPECT_EQ(r.generation, 0x0000ff0000000100ULL);
  EXPECT_FALSE(ParseDamageClustering("media", &r));
  r.blob = "hot/media/k/1@0000ff0000000100";
  r.kind = "checksum";
  r.detail = "xxh3 stored a, read b";
  r.size = 5;
  r.detected_at = 99;
  r.last_pass = 4;
  DamageRecord back;
  ASSERT_TRUE(DecodeDamageRecord(EncodeDamageRecord(r), &back).ok());
  EXPECT_EQ(back.detail, r.detail);
  EXPECT_EQ(back.last_pass, 4u);
  EXPECT_FALSE(DecodeDamageRecord(EncodeDamageRecord(r) + "x", &back).ok());
}

TEST(ScrubPacerTest, ReadsAverageTheRateAndIdleTimeIsNotBanked) {
  using std::chrono::milliseconds;
  Pacer pacer(1 << 20);  // 1 MiB/s
  const Pacer::Clock::time_point t0{};
  EXPECT_EQ(pacer.Next(t0, 1 << 20), t0);                         // the first read at once
  EXPECT_EQ(pacer.Next(t0, 512 << 10), t0 + milliseconds(1000));  // after the first's second
  EXPECT_EQ(pacer.Next(t0, 1), t0 + milliseconds(1500));
  // After a long pause, the next read starts now: no burst of banked reads.
  const Pacer::Clock::time_point later = t0 + milliseconds(60'000);
  EXPECT_EQ(pacer.Next(later, 1 << 20), later);
  EXPECT_EQ(pacer.Next(later, 1 << 20), later + milliseconds(1000));
}

// RocksDB + local files + inline rows (objects up to 100 bytes), the media service, and a
// scrubber without its thread (Step) unless a test starts it.
class ScrubFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            ("strata_scrub_test_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
    clock_.Set(1'800'000'000'000);
    store::RocksRowStoreOptions o;
    o.path = dir_ + "/rows";
    o.clock = &clock_;
    rows_ = std::move(*store::RocksRowStore::Open(o));
    blob::LocalBlobStoreOptions bo;
    bo.root = dir_ + "/blobs";
    bo.part_bytes = 4096;
    bo.sync = false;
    files_ = std::move(*blob::LocalBlobStore::Open(bo));
    blob::InlineBlobStoreOptions io;
    io.max_inline_bytes = 100;
    inline_ = std::move(*blob::InlineBlobStore::Open(rows_.get(), files_.get(), io, &metrics_));
    media_ = std::move(*media::MediaService::Open(rows_.get(), inline_.get(), &clock_, &metrics_));
    ASSERT_TRUE(media_->PutBucket("media", media::BucketPolicy{}).ok());
    OpenScrubber();
  }
  void TearDown() override {
    scrubber_.reset();
    media_.reset();
    inline_.reset();
    files_.reset();
    rows_.reset();
    fs::remove_all(dir_);
  }

  void OpenScrubber() {
    scrubber_.reset();
    auto s = Scrubber::Open(rows_.get(), media_.get(), &clock_, &metrics_, options_);
    ASSERT_TRUE(s.ok()) << s.status();
    scrubber_ = std::move(*s);
  }

  media::ObjectInfo Put(const std::string& key, const std::string& data,
                        std::string bucket = "media", std::optional<Millis> ttl = std::nullopt) {
    media::PutObjectOptions o;
    o.ttl_ms = ttl;
    auto up = media_->BeginPut(bucket, key, o);
    EXPECT_TRUE(up.ok()) << up.status();
    EXPECT_TRUE((*up)->Append(data).ok());
    auto info = (*up)->Commit();
    EXPECT_TRUE(info.ok()) << info.status();
    return *info;
  }

  // Runs steps until the running pass (started if due) is done; returns it.
  PassRecord RunPass() {
    for (int i = 0; i < 1000; ++i) {
      auto n = scrubber_->Step(7);
      EXPECT_TRUE(n.ok()) << n.status();
      auto r = scrubber_->Report(1000);
      if (!r->state.current) return r->state.last.value_or(PassRecord{});
    }
    ADD_FAILURE() << "the pass did not end";
    return {};
  }

  std::string FilePath(const std::string& blob) { return *files_->PathOf(blob); }

  void FlipByte(const std::string& path, size_t offset) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(offset));
    c = static_cast<char>(c ^ 0x5a);
    f.write(&c, 1);
  }

  uint64_t Counter(const std::string& line) {
    const std::string text = "\n" + metrics_.RenderPrometheus();
    const size_t at = text.find("\n" + line + " ");
    if (at == std::string::npos) return 0;
    return std::stoull(text.substr(at + line.size() + 2));
  }

  std::string dir_;
  ManualClock clock_;
  MetricsRegistry metrics_;
  ScrubOptions options_ = [] {
    ScrubOptions o;
    o.rate_bytes_per_s = 0;  // no thread unless a test asks
    o.checkpoint_objects = 5;
    o.read_bytes = 4096;
    return o;
  }();
  std::unique_ptr<store::RocksRowStore> rows_;
  std::unique_ptr<blob::LocalBlobStore> files_;
  std::unique_ptr<blob::InlineBlobStore> inline_;
  std::unique_ptr<media::MediaService> media_;
  std::unique_ptr<Scrubber> scrubber_;
};

TEST_F(ScrubFixture, APassReadsEveryObjectAndFindsHealthyBytesHealthy) {
  ASSERT_TRUE(media_->PutBucket("archive", media::BucketPolicy{}).ok());
  const std::string big(3 * 4096 + 11, 'b');  // four part files
  Put("small", "inline bytes");
  Put("file", std::string(1000, 'f'));
  Put("big", big);
  Put("empty", "");
  Put("other", "x", "archive");
  Put("deleted", "in its grace period: restorable, so checked");
  ASSERT_TRUE(media_->Delete("media", "deleted").ok());
  Put("expired", "the collector's", "media", 1000);
  clock_.Advance(2000);

  const PassRecord p = RunPass();
  EXPECT_EQ(p.id, 1u);
  EXPECT_EQ(p.objects, 6u);
  EXPECT_EQ(p.skipped, 1u);  // expired
  EXPECT_EQ(p.bytes, 12u + 1000 + big.size() + 0 + 1 + 43);
  EXPECT_EQ(p.damaged, 0u);
  EXPECT_EQ(p.errors, 0u);
  EXPECT_EQ(p.finished_at, clock_.NowMillis());
  auto r = scrubber_->Report(10);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->damaged.empty());
  EXPECT_EQ(r->next_pass_at, p.started_at + options_.interval_ms);
  EXPECT_EQ(Counter("strata_scrub_objects_total"), 6u);
  EXPECT_EQ(Counter("strata_scrub_passes_total"), 1u);
}

TEST_F(ScrubFixture, DamagedBytesAreMarkedReportedAndNeverDeleted) {
  const std::string good(5000, 'g');
  const std::string data(9000, 'd');
  Put("good", good);
  const media::ObjectInfo flipped = Put("flipped", data);
  const media::ObjectInfo flipped_inline = Put("flipped-inline", "inline!");
  const media::ObjectInfo short_file = Put("short", data);
  const media::ObjectInfo gone = Put("gone", "not there any more, though the row says so");
  // One byte flipped in a part file, and in an inline row (its value is the bytes).
  FlipByte(FilePath(flipped.row.blob) + "/part-000001", 17);
  ASSERT_TRUE(inline_->table()->Put("b", flipped_inline.row.blob, "inline?").ok());
  // A part file cut short; bytes deleted behind the service's back.
  fs::resize_file(FilePath(short_file.row.blob) + "/part-000002", 10);
  ASSERT_TRUE(inline_->Delete(gone.row.blob).ok());

  const PassRecord p = RunPass();
  EXPECT_EQ(p.damaged, 4u);
  EXPECT_EQ(p.objects + p.skipped + p.errors, 5u);
  auto r = scrubber_->Report(10);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->damaged.size(), 4u);
  EXPECT_EQ(r->state.damaged_objects, 4u);
  std::map<std::string, DamageRecord> by_key;
  for (const DamageRecord& d : r->damaged) by_key[d.key] = d;
  EXPECT_EQ(by_key["flipped"].kind, "checksum");
  EXPECT_EQ(by_key["flipped"].generation, flipped.row.generation);
  EXPECT_EQ(by_key["flipped"].blob, flipped.row.blob);
  EXPECT_THAT(by_key["flipped"].detail,
              ::testing::HasSubstr("sha1 stored " + media::Hex(flipped.row.sha1)));
  EXPECT_THAT(by_key["flipped"].detail, ::testing::HasSubstr("md5 stored"));
  EXPECT_THAT(by_key["flipped"].detail,
              ::testing::HasSubstr("xxh3 stored " + media::Hex64(flipped.row.xxh3)));
  EXPECT_EQ(by_key["flipped-inline"].kind, "checksum");
  EXPECT_EQ(by_key["short"].kind, "size");
  EXPECT_EQ(by_key["gone"].kind, "missing");
  EXPECT_EQ(by_key["gone"].detected_at, clock_.NowMillis());
  EXPECT_EQ(Counter("strata_scrub_damaged_total{kind=\"checksum\"}"), 2u);
  EXPECT_EQ(Counter("strata_scrub_damaged_total{kind=\"size\"}"), 1u);
  EXPECT_EQ(Counter("strata_scrub_damaged_total{kind=\"missing\"}"), 1u);
  // Marked, not touched: the bytes are all still there, the rows too.
  EXPECT_TRUE(fs::exists(FilePath(flipped.row.blob)));
  EXPECT_TRUE(fs::exists(FilePath(short_file.row.blob)));
  EXPECT_TRUE(media_->Head("media", "flipped").ok());
  EXPECT_TRUE(media_->OpenForRead("media", "flipped-inline").ok());
  // A bounded report says there is more.
  auto two = scrubber_->Report(2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->damaged.size(), 2u);
  EXPECT_TRUE(two->truncated);

  // The next pass finds them again: the marks stay, counted once per pass.
  clock_.Advance(options_.interval_ms);
  const PassRecord again = RunPass();
  EXPECT_EQ(again.id, 2u);
  EXPECT_EQ(again.damaged, 4u);
  EXPECT_EQ(scrubber_->Report(10)->state.damaged_objects, 4u);

  // Repaired (the operator restored the bytes), rewritten, collected: the marks go.
  FlipByte(FilePath(flipped.row.blob) + "/part-000001", 17);
  Put("flipped-inline", "a new generation");
  ASSERT_TRUE(media_->Delete("media", "gone").ok());
  ASSERT_TRUE(media_->DeleteObjectRow("media", "gone", gone.row.generation).ok());
  clock_.Advance(options_.interval_ms);
  const PassRecord third = RunPass();
  EXPECT_EQ(third.damaged, 1u);  // short
  r = scrubber_->Report(10);
  ASSERT_EQ(r->damaged.size(), 1u);
  EXPECT_EQ(r->damaged[0].key, "short");
  EXPECT_EQ(r->damaged[0].detected_at, by_key["short"].detected_at) << "first detection kept";
  EXPECT_EQ(r->damaged[0].last_pass, 3u);
  EXPECT_EQ(r->state.damaged_objects, 1u);
}

TEST_F(ScrubFixture, BytesTheCollectorTookAreNotDamage) {
  // An expired object whose bytes the sweep already deleted (its row goes last).
  const media::ObjectInfo expired = Put("expired", std::string(500, 'e'), "media", 1000);
  clock_.Advance(2000);
  ASSERT_TRUE(inline_->Delete(expired.row.blob).ok());
  const PassRecord p = RunPass();
  EXPECT_EQ(p.damaged, 0u);
  EXPECT_EQ(p.skipped, 1u);
  EXPECT_TRUE(scrubber_->Report(10)->damaged.empty());
}

TEST_F(ScrubFixture, APassResumesFromItsLastCheckpointAfterARestart) {
  for (const char* b : {"bk1", "bk2", "bk3"}) {
    ASSERT_TRUE(media_->PutBucket(b, media::BucketPolicy{}).ok());
    for (int i = 0; i < 10; ++i) Put("k" + std::to_string(i), std::string(200 + i, 'x'), b);
  }
  // 12 objects: checkpoints after 5 and 10 (checkpoint_objects = 5), and at bk1's end.
  ASSERT_EQ(*scrubber_->Step(12), 12u);
  auto stored = rows_->OpenTable({"media_scrub", store::TableProfile::kLive});
  ASSERT_TRUE(stored.ok());
  auto row = (*stored)->Get(kStatePartition, kStateClustering);
  ASSERT_TRUE(row.ok());
  auto persisted = DecodeScrubState(*row);
  ASSERT_TRUE(persisted.ok());
  ASSERT_TRUE(persisted->current);
  EXPECT_EQ(persisted->current->objects, 10u);
  EXPECT_EQ(persisted->position_bucket, "bk1");
  EXPECT_EQ(persisted->position_key, "k9");
  // A crash now: the process is gone, the row is what is left.
  scrubber_.reset();  // (a clean stop would save 12; put back what a kill -9 leaves)
  ASSERT_TRUE((*stored)->Put(kStatePartition, kStateClustering, *row).ok());
  OpenScrubber();
  auto report = scrubber_->Report(10);
  ASSERT_TRUE(report->state.current);
  EXPECT_EQ(report->state.position_bucket, "bk1");
  const PassRecord p = RunPass();
  EXPECT_EQ(p.id, 1u);
  EXPECT_EQ(p.objects, 30u) << "every object once: resumed, not restarted";
  EXPECT_EQ(p.bytes, 3u * (10 * 200 + 45));

  // A clean stop saves the exact position.
  clock_.Advance(options_.interval_ms);
  ASSERT_EQ(*scrubber_->Step(3), 3u);
  scrubber_.reset();
  OpenScrubber();
  report = scrubber_->Report(10);
  ASSERT_TRUE(report->state.current);
  EXPECT_EQ(report->state.current->objects, 3u);
  EXPECT_EQ(report->state.position_key, "k2");
}

TEST_F(ScrubFixture, PassesFollowTheIntervalOrARequest) {
  Put("a", "a");
  EXPECT_EQ(RunPass().id, 1u);
  EXPECT_EQ(*scrubber_->Step(10), 0u) << "not due yet";
  EXPECT_FALSE(scrubber_->Report(1)->state.current);
  auto requested = scrubber_->RequestPass();
  ASSERT_TRUE(requested.ok()) << requested.status();
  EXPECT_EQ(requested->id, 2u);
  EXPECT_TRUE(absl::IsFailedPrecondition(scrubber_->RequestPass().status()));
  EXPECT_EQ(RunPass().id, 2u);
  clock_.Advance(options_.interval_ms - 1);
  EXPECT_EQ(*scrubber_->Step(10), 0u);
  clock_.Advance(1);
  EXPECT_EQ(RunPass().id, 3u);
  EXPECT_TRUE(absl::IsInvalidArgument(scrubber_->Report(0).status()));
}

TEST_F(ScrubFixture, TheBackgroundThreadScrubsAndRunsRequestedPasses) {
  const media::ObjectInfo victim = Put("victim", std::string(3000, 'v'));
  Put("fine", std::string(3000, 'f'));
  options_.rate_bytes_per_s = 64 << 20;
  OpenScrubber();
  ASSERT_TRUE(scrubber_->Start().ok());
  auto wait_pass = [&](uint64_t id) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = scrubber_->Report(10);
      if (r.ok() && !r->state.current && r->state.last && r->state.last->id >= id) return *r;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ADD_FAILURE() << "pass " << id << " did not end";
    return ScrubReport{};
  };
  EXPECT_TRUE(wait_pass(1).damaged.empty());  // a first pass starts at once
  FlipByte(FilePath(victim.row.blob), 100);
  ASSERT_TRUE(scrubber_->RequestPass().ok());
  const ScrubReport r = wait_pass(2);
  ASSERT_EQ(r.damaged.size(), 1u);
  EXPECT_EQ(r.damaged[0].key, "victim");
  EXPECT_EQ(r.state.last->objects, 2u);
  scrubber_->Stop();
}

}  // namespace
}  // namespace strata::scrub
