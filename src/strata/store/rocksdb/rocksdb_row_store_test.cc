#include "strata/store/rocksdb/rocksdb_row_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "strata/base/crash_point.h"
#include "strata/base/metrics.h"
#include "strata/store/row_store_conformance.h"

namespace strata::store {
namespace {

using ::testing::HasSubstr;

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "strata-rocks-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

RocksRowStoreOptions TestOptions(const std::string& path, Clock* clock) {
  RocksRowStoreOptions options;
  options.path = path;
  options.clock = clock;
  options.block_cache_bytes = size_t{16} << 20;
  return options;
}

// A RocksRowStore in its own temporary directory, removed when the store is destroyed: what
// the conformance suite's factory returns.
class TempDirRocksStore final : public RowStore {
 public:
  static std::unique_ptr<RowStore> Create(ManualClock* clock, RocksRowStoreOptions options) {
    auto store = std::unique_ptr<TempDirRocksStore>(new TempDirRocksStore());
    if (store->dir_.path().empty()) {
      ADD_FAILURE() << "cannot create a temporary directory: " << std::strerror(errno);
      return nullptr;
    }
    options.path = store->dir_.path();
    options.clock = clock;
    absl::StatusOr<std::unique_ptr<RocksRowStore>> opened = RocksRowStore::Open(options);
    if (!opened.ok()) {
      ADD_FAILURE() << opened.status();
      return nullptr;
    }
    store->store_ = std::move(*opened);
    return store;
  }
  ~TempDirRocksStore() override { store_.reset(); }  // close before dir_ removes the files

  absl::StatusOr<Table*> OpenTable(const TableOptions& options) override {
    return store_->OpenTable(options);
  }
  absl::Status Write(std::span<const PartitionWrite> writes) override {
    return store_->Write(writes);
  }
  absl::StatusOr<std::unique_ptr<Snapshot>> NewSnapshot() override {
    return store_->NewSnapshot();
  }
  absl::Status Sync() override { return store_->Sync(); }

 private:
  TempDirRocksStore() = default;
  TempDir dir_;  // declared first: removed after store_ is closed
  std::unique_ptr<RocksRowStore> store_;
};

// The defaults, periodic WAL sync.
INSTANTIATE_ROW_STORE_CONFORMANCE(Rocks, [](ManualClock* clock) {
  return TempDirRocksStore::Create(clock, TestOptions("", clock));
});

// Tiny memtables (so data reaches SST files and merges and scans cross flushes) and an fsync
// per write.
INSTANTIATE_ROW_STORE_CONFORMANCE(RocksSmallMemtablesSyncPerBatch, [](ManualClock* clock) {
  RocksRowStoreOptions options = TestOptions("", clock);
  options.live_write_buffer_bytes = 64 << 10;
  options.write_buffer_bytes = 64 << 10;
  options.sync_policy = SyncPolicy::kPerBatch;
  return TempDirRocksStore::Create(clock, options);
});

class RocksRowStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()); }

  std::unique_ptr<RocksRowStore> OpenStore(RocksRowStoreOptions options) {
    absl::StatusOr<std::unique_ptr<RocksRowStore>> store = RocksRowStore::Open(options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }
  std::unique_ptr<RocksRowStore> OpenStore() { return OpenStore(TestOptions(dir_.path(), &clock_)); }
  // A store whose sync thread flushes every table, and settles those worth it, once writes
  // have been idle for 100 ms.
  std::unique_ptr<RocksRowStore> OpenQuicklyIdleStore() {
    RocksRowStoreOptions options = TestOptions(dir_.path(), &clock_);
    options.idle_flush_ms = 100;
    options.idle_flush_min_wal_bytes = 1;
    return OpenStore(options);
  }

  static Table* MustOpenTable(RowStore* store, const std::string& name,
                              TableProfile profile = TableProfile::kLive) {
    absl::StatusOr<Table*> table = store->OpenTable(TableOptions{name, profile});
    EXPECT_TRUE(table.ok()) << table.status();
    return table.ok() ? *table : nullptr;
  }

  static std::string GetOr(Table* table, std::string_view partition, std::string_view key) {
    absl::StatusOr<std::string> value = table->Get(partition, key);
    if (value.ok()) return *value;
    return absl::IsNotFound(value.status()) ? "<not found>" : value.status().ToString();
  }

  // Defined below, beside the crash children it runs.
  void RunCrashChild(const char* child_test, size_t kill_after, std::vector<int32_t>* acked);

  TempDir dir_;
  ManualClock clock_;
};

TEST_F(RocksRowStoreTest, ReopenKeepsDataAndTables) {
  {
    std::unique_ptr<RocksRowStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    Table* live = MustOpenTable(store.get(), "plays");
    Table* blobs = MustOpenTable(store.get(), "blobs", TableProfile::kCompressed);
    ASSERT_NE(live, nullptr);
    ASSERT_NE(blobs, nullptr);
    ASSERT_TRUE(live->Put("m1", "a", "A").ok());
    ASSERT_TRUE(live->Put("m1", "b", "B").ok());
    ASSERT_TRUE(live->Put("m2", "a", "gone").ok());
    ASSERT_TRUE(live->DeleteRange("m2", "", "").ok());
    WriteBatch batch;
    batch.PutIfNewer("chunk0", 4, "v4");
    batch.PutIfNewer("chunk0", 2, "v2");
    ASSERT_TRUE(blobs->Apply("b1", batch).ok());
  }  // closed here: destructor flushes the WAL and stops the sync thread
  {
    std::unique_ptr<RocksRowStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    std::vector<RocksTableInfo> tables = store->ListTables();
    ASSERT_EQ(tables.size(), 2u);
    EXPECT_EQ(tables[0].name, "blobs");
    EXPECT_EQ(tables[0].profile, TableProfile::kCompressed);
    EXPECT_EQ(tables[1].name, "plays");
    EXPECT_EQ(tables[1].profile, TableProfile::kLive);
    Table* live = MustOpenTable(store.get(), "plays");
    Table* blobs = MustOpenTable(store.get(), "blobs", TableProfile::kCompressed);
    ASSERT_NE(live, nullptr);
    ASSERT_NE(blobs, nullptr);
    EXPECT_EQ(GetOr(live, "m1", "a"), "A");
    EXPECT_EQ(GetOr(live, "m1", "b"), "B");
    EXPECT_EQ(GetOr(live, "m2", "a"), "<not found>");
    EXPECT_EQ(GetOr(blobs, "b1", "chunk0"), "v4");
    // PutIfNewer keeps working against the reopened state.
    WriteBatch batch;
    batch.PutIfNewer("chunk0", 3, "v3");
    ASSERT_TRUE(blobs->Apply("b1", batch).ok());
    EXPECT_EQ(GetOr(blobs, "b1", "chunk0"), "v4");
    ASSERT_TRUE(live->Put("m1", "c", "C").ok());
  }
  std::unique_ptr<RocksRowStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  Table* live = MustOpenTable(store.get(), "plays");
  ASSERT_NE(live, nullptr);
  EXPECT_EQ(GetOr(live, "m1", "c"), "C");
}

// Every write (conditional or not, accepted or refused by its condition) is timed waiting
// for the write slot and holding it.
TEST_F(RocksRowStoreTest, WritesAreTimedAtTheWriteSlot) {
  std::unique_ptr<RocksRowStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  MetricsRegistry metrics;
  store->ExportMetrics(&metrics);
  Table* live = MustOpenTable(store.get(), "plays");
  ASSERT_NE(live, nullptr);
  ASSERT_TRUE(live->Put("m1", "a", "A").ok());
  WriteBatch stale;
  stale.Expect("a", std::string("not A"));
  stale.Put("a", "B");
  EXPECT_TRUE(absl::IsFailedPrecondition(live->Apply("m1", stale)));
  const std::string page = metrics.RenderPrometheus();
  EXPECT_THAT(page, ::testing::HasSubstr("\nstrata_rocksdb_write_wait_seconds_count 2\n"));
  EXPECT_THAT(page, ::testing::HasSubstr("\nstrata_rocksdb_write_hold_seconds_count 2\n"));
  EXPECT_EQ(GetOr(live, "m1", "a"), "A");
}

TEST_F(RocksRowStoreTest, ProfilesSurviveReopen) {
  std::map<std::string, std::string> tuning;
  {
    std::unique_ptr<RocksRowStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_NE(MustOpenTable(store.get(), "live_rows", TableProfile::kLive), nullptr);
    ASSERT_NE(MustOpenTable(store.get(), "blob_rows", TableProfile::kCompressed), nullptr);
    ASSERT_NE(MustOpenTable(store.get(), "index_rows", TableProfile::kIndex), nullptr);
    ASSERT_NE(MustOpenTable(store.get(), "doc_rows", TableProfile::kDocument), nullptr);
    for (const char* name : {"live_rows", "blob_rows", "index_rows", "doc_rows"}) {
      absl::StatusOr<std::string> description = store->DescribeTuningForTesting(name);
      ASSERT_TRUE(description.ok()) << description.status();
      tuning[name] = *description;
      EXPECT_THAT(*description, HasSubstr("merge_operator=strata.MaxVersion"));
      EXPECT_THAT(*description, HasSubstr("compaction_filter=strata.Expiry"));
    }
    EXPECT_THAT(tuning["live_rows"], HasSubstr("profile=live compaction=level"));
    EXPECT_THAT(tuning["live_rows"], HasSubstr("l0_trigger=2"));
    EXPECT_THAT(tuning["live_rows"], HasSubstr("write_buffer=33554432"));
    EXPECT_THAT(tuning["blob_rows"], HasSubstr("profile=compressed compaction=universal"));
    EXPECT_THAT(tuning["blob_rows"], HasSubstr("compression=none"));
    EXPECT_THAT(tuning["index_rows"], HasSubstr("profile=index compaction=level"));
    EXPECT_THAT(tuning["doc_rows"], HasSubstr("profile=document compaction=universal"));
    EXPECT_THAT(tuning["doc_rows"], HasSubstr("blob_min=512"));
    EXPECT_THAT(tuning["doc_rows"], HasSubstr("metadata=pinned"));  // the default
    EXPECT_THAT(tuning["index_rows"], HasSubstr("metadata=cache"));
    EXPECT_THAT(tuning["live_rows"], HasSubstr("blob_min=off"));
  }
  std::unique_ptr<RocksRowStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (const auto& [name, description] : tuning) {
    absl::StatusOr<std::string> reopened = store->DescribeTuningForTesting(name);
    ASSERT_TRUE(reopened.ok()) << reopened.status();
    EXPECT_EQ(*reopened, description) << name;
  }
  // Asking for another profile returns the existing table with its stored tuning.
  ASSERT_NE(MustOpenTable(store.get(), "blob_rows", TableProfile::kLive), nullptr);
  absl::StatusOr<std::string> kept = store->DescribeTuningForTesting("blob_rows");
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_THAT(*kept, HasSubstr("compaction=universal"));
  for (const RocksTableInfo& info : store->ListTables()) {
    if (info.name == "blob_rows") {
      EXPECT_EQ(info.profile, TableProfile::kCompressed);
    }
  }
  EXPECT_TRUE(absl::IsNotFound(store->DescribeTuningForTesting("no_such_table").status()));
}

// The child half of ChildCrashLosesNoAcknowledgedWrite: runs only when that test starts this
// binary with the environment set; writes, reports each acknowledged write on a pipe, and dies
// without closing anything.
constexpr char kChildDirEnv[] = "STRATA_ROCKS_CRASH_CHILD_DIR";
constexpr char kChildFdEnv[] = "STRATA_ROCKS_CRASH_CHILD_FD";
constexpr int kChildRows = 3000;

TEST(RocksRowStoreCrashChild, WriteThenDie) {
  const char* dir = getenv(kChildDirEnv);
  const char* fd_text = getenv(kChildFdEnv);
  if (dir == nullptr || fd_text == nullptr) GTEST_SKIP() << "only run as a crash-test child";
  const int fd = atoi(fd_text);
  RocksRowStoreOptions options;
  options.path = dir;
  options.sync_interval_ms = 3'600'000;  // no fsync happens before the crash
  options.block_cache_bytes = size_t{8} << 20;
  absl::StatusOr<std::unique_ptr<RocksRowStore>> store = RocksRowStore::Open(options);
  if (!store.ok()) _exit(2);
  absl::StatusOr<Table*> table = (*store)->OpenTable({"acked", TableProfile::kLive});
  if (!table.ok()) _exit(3);
  for (int i = 0; i < kChildRows; ++i) {
    absl::Status written;
    if (i % 2 == 0) {
      written = (*table)->Put("p" + std::to_string(i % 7), "row" + std::to_string(i),
                              "v" + std::to_string(i));
    } else {
      std::vector<PartitionWrite> writes;
      writes.push_back(PartitionWrite{*table, "p" + std::to_string(i % 7), WriteBatch()});
      writes.back().batch.Put("row" + std::to_string(i), "v" + std::to_string(i));
      written = (*store)->Write(writes);
    }
    if (!written.ok()) _exit(4);
    int32_t acked = i;
    if (write(fd, &acked, sizeof(acked)) != sizeof(acked)) _exit(5);
  }
  _exit(kCrashPointExitCode);  // no destructors: the store is never closed
}

// Runs the crash child RocksRowStoreCrashChild.`child_test` over this test's directory,
// collects the values it acknowledges in order, and SIGKILLs it (like kill -9) once
// `kill_after` were acknowledged; it may also finish first and _exit on its own. Fails the
// test unless it died one of those two ways.
void RocksRowStoreTest::RunCrashChild(const char* child_test, size_t kill_after,
                                      std::vector<int32_t>* acked) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    setenv(kChildDirEnv, dir_.path().c_str(), 1);
    setenv(kChildFdEnv, std::to_string(fds[1]).c_str(), 1);
    std::string filter = std::string("--gtest_filter=RocksRowStoreCrashChild.") + child_test;
    char* argv[] = {const_cast<char*>("strata_rocksdb_row_store_test"), filter.data(), nullptr};
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  close(fds[1]);
  bool killed = false;
  int32_t value;
  while (read(fds[0], &value, sizeof(value)) == sizeof(value)) {
    acked->push_back(value);
    if (!killed && acked->size() == kill_after) {
      kill(pid, SIGKILL);
      killed = true;
    }
  }
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  const bool died_by_kill = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  const bool died_at_end = WIFEXITED(status) && WEXITSTATUS(status) == kCrashPointExitCode;
  ASSERT_TRUE(died_by_kill || died_at_end) << "child status " << status;
  RecordProperty("child_killed_mid_write", died_by_kill ? "yes" : "no");
}

TEST_F(RocksRowStoreTest, ChildCrashLosesNoAcknowledgedWrite) {
  // Every acknowledged row must survive the kill.
  std::vector<int32_t> acked;
  ASSERT_NO_FATAL_FAILURE(RunCrashChild("WriteThenDie", kChildRows / 2, &acked));
  RecordProperty("acknowledged_writes", static_cast<int>(acked.size()));
  ASSERT_GE(acked.size(), static_cast<size_t>(kChildRows / 2));

  std::unique_ptr<RocksRowStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  Table* table = MustOpenTable(store.get(), "acked");
  ASSERT_NE(table, nullptr);
  size_t lost = 0;
  for (int32_t i : acked) {
    if (GetOr(table, "p" + std::to_string(i % 7), "row" + std::to_string(i)) !=
        "v" + std::to_string(i)) {
      ++lost;
    }
  }
  EXPECT_EQ(lost, 0u) << "of " << acked.size() << " acknowledged writes";
}

TEST_F(RocksRowStoreTest, CompactionFilterDropsExpiredRows) {
  std::unique_ptr<RocksRowStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  Table* plain = MustOpenTable(store.get(), "plain");
  Table* versioned = MustOpenTable(store.get(), "versioned", TableProfile::kIndex);
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(versioned, nullptr);
  const Millis now = clock_.NowMillis();
  WriteBatch rows;
  WriteBatch versions;
  for (int i = 0; i < 100; ++i) {
    rows.Put("short" + std::to_string(i), "x", now + 1000);
    rows.Put("long" + std::to_string(i), "y");
    versions.PutIfNewer("v" + std::to_string(i), 1, "old", now + 1000);
    versions.PutIfNewer("v" + std::to_string(i), 2, "new", now + 1000);
  }
  ASSERT_TRUE(plain->Apply("p", rows).ok());
  ASSERT_TRUE(versioned->Apply("p", versions).ok());
  ASSERT_TRUE(store->CompactAll().ok());
  EXPECT_EQ(store->CountRawEntriesForTesting("plain").value_or(0), 200u);
  EXPECT_EQ(store->CountRawEntriesForTesting("versioned").value_or(0), 100u);

  clock_.Advance(1000);
  // Invisible at once, but still stored until compaction.
  EXPECT_EQ(GetOr(plain, "p", "short5"), "<not found>");
  EXPECT_EQ(GetOr(versioned, "p", "v5"), "<not found>");
  EXPECT_EQ(store->CountRawEntriesForTesting("plain").value_or(0), 200u);

  ASSERT_TRUE(store->CompactAll().ok());
  EXPECT_EQ(store->CountRawEntriesForTesting("plain").value_or(0), 100u);
  EXPECT_EQ(store->CountRawEntriesForTesting("versioned").value_or(1), 0u);
  absl::StatusOr<TableStats> stats = plain->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->approximate_rows, 100u);
  EXPECT_GT(stats->disk_bytes, 0u);
  EXPECT_EQ(GetOr(plain, "p", "long5"), "y");
  EXPECT_TRUE(absl::IsNotFound(store->CountRawEntriesForTesting("nope").status()));
}

// Document tables keep rows of document_blob_min_bytes and more in blob files: every read
// path finds them (memtable, SST, after compaction), overwrites and deletes win, expired blob
// rows are hidden from reads, small expiring rows are still dropped by compaction, and the
// table's disk bytes count the blob files.
TEST_F(RocksRowStoreTest, DocumentRowsInBlobFiles) {
  std::unique_ptr<RocksRowStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  Table* docs = MustOpenTable(store.get(), "docs", TableProfile::kDocument);
  ASSERT_NE(docs, nullptr);
  const Millis now = clock_.NowMillis();
  auto doc = [](int i, char fill) { return std::to_string(i) + std::string(1500, fill); };
  WriteBatch batch;
  for (int i = 0; i < 200; ++i) batch.Put("d" + std::to_string(1000 + i), doc(i, 'a'));
  batch.Put("expiring_big", doc(7, 'e'), now + 1000);
  batch.Put("expiring_small", "s", now + 1000);
  ASSERT_TRUE(docs->Apply("p", batch).ok());
  EXPECT_EQ(GetOr(docs, "p", "d1005"), doc(5, 'a'));  // from the memtable
  ASSERT_TRUE(store->CompactAll().ok());
  EXPECT_EQ(GetOr(docs, "p", "d1005"), doc(5, 'a'));  // from a blob file
  WriteBatch change;
  change.Put("d1006", doc(6, 'b'));
  change.Delete("d1007");
  ASSERT_TRUE(docs->Apply("p", change).ok());
  ASSERT_TRUE(store->CompactAll().ok());
  std::vector<RowKey> keys = {{"p", "d1006"}, {"p", "d1007"}, {"p", "d1199"}};
  std::vector<absl::StatusOr<std::string>> got = docs->MultiGet(keys);
  ASSERT_EQ(got.size(), 3u);
  ASSERT_TRUE(got[0].ok()) << got[0].status();
  EXPECT_EQ(*got[0], doc(6, 'b'));
  EXPECT_TRUE(absl::IsNotFound(got[1].status()));
  ASSERT_TRUE(got[2].ok()) << got[2].status();
  EXPECT_EQ(*got[2], doc(199, 'a'));
  ScanOptions scan;
  scan.start = "d";
  scan.end = "e";
  absl::StatusOr<ScanPage> page = docs->Scan("p", scan);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->rows.size(), 199u);
  EXPECT_EQ(page->rows[5].value, doc(5, 'a'));
  absl::StatusOr<TableStats> stats = docs->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GE(stats->disk_bytes, 199u * 1500);  // the blob files count

  clock_.Advance(1000);
  EXPECT_EQ(GetOr(docs, "p", "expiring_big"), "<not found>");
  EXPECT_EQ(GetOr(docs, "p", "expiring_small"), "<not found>");
  const uint64_t before = store->CountRawEntriesForTesting("docs").value_or(0);
  ASSERT_TRUE(store->CompactAll().ok());
  // The small expired row is dropped; the big one stays (hidden) until overwritten.
  EXPECT_EQ(store->CountRawEntriesForTesting("docs").value_or(0), before - 1);
  EXPECT_EQ(GetOr(docs, "p", "expiring_big"), "<not found>");
}

// Blob garbage collection copies live documents out of the oldest blob files; it runs only
// while the table's blob files hold enough garbage (document_blob_gc_min_garbage, 0.2), and
// stops again below half of it.
TEST_F(RocksRowStoreTest, DocumentBlobGcRunsOnlyWhileThereIsGarbage) {
  std::unique_ptr<RocksRowStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  Table* docs = MustOpenTable(store.get(), "docs", TableProfile::kDocument);
  ASSERT_NE(docs, nullptr);
  auto doc = [](int i, char fill) { return std::to_string(i) + std::string(1500, fill); };
  auto key = [](int i) { return "d" + std::to_string(1000 + i); };
  auto gc_on = [&] {
    absl::StatusOr<std::string> tuning = store->DescribeTuningForTesting("docs");
    EXPECT_TRUE(tuning.ok()) << tuning.status();
    const bool on = tuning.ok() && tuning->find("blob_gc=on") != std::string::npos;
    EXPECT_EQ(store->Health().blob_gc_tables, on ? 1u : 0u) << "the gauge follows RocksDB";
    return on;
  };
  // A load: 8 blob files of 50 documents, no garbage.
  for (int f = 0; f < 8; ++f) {
    WriteBatch batch;
    for (int i = f * 50; i < (f + 1) * 50; ++i) batch.Put(key(i), doc(i, 'a'));
    ASSERT_TRUE(docs->Apply("p", batch).ok());
    ASSERT_TRUE(store->FlushForTesting().ok());
  }
  ASSERT_TRUE(store->CompactAll().ok());
  store->SwitchBlobGcForTesting();
  EXPECT_FALSE(gc_on()) << "a load leaves no garbage: nothing to collect";
  EXPECT_EQ(store->Health().blob_garbage_bytes, 0u);

  // Every other document overwritten: each of the 8 files is half garbage (a third of all).
  WriteBatch overwrite;
  for (int i = 0; i < 400; i += 2) overwrite.Put(key(i), doc(i, 'b'));
  ASSERT_TRUE(docs->Apply("p", overwrite).ok());
  ASSERT_TRUE(store->CompactAll().ok());
  const RocksHealth before = store->Health();
  ASSERT_GT(before.blob_garbage_bytes, 0u);
  EXPECT_GE(static_cast<double>(before.blob_garbage_bytes), 0.2 * before.live_blob_bytes);
  EXPECT_FALSE(gc_on()) << "switched by the check only";
  store->SwitchBlobGcForTesting();
  EXPECT_TRUE(gc_on());

  // Compactions now move the live documents out of the oldest files, which then go; once
  // the garbage is under a tenth, the check switches collection off again (bounded rounds).
  bool switched_off = false;
  for (int round = 0; round < 20 && !switched_off; ++round) {
    ASSERT_TRUE(store->CompactAll().ok());
    store->SwitchBlobGcForTesting();
    switched_off = !gc_on();
  }
  EXPECT_TRUE(switched_off);
  const RocksHealth after = store->Health();
  EXPECT_LT(after.blob_garbage_bytes, before.blob_garbage_bytes);
  EXPECT_LT(static_cast<double>(after.blob_garbage_bytes), 0.1 * after.live_blob_bytes);
  EXPECT_LT(after.live_blob_bytes, before.live_blob_bytes) << "garbage files deleted";
  for (int i = 0; i < 400; ++i) {
    ASSERT_EQ(GetOr(docs, "p", key(i)), doc(i, i % 2 == 0 ? 'b' : 'a')) << key(i);
  }
}

TEST_F(RocksRowStoreTest, DocumentBlobGcAlwaysOnAtZeroAndRangeChecked) {
  RocksRowStoreOptions options = TestOptions(dir_.path(), &clock_);
  options.document_blob_gc_min_garbage = 0;
  {
    std::unique_ptr<RocksRowStore> store = OpenStore(options);
    ASSERT_NE(store, nullptr);
    ASSERT_NE(MustOpenTable(store.get(), "docs", TableProfile::kDocument), nullptr);
    absl::StatusOr<std::string> tuning = store->DescribeTuningForTesting("docs");
    ASSERT_TRUE(tuning.ok()) << tuning.status();
    EXPECT_THAT(*tuning, HasSubstr("blob_gc=on"));
    EXPECT_EQ(store->Health().blob_gc_tables, 1u);
  }
  options.document_blob_gc_min_garbage = 1.5;
  absl::Status bad = RocksRowStore::Open(options).status();
  EXPECT_TRUE(absl::IsInvalidArgument(bad)) << bad;
  EXPECT_THAT(std::string(bad.message()), HasSubstr("document_blob_gc_min_garbage"));
}

// Every place a document table's index and filter blocks can live (block cache, pinned in
// it, table reader memory), with one cache shard or RocksDB's default: the tuning says which,
// it survives a reopen, and rows read back from SST and blob files by Get, MultiGet and Scan.
TEST_F(RocksRowStoreTest, DocumentMetadataPlacesAndCacheShards) {
  using Metadata = RocksRowStoreOptions::DocumentMetadata;
  const std::pair<Metadata, const char*> kModes[] = {
      {Metadata::kCache, "metadata=cache"},
      {Metadata::kPinned, "metadata=pinned"},
      {Metadata::kTableReader, "metadata=reader"}};
  auto doc = [](int i) { return std::to_string(i) + std::string(700, 'x'); };
  for (int shard_bits : {-1, 0}) {
    for (const auto& [mode, expected] : kModes) {
      SCOPED_TRACE(std::string(expected) + " shard_bits=" + std::to_string(shard_bits));
      TempDir dir;
      ASSERT_FALSE(dir.path().empty());
      RocksRowStoreOptions options = TestOptions(dir.path(), &clock_);
      options.block_cache_shard_bits = shard_bits;
      options.document_metadata = mode;
      for (int round = 0; round < 2; ++round) {  // round 1: reopened
        std::unique_ptr<RocksRowStore> store = OpenStore(options);
        ASSERT_NE(store, nullptr);
        Table* docs = MustOpenTable(store.get(), "docs", TableProfile::kDocument);
        Table* live = MustOpenTable(store.get(), "live", TableProfile::kLive);
        ASSERT_NE(docs, nullptr);
        ASSERT_NE(live, nullptr);
        absl::StatusOr<std::string> tuning = store->DescribeTuningForTesting("docs");
        ASSERT_TRUE(tuning.ok()) << tuning.status();
        EXPECT_THAT(*tuning, HasSubstr(expected));
        absl::StatusOr<std::string> live_tuning = store->DescribeTuningForTesting("live");
        ASSERT_TRUE(live_tuning.ok()) << live_tuning.status();
        EXPECT_THAT(*live_tuning, HasSubstr("metadata=cache"));  // other profiles unchanged
        if (round == 0) {
          for (int flush = 0; flush < 3; ++flush) {  // several files, then one sorted run
            WriteBatch batch;
            for (int i = flush; i < 300; i += 3) {
              batch.Put("d" + std::to_string(1000 + i), doc(i));
              batch.Put("i" + std::to_string(1000 + i), "small");
            }
            ASSERT_TRUE(docs->Apply("p", batch).ok());
            ASSERT_TRUE(live->Put("p", "k" + std::to_string(flush), "v").ok());
            ASSERT_TRUE(store->FlushForTesting().ok());
          }
          ASSERT_TRUE(store->CompactAll().ok());
        }
        EXPECT_EQ(GetOr(docs, "p", "d1123"), doc(123));
        EXPECT_EQ(GetOr(docs, "p", "d0999"), "<not found>");
        EXPECT_EQ(GetOr(live, "p", "k2"), "v");
        std::vector<std::string> names;  // RowKey holds views
        for (int i = 0; i < 300; i += 7) names.push_back("d" + std::to_string(1000 + i));
        names.push_back("d2000");
        std::vector<RowKey> keys;
        for (const std::string& name : names) keys.push_back({"p", name});
        std::vector<absl::StatusOr<std::string>> got = docs->MultiGet(keys);
        ASSERT_EQ(got.size(), keys.size());
        for (size_t j = 0; j + 1 < keys.size(); ++j) {
          ASSERT_TRUE(got[j].ok()) << got[j].status();
          EXPECT_EQ(*got[j], doc(static_cast<int>(j) * 7));
        }
        EXPECT_TRUE(absl::IsNotFound(got.back().status()));
        ScanOptions scan;
        scan.start = "i";
        scan.end = "j";
        absl::StatusOr<ScanPage> page = docs->Scan("p", scan);
        ASSERT_TRUE(page.ok()) << page.status();
        EXPECT_EQ(page->rows.size(), 300u);
      }
    }
  }
}

// Files directly in `dir` whose names end in `suffix` (".blob": RocksDB's blob files).
size_t CountFiles(const std::string& dir, std::string_view suffix) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() >= suffix.size() && name.ends_with(suffix)) ++n;
  }
  return n;
}

// A document row big enough for a blob file (the default document_blob_min_bytes is 512):
// its number i first, so a reader can tell which write it came from.
std::string DocumentValue(int i, char fill) {
  return std::to_string(i) + ":" + std::string(1200, fill);
}

// A checkpoint (what `strata backup create` takes of the rows) of a document table whose rows
// live in blob files holds those files itself: every row written before it reads back from
// the copy -- rows flushed and compacted before it, and rows still in the memtable that the
// checkpoint flushes -- after the original has overwritten, deleted and compacted them (blob
// garbage collection) and has then been removed altogether; nothing written after it appears.
TEST_F(RocksRowStoreTest, CheckpointOfDocumentRowsInBlobFilesRestoresEveryRow) {
  TempDir backup_parent;
  ASSERT_FALSE(backup_parent.path().empty());
  const std::string checkpoint = backup_parent.path() + "/rows";
  {
    std::unique_ptr<RocksRowStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    Table* docs = MustOpenTable(store.get(), "docs", TableProfile::kDocument);
    ASSERT_NE(docs, nullptr);
    WriteBatch flushed;
    for (int i = 0; i < 300; ++i) flushed.Put("d" + std::to_string(1000 + i), DocumentValue(i, 'a'));
    ASSERT_TRUE(docs->Apply("p", flushed).ok());
    ASSERT_TRUE(store->CompactAll().ok());
    ASSERT_GT(CountFiles(dir_.path(), ".blob"), 0u) << "the rows must be in blob files";
    WriteBatch in_memtable;
    for (int i = 300; i < 600; ++i) {
      in_memtable.Put("d" + std::to_string(1000 + i), DocumentValue(i, 'a'));
    }
    in_memtable.Put("d1005", DocumentValue(5, 'b'));
    in_memtable.Delete("d1006");
    ASSERT_TRUE(docs->Apply("p", in_memtable).ok());

    ASSERT_TRUE(store->Checkpoint(checkpoint).ok());
    EXPECT_GT(CountFiles(checkpoint, ".blob"), 0u);

    // After the checkpoint: every row rewritten or deleted, and compacted twice so that blob
    // garbage collection rewrites or drops the original's blob files.
    WriteBatch after;
    for (int i = 0; i < 600; ++i) {
      if (i % 2 == 0) {
        after.Put("d" + std::to_string(1000 + i), DocumentValue(i, 'z'));
      } else {
        after.Delete("d" + std::to_string(1000 + i));
      }
    }
    after.Put("d9999", DocumentValue(9999, 'n'));
    ASSERT_TRUE(docs->Apply("p", after).ok());
    ASSERT_TRUE(store->CompactAll().ok());
    ASSERT_TRUE(store->CompactAll().ok());
    EXPECT_EQ(GetOr(docs, "p", "d1002"), DocumentValue(2, 'z'));
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_.path(), ec);
  ASSERT_FALSE(ec) << ec.message();

  // Restore as `strata backup restore` does: a recursive copy of the checkpoint.
  TempDir restored_parent;
  ASSERT_FALSE(restored_parent.path().empty());
  const std::string restored = restored_parent.path() + "/rows";
  std::filesystem::copy(checkpoint, restored, std::filesystem::copy_options::recursive, ec);
  ASSERT_FALSE(ec) << ec.message();
  std::unique_ptr<RocksRowStore> store = OpenStore(TestOptions(restored, &clock_));
  ASSERT_NE(store, nullptr);
  Table* docs = MustOpenTable(store.get(), "docs", TableProfile::kDocument);
  ASSERT_NE(docs, nullptr);
  size_t wrong = 0;
  for (int i = 0; i < 600; ++i) {
    std::string expected = i == 5 ? DocumentValue(5, 'b') : DocumentValue(i, 'a');
    if (i == 6) expected = "<not found>";
    if (GetOr(docs, "p", "d" + std::to_string(1000 + i)) != expected) ++wrong;
  }
  EXPECT_EQ(wrong, 0u) << "of 600 rows";
  EXPECT_EQ(GetOr(docs, "p", "d9999"), "<not found>");
  ScanOptions scan;
  scan.start = "d";
  scan.end = "e";
  scan.limit = 1000;
  absl::StatusOr<ScanPage> page = docs->Scan("p", scan);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->rows.size(), 599u);
  // The restored store takes writes and compacts over the checkpoint's blob files.
  ASSERT_TRUE(docs->Put("p", "d2000", DocumentValue(2000, 'r')).ok());
  ASSERT_TRUE(store->CompactAll().ok());
  EXPECT_EQ(GetOr(docs, "p", "d1599"), DocumentValue(599, 'a'));
  EXPECT_EQ(GetOr(docs, "p", "d2000"), DocumentValue(2000, 'r'));
}

// The child half of DocumentBlobFilesLoseNoAcknowledgedWriteOnKill: like WriteThenDie, for a
// document table whose rows go to blob files, with memtables so small that flushes (which
// write the blob files), compactions and blob garbage collection run while it writes. Keys
// repeat (i % 400), so later writes overwrite earlier ones and leave blob garbage.
constexpr int kDocumentChildWrites = 4000;
constexpr int kDocumentChildKeys = 400;

TEST(RocksRowStoreCrashChild, WriteDocumentsThenDie) {
  const char* dir = getenv(kChildDirEnv);
  const char* fd_text = getenv(kChildFdEnv);
  if (dir == nullptr || fd_text == nullptr) GTEST_SKIP() << "only run as a crash-test child";
  const int fd = atoi(fd_text);
  RocksRowStoreOptions options;
  options.path = dir;
  options.sync_interval_ms = 3'600'000;  // no fsync happens before the crash
  options.block_cache_bytes = size_t{8} << 20;
  options.live_write_buffer_bytes = size_t{256} << 10;
  absl::StatusOr<std::unique_ptr<RocksRowStore>> store = RocksRowStore::Open(options);
  if (!store.ok()) _exit(2);
  absl::StatusOr<Table*> table = (*store)->OpenTable({"docs", TableProfile::kDocument});
  if (!table.ok()) _exit(3);
  for (int i = 0; i < kDocumentChildWrites; ++i) {
    const std::string key = "d" + std::to_string(i % kDocumentChildKeys);
    absl::Status written;
    if (i % 2 == 0) {
      written = (*table)->Put("p", key, DocumentValue(i, 'a' + i % 26));
    } else {
      std::vector<PartitionWrite> writes;
      writes.push_back(PartitionWrite{*table, "p", WriteBatch()});
      writes.back().batch.Put(key, DocumentValue(i, 'a' + i % 26));
      writes.back().batch.Put("small" + std::to_string(i), "s");  // stays in the SST
      written = (*store)->Write(writes);
    }
    if (!written.ok()) _exit(4);
    int32_t acked = i;
    if (write(fd, &acked, sizeof(acked)) != sizeof(acked)) _exit(5);
  }
  _exit(kCrashPointExitCode);  // no destructors: the store is never closed
}

// kill -9 while document rows go to blob files: every acknowledged write is there after
// reopening (the WAL holds what the blob files did not yet), each key holds its last
// acknowledged value or a later write's, never an older one, and every value reads whole.
TEST_F(RocksRowStoreTest, DocumentBlobFilesLoseNoAcknowledgedWriteOnKill) {
  std::vector<int32_t> acked;
  ASSERT_NO_FATAL_FAILURE(
      RunCrashChild("WriteDocumentsThenDie", kDocumentChildWrites * 3 / 4, &acked));
  ASSERT_GE(acked.size(), static_cast<size_t>(kDocumentChildWrites * 3 / 4));
  // The writes before the kill went through flushes: documents are in blob files.
  EXPECT_GT(CountFiles(dir_.path(), ".blob"), 0u);

  std::vector<int> last_acked(kDocumentChildKeys, -1);
  for (int32_t i : acked) last_acked[i % kDocumentChildKeys] = i;
  std::unique_ptr<RocksRowStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  Table* table = MustOpenTable(store.get(), "docs", TableProfile::kDocument);
  ASSERT_NE(table, nullptr);
  size_t lost = 0;
  for (int k = 0; k < kDocumentChildKeys; ++k) {
    if (last_acked[k] < 0) continue;
    const std::string got = GetOr(table, "p", "d" + std::to_string(k));
    const int written = atoi(got.c_str());
    // The last acknowledged write, or one after it that was applied but not yet reported.
    const bool ok = written >= last_acked[k] && written % kDocumentChildKeys == k &&
                    got == DocumentValue(written, 'a' + written % 26);
    if (!ok) ++lost;
  }
  EXPECT_EQ(lost, 0u) << "of " << kDocumentChildKeys << " keys";
  size_t small_lost = 0;
  for (int32_t i : acked) {
    if (i % 2 == 1 && GetOr(table, "p", "small" + std::to_string(i)) != "s") ++small_lost;
  }
  EXPECT_EQ(small_lost, 0u);
}

TEST_F(RocksRowStoreTest, PutIfNewerAcrossFlushesAndCompactions) {
  std::unique_ptr<RocksRowStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  Table* t = MustOpenTable(store.get(), "lww");
  ASSERT_NE(t, nullptr);
  auto put = [&](uint64_t version, const std::string& value) {
    WriteBatch batch;
    batch.PutIfNewer("row", version, value);
    ASSERT_TRUE(t->Apply("p", batch).ok());
  };
  put(5, "five");
  ASSERT_TRUE(store->CompactAll().ok());  // base value in an SST file
  put(3, "three");                         // operand in the memtable
  EXPECT_EQ(GetOr(t, "p", "row"), "five");
  put(7, "seven");
  EXPECT_EQ(GetOr(t, "p", "row"), "seven");
  ASSERT_TRUE(store->CompactAll().ok());
  EXPECT_EQ(GetOr(t, "p", "row"), "seven");
  put(6, "six");
  ASSERT_TRUE(store->CompactAll().ok());
  EXPECT_EQ(GetOr(t, "p", "row"), "seven");
  ASSERT_TRUE(t->Delete("p", "row").ok());
  ASSERT_TRUE(store->CompactAll().ok());
  put(1, "one");
  EXPECT_EQ(GetOr(t, "p", "row"), "one");
  EXPECT_EQ(store->CountRawEntriesForTesting("lww").value_or(0), 1u);
}

TEST_F(RocksRowStoreTest, SplitRangesOverManyFilesCoverEveryRowOnce) {
  RocksRowStoreOptions options = TestOptions(dir_.path(), &clock_);
  options.write_buffer_bytes = 64 << 10;  // many small SST files
  std::unique_ptr<RocksRowStore> store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  Table* t = MustOpenTable(store.get(), "big", TableProfile::kCompressed);
  ASSERT_NE(t, nullptr);
  constexpr int kPartitions = 6000;  // more than SplitRanges samples
  size_t expected = 0;
  for (int start = 0; start < kPartitions; start += 500) {
    std::vector<PartitionWrite> writes;
    for (int p = start; p < start + 500; ++p) {
      writes.push_back(PartitionWrite{t, "member" + std::to_string(p * 7919 % 100003),
                                      WriteBatch()});
      writes.back().batch.Put("a", std::string(60, 'v'));
      writes.back().batch.Put("b", std::string(60, 'w'));
      expected += 2;
    }
    ASSERT_TRUE(store->Write(writes).ok());
  }
  absl::StatusOr<std::vector<KeyRange>> ranges = t->SplitRanges(8);
  ASSERT_TRUE(ranges.ok()) << ranges.status();
  EXPECT_GT(ranges->size(), 1u);
  EXPECT_LE(ranges->size(), 8u);
  std::set<std::pair<std::string, std::string>> seen;
  size_t rows = 0;
  for (const KeyRange& range : *ranges) {
    std::string cursor;
    do {
      absl::StatusOr<TableScanPage> page = t->ScanRange(range, kMaxPageRows, cursor);
      ASSERT_TRUE(page.ok()) << page.status();
      for (const TableRow& row : page->rows) {
        EXPECT_TRUE(seen.emplace(row.partition, row.clustering).second);
        ++rows;
      }
      cursor = page->next_cursor;
    } while (!cursor.empty());
  }
  EXPECT_EQ(rows, expected);
  EXPECT_EQ(seen.size(), expected);
}

TEST_F(RocksRowStoreTest, HealthAndStats) {
  std::unique_ptr<RocksRowStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  Table* t = MustOpenTable(store.get(), "rows");
  ASSERT_NE(t, nullptr);
  WriteBatch batch;
  for (int i = 0; i < 500; ++i) batch.Put("k" + std::to_string(i), std::string(200, 'x'));
  ASSERT_TRUE(t->Apply("p", batch).ok());
  RocksHealth before = store->Health();
  EXPECT_GT(before.memtable_bytes, 0u);
  ASSERT_TRUE(store->CompactAll().ok());
  RocksHealth health = store->Health();
  EXPECT_GT(health.total_sst_bytes, 0u);
  EXPECT_GT(health.live_sst_bytes, 0u);
  EXPECT_FALSE(health.write_stalled);
  EXPECT_EQ(health.background_errors, 0u);
  EXPECT_EQ(health.wal_sync_failures, 0u);
  absl::StatusOr<TableStats> stats = t->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->approximate_rows, 500u);
  EXPECT_GT(stats->disk_bytes, 0u);
  EXPECT_TRUE(store->Sync().ok());
}

// Sync() fsyncs the WAL through the store's own descriptors (docs/row-store.md, "Sync policy
// and durability"): each call is a counted round, also across a switch to a new log file
// (a flush starts one), and the store goes on writing and syncing after it.
TEST_F(RocksRowStoreTest, SyncRoundsAcrossLogSwitches) {
  std::unique_ptr<RocksRowStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  Table* t = MustOpenTable(store.get(), "rows");
  ASSERT_NE(t, nullptr);
  const uint64_t before = store->Health().wal_syncs;
  for (int round = 0; round < 3; ++round) {
    WriteBatch batch;
    for (int i = 0; i < 50; ++i) batch.Put("k" + std::to_string(round * 100 + i), "v");
    ASSERT_TRUE(t->Apply("p", batch).ok());
    absl::Status synced = store->Sync();
    ASSERT_TRUE(synced.ok()) << synced;
    ASSERT_TRUE(store->FlushForTesting().ok());  // the next writes go to a new log file
  }
  RocksHealth health = store->Health();
  EXPECT_GE(health.wal_syncs, before + 3);
  EXPECT_EQ(health.wal_sync_failures, 0u);
  EXPECT_EQ(health.wal_sync_running_seconds, 0.0);  // none under way
  EXPECT_TRUE(health.writes_refused.empty()) << health.writes_refused;
  absl::StatusOr<std::string> got = t->Get("p", "k249");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "v");
}

// A write-idle store flushes its memtables so its log files can go: the disk then holds the
// tables, not a log of everything since the last flush. Writes below the threshold are left.
TEST_F(RocksRowStoreTest, IdleFlushEmptiesTheLogAndKeepsTheData) {
  RocksRowStoreOptions options = TestOptions(dir_.path(), &clock_);
  options.idle_flush_ms = 100;
  options.idle_flush_min_wal_bytes = 64 << 10;
  {
    std::unique_ptr<RocksRowStore> store = OpenStore(options);
    ASSERT_NE(store, nullptr);
    Table* t = MustOpenTable(store.get(), "rows");
    Table* rare = MustOpenTable(store.get(), "rare", TableProfile::kIndex);
    ASSERT_NE(t, nullptr);
    ASSERT_NE(rare, nullptr);
    ASSERT_TRUE(rare->Put("p", "k", "small").ok());  // under the threshold alone
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    EXPECT_EQ(store->Health().idle_flushes, 0u);
    EXPECT_GT(store->Health().wal_bytes, 0u);

    WriteBatch batch;
    for (int i = 0; i < 500; ++i) batch.Put("k" + std::to_string(i), std::string(200, 'x'));
    ASSERT_TRUE(t->Apply("p", batch).ok());
    const RocksHealth busy = store->Health();
    EXPECT_GE(busy.wal_bytes, 100'000u);
    EXPECT_GE(busy.wal_files, 1u);
    RocksHealth idle = busy;
    // (The log files go inside the flush, before the flush is counted.)
    for (int i = 0; i < 100 && (idle.wal_bytes != 0 || idle.idle_flushes == 0); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      idle = store->Health();
    }
    EXPECT_EQ(idle.wal_bytes, 0u);
    EXPECT_GE(idle.idle_flushes, 1u);
    EXPECT_GT(idle.live_sst_bytes, 0u);
  }
  std::unique_ptr<RocksRowStore> store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(GetOr(MustOpenTable(store.get(), "rows"), "p", "k499"), std::string(200, 'x'));
  EXPECT_EQ(GetOr(MustOpenTable(store.get(), "rare", TableProfile::kIndex), "p", "k"), "small");
}

// `bytes` of row `i`'s value that compression cannot shrink much.
std::string NoisyValue(int i, size_t bytes) {
  std::string v(bytes, '\0');
  for (size_t j = 0; j < v.size(); ++j) v[j] = static_cast<char>((i * 131 + j * 7919) % 251);
  return v;
}

// The store's health once `done` holds of it, or after 10 s (polled every 50 ms).
template <typename Pred>
RocksHealth WaitForHealth(RocksRowStore* store, Pred done) {
  RocksHealth h = store->Health();
  for (int i = 0; i < 200 && !done(h); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    h = store->Health();
  }
  return h;
}

// The periodic WAL fsync does not wait for the store's upkeep: while an idle flush is held
// (a long idle compaction of a large table, a flush that waits), writes acknowledged
// meanwhile are still fsynced every sync_interval_ms. With both on one thread, no fsync ran
// until the idle work returned.
TEST_F(RocksRowStoreTest, PeriodicSyncGoesOnWhileIdleMaintenanceRuns) {
  RocksRowStoreOptions options = TestOptions(dir_.path(), &clock_);
  options.sync_policy = SyncPolicy::kPeriodic;
  options.sync_interval_ms = 20;
  options.idle_flush_ms = 100;
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, release = false;
  options.before_idle_maintenance_for_testing = [&] {
    std::unique_lock lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return release; });
  };
  std::unique_ptr<RocksRowStore> store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  Table* t = MustOpenTable(store.get(), "rows");
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->Put("p", "a", "1").ok());
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return entered; }))
        << "the idle maintenance never started";
  }
  // The maintenance thread is held inside its idle work; write and watch the fsyncs.
  const uint64_t before = store->Health().wal_syncs;
  ASSERT_TRUE(t->Put("p", "b", "2").ok());
  const RocksHealth after =
      WaitForHealth(store.get(), [&](const RocksHealth& h) { return h.wal_syncs > before; });
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_GT(after.wal_syncs, before) << "no WAL fsync while the idle work was held";
}

// The backstop for max_wal_bytes: when the live log passes wal_backstop_bytes while writes
// go on, the store flushes the tables with unflushed rows so the log files can go. RocksDB's
// own cap is set out of reach here (max_wal_bytes 1 GiB) and the idle flush is off, so only
// the backstop can shrink the log; the same writes with the backstop off leave it whole.
// Read stamps (WriteBatch::Expect): a condition on a row nothing wrote since the stamped
// read is taken without a read; one written since, or expiring, or read before the store
// was last opened, is read again. (The conformance suite checks the outcomes on every
// backend; this checks that RocksDB gives stamps and uses them.)
TEST_F(RocksRowStoreTest, ReadStampsSpareTheConditionsReadUntilTheRowIsWritten) {
  auto read = [](Table* t, std::string_view key, ReadStamp* stamp) {
    std::vector<ReadStamp> stamps;
    ReadOptions options;
    options.stamps = &stamps;
    absl::StatusOr<std::string> got = t->Get("p", key, options);
    EXPECT_EQ(stamps.size(), 1u);
    *stamp = StampAt(stamps, 0);
    return got.ok() ? std::optional<std::string>(*got) : std::nullopt;
  };
  auto cas = [](Table* t, std::string_view key, std::optional<std::string> expected,
                ReadStamp stamp, std::string value) {
    WriteBatch b;
    b.Expect(std::string(key), std::move(expected), stamp);
    b.Put(std::string(key), std::move(value));
    return t->Apply("p", b);
  };
  ReadStamp before_reopen = 0;
  {
    std::unique_ptr<RocksRowStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    Table* t = MustOpenTable(store.get(), "stamps");
    ASSERT_TRUE(t->Put("p", "k", "v1").ok());
    ReadStamp stamp = 0;
    std::optional<std::string> seen = read(t, "k", &stamp);
    EXPECT_NE(stamp, 0u);
    ASSERT_TRUE(cas(t, "k", seen, stamp, "v2").ok());
    EXPECT_EQ(store->Health().stamped_checks, 1u);
    // Written since the read: re-read, and the condition fails.
    seen = read(t, "k", &stamp);
    ASSERT_TRUE(t->Put("p", "k", "v3").ok());
    EXPECT_TRUE(absl::IsFailedPrecondition(cas(t, "k", seen, stamp, "v4")));
    EXPECT_EQ(store->Health().stamped_checks, 1u);
    // Absent rows are stamped too.
    seen = read(t, "new", &stamp);
    EXPECT_FALSE(seen.has_value());
    EXPECT_NE(stamp, 0u);
    ASSERT_TRUE(cas(t, "new", seen, stamp, "n1").ok());
    EXPECT_EQ(store->Health().stamped_checks, 2u);
    // A range delete in another table leaves this table's stamps alone; in this one, not.
    Table* other = MustOpenTable(store.get(), "stamps_other");
    seen = read(t, "new", &stamp);
    ASSERT_TRUE(other->DeleteRange("p", "", "").ok());
    ASSERT_TRUE(cas(t, "new", seen, stamp, "n2").ok());
    EXPECT_EQ(store->Health().stamped_checks, 3u);
    seen = read(t, "new", &stamp);
    ASSERT_TRUE(t->DeleteRange("q", "", "").ok());
    ASSERT_TRUE(cas(t, "new", seen, stamp, "n3").ok());
    EXPECT_EQ(store->Health().stamped_checks, 3u);
    // An expiring row gets no stamp (the clock alone can change it).
    ASSERT_TRUE(t->Put("p", "ttl", "t", clock_.NowMillis() + 1000).ok());
    seen = read(t, "ttl", &stamp);
    EXPECT_EQ(stamp, 0u);
    // A stamp read here, the row written after it, then the store reopened.
    seen = read(t, "k", &before_reopen);
    ASSERT_EQ(seen, "v3");
    ASSERT_TRUE(t->Put("p", "k", "v5").ok());
  }
  std::unique_ptr<RocksRowStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  Table* t = MustOpenTable(store.get(), "stamps");
  EXPECT_TRUE(absl::IsFailedPrecondition(cas(t, "k", "v3", before_reopen, "v6")));
  EXPECT_EQ(GetOr(t, "p", "k"), "v5");
  EXPECT_EQ(store->Health().stamped_checks, 0u);
}

TEST_F(RocksRowStoreTest, WalBackstopFlushesWhenTheLogOutgrowsItsCap) {
  for (const bool backstop_on : {true, false}) {
    SCOPED_TRACE(backstop_on ? "backstop on" : "backstop off");
    TempDir dir;
    RocksRowStoreOptions options = TestOptions(dir.path(), &clock_);
    options.max_wal_bytes = uint64_t{1} << 30;
    options.write_buffer_bytes = size_t{64} << 20;
    options.idle_flush_ms = 0;
    options.wal_backstop_bytes = backstop_on ? (256 << 10) : 0;
    {
      std::unique_ptr<RocksRowStore> store = OpenStore(options);
      ASSERT_NE(store, nullptr);
      Table* t = MustOpenTable(store.get(), "rows", TableProfile::kIndex);
      ASSERT_NE(t, nullptr);
      // ~1 MiB of rows in 8 batches, well past the backstop and far under a memtable.
      for (int b = 0; b < 8; ++b) {
        WriteBatch batch;
        for (int i = 0; i < 500; ++i) {
          batch.Put("k" + std::to_string(b * 500 + i),
                    std::string(256, static_cast<char>('a' + b)));
        }
        ASSERT_TRUE(t->Apply("p", batch).ok());
      }
      {
        // (On a slow machine the backstop may already have looked while the rows went in.)
        const RocksHealth written = store->Health();
        EXPECT_TRUE(written.wal_bytes >= (uint64_t{1} << 20) || written.wal_backstop_flushes > 0)
            << written.wal_bytes;
      }
      // The maintenance thread looks every second: with the backstop on, wait for its flush
      // (10 s at most); off, give it several looks.
      RocksHealth after;
      if (backstop_on) {
        after = WaitForHealth(store.get(), [](const RocksHealth& h) {
          return h.wal_backstop_flushes >= 1 && h.wal_bytes < (256 << 10);
        });
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(4500));
        after = store->Health();
      }
      if (backstop_on) {
        EXPECT_GE(after.wal_backstop_flushes, 1u);
        EXPECT_LT(after.wal_bytes, uint64_t{256} << 10);
        EXPECT_GT(after.live_sst_bytes, 0u);
      } else {
        EXPECT_EQ(after.wal_backstop_flushes, 0u);
        EXPECT_GE(after.wal_bytes, uint64_t{1} << 20);
      }
    }
    std::unique_ptr<RocksRowStore> store = OpenStore(options);
    ASSERT_NE(store, nullptr);
    Table* t = MustOpenTable(store.get(), "rows", TableProfile::kIndex);
    EXPECT_EQ(GetOr(t, "p", "k0"), std::string(256, 'a'));
    EXPECT_EQ(GetOr(t, "p", "k3999"), std::string(256, 'h'));
  }
}

// An idle store compacts whole the tables whose files hold dead bytes that write-driven
// compaction would leave: here a compressed-profile table whose rows were deleted after they
// reached their files (what a rotation to the past tier does to the recent tier).
TEST_F(RocksRowStoreTest, IdleCompactionDropsDeletedRowsOfACompressedTable) {
  std::unique_ptr<RocksRowStore> store = OpenQuicklyIdleStore();
  ASSERT_NE(store, nullptr);
  Table* t = MustOpenTable(store.get(), "chunks", TableProfile::kCompressed);
  ASSERT_NE(t, nullptr);
  auto value = [](int i) { return NoisyValue(i, 4096); };
  for (int b = 0; b < 4; ++b) {
    WriteBatch batch;
    for (int i = 0; i < 100; ++i) batch.Put("k" + std::to_string(b * 100 + i), value(b * 100 + i));
    ASSERT_TRUE(t->Apply("p", batch).ok());
  }
  auto wait_idle = [&](uint64_t compactions) {
    return WaitForHealth(store.get(), [&](const RocksHealth& h) {
      return h.idle_compactions >= compactions && h.wal_bytes == 0;
    });
  };
  const RocksHealth full = wait_idle(1);
  ASSERT_GE(full.idle_compactions, 1u);  // grown from nothing: settled once
  EXPECT_GE(full.live_sst_bytes, 400u * 4096);

  WriteBatch deletes;
  for (int i = 0; i < 360; ++i) deletes.Delete("k" + std::to_string(i));
  ASSERT_TRUE(t->Apply("p", deletes).ok());
  const RocksHealth settled = wait_idle(full.idle_compactions + 1);
  EXPECT_EQ(settled.idle_compactions, full.idle_compactions + 1);
  EXPECT_LT(settled.live_sst_bytes, full.live_sst_bytes / 4);  // 40 of 400 rows remain
  EXPECT_EQ(GetOr(t, "p", "k399"), value(399));
  EXPECT_EQ(GetOr(t, "p", "k0"), "<not found>");

  // Nothing written since: further idle periods leave the table alone.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(store->Health().idle_compactions, settled.idle_compactions);
}

// A queue's messages only grow (and go by range deletes): the idle settle leaves such a
// table alone however much it grew, where a live table that grew as much is compacted whole.
TEST_F(RocksRowStoreTest, IdleSettleLeavesAnAppendOnlyTableThatOnlyGrew) {
  std::unique_ptr<RocksRowStore> store = OpenQuicklyIdleStore();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<Table*> log = store->OpenTable(TableOptions{
      .name = "log", .profile = TableProfile::kLive, .append_only = true});
  ASSERT_TRUE(log.ok()) << log.status();
  Table* plain = MustOpenTable(store.get(), "plain");
  ASSERT_NE(plain, nullptr);
  // Random bytes: LZ4 cannot shrink them under the settle's 64 KiB floor.
  auto value = [](int i) {
    std::mt19937 gen(static_cast<uint32_t>(i));
    std::string v(1024, '\0');
    for (char& c : v) c = static_cast<char>(gen());
    return v;
  };
  auto fill = [&](Table* t) {
    char key[16];
    WriteBatch batch;
    for (int i = 0; i < 400; ++i) {
      std::snprintf(key, sizeof(key), "m%05d", i);
      batch.Put(key, value(i));
    }
    return t->Apply("p", batch);
  };
  ASSERT_TRUE(fill(*log).ok());
  const RocksHealth flushed =
      WaitForHealth(store.get(), [](const RocksHealth& h) { return h.wal_bytes == 0; });
  ASSERT_EQ(flushed.wal_bytes, 0u);
  ASSERT_GE(flushed.live_sst_bytes, 200u * 1024);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // several idle periods
  EXPECT_EQ(store->Health().idle_compactions, 0u) << "an append-only table that only grew";

  ASSERT_TRUE(fill(plain).ok());
  const RocksHealth grown =
      WaitForHealth(store.get(), [](const RocksHealth& h) { return h.idle_compactions >= 1; });
  EXPECT_EQ(grown.idle_compactions, 1u) << "the live table, settled once";

  // Its messages trimmed by a range delete: now it is settled, and the rows' bytes go.
  ASSERT_TRUE((*log)->DeleteRange("p", "m00000", "m00360").ok());
  const RocksHealth trimmed = WaitForHealth(store.get(), [&](const RocksHealth& h) {
    return h.idle_compactions >= grown.idle_compactions + 1;
  });
  EXPECT_EQ(trimmed.idle_compactions, grown.idle_compactions + 1);
  EXPECT_EQ(GetOr(*log, "p", "m00399"), value(399));
  EXPECT_EQ(GetOr(*log, "p", "m00000"), "<not found>");
  absl::StatusOr<TableStats> stats = (*log)->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_LT(stats->disk_bytes, 100u * 1024) << "40 of 400 rows of 1 KiB remain";
}

// A range delete is one tombstone in its file's properties however many rows it covers; the
// idle settle counts the bytes it covered instead, so a document table whose rows (and blob
// files) a DeleteRange removed is compacted whole once writes are idle, and the blob files
// go (what an export's marks, deleted when the job ends, leave behind).
TEST_F(RocksRowStoreTest, IdleCompactionReclaimsWhatARangeDeleteCovered) {
  std::unique_ptr<RocksRowStore> store = OpenQuicklyIdleStore();
  ASSERT_NE(store, nullptr);
  Table* t = MustOpenTable(store.get(), "docs", TableProfile::kDocument);
  ASSERT_NE(t, nullptr);
  auto value = [](int i) { return NoisyValue(i, 2048); };
  auto wait = [&](auto done) { return WaitForHealth(store.get(), done); };
  // A row of its own blob file (flushed while idle): blob files are dropped whole, once no
  // row in them is live, as an export's marks' files are (the job writes nothing else).
  ASSERT_TRUE(t->Put("p", "keep", value(7), 0).ok());
  ASSERT_EQ(wait([](const RocksHealth& h) { return h.wal_bytes == 0; }).wal_bytes, 0u);
  char key[16];
  for (int b = 0; b < 8; ++b) {
    WriteBatch batch;
    for (int i = 0; i < 250; ++i) {
      std::snprintf(key, sizeof(key), "j%05d", b * 250 + i);
      batch.Put(key, value(b * 250 + i));
    }
    ASSERT_TRUE(t->Apply("p", batch).ok());
  }
  // Flushed while idle; a document table that only grew is not rewritten.
  const RocksHealth full = wait([](const RocksHealth& h) { return h.wal_bytes == 0; });
  ASSERT_EQ(full.wal_bytes, 0u);
  ASSERT_GE(full.live_blob_bytes, 2001u * 2048);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const uint64_t compactions = store->Health().idle_compactions;

  ASSERT_TRUE(t->DeleteRange("p", "j", "k").ok());
  const RocksHealth settled = wait([&](const RocksHealth& h) {
    return h.idle_compactions > compactions && h.live_blob_bytes < 2000u * 2048 / 10;
  });
  EXPECT_GT(settled.idle_compactions, compactions);
  EXPECT_LT(settled.live_blob_bytes, 2000u * 2048 / 10) << "the deleted rows' blob files stayed";
  EXPECT_GE(settled.live_blob_bytes, 2048u);  // "keep"'s file
  EXPECT_EQ(GetOr(t, "p", "keep"), value(7));
  EXPECT_EQ(GetOr(t, "p", "j00042"), "<not found>");
  // Nothing deleted since: further idle periods leave it alone.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(store->Health().idle_compactions, settled.idle_compactions);
}

// Live tables: a flushed file that is mostly deletions (a roll-up deleting the rows it folded
// into a chunk) is compacted into the level below at once, so the deleted rows leave the disk
// without waiting for a second file in L0 or for the store to go idle.
TEST_F(RocksRowStoreTest, LiveTableCompactsAFileOfDeletionsAtOnce) {
  RocksRowStoreOptions options = TestOptions(dir_.path(), &clock_);
  options.idle_flush_ms = 0;  // no idle compaction: only the write-driven one may act
  std::unique_ptr<RocksRowStore> store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  Table* t = MustOpenTable(store.get(), "live", TableProfile::kLive);
  ASSERT_NE(t, nullptr);
  auto value = [](int i) {  // 400 bytes that LZ4 cannot shrink much
    std::string v(400, '\0');
    uint32_t x = 2463534242u + static_cast<uint32_t>(i);
    for (char& c : v) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      c = static_cast<char>(x);
    }
    return v;
  };
  WriteBatch rows;
  for (int i = 0; i < 2000; ++i) rows.Put("k" + std::to_string(10000 + i), value(i));
  ASSERT_TRUE(t->Apply("p", rows).ok());
  ASSERT_TRUE(store->CompactAll().ok());
  const uint64_t full = store->Health().live_sst_bytes;
  ASSERT_GE(full, 2000u * 300);

  WriteBatch deletes;
  for (int i = 0; i < 1900; ++i) deletes.Delete("k" + std::to_string(10000 + i));
  ASSERT_TRUE(t->Apply("p", deletes).ok());
  ASSERT_TRUE(store->FlushForTesting().ok());
  uint64_t bytes = store->Health().live_sst_bytes;
  for (int i = 0; i < 200 && bytes >= full / 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    bytes = store->Health().live_sst_bytes;
  }
  EXPECT_LT(bytes, full / 4) << "100 of 2000 rows remain; " << full << " bytes before the deletes";
  EXPECT_EQ(GetOr(t, "p", "k11999"), value(1999));
  EXPECT_EQ(GetOr(t, "p", "k10000"), "<not found>");
}

TEST_F(RocksRowStoreTest, OpenValidatesOptionsAndLocksTheDirectory) {
  EXPECT_TRUE(absl::IsInvalidArgument(RocksRowStore::Open(TestOptions("", &clock_)).status()));
  RocksRowStoreOptions bad_interval = TestOptions(dir_.path(), &clock_);
  bad_interval.sync_interval_ms = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(RocksRowStore::Open(bad_interval).status()));
  for (int bits : {-2, 9}) {
    RocksRowStoreOptions bad_shards = TestOptions(dir_.path(), &clock_);
    bad_shards.block_cache_shard_bits = bits;
    EXPECT_TRUE(absl::IsInvalidArgument(RocksRowStore::Open(bad_shards).status())) << bits;
  }

  std::unique_ptr<RocksRowStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  // A second open of a database in use fails cleanly (RocksDB's LOCK file).
  absl::StatusOr<std::unique_ptr<RocksRowStore>> second =
      RocksRowStore::Open(TestOptions(dir_.path(), &clock_));
  EXPECT_TRUE(absl::IsUnavailable(second.status())) << second.status();

  // Snapshots of another store are rejected.
  TempDir other_dir;
  std::unique_ptr<RocksRowStore> other = OpenStore(TestOptions(other_dir.path(), &clock_));
  ASSERT_NE(other, nullptr);
  Table* t = MustOpenTable(store.get(), "rows");
  ASSERT_NE(t, nullptr);
  absl::StatusOr<std::unique_ptr<Snapshot>> foreign = other->NewSnapshot();
  ASSERT_TRUE(foreign.ok());
  ReadOptions read;
  read.snapshot = foreign->get();
  EXPECT_TRUE(absl::IsInvalidArgument(t->Get("p", "k", read).status()));
}

}  // namespace
}  // namespace strata::store
