// The RADOS row store against the throwaway cluster CTest starts (fixture `cluster`): the
// shared conformance suite, then what is specific to RADOS (omap pages, range deletes,
// expiry and the reaper, reverse scans over many pages, conditional writes racing).
// Every store uses its own pool prefix and deletes its pools when destroyed.
#include "strata/store/rados/rados_row_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "strata/store/cluster_env.h"
#include "strata/store/row_store_conformance.h"

namespace strata::store {
namespace {

using ::testing::ElementsAre;

// A pool prefix no other store (this process, another test binary, an earlier run) uses.
std::string FreshPrefix() {
  static std::atomic<int> counter{0};
  std::random_device random;
  return "strata.test." + std::to_string(getpid()) + "." + std::to_string(random() % 100000) +
         "." + std::to_string(counter++);
}

// `shards`: the shard count of every profile (0 = one object per partition).
RadosRowStoreOptions TestOptions(Clock* clock, const std::string& prefix,
                                 bool reap_on_read = true, uint32_t shards = 0) {
  RadosRowStoreOptions options;
  options.live_shards = shards;
  options.index_shards = shards;
  options.compressed_shards = shards;
  options.ceph_conf = ClusterSetting("CEPH_CONF").value_or("");
  options.pool_prefix = prefix;
  options.clock = clock;
  options.op_timeout_ms = 30'000;
  options.reap_interval_ms = 0;  // tests run the reaper themselves
  options.reap_on_read = reap_on_read;
  options.delete_pools_on_close = true;
  return options;
}

std::unique_ptr<RadosRowStore> OpenOrFail(const RadosRowStoreOptions& options) {
  absl::StatusOr<std::unique_ptr<RadosRowStore>> store = RadosRowStore::Open(options);
  if (!store.ok()) {
    ADD_FAILURE() << store.status();
    return nullptr;
  }
  return std::move(*store);
}

std::unique_ptr<RowStore> ConformanceStore(ManualClock* clock, uint32_t shards) {
  if (std::string missing = ClusterMissing("CEPH_CONF"); !missing.empty()) {
    ADD_FAILURE() << missing;
    return nullptr;
  }
  return OpenOrFail(TestOptions(clock, FreshPrefix(), /*reap_on_read=*/true, shards));
}

}  // namespace
}  // namespace strata::store

// One object per partition, and every table sharded into 3 objects (few, so that the
// suite's partitions share objects).
INSTANTIATE_ROW_STORE_CONFORMANCE(Rados, [](strata::ManualClock* clock) {
  return ::strata::store::ConformanceStore(clock, 0);
});
INSTANTIATE_ROW_STORE_CONFORMANCE(RadosSharded, [](strata::ManualClock* clock) {
  return ::strata::store::ConformanceStore(clock, 3);
});

namespace strata::store {
namespace {

std::string Pad(int i, int width = 5) {
  std::string s = std::to_string(i);
  return std::string(width > static_cast<int>(s.size()) ? width - s.size() : 0, '0') + s;
}

std::vector<std::string> ScanKeys(Table* t, std::string_view partition, ScanOptions options) {
  std::vector<std::string> keys;
  for (int guard = 0; guard < 10000; ++guard) {
    absl::StatusOr<ScanPage> page = t->Scan(partition, options);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) break;
    EXPECT_LE(page->rows.size(), options.limit);
    for (Row& r : page->rows) keys.push_back(std::move(r.clustering));
    if (page->next_cursor.empty()) break;
    options.cursor = page->next_cursor;
  }
  return keys;
}

class RadosRowStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string missing = ClusterMissing("CEPH_CONF"); !missing.empty()) {
      if (std::getenv("STRATA_CLUSTER_ENV") == nullptr) GTEST_SKIP() << missing;
      FAIL() << missing;
    }
    prefix_ = FreshPrefix();
    // Reads leave expired rows alone here, so tests see exactly what the reaper does.
    store_ = OpenOrFail(TestOptions(&clock_, prefix_, /*reap_on_read=*/false));
    ASSERT_NE(store_, nullptr);
  }

  Table* Open(const std::string& name, TableProfile profile = TableProfile::kLive) {
    absl::StatusOr<Table*> t = store_->OpenTable(TableOptions{name, profile});
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : nullptr;
  }

  ManualClock clock_;
  std::string prefix_;
  std::unique_ptr<RadosRowStore> store_;
};

// More rows than one omap read returns (1024): pages, cursors and counts stay exact.
TEST_F(RadosRowStoreTest, PartitionsLargerThanAnOmapPage) {
  Table* t = Open("big");
  ASSERT_NE(t, nullptr);
  constexpr int kRows = 3000;
  std::vector<std::string> all;
  for (int start = 0; start < kRows; start += 500) {
    WriteBatch batch;
    for (int i = start; i < start + 500; ++i) {
      all.push_back("k" + Pad(i));
      batch.Put(all.back(), "v" + std::to_string(i));
    }
    ASSERT_TRUE(t->Apply("p", batch).ok());
  }
  absl::StatusOr<ScanPage> first = t->Scan("p", {});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->rows.size(), kMaxPageRows);
  EXPECT_EQ(first->rows.back().clustering, "k01023");
  EXPECT_EQ(ScanKeys(t, "p", {}), all);

  // Reverse, across the 1024-row omap reads, with bounds and a page size that does not
  // divide them.
  ScanOptions reverse;
  reverse.reverse = true;
  reverse.limit = 700;
  std::vector<std::string> reversed(all.rbegin(), all.rend());
  EXPECT_EQ(ScanKeys(t, "p", reverse), reversed);
  reverse.start = "k00500";
  reverse.end = "k02600";
  std::vector<std::string> bounded(all.begin() + 500, all.begin() + 2600);
  std::reverse(bounded.begin(), bounded.end());
  EXPECT_EQ(ScanKeys(t, "p", reverse), bounded);
  // The last reverse page of an unbounded scan, from a cursor deep in the partition.
  ScanOptions tail;
  tail.reverse = true;
  tail.limit = 3;
  tail.cursor = std::string("S") + "k02049";
  absl::StatusOr<ScanPage> page = t->Scan("p", tail);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(page->rows.size(), 3u);
  EXPECT_EQ(page->rows[0].clustering, "k02048");
  EXPECT_EQ(page->rows[2].clustering, "k02046");

  // A full-table scan of one big partition pages through it too.
  absl::StatusOr<std::vector<KeyRange>> ranges = t->SplitRanges(1);
  ASSERT_TRUE(ranges.ok());
  size_t rows = 0;
  std::string cursor;
  do {
    absl::StatusOr<TableScanPage> p = t->ScanRange(ranges->front(), kMaxPageRows, cursor);
    ASSERT_TRUE(p.ok()) << p.status();
    for (const TableRow& r : p->rows) EXPECT_EQ(r.clustering, all[rows++]);
    cursor = p->next_cursor;
  } while (!cursor.empty());
  EXPECT_EQ(rows, all.size());

  absl::StatusOr<TableStats> stats = t->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->approximate_rows, 3000u) << "exact for a table that fits the sample";
}

// Range deletes remove rows physically (rados_write_op_omap_rm_range2), including keys of
// 0xff bytes up to the maximum key length, and nothing outside the range.
TEST_F(RadosRowStoreTest, RangeDeletesRemoveTheOmapKeys) {
  Table* t = Open("ranges");
  ASSERT_NE(t, nullptr);
  const std::string max_key(kMaxClusteringKeySize, '\xff');
  WriteBatch batch;
  for (const std::string& k : {std::string(""), std::string("a"), std::string("b"),
                               std::string("b\0", 2), std::string("c"), std::string("\xff"),
                               max_key}) {
    batch.Put(k, "v");
  }
  ASSERT_TRUE(t->Apply("p", batch).ok());
  ASSERT_TRUE(t->Put("q", "a", "v").ok());

  ASSERT_TRUE(t->DeleteRange("p", "b", "c").ok());
  absl::StatusOr<std::vector<std::string>> raw = store_->RawKeysForTesting("ranges", "p");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_THAT(*raw, ElementsAre("", "a", "c", "\xff", max_key));

  ASSERT_TRUE(t->DeleteRange("p", "c", "").ok());  // open end: up to the longest key
  raw = store_->RawKeysForTesting("ranges", "p");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_THAT(*raw, ElementsAre("", "a"));

  ASSERT_TRUE(t->DeleteRange("p", "", "").ok());  // omap_clear
  raw = store_->RawKeysForTesting("ranges", "p");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_TRUE(raw->empty());
  EXPECT_EQ(*t->Get("q", "a"), "v");

  // On a partition that was never written: nothing to delete, and no object is created.
  ASSERT_TRUE(t->DeleteRange("never", "", "").ok());
  ASSERT_TRUE(t->Delete("never", "k").ok());
  EXPECT_FALSE(*store_->ObjectExistsForTesting("ranges", "never"));
  // A batch that deletes then writes a new partition creates it.
  WriteBatch fresh;
  fresh.DeleteRange("", "");
  fresh.Delete("x");
  fresh.Put("y", "1");
  ASSERT_TRUE(t->Apply("fresh", fresh).ok());
  EXPECT_EQ(*t->Get("fresh", "y"), "1");
}

// Expired rows are hidden at once, stay stored until reaped, and the reaper removes only
// them (and objects left empty).
TEST_F(RadosRowStoreTest, ExpiredRowsAreHiddenThenReaped) {
  Table* t = Open("ttl");
  ASSERT_NE(t, nullptr);
  const Millis now = clock_.NowMillis();
  WriteBatch batch;
  for (int i = 0; i < 10; ++i) batch.Put("k" + Pad(i, 2), "v", i % 2 == 0 ? now + 100 : 0);
  ASSERT_TRUE(t->Apply("mixed", batch).ok());
  ASSERT_TRUE(t->Put("all_expire", "a", "v", now + 100).ok());
  ASSERT_TRUE(t->Put("all_expire", "b", "v", now + 100).ok());
  ASSERT_TRUE(t->Put("empty", "a", "v").ok());
  ASSERT_TRUE(t->Delete("empty", "a").ok());

  clock_.Advance(100);
  // Hidden (this store does not delete on read: its reads find the rows still stored).
  EXPECT_TRUE(absl::IsNotFound(t->Get("all_expire", "a").status()));
  EXPECT_THAT(ScanKeys(t, "mixed", {}), ElementsAre("k01", "k03", "k05", "k07", "k09"));

  absl::StatusOr<RadosReapStats> stats = store_->ReapExpired();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->rows_removed, 7u);
  EXPECT_EQ(stats->objects_removed, 1u) << "the object whose rows were all deleted";
  absl::StatusOr<std::vector<std::string>> raw = store_->RawKeysForTesting("ttl", "mixed");
  ASSERT_TRUE(raw.ok());
  EXPECT_THAT(*raw, ElementsAre("k01", "k03", "k05", "k07", "k09"));
  raw = store_->RawKeysForTesting("ttl", "all_expire");
  ASSERT_TRUE(raw.ok());
  EXPECT_TRUE(raw->empty());
  EXPECT_FALSE(*store_->ObjectExistsForTesting("ttl", "empty"));
  // all_expire is empty now: the next sweep removes its object.
  stats = store_->ReapExpired();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->objects_removed, 1u);
  EXPECT_FALSE(*store_->ObjectExistsForTesting("ttl", "all_expire"));
  // Writing a removed partition again works.
  ASSERT_TRUE(t->Put("all_expire", "a", "again").ok());
  EXPECT_EQ(*t->Get("all_expire", "a"), "again");
}

// With reap_on_read (the default), a read that sees expired rows deletes them. The deletes
// are asynchronous; closing the store waits for them, so a second store sees the result.
TEST_F(RadosRowStoreTest, ReadsReapWhatTheySee) {
  store_.reset();
  RadosRowStoreOptions options = TestOptions(&clock_, prefix_);
  options.delete_pools_on_close = false;
  options.reap_on_read = true;
  std::unique_ptr<RadosRowStore> first = OpenOrFail(options);
  ASSERT_NE(first, nullptr);
  absl::StatusOr<Table*> t = first->OpenTable(TableOptions{"lazy", TableProfile::kLive});
  ASSERT_TRUE(t.ok());
  const Millis now = clock_.NowMillis();
  ASSERT_TRUE((*t)->Put("p", "gone", "v", now + 10).ok());
  ASSERT_TRUE((*t)->Put("p", "stays", "v").ok());
  ASSERT_TRUE((*t)->Put("q", "gone", "v", now + 10).ok());
  clock_.Advance(10);
  EXPECT_THAT(ScanKeys(*t, "p", {}), ElementsAre("stays"));
  EXPECT_TRUE(absl::IsNotFound((*t)->Get("q", "gone").status()));
  first.reset();

  store_ = OpenOrFail(TestOptions(&clock_, prefix_));  // deletes the pools at the end
  ASSERT_NE(store_, nullptr);
  ASSERT_NE(Open("lazy"), nullptr);
  EXPECT_THAT(*store_->RawKeysForTesting("lazy", "p"), ElementsAre("stays"));
  EXPECT_TRUE(store_->RawKeysForTesting("lazy", "q")->empty());
}

// PutIfNewer from several threads, in random orders, through Apply and Write: every row ends
// with its highest version.
TEST_F(RadosRowStoreTest, RacingPutIfNewerConvergesToTheHighestVersion) {
  Table* t = Open("lww");
  ASSERT_NE(t, nullptr);
  constexpr int kThreads = 4;
  constexpr int kKeys = 16;
  constexpr int kVersions = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      std::mt19937 random(th);
      std::vector<std::pair<int, int>> work;  // (key, version)
      for (int k = 0; k < kKeys; ++k) {
        for (int v = th; v < kVersions; v += kThreads) work.emplace_back(k, v);
      }
      std::shuffle(work.begin(), work.end(), random);
      for (size_t i = 0; i < work.size(); i += 2) {
        if (i % 4 == 0) {
          WriteBatch batch;
          for (size_t j = i; j < std::min(work.size(), i + 2); ++j) {
            batch.PutIfNewer("k" + Pad(work[j].first, 2), work[j].second,
                             "v" + std::to_string(work[j].second));
          }
          if (!t->Apply("p", batch).ok()) ++failures;
        } else {
          std::vector<PartitionWrite> writes;
          for (size_t j = i; j < std::min(work.size(), i + 2); ++j) {
            writes.push_back(PartitionWrite{t, "p", WriteBatch()});
            writes.back().batch.PutIfNewer("k" + Pad(work[j].first, 2), work[j].second,
                                           "v" + std::to_string(work[j].second));
          }
          if (!store_->Write(writes).ok()) ++failures;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  for (int k = 0; k < kKeys; ++k) {
    EXPECT_EQ(*t->Get("p", "k" + Pad(k, 2)), "v" + std::to_string(kVersions - 1));
  }
}

// Compare-and-set on two rows at once from several threads: moving one unit from `b` to `a`
// in one batch guarded by both rows' values. Every success moves exactly one unit and no
// failure moves any: a + b stays 0 and a equals the successes.
TEST_F(RadosRowStoreTest, RacingConditionsAreExact) {
  Table* t = Open("cas");
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->Put("p", "a", "0").ok());
  ASSERT_TRUE(t->Put("p", "b", "0").ok());
  constexpr int kThreads = 4;
  constexpr int kAttempts = 100;
  std::atomic<int> successes{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&] {
      for (int i = 0; i < kAttempts; ++i) {
        absl::StatusOr<std::string> a = t->Get("p", "a");
        absl::StatusOr<std::string> b = t->Get("p", "b");
        if (!a.ok() || !b.ok()) {
          ++errors;
          continue;
        }
        WriteBatch batch;
        batch.Expect("a", *a);
        batch.Expect("b", *b);
        batch.Put("a", std::to_string(std::stoi(*a) + 1));
        batch.Put("b", std::to_string(std::stoi(*b) - 1));
        absl::Status s = t->Apply("p", batch);
        if (s.ok()) {
          ++successes;
        } else if (!absl::IsFailedPrecondition(s)) {
          ++errors;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(successes.load(), 0);
  EXPECT_EQ(*t->Get("p", "a"), std::to_string(successes.load()));
  EXPECT_EQ(*t->Get("p", "b"), std::to_string(-successes.load()));
}

// Rows written with an expiry or a version (not the optimistic guess's plain row) still
// satisfy a condition on their value: the read-then-write path decides.
TEST_F(RadosRowStoreTest, ConditionsOnRowsWithExpiryOrVersion) {
  Table* t = Open("cas2");
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->Put("p", "ttl", "x", clock_.NowMillis() + 1000).ok());
  WriteBatch versioned;
  versioned.PutIfNewer("lww", 7, "y");
  ASSERT_TRUE(t->Apply("p", versioned).ok());
  WriteBatch batch;
  batch.Expect("ttl", std::string("x"));
  batch.Expect("lww", std::string("y"));
  batch.Expect("absent", std::nullopt);
  batch.Put("done", "1");
  ASSERT_TRUE(t->Apply("p", batch).ok());
  EXPECT_EQ(*t->Get("p", "done"), "1");
  // Expect on a partition that does not exist yet.
  WriteBatch create;
  create.Expect("head", std::nullopt);
  create.Put("head", "h");
  ASSERT_TRUE(t->Apply("new_partition", create).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(t->Apply("new_partition", create)));
}

TEST_F(RadosRowStoreTest, SnapshotsAreUnimplemented) {
  absl::StatusOr<std::unique_ptr<Snapshot>> snapshot = store_->NewSnapshot();
  EXPECT_TRUE(absl::IsUnimplemented(snapshot.status())) << snapshot.status();
}

// A table's profile is in the catalog: it keeps its pool whatever a later OpenTable says.
TEST_F(RadosRowStoreTest, TablesKeepTheirPoolAcrossReopen) {
  store_.reset();
  RadosRowStoreOptions options = TestOptions(&clock_, prefix_);
  options.delete_pools_on_close = false;
  std::unique_ptr<RadosRowStore> first = OpenOrFail(options);
  ASSERT_NE(first, nullptr);
  absl::StatusOr<Table*> t = first->OpenTable(TableOptions{"chunks", TableProfile::kCompressed});
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_TRUE((*t)->Put("m", "c", "blob").ok());
  EXPECT_EQ(first->PoolName(TableProfile::kCompressed), prefix_ + ".compressed");
  first.reset();

  store_ = OpenOrFail(TestOptions(&clock_, prefix_));  // deletes the pools at the end
  ASSERT_NE(store_, nullptr);
  Table* again = Open("chunks", TableProfile::kLive);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->Get("m", "c").value_or("<missing>"), "blob");
}

// Partition keys of every kind map to valid object names and back (full-table scans
// return them), including the longest binary key.
TEST_F(RadosRowStoreTest, BinaryAndLongPartitionKeysRoundTrip) {
  Table* t = Open("names");
  ASSERT_NE(t, nullptr);
  std::string binary_max(kMaxPartitionKeySize, '\0');
  for (size_t i = 0; i < binary_max.size(); ++i) binary_max[i] = static_cast<char>(i * 7);
  const std::vector<std::string> partitions = {
      "", "plain", std::string("\0", 1), "with space", "r", "b", "bAAA", "\xff",
      std::string(kMaxPartitionKeySize, 'p'), binary_max};
  for (const std::string& p : partitions) ASSERT_TRUE(t->Put(p, "k", p).ok());
  absl::StatusOr<std::vector<KeyRange>> ranges = t->SplitRanges(3);
  ASSERT_TRUE(ranges.ok());
  std::vector<std::string> seen;
  for (const KeyRange& range : *ranges) {
    std::string cursor;
    do {
      absl::StatusOr<TableScanPage> page = t->ScanRange(range, 2, cursor);
      ASSERT_TRUE(page.ok()) << page.status();
      for (const TableRow& r : page->rows) {
        EXPECT_EQ(r.value, r.partition);
        seen.push_back(r.partition);
      }
      cursor = page->next_cursor;
    } while (!cursor.empty());
  }
  std::vector<std::string> expected = partitions;
  std::sort(expected.begin(), expected.end());
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, expected);
}

// ---------------------------------------------------------------------------------------
// Sharded tables: many partitions per object.

class RadosShardedTest : public RadosRowStoreTest {
 protected:
  // Replaces the store by one whose tables all have `shards` shard objects.
  void Reshard(uint32_t shards) {
    store_.reset();
    prefix_ = FreshPrefix();
    store_ = OpenOrFail(TestOptions(&clock_, prefix_, /*reap_on_read=*/false, shards));
    ASSERT_NE(store_, nullptr);
  }

  std::vector<TableRow> ScanTable(Table* t, size_t limit) {
    std::vector<TableRow> rows;
    absl::StatusOr<std::vector<KeyRange>> ranges = t->SplitRanges(2);
    EXPECT_TRUE(ranges.ok()) << ranges.status();
    if (!ranges.ok()) return rows;
    for (const KeyRange& range : *ranges) {
      std::string cursor;
      do {
        absl::StatusOr<TableScanPage> page = t->ScanRange(range, limit, cursor);
        EXPECT_TRUE(page.ok()) << page.status();
        if (!page.ok()) return rows;
        for (TableRow& r : page->rows) rows.push_back(std::move(r));
        cursor = page->next_cursor;
      } while (!cursor.empty());
    }
    return rows;
  }
};

// With one shard every partition shares the object: none sees another's rows, in scans
// (both directions, paged, bounded), point reads, range deletes and full-table scans,
// including partition keys that are prefixes of one another and extreme clustering keys.
TEST_F(RadosShardedTest, PartitionsInOneObjectAreIsolated) {
  Reshard(1);
  Table* t = Open("iso");
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(*store_->ShardsOf("iso"), 1u);
  const std::string max_key(kMaxClusteringKeySize, '\xff');
  const std::vector<std::string> partitions = {
      "", "a", "ab", std::string("a\0", 2), "b", std::string("\x01", 1), "\xff",
      std::string(kMaxPartitionKeySize, '\xff')};
  // Clustering keys chosen to collide with the neighbours' bytes ("b" after partition "a"
  // spells "ab").
  const std::vector<std::string> keys = {"", "b", std::string("\0", 1), "k1", "k2", max_key};
  std::vector<PartitionWrite> writes;
  for (const std::string& p : partitions) {
    writes.push_back(PartitionWrite{t, p, WriteBatch()});
    for (const std::string& k : keys) writes.back().batch.Put(k, p + "|" + k);
  }
  ASSERT_TRUE(store_->Write(writes).ok());
  std::vector<std::string> sorted_keys = keys;
  std::sort(sorted_keys.begin(), sorted_keys.end());
  std::vector<std::string> reversed(sorted_keys.rbegin(), sorted_keys.rend());
  for (const std::string& p : partitions) {
    SCOPED_TRACE(::testing::PrintToString(p));
    ScanOptions paged;
    paged.limit = 2;
    EXPECT_EQ(ScanKeys(t, p, paged), sorted_keys);
    ScanOptions reverse;
    reverse.reverse = true;
    reverse.limit = 4;
    EXPECT_EQ(ScanKeys(t, p, reverse), reversed);
    ScanOptions bounded;
    bounded.start = "b";
    bounded.end = "k2";
    EXPECT_THAT(ScanKeys(t, p, bounded), ElementsAre("b", "k1"));
    for (const std::string& k : keys) EXPECT_EQ(*t->Get(p, k), p + "|" + k);
  }
  EXPECT_TRUE(absl::IsNotFound(t->Get("abc", "").status()));
  EXPECT_TRUE(ScanKeys(t, "abc", {}).empty());
  EXPECT_TRUE(ScanKeys(t, "a\xff", {}).empty());

  // The full-table scan returns every partition whole, contiguous, in clustering order.
  std::vector<TableRow> all = ScanTable(t, 3);
  ASSERT_EQ(all.size(), partitions.size() * keys.size());
  for (size_t i = 0; i < all.size(); i += keys.size()) {
    for (size_t j = 0; j < keys.size(); ++j) {
      EXPECT_EQ(all[i + j].partition, all[i].partition);
      EXPECT_EQ(all[i + j].clustering, sorted_keys[j]);
      EXPECT_EQ(all[i + j].value, all[i].partition + "|" + sorted_keys[j]);
    }
  }

  // Deleting a whole partition (an omap range, not omap_clear), an open-ended range, and a
  // bounded one touch only that partition.
  ASSERT_TRUE(t->DeleteRange("a", "", "").ok());
  ASSERT_TRUE(t->DeleteRange("ab", "k1", "").ok());
  ASSERT_TRUE(t->DeleteRange("", "", "k1").ok());
  EXPECT_TRUE(store_->RawKeysForTesting("iso", "a")->empty());
  EXPECT_THAT(*store_->RawKeysForTesting("iso", "ab"), ElementsAre("", std::string("\0", 1), "b"));
  EXPECT_THAT(*store_->RawKeysForTesting("iso", ""), ElementsAre("k1", "k2", max_key));
  for (const std::string& p : {std::string("a\0", 2), std::string("b")}) {
    EXPECT_EQ(ScanKeys(t, p, {}), sorted_keys);
  }
  EXPECT_EQ(ScanTable(t, kMaxPageRows).size(), partitions.size() * keys.size() - 6 - 3 - 3);
}

// Pages, cursors and reverse scans across omap reads (1024) inside a shard object, with
// neighbouring partitions on both sides of the partition's key range.
TEST_F(RadosShardedTest, LargePartitionInASharedObject) {
  Reshard(1);
  Table* t = Open("big");
  ASSERT_NE(t, nullptr);
  std::vector<std::string> all;
  for (int start = 0; start < 2500; start += 500) {
    std::vector<PartitionWrite> writes;
    writes.push_back(PartitionWrite{t, "o", WriteBatch()});
    writes.push_back(PartitionWrite{t, "p", WriteBatch()});
    writes.push_back(PartitionWrite{t, "q", WriteBatch()});
    for (int i = start; i < start + 500; ++i) {
      all.push_back("k" + Pad(i));
      for (PartitionWrite& w : writes) w.batch.Put(all.back(), w.partition);
    }
    ASSERT_TRUE(store_->Write(writes).ok());
  }
  EXPECT_EQ(ScanKeys(t, "p", {}), all);
  ScanOptions reverse;
  reverse.reverse = true;
  reverse.limit = 700;
  EXPECT_EQ(ScanKeys(t, "p", reverse), std::vector<std::string>(all.rbegin(), all.rend()));
  absl::StatusOr<ScanPage> page = t->Scan("p", {});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->rows.size(), kMaxPageRows);
  for (const Row& r : page->rows) ASSERT_EQ(r.value, "p");
  absl::StatusOr<TableStats> stats = t->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->approximate_rows, 7500u);
  EXPECT_EQ(ScanTable(t, 1000).size(), 7500u);
}

// A combined operation fails whole when one partition's omap_cmp guess is wrong (here: its
// stored row is newer than the PutIfNewer); the batches are then applied one by one, so the
// other partitions of the object are written and the stale PutIfNewer loses alone.
TEST_F(RadosShardedTest, CombinedWriteRetriesPartitionsOneByOne) {
  Reshard(1);
  Table* t = Open("lww");
  ASSERT_NE(t, nullptr);
  WriteBatch newer;
  newer.PutIfNewer("k", 10, "v10");
  ASSERT_TRUE(t->Apply("x", newer).ok());
  std::vector<PartitionWrite> writes;
  writes.push_back(PartitionWrite{t, "x", WriteBatch()});
  writes.back().batch.PutIfNewer("k", 5, "v5");  // loses: the combined op's cmp fails
  writes.back().batch.Put("other", "x-other");
  writes.push_back(PartitionWrite{t, "y", WriteBatch()});
  writes.back().batch.Put("k", "y");
  writes.push_back(PartitionWrite{t, "w", WriteBatch()});
  writes.back().batch.PutIfNewer("k", 1, "w1");
  ASSERT_TRUE(store_->Write(writes).ok());
  EXPECT_EQ(*t->Get("x", "k"), "v10");
  EXPECT_EQ(*t->Get("x", "other"), "x-other");
  EXPECT_EQ(*t->Get("y", "k"), "y");
  EXPECT_EQ(*t->Get("w", "k"), "w1");

  // A failed Expect is that batch's FailedPrecondition. Conditional batches go first, one
  // by one (the contract of RowStore::Write on RADOS), so the unconditional batch of the
  // same call is not applied; the conditional batch of another partition before it is.
  std::vector<PartitionWrite> guarded;
  guarded.push_back(PartitionWrite{t, "y", WriteBatch()});
  guarded.back().batch.Expect("k", std::string("y"));
  guarded.back().batch.Put("k", "y2");
  guarded.push_back(PartitionWrite{t, "x", WriteBatch()});
  guarded.back().batch.Expect("k", std::string("wrong"));
  guarded.back().batch.Put("k", "never");
  guarded.push_back(PartitionWrite{t, "w", WriteBatch()});
  guarded.back().batch.Put("after", "never");
  absl::Status s = store_->Write(guarded);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_EQ(*t->Get("y", "k"), "y2");
  EXPECT_EQ(*t->Get("x", "k"), "v10");
  EXPECT_TRUE(absl::IsNotFound(t->Get("w", "after").status()));
}

// The first write into a shard object that does not exist yet: one exclusive create for
// all its partitions; and many partitions over several shards in one call.
TEST_F(RadosShardedTest, ManyPartitionsOverFewShards) {
  Reshard(4);
  Table* t = Open("many");
  ASSERT_NE(t, nullptr);
  std::vector<PartitionWrite> writes;
  for (int p = 0; p < 200; ++p) {
    writes.push_back(PartitionWrite{t, "m" + Pad(p), WriteBatch()});
    for (int r = 0; r < 3; ++r) writes.back().batch.PutIfNewer("r" + Pad(r), 1 + r, "v");
    // A second batch of the same partition in the same call applies after the first.
    writes.push_back(PartitionWrite{t, "m" + Pad(p), WriteBatch()});
    writes.back().batch.Delete("r00000");
  }
  ASSERT_TRUE(store_->Write(writes).ok());
  for (int p = 0; p < 200; p += 17) {
    EXPECT_THAT(ScanKeys(t, "m" + Pad(p), {}), ElementsAre("r00001", "r00002"));
  }
  EXPECT_EQ(ScanTable(t, 100).size(), 400u);
  ASSERT_TRUE(store_->Write(writes).ok());  // again, on existing objects: idempotent
  EXPECT_EQ(ScanTable(t, kMaxPageRows).size(), 400u);
}

// Expired rows of a sharded table are reaped; the shard object stays while any partition
// has rows, and goes when none has.
TEST_F(RadosShardedTest, ReaperWorksOnShardObjects) {
  Reshard(1);
  Table* t = Open("ttl");
  ASSERT_NE(t, nullptr);
  const Millis now = clock_.NowMillis();
  ASSERT_TRUE(t->Put("a", "x", "v", now + 10).ok());
  ASSERT_TRUE(t->Put("b", "x", "v").ok());
  clock_.Advance(10);
  absl::StatusOr<RadosReapStats> stats = store_->ReapExpired();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->rows_removed, 1u);
  EXPECT_EQ(stats->objects_removed, 0u);
  EXPECT_TRUE(store_->RawKeysForTesting("ttl", "a")->empty());
  ASSERT_TRUE(t->Delete("b", "x").ok());
  stats = store_->ReapExpired();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->objects_removed, 1u);
  EXPECT_FALSE(*store_->ObjectExistsForTesting("ttl", "b"));
}

// The shard count is fixed when a table is created: reopening with other options keeps the
// stored count and finds every row; a new table takes the new options; an override by table
// name wins over the profile's count.
TEST_F(RadosShardedTest, ReopenKeepsTheStoredShardCount) {
  store_.reset();
  RadosRowStoreOptions options = TestOptions(&clock_, prefix_, false, 4);
  options.delete_pools_on_close = false;
  options.table_shards["unsharded_live"] = 0;
  std::unique_ptr<RadosRowStore> first = OpenOrFail(options);
  ASSERT_NE(first, nullptr);
  absl::StatusOr<Table*> t = first->OpenTable(TableOptions{"rows", TableProfile::kLive});
  ASSERT_TRUE(t.ok());
  absl::StatusOr<Table*> plain =
      first->OpenTable(TableOptions{"unsharded_live", TableProfile::kLive});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*first->ShardsOf("rows"), 4u);
  EXPECT_EQ(*first->ShardsOf("unsharded_live"), 0u);
  for (int p = 0; p < 50; ++p) {
    ASSERT_TRUE((*t)->Put("p" + Pad(p), "k", "v" + std::to_string(p)).ok());
    ASSERT_TRUE((*plain)->Put("p" + Pad(p), "k", "v" + std::to_string(p)).ok());
  }
  first.reset();

  RadosRowStoreOptions other = TestOptions(&clock_, prefix_, false, 16);  // deletes the pools
  store_ = OpenOrFail(other);
  ASSERT_NE(store_, nullptr);
  Table* again = Open("rows");
  Table* plain_again = Open("unsharded_live");
  ASSERT_NE(again, nullptr);
  ASSERT_NE(plain_again, nullptr);
  EXPECT_EQ(*store_->ShardsOf("rows"), 4u);
  EXPECT_EQ(*store_->ShardsOf("unsharded_live"), 0u);
  for (int p = 0; p < 50; ++p) {
    EXPECT_EQ(again->Get("p" + Pad(p), "k").value_or("<missing>"), "v" + std::to_string(p));
    EXPECT_EQ(plain_again->Get("p" + Pad(p), "k").value_or("<missing>"),
              "v" + std::to_string(p));
  }
  ASSERT_NE(Open("fresh"), nullptr);
  EXPECT_EQ(*store_->ShardsOf("fresh"), 16u);
}

// The omap key report counts every object's keys across omap pages (1,500 keys in one
// shard object, binary keys included) and names the largest objects per table.
TEST_F(RadosShardedTest, CountOmapKeysListsEveryObjectOfThePools) {
  store_.reset();
  prefix_ = FreshPrefix();
  RadosRowStoreOptions options = TestOptions(&clock_, prefix_, false, 1);
  options.table_shards["plain"] = 0;
  store_ = OpenOrFail(options);
  ASSERT_NE(store_, nullptr);
  Table* sharded = Open("rows");
  Table* plain = Open("plain", TableProfile::kIndex);
  ASSERT_NE(sharded, nullptr);
  ASSERT_NE(plain, nullptr);
  for (int start = 0; start < 1500; start += 500) {
    WriteBatch batch;
    for (int i = start; i < start + 500; ++i) batch.Put("k" + Pad(i), "v");
    ASSERT_TRUE(sharded->Apply("a", batch).ok());
  }
  WriteBatch small;
  for (int i = 0; i < 20; ++i) small.Put(std::string("\0b", 2) + Pad(i), "v");
  ASSERT_TRUE(sharded->Apply(std::string("\0\xff", 2), small).ok());
  ASSERT_TRUE(plain->Put("x", "1", "v").ok());
  ASSERT_TRUE(plain->Put("x", "2", "v").ok());
  ASSERT_TRUE(plain->Put("x", "3", "v").ok());
  ASSERT_TRUE(plain->Put("y", "1", "v").ok());

  absl::StatusOr<RadosOmapReport> report = store_->CountOmapKeys(2);
  ASSERT_TRUE(report.ok()) << report.status();
  std::map<std::string, RadosOmapReport::TableKeys> tables;
  uint64_t objects = 0, keys = 0;
  for (const RadosOmapReport::TableKeys& t : report->tables) {
    tables[t.table] = t;
    objects += t.objects;
    keys += t.keys;
  }
  EXPECT_EQ(objects, report->objects);
  EXPECT_EQ(keys, report->keys);
  ASSERT_EQ(tables.count("rows"), 1u);
  EXPECT_EQ(tables["rows"].pool, store_->PoolName(TableProfile::kLive));
  EXPECT_EQ(tables["rows"].objects, 1u);
  EXPECT_EQ(tables["rows"].keys, 1520u);
  EXPECT_EQ(tables["rows"].max_keys, 1520u);
  ASSERT_EQ(tables.count("plain"), 1u);
  EXPECT_EQ(tables["plain"].pool, store_->PoolName(TableProfile::kIndex));
  EXPECT_EQ(tables["plain"].objects, 2u);
  EXPECT_EQ(tables["plain"].keys, 4u);
  EXPECT_EQ(tables["plain"].max_keys, 3u);
  ASSERT_EQ(report->largest.size(), 2u);
  EXPECT_EQ(report->largest[0].table, "rows");
  EXPECT_EQ(report->largest[0].keys, 1520u);
  EXPECT_LE(report->largest[1].keys, 1520u);
  EXPECT_EQ(report->histogram[4], 1u);  // 1,001..10,000 keys: the shard object
  uint64_t in_buckets = 0;
  for (uint64_t n : report->histogram) in_buckets += n;
  EXPECT_EQ(in_buckets, report->objects);
}

TEST(RadosRowStoreOpenTest, ShardCountsAreChecked) {
  RadosRowStoreOptions options;
  options.live_shards = 65537;
  EXPECT_TRUE(absl::IsInvalidArgument(RadosRowStore::Open(options).status()));
  options.live_shards = 1;
  options.table_shards["t"] = 100000;
  absl::Status s = RadosRowStore::Open(options).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("table_shards[t]"));
}

// A cluster that cannot be reached is a clear Unavailable naming the conf file, after the
// configured timeout rather than never.
TEST(RadosRowStoreOpenTest, UnreachableClusterIsUnavailable) {
  char path[] = "/tmp/strata-rados-conf-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream conf(path);
    // Port 9 (discard) on loopback: nothing listens there.
    conf << "[global]\nmon host = v2:127.0.0.1:9\nauth client required = none\n";
  }
  RadosRowStoreOptions options;
  options.ceph_conf = path;
  options.op_timeout_ms = 1000;
  options.reap_interval_ms = 0;
  absl::StatusOr<std::unique_ptr<RadosRowStore>> store = RadosRowStore::Open(options);
  unlink(path);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(absl::IsUnavailable(store.status())) << store.status();
  EXPECT_THAT(std::string(store.status().message()), ::testing::HasSubstr(path));
}

}  // namespace
}  // namespace strata::store
