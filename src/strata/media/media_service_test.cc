// MediaService on both embedded row stores (memory and RocksDB) and the local blob store.
#include "strata/media/media_service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "strata/base/metrics.h"
#include "strata/blob/local/local_blob_store.h"
#include "strata/store/memory_row_store.h"
#include "strata/store/rocksdb/rocksdb_row_store.h"

namespace strata::media {
namespace {

namespace fs = std::filesystem;
constexpr Millis kDay = 86'400'000;

std::string Pattern(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class MediaServiceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    static std::mt19937_64 rng{std::random_device{}()};
    dir_ = (fs::temp_directory_path() / ("strata_media_" + std::to_string(rng()))).string();
    if (GetParam() == "Memory") {
      rows_ = std::make_unique<store::MemoryRowStore>(&clock_);
    } else {
      store::RocksRowStoreOptions o;
      o.path = dir_ + "/rows";
      o.clock = &clock_;
      auto r = store::RocksRowStore::Open(o);
      ASSERT_TRUE(r.ok()) << r.status();
      rows_ = std::move(*r);
    }
    blob::LocalBlobStoreOptions bo;
    bo.root = dir_ + "/blobs";
    bo.part_bytes = 64 << 10;
    bo.sync = false;
    auto b = blob::LocalBlobStore::Open(bo);
    ASSERT_TRUE(b.ok()) << b.status();
    blobs_ = std::move(*b);
    auto s = MediaService::Open(rows_.get(), blobs_.get(), &clock_, &metrics_);
    ASSERT_TRUE(s.ok()) << s.status();
    service_ = std::move(*s);
    BucketPolicy p;
    p.ttl_ms = 30 * kDay;
    p.grace_ms = 7 * kDay;
    ASSERT_TRUE(service_->PutBucket("media", p).ok());
  }
  void TearDown() override {
    service_.reset();
    blobs_.reset();
    rows_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  absl::StatusOr<ObjectInfo> Put(std::string_view key, std::string_view data,
                                 PutObjectOptions o = {}, size_t piece = 1000) {
    auto begun = service_->BeginPut("media", key, std::move(o));
    if (!begun.ok()) return begun.status();
    std::unique_ptr<Upload> up = std::move(*begun);
    for (size_t off = 0; off < data.size(); off += piece) {
      absl::Status s = up->Append(data.substr(off, piece));
      if (!s.ok()) return s;
    }
    return up->Commit();
  }

  std::string ReadAll(std::string_view key) {
    auto opened = service_->OpenForRead("media", key);
    if (!opened.ok()) return "<" + opened.status().ToString() + ">";
    std::string out;
    EXPECT_TRUE(opened->reader->ReadAt(0, opened->reader->size(), &out).ok());
    return out;
  }

  std::vector<std::string> Keys(const absl::StatusOr<ObjectPage>& page) {
    std::vector<std::string> out;
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) {
      for (const auto& o : page->objects) out.push_back(o.key);
    }
    return out;
  }

  ManualClock clock_;
  MetricsRegistry metrics_;
  std::string dir_;
  std::unique_ptr<store::RowStore> rows_;
  std::unique_ptr<blob::LocalBlobStore> blobs_;
  std::unique_ptr<MediaService> service_;
};

TEST_P(MediaServiceTest, BucketPolicyIsStoredAndUpdated) {
  auto b = service_->GetBucket("media");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->policy.ttl_ms, 30 * kDay);
  EXPECT_EQ(b->policy.storage_class, "hot");
  const Millis created = b->created_at;
  clock_.Advance(1000);
  BucketPolicy p;
  p.ttl_ms = 0;
  p.grace_ms = kDay;
  p.storage_class = "cold";
  ASSERT_TRUE(service_->PutBucket("media", p).ok());
  b = service_->GetBucket("media");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->created_at, created);
  EXPECT_EQ(b->updated_at, created + 1000);
  EXPECT_EQ(b->policy.storage_class, "cold");
  EXPECT_TRUE(absl::IsNotFound(service_->GetBucket("nope").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(service_->GetBucket("No").status()));
  p.storage_class = "Bad Class";
  EXPECT_TRUE(absl::IsInvalidArgument(service_->PutBucket("media", p).status()));
}

TEST_P(MediaServiceTest, PutStoresBytesInPartsWithChecksums) {
  const std::string data = Pattern(200'000, 1);  // 4 parts of 64 KiB
  PutObjectOptions o;
  o.content_type = "video/mp4";
  o.meta = {{"title", "pilot"}, {"lang", "en"}};
  o.wrapped_key = "wrapped";
  auto info = Put("shows/pilot.mp4", data, o, 7000);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->row.size, data.size());
  EXPECT_EQ(info->row.parts, 4u);
  ObjectHasher h;
  h.Update(data);
  Digests d = h.Finish();
  EXPECT_EQ(info->row.sha1, d.sha1);
  EXPECT_EQ(info->row.md5, d.md5);
  EXPECT_EQ(info->row.xxh3, d.xxh3);
  EXPECT_EQ(info->row.ttl_ms, 30 * kDay);
  EXPECT_EQ(info->row.blob, "hot/media/shows/pilot.mp4@" + Hex64(info->row.generation));
  auto head = service_->Head("media", "shows/pilot.mp4");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->row.content_type, "video/mp4");
  EXPECT_EQ(head->row.wrapped_key, "wrapped");
  ASSERT_EQ(head->row.meta.size(), 2u);
  EXPECT_EQ(head->row.meta[0].first, "lang");  // sorted
  EXPECT_EQ(ReadAll("shows/pilot.mp4"), data);
  auto opened = service_->OpenForRead("media", "shows/pilot.mp4");
  ASSERT_TRUE(opened.ok());
  std::string range;
  ASSERT_TRUE(opened->reader->ReadAt(65'530, 20, &range).ok());
  EXPECT_EQ(range, data.substr(65'530, 20));
}

TEST_P(MediaServiceTest, AbandonedUploadLeavesNothing) {
  {
    auto up = service_->BeginPut("media", "half", {});
    ASSERT_TRUE(up.ok());
    ASSERT_TRUE((*up)->Append(Pattern(100'000, 2)).ok());
  }
  EXPECT_TRUE(absl::IsNotFound(service_->Head("media", "half").status()));
  auto blobs = blobs_->List("", "", 100);
  ASSERT_TRUE(blobs.ok());
  EXPECT_TRUE(blobs->blobs.empty());
  auto rows = service_->objects_table()->Scan("media", {});
  ASSERT_TRUE(rows.ok());
  EXPECT_TRUE(rows->rows.empty());  // no upload row left behind either
}

TEST_P(MediaServiceTest, UploadRowsTrackUploadsUntilTheirCommit) {
  auto up = service_->BeginPut("media", "u", {});
  ASSERT_TRUE(up.ok());
  auto rows = service_->objects_table()->Scan("media", {});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->rows.size(), 1u);
  EXPECT_EQ(rows->rows[0].clustering[0], 'u');
  std::string key;
  uint64_t generation = 0;
  ASSERT_TRUE(ParseGenerationClustering(rows->rows[0].clustering, &key, &generation));
  EXPECT_EQ(key, "u");
  // Too young to be claimed as abandoned.
  EXPECT_TRUE(absl::IsFailedPrecondition(
      service_->AbandonUpload("media", "u", generation, clock_.NowMillis() - 1).status()));
  ASSERT_TRUE((*up)->Append("bytes").ok());
  auto info = (*up)->Commit();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->row.generation, generation);
  // The commit batch removed it: nothing left to claim.
  EXPECT_TRUE(absl::IsNotFound(
      service_->AbandonUpload("media", "u", generation, clock_.NowMillis() + 1).status()));
  rows = service_->objects_table()->Scan("media", {});
  ASSERT_TRUE(rows.ok());
  for (const auto& r : rows->rows) EXPECT_NE(r.clustering[0], 'u');
}

TEST_P(MediaServiceTest, AClaimedUploadCannotCommit) {
  auto up = service_->BeginPut("media", "c", {});
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE((*up)->Append("bytes").ok());
  auto rows = service_->objects_table()->Scan("media", {});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->rows.size(), 1u);
  std::string key;
  uint64_t generation = 0;
  ASSERT_TRUE(ParseGenerationClustering(rows->rows[0].clustering, &key, &generation));
  auto claimed = service_->AbandonUpload("media", "c", generation, clock_.NowMillis() + 1);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  EXPECT_EQ(claimed->size, 0u);  // no bytes committed yet
  auto info = (*up)->Commit();
  EXPECT_TRUE(absl::IsAborted(info.status())) << info.status();
  EXPECT_TRUE(absl::IsNotFound(service_->Head("media", "c").status()));
  auto blobs = blobs_->List("", "", 100);
  ASSERT_TRUE(blobs.ok());
  EXPECT_TRUE(blobs->blobs.empty());
  // The claim left a superseded row naming the bytes (the GC's to delete).
  rows = service_->objects_table()->Scan("media", {});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->rows.size(), 1u);
  EXPECT_EQ(rows->rows[0].clustering[0], 'g');
}

TEST_P(MediaServiceTest, BadInputNamesTheField) {
  auto expect_field = [](const absl::Status& s, std::string_view field) {
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_EQ(std::string(s.message()).substr(0, field.size()), field) << s;
  };
  expect_field(service_->BeginPut("media", "a/../b", {}).status(), "key:");
  expect_field(service_->BeginPut("BAD", "k", {}).status(), "bucket:");
  PutObjectOptions o;
  o.meta = {{"Bad Key", "v"}};
  expect_field(service_->BeginPut("media", "k", o).status(), "meta:");
  o.meta = {{"k", "v"}, {"k", "w"}};
  expect_field(service_->BeginPut("media", "k", o).status(), "meta.k:");
  o.meta = {};
  o.ttl_ms = -1;
  expect_field(service_->BeginPut("media", "k", o).status(), "ttl:");
  EXPECT_TRUE(absl::IsNotFound(service_->BeginPut("missing", "k", {}).status()));
  ListQuery q;
  q.limit = 0;
  expect_field(service_->List("media", q).status(), "limit:");
}

TEST_P(MediaServiceTest, SoftDeleteHidesAtOnceAndRestoreWithinGrace) {
  ASSERT_TRUE(Put("a", "bytes").ok());
  auto del = service_->Delete("media", "a");
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->row.deleted_at, clock_.NowMillis());
  EXPECT_TRUE(absl::IsNotFound(service_->Head("media", "a").status()));
  EXPECT_TRUE(absl::IsNotFound(service_->OpenForRead("media", "a").status()));
  EXPECT_TRUE(Keys(service_->List("media", {})).empty());
  EXPECT_TRUE(absl::IsNotFound(service_->Delete("media", "a").status()));
  ListQuery deleted;
  deleted.deleted = true;
  EXPECT_EQ(Keys(service_->List("media", deleted)), std::vector<std::string>{"a"});
  // The bytes stay until the garbage collector comes.
  EXPECT_TRUE(blobs_->Stat(del->row.blob).ok());

  clock_.Advance(7 * kDay - 1);
  auto restored = service_->Restore("media", "a");
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->row.deleted_at, 0);
  EXPECT_EQ(ReadAll("a"), "bytes");
  EXPECT_TRUE(absl::IsFailedPrecondition(service_->Restore("media", "a").status()));

  EXPECT_TRUE(Keys(service_->List("media", deleted)).empty());
  ASSERT_TRUE(service_->Delete("media", "a").ok());
  clock_.Advance(7 * kDay);
  EXPECT_TRUE(absl::IsNotFound(service_->Restore("media", "a").status()));
  EXPECT_TRUE(Keys(service_->List("media", deleted)).empty());  // past its grace period
  EXPECT_TRUE(absl::IsNotFound(service_->Restore("media", "never").status()));
}

TEST_P(MediaServiceTest, TtlFromBucketOrObjectEndsAccess) {
  PutObjectOptions short_ttl;
  short_ttl.ttl_ms = kDay;
  ASSERT_TRUE(Put("short", "s", short_ttl).ok());
  PutObjectOptions forever;
  forever.ttl_ms = 0;
  ASSERT_TRUE(Put("forever", "f", forever).ok());
  ASSERT_TRUE(Put("bucket-ttl", "b").ok());
  clock_.Advance(kDay);
  EXPECT_TRUE(absl::IsNotFound(service_->Head("media", "short").status()));
  EXPECT_TRUE(service_->Head("media", "bucket-ttl").ok());
  clock_.Advance(29 * kDay);
  EXPECT_TRUE(absl::IsNotFound(service_->Head("media", "bucket-ttl").status()));
  EXPECT_EQ(Keys(service_->List("media", {})), std::vector<std::string>{"forever"});
  // An expired object cannot be deleted or restored; it is the GC's now.
  EXPECT_TRUE(absl::IsNotFound(service_->Delete("media", "short").status()));
  EXPECT_TRUE(absl::IsNotFound(service_->Restore("media", "short").status()));
}

TEST_P(MediaServiceTest, RewriteGetsNewGenerationAndSupersedesOldBytes) {
  PutObjectOptions o1;
  o1.meta = {{"state", "draft"}};
  auto first = Put("doc", "v1", o1);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(service_->Delete("media", "doc").ok());
  PutObjectOptions o2;
  o2.meta = {{"state", "final"}};
  auto second = Put("doc", "version two", o2);
  ASSERT_TRUE(second.ok());
  EXPECT_GT(second->row.generation, first->row.generation);
  EXPECT_NE(second->row.blob, first->row.blob);
  EXPECT_EQ(ReadAll("doc"), "version two");
  // The old generation's bytes are recorded for the GC, and still there.
  auto g =
      service_->objects_table()->Get("media", SupersededClustering("doc", first->row.generation));
  ASSERT_TRUE(g.ok()) << g.status();
  auto sup = DecodeSupersededRow(*g);
  ASSERT_TRUE(sup.ok());
  EXPECT_EQ(sup->blob, first->row.blob);
  EXPECT_EQ(sup->size, 2u);
  // The old index entry is gone, the new one is there.
  EXPECT_TRUE(Keys(service_->Search("media", "state", "draft", {})).empty());
  EXPECT_EQ(Keys(service_->Search("media", "state", "final", {})), std::vector<std::string>{"doc"});
  EXPECT_TRUE(absl::IsNotFound(
      service_->objects_table()->Get("media", IndexClustering("state", "draft", "doc")).status()));
}

TEST_P(MediaServiceTest, ListPagesByPrefixAndAfter) {
  for (const char* k : {"a/1", "a/2", "a/3", "b/1", "a/20", "ab"}) ASSERT_TRUE(Put(k, k).ok());
  ASSERT_TRUE(service_->Delete("media", "a/2").ok());
  ListQuery q;
  q.prefix = "a/";
  q.limit = 2;
  auto page = service_->List("media", q);
  EXPECT_EQ(Keys(page), (std::vector<std::string>{"a/1", "a/20"}));
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->next_after, "a/20");
  q.after = page->next_after;
  page = service_->List("media", q);
  EXPECT_EQ(Keys(page), (std::vector<std::string>{"a/3"}));
  EXPECT_TRUE(page->next_after.empty());
  EXPECT_EQ(Keys(service_->List("media", {})),
            (std::vector<std::string>{"a/1", "a/20", "a/3", "ab", "b/1"}));
  EXPECT_EQ(page->objects[0].row.size, 3u);
  EXPECT_TRUE(absl::IsNotFound(service_->List("nobucket", {}).status()));
}

TEST_P(MediaServiceTest, SearchByMetadataSkipsDeletedAndPages) {
  for (int i = 0; i < 5; ++i) {
    PutObjectOptions o;
    o.meta = {{"show", i % 2 == 0 ? "even" : "odd"}, {"n", std::to_string(i)}};
    ASSERT_TRUE(Put("clip/" + std::to_string(i), "x", o).ok());
  }
  ASSERT_TRUE(service_->Delete("media", "clip/2").ok());
  EXPECT_EQ(Keys(service_->Search("media", "show", "even", {})),
            (std::vector<std::string>{"clip/0", "clip/4"}));
  ListQuery q;
  q.limit = 1;
  auto page = service_->Search("media", "show", "odd", q);
  EXPECT_EQ(Keys(page), std::vector<std::string>{"clip/1"});
  q.after = page->next_after;
  EXPECT_EQ(Keys(service_->Search("media", "show", "odd", q)), std::vector<std::string>{"clip/3"});
  ASSERT_TRUE(service_->Restore("media", "clip/2").ok());
  q = {};
  q.prefix = "clip/2";
  EXPECT_EQ(Keys(service_->Search("media", "show", "even", q)), std::vector<std::string>{"clip/2"});
  EXPECT_TRUE(Keys(service_->Search("media", "show", "none", {})).empty());
  EXPECT_TRUE(absl::IsInvalidArgument(service_->Search("media", "Bad", "x", {}).status()));
}

TEST_P(MediaServiceTest, ConcurrentPutsAndDeletesOfOneKeyStayConsistent) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        PutObjectOptions o;
        o.meta = {{"writer", std::to_string(t)}};
        EXPECT_TRUE(Put("hot-key", "t" + std::to_string(t), o).ok());
        (void)service_->Delete("media", "hot-key");
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(Put("hot-key", "final").ok());
  EXPECT_EQ(ReadAll("hot-key"), "final");
  // Exactly one index entry per live generation: the final put has no metadata.
  for (int t = 0; t < 4; ++t) {
    EXPECT_TRUE(Keys(service_->Search("media", "writer", std::to_string(t), {})).empty());
  }
  // Every generation but the current one has a superseded row naming its bytes.
  store::ScanOptions scan;
  scan.start = "g";
  scan.end = "h";
  auto rows = service_->objects_table()->Scan("media", scan);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->rows.size(), 80u);
}

TEST_P(MediaServiceTest, GenerationsSkipBlobNamesAlreadyTaken) {
  // An orphan (bytes of a crashed write) sits where the next generation's name would be.
  const uint64_t next = static_cast<uint64_t>(clock_.NowMillis()) * 1000;
  const std::string orphan = "hot/media/k@" + Hex64(next);
  ASSERT_TRUE(blobs_->Put(orphan, "orphan").ok());
  auto info = Put("k", "fresh");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_GT(info->row.generation, next);
  EXPECT_EQ(ReadAll("k"), "fresh");
  EXPECT_EQ(blobs_->Read(orphan, 0, 10).value_or(""), "orphan");
  // A later write of the key gets a higher generation even if the clock has not moved.
  auto again = Put("k", "again");
  ASSERT_TRUE(again.ok());
  EXPECT_GT(again->row.generation, info->row.generation);
}

TEST_P(MediaServiceTest, ConsistentSnapshotScanFindsWhatTheGcMustDelete) {
  ASSERT_TRUE(Put("keep", "k").ok());
  ASSERT_TRUE(Put("gone", "g").ok());
  ASSERT_TRUE(service_->Delete("media", "gone").ok());
  PutObjectOptions short_ttl;
  short_ttl.ttl_ms = kDay;
  ASSERT_TRUE(Put("old", "o", short_ttl).ok());
  auto first = Put("re", "1");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(Put("re", "2").ok());
  clock_.Advance(8 * kDay);  // past the 7-day grace and the 1-day TTL
  auto snapshot = rows_->NewSnapshot();
  ASSERT_TRUE(snapshot.ok());
  // A delete after the snapshot must not be seen, even once it is past its grace period.
  ASSERT_TRUE(service_->Delete("media", "keep").ok());
  clock_.Advance(8 * kDay);

  // The mark phase: a full scan of media_objects from the snapshot, split in ranges.
  store::ReadOptions read;
  read.snapshot = snapshot->get();
  auto ranges = service_->objects_table()->SplitRanges(2);
  ASSERT_TRUE(ranges.ok());
  const Millis now = clock_.NowMillis();
  std::set<std::string> eligible, superseded_blobs;
  size_t index_entries = 0;
  for (const store::KeyRange& range : *ranges) {
    std::string cursor;
    do {
      auto page = service_->objects_table()->ScanRange(range, 100, cursor, read);
      ASSERT_TRUE(page.ok()) << page.status();
      for (const store::TableRow& r : page->rows) {
        EXPECT_EQ(r.partition, "media");
        if (r.clustering[0] == 'o') {
          auto row = DecodeObjectRow(r.value);
          ASSERT_TRUE(row.ok());
          bool past_grace = row->deleted_at != 0 && row->deleted_at + row->grace_ms <= now;
          bool expired = row->expires_at() != 0 && row->expires_at() <= now;
          if (past_grace || expired) eligible.insert(r.clustering.substr(1));
        } else if (r.clustering[0] == 'g') {
          auto row = DecodeSupersededRow(r.value);
          ASSERT_TRUE(row.ok());
          superseded_blobs.insert(row->blob);
        } else if (r.clustering[0] == 'i') {
          ++index_entries;
        }
      }
      cursor = page->next_cursor;
    } while (!cursor.empty());
  }
  EXPECT_EQ(eligible, (std::set<std::string>{"gone", "old"}));
  EXPECT_EQ(superseded_blobs, std::set<std::string>{first->row.blob});
  EXPECT_EQ(index_entries, 0u);
}

TEST_P(MediaServiceTest, EveryRowThatNamesBytesKeepsThemFromTheOrphanScan) {
  auto v1 = Put("k", "one");
  ASSERT_TRUE(v1.ok());
  auto v2 = Put("k", "two");
  ASSERT_TRUE(v2.ok());
  // What a crash between the bytes and the metadata leaves: an upload row and its bytes.
  const uint64_t pending_gen = v2->row.generation + 100;
  const std::string pending = BlobName("hot", "media", "p", pending_gen);
  ASSERT_TRUE(service_->objects_table()
                  ->Put("media", UploadClustering("p", pending_gen),
                        EncodeUploadRow({pending, "hot", clock_.NowMillis()}))
                  .ok());
  ASSERT_TRUE(blobs_->Put(pending, "pending").ok());
  // What a power loss that took the upload row leaves: bytes alone.
  const std::string lost = BlobName("hot", "media", "lost", pending_gen);
  ASSERT_TRUE(blobs_->Put(lost, "lost").ok());

  struct Case {
    std::string key;
    uint64_t generation;
    std::string blob;
    bool referenced;
  };
  const Case cases[] = {
      {"k", v1->row.generation, v1->row.blob, true},  // superseded row
      {"k", v2->row.generation, v2->row.blob, true},  // object row
      {"p", pending_gen, pending, true},              // upload row
      {"lost", pending_gen, lost, false},
      // Another class's name for a generation a row holds: not named.
      {"k", v2->row.generation, BlobName("cold", "media", "k", v2->row.generation), false}};
  for (const Case& c : cases) {
    auto referenced = service_->BlobReferenced("media", c.key, c.generation, c.blob);
    ASSERT_TRUE(referenced.ok()) << referenced.status();
    EXPECT_EQ(*referenced, c.referenced) << c.blob;
  }
  for (const Case& c : cases) {
    if (!c.referenced) continue;
    auto deleted = service_->DeleteUnreferencedBlob("media", c.key, c.generation, c.blob);
    ASSERT_TRUE(deleted.ok()) << deleted.status();
    EXPECT_FALSE(*deleted) << c.blob;
    EXPECT_TRUE(blobs_->Stat(c.blob).ok()) << c.blob;
  }
  auto deleted = service_->DeleteUnreferencedBlob("media", "lost", pending_gen, lost);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(*deleted);
  EXPECT_TRUE(absl::IsNotFound(blobs_->Stat(lost).status()));
  EXPECT_EQ(ReadAll("k"), "two");

  // Archival: once the row names the copy, the old bytes are no row's.
  const std::string copy = BlobName("cold", "media", "k", v2->row.generation);
  ASSERT_TRUE(blobs_->Put(copy, "two").ok());
  ASSERT_TRUE(service_->MoveObjectBytes("media", "k", v2->row.generation, "cold", copy).ok());
  EXPECT_TRUE(*service_->BlobReferenced("media", "k", v2->row.generation, copy));
  EXPECT_FALSE(*service_->BlobReferenced("media", "k", v2->row.generation, v2->row.blob));
}

TEST_P(MediaServiceTest, ARowIsNeverPointedAtACopyThatIsGone) {
  // The orphan scan may delete an archive copy that no row names yet (a stalled archival);
  // the repoint, under the same key lock, must then refuse, or the row would name nothing.
  auto v = Put("k", "bytes");
  ASSERT_TRUE(v.ok());
  const std::string copy = BlobName("cold", "media", "k", v->row.generation);
  absl::Status moved = service_->MoveObjectBytes("media", "k", v->row.generation, "cold", copy);
  EXPECT_TRUE(absl::IsAborted(moved)) << moved;
  auto head = service_->Head("media", "k");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->row.blob, v->row.blob);
  EXPECT_EQ(ReadAll("k"), "bytes");
}

// Archival repoints a row and then deletes the old bytes durably: the repoint must be
// synced first, or a power loss in between leaves a live row pointing at deleted bytes.
class CountingSyncRowStore final : public store::RowStore {
 public:
  explicit CountingSyncRowStore(Clock* clock) : inner_(clock) {}
  absl::StatusOr<store::Table*> OpenTable(const store::TableOptions& o) override {
    return inner_.OpenTable(o);
  }
  absl::Status Write(std::span<const store::PartitionWrite> w) override { return inner_.Write(w); }
  absl::StatusOr<std::unique_ptr<store::Snapshot>> NewSnapshot() override {
    return inner_.NewSnapshot();
  }
  absl::Status Sync() override {
    ++syncs;
    return inner_.Sync();
  }
  int syncs = 0;

 private:
  store::MemoryRowStore inner_;
};

TEST(MediaArchival, MoveObjectBytesIsDurableBeforeItReturns) {
  ManualClock clock;
  MetricsRegistry metrics;
  CountingSyncRowStore rows(&clock);
  const std::string dir =
      (fs::temp_directory_path() / ("strata_media_move_" + std::to_string(getpid()))).string();
  blob::LocalBlobStoreOptions bo;
  bo.root = dir;
  auto blobs = blob::LocalBlobStore::Open(bo);
  ASSERT_TRUE(blobs.ok()) << blobs.status();
  auto service = MediaService::Open(&rows, blobs->get(), &clock, &metrics);
  ASSERT_TRUE(service.ok()) << service.status();
  ASSERT_TRUE((*service)->PutBucket("media", BucketPolicy{}).ok());
  auto up = (*service)->BeginPut("media", "clip", {});
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE((*up)->Append("bytes").ok());
  auto info = (*up)->Commit();
  ASSERT_TRUE(info.ok()) << info.status();

  ASSERT_TRUE((*blobs)->Put("cold/copy", "bytes").ok());  // the archival copy
  const int before = rows.syncs;
  ASSERT_TRUE(
      (*service)->MoveObjectBytes("media", "clip", info->row.generation, "cold", "cold/copy").ok());
  EXPECT_GT(rows.syncs, before) << "the repoint was not made durable";
  auto row = (*service)->RowAtGeneration("media", "clip", info->row.generation);
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->blob, "cold/copy");
  // A redelivery that finds the move done syncs too (that earlier write may not be).
  const int again = rows.syncs;
  ASSERT_TRUE(
      (*service)->MoveObjectBytes("media", "clip", info->row.generation, "cold", "cold/copy").ok());
  EXPECT_GT(rows.syncs, again);
  service->reset();
  std::error_code ec;
  fs::remove_all(dir, ec);
}

INSTANTIATE_TEST_SUITE_P(Stores, MediaServiceTest, ::testing::Values("Memory", "Rocks"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace strata::media
