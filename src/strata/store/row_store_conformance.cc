#include "strata/store/row_store_conformance.h"

#include <gmock/gmock.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <set>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace strata::store::testing {

RowStoreConformanceParam MakeRowStoreConformanceParam(std::string name, RowStoreFactory factory) {
  return RowStoreConformanceParam{std::move(name), std::move(factory)};
}

void RowStoreConformanceTest::SetUp() {
  store_ = GetParam().factory(&clock_);
  ASSERT_NE(store_, nullptr) << "factory returned no store";
}

void RowStoreConformanceTest::TearDown() { store_.reset(); }

Table* RowStoreConformanceTest::OpenTable(const std::string& name, TableProfile profile) {
  absl::StatusOr<Table*> table = store_->OpenTable(TableOptions{name, profile});
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? *table : nullptr;
}

namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

constexpr char kNotFound[] = "<not found>";

// The value of a row, kNotFound, or a description of the error.
std::string GetOr(Table* table, std::string_view partition, std::string_view clustering,
                  const ReadOptions& options = {}) {
  absl::StatusOr<std::string> value = table->Get(partition, clustering, options);
  if (value.ok()) return *value;
  if (absl::IsNotFound(value.status())) return kNotFound;
  return "<error " + value.status().ToString() + ">";
}

// Follows cursors to the end of a scan. Every page must respect the limit; a backend may end
// with one empty page (if it only learns there is no more data by looking).
std::vector<Row> ScanAll(Table* table, std::string_view partition, ScanOptions options,
                         const ReadOptions& read_options = {}, size_t* pages = nullptr) {
  std::vector<Row> rows;
  size_t page_count = 0;
  for (int guard = 0; guard < 100000; ++guard) {
    absl::StatusOr<ScanPage> page = table->Scan(partition, options, read_options);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) break;
    ++page_count;
    EXPECT_LE(page->rows.size(), options.limit);
    if (page->rows.empty()) {
      EXPECT_TRUE(page->next_cursor.empty()) << "an empty page must end the scan";
    }
    for (Row& row : page->rows) rows.push_back(std::move(row));
    if (page->next_cursor.empty()) break;
    options.cursor = page->next_cursor;
  }
  if (pages != nullptr) *pages = page_count;
  return rows;
}

std::vector<std::string> Keys(const std::vector<Row>& rows) {
  std::vector<std::string> keys;
  for (const Row& row : rows) keys.push_back(row.clustering);
  return keys;
}

std::vector<std::string> ScanKeys(Table* table, std::string_view partition,
                                  ScanOptions options = {}, const ReadOptions& read = {}) {
  return Keys(ScanAll(table, partition, std::move(options), read));
}

using FlatRow = std::tuple<std::string, std::string, std::string>;  // partition, key, value

// Every row of a full-table scan of one range, following cursors.
std::vector<FlatRow> ScanRangeAll(Table* table, const KeyRange& range, size_t limit,
                                  const ReadOptions& options = {}) {
  std::vector<FlatRow> rows;
  std::string cursor;
  for (int guard = 0; guard < 100000; ++guard) {
    absl::StatusOr<TableScanPage> page = table->ScanRange(range, limit, cursor, options);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) break;
    EXPECT_LE(page->rows.size(), limit);
    for (TableRow& row : page->rows) {
      rows.emplace_back(std::move(row.partition), std::move(row.clustering),
                        std::move(row.value));
    }
    if (page->next_cursor.empty()) break;
    cursor = page->next_cursor;
  }
  return rows;
}

std::vector<FlatRow> ScanWholeTable(Table* table, const ReadOptions& options = {}) {
  absl::StatusOr<std::vector<KeyRange>> ranges = table->SplitRanges(1);
  EXPECT_TRUE(ranges.ok()) << ranges.status();
  std::vector<FlatRow> rows;
  if (!ranges.ok()) return rows;
  for (const KeyRange& range : *ranges) {
    for (FlatRow& row : ScanRangeAll(table, range, kMaxPageRows, options)) {
      rows.push_back(std::move(row));
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

std::string Pad(int i, int width = 5) {
  std::string s = std::to_string(i);
  return std::string(width > static_cast<int>(s.size()) ? width - s.size() : 0, '0') + s;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Point operations

TEST_P(RowStoreConformanceTest, PutGetDelete) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->Put("p", "k", "v1").ok());
  EXPECT_EQ(GetOr(t, "p", "k"), "v1");
  ASSERT_TRUE(t->Put("p", "k", "v2").ok());
  EXPECT_EQ(GetOr(t, "p", "k"), "v2");
  ASSERT_TRUE(t->Delete("p", "k").ok());
  EXPECT_EQ(GetOr(t, "p", "k"), kNotFound);
  // Deleting an absent row is OK, and a deleted row can be written again.
  EXPECT_TRUE(t->Delete("p", "k").ok());
  EXPECT_TRUE(t->Delete("never", "written").ok());
  ASSERT_TRUE(t->Put("p", "k", "v3").ok());
  EXPECT_EQ(GetOr(t, "p", "k"), "v3");
}

TEST_P(RowStoreConformanceTest, AbsentRowsAreNotFound) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  absl::StatusOr<std::string> missing = t->Get("p", "k");
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  ASSERT_TRUE(t->Put("p", "k", "v").ok());
  EXPECT_EQ(GetOr(t, "p", "k2"), kNotFound);
  EXPECT_EQ(GetOr(t, "p2", "k"), kNotFound);
  EXPECT_EQ(GetOr(t, "", "k"), kNotFound);
  EXPECT_EQ(GetOr(t, "p", ""), kNotFound);
  EXPECT_EQ(GetOr(t, "p", std::string("k\0", 2)), kNotFound);
}

TEST_P(RowStoreConformanceTest, MultiGetReadsRowsOfManyPartitions) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  // Enough partitions that a sharded backend puts several in one object.
  for (int p = 0; p < 40; ++p) {
    ASSERT_TRUE(t->Put("p" + Pad(p), "k1", "v" + Pad(p)).ok());
    ASSERT_TRUE(t->Put("p" + Pad(p), "k2", "w" + Pad(p)).ok());
  }
  const Millis now = clock_.NowMillis();
  ASSERT_TRUE(t->Put("p00007", "short", "lived", now + 10).ok());
  clock_.Advance(10);  // "short" has expired
  std::vector<std::string> partitions, clusterings;
  std::vector<std::string> expected;
  for (int p = 0; p < 40; p += 3) {
    partitions.push_back("p" + Pad(p));
    clusterings.push_back(p % 2 == 0 ? "k1" : "k2");
    expected.push_back((p % 2 == 0 ? "v" : "w") + Pad(p));
  }
  // Absent rows of present and absent partitions, an expired row, and a repeated key.
  for (auto [partition, clustering] :
       {std::pair<const char*, const char*>{"p00001", "k3"}, {"nowhere", "k1"},
        {"p00007", "short"}, {"p00003", "k2"}}) {
    partitions.push_back(partition);
    clusterings.push_back(clustering);
    expected.push_back(std::string(partition) == "p00003" ? "w00003" : kNotFound);
  }
  std::vector<RowKey> keys;
  for (size_t i = 0; i < partitions.size(); ++i) keys.push_back({partitions[i], clusterings[i]});
  std::vector<absl::StatusOr<std::string>> got = t->MultiGet(keys);
  ASSERT_EQ(got.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (expected[i] == kNotFound) {
      EXPECT_TRUE(absl::IsNotFound(got[i].status()))
          << partitions[i] << "/" << clusterings[i] << ": " << got[i].status();
    } else {
      ASSERT_TRUE(got[i].ok()) << partitions[i] << "/" << clusterings[i] << ": " << got[i].status();
      EXPECT_EQ(*got[i], expected[i]) << partitions[i] << "/" << clusterings[i];
    }
  }
  EXPECT_TRUE(t->MultiGet({}).empty());
}

// What MultiGet shares with Get: key order, repeats, binary keys, empty values, expiry,
// snapshots and argument checks.
TEST_P(RowStoreConformanceTest, MultiGetAnswersAsGetInKeyOrder) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  const Millis now = clock_.NowMillis();
  ASSERT_TRUE(t->Put("p", "b", "B").ok());
  ASSERT_TRUE(t->Put("p", "a", "A").ok());
  ASSERT_TRUE(t->Put("p", "e", "E", now + 1000).ok());
  ASSERT_TRUE(t->Put("p", std::string("\0z", 2), std::string("\0", 1)).ok());
  ASSERT_TRUE(t->Put("q", "c", "other partition").ok());
  ASSERT_TRUE(t->Put("p", "d", "").ok());
  // Unsorted, repeated and absent keys, an empty value, binary bytes, a key of another
  // partition, a row about to expire.
  const std::vector<std::string> keys = {"b", "c", "a", "b", std::string("\0z", 2), "d", "e", ""};
  auto in_p = [](const std::vector<std::string>& clusterings) {
    std::vector<RowKey> out;
    for (const std::string& c : clusterings) out.push_back({"p", c});
    return out;
  };
  auto read = [&] {
    std::vector<std::string> got;
    for (const absl::StatusOr<std::string>& r : t->MultiGet(in_p(keys))) {
      got.push_back(r.ok() ? *r : absl::IsNotFound(r.status()) ? kNotFound : r.status().ToString());
    }
    return got;
  };
  EXPECT_THAT(read(),
              ElementsAre("B", kNotFound, "A", "B", std::string("\0", 1), "", "E", kNotFound));
  clock_.Advance(1000);  // e expires
  EXPECT_THAT(read(), ElementsAre("B", kNotFound, "A", "B", std::string("\0", 1), "", kNotFound,
                                  kNotFound));
  // A snapshot applies to every key.
  absl::StatusOr<std::unique_ptr<Snapshot>> snapshot = store_->NewSnapshot();
  if (snapshot.ok()) {
    ReadOptions at;
    at.snapshot = snapshot->get();
    ASSERT_TRUE(t->Put("p", "a", "A2").ok());
    ASSERT_TRUE(t->Delete("p", "b").ok());
    const std::vector<std::string> two = {"a", "b"};
    std::vector<absl::StatusOr<std::string>> old = t->MultiGet(in_p(two), at);
    ASSERT_EQ(old.size(), 2u);
    ASSERT_TRUE(old[0].ok() && old[1].ok());
    EXPECT_EQ(*old[0], "A");
    EXPECT_EQ(*old[1], "B");
    std::vector<absl::StatusOr<std::string>> now_rows = t->MultiGet(in_p(two));
    ASSERT_TRUE(now_rows[0].ok());
    EXPECT_EQ(*now_rows[0], "A2");
    EXPECT_TRUE(absl::IsNotFound(now_rows[1].status()));
  }
  // An invalid key answers InvalidArgument, as Get would.
  const std::vector<std::string> too_long = {"a", std::string(kMaxClusteringKeySize + 1, 'k')};
  std::vector<absl::StatusOr<std::string>> bad = t->MultiGet(in_p(too_long));
  ASSERT_EQ(bad.size(), 2u);
  EXPECT_TRUE(absl::IsInvalidArgument(bad[1].status())) << bad[1].status();
}

TEST_P(RowStoreConformanceTest, BinaryAndEmptyKeysAndValues) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  const std::string binary_partition("\x00\xff\x01", 3);
  const std::string binary_key("\xff\x00\x80", 3);
  const std::string binary_value("\x00\x01\xff\x00", 4);
  const std::string big_value(1 << 20, 'x');
  ASSERT_TRUE(t->Put(binary_partition, binary_key, binary_value).ok());
  ASSERT_TRUE(t->Put(binary_partition, "", "empty key").ok());
  ASSERT_TRUE(t->Put("", "k", "").ok());
  ASSERT_TRUE(t->Put("big", "k", big_value).ok());
  EXPECT_EQ(GetOr(t, binary_partition, binary_key), binary_value);
  EXPECT_EQ(GetOr(t, binary_partition, ""), "empty key");
  EXPECT_EQ(GetOr(t, "", "k"), "");
  EXPECT_EQ(GetOr(t, "big", "k"), big_value);
  // Clustering order is unsigned byte-wise: "" < "\xff\x00\x80".
  EXPECT_THAT(ScanKeys(t, binary_partition), ElementsAre("", binary_key));
}

TEST_P(RowStoreConformanceTest, KeySizeLimits) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  const std::string p_max(kMaxPartitionKeySize, 'p');
  const std::string p_over(kMaxPartitionKeySize + 1, 'p');
  const std::string c_max(kMaxClusteringKeySize, 'c');
  const std::string c_over(kMaxClusteringKeySize + 1, 'c');
  auto invalid = [](const absl::Status& s) { return absl::IsInvalidArgument(s); };

  ASSERT_TRUE(t->Put(p_max, c_max, "v").ok());
  EXPECT_EQ(GetOr(t, p_max, c_max), "v");
  std::vector<Row> rows = ScanAll(t, p_max, {});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].clustering, c_max);

  EXPECT_TRUE(invalid(t->Put(p_over, "k", "v")));
  EXPECT_TRUE(invalid(t->Put("p", c_over, "v")));
  EXPECT_TRUE(invalid(t->Get(p_over, "k").status()));
  EXPECT_TRUE(invalid(t->Get("p", c_over).status()));
  EXPECT_TRUE(invalid(t->Delete(p_over, "k")));
  EXPECT_TRUE(invalid(t->Delete("p", c_over)));
  EXPECT_TRUE(invalid(t->DeleteRange(p_over, "", "")));
  EXPECT_TRUE(invalid(t->DeleteRange("p", c_over, "")));
  EXPECT_TRUE(invalid(t->DeleteRange("p", "", c_over)));
  EXPECT_TRUE(invalid(t->Scan(p_over, {}).status()));
  ScanOptions long_start;
  long_start.start = c_over;
  EXPECT_TRUE(invalid(t->Scan("p", long_start).status()));
  ScanOptions long_end;
  long_end.end = c_over;
  EXPECT_TRUE(invalid(t->Scan("p", long_end).status()));

  WriteBatch batch;
  batch.Put("ok", "v");
  EXPECT_TRUE(invalid(t->Apply(p_over, batch)));
  batch.PutIfNewer(c_over, 1, "v");
  EXPECT_TRUE(invalid(t->Apply("p", batch)));
  EXPECT_EQ(GetOr(t, "p", "ok"), kNotFound) << "a rejected batch must apply nothing";

  std::vector<PartitionWrite> writes;
  writes.push_back(PartitionWrite{t, p_over, WriteBatch()});
  writes.back().batch.Put("k", "v");
  EXPECT_TRUE(invalid(store_->Write(writes)));
  EXPECT_EQ(GetOr(t, p_max, c_max), "v");
}

TEST_P(RowStoreConformanceTest, TablesAreNamedAndIsolated) {
  Table* a = OpenTable("table_a");
  Table* b = OpenTable("table_b", TableProfile::kIndex);
  Table* c = OpenTable("table_c", TableProfile::kCompressed);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  EXPECT_NE(a, b);
  EXPECT_EQ(a->name(), "table_a");
  EXPECT_EQ(c->name(), "table_c");
  EXPECT_EQ(OpenTable("table_a"), a) << "same name, same pointer";

  for (const std::string& bad :
       {std::string(""), std::string("Upper"), std::string("a-b"), std::string("a b"),
        std::string("a.b"), std::string(129, 'a')}) {
    absl::StatusOr<Table*> t = store_->OpenTable(TableOptions{bad, TableProfile::kLive});
    EXPECT_TRUE(absl::IsInvalidArgument(t.status())) << "name '" << bad << "'";
  }

  ASSERT_TRUE(a->Put("p", "k", "in a").ok());
  ASSERT_TRUE(b->Put("p", "k", "in b").ok());
  EXPECT_EQ(GetOr(a, "p", "k"), "in a");
  EXPECT_EQ(GetOr(b, "p", "k"), "in b");
  EXPECT_EQ(GetOr(c, "p", "k"), kNotFound);
  ASSERT_TRUE(a->DeleteRange("p", "", "").ok());
  EXPECT_EQ(GetOr(a, "p", "k"), kNotFound);
  EXPECT_EQ(GetOr(b, "p", "k"), "in b");
  EXPECT_EQ(ScanWholeTable(c).size(), 0u);
}

// ---------------------------------------------------------------------------------------
// Scans

TEST_P(RowStoreConformanceTest, ScanForwardAndReverse) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  for (const char* k : {"d", "b", "a", "e", "c"}) ASSERT_TRUE(t->Put("p", k, "v").ok());
  ASSERT_TRUE(t->Put("p", "", "empty").ok());
  ASSERT_TRUE(t->Put("p", "\xff", "high").ok());
  EXPECT_THAT(ScanKeys(t, "p"), ElementsAre("", "a", "b", "c", "d", "e", "\xff"));
  ScanOptions reverse;
  reverse.reverse = true;
  EXPECT_THAT(ScanKeys(t, "p", reverse), ElementsAre("\xff", "e", "d", "c", "b", "a", ""));

  std::vector<Row> rows = ScanAll(t, "p", {});
  ASSERT_EQ(rows.size(), 7u);
  EXPECT_EQ(rows[0].value, "empty");
  EXPECT_EQ(rows[6].value, "high");

  absl::StatusOr<ScanPage> empty = t->Scan("no_such_partition", {});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->rows.empty());
  EXPECT_TRUE(empty->next_cursor.empty());
}

TEST_P(RowStoreConformanceTest, ScanBounds) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  for (const char* k : {"a", "b", "c", "d", "e"}) ASSERT_TRUE(t->Put("p", k, k).ok());
  auto scan = [&](std::string start, std::string end, bool reverse) {
    ScanOptions o;
    o.start = std::move(start);
    o.end = std::move(end);
    o.reverse = reverse;
    return ScanKeys(t, "p", o);
  };
  EXPECT_THAT(scan("b", "d", false), ElementsAre("b", "c"));
  EXPECT_THAT(scan("b", "d", true), ElementsAre("c", "b"));
  EXPECT_THAT(scan("b", "", false), ElementsAre("b", "c", "d", "e"));
  EXPECT_THAT(scan("b", "", true), ElementsAre("e", "d", "c", "b"));
  EXPECT_THAT(scan("", "c", false), ElementsAre("a", "b"));
  EXPECT_THAT(scan("", "c", true), ElementsAre("b", "a"));
  EXPECT_THAT(scan("bb", "dd", false), ElementsAre("c", "d"));
  EXPECT_THAT(scan("bb", "dd", true), ElementsAre("d", "c"));
  EXPECT_THAT(scan("c", "c", false), ElementsAre());
  EXPECT_THAT(scan("d", "b", false), ElementsAre());
  EXPECT_THAT(scan("d", "b", true), ElementsAre());
  EXPECT_THAT(scan("f", "", false), ElementsAre());
  EXPECT_THAT(scan("", "a", true), ElementsAre());
}

TEST_P(RowStoreConformanceTest, ScanPaginationWithCursor) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  std::vector<std::string> all;
  for (int i = 0; i < 10; ++i) {
    all.push_back("k" + Pad(i, 2));
    ASSERT_TRUE(t->Put("p", all.back(), "v" + std::to_string(i)).ok());
  }
  ScanOptions forward;
  forward.limit = 3;
  size_t pages = 0;
  std::vector<Row> rows = ScanAll(t, "p", forward, {}, &pages);
  EXPECT_THAT(Keys(rows), ElementsAreArray(all));
  EXPECT_GE(pages, 4u);
  EXPECT_LE(pages, 5u);
  EXPECT_EQ(rows[7].value, "v7");

  ScanOptions reverse = forward;
  reverse.reverse = true;
  std::vector<std::string> reversed(all.rbegin(), all.rend());
  EXPECT_THAT(ScanKeys(t, "p", reverse), ElementsAreArray(reversed));

  ScanOptions bounded;
  bounded.start = "k02";
  bounded.end = "k08";
  bounded.limit = 4;
  EXPECT_THAT(ScanKeys(t, "p", bounded), ElementsAre("k02", "k03", "k04", "k05", "k06", "k07"));
  bounded.reverse = true;
  EXPECT_THAT(ScanKeys(t, "p", bounded), ElementsAre("k07", "k06", "k05", "k04", "k03", "k02"));

  // The first page is full and says there is more.
  absl::StatusOr<ScanPage> first = t->Scan("p", forward);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(Keys(first->rows), ElementsAre("k00", "k01", "k02"));
  ASSERT_FALSE(first->next_cursor.empty());

  // A cursor resumes after the last row returned, whatever changed in between.
  ASSERT_TRUE(t->Put("p", "k025", "new").ok());
  ASSERT_TRUE(t->Delete("p", "k03").ok());
  ASSERT_TRUE(t->Put("p", "k015", "behind the cursor").ok());
  ScanOptions next = forward;
  next.cursor = first->next_cursor;
  absl::StatusOr<ScanPage> second = t->Scan("p", next);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_THAT(Keys(second->rows), ElementsAre("k025", "k04", "k05"));

  // Same in reverse.
  absl::StatusOr<ScanPage> last = t->Scan("p", reverse);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_THAT(Keys(last->rows), ElementsAre("k09", "k08", "k07"));
  ASSERT_FALSE(last->next_cursor.empty());
  ASSERT_TRUE(t->Put("p", "k065", "new").ok());
  ASSERT_TRUE(t->Put("p", "k075", "behind the cursor").ok());
  ScanOptions prev = reverse;
  prev.cursor = last->next_cursor;
  absl::StatusOr<ScanPage> before = t->Scan("p", prev);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_THAT(Keys(before->rows), ElementsAre("k065", "k06", "k05"));
}

TEST_P(RowStoreConformanceTest, ScanPageCapAndLimitValidation) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  constexpr int kRows = 1500;
  for (int start = 0; start < kRows; start += 500) {
    WriteBatch batch;
    for (int i = start; i < start + 500; ++i) batch.Put("k" + Pad(i), "v" + std::to_string(i));
    ASSERT_TRUE(t->Apply("p", batch).ok());
  }
  absl::StatusOr<ScanPage> page = t->Scan("p", {});  // default limit = kMaxPageRows
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->rows.size(), kMaxPageRows);
  EXPECT_FALSE(page->next_cursor.empty());
  EXPECT_EQ(ScanAll(t, "p", {}).size(), static_cast<size_t>(kRows));

  ScanOptions zero;
  zero.limit = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(t->Scan("p", zero).status()));
  ScanOptions too_many;
  too_many.limit = kMaxPageRows + 1;
  EXPECT_TRUE(absl::IsInvalidArgument(t->Scan("p", too_many).status()));

  absl::StatusOr<std::vector<KeyRange>> ranges = t->SplitRanges(1);
  ASSERT_TRUE(ranges.ok()) << ranges.status();
  ASSERT_FALSE(ranges->empty());
  EXPECT_TRUE(absl::IsInvalidArgument(t->ScanRange(ranges->front(), 0, "").status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(t->ScanRange(ranges->front(), kMaxPageRows + 1, "").status()));
  absl::StatusOr<TableScanPage> table_page = t->ScanRange(ranges->front(), kMaxPageRows, "");
  ASSERT_TRUE(table_page.ok()) << table_page.status();
  EXPECT_LE(table_page->rows.size(), kMaxPageRows);
  EXPECT_FALSE(table_page->next_cursor.empty());
}

// ---------------------------------------------------------------------------------------
// Range deletes and partition isolation

TEST_P(RowStoreConformanceTest, DeleteRangeBounded) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  for (const char* k : {"a", "b", "c", "d", "e", "f", "g", "h"}) {
    ASSERT_TRUE(t->Put("p", k, "v").ok());
    ASSERT_TRUE(t->Put("q", k, "v").ok());
  }
  ASSERT_TRUE(t->DeleteRange("p", "c", "f").ok());
  EXPECT_THAT(ScanKeys(t, "p"), ElementsAre("a", "b", "f", "g", "h"));
  ASSERT_TRUE(t->DeleteRange("p", "", "b").ok());
  EXPECT_THAT(ScanKeys(t, "p"), ElementsAre("b", "f", "g", "h"));
  ASSERT_TRUE(t->DeleteRange("p", "ff", "gg").ok());
  EXPECT_THAT(ScanKeys(t, "p"), ElementsAre("b", "f", "h"));
  // start >= end deletes nothing.
  EXPECT_TRUE(t->DeleteRange("p", "h", "b").ok());
  EXPECT_TRUE(t->DeleteRange("p", "f", "f").ok());
  EXPECT_THAT(ScanKeys(t, "p"), ElementsAre("b", "f", "h"));
  EXPECT_EQ(ScanKeys(t, "q").size(), 8u) << "the neighbouring partition is untouched";
}

TEST_P(RowStoreConformanceTest, DeleteRangeOpenEndedAndWholePartition) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  for (const char* k : {"", "a", "b", "c", "\xff", "\xff\xff"}) {
    ASSERT_TRUE(t->Put("p", k, "v").ok());
    ASSERT_TRUE(t->Put("q", k, "v").ok());
  }
  ASSERT_TRUE(t->DeleteRange("p", "b", "").ok());
  EXPECT_THAT(ScanKeys(t, "p"), ElementsAre("", "a"));
  ASSERT_TRUE(t->DeleteRange("p", "", "").ok());
  EXPECT_THAT(ScanKeys(t, "p"), ElementsAre());
  EXPECT_EQ(GetOr(t, "p", ""), kNotFound);
  EXPECT_EQ(ScanKeys(t, "q").size(), 6u);
  // The partition can be written again after being deleted.
  ASSERT_TRUE(t->Put("p", "a", "again").ok());
  EXPECT_EQ(GetOr(t, "p", "a"), "again");
  // Whole-partition delete through a batch.
  WriteBatch batch;
  batch.DeleteRange("", "");
  ASSERT_TRUE(t->Apply("q", batch).ok());
  EXPECT_THAT(ScanKeys(t, "q"), ElementsAre());
  EXPECT_THAT(ScanKeys(t, "p"), ElementsAre("a"));
}

TEST_P(RowStoreConformanceTest, PartitionsAreIsolatedEvenWithPrefixKeys) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  const std::vector<std::string> partitions = {
      "", "a", std::string("a\0", 2), "a\x01", "a\xff", "ab", "abc", "b", "\xff", "\xff\xff"};
  const std::vector<std::string> keys = {"", "a", "bc", "m", "\xff", "\xff\xff"};
  for (const std::string& p : partitions) {
    for (const std::string& k : keys) ASSERT_TRUE(t->Put(p, k, p + "|" + k).ok());
  }
  // "a"+"bc" and "ab"+"c" must not collide.
  ASSERT_TRUE(t->Put("ab", "c", "ab|c").ok());
  EXPECT_EQ(GetOr(t, "a", "bc"), "a|bc");
  EXPECT_EQ(GetOr(t, "ab", "c"), "ab|c");
  ASSERT_TRUE(t->Delete("ab", "c").ok());
  EXPECT_EQ(GetOr(t, "a", "bc"), "a|bc");

  ScanOptions reverse;
  reverse.reverse = true;
  std::vector<std::string> reversed(keys.rbegin(), keys.rend());
  for (const std::string& p : partitions) {
    std::vector<Row> rows = ScanAll(t, p, {});
    EXPECT_THAT(Keys(rows), ElementsAreArray(keys)) << "partition '" << p << "'";
    for (const Row& row : rows) EXPECT_EQ(row.value, p + "|" + row.clustering);
    EXPECT_THAT(ScanKeys(t, p, reverse), ElementsAreArray(reversed)) << "partition '" << p << "'";
  }

  // Range deletes stay inside their partition.
  ASSERT_TRUE(t->DeleteRange("a", "", "").ok());
  ASSERT_TRUE(t->DeleteRange("", "b", "").ok());
  ASSERT_TRUE(t->DeleteRange("\xff", "\xff", "").ok());
  for (const std::string& p : partitions) {
    std::vector<std::string> expected = keys;
    if (p == "a") expected.clear();
    if (p == "") expected = {"", "a"};
    if (p == "\xff") expected = {"", "a", "bc", "m"};
    EXPECT_THAT(ScanKeys(t, p), ElementsAreArray(expected)) << "partition '" << p << "'";
  }
  // Full-table scans see every partition's remaining rows.
  EXPECT_EQ(ScanWholeTable(t).size(), keys.size() * (partitions.size() - 1) - 4 - 2);
}

// ---------------------------------------------------------------------------------------
// Batches and PutIfNewer

TEST_P(RowStoreConformanceTest, ApplyIsAtomicAndOrdered) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->Put("p", "z", "old").ok());
  WriteBatch batch;
  batch.Put("a", "1");
  batch.Put("b", "2");
  batch.Delete("a");
  batch.Put("c", "3");
  batch.DeleteRange("b", "c");  // removes b
  batch.Put("d", "4");
  batch.Put("c", "33");
  batch.PutIfNewer("e", 7, "e7");
  batch.DeleteRange("y", "");  // removes z
  batch.Put("zz", "after the range delete");
  ASSERT_TRUE(t->Apply("p", batch).ok());
  EXPECT_EQ(GetOr(t, "p", "a"), kNotFound);
  EXPECT_EQ(GetOr(t, "p", "b"), kNotFound);
  EXPECT_EQ(GetOr(t, "p", "c"), "33");
  EXPECT_EQ(GetOr(t, "p", "d"), "4");
  EXPECT_EQ(GetOr(t, "p", "e"), "e7");
  EXPECT_EQ(GetOr(t, "p", "z"), kNotFound);
  EXPECT_EQ(GetOr(t, "p", "zz"), "after the range delete");
  EXPECT_THAT(ScanKeys(t, "p"), ElementsAre("c", "d", "e", "zz"));

  // Without range deletes, out of key order, keys written more than once: a key's last op
  // wins whatever the others around it (the RocksDB store applies them in key order).
  WriteBatch mixed;
  mixed.Put("m", "1");
  mixed.Put("k", "1");
  mixed.Delete("m");
  mixed.Put("l", "1");
  mixed.Put("k", "2");
  mixed.Delete("l");
  mixed.Put("m", "3");
  mixed.PutIfNewer("n", 2, "n2");
  mixed.PutIfNewer("n", 1, "n1");
  mixed.Put("j", "x");
  mixed.Delete("j");
  ASSERT_TRUE(t->Apply("q", mixed).ok());
  EXPECT_EQ(GetOr(t, "q", "k"), "2");
  EXPECT_EQ(GetOr(t, "q", "l"), kNotFound);
  EXPECT_EQ(GetOr(t, "q", "m"), "3");
  EXPECT_EQ(GetOr(t, "q", "n"), "n2");
  EXPECT_EQ(GetOr(t, "q", "j"), kNotFound);
  EXPECT_THAT(ScanKeys(t, "q"), ElementsAre("k", "m", "n"));

  EXPECT_TRUE(t->Apply("p", WriteBatch()).ok());

  WriteBatch bad;
  bad.Put("x", "1");
  bad.DeleteRange("", "");
  bad.Put(std::string(kMaxClusteringKeySize + 1, 'k'), "too long");
  EXPECT_TRUE(absl::IsInvalidArgument(t->Apply("p", bad)));
  EXPECT_EQ(GetOr(t, "p", "x"), kNotFound);
  EXPECT_THAT(ScanKeys(t, "p"), ElementsAre("c", "d", "e", "zz")) << "nothing applied";
}

TEST_P(RowStoreConformanceTest, PutIfNewerKeepsHighestVersionInAnyOrder) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  std::vector<uint64_t> versions = {1, 2, 3, 10};
  int row = 0;
  do {
    const std::string key = "k" + std::to_string(row++);
    for (uint64_t v : versions) {
      WriteBatch batch;
      batch.PutIfNewer(key, v, "v" + std::to_string(v));
      ASSERT_TRUE(t->Apply("separate", batch).ok());
    }
    WriteBatch together;
    for (uint64_t v : versions) together.PutIfNewer(key, v, "v" + std::to_string(v));
    ASSERT_TRUE(t->Apply("one_batch", together).ok());
    std::vector<PartitionWrite> writes;
    for (uint64_t v : versions) {
      writes.push_back(PartitionWrite{t, "via_write", WriteBatch()});
      writes.back().batch.PutIfNewer(key, v, "v" + std::to_string(v));
    }
    ASSERT_TRUE(store_->Write(writes).ok());
    EXPECT_EQ(GetOr(t, "separate", key), "v10");
    EXPECT_EQ(GetOr(t, "one_batch", key), "v10");
    EXPECT_EQ(GetOr(t, "via_write", key), "v10");
  } while (std::next_permutation(versions.begin(), versions.end()));
  EXPECT_EQ(row, 24);
  // Scans and full-table scans see the winners too.
  for (const Row& r : ScanAll(t, "separate", {})) EXPECT_EQ(r.value, "v10");
  for (const FlatRow& r : ScanWholeTable(t)) EXPECT_EQ(std::get<2>(r), "v10");
}

// Versions are event times in milliseconds: bytes of 0x80 and above appear in them. A
// backend that compares encoded versions must compare them as unsigned numbers (an omap_cmp
// on bytes compared as signed chars once let an older event overwrite a newer one).
TEST_P(RowStoreConformanceTest, PutIfNewerComparesLargeVersionsAsNumbers) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  const uint64_t base = 1'795'684'724'000;  // a time in 2026, in milliseconds
  const std::vector<std::pair<uint64_t, uint64_t>> newer_older = {
      {base + 0x90, base + 0x10},       {base + 0xff, base + 0x7f},
      {base + 0x8000, base + 0x7fff},   {0xff00000000000000ull, 0x7f00000000000000ull},
      {base + 9000, base + 1000},       {0x8000000000000000ull, 1},
  };
  int i = 0;
  for (const auto& [newer, older] : newer_older) {
    const std::string key = "k" + std::to_string(i++);
    for (const std::string partition : {"newer_first", "older_first"}) {
      std::vector<uint64_t> order = {newer, older};
      if (partition == "older_first") std::swap(order[0], order[1]);
      for (uint64_t v : order) {
        WriteBatch batch;
        batch.PutIfNewer(key, v, "v" + std::to_string(v));
        ASSERT_TRUE(t->Apply(partition, batch).ok());
      }
      EXPECT_EQ(GetOr(t, partition, key), "v" + std::to_string(newer))
          << partition << ": newer " << newer << ", older " << older;
    }
  }
}

// One Write over many partitions (a sharded backend combines those of one object into one
// operation) where some PutIfNewer rows lose to stored ones and others win or are new.
TEST_P(RowStoreConformanceTest, PutIfNewerOverManyPartitionsInOneWrite) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  std::vector<PartitionWrite> first;
  for (int p = 0; p < 40; ++p) {
    first.push_back(PartitionWrite{t, "p" + Pad(p), WriteBatch()});
    first.back().batch.PutIfNewer("k", 10, "v10");
  }
  ASSERT_TRUE(store_->Write(first).ok());
  std::vector<PartitionWrite> second;
  for (int p = 0; p < 40; ++p) {
    second.push_back(PartitionWrite{t, "p" + Pad(p), WriteBatch()});
    const uint64_t v = p % 3 == 0 ? 20 : 5;  // every third wins, the others lose
    second.back().batch.PutIfNewer("k", v, "v" + std::to_string(v));
    second.back().batch.PutIfNewer("new", v, "n" + std::to_string(v));
  }
  ASSERT_TRUE(store_->Write(second).ok());
  for (int p = 0; p < 40; ++p) {
    const std::string partition = "p" + Pad(p);
    EXPECT_EQ(GetOr(t, partition, "k"), p % 3 == 0 ? "v20" : "v10") << partition;
    EXPECT_EQ(GetOr(t, partition, "new"), p % 3 == 0 ? "n20" : "n5") << partition;
  }
  // All of them losing: nothing changes.
  for (PartitionWrite& w : second) {
    w.batch = WriteBatch();
    w.batch.PutIfNewer("k", 1, "v1");
  }
  ASSERT_TRUE(store_->Write(second).ok());
  for (int p = 0; p < 40; ++p) {
    EXPECT_EQ(GetOr(t, "p" + Pad(p), "k"), p % 3 == 0 ? "v20" : "v10");
  }
}

TEST_P(RowStoreConformanceTest, PutIfNewerWithDeletesAndTies) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  auto put = [&](const std::string& key, uint64_t version, const std::string& value) {
    WriteBatch batch;
    batch.PutIfNewer(key, version, value);
    return t->Apply("p", batch);
  };
  // Ties: either tied value.
  ASSERT_TRUE(put("tie", 5, "a").ok());
  ASSERT_TRUE(put("tie", 5, "b").ok());
  EXPECT_THAT(GetOr(t, "p", "tie"), ::testing::AnyOf("a", "b"));
  ASSERT_TRUE(put("tie", 4, "lower").ok());
  EXPECT_THAT(GetOr(t, "p", "tie"), ::testing::AnyOf("a", "b"));
  ASSERT_TRUE(put("tie", 6, "c").ok());
  EXPECT_EQ(GetOr(t, "p", "tie"), "c");

  // A delete resets the row: any version may write it afterwards.
  ASSERT_TRUE(put("del", 5, "five").ok());
  ASSERT_TRUE(t->Delete("p", "del").ok());
  EXPECT_EQ(GetOr(t, "p", "del"), kNotFound);
  ASSERT_TRUE(put("del", 1, "one").ok());
  EXPECT_EQ(GetOr(t, "p", "del"), "one");
  ASSERT_TRUE(put("del", 0, "zero").ok());
  EXPECT_EQ(GetOr(t, "p", "del"), "one");
  ASSERT_TRUE(put("del", 3, "three").ok());
  ASSERT_TRUE(t->Delete("p", "del").ok());
  EXPECT_EQ(GetOr(t, "p", "del"), kNotFound);

  // Range deletes reset too.
  ASSERT_TRUE(put("range", 9, "nine").ok());
  ASSERT_TRUE(t->DeleteRange("p", "r", "s").ok());
  ASSERT_TRUE(put("range", 2, "two").ok());
  EXPECT_EQ(GetOr(t, "p", "range"), "two");

  // Interleaved inside one batch.
  WriteBatch batch;
  batch.PutIfNewer("mixed", 8, "eight");
  batch.PutIfNewer("mixed", 2, "two");
  batch.Delete("mixed");
  batch.PutIfNewer("mixed", 4, "four");
  batch.PutIfNewer("mixed", 3, "three");
  ASSERT_TRUE(t->Apply("p", batch).ok());
  EXPECT_EQ(GetOr(t, "p", "mixed"), "four");
}

// ---------------------------------------------------------------------------------------
// Expiry

TEST_P(RowStoreConformanceTest, ExpiryHidesRowsFromEveryRead) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  const Millis now = clock_.NowMillis();
  ASSERT_TRUE(t->Put("p", "a", "A", now + 1000).ok());
  ASSERT_TRUE(t->Put("p", "b", "B").ok());
  ASSERT_TRUE(t->Put("p", "c", "C", now + 2000).ok());
  ASSERT_TRUE(t->Put("p", "past", "P", now).ok());  // expiry <= now: invisible at once
  WriteBatch batch;
  batch.Put("d", "D", now + 1000);
  ASSERT_TRUE(t->Apply("q", batch).ok());

  EXPECT_EQ(GetOr(t, "p", "past"), kNotFound);
  EXPECT_EQ(GetOr(t, "p", "a"), "A");
  EXPECT_THAT(ScanKeys(t, "p"), ElementsAre("a", "b", "c"));
  EXPECT_EQ(ScanWholeTable(t).size(), 4u);

  clock_.Advance(999);
  EXPECT_EQ(GetOr(t, "p", "a"), "A");
  EXPECT_EQ(GetOr(t, "q", "d"), "D");

  clock_.Advance(1);  // now == expiry of a and d
  EXPECT_EQ(GetOr(t, "p", "a"), kNotFound);
  EXPECT_EQ(GetOr(t, "q", "d"), kNotFound);
  EXPECT_THAT(ScanKeys(t, "p"), ElementsAre("b", "c"));
  ScanOptions reverse;
  reverse.reverse = true;
  EXPECT_THAT(ScanKeys(t, "p", reverse), ElementsAre("c", "b"));
  EXPECT_THAT(ScanKeys(t, "q"), ElementsAre());
  EXPECT_THAT(ScanWholeTable(t), ElementsAre(FlatRow{"p", "b", "B"}, FlatRow{"p", "c", "C"}));

  clock_.Advance(1000);
  EXPECT_THAT(ScanKeys(t, "p"), ElementsAre("b"));
  EXPECT_THAT(ScanWholeTable(t), ElementsAre(FlatRow{"p", "b", "B"}));

  // Writing an expired row again brings it back.
  ASSERT_TRUE(t->Put("p", "a", "A2").ok());
  EXPECT_EQ(GetOr(t, "p", "a"), "A2");
}

TEST_P(RowStoreConformanceTest, ExpiryOfPutIfNewerRows) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  const Millis now = clock_.NowMillis();
  auto put = [&](const std::string& key, uint64_t version, const std::string& value,
                 Millis expire_at) {
    WriteBatch batch;
    batch.PutIfNewer(key, version, value, expire_at);
    return t->Apply("p", batch);
  };
  ASSERT_TRUE(put("single", 2, "s", now + 100).ok());
  // The highest version wins and carries its own expiry.
  ASSERT_TRUE(put("newer_expires", 1, "a", 0).ok());
  ASSERT_TRUE(put("newer_expires", 2, "b", now + 100).ok());
  ASSERT_TRUE(put("older_expires", 1, "a", now + 100).ok());
  ASSERT_TRUE(put("older_expires", 2, "b", 0).ok());
  ASSERT_TRUE(put("stays", 1, "forever", 0).ok());
  EXPECT_EQ(GetOr(t, "p", "single"), "s");
  EXPECT_EQ(GetOr(t, "p", "newer_expires"), "b");
  EXPECT_EQ(GetOr(t, "p", "older_expires"), "b");

  clock_.Advance(100);
  EXPECT_EQ(GetOr(t, "p", "single"), kNotFound);
  EXPECT_EQ(GetOr(t, "p", "newer_expires"), kNotFound);
  EXPECT_EQ(GetOr(t, "p", "older_expires"), "b");
  EXPECT_THAT(ScanKeys(t, "p"), ElementsAre("older_expires", "stays"));
  EXPECT_EQ(ScanWholeTable(t).size(), 2u);
}

TEST_P(RowStoreConformanceTest, ExpiredRowsDoNotFillPages) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  const Millis now = clock_.NowMillis();
  std::vector<std::string> live;
  WriteBatch batch;
  for (int i = 0; i < 20; ++i) {
    const std::string key = "k" + Pad(i, 2);
    if (i % 2 == 0) {
      batch.Put(key, "short-lived", now + 10);
    } else {
      batch.Put(key, "live");
      live.push_back(key);
    }
  }
  ASSERT_TRUE(t->Apply("p", batch).ok());
  clock_.Advance(10);
  ScanOptions options;
  options.limit = 3;
  absl::StatusOr<ScanPage> first = t->Scan("p", options);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(Keys(first->rows), ElementsAre("k01", "k03", "k05"));
  EXPECT_THAT(ScanKeys(t, "p", options), ElementsAreArray(live));
  options.reverse = true;
  std::vector<std::string> reversed(live.rbegin(), live.rend());
  EXPECT_THAT(ScanKeys(t, "p", options), ElementsAreArray(reversed));

  absl::StatusOr<std::vector<KeyRange>> ranges = t->SplitRanges(1);
  ASSERT_TRUE(ranges.ok()) << ranges.status();
  size_t rows = 0;
  for (const KeyRange& range : *ranges) rows += ScanRangeAll(t, range, 3).size();
  EXPECT_EQ(rows, live.size());
}

// ---------------------------------------------------------------------------------------
// Full-table scans

TEST_P(RowStoreConformanceTest, SplitRangesCoverEveryRowExactlyOnce) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  std::vector<std::string> partitions = {"", "a", std::string("a\0", 2), "ab", "abc",
                                         "b", "\xff", "\xff\xff"};
  for (int i = 0; i < 60; ++i) partitions.push_back("member:" + std::to_string(i * 7919));
  std::vector<FlatRow> expected;
  std::vector<PartitionWrite> writes;
  for (size_t i = 0; i < partitions.size(); ++i) {
    writes.push_back(PartitionWrite{t, partitions[i], WriteBatch()});
    const int rows = 1 + static_cast<int>(i % 13);
    for (int r = 0; r < rows; ++r) {
      std::string key = r == 0 ? std::string() : "c" + Pad(r, 3);
      std::string value = partitions[i] + "/" + key;
      writes.back().batch.Put(key, value);
      expected.emplace_back(partitions[i], key, value);
    }
  }
  ASSERT_TRUE(store_->Write(writes).ok());
  std::sort(expected.begin(), expected.end());

  for (int n : {1, 3, 16}) {
    SCOPED_TRACE("n = " + std::to_string(n));
    absl::StatusOr<std::vector<KeyRange>> ranges = t->SplitRanges(n);
    ASSERT_TRUE(ranges.ok()) << ranges.status();
    ASSERT_GE(ranges->size(), 1u);
    ASSERT_LE(ranges->size(), static_cast<size_t>(n));

    // Scan the ranges in parallel, as an exporter would.
    std::vector<std::vector<FlatRow>> per_range(ranges->size());
    std::vector<std::thread> threads;
    for (size_t r = 0; r < ranges->size(); ++r) {
      threads.emplace_back(
          [&, r] { per_range[r] = ScanRangeAll(t, (*ranges)[r], /*limit=*/7); });
    }
    for (std::thread& thread : threads) thread.join();

    std::vector<FlatRow> all;
    std::set<std::string> seen_partitions;
    for (const std::vector<FlatRow>& rows : per_range) {
      // Inside a range, a partition's rows are contiguous and in clustering order, and a
      // partition belongs to one range only.
      std::string current;
      bool have_current = false;
      for (size_t i = 0; i < rows.size(); ++i) {
        const std::string& p = std::get<0>(rows[i]);
        if (!have_current || p != current) {
          EXPECT_TRUE(seen_partitions.insert(p).second) << "partition '" << p << "' split";
          current = p;
          have_current = true;
        } else {
          EXPECT_LT(std::get<1>(rows[i - 1]), std::get<1>(rows[i]));
        }
        all.push_back(rows[i]);
      }
    }
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all.size(), expected.size());
    EXPECT_TRUE(all == expected) << "every row exactly once";
  }
  EXPECT_TRUE(absl::IsInvalidArgument(t->SplitRanges(0).status()));
}

TEST_P(RowStoreConformanceTest, SplitRangesOfAnEmptyTable) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  for (int n : {1, 4}) {
    absl::StatusOr<std::vector<KeyRange>> ranges = t->SplitRanges(n);
    ASSERT_TRUE(ranges.ok()) << ranges.status();
    ASSERT_GE(ranges->size(), 1u);
    ASSERT_LE(ranges->size(), static_cast<size_t>(n));
    for (const KeyRange& range : *ranges) {
      absl::StatusOr<TableScanPage> page = t->ScanRange(range, 10, "");
      ASSERT_TRUE(page.ok()) << page.status();
      EXPECT_TRUE(page->rows.empty());
      EXPECT_TRUE(page->next_cursor.empty());
    }
  }
}

// ---------------------------------------------------------------------------------------
// Snapshots

TEST_P(RowStoreConformanceTest, SnapshotIsolation) {
  Table* t = OpenTable("rows");
  Table* other = OpenTable("other");
  ASSERT_NE(t, nullptr);
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(t->Put("p", "a", "1").ok());
  ASSERT_TRUE(t->Put("p", "c", "3").ok());
  ASSERT_TRUE(t->Put("q", "x", "X").ok());
  ASSERT_TRUE(other->Put("p", "z", "Z").ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(t->Put("pages", "k" + std::to_string(i), "old").ok());

  absl::StatusOr<std::unique_ptr<Snapshot>> snapshot = store_->NewSnapshot();
  if (absl::IsUnimplemented(snapshot.status())) {
    GTEST_SKIP() << "snapshots are an optional capability: " << snapshot.status();
  }
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  ReadOptions at;
  at.snapshot = snapshot->get();

  ASSERT_TRUE(t->Put("p", "a", "1b").ok());
  ASSERT_TRUE(t->Put("p", "b", "2").ok());
  ASSERT_TRUE(t->Delete("p", "c").ok());
  ASSERT_TRUE(t->DeleteRange("q", "", "").ok());
  ASSERT_TRUE(other->Put("p", "z", "Z2").ok());
  Table* later = OpenTable("created_after_snapshot");
  ASSERT_NE(later, nullptr);
  ASSERT_TRUE(later->Put("p", "k", "v").ok());

  EXPECT_EQ(GetOr(t, "p", "a", at), "1");
  EXPECT_EQ(GetOr(t, "p", "b", at), kNotFound);
  EXPECT_EQ(GetOr(t, "p", "c", at), "3");
  EXPECT_EQ(GetOr(t, "q", "x", at), "X");
  EXPECT_EQ(GetOr(other, "p", "z", at), "Z");
  EXPECT_EQ(GetOr(later, "p", "k", at), kNotFound);
  EXPECT_THAT(ScanKeys(t, "p", {}, at), ElementsAre("a", "c"));
  EXPECT_THAT(ScanWholeTable(t, at),
              ElementsAre(FlatRow{"p", "a", "1"}, FlatRow{"p", "c", "3"},
                          FlatRow{"pages", "k0", "old"}, FlatRow{"pages", "k1", "old"},
                          FlatRow{"pages", "k2", "old"}, FlatRow{"pages", "k3", "old"},
                          FlatRow{"pages", "k4", "old"}, FlatRow{"q", "x", "X"}));

  // Paging through a snapshot while the table changes underneath.
  ScanOptions paged;
  paged.limit = 2;
  absl::StatusOr<ScanPage> first = t->Scan("pages", paged, at);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(Keys(first->rows), ElementsAre("k0", "k1"));
  WriteBatch churn;
  churn.DeleteRange("k2", "k4");
  churn.Put("k25", "new");
  churn.Put("k4", "new");
  ASSERT_TRUE(t->Apply("pages", churn).ok());
  paged.cursor = first->next_cursor;
  std::vector<Row> rest = ScanAll(t, "pages", paged, at);
  EXPECT_THAT(Keys(rest), ElementsAre("k2", "k3", "k4"));
  for (const Row& row : rest) EXPECT_EQ(row.value, "old");

  // Latest reads see everything.
  EXPECT_EQ(GetOr(t, "p", "a"), "1b");
  EXPECT_EQ(GetOr(t, "p", "c"), kNotFound);
  EXPECT_EQ(GetOr(other, "p", "z"), "Z2");
  EXPECT_THAT(ScanKeys(t, "pages"), ElementsAre("k0", "k1", "k25", "k4"));

  snapshot->reset();  // release; later reads are unaffected
  EXPECT_EQ(GetOr(t, "p", "b"), "2");
}

// ---------------------------------------------------------------------------------------
// RowStore::Write

TEST_P(RowStoreConformanceTest, WriteAcrossTablesAndPartitions) {
  Table* live = OpenTable("live");
  Table* index = OpenTable("index", TableProfile::kIndex);
  Table* blobs = OpenTable("blobs", TableProfile::kCompressed);
  ASSERT_NE(live, nullptr);
  ASSERT_NE(index, nullptr);
  ASSERT_NE(blobs, nullptr);
  ASSERT_TRUE(index->Put("i1", "stale", "x").ok());
  ASSERT_TRUE(live->Put("m3", "old1", "x").ok());
  ASSERT_TRUE(live->Put("m3", "old2", "x").ok());

  std::vector<PartitionWrite> writes;
  writes.push_back(PartitionWrite{live, "m1", WriteBatch()});
  writes.back().batch.Put("a", "m1a");
  writes.back().batch.Put("b", "m1b");
  writes.push_back(PartitionWrite{live, "m2", WriteBatch()});
  writes.back().batch.Put("a", "m2a");
  writes.push_back(PartitionWrite{index, "i1", WriteBatch()});
  writes.back().batch.Put("fresh", "y");
  writes.back().batch.Delete("stale");
  writes.push_back(PartitionWrite{blobs, "b1", WriteBatch()});
  writes.back().batch.PutIfNewer("chunk", 2, "two");
  writes.back().batch.PutIfNewer("chunk", 1, "one");
  writes.push_back(PartitionWrite{live, "m3", WriteBatch()});
  writes.back().batch.DeleteRange("", "");
  writes.back().batch.Put("new", "m3new");
  writes.push_back(PartitionWrite{live, "m1", WriteBatch()});  // same partition again
  writes.back().batch.Put("b", "m1b-second");
  ASSERT_TRUE(store_->Write(writes).ok());

  EXPECT_EQ(GetOr(live, "m1", "a"), "m1a");
  EXPECT_EQ(GetOr(live, "m1", "b"), "m1b-second");
  EXPECT_EQ(GetOr(live, "m2", "a"), "m2a");
  EXPECT_EQ(GetOr(index, "i1", "fresh"), "y");
  EXPECT_EQ(GetOr(index, "i1", "stale"), kNotFound);
  EXPECT_EQ(GetOr(blobs, "b1", "chunk"), "two");
  EXPECT_THAT(ScanKeys(live, "m3"), ElementsAre("new"));
  EXPECT_EQ(GetOr(index, "m1", "a"), kNotFound) << "tables stay apart";

  EXPECT_TRUE(store_->Write({}).ok());
}

TEST_P(RowStoreConformanceTest, WriteRejectsInvalidInput) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  std::vector<PartitionWrite> no_table;
  no_table.push_back(PartitionWrite{nullptr, "p", WriteBatch()});
  no_table.back().batch.Put("k", "v");
  EXPECT_TRUE(absl::IsInvalidArgument(store_->Write(no_table)));

  std::vector<PartitionWrite> bad_key;
  bad_key.push_back(PartitionWrite{t, "p", WriteBatch()});
  bad_key.back().batch.Put("valid", "v");
  bad_key.back().batch.Delete(std::string(kMaxClusteringKeySize + 1, 'k'));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->Write(bad_key)));
  EXPECT_EQ(GetOr(t, "p", "valid"), kNotFound) << "each batch is all or nothing";

  // A table of another store is not accepted.
  ManualClock other_clock;
  std::unique_ptr<RowStore> other = GetParam().factory(&other_clock);
  ASSERT_NE(other, nullptr);
  absl::StatusOr<Table*> foreign = other->OpenTable(TableOptions{"rows", TableProfile::kLive});
  ASSERT_TRUE(foreign.ok()) << foreign.status();
  std::vector<PartitionWrite> wrong_store;
  wrong_store.push_back(PartitionWrite{*foreign, "p", WriteBatch()});
  wrong_store.back().batch.Put("k", "v");
  EXPECT_TRUE(absl::IsInvalidArgument(store_->Write(wrong_store)));
  EXPECT_EQ(GetOr(*foreign, "p", "k"), kNotFound);
  EXPECT_EQ(GetOr(t, "p", "k"), kNotFound);
}

// A failed batch stops the ones after it: what a commit followed by the deletes it makes
// safe relies on.
TEST_P(RowStoreConformanceTest, WriteInOrderAppliesNothingAfterAFailedBatch) {
  Table* meta = OpenTable("meta", TableProfile::kCompressed);
  Table* live = OpenTable("live");
  ASSERT_NE(meta, nullptr);
  ASSERT_NE(live, nullptr);
  ASSERT_TRUE(live->Put("m", "row", "v").ok());
  std::vector<PartitionWrite> writes;
  writes.push_back(PartitionWrite{meta, "m", WriteBatch()});
  writes.back().batch.Put("meta", "v2");
  writes.back().batch.Delete(std::string(kMaxClusteringKeySize + 1, 'k'));  // fails
  writes.push_back(PartitionWrite{live, "m", WriteBatch()});
  writes.back().batch.Delete("row");
  EXPECT_TRUE(absl::IsInvalidArgument(store_->WriteInOrder(writes)));
  EXPECT_EQ(GetOr(meta, "m", "meta"), kNotFound) << "each batch is all or nothing";
  EXPECT_EQ(GetOr(live, "m", "row"), "v") << "nothing after the failed batch";

  // The interface's default (batch by batch, what a backend without atomic multi-table
  // writes gets) keeps the same guarantee.
  EXPECT_TRUE(absl::IsInvalidArgument(store_->RowStore::WriteInOrder(writes)));
  EXPECT_EQ(GetOr(meta, "m", "meta"), kNotFound);
  EXPECT_EQ(GetOr(live, "m", "row"), "v");

  writes[0].batch = WriteBatch();
  writes[0].batch.Put("meta", "v2");
  ASSERT_TRUE(store_->WriteInOrder(writes).ok());
  EXPECT_EQ(GetOr(meta, "m", "meta"), "v2");
  EXPECT_EQ(GetOr(live, "m", "row"), kNotFound);
  ASSERT_TRUE(live->Put("m", "row", "v").ok());
  ASSERT_TRUE(store_->RowStore::WriteInOrder(writes).ok());
  EXPECT_EQ(GetOr(live, "m", "row"), kNotFound);
}

// ---------------------------------------------------------------------------------------
// Concurrency, stats, sync

TEST_P(RowStoreConformanceTest, ConcurrentWritersOnDistinctPartitions) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  constexpr int kWriters = 4;
  constexpr int kRowsPerWriter = 200;
  std::atomic<int> failures{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      const std::string partition = "writer" + std::to_string(w);
      for (int i = 0; i < kRowsPerWriter; i += 2) {
        // Alternate single puts and two-row batches through RowStore::Write.
        if (!t->Put(partition, "k" + Pad(i), partition + Pad(i)).ok()) ++failures;
        std::vector<PartitionWrite> writes;
        writes.push_back(PartitionWrite{t, partition, WriteBatch()});
        writes.back().batch.Put("k" + Pad(i + 1), partition + Pad(i + 1));
        if (!store_->Write(writes).ok()) ++failures;
      }
    });
  }
  // A reader scans concurrently: every page it sees must be sorted and consistent.
  std::atomic<int> reader_errors{0};
  std::thread reader([&] {
    while (!done.load()) {
      for (int w = 0; w < kWriters; ++w) {
        const std::string partition = "writer" + std::to_string(w);
        absl::StatusOr<ScanPage> page = t->Scan(partition, {});
        if (!page.ok()) {
          ++reader_errors;
          continue;
        }
        for (size_t i = 0; i < page->rows.size(); ++i) {
          const Row& row = page->rows[i];
          if (row.value != partition + row.clustering.substr(1)) ++reader_errors;
          if (i > 0 && !(page->rows[i - 1].clustering < row.clustering)) ++reader_errors;
        }
      }
    }
  });
  for (std::thread& thread : threads) thread.join();
  done.store(true);
  reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(reader_errors.load(), 0);
  for (int w = 0; w < kWriters; ++w) {
    const std::string partition = "writer" + std::to_string(w);
    std::vector<Row> rows = ScanAll(t, partition, {});
    ASSERT_EQ(rows.size(), static_cast<size_t>(kRowsPerWriter)) << partition;
    for (int i = 0; i < kRowsPerWriter; ++i) {
      EXPECT_EQ(rows[i].clustering, "k" + Pad(i));
      EXPECT_EQ(rows[i].value, partition + Pad(i));
    }
  }
  EXPECT_EQ(ScanWholeTable(t).size(), static_cast<size_t>(kWriters * kRowsPerWriter));
}

TEST_P(RowStoreConformanceTest, StatsCountRows) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  absl::StatusOr<TableStats> empty = t->Stats();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->approximate_rows, 0u);
  WriteBatch batch;
  for (int i = 0; i < 100; ++i) batch.Put("k" + Pad(i), std::string(100, 'v'));
  ASSERT_TRUE(t->Apply("p", batch).ok());
  absl::StatusOr<TableStats> stats = t->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  // Approximate, but neither nothing nor wildly more than written.
  EXPECT_GT(stats->approximate_rows, 0u);
  EXPECT_LE(stats->approximate_rows, 1000u);
}

TEST_P(RowStoreConformanceTest, SyncSucceedsAndKeepsData) {
  Table* t = OpenTable("rows");
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->Put("p", "k", "v").ok());
  EXPECT_TRUE(store_->Sync().ok());
  EXPECT_EQ(GetOr(t, "p", "k"), "v");
}

}  // namespace strata::store::testing

namespace strata::store::testing {

// ---------------------------------------------------------------------------------------
// Conditions (compare-and-set)

TEST_P(RowStoreConformanceTest, ConditionsGuardTheWholeBatch) {
  Table* t = OpenTable("cas");
  ASSERT_NE(t, nullptr);
  // Absent: a batch expecting absence applies once; the second sees the row.
  WriteBatch create;
  create.Expect("head", std::nullopt);
  create.Put("head", "v1");
  create.Put("other", "x1");
  ASSERT_TRUE(t->Apply("p", create).ok());
  absl::Status again = t->Apply("p", create);
  EXPECT_TRUE(absl::IsFailedPrecondition(again)) << again;
  // A stale expectation applies nothing, not even ops on other rows.
  WriteBatch stale;
  stale.Expect("head", std::string("v0"));
  stale.Put("head", "v2");
  stale.Put("other", "x2");
  EXPECT_TRUE(absl::IsFailedPrecondition(t->Apply("p", stale)));
  EXPECT_EQ(GetOr(t, "p", "head"), "v1");
  EXPECT_EQ(GetOr(t, "p", "other"), "x1");
  // The current value applies.
  WriteBatch fresh;
  fresh.Expect("head", std::string("v1"));
  fresh.Put("head", "v2");
  fresh.Delete("other");
  ASSERT_TRUE(t->Apply("p", fresh).ok());
  EXPECT_EQ(GetOr(t, "p", "head"), "v2");
  EXPECT_EQ(GetOr(t, "p", "other"), kNotFound);
  // Conditions look at the batch's own partition only.
  WriteBatch elsewhere;
  elsewhere.Expect("head", std::nullopt);
  elsewhere.Put("head", "q1");
  EXPECT_TRUE(t->Apply("q", elsewhere).ok());
  // An expired row counts as absent.
  ASSERT_TRUE(t->Put("p", "ttl", "t", clock_.NowMillis() + 10).ok());
  clock_.Advance(10);
  WriteBatch after_expiry;
  after_expiry.Expect("ttl", std::nullopt);
  after_expiry.Put("ttl", "t2");
  EXPECT_TRUE(t->Apply("p", after_expiry).ok());
  EXPECT_EQ(GetOr(t, "p", "ttl"), "t2");
}

TEST_P(RowStoreConformanceTest, FailedConditionInMultiPartitionWriteAppliesNothing) {
  Table* t = OpenTable("cas_multi");
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->Put("b", "k", "old").ok());
  std::vector<PartitionWrite> writes(2);
  writes[0].table = t;
  writes[0].partition = "a";
  writes[0].batch.Put("k", "new");
  writes[1].table = t;
  writes[1].partition = "b";
  writes[1].batch.Expect("k", std::string("other"));
  writes[1].batch.Put("k", "new");
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->Write(writes)));
  EXPECT_EQ(GetOr(t, "a", "k"), kNotFound);
  EXPECT_EQ(GetOr(t, "b", "k"), "old");
}

// A condition with the stamp of the read that saw its value means what it means without
// one, whatever wrote the row in between (a backend may use stamps to skip the re-read).
TEST_P(RowStoreConformanceTest, StampedConditionsMeanWhatUnstampedOnesDo) {
  Table* t = OpenTable("cas_stamped");
  ASSERT_NE(t, nullptr);
  Table* other = OpenTable("cas_stamped_other");
  ASSERT_NE(other, nullptr);
  struct Between {
    const char* name;
    std::function<absl::Status()> write;  // a write to row "k" of partition "p" (or not)
    bool changes_present_row;  // when "k" holds "v"
    bool changes_absent_row;   // when "k" is absent (a delete leaves it absent)
  };
  const std::vector<Between> cases = {
      {"nothing", [] { return absl::OkStatus(); }, false, false},
      {"a write of another row", [&] { return t->Put("p", "k2", "x"); }, false, false},
      {"a write of the same key in another table", [&] { return other->Put("p", "k", "x"); },
       false, false},
      {"a put", [&] { return t->Put("p", "k", "changed"); }, true, true},
      {"a delete", [&] { return t->Delete("p", "k"); }, true, false},
      {"a range delete", [&] { return t->DeleteRange("p", "a", "z"); }, true, false},
      {"a batch", [&] {
         WriteBatch b;
         b.Put("k", "batched");
         return t->Apply("p", b);
       }, true, true},
      {"a multi-table write", [&] {
         std::vector<PartitionWrite> writes(2);
         writes[0].table = other;
         writes[0].partition = "p";
         writes[0].batch.Put("k", "y");
         writes[1].table = t;
         writes[1].partition = "p";
         writes[1].batch.Put("k", "multi");
         return store_->Write(writes);
       }, true, true},
  };
  for (const bool present : {true, false}) {
    for (const bool multi : {false, true}) {
      for (const Between& between : cases) {
        SCOPED_TRACE(std::string(between.name) + (present ? ", row present" : ", row absent") +
                     (multi ? ", MultiGet" : ", Get"));
        ASSERT_TRUE(t->DeleteRange("p", "", "").ok());
        if (present) {
          ASSERT_TRUE(t->Put("p", "k", "v").ok());
        }
        std::vector<ReadStamp> stamps;
        ReadOptions read;
        read.stamps = &stamps;
        std::optional<std::string> seen;
        if (multi) {
          const std::vector<RowKey> keys = {{"p", "k"}, {"p", "absent"}};
          std::vector<absl::StatusOr<std::string>> got = t->MultiGet(keys, read);
          ASSERT_EQ(got.size(), 2u);
          if (got[0].ok()) seen = *got[0];
          EXPECT_TRUE(stamps.empty() || stamps.size() == 2) << stamps.size();
        } else {
          absl::StatusOr<std::string> got = t->Get("p", "k", read);
          if (got.ok()) seen = *got;
          EXPECT_TRUE(stamps.empty() || stamps.size() == 1) << stamps.size();
        }
        ASSERT_EQ(seen.has_value(), present);
        ASSERT_TRUE(between.write().ok());
        WriteBatch b;
        b.Expect("k", seen, StampAt(stamps, 0));
        b.Put("k", "cas");
        absl::Status s = t->Apply("p", b);
        if (!(present ? between.changes_present_row : between.changes_absent_row)) {
          EXPECT_TRUE(s.ok()) << s;
          EXPECT_EQ(GetOr(t, "p", "k"), "cas");
        } else {
          EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
          EXPECT_NE(GetOr(t, "p", "k"), "cas");
        }
      }
    }
  }
  // A row that expires between the read and the write no longer holds its value.
  ASSERT_TRUE(t->Put("p", "ttl", "t", clock_.NowMillis() + 10).ok());
  std::vector<ReadStamp> stamps;
  ReadOptions read;
  read.stamps = &stamps;
  absl::StatusOr<std::string> got = t->Get("p", "ttl", read);
  ASSERT_TRUE(got.ok()) << got.status();
  clock_.Advance(10);
  WriteBatch b;
  b.Expect("ttl", *got, StampAt(stamps, 0));
  b.Put("ttl", "t2");
  EXPECT_TRUE(absl::IsFailedPrecondition(t->Apply("p", b)));
}

// Four threads increment one counter row by compare-and-set, each retrying its lost races;
// with `stamped`, each condition carries the stamp of the read it follows, and each batch
// also writes a row of its own (other keys of the same batch). No increment may be lost.
static void IncrementConcurrently(Table* t, bool stamped) {
  ASSERT_TRUE(t->Put("p", "n", "0").ok());
  constexpr int kThreads = 4;
  constexpr int kIncrements = 200;
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int done = 0; done < kIncrements;) {
        std::vector<ReadStamp> stamps;
        ReadOptions read;
        if (stamped) read.stamps = &stamps;
        absl::StatusOr<std::string> v = t->Get("p", "n", read);
        ASSERT_TRUE(v.ok());
        WriteBatch b;
        b.Expect("n", *v, StampAt(stamps, 0));
        b.Put("n", std::to_string(std::stoi(*v) + 1));
        if (stamped) b.Put("noise" + std::to_string(i), std::to_string(done));
        absl::Status s = t->Apply("p", b);
        if (s.ok()) {
          ++done;
        } else {
          ASSERT_TRUE(absl::IsFailedPrecondition(s)) << s;
          ++conflicts;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  absl::StatusOr<std::string> n = t->Get("p", "n");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, std::to_string(kThreads * kIncrements)) << conflicts.load() << " conflicts";
}

TEST_P(RowStoreConformanceTest, ConcurrentCompareAndSetLosesNoIncrement) {
  Table* t = OpenTable("cas_counter");
  ASSERT_NE(t, nullptr);
  IncrementConcurrently(t, /*stamped=*/false);
}

TEST_P(RowStoreConformanceTest, ConcurrentStampedCompareAndSetLosesNoIncrement) {
  Table* t = OpenTable("cas_counter_stamped");
  ASSERT_NE(t, nullptr);
  IncrementConcurrently(t, /*stamped=*/true);
}

}  // namespace strata::store::testing
