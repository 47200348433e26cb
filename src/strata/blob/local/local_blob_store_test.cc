#include "strata/blob/local/local_blob_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "strata/blob/blob_store_conformance.h"

namespace strata::blob {
namespace {

namespace fs = std::filesystem;

std::string FreshDir() {
  static std::mt19937_64 rng{std::random_device{}()};
  fs::path p = fs::temp_directory_path() / ("strata_blob_" + std::to_string(rng()));
  return p.string();
}

// Removes its directory when destroyed (after the store it wraps).
class TempLocalStore final : public BlobStore {
 public:
  explicit TempLocalStore(uint64_t part_bytes) : dir_(FreshDir()) {
    LocalBlobStoreOptions o;
    o.root = dir_;
    o.part_bytes = part_bytes;
    o.sync = false;  // the suite tests visibility, not power loss
    store_ = *LocalBlobStore::Open(o);
  }
  ~TempLocalStore() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  absl::StatusOr<std::unique_ptr<BlobWriter>> NewWriter(std::string_view n) override {
    return store_->NewWriter(n);
  }
  absl::StatusOr<std::unique_ptr<BlobReader>> NewReader(std::string_view n) override {
    return store_->NewReader(n);
  }
  absl::StatusOr<BlobInfo> Stat(std::string_view n) override { return store_->Stat(n); }
  absl::Status Delete(std::string_view n) override { return store_->Delete(n); }
  absl::StatusOr<ListPage> List(std::string_view p, std::string_view a, size_t l) override {
    return store_->List(p, a, l);
  }

 private:
  std::string dir_;
  std::unique_ptr<LocalBlobStore> store_;
};

INSTANTIATE_BLOB_STORE_CONFORMANCE(Local, [](uint64_t part_bytes) -> std::unique_ptr<BlobStore> {
  return std::make_unique<TempLocalStore>(part_bytes);
});

class LocalBlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = FreshDir(); }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::unique_ptr<LocalBlobStore> Open(uint64_t part_bytes = 4096) {
    LocalBlobStoreOptions o;
    o.root = dir_;
    o.part_bytes = part_bytes;
    auto s = LocalBlobStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::string dir_;
};

TEST_F(LocalBlobStoreTest, LayoutHasOneFilePerPartUnderEscapedNames) {
  auto store = Open();
  ASSERT_TRUE(store->Put("hot/bucket/a b/.x@00ff", std::string(4096 * 2 + 1, 'z')).ok());
  auto path = store->PathOf("hot/bucket/a b/.x@00ff");
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(*path, dir_ + "/hot/bucket/a b/%2Ex@00ff~obj");
  EXPECT_TRUE(fs::is_regular_file(*path + "/part-000000"));
  EXPECT_TRUE(fs::is_regular_file(*path + "/part-000002"));
  EXPECT_FALSE(fs::exists(*path + "/part-000003"));
  EXPECT_EQ(fs::file_size(*path + "/part-000002"), 1u);
}

TEST_F(LocalBlobStoreTest, AOnePartBlobIsOneFile) {
  auto store = Open();
  ASSERT_TRUE(store->Put("hot/b/small", std::string(4096, 's')).ok());  // exactly one part
  ASSERT_TRUE(store->Put("hot/b/empty", "").ok());
  auto path = store->PathOf("hot/b/small");
  ASSERT_TRUE(path.ok());
  EXPECT_TRUE(fs::is_regular_file(*path));
  EXPECT_EQ(fs::file_size(*path), 4096u);
  auto info = store->Stat("hot/b/small");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->parts, 1u);
  EXPECT_EQ(info->size, 4096u);
  EXPECT_EQ(store->Read("hot/b/small", 4090, 100).value_or(""), "ssssss");
  auto empty = store->Stat("hot/b/empty");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->parts, 1u);
  EXPECT_EQ(empty->size, 0u);
  // One byte more: a directory of two parts.
  ASSERT_TRUE(store->Put("hot/b/two", std::string(4097, 't')).ok());
  auto two = store->PathOf("hot/b/two");
  ASSERT_TRUE(two.ok());
  EXPECT_TRUE(fs::is_directory(*two));
  EXPECT_EQ(fs::file_size(*two + "/part-000001"), 1u);
  auto page = store->List("hot/b/", "", 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->blobs.size(), 3u);
  EXPECT_TRUE(store->Delete("hot/b/small").ok());
  EXPECT_FALSE(fs::exists(*path));
  EXPECT_TRUE(fs::is_empty(dir_ + "/~tmp"));
}

TEST_F(LocalBlobStoreTest, OpenClearsWhatACrashedWriterLeft) {
  {
    auto store = Open();
    auto w = store->NewWriter("left/behind");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append("partial").ok());
    // Simulate a crash: the temporary directory outlives the writer.
    fs::copy(dir_ + "/~tmp", dir_ + "/saved", fs::copy_options::recursive);
  }
  fs::remove_all(dir_ + "/~tmp");
  fs::rename(dir_ + "/saved", dir_ + "/~tmp");
  ASSERT_FALSE(fs::is_empty(dir_ + "/~tmp"));
  auto store = Open();
  EXPECT_TRUE(fs::is_empty(dir_ + "/~tmp"));
  EXPECT_TRUE(absl::IsNotFound(store->Stat("left/behind").status()));
}

TEST_F(LocalBlobStoreTest, ADeleteCutShortIsInvisibleAndFinishedByTheNextDelete) {
  auto store = Open();
  ASSERT_TRUE(store->Put("b/x", std::string(4096 * 2 + 1, 'x')).ok());
  ASSERT_TRUE(store->Put("b/y", "y").ok());
  auto path = store->PathOf("b/x");
  ASSERT_TRUE(path.ok());
  const std::string del = path->substr(0, path->size() - 4) + "~del";
  // A crash after the in-place rename, before the parts were removed.
  fs::rename(*path, del);
  fs::remove(del + "/part-000001");
  EXPECT_TRUE(absl::IsNotFound(store->Stat("b/x").status()));
  auto page = store->List("b/", "", 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->blobs.size(), 1u);
  EXPECT_EQ(page->blobs[0].name, "b/y");
  // The name is written again, then deleted: the leftover goes with it.
  ASSERT_TRUE(store->Put("b/x", "again").ok());
  ASSERT_TRUE(store->Delete("b/x").ok());
  EXPECT_FALSE(fs::exists(del));
  EXPECT_FALSE(fs::exists(*path));
  // A redelivered delete of a name whose rename happened also finishes the removal.
  ASSERT_TRUE(store->Put("b/x", "third").ok());
  fs::rename(*path, del);
  ASSERT_TRUE(store->Delete("b/x").ok());
  EXPECT_FALSE(fs::exists(del));
  EXPECT_EQ(store->Read("b/y", 0, 10).value_or(""), "y");
}

TEST_F(LocalBlobStoreTest, ComponentsTooLongOnceEscapedAreRejected) {
  auto store = Open();
  EXPECT_TRUE(store->Put(std::string(240, 'a'), "x").ok());
  EXPECT_TRUE(absl::IsInvalidArgument(store->Put(std::string(241, 'a'), "x")));
  EXPECT_TRUE(absl::IsInvalidArgument(store->Put(std::string(81, '%'), "x")));
}

TEST_F(LocalBlobStoreTest, BadOptions) {
  LocalBlobStoreOptions o;
  EXPECT_TRUE(absl::IsInvalidArgument(LocalBlobStore::Open(o).status()));
  o.root = dir_;
  o.part_bytes = 100;
  EXPECT_TRUE(absl::IsInvalidArgument(LocalBlobStore::Open(o).status()));
}

}  // namespace
}  // namespace strata::blob
