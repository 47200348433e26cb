#include "strata/blob/blob_store_conformance.h"

#include <gmock/gmock.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

namespace strata::blob::testing {

BlobStoreConformanceParam MakeBlobStoreConformanceParam(std::string name, BlobStoreFactory factory,
                                                        BlobStoreTraits traits) {
  return BlobStoreConformanceParam{std::move(name), std::move(factory), traits};
}

void BlobStoreConformanceTest::SetUp() {
  store_ = GetParam().factory(kPartBytes);
  if (IsSkipped()) return;  // the factory found no server to test against (GTEST_SKIP)
  ASSERT_NE(store_, nullptr) << "factory returned no store";
}

namespace {

using ::testing::ElementsAre;

std::string Pattern(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::vector<std::string> Names(const ListPage& page) {
  std::vector<std::string> out;
  for (const BlobInfo& b : page.blobs) out.push_back(b.name);
  return out;
}

TEST_P(BlobStoreConformanceTest, PutThenReadBackWholeAndEmpty) {
  ASSERT_TRUE(store_->Put("a/b/one", "hello").ok());
  ASSERT_TRUE(store_->Put("a/empty", "").ok());
  absl::StatusOr<std::string> got = store_->Read("a/b/one", 0, 100);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "hello");
  absl::StatusOr<BlobInfo> info = store_->Stat("a/empty");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->size, 0u);
  EXPECT_EQ(info->parts, 1u);
  got = store_->Read("a/empty", 0, 10);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "");
}

TEST_P(BlobStoreConformanceTest, LargeBlobIsSplitIntoPartsAndRangesCrossThem) {
  const std::string data = Pattern(3 * kPartBytes + 123, 7);
  absl::StatusOr<std::unique_ptr<BlobWriter>> w = store_->NewWriter("big");
  ASSERT_TRUE(w.ok()) << w.status();
  // Uneven appends so that some straddle a part boundary.
  for (size_t off = 0; off < data.size(); off += 1000) {
    ASSERT_TRUE((*w)->Append(std::string_view(data).substr(off, 1000)).ok());
  }
  EXPECT_EQ((*w)->size(), data.size());
  EXPECT_EQ((*w)->parts(), 4u);
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ((*w)->parts(), 4u) << "the writer's count after Commit is what services record";
  absl::StatusOr<BlobInfo> info = store_->Stat("big");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(info->parts, 4u);

  absl::StatusOr<std::unique_ptr<BlobReader>> r = store_->NewReader("big");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->size(), data.size());
  const std::pair<uint64_t, size_t> ranges[] = {{0, data.size()},         {kPartBytes - 10, 20},
                                                {kPartBytes, kPartBytes}, {1, 2 * kPartBytes + 50},
                                                {data.size() - 5, 100},   {data.size(), 10}};
  for (auto [offset, n] : ranges) {
    std::string out;
    ASSERT_TRUE((*r)->ReadAt(offset, n, &out).ok()) << offset;
    EXPECT_EQ(out, data.substr(offset, n)) << "offset " << offset << " n " << n;
  }
  std::string out;
  EXPECT_TRUE(absl::IsOutOfRange((*r)->ReadAt(data.size() + 1, 1, &out)));
}

TEST_P(BlobStoreConformanceTest, ExactlyOnePartSizeIsOnePart) {
  ASSERT_TRUE(store_->Put("exact", Pattern(kPartBytes, 1)).ok());
  absl::StatusOr<BlobInfo> info = store_->Stat("exact");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->parts, 1u);
}

TEST_P(BlobStoreConformanceTest, UncommittedBlobIsNeverVisible) {
  {
    absl::StatusOr<std::unique_ptr<BlobWriter>> w = store_->NewWriter("p/half");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(Pattern(2 * kPartBytes, 3)).ok());
    EXPECT_TRUE(absl::IsNotFound(store_->Stat("p/half").status()));
    EXPECT_TRUE(absl::IsNotFound(store_->NewReader("p/half").status()));
    absl::StatusOr<ListPage> page = store_->List("p/", "", 10);
    ASSERT_TRUE(page.ok());
    EXPECT_TRUE(page->blobs.empty());
  }  // destroyed without Commit: aborted
  EXPECT_TRUE(absl::IsNotFound(store_->Stat("p/half").status()));
  // The name is free for a later writer.
  ASSERT_TRUE(store_->Put("p/half", "x").ok());
}

TEST_P(BlobStoreConformanceTest, NamesAreWriteOnce) {
  ASSERT_TRUE(store_->Put("k", "first").ok());
  absl::Status s = store_->Put("k", "second");
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  absl::StatusOr<std::string> got = store_->Read("k", 0, 100);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "first");
}

TEST_P(BlobStoreConformanceTest, DeleteRemovesEveryPartAndIsIdempotent) {
  ASSERT_TRUE(store_->Put("d/x", Pattern(5 * kPartBytes, 2)).ok());
  ASSERT_TRUE(store_->Delete("d/x").ok());
  EXPECT_TRUE(absl::IsNotFound(store_->Stat("d/x").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->Read("d/x", 0, 1).status()));
  EXPECT_TRUE(store_->Delete("d/x").ok());
  EXPECT_TRUE(store_->Delete("never/was").ok());
  // Deleted names can be written again.
  ASSERT_TRUE(store_->Put("d/x", "again").ok());
  EXPECT_EQ(store_->Read("d/x", 0, 10).value_or(""), "again");
}

TEST_P(BlobStoreConformanceTest, DeleteManyRemovesABatchAndLeavesTheRest) {
  ASSERT_TRUE(store_->Put("m/a", Pattern(3 * kPartBytes + 1, 1)).ok());
  ASSERT_TRUE(store_->Put("m/b", "b").ok());
  ASSERT_TRUE(store_->Put("n/c", "c").ok());
  ASSERT_TRUE(store_->Put("m/keep", "k").ok());
  const std::vector<std::string> batch = {"m/a", "m/b", "n/c", "m/absent", "m/a"};
  ASSERT_TRUE(store_->DeleteMany(batch).ok());
  for (const char* gone : {"m/a", "m/b", "n/c"}) {
    EXPECT_TRUE(absl::IsNotFound(store_->Stat(gone).status())) << gone;
  }
  EXPECT_EQ(store_->Read("m/keep", 0, 10).value_or(""), "k");
  EXPECT_TRUE(store_->DeleteMany(batch).ok());  // idempotent
  EXPECT_TRUE(store_->DeleteMany({}).ok());
  // A bad name anywhere in the batch rejects the whole batch before anything goes.
  const std::vector<std::string> bad = {"m/keep", "m/../x"};
  EXPECT_TRUE(absl::IsInvalidArgument(store_->DeleteMany(bad)));
  EXPECT_EQ(store_->Read("m/keep", 0, 10).value_or(""), "k");
}

TEST_P(BlobStoreConformanceTest, DeleteEachAnswersForEachName) {
  ASSERT_TRUE(store_->Put("e/a", Pattern(2 * kPartBytes + 3, 2)).ok());
  ASSERT_TRUE(store_->Put("e/b", "b").ok());
  ASSERT_TRUE(store_->Put("e/keep", "k").ok());
  const std::vector<std::string> batch = {"e/a", "e/../x", "e/b", "e/absent", "e/a"};
  std::vector<absl::Status> got = store_->DeleteEach(batch);
  ASSERT_EQ(got.size(), batch.size());
  EXPECT_TRUE(got[0].ok()) << got[0];
  EXPECT_TRUE(absl::IsInvalidArgument(got[1])) << got[1];  // alone: the others still go
  EXPECT_TRUE(got[2].ok()) << got[2];
  EXPECT_TRUE(got[3].ok()) << got[3];
  EXPECT_TRUE(got[4].ok()) << got[4];
  for (const char* gone : {"e/a", "e/b"}) {
    EXPECT_TRUE(absl::IsNotFound(store_->Stat(gone).status())) << gone;
  }
  EXPECT_EQ(store_->Read("e/keep", 0, 10).value_or(""), "k");
  EXPECT_TRUE(store_->DeleteEach({}).empty());
}

TEST_P(BlobStoreConformanceTest, OpenReaderKeepsReadingAfterDelete) {
  const std::string data = Pattern(2 * kPartBytes + 5, 9);
  ASSERT_TRUE(store_->Put("r", data).ok());
  absl::StatusOr<std::unique_ptr<BlobReader>> r = store_->NewReader("r");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(store_->Delete("r").ok());
  std::string out;
  ASSERT_TRUE((*r)->ReadAt(0, data.size(), &out).ok());
  EXPECT_EQ(out, data);
}

TEST_P(BlobStoreConformanceTest, ListByPrefixIsSortedAndPaged) {
  for (const char* n : {"m/b/2", "m/a", "m/b/1", "m/bb", "m/c", "n/a", "m/b/10", "mm/x"}) {
    ASSERT_TRUE(store_->Put(n, n).ok()) << n;
  }
  absl::StatusOr<ListPage> page = store_->List("m/b", "", 100);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Names(*page), ElementsAre("m/b/1", "m/b/10", "m/b/2", "m/bb"));
  EXPECT_TRUE(page->next_after.empty());
  EXPECT_EQ(page->blobs[0].size, 5u);

  std::vector<std::string> all;
  std::string after;
  int pages = 0;
  do {
    page = store_->List("m", after, 2);
    ASSERT_TRUE(page.ok());
    EXPECT_LE(page->blobs.size(), 2u);
    for (const BlobInfo& b : page->blobs) all.push_back(b.name);
    after = page->next_after;
    ++pages;
  } while (!after.empty() && pages < 20);
  EXPECT_THAT(all, ElementsAre("m/a", "m/b/1", "m/b/10", "m/b/2", "m/bb", "m/c", "mm/x"));
  page = store_->List("", "", 100);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->blobs.size(), 8u);
  page = store_->List("zzz/", "", 10);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->blobs.empty());
}

TEST_P(BlobStoreConformanceTest, PagesWalkNestedNamesInOrderWhateverTheSize) {
  // Names that are prefixes of others, siblings that sort between a directory-like name and
  // its children ('!' < '/' < 'b'), and several levels: every page size must give the same
  // sorted sequence, resuming exactly after each page's last name.
  std::vector<std::string> names = {"w/a",    "w/a/b", "w/a/b/c", "w/a!",     "w/a-b/x",   "w/a/b!",
                                    "w/a/bb", "w/b",   "w/a/a",   "w/a0/z/y", "w/a/b/c/d", "w/ab"};
  for (const std::string& n : names) ASSERT_TRUE(store_->Put(n, n).ok()) << n;
  std::sort(names.begin(), names.end());
  for (size_t limit : {size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{100}}) {
    std::vector<std::string> all;
    std::string after;
    for (int pages = 0; pages < 50; ++pages) {
      absl::StatusOr<ListPage> page = store_->List("w/", after, limit);
      ASSERT_TRUE(page.ok()) << page.status();
      EXPECT_LE(page->blobs.size(), limit);
      for (const BlobInfo& b : page->blobs) all.push_back(b.name);
      after = page->next_after;
      if (after.empty()) break;
    }
    EXPECT_EQ(all, names) << "limit " << limit;
  }
  // Starting in the middle of a subtree, and with a prefix that ends mid-component.
  absl::StatusOr<ListPage> page = store_->List("w/", "w/a/b/c", 100);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(Names(*page), ElementsAre("w/a/b/c/d", "w/a/bb", "w/a0/z/y", "w/ab", "w/b"));
  page = store_->List("w/a/b", "", 100);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(Names(*page), ElementsAre("w/a/b", "w/a/b!", "w/a/b/c", "w/a/b/c/d", "w/a/bb"));
}

TEST_P(BlobStoreConformanceTest, ListAndStatTellWhenEachBlobWasWritten) {
  auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const int64_t before = now_ms();
  ASSERT_TRUE(store_->Put("t/small", "small").ok());
  ASSERT_TRUE(store_->Put("t/big", Pattern(3 * kPartBytes + 1, 4)).ok());
  const int64_t after = now_ms();
  // File systems stamp times from a coarse clock (a few ms behind), and S3 from the
  // server's clock and in whole seconds for HEAD: allow a little either way.
  constexpr int64_t kSlackMs = 2000;
  auto check = [&](const BlobInfo& b) {
    if (b.modified_ms == 0) {
      EXPECT_FALSE(GetParam().traits.every_blob_has_modified_time)
          << b.name << ": no modified time";
      return;
    }
    EXPECT_GE(b.modified_ms, before - kSlackMs) << b.name;
    EXPECT_LE(b.modified_ms, after + kSlackMs) << b.name;
  };
  absl::StatusOr<ListPage> page = store_->List("t/", "", 10);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_THAT(Names(*page), ElementsAre("t/big", "t/small"));
  for (const BlobInfo& b : page->blobs) check(b);
  for (const char* name : {"t/small", "t/big"}) {
    absl::StatusOr<BlobInfo> info = store_->Stat(name);
    ASSERT_TRUE(info.ok()) << info.status();
    check(*info);
  }
  // A blob larger than any inline limit always comes from a store that keeps times.
  EXPECT_NE(page->blobs[0].modified_ms, 0) << "t/big has no modified time";
}

TEST_P(BlobStoreConformanceTest, ReadsRacingDeletesSeeTheBlobOrNothing) {
  // The garbage collector deletes while its orphan scan and the scrub list, stat and open:
  // a blob being deleted must look whole or absent (NotFound), never half gone.
  const std::string data = Pattern(3 * kPartBytes + 9, 5);
  std::atomic<bool> done{false};
  std::thread deleter([&] {
    for (int i = 0; i < 40; ++i) {
      const std::string name = "race/" + std::to_string(i % 4);
      EXPECT_TRUE(store_->Put(name, data).ok());
      EXPECT_TRUE(store_->Delete(name).ok());
    }
    done = true;
  });
  int looks = 0;
  while (!done.load() || looks < 20) {
    ++looks;
    absl::StatusOr<ListPage> page = store_->List("race/", "", 10);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const BlobInfo& b : page->blobs) EXPECT_EQ(b.size, data.size()) << b.name;
    const std::string name = "race/" + std::to_string(looks % 4);
    absl::StatusOr<BlobInfo> info = store_->Stat(name);
    if (!absl::IsNotFound(info.status())) {
      ASSERT_TRUE(info.ok()) << info.status();
      EXPECT_EQ(info->size, data.size());
    }
    absl::StatusOr<std::unique_ptr<BlobReader>> r = store_->NewReader(name);
    if (!absl::IsNotFound(r.status())) {
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ((*r)->size(), data.size());
    }
  }
  deleter.join();
}

TEST_P(BlobStoreConformanceTest, OddCharactersRoundTripThroughNamesAndLists) {
  const std::string names[] = {"o/with space", "o/.hidden", "o/a%41",         "o/~tilde~obj",
                               "o/ünï",        "o/x.y.z",   "o/colon:restore"};
  for (const std::string& n : names) ASSERT_TRUE(store_->Put(n, n).ok()) << n;
  absl::StatusOr<ListPage> page = store_->List("o/", "", 100);
  ASSERT_TRUE(page.ok());
  std::vector<std::string> want(std::begin(names), std::end(names));
  std::sort(want.begin(), want.end());
  EXPECT_EQ(Names(*page), want);
  for (const std::string& n : names) EXPECT_EQ(store_->Read(n, 0, 100).value_or("?"), n);
}

TEST_P(BlobStoreConformanceTest, BadNamesAndLimitsAreInvalidArgument) {
  for (std::string_view bad :
       {std::string_view(""), std::string_view("a//b"), std::string_view("/a"),
        std::string_view("a/"), std::string_view("a/../b"), std::string_view("."),
        std::string_view("a\\b"), std::string_view("a\0b", 3)}) {
    EXPECT_TRUE(absl::IsInvalidArgument(store_->NewWriter(bad).status())) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(store_->Stat(bad).status())) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(store_->Delete(bad))) << bad;
  }
  EXPECT_TRUE(absl::IsInvalidArgument(store_->NewWriter(std::string(1025, 'a')).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->List("", "", 0).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->List("", "", kMaxListLimit + 1).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->Stat("absent").status()));
}

TEST_P(BlobStoreConformanceTest, ConcurrentWritersOfDistinctAndSameNames) {
  std::vector<std::thread> threads;
  std::atomic<int> same_ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::string data = Pattern(kPartBytes + static_cast<size_t>(i), t * 100 + i);
        EXPECT_TRUE(store_->Put("c/" + std::to_string(t) + "/" + std::to_string(i), data).ok());
      }
      if (store_->Put("c/same", "t" + std::to_string(t)).ok()) same_ok.fetch_add(1);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(same_ok.load(), 1);
  absl::StatusOr<ListPage> page = store_->List("c/", "", 1000);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->blobs.size(), 81u);
  EXPECT_EQ(store_->Read("c/2/7", 0, 1 << 20).value_or(""), Pattern(kPartBytes + 7, 207));
}

}  // namespace
}  // namespace strata::blob::testing
