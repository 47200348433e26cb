#include "strata/store/rocksdb/crc32c.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>

#include "strata/store/rocksdb/rocksdb_row_store.h"

namespace strata::store::rocksdb_internal {
namespace {

uint32_t Ours(const std::string& s, uint32_t crc = 0) {
  return WrappedCrc32cExtend()(crc, s.data(), s.size());
}

// Published CRC32C check values (RFC 3720 appendix B.4 and the usual "123456789").
TEST(Crc32cTest, KnownValues) {
  const std::string check = "123456789";
  EXPECT_EQ(Crc32cPortable(0, check.data(), check.size()), 0xE3069283u);
  EXPECT_EQ(Ours(check), 0xE3069283u);
  EXPECT_EQ(Ours(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Ours(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  EXPECT_EQ(Ours(ascending), 0x46DD794Eu);
  EXPECT_EQ(Ours(""), 0u);
}

TEST(Crc32cTest, ExtendsAFinishedCrc) {
  std::mt19937 rng(7);
  std::string all(5000, '\0');
  for (char& c : all) c = static_cast<char>(rng());
  for (size_t cut : {0, 1, 7, 8, 9, 1000, 4999, 5000}) {
    const std::string a = all.substr(0, cut), b = all.substr(cut);
    EXPECT_EQ(Ours(b, Ours(a)), Ours(all)) << "cut at " << cut;
  }
}

// Checksums written before (by librocksdb's own code) and after must be the same numbers.
TEST(Crc32cTest, AgreesWithTheLibrarysOwnAndThePortableLoop) {
  Crc32cExtendFn library = LibraryCrc32cExtend();
  ASSERT_NE(library, nullptr);
  ASSERT_NE(library, WrappedCrc32cExtend());
  std::mt19937_64 rng(11);
  for (int round = 0; round < 2000; ++round) {
    std::string s(rng() % 3000, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    const size_t offset = rng() % 8 > s.size() ? 0 : rng() % 8;
    const char* p = s.data() + std::min(offset, s.size());
    const size_t n = s.size() - std::min(offset, s.size());
    const uint32_t init = round % 2 == 0 ? 0 : static_cast<uint32_t>(rng());
    const uint32_t ours = WrappedCrc32cExtend()(init, p, n);
    ASSERT_EQ(ours, library(init, p, n)) << "length " << n << " init " << init;
    ASSERT_EQ(ours, Crc32cPortable(init, p, n)) << "length " << n << " init " << init;
  }
}

// Opening a store writes its MANIFEST: RocksDB's own calls must have come through the wrap,
// and data written through it must read back (RocksDB checks every log record's CRC on
// reopen and every blob's on read).
TEST(Crc32cTest, RocksDbCallsReachTheWrapAndItsChecksumsVerify) {
  const std::string dir = ::testing::TempDir() + "/crc32c-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  {
    RocksRowStoreOptions options;
    options.path = dir;
    auto store = RocksRowStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    if (__builtin_cpu_supports("sse4.2")) {
      EXPECT_EQ(Crc32cImplementation(), "sse4.2");
    } else {
      EXPECT_EQ(Crc32cImplementation(), "rocksdb");
    }
    auto table = (*store)->OpenTable(TableOptions{.name = "t", .profile = TableProfile::kDocument});
    ASSERT_TRUE(table.ok()) << table.status();
    for (int i = 0; i < 100; ++i) {
      if (i == 50) {
        // The first half goes to a blob file (documents of 512 bytes or more), the second
        // stays in the log only.
        ASSERT_TRUE((*store)->CompactAll().ok());
      }
      WriteBatch batch;
      batch.Put("k" + std::to_string(i), std::string(2000, static_cast<char>('a' + i % 26)));
      ASSERT_TRUE((*table)->Apply("p", batch).ok());
    }
  }
  RocksRowStoreOptions options;
  options.path = dir;
  auto store = RocksRowStore::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto table = (*store)->OpenTable(TableOptions{.name = "t", .profile = TableProfile::kDocument});
  ASSERT_TRUE(table.ok()) << table.status();
  for (int i = 0; i < 100; ++i) {
    auto v = (*table)->Get("p", "k" + std::to_string(i));
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, std::string(2000, static_cast<char>('a' + i % 26)));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace strata::store::rocksdb_internal
