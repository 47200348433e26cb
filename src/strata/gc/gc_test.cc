// The lifecycle collector on the real stores (RocksDB + local files + the embedded queue):
// encodings, mark (snapshot, export, work list, forecast), sweep (every step, re-check,
// audit, stats), archival, and an oracle test with writes, deletes and restores racing the
// sweep. Crash tests are in tests/gc_crash_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "strata/base/coding.h"
#include "strata/blob/inline/inline_blob_store.h"
#include "strata/blob/local/local_blob_store.h"
#include "strata/gc/collector.h"
#include "strata/gc/export.h"
#include "strata/media/media_service.h"
#include "strata/store/embedded_queue.h"
#include "strata/store/rocksdb/rocksdb_row_store.h"

namespace strata::gc {
namespace {

constexpr Millis kHour = 3'600'000;

TEST(GcRecordsTest, WorkItemRoundTrips) {
  WorkItem w;
  w.kind = WorkItem::Kind::kSuperseded;
  w.reason = "superseded";
  w.run_id = 7;
  w.day = "2026-11-25";
  w.bucket = "media";
  w.key = "a/b.mxf";
  w.generation = 123456789;
  w.blob = "hot/media/a/b.mxf@00000000075bcd15";
  w.size = 99;
  w.parts = 2;
  w.storage_class = "hot";
  auto d = DecodeWorkItem(EncodeWorkItem(w));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->key, w.key);
  EXPECT_EQ(d->generation, w.generation);
  EXPECT_EQ(d->kind, w.kind);
  EXPECT_EQ(d->parts, 2u);
  EXPECT_FALSE(DecodeWorkItem(EncodeWorkItem(w) + "x").ok());
  EXPECT_FALSE(DecodeWorkItem("\x02").ok());
}

TEST(GcRecordsTest, RunRecordRoundTrips) {
  RunRecord r;
  r.id = 3;
  r.dry_run = true;
  r.as_of = 1'700'000'000'000;
  r.state = RunState::kSweeping;
  r.eligible = 10;
  r.processed_bytes = 1 << 30;
  r.day = "2026-11-25";
  r.error = "x";
  auto d = DecodeRunRecord(EncodeRunRecord(r));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->id, 3u);
  EXPECT_TRUE(d->dry_run);
  EXPECT_EQ(d->state, RunState::kSweeping);
  EXPECT_EQ(d->processed_bytes, uint64_t{1} << 30);
  EXPECT_EQ(d->error, "x");
}

TEST(GcRecordsTest, RunRecordKeepsTheOrphanScanAndReadsOlderRecords) {
  RunRecord r;
  r.id = 9;
  r.orphans = 2;
  r.orphan_scan = OrphanScanState::kInterrupted;
  r.blobs_listed = 1'000'001;
  r.orphan_blobs = 3;
  r.orphan_blob_bytes = 300;
  r.orphan_blobs_collected = 2;
  r.orphan_blob_bytes_collected = 200;
  r.orphan_blobs_young = 1;
  const std::string enc = EncodeRunRecord(r);
  auto d = DecodeRunRecord(enc);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->orphans, 2u);
  EXPECT_EQ(d->orphan_scan, OrphanScanState::kInterrupted);
  EXPECT_EQ(d->blobs_listed, 1'000'001u);
  EXPECT_EQ(d->orphan_blobs, 3u);
  EXPECT_EQ(d->orphan_blob_bytes, 300u);
  EXPECT_EQ(d->orphan_blobs_collected, 2u);
  EXPECT_EQ(d->orphan_blob_bytes_collected, 200u);
  EXPECT_EQ(d->orphan_blobs_young, 1u);
  // A record written before the scan existed ends after `orphans` (or before it).
  RunRecord old;
  old.id = 4;
  old.orphans = 5;
  std::string old_enc = EncodeRunRecord(old);
  old_enc.resize(old_enc.size() - 7);  // the scan's state byte and six zero varints
  d = DecodeRunRecord(old_enc);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->orphans, 5u);
  EXPECT_EQ(d->orphan_scan, OrphanScanState::kOff);
  old_enc.resize(old_enc.size() - 1);  // and without `orphans`
  d = DecodeRunRecord(old_enc);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->orphans, 0u);
  // A partial scan block or an unknown state is corrupt.
  EXPECT_FALSE(DecodeRunRecord(enc.substr(0, enc.size() - 1)).ok());
  std::string bad_state = EncodeRunRecord(old);
  bad_state[bad_state.size() - 7] = 9;
  EXPECT_FALSE(DecodeRunRecord(bad_state).ok());
}

TEST(GcOrphanScanTest, AgeIsTheYoungerOfNameAndStoreTime) {
  const Millis now = 1'800'000'000'000;
  blob::BlobInfo info;
  // An inline blob: only its name (generation = upload start in microseconds).
  EXPECT_EQ(OrphanAge(info, static_cast<uint64_t>(now - 5000) * 1000, now), 5000);
  // An archival copy: an old generation, a fresh file.
  info.modified_ms = now - 20;
  EXPECT_EQ(OrphanAge(info, static_cast<uint64_t>(now - 86'400'000) * 1000, now), 20);
  // A generation bumped past the clock (names taken) makes it younger, never older.
  info.modified_ms = now - 86'400'000;
  EXPECT_EQ(OrphanAge(info, static_cast<uint64_t>(now + 7) * 1000, now), -7);
}

TEST(GcOrphanScanTest, ReferencedBlobsAnswerOnlyForWhatWasAdded) {
  ReferencedBlobs a, b;
  a.Add("hot/m/a@0000000000000001");
  b.Add("hot/m/b@0000000000000002");
  b.Add("hot/m/a@0000000000000001");
  a.Merge(std::move(b));
  a.Seal();
  EXPECT_EQ(a.size(), 2u);
  EXPECT_TRUE(a.Contains("hot/m/a@0000000000000001"));
  EXPECT_TRUE(a.Contains("hot/m/b@0000000000000002"));
  EXPECT_FALSE(a.Contains("hot/m/c@0000000000000003"));
}

TEST(GcRecordsTest, Days) {
  EXPECT_EQ(DayOf(0), "1970-01-01");
  EXPECT_EQ(DayOf(1'700'000'000'000), "2023-11-14");
  EXPECT_EQ(DayOf(951'782'400'000), "2000-02-29");
  auto start = DayStart("2023-11-14");
  ASSERT_TRUE(start.ok());
  EXPECT_EQ(*start, 1'699'920'000'000);
  EXPECT_FALSE(DayStart("2023-13-01").ok());
}

TEST(GcRecordsTest, JsonStringsEscapeEverythingUnusual) {
  std::string out;
  AppendJsonString(&out, std::string("a\"b\\c\n\x01\xc3\xa9", 9));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\u000a\\u0001\\u00c3\\u00a9\"");
}

// Data directory with the stores, the media service and one collector.
// The RocksDB store without its snapshots, as the collector sees a RADOS store: NewSnapshot
// answers Unimplemented, so the mark reads the latest rows.
class NoSnapshotRowStore final : public store::RowStore {
 public:
  explicit NoSnapshotRowStore(store::RowStore* inner) : inner_(inner) {}
  absl::StatusOr<store::Table*> OpenTable(const store::TableOptions& o) override {
    return inner_->OpenTable(o);
  }
  absl::Status Write(std::span<const store::PartitionWrite> w) override {
    return inner_->Write(w);
  }
  absl::Status WriteInOrder(std::span<const store::PartitionWrite> w) override {
    return inner_->WriteInOrder(w);
  }
  absl::StatusOr<std::unique_ptr<store::Snapshot>> NewSnapshot() override {
    ++snapshot_requests;
    return absl::UnimplementedError("snapshot: none here");
  }
  absl::Status Sync() override { return inner_->Sync(); }
  std::atomic<int> snapshot_requests{0};

 private:
  store::RowStore* inner_;
};

// A blob store that refuses to delete blobs whose name contains "refuse" while `refuse` is
// set, as S3 refuses some keys of a DeleteObjects (AccessDenied under a bucket policy): those
// blobs stay, their own status says why, and the rest of the batch is deleted.
class RefusingBlobStore final : public blob::BlobStore {
 public:
  explicit RefusingBlobStore(blob::BlobStore* inner) : inner_(inner) {}
  absl::StatusOr<std::unique_ptr<blob::BlobWriter>> NewWriter(std::string_view n) override {
    return inner_->NewWriter(n);
  }
  absl::StatusOr<std::unique_ptr<blob::BlobReader>> NewReader(std::string_view n) override {
    return inner_->NewReader(n);
  }
  absl::StatusOr<blob::BlobInfo> Stat(std::string_view n) override { return inner_->Stat(n); }
  absl::Status Delete(std::string_view n) override {
    if (Refused(n)) return absl::PermissionDeniedError("refused: " + std::string(n));
    return inner_->Delete(n);
  }
  std::vector<absl::Status> DeleteEach(std::span<const std::string> names) override {
    std::vector<absl::Status> out(names.size());
    std::vector<std::string> pass;
    std::vector<size_t> at;
    for (size_t i = 0; i < names.size(); ++i) {
      if (Refused(names[i])) {
        out[i] = absl::PermissionDeniedError("refused: " + names[i]);
        ++refusals;
      } else {
        pass.push_back(names[i]);
        at.push_back(i);
      }
    }
    std::vector<absl::Status> got = inner_->DeleteEach(pass);
    for (size_t j = 0; j < got.size(); ++j) out[at[j]] = std::move(got[j]);
    return out;
  }
  absl::Status DeleteMany(std::span<const std::string> names) override {
    for (absl::Status& s : DeleteEach(names)) {
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }
  absl::StatusOr<blob::ListPage> List(std::string_view p, std::string_view a,
                                      size_t l) override {
    return inner_->List(p, a, l);
  }
  std::atomic<bool> refuse{false};
  std::atomic<int> refusals{0};

 private:
  bool Refused(std::string_view n) const {
    return refuse.load() && n.find("refuse") != std::string_view::npos;
  }
  blob::BlobStore* inner_;
};

class GcFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("strata_gc_test_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
    Open();
  }
  void TearDown() override {
    Close();
    std::filesystem::remove_all(dir_);
  }

  void Open(bool start = true, std::string task = "gc") {
    store::RocksRowStoreOptions o;
    o.path = dir_ + "/rows";
    o.clock = &clock_;
    auto rows = store::RocksRowStore::Open(o);
    ASSERT_TRUE(rows.ok()) << rows.status();
    rows_ = std::move(*rows);
    blob::LocalBlobStoreOptions bo;
    bo.root = dir_ + "/blobs";
    bo.part_bytes = 4096;
    bo.sync = false;
    auto blobs = blob::LocalBlobStore::Open(bo);
    ASSERT_TRUE(blobs.ok()) << blobs.status();
    files_ = std::move(*blobs);
    blobs_ = files_.get();
    if (inline_max_ > 0) {
      blob::InlineBlobStoreOptions io;
      io.max_inline_bytes = inline_max_;
      auto inline_blobs = blob::InlineBlobStore::Open(rows_.get(), files_.get(), io, &metrics_);
      ASSERT_TRUE(inline_blobs.ok()) << inline_blobs.status();
      inline_ = std::move(*inline_blobs);
      blobs_ = inline_.get();
    }
    refusing_ = std::make_unique<RefusingBlobStore>(blobs_);
    blobs_ = refusing_.get();
    store::EmbeddedQueueOptions qo;
    qo.clock = &clock_;
    qo.metrics = &metrics_;
    qo.retention_interval_ms = 0;
    auto queue = store::EmbeddedQueue::Open(rows_.get(), qo);
    ASSERT_TRUE(queue.ok()) << queue.status();
    queue_ = std::move(*queue);
    auto media = media::MediaService::Open(rows_.get(), blobs_, &clock_, &metrics_);
    ASSERT_TRUE(media.ok()) << media.status();
    media_ = std::move(*media);
    if (task == "gc") {
      task_ = std::make_unique<HardDeleteTask>(
          media_.get(), HardDeleteTask::kDefaultOrphanAgeMs, /*batch_rows=*/batched_);
    } else {
      task_ = std::make_unique<ArchiveTask>(media_.get(), 24 * kHour, "cold");
    }
    CollectorOptions co;
    co.export_dir = dir_ + "/export";
    co.export_keep_runs = export_keep_runs_;
    co.control_interval_ms = 20;
    co.max_workers = 3;
    co.backlog_per_worker = 50;
    co.throttle.initial_rate = 20000;
    co.throttle.max_rate = 100000;
    co.daily_at = daily_at_;
    co.on_scheduled_run = [this](const absl::StatusOr<RunRecord>& run) {
      scheduled_runs_.push_back(run.ok() ? run->id : 0);
    };
    co.scan_orphan_blobs = scan_orphan_blobs_;
    co.batch_records = batched_;
    store::RowStore* collector_rows = rows_.get();
    if (no_snapshots_) {
      no_snapshot_rows_ = std::make_unique<NoSnapshotRowStore>(rows_.get());
      collector_rows = no_snapshot_rows_.get();
    }
    auto collector = Collector::Open(collector_rows, queue_.get(), media_.get(), task_.get(),
                                     &clock_, &metrics_, co);
    ASSERT_TRUE(collector.ok()) << collector.status();
    collector_ = std::move(*collector);
    if (start) {
      ASSERT_TRUE(collector_->Start().ok());
    }
  }

  void Close() {
    collector_.reset();
    task_.reset();
    media_.reset();
    queue_.reset();
    blobs_ = nullptr;
    refusing_.reset();
    inline_.reset();
    files_.reset();
    no_snapshot_rows_.reset();
    rows_.reset();
  }

  media::ObjectInfo Put(const std::string& key, const std::string& data,
                        std::optional<Millis> ttl = std::nullopt, std::string bucket = "media") {
    media::PutObjectOptions o;
    o.ttl_ms = ttl;
    o.meta = {{"title", "t" + std::to_string(data.size() % 7)}};
    auto up = media_->BeginPut(bucket, key, o);
    EXPECT_TRUE(up.ok()) << up.status();
    if (!up.ok()) return {};
    EXPECT_TRUE((*up)->Append(data).ok());
    auto info = (*up)->Commit();
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : media::ObjectInfo{};
  }

  size_t CountBlobs(const std::string& prefix = "hot/") {
    auto page = blobs_->List(prefix, "", 1000);
    EXPECT_TRUE(page.ok());
    return page.ok() ? page->blobs.size() : 0;
  }

  // Random puts, deletes, restores and rewrites racing a sweep; then every survivor and
  // every deletion is checked against an oracle of what was written.
  void RunOracle();
  // One run over expired, deleted, in-grace, live and rewritten objects, then a second run.
  void RunSweepDeletes();
  // A run where the blob store refuses some deletes, then a run where it does not.
  void RunRefusedDeletes();
  // Orphan blobs (no row names them) planted old and young, with every kind of named bytes
  // beside them: dry run, run, later run.
  void RunOrphanBlobs();
  // Writers, archival and orphan scans with no grace at all, racing: no bytes a row names
  // may ever go.
  void RunOrphanScanRace();

  size_t CountIndexEntries(const std::string& bucket) {
    store::ScanOptions scan;
    scan.start = "i";
    scan.end = "j";
    auto page = media_->objects_table()->Scan(bucket, scan);
    EXPECT_TRUE(page.ok());
    return page.ok() ? page->rows.size() : 0;
  }

  std::string dir_;
  std::string daily_at_;
  // Runs the schedule reported starting (0: one that failed to start), for the audit log.
  std::vector<uint64_t> scheduled_runs_;
  size_t export_keep_runs_ = 30;
  bool scan_orphan_blobs_ = true;
  ManualClock clock_;
  MetricsRegistry metrics_;
  std::unique_ptr<store::RocksRowStore> rows_;
  // The collector reads through a store without snapshots (as on RADOS).
  bool no_snapshots_ = false;
  std::unique_ptr<NoSnapshotRowStore> no_snapshot_rows_;
  // Objects of at most this many bytes are inline rows (blob::InlineBlobStore), the rest
  // files; 0 = files only.
  uint64_t inline_max_ = 0;
  std::unique_ptr<blob::LocalBlobStore> files_;
  std::unique_ptr<blob::InlineBlobStore> inline_;
  // In front of the others; refuses nothing until told to.
  std::unique_ptr<RefusingBlobStore> refusing_;
  blob::BlobStore* blobs_ = nullptr;
  // The sweep's batched row steps and records, as the server runs them on RADOS.
  bool batched_ = false;
  std::unique_ptr<store::EmbeddedQueue> queue_;
  std::unique_ptr<media::MediaService> media_;
  std::unique_ptr<LifecycleTask> task_;
  std::unique_ptr<Collector> collector_;
};

// With inline blobs as the server runs by default: objects up to 10 bytes are rows, so the
// oracle's "v0-k12"-style values are inline and the racer's longer ones are files.
class GcInlineFixture : public GcFixture {
 protected:
  void SetUp() override {
    inline_max_ = 10;
    GcFixture::SetUp();
  }
};

// The collector on a row store without snapshots (RADOS): the mark reads the latest rows.
class GcNoSnapshotFixture : public GcFixture {
 protected:
  void SetUp() override {
    no_snapshots_ = true;
    GcFixture::SetUp();
  }
};

// The sweep as on RADOS: no snapshots, a batch's rows re-checked with one MultiGet, its
// decisions recorded in one write, its rows removed in one conditional write per bucket.
class GcBatchedFixture : public GcFixture {
 protected:
  void SetUp() override {
    no_snapshots_ = true;
    batched_ = true;
    inline_max_ = 10;
    GcFixture::SetUp();
  }
};

size_t CountLines(const std::filesystem::path& dir, const std::string& name_prefix) {
  size_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().filename().string().rfind(name_prefix, 0) != 0) {
      continue;
    }
    std::ifstream in(e.path());
    std::string line;
    while (std::getline(in, line)) ++n;
  }
  return n;
}

// Only the newest N runs' export files stay (per task); older runs' files and the day
// directories they leave empty go, and files that are not a run's are left alone.
TEST(GcExport, PruneKeepsTheNewestRuns) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("strata-prune-" + std::to_string(getpid()));
  fs::remove_all(dir);
  auto touch = [&](const std::string& rel) {
    fs::create_directories((dir / rel).parent_path());
    std::ofstream(dir / rel) << "{}\n";
  };
  for (int run = 1; run <= 5; ++run) {
    const std::string day = "dt=2026-12-0" + std::to_string(run);
    touch("gc/buckets/" + day + "/run-" + std::to_string(run) + ".ndjson");
    touch("gc/objects/" + day + "/run-" + std::to_string(run) + "-part-0.ndjson");
    touch("gc/worklist/" + day + "/run-" + std::to_string(run) + "-part-0.ndjson");
  }
  touch("gc/_schema.json");
  touch("gc/objects/dt=2026-12-01/notes.txt");
  touch("archive/objects/dt=2026-12-01/run-1-part-0.ndjson");  // another task

  absl::StatusOr<size_t> deleted = PruneExports(dir.string(), "gc", 2);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 9u);  // runs 1-3, three files each
  EXPECT_TRUE(fs::exists(dir / "gc/objects/dt=2026-12-05/run-5-part-0.ndjson"));
  EXPECT_TRUE(fs::exists(dir / "gc/worklist/dt=2026-12-04/run-4-part-0.ndjson"));
  EXPECT_FALSE(fs::exists(dir / "gc/buckets/dt=2026-12-03"));  // emptied, removed
  EXPECT_TRUE(fs::exists(dir / "gc/objects/dt=2026-12-01/notes.txt"));
  EXPECT_TRUE(fs::exists(dir / "gc/_schema.json"));
  EXPECT_TRUE(fs::exists(dir / "archive/objects/dt=2026-12-01/run-1-part-0.ndjson"));
  EXPECT_EQ(*PruneExports(dir.string(), "gc", 2), 0u);
  EXPECT_EQ(*PruneExports(dir.string(), "gc", 0), 0u) << "0 keeps everything";
  fs::remove_all(dir);
}

// Each run, dry runs included, writes an export; the collector keeps the newest N.
TEST_F(GcFixture, RunsKeepOnlyTheNewestExports) {
  Close();
  export_keep_runs_ = 2;
  Open();
  ASSERT_TRUE(media_->PutBucket("media", media::BucketPolicy{}).ok());
  Put("a", "x");
  std::vector<uint64_t> runs;
  for (int i = 0; i < 4; ++i) {
    auto run = collector_->RunAndWait({.dry_run = true}, 10'000);
    ASSERT_TRUE(run.ok()) << run.status();
    runs.push_back(run->id);
  }
  std::set<std::string> seen;
  for (const auto& f : std::filesystem::recursive_directory_iterator(dir_ + "/export/gc")) {
    const std::string name = f.path().filename().string();
    if (name.rfind("run-", 0) == 0) seen.insert(name.substr(0, name.find_first_of("-.", 4)));
  }
  EXPECT_EQ(seen, (std::set<std::string>{"run-" + std::to_string(runs[2]),
                                         "run-" + std::to_string(runs[3])}));
}

TEST_F(GcFixture, DryRunForecastsAndExportsWithoutDeleting) {
  media::BucketPolicy p;
  p.grace_ms = kHour;
  ASSERT_TRUE(media_->PutBucket("media", p).ok());
  Put("keep", "k");
  Put("ttl-2h", "tt", 2 * kHour);
  Put("ttl-9h", "ttt", 9 * kHour);
  Put("deleted", "dddd");
  ASSERT_TRUE(media_->Delete("media", "deleted").ok());
  Put("rewritten", "v1");
  Put("rewritten", "v2!");  // v1's bytes: a superseded row

  auto now = collector_->RunAndWait({.dry_run = true}, 10'000);
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->state, RunState::kDone);
  EXPECT_EQ(now->scanned, 5u);
  EXPECT_EQ(now->eligible, 1u);  // only the superseded bytes are collectable right now
  EXPECT_EQ(now->superseded, 1u);

  auto forecast =
      collector_->RunAndWait({.dry_run = true, .as_of = clock_.NowMillis() + 3 * kHour}, 10'000);
  ASSERT_TRUE(forecast.ok()) << forecast.status();
  EXPECT_EQ(forecast->eligible, 3u);  // + ttl-2h (expired) + deleted (grace of 1h passed)
  EXPECT_EQ(forecast->expired, 1u);
  EXPECT_EQ(forecast->deleted_marked, 1u);
  EXPECT_EQ(forecast->eligible_bytes, 2u + 4u + 2u);

  // Nothing was touched.
  EXPECT_EQ(CountBlobs(), 6u);
  EXPECT_EQ(collector_->Backlog(), 0u);
  // A non-dry run may not look into the future.
  EXPECT_TRUE(absl::IsInvalidArgument(
      collector_->StartRun({.dry_run = false, .as_of = clock_.NowMillis() + 1}).status()));

  // The export: schema, buckets, every row, and the work list, partitioned by day.
  const std::filesystem::path root = dir_ + "/export/gc";
  EXPECT_TRUE(std::filesystem::exists(root / "_schema.json"));
  const std::string dt = "dt=" + DayOf(clock_.NowMillis());
  EXPECT_TRUE(std::filesystem::is_directory(root / "objects" / dt));
  EXPECT_EQ(CountLines(root / "objects", "run-" + std::to_string(forecast->id) + "-"), 6u);
  EXPECT_EQ(CountLines(root / "worklist", "run-" + std::to_string(forecast->id) + "-"), 3u);
  EXPECT_EQ(CountLines(root / "buckets", "run-" + std::to_string(forecast->id)), 1u);
  std::ifstream in(root / "worklist" / dt / ("run-" + std::to_string(now->id) + "-part-0.ndjson"));
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ifstream in1(root / "worklist" / dt / ("run-" + std::to_string(now->id) + "-part-1.ndjson"));
  all.append((std::istreambuf_iterator<char>(in1)), std::istreambuf_iterator<char>());
  EXPECT_NE(all.find("\"reason\":\"superseded\""), std::string::npos) << all;
  EXPECT_NE(all.find("\"key\":\"rewritten\""), std::string::npos) << all;
}

TEST_F(GcFixture, SweepDeletesBytesIndexAndRowsAndAuditsOnce) { RunSweepDeletes(); }
TEST_F(GcInlineFixture, SweepDeletesBytesIndexAndRowsAndAuditsOnce) { RunSweepDeletes(); }
TEST_F(GcNoSnapshotFixture, SweepDeletesBytesIndexAndRowsAndAuditsOnce) {
  RunSweepDeletes();
  EXPECT_GT(no_snapshot_rows_->snapshot_requests.load(), 0) << "the mark asked, and went on";
}

TEST_F(GcBatchedFixture, SweepDeletesBytesIndexAndRowsAndAuditsOnce) { RunSweepDeletes(); }

TEST_F(GcFixture, BytesTheStoreRefusesToDeleteLeaveTheirItemsForTheNextRun) {
  RunRefusedDeletes();
}
TEST_F(GcBatchedFixture, BytesTheStoreRefusesToDeleteLeaveTheirItemsForTheNextRun) {
  RunRefusedDeletes();
}

// Some blobs of each batch cannot be deleted (the store says so for each one): their items
// fail, keep their rows and bytes, and the next run collects them; the rest of the batch is
// collected at once, and each deletion is counted once.
void GcFixture::RunRefusedDeletes() {
  media::BucketPolicy p;
  p.grace_ms = kHour;
  ASSERT_TRUE(media_->PutBucket("media", p).ok());
  for (int i = 0; i < 12; ++i) {
    Put((i % 3 == 0 ? "refuse/" : "ok/") + std::to_string(i), std::string(20 + i, 'r'), kHour);
  }
  Put("live", "live bytes");
  clock_.Advance(2 * kHour);
  refusing_->refuse = true;
  auto run = collector_->RunAndWait({}, 20'000);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->state, RunState::kDone) << run->error;
  EXPECT_EQ(run->eligible, 12u);
  EXPECT_EQ(run->errors, 4u);
  EXPECT_GT(refusing_->refusals.load(), 0);
  EXPECT_EQ(CountBlobs("hot/media/ok/"), 0u);
  EXPECT_EQ(CountBlobs("hot/media/refuse/"), 4u);
  for (int i = 0; i < 12; i += 3) {
    const std::string key = "refuse/" + std::to_string(i);
    EXPECT_TRUE(media_->objects_table()->Get("media", "o" + key).ok()) << key;
  }
  EXPECT_TRUE(absl::IsNotFound(media_->objects_table()->Get("media", "ook/1").status()));
  EXPECT_EQ(CountIndexEntries("media"), 5u);  // live + the four refused
  EXPECT_TRUE(media_->Head("media", "live").ok());

  refusing_->refuse = false;
  auto again = collector_->RunAndWait({}, 20'000);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->state, RunState::kDone) << again->error;
  EXPECT_EQ(again->eligible, 4u);
  EXPECT_EQ(again->errors, 0u);
  EXPECT_EQ(CountBlobs("hot/media/refuse/"), 0u);
  EXPECT_EQ(CountIndexEntries("media"), 1u);
  auto stats = collector_->Stats(1);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->back().objects, 12u);  // decided (and recorded) once each
  EXPECT_EQ(collector_->RunAndWait({}, 20'000)->eligible, 0u);
}

void GcFixture::RunSweepDeletes() {
  media::BucketPolicy p;
  p.grace_ms = kHour;
  ASSERT_TRUE(media_->PutBucket("media", p).ok());
  const std::string big(3 * 4096 + 5, 'b');  // 4 parts
  Put("big-expired", big, kHour);
  Put("deleted", "dddd");
  ASSERT_TRUE(media_->Delete("media", "deleted").ok());
  Put("live", "live");
  Put("deleted-recent", "x");
  clock_.Advance(2 * kHour);
  ASSERT_TRUE(media_->Delete("media", "deleted-recent").ok());  // still in grace
  Put("rewritten", "v1");
  Put("rewritten", "v2");

  auto run = collector_->RunAndWait({}, 20'000);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->state, RunState::kDone) << run->error;
  EXPECT_EQ(run->eligible, 3u);
  EXPECT_EQ(run->processed, 3u);
  EXPECT_EQ(run->processed_bytes, big.size() + 4 + 2);
  EXPECT_EQ(run->skipped, 0u);
  EXPECT_EQ(run->errors, 0u);

  // Rows gone, index entries gone, bytes gone; the others untouched.
  EXPECT_TRUE(absl::IsNotFound(media_->objects_table()->Get("media", "obig-expired").status()));
  EXPECT_TRUE(absl::IsNotFound(media_->objects_table()->Get("media", "odeleted").status()));
  EXPECT_TRUE(media_->Head("media", "live").ok());
  EXPECT_TRUE(media_->Restore("media", "deleted-recent").ok());
  auto v2 = media_->OpenForRead("media", "rewritten");
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(CountBlobs(), 3u);  // live, deleted-recent, rewritten v2
  if (inline_) {  // those three are small: rows of the inline table, and nothing else is
    auto rows = inline_->table()->Scan("b", {});
    ASSERT_TRUE(rows.ok());
    EXPECT_EQ(rows->rows.size(), 3u);
  }
  EXPECT_EQ(CountIndexEntries("media"), 3u);

  // Stats per day and the audit; a second run finds nothing and counts nothing twice.
  auto again = collector_->RunAndWait({}, 20'000);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->eligible, 0u);
  auto stats = collector_->Stats(2);
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->size(), 2u);
  EXPECT_EQ(stats->back().day, DayOf(clock_.NowMillis()));
  EXPECT_EQ(stats->back().objects, 3u);
  EXPECT_EQ(stats->back().bytes, big.size() + 6);
  EXPECT_EQ(stats->back().by_bucket_reason.size(), 3u);  // deleted, expired, superseded
  auto runs = collector_->ListRuns(10);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].id, again->id);
}

TEST_F(GcFixture, AbandonedUploadsAreCollectedOnceOlderThanTheOrphanAge) {
  ASSERT_TRUE(media_->PutBucket("media", {}).ok());
  Put("live", "live bytes");
  // A crash between the bytes and the metadata: committed bytes, an upload row, no object.
  const std::string orphan_blob = "hot/media/crashed@" + media::Hex64(7);
  ASSERT_TRUE(blobs_->Put(orphan_blob, "orphan bytes").ok());
  ASSERT_TRUE(media_->objects_table()
                  ->Put("media", media::UploadClustering("crashed", 7),
                        media::EncodeUploadRow({orphan_blob, "hot", clock_.NowMillis()}))
                  .ok());
  // A crash in the middle of a stream: an upload row and no bytes.
  ASSERT_TRUE(media_->objects_table()
                  ->Put("media", media::UploadClustering("dropped", 8),
                        media::EncodeUploadRow({"hot/media/dropped@" + media::Hex64(8), "hot",
                                                clock_.NowMillis()}))
                  .ok());
  // An upload still streaming when it passes the orphan age: claimed, so it cannot commit.
  auto slow = media_->BeginPut("media", "slow", {});
  ASSERT_TRUE(slow.ok()) << slow.status();
  ASSERT_TRUE((*slow)->Append("slow bytes").ok());
  // A dropped stream cleans up after itself.
  {
    auto gone = media_->BeginPut("media", "gone", {});
    ASSERT_TRUE(gone.ok());
    ASSERT_TRUE((*gone)->Append("abc").ok());
  }
  clock_.Advance(HardDeleteTask::kDefaultOrphanAgeMs + kHour);
  // A young upload row is left alone.
  const std::string young_blob = "hot/media/young@" + media::Hex64(9);
  ASSERT_TRUE(blobs_->Put(young_blob, "young").ok());
  ASSERT_TRUE(media_->objects_table()
                  ->Put("media", media::UploadClustering("young", 9),
                        media::EncodeUploadRow({young_blob, "hot", clock_.NowMillis()}))
                  .ok());

  auto run = collector_->RunAndWait({}, 20'000);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->state, RunState::kDone) << run->error;
  EXPECT_EQ(run->orphans, 3u);  // crashed, dropped, slow
  EXPECT_EQ(run->eligible, 3u);
  EXPECT_EQ(run->processed, 3u);
  EXPECT_EQ(run->processed_bytes, std::string("orphan bytes").size());
  EXPECT_EQ(run->errors, 0u);
  EXPECT_TRUE(absl::IsNotFound(blobs_->Stat(orphan_blob).status()));
  EXPECT_TRUE(blobs_->Stat(young_blob).ok());
  EXPECT_TRUE(media_->Head("media", "live").ok());

  // The claimed upload cannot commit now, and leaves no bytes behind.
  auto late = (*slow)->Commit();
  EXPECT_TRUE(absl::IsAborted(late.status())) << late.status();
  EXPECT_TRUE(absl::IsNotFound(media_->Head("media", "slow").status()));
  EXPECT_EQ(CountBlobs(), 2u);  // live, young

  // What is left of the media partition: the live object, its index entry, the young upload
  // row (no superseded or other upload rows).
  store::ScanOptions all;
  auto rest = media_->objects_table()->Scan("media", all);
  ASSERT_TRUE(rest.ok());
  std::vector<std::string> kinds;
  for (const auto& r : rest->rows) kinds.push_back(r.clustering.substr(0, 1));
  EXPECT_THAT(kinds, ::testing::ElementsAre("i", "o", "u"));
  auto stats = collector_->Stats(1);
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->back().by_bucket_reason.size(), 1u);
  EXPECT_EQ(stats->back().by_bucket_reason[0].reason, "orphan");
  EXPECT_EQ(stats->back().by_bucket_reason[0].objects, 3u);
}

TEST_F(GcFixture, ReCheckSkipsObjectsRewrittenAfterTheMark) {
  Close();
  Open(/*start=*/false);  // no workers: the run stops after publishing
  media::BucketPolicy p;
  p.grace_ms = kHour;
  p.ttl_ms = 10 * kHour;
  ASSERT_TRUE(media_->PutBucket("media", p).ok());
  Put("collected-1", "r");
  Put("rewritten", "w");
  Put("collected-2", "c");
  ASSERT_TRUE(media_->Delete("media", "collected-1").ok());
  ASSERT_TRUE(media_->Delete("media", "rewritten").ok());
  ASSERT_TRUE(media_->Delete("media", "collected-2").ok());
  // The grace period passes: the run marks all three (and they can no longer be restored:
  // restores racing the sweep are covered by the oracle test below)...
  clock_.Advance(kHour);
  auto run = collector_->StartRun({});
  ASSERT_TRUE(run.ok());
  for (int i = 0; i < 500 && collector_->GetRun(run->id)->state != RunState::kSweeping; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(collector_->GetRun(run->id)->state, RunState::kSweeping);
  EXPECT_EQ(collector_->Backlog(), 3u);
  // ...then one key is re-written before the workers get to it, so the marked generation is
  // gone; the new one must survive.
  Put("rewritten", "new bytes");
  ASSERT_TRUE(collector_->Start().ok());
  auto done = collector_->WaitRun(run->id, 20'000);
  ASSERT_TRUE(done.ok());
  ASSERT_EQ(done->state, RunState::kDone);
  EXPECT_EQ(done->processed, 2u);
  EXPECT_EQ(done->skipped, 1u);
  auto r = media_->OpenForRead("media", "rewritten");
  ASSERT_TRUE(r.ok()) << r.status();
  std::string bytes;
  ASSERT_TRUE(r->reader->ReadAt(0, 100, &bytes).ok());
  EXPECT_EQ(bytes, "new bytes");
}

TEST_F(GcFixture, ArchivalMovesOldObjectsToTheColdClass) {
  Close();
  Open(/*start=*/true, "archive");
  ASSERT_TRUE(media_->PutBucket("media", {}).ok());
  const std::string data(10000, 'a');
  Put("old", data);
  Put("old-deleted", "x");
  ASSERT_TRUE(media_->Delete("media", "old-deleted").ok());
  clock_.Advance(25 * kHour);
  Put("young", "y");
  auto run = collector_->RunAndWait({}, 20'000);
  ASSERT_TRUE(run.ok());
  ASSERT_EQ(run->state, RunState::kDone) << run->error;
  EXPECT_EQ(run->eligible, 1u);
  EXPECT_EQ(run->processed, 1u);
  auto old = media_->OpenForRead("media", "old");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->info.row.storage_class, "cold");
  EXPECT_EQ(old->info.row.blob.substr(0, 11), "cold/media/");
  std::string bytes;
  ASSERT_TRUE(old->reader->ReadAt(0, data.size(), &bytes).ok());
  EXPECT_EQ(bytes, data);
  EXPECT_EQ(CountBlobs("cold/"), 1u);
  EXPECT_EQ(CountBlobs("hot/"), 2u);  // old-deleted and young stay hot
  auto stats = collector_->Stats(1);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)[0].objects, 1u);
  EXPECT_EQ((*stats)[0].by_bucket_reason[0].reason, "age");
}

TEST_F(GcFixture, DailyScheduleStartsOneRunPerDayAfterItsTime) {
  Close();
  daily_at_ = "03:00";
  auto midnight = DayStart(DayOf(clock_.NowMillis()));
  ASSERT_TRUE(midnight.ok());
  clock_.Set(*midnight + 24 * kHour + 2 * kHour + 59 * 60'000);  // tomorrow 02:59
  Open(/*start=*/false);
  ASSERT_TRUE(media_->PutBucket("media", {}).ok());
  collector_->ControlStep();
  EXPECT_TRUE(collector_->ListRuns(10)->empty());
  clock_.Advance(2 * 60'000);  // 03:01
  collector_->ControlStep();
  ASSERT_EQ(collector_->ListRuns(10)->size(), 1u);
  auto run = collector_->WaitRun(1, 10'000);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->state, RunState::kDone);
  EXPECT_FALSE(run->dry_run);
  collector_->ControlStep();
  clock_.Advance(kHour);
  collector_->ControlStep();
  EXPECT_EQ(collector_->ListRuns(10)->size(), 1u);  // once a day
  EXPECT_EQ(scheduled_runs_, std::vector<uint64_t>{1});  // and reported, for the audit
  // A restart the same day does not run it again; the next day does.
  Close();
  Open(/*start=*/false);
  collector_->ControlStep();
  EXPECT_EQ(collector_->ListRuns(10)->size(), 1u);
  clock_.Advance(24 * kHour);
  collector_->ControlStep();
  EXPECT_EQ(collector_->ListRuns(10)->size(), 2u);
  EXPECT_EQ(scheduled_runs_, (std::vector<uint64_t>{1, 2}));
  daily_at_.clear();
}

// The oracle test: a sweep runs while another thread re-writes, deletes and restores objects
// (and the clock moves). Every object the oracle says must survive survives with its bytes,
// and every hard delete in the audit was of a generation eligible when it was deleted.
TEST_F(GcFixture, OracleNoIneligibleObjectIsEverDeleted) { RunOracle(); }
TEST_F(GcInlineFixture, OracleNoIneligibleObjectIsEverDeleted) { RunOracle(); }
TEST_F(GcNoSnapshotFixture, OracleNoIneligibleObjectIsEverDeleted) { RunOracle(); }
TEST_F(GcBatchedFixture, OracleNoIneligibleObjectIsEverDeleted) { RunOracle(); }

void GcFixture::RunOracle() {
  media::BucketPolicy p;
  p.grace_ms = 1000;
  ASSERT_TRUE(media_->PutBucket("media", p).ok());
  struct Version {
    Millis created_at = 0;
    Millis ttl_ms = 0;
    Millis deleted_at = 0;
    Millis grace_ms = 0;
    std::string data;
  };
  std::mutex mu;
  std::map<std::string, std::map<uint64_t, Version>> versions;  // key -> generation -> version
  std::map<std::string, uint64_t> current;
  auto put = [&](const std::string& key, const std::string& data, std::optional<Millis> ttl) {
    media::ObjectInfo info = Put(key, data, ttl);
    std::lock_guard<std::mutex> lock(mu);
    versions[key][info.row.generation] = {info.row.created_at, info.row.ttl_ms, 0,
                                          info.row.grace_ms, data};
    if (info.row.generation > current[key]) current[key] = info.row.generation;
  };
  auto del = [&](const std::string& key) {
    auto r = media_->Delete("media", key);
    if (!r.ok()) return;
    std::lock_guard<std::mutex> lock(mu);
    versions[key][r->row.generation].deleted_at = r->row.deleted_at;
  };
  auto restore = [&](const std::string& key) {
    auto r = media_->Restore("media", key);
    if (!r.ok()) return;
    std::lock_guard<std::mutex> lock(mu);
    versions[key][r->row.generation].deleted_at = 0;
  };
  constexpr int kKeys = 600;
  std::mt19937 rng(42);
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "k" + std::to_string(i);
    put(key, "v0-" + key, i % 4 == 0 ? std::optional<Millis>(500) : std::nullopt);
    if (i % 4 == 1) del(key);
    if (i % 8 == 2) put(key, "v1-" + key, std::nullopt);
  }
  clock_.Advance(2000);  // TTL 500 expired, grace 1000 passed
  for (int i = 3; i < kKeys; i += 8) del("k" + std::to_string(i));  // in grace: restorable

  auto run = collector_->StartRun({});
  ASSERT_TRUE(run.ok());
  std::atomic<bool> done{false};
  std::thread racer([&] {
    std::mt19937 r(7);
    int ops = 0;
    while (!done.load() || ops < 300) {
      const std::string key = "k" + std::to_string(r() % kKeys);
      switch (r() % 5) {
        case 0:
          put(key, "race-" + std::to_string(ops) + "-" + key, std::nullopt);
          break;
        case 1:
          del(key);
          break;
        case 2:
          restore(key);
          break;
        case 3:
          put(key, "race-ttl-" + std::to_string(ops), 300);
          break;
        default:
          clock_.Advance(1);
          break;
      }
      ++ops;
    }
  });
  auto finished = collector_->WaitRun(run->id, 60'000);
  done = true;
  racer.join();
  ASSERT_TRUE(finished.ok());
  ASSERT_EQ(finished->state, RunState::kDone) << finished->error;
  EXPECT_EQ(finished->errors, 0u);
  EXPECT_EQ(finished->processed + finished->skipped, finished->eligible);

  const Millis end = clock_.NowMillis();
  auto eligible_at = [](const Version& v, Millis t) {
    return (v.deleted_at != 0 && v.deleted_at + v.grace_ms <= t) ||
           (v.ttl_ms > 0 && v.created_at + v.ttl_ms <= t);
  };
  // Survivors: every key whose current version is not eligible now has that generation's
  // row and bytes.
  int checked = 0;
  for (const auto& [key, gen] : current) {
    const Version& v = versions[key][gen];
    if (eligible_at(v, end)) continue;
    auto row = media_->RowAtGeneration("media", key, gen);
    ASSERT_TRUE(row.ok()) << key << ": " << row.status();
    auto bytes = blobs_->Read(row->blob, 0, 1 << 20);
    ASSERT_TRUE(bytes.ok()) << key << ": " << bytes.status();
    EXPECT_EQ(*bytes, v.data) << key;
    ++checked;
  }
  EXPECT_GT(checked, kKeys / 3);
  // Deletions: every audit entry names a generation eligible when it was recorded.
  store::ScanOptions scan;
  scan.start = "a";
  scan.end = "b";
  auto audit_table = rows_->OpenTable({"lifecycle_audit", store::TableProfile::kLive});
  ASSERT_TRUE(audit_table.ok());
  size_t entries = 0;
  do {
    auto page = (*audit_table)->Scan(AuditPartition("gc", finished->day), scan);
    ASSERT_TRUE(page.ok());
    for (const store::Row& r : page->rows) {
      auto e = DecodeAuditEntry(r.value);
      ASSERT_TRUE(e.ok());
      const std::string rest = r.clustering.substr(1);
      const size_t a = rest.find('\0');
      const size_t b = rest.find('\0', a + 1);
      const std::string key = rest.substr(a + 1, b - a - 1);
      std::string_view gen_bytes = std::string_view(rest).substr(b + 1);
      uint64_t gen = 0;
      ASSERT_TRUE(coding::GetFixed64BE(&gen_bytes, &gen));
      ASSERT_TRUE(versions[key].count(gen)) << key;
      const Version& v = versions[key][gen];
      if (e->reason != "superseded") {
        EXPECT_TRUE(eligible_at(v, e->time)) << key << " deleted while not eligible";
      } else {
        EXPECT_NE(gen, current[key]) << key << ": current generation collected as superseded";
      }
      ++entries;
    }
    scan.cursor = page->next_cursor;
  } while (!scan.cursor.empty());
  EXPECT_EQ(entries, finished->processed);
}

TEST_F(GcFixture, OrphanBlobsOlderThanTheGraceAreCollectedAndNothingElse) { RunOrphanBlobs(); }
TEST_F(GcInlineFixture, OrphanBlobsOlderThanTheGraceAreCollectedAndNothingElse) {
  RunOrphanBlobs();
}
TEST_F(GcNoSnapshotFixture, OrphanBlobsOlderThanTheGraceAreCollectedAndNothingElse) {
  RunOrphanBlobs();
}

void GcFixture::RunOrphanBlobs() {
  // File times come from the real clock: start the manual one there.
  clock_.Set(SystemClock::Default()->NowMillis());
  ASSERT_TRUE(media_->PutBucket("media", media::BucketPolicy{}).ok());
  const Millis grace = HardDeleteTask::kDefaultOrphanAgeMs;
  const uint64_t gen = static_cast<uint64_t>(clock_.NowMillis()) * 1000;
  const std::string big(2 * 4096 + 7, 'b');  // several parts: a file in every fixture
  Put("live", "live");
  Put("re", "v1");
  Put("re", "v2");  // v1's bytes: a superseded row names them
  // A crash between bytes and metadata: an upload row names the bytes (the sweep's work).
  const std::string pending = media::BlobName("hot", "media", "pending", gen + 1);
  ASSERT_TRUE(media_->objects_table()
                  ->Put("media", media::UploadClustering("pending", gen + 1),
                        media::EncodeUploadRow({pending, "hot", clock_.NowMillis()}))
                  .ok());
  ASSERT_TRUE(blobs_->Put(pending, "p").ok());
  // A power loss took these blobs' upload rows: nothing names them.
  const std::string lost_small = media::BlobName("hot", "media", "lost-small", gen + 2);
  const std::string lost_big = media::BlobName("cold", "media", "dir/lost-big", gen + 3);
  ASSERT_TRUE(blobs_->Put(lost_small, "xx").ok());
  ASSERT_TRUE(blobs_->Put(lost_big, big).ok());
  // Not a name the media service makes: never touched.
  ASSERT_TRUE(blobs_->Put("elsewhere/not-a-media-name", "f").ok());
  clock_.Advance(grace + kHour);
  // Written just now (by its name) though its file is as old as the others.
  const std::string young = media::BlobName("hot", "media", "lost-young",
                                            static_cast<uint64_t>(clock_.NowMillis()) * 1000);
  ASSERT_TRUE(blobs_->Put(young, "y").ok());

  auto forecast = collector_->RunAndWait({.dry_run = true}, 20'000);
  ASSERT_TRUE(forecast.ok()) << forecast.status();
  ASSERT_EQ(forecast->state, RunState::kDone) << forecast->error;
  EXPECT_EQ(forecast->orphan_scan, OrphanScanState::kDone);
  EXPECT_EQ(forecast->blobs_listed, 8u);  // live, re v1 + v2, pending, 2 lost, foreign, young
  EXPECT_EQ(forecast->orphan_blobs, 2u);
  EXPECT_EQ(forecast->orphan_blob_bytes, 2u + big.size());
  EXPECT_EQ(forecast->orphan_blobs_collected, 0u);
  EXPECT_EQ(forecast->orphan_blobs_young, 1u);
  EXPECT_TRUE(blobs_->Stat(lost_small).ok()) << "a dry run deleted";
  EXPECT_TRUE(blobs_->Stat(lost_big).ok()) << "a dry run deleted";

  auto run = collector_->RunAndWait({}, 20'000);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->state, RunState::kDone) << run->error;
  EXPECT_EQ(run->orphan_scan, OrphanScanState::kDone);
  EXPECT_EQ(run->orphan_blobs, 2u);
  EXPECT_EQ(run->orphan_blobs_collected, 2u);
  EXPECT_EQ(run->orphan_blob_bytes_collected, 2u + big.size());
  EXPECT_EQ(run->orphan_blobs_young, 1u);
  EXPECT_EQ(run->errors, 0u);
  EXPECT_EQ(run->processed, 2u);  // the sweep: v1 (superseded) and the pending upload
  EXPECT_TRUE(absl::IsNotFound(blobs_->Stat(lost_small).status()));
  EXPECT_TRUE(absl::IsNotFound(blobs_->Stat(lost_big).status()));
  EXPECT_TRUE(blobs_->Stat(young).ok());
  EXPECT_TRUE(blobs_->Stat("elsewhere/not-a-media-name").ok());
  auto live = media_->OpenForRead("media", "live");
  ASSERT_TRUE(live.ok()) << live.status();
  auto re = media_->OpenForRead("media", "re");
  ASSERT_TRUE(re.ok()) << re.status();
  std::string bytes;
  ASSERT_TRUE(re->reader->ReadAt(0, 10, &bytes).ok());
  EXPECT_EQ(bytes, "v2");

  // The day's totals count the bytes freed, under their own reason; the metrics too.
  auto stats = collector_->Stats(1);
  ASSERT_TRUE(stats.ok()) << stats.status();
  bool seen = false;
  for (const DayTotals::Row& r : stats->back().by_bucket_reason) {
    if (r.reason != "orphan_blob") continue;
    seen = true;
    EXPECT_EQ(r.bucket, "media");
    EXPECT_EQ(r.objects, 2u);
    EXPECT_EQ(r.bytes, 2u + big.size());
  }
  EXPECT_TRUE(seen);
  const std::string text = metrics_.RenderPrometheus();
  EXPECT_NE(text.find("strata_lifecycle_orphan_blobs_total{task=\"gc\"} 2"), std::string::npos)
      << text;

  // Nothing more now; once the young one is past the grace, it goes too.
  auto again = collector_->RunAndWait({}, 20'000);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->orphan_blobs_collected, 0u);
  EXPECT_EQ(again->orphan_blobs_young, 1u);
  clock_.Advance(grace);
  auto later = collector_->RunAndWait({}, 20'000);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->orphan_blobs_collected, 1u);
  EXPECT_TRUE(absl::IsNotFound(blobs_->Stat(young).status()));
  EXPECT_TRUE(media_->OpenForRead("media", "live").ok());
}

TEST_F(GcFixture, TheOrphanScanCanBeTurnedOff) {
  Close();
  scan_orphan_blobs_ = false;
  Open();
  clock_.Set(SystemClock::Default()->NowMillis());
  const std::string lost =
      media::BlobName("hot", "media", "lost", static_cast<uint64_t>(clock_.NowMillis()) * 1000);
  ASSERT_TRUE(blobs_->Put(lost, "xx").ok());
  clock_.Advance(HardDeleteTask::kDefaultOrphanAgeMs + kHour);
  auto run = collector_->RunAndWait({}, 20'000);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->orphan_scan, OrphanScanState::kOff);
  EXPECT_TRUE(blobs_->Stat(lost).ok());
}

TEST_F(GcFixture, AScanCutShortByARestartIsMarkedInterruptedAndTheRunFinishes) {
  // What a kill -9 during the scan leaves: a sweeping run whose scan is "running".
  Close();
  Open(/*start=*/false);
  RunRecord r;
  r.id = 1;
  r.state = RunState::kSweeping;
  r.started_at = clock_.NowMillis();
  r.day = DayOf(r.started_at);
  r.orphan_scan = OrphanScanState::kRunning;
  r.blobs_listed = 1000;
  auto runs = rows_->OpenTable({"lifecycle_runs", store::TableProfile::kLive});
  ASSERT_TRUE(runs.ok());
  std::string id;
  coding::PutFixed64BE(&id, r.id);
  ASSERT_TRUE((*runs)->Put("gc", id, EncodeRunRecord(r)).ok());
  Close();
  Open();
  auto done = collector_->WaitRun(1, 10'000);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, RunState::kDone);
  EXPECT_EQ(done->orphan_scan, OrphanScanState::kInterrupted);
  EXPECT_EQ(done->blobs_listed, 1000u);
}

TEST_F(GcFixture, OrphanScanRacingWritersAndArchivalNeverDeletesNamedBytes) { RunOrphanScanRace(); }
TEST_F(GcInlineFixture, OrphanScanRacingWritersAndArchivalNeverDeletesNamedBytes) {
  RunOrphanScanRace();
}

void GcFixture::RunOrphanScanRace() {
  clock_.Set(SystemClock::Default()->NowMillis());
  ASSERT_TRUE(media_->PutBucket("media", media::BucketPolicy{}).ok());
  constexpr int kWriters = 2;
  constexpr int kKeysPerWriter = 6;
  std::atomic<bool> stop{false};
  std::atomic<bool> stop_writers{false};
  std::mutex mu;
  std::map<std::string, std::string> expect;  // key -> last committed value (one writer per key)
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; !stop_writers.load(); ++i) {
        const std::string key =
            "w" + std::to_string(t) + "-k" + std::to_string(rng() % kKeysPerWriter);
        // Inline-sized, one file, several parts.
        const size_t sizes[] = {5, 600, 9000};
        std::string value(sizes[rng() % 3], static_cast<char>('a' + i % 26));
        value += std::to_string(i);
        auto up = media_->BeginPut("media", key, {});
        if (!up.ok()) continue;
        // An upload in flight across a scan: half its bytes, a pause, the rest.
        if (!(*up)->Append(std::string_view(value).substr(0, value.size() / 2)).ok()) continue;
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 500));
        if (!(*up)->Append(std::string_view(value).substr(value.size() / 2)).ok()) continue;
        auto info = (*up)->Commit();
        ASSERT_TRUE(info.ok()) << info.status();
        std::lock_guard<std::mutex> lock(mu);
        expect[key] = value;
      }
    });
  }
  // Archival's steps (ArchiveTask::Process) with a pause between the copy and the repoint:
  // the copy is bytes no row names until then, the very window the key lock must cover.
  std::atomic<int> copies_taken{0};
  std::atomic<int> dangling{0};  // rows pointed at a copy that is gone
  threads.emplace_back([&] {
    std::mt19937 rng(99);
    while (!stop.load()) {
      const std::string key =
          "w" + std::to_string(rng() % kWriters) + "-k" + std::to_string(rng() % kKeysPerWriter);
      auto head = media_->Head("media", key);
      if (!head.ok() || head->row.storage_class == "cold") continue;
      const media::ObjectRow& row = head->row;
      const std::string copy = media::BlobName("cold", "media", key, row.generation);
      auto bytes = blobs_->Read(row.blob, 0, row.size);
      if (!bytes.ok()) continue;  // rewritten and collected meanwhile
      absl::Status put = blobs_->Put(copy, *bytes);
      if (!put.ok() && !absl::IsAlreadyExists(put)) continue;
      std::this_thread::sleep_for(std::chrono::milliseconds(2 + rng() % 10));
      absl::Status moved = media_->MoveObjectBytes("media", key, row.generation, "cold", copy);
      if (absl::IsAborted(moved)) {  // the scan took the copy first: copy again
        ++copies_taken;
        continue;
      }
      if (!moved.ok()) {
        ASSERT_TRUE(blobs_->Delete(copy).ok());  // re-written meanwhile
        continue;
      }
      // The row names the copy now (or a rewrite superseded it, and a row still names it):
      // the copy must exist.
      auto now_row = media_->RowAtGeneration("media", key, row.generation);
      if (now_row.ok() && now_row->blob == copy && absl::IsNotFound(blobs_->Stat(copy).status())) {
        ++dangling;
      }
      ASSERT_TRUE(blobs_->Delete(row.blob).ok());
    }
  });
  // Orphan scans with no grace: everything unnamed looks old enough.
  std::atomic<uint64_t> collected{0};
  std::atomic<int> scans{0};
  threads.emplace_back([&] {
    OrphanScanOptions o;
    o.min_age_ms = 0;
    o.page_size = 7;
    OrphanScanHooks hooks;
    hooks.acquire = [] { return true; };
    while (!stop.load()) {
      o.as_of = clock_.NowMillis() + 24 * kHour;
      auto counts = ScanOrphanBlobs(media_.get(), nullptr, o, hooks);
      ASSERT_TRUE(counts.ok()) << counts.status();
      EXPECT_EQ(counts->errors, 0u);
      collected += counts->collected;
      ++scans;
    }
  });
  // Writers first, so that the last phase's archival moves are not hidden by rewrites.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  stop_writers = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  stop = true;
  for (std::thread& t : threads) t.join();
  EXPECT_GT(scans.load(), 2);
  EXPECT_EQ(dangling.load(), 0) << "rows were pointed at copies the scan had deleted";
  EXPECT_GT(copies_taken.load(), 0) << "the scan never met a copy before its repoint";
  ASSERT_FALSE(expect.empty());
  for (const auto& [key, value] : expect) {
    auto opened = media_->OpenForRead("media", key);
    ASSERT_TRUE(opened.ok()) << key << ": " << opened.status();
    std::string bytes;
    ASSERT_TRUE(opened->reader->ReadAt(0, opened->reader->size(), &bytes).ok()) << key;
    EXPECT_EQ(bytes, value) << key;
  }
  // What the races left unnamed (replaced generations' bytes have superseded rows; copies of
  // refused archivals are deleted by archival itself) is gone after one more quiet scan,
  // and that scan deletes nothing named either.
  OrphanScanOptions o;
  o.min_age_ms = 0;
  o.as_of = clock_.NowMillis() + 24 * kHour;
  OrphanScanHooks hooks;
  hooks.acquire = [] { return true; };
  ASSERT_TRUE(ScanOrphanBlobs(media_.get(), nullptr, o, hooks).ok());
  auto final_counts = ScanOrphanBlobs(media_.get(), nullptr, o, hooks);
  ASSERT_TRUE(final_counts.ok());
  EXPECT_EQ(final_counts->found, 0u);
  for (const auto& [key, value] : expect) {
    auto opened = media_->OpenForRead("media", key);
    ASSERT_TRUE(opened.ok()) << key << ": " << opened.status();
  }
}

}  // namespace
}  // namespace strata::gc
