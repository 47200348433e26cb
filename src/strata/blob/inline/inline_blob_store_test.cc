#include "strata/blob/inline/inline_blob_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "strata/blob/blob_store_conformance.h"
#include "strata/blob/local/local_blob_store.h"
#include "strata/store/rocksdb/rocksdb_row_store.h"

namespace strata::blob {
namespace {

namespace fs = std::filesystem;

std::string FreshDir() {
  static std::mt19937_64 rng{std::random_device{}()};
  fs::path p = fs::temp_directory_path() / ("strata_inline_blob_" + std::to_string(rng()));
  return p.string();
}

InlineBlobStoreOptions MaxInline(uint64_t max_inline_bytes) {
  InlineBlobStoreOptions i;
  i.max_inline_bytes = max_inline_bytes;
  return i;
}

// RocksDB + local files under one directory: a fresh temporary one, removed at the end, or
// (the second constructor) a given one, opened again by each instance and kept.
class Stores {
 public:
  Stores(uint64_t part_bytes, uint64_t max_inline_bytes)
      : Stores(FreshDir(), MaxInline(max_inline_bytes), part_bytes) {
    remove_ = true;
  }
  Stores(std::string dir, InlineBlobStoreOptions io,
         uint64_t part_bytes = LocalBlobStoreOptions{}.part_bytes)
      : dir_(std::move(dir)) {
    store::RocksRowStoreOptions r;
    r.path = dir_ + "/rows";
    rows_ = *store::RocksRowStore::Open(r);
    LocalBlobStoreOptions o;
    o.root = dir_ + "/blobs";
    o.part_bytes = part_bytes;
    o.sync = false;  // the tests check visibility, not power loss
    files_ = *LocalBlobStore::Open(o);
    inline_ = *InlineBlobStore::Open(rows_.get(), files_.get(), io, &metrics_);
  }
  ~Stores() {
    inline_.reset();
    files_.reset();
    rows_.reset();
    if (remove_) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }
  InlineBlobStore* blobs() { return inline_.get(); }
  LocalBlobStore* files() { return files_.get(); }
  MetricsRegistry* metrics() { return &metrics_; }

 private:
  std::string dir_;
  bool remove_ = false;
  MetricsRegistry metrics_;
  std::unique_ptr<store::RocksRowStore> rows_;
  std::unique_ptr<LocalBlobStore> files_;
  std::unique_ptr<InlineBlobStore> inline_;
};

// The conformance suite over both paths: blobs up to 1000 bytes inline, larger ones (and
// every multi-part blob of the suite, whose parts are 4096 bytes) in files.
class ConformanceStore final : public BlobStore {
 public:
  explicit ConformanceStore(uint64_t part_bytes) : stores_(part_bytes, 1000) {}
  absl::StatusOr<std::unique_ptr<BlobWriter>> NewWriter(std::string_view n) override {
    return stores_.blobs()->NewWriter(n);
  }
  absl::StatusOr<std::unique_ptr<BlobReader>> NewReader(std::string_view n) override {
    return stores_.blobs()->NewReader(n);
  }
  absl::StatusOr<BlobInfo> Stat(std::string_view n) override { return stores_.blobs()->Stat(n); }
  absl::Status Delete(std::string_view n) override { return stores_.blobs()->Delete(n); }
  absl::Status DeleteMany(std::span<const std::string> n) override {
    return stores_.blobs()->DeleteMany(n);
  }
  std::vector<absl::Status> DeleteEach(std::span<const std::string> n) override {
    return stores_.blobs()->DeleteEach(n);
  }
  absl::StatusOr<ListPage> List(std::string_view p, std::string_view a, size_t l) override {
    return stores_.blobs()->List(p, a, l);
  }

 private:
  Stores stores_;
};

// Inline rows keep no modified time (the files do).
constexpr testing::BlobStoreTraits kInlineTraits{.every_blob_has_modified_time = false};

INSTANTIATE_BLOB_STORE_CONFORMANCE_WITH_TRAITS(
    Inline, kInlineTraits, [](uint64_t part_bytes) -> std::unique_ptr<BlobStore> {
      return std::make_unique<ConformanceStore>(part_bytes);
    });

TEST(InlineBlobStoreTest, SmallBlobsAreRowsAndLargerOnesFiles) {
  Stores s(4096, 100);
  ASSERT_TRUE(s.blobs()->Put("c/small", std::string(100, 's')).ok());
  // One byte over the limit, appended in two pieces: the second spills the buffer.
  auto w = s.blobs()->NewWriter("c/large");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(std::string(60, 'l')).ok());
  ASSERT_TRUE((*w)->Append(std::string(41, 'l')).ok());
  EXPECT_EQ((*w)->size(), 101u);
  ASSERT_TRUE((*w)->Commit().ok());

  EXPECT_TRUE(s.blobs()->table()->Get("b", "c/small").ok());
  EXPECT_TRUE(absl::IsNotFound(s.files()->Stat("c/small").status()));
  EXPECT_TRUE(absl::IsNotFound(s.blobs()->table()->Get("b", "c/large").status()));
  auto on_disk = s.files()->Stat("c/large");
  ASSERT_TRUE(on_disk.ok()) << on_disk.status();
  EXPECT_EQ(on_disk->size, 101u);
  EXPECT_EQ(*s.blobs()->Read("c/small", 0, 1000), std::string(100, 's'));
  EXPECT_EQ(*s.blobs()->Read("c/large", 0, 1000), std::string(101, 'l'));

  const std::string metrics = s.metrics()->RenderPrometheus();
  EXPECT_NE(metrics.find("strata_blob_commits_total{store=\"inline\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("strata_blob_commits_total{store=\"base\"} 1"), std::string::npos)
      << metrics;
}

TEST(InlineBlobStoreTest, ExcludedPrefixesAlwaysGoToTheBaseStore) {
  InlineBlobStoreOptions io;
  io.never_inline_prefixes = {"cold/"};
  const std::string dir = FreshDir();
  {
    Stores s(dir, io);
    InlineBlobStore* blobs = s.blobs();
    LocalBlobStore* files = s.files();
    ASSERT_TRUE(blobs->Put("cold/b/k", "small").ok());
    ASSERT_TRUE(blobs->Put("cold/b/empty", "").ok());
    ASSERT_TRUE(blobs->Put("coldish/b/k", "small").ok());
    EXPECT_EQ(*files->Read("cold/b/k", 0, 100), "small");
    EXPECT_TRUE(files->Stat("cold/b/empty").ok());
    EXPECT_TRUE(absl::IsNotFound(files->Stat("coldish/b/k").status()));  // inline
    EXPECT_EQ(*blobs->Read("cold/b/k", 0, 100), "small");
    EXPECT_EQ(*blobs->Read("coldish/b/k", 0, 100), "small");
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST(InlineBlobStoreTest, NamesAreWriteOnceAcrossBothStores) {
  Stores s(4096, 100);
  ASSERT_TRUE(s.files()->Put("c/in-files", "tiny").ok());  // small, but already a file
  EXPECT_TRUE(absl::IsAlreadyExists(s.blobs()->Put("c/in-files", "x")));
  ASSERT_TRUE(s.blobs()->Put("c/inline", "tiny").ok());
  EXPECT_TRUE(absl::IsAlreadyExists(s.blobs()->Put("c/inline", std::string(500, 'x'))));
  EXPECT_TRUE(absl::IsNotFound(s.files()->Stat("c/inline").status()));  // the spill aborted
  EXPECT_EQ(*s.blobs()->Read("c/in-files", 0, 10), "tiny");
  EXPECT_EQ(*s.blobs()->Read("c/inline", 0, 10), "tiny");
}

TEST(InlineBlobStoreTest, DeleteManyRemovesFromBothStoresInOneCall) {
  Stores s(4096, 100);
  std::vector<std::string> names;
  for (int i = 0; i < 6; ++i) {
    names.push_back("c/o" + std::to_string(i));
    ASSERT_TRUE(s.blobs()->Put(names.back(), std::string(i % 2 ? 300 : 30, 'x')).ok());
  }
  ASSERT_TRUE(s.blobs()->Put("c/keep-small", "k").ok());
  ASSERT_TRUE(s.blobs()->Put("c/keep-large", std::string(300, 'k')).ok());
  names.push_back("c/never-written");
  ASSERT_TRUE(s.blobs()->DeleteMany(names).ok());
  for (const std::string& n : names) {
    EXPECT_TRUE(absl::IsNotFound(s.blobs()->Stat(n).status())) << n;
    EXPECT_TRUE(absl::IsNotFound(s.files()->Stat(n).status())) << n;
    EXPECT_TRUE(absl::IsNotFound(s.blobs()->table()->Get("b", n).status())) << n;
  }
  auto page = s.blobs()->List("c/", "", 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->blobs.size(), 2u);
  EXPECT_EQ(page->blobs[0].name, "c/keep-large");
  EXPECT_EQ(page->blobs[1].name, "c/keep-small");
}

TEST(InlineBlobStoreTest, ListMergesBothStoresInNameOrderAcrossPages) {
  Stores s(4096, 100);
  std::vector<std::string> want;
  for (int i = 0; i < 40; ++i) {
    char name[16];
    std::snprintf(name, sizeof(name), "p/%02d", i);
    want.push_back(name);
    // Runs of each kind, so pages end in both stores' names.
    ASSERT_TRUE(s.blobs()->Put(name, std::string((i / 3) % 2 ? 200 : 20, 'x')).ok());
  }
  ASSERT_TRUE(s.blobs()->Put("q/other", "x").ok());
  std::vector<std::string> got;
  std::string after;
  for (int pages = 0; pages < 100; ++pages) {
    auto page = s.blobs()->List("p/", after, 7);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const BlobInfo& b : page->blobs) {
      got.push_back(b.name);
      EXPECT_EQ(b.size, (std::stoi(b.name.substr(2)) / 3) % 2 ? 200u : 20u) << b.name;
    }
    if (page->next_after.empty()) break;
    after = page->next_after;
  }
  EXPECT_EQ(got, want);
}

TEST(InlineBlobStoreTest, InlineBlobsStayReadableAndDeletableWhenInliningIsTurnedOff) {
  const std::string dir = FreshDir();
  auto open = [&](uint64_t max_inline, auto&& body) {
    Stores s(dir, MaxInline(max_inline));
    body(s.blobs(), s.files());
  };
  open(100, [](InlineBlobStore* blobs, LocalBlobStore*) {
    ASSERT_TRUE(blobs->Put("c/old-a", "a").ok());
    ASSERT_TRUE(blobs->Put("c/old-b", "b").ok());
  });
  open(0, [](InlineBlobStore* blobs, LocalBlobStore* files) {
    EXPECT_EQ(*blobs->Read("c/old-a", 0, 10), "a");
    ASSERT_TRUE(blobs->Put("c/new", "n").ok());
    EXPECT_EQ(*files->Read("c/new", 0, 10), "n");  // new small blobs are files now
    ASSERT_TRUE(blobs->Put("c/empty", "").ok());
    EXPECT_TRUE(files->Stat("c/empty").ok());
    auto page = blobs->List("c/", "", 10);
    ASSERT_TRUE(page.ok());
    EXPECT_EQ(page->blobs.size(), 4u);
    const std::vector<std::string> gone = {"c/old-a", "c/new"};
    ASSERT_TRUE(blobs->DeleteMany(gone).ok());
    EXPECT_TRUE(absl::IsNotFound(blobs->Stat("c/old-a").status()));
    EXPECT_TRUE(absl::IsNotFound(blobs->Stat("c/new").status()));
    EXPECT_EQ(*blobs->Read("c/old-b", 0, 10), "b");
  });
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST(InlineBlobStoreTest, InlineBlobsSurviveReopen) {
  const std::string dir = FreshDir();
  {
    Stores s(dir, {});
    ASSERT_TRUE(s.blobs()->Put("c/kept", "bytes").ok());
  }
  {
    Stores s(dir, {});
    EXPECT_EQ(*s.blobs()->Read("c/kept", 0, 100), "bytes");
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace strata::blob
