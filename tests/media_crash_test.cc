// Crash safety of object writes and soft deletes on the real stores (RocksDB + local files):
// a child process writes version 1 of an object, then dies (_exit, like kill -9) at a crash
// point while writing version 2 (or deleting); the parent reopens the data directory and
// checks that readers see exactly one whole version, never a partial one, and that an upload
// cut short leaves an upload row naming its bytes, which the garbage collector claims.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "strata/base/crash_point.h"
#include "strata/blob/inline/inline_blob_store.h"
#include "strata/blob/local/local_blob_store.h"
#include "strata/media/media_service.h"
#include "strata/store/rocksdb/rocksdb_row_store.h"

namespace strata {
namespace {

constexpr uint64_t kPartBytes = 64 << 10;

std::string Pattern(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

struct Opened {
  std::unique_ptr<store::RocksRowStore> rows;
  std::unique_ptr<blob::LocalBlobStore> files;
  std::unique_ptr<blob::InlineBlobStore> inline_blobs;  // when inline_max > 0
  blob::BlobStore* blobs = nullptr;
  std::unique_ptr<media::MediaService> service;
};

// `inline_max` > 0: objects up to that many bytes are rows (the server's default layout).
Opened OpenAt(const std::string& dir, MetricsRegistry* metrics, Clock* clock,
              uint64_t inline_max = 0) {
  store::RocksRowStoreOptions o;
  o.path = dir + "/rows";
  o.clock = clock;
  auto rows = store::RocksRowStore::Open(o);
  if (!rows.ok()) {
    ADD_FAILURE() << rows.status();
    return {};
  }
  blob::LocalBlobStoreOptions bo;
  bo.root = dir + "/blobs";
  bo.part_bytes = kPartBytes;
  auto blobs = blob::LocalBlobStore::Open(bo);
  if (!blobs.ok()) {
    ADD_FAILURE() << blobs.status();
    return {};
  }
  Opened out;
  out.rows = std::move(*rows);
  out.files = std::move(*blobs);
  out.blobs = out.files.get();
  if (inline_max > 0) {
    blob::InlineBlobStoreOptions io;
    io.max_inline_bytes = inline_max;
    auto inline_blobs = blob::InlineBlobStore::Open(out.rows.get(), out.files.get(), io, metrics);
    if (!inline_blobs.ok()) {
      ADD_FAILURE() << inline_blobs.status();
      return {};
    }
    out.inline_blobs = std::move(*inline_blobs);
    out.blobs = out.inline_blobs.get();
  }
  auto service = media::MediaService::Open(out.rows.get(), out.blobs, clock, metrics);
  if (!service.ok()) {
    ADD_FAILURE() << service.status();
    return {};
  }
  out.service = std::move(*service);
  return out;
}

bool PutObject(media::MediaService* s, const std::string& data) {
  auto up = s->BeginPut("media", "movie.mxf", {});
  if (!up.ok()) return false;
  for (size_t off = 0; off < data.size(); off += 10'000) {
    if (!(*up)->Append(std::string_view(data).substr(off, 10'000)).ok()) return false;
  }
  return (*up)->Commit().ok();
}

std::string ReadAll(media::MediaService* s) {
  auto opened = s->OpenForRead("media", "movie.mxf");
  if (!opened.ok()) return "<" + opened.status().ToString() + ">";
  std::string out;
  EXPECT_TRUE(opened->reader->ReadAt(0, opened->reader->size(), &out).ok());
  return out;
}

class MediaCrashTest : public ::testing::TestWithParam<const char*> {};

TEST_P(MediaCrashTest, ReadersSeeOneWholeVersionAfterACrash) {
  const std::string point = GetParam();
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("strata_media_crash_" + std::to_string(getpid()) + "_" + point))
                              .string();
  std::filesystem::remove_all(dir);
  ManualClock clock;
  const std::string v1 = Pattern(3 * kPartBytes + 7, 1);
  const std::string v2 = Pattern(4 * kPartBytes + 9, 2);

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    MetricsRegistry metrics;
    Opened o = OpenAt(dir, &metrics, &clock);
    if (!o.service) _exit(3);
    if (!o.service->PutBucket("media", {}).ok()) _exit(4);
    if (!PutObject(o.service.get(), v1)) _exit(5);  // acknowledged
    SetCrashPointForTesting(point);
    if (point == "media.delete.after_marker") {
      (void)o.service->Delete("media", "movie.mxf");
    } else {
      (void)PutObject(o.service.get(), v2);
    }
    _exit(7);  // the crash point was not reached
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), kCrashPointExitCode) << "child did not die at the crash point";

  MetricsRegistry metrics;
  Opened o = OpenAt(dir, &metrics, &clock);
  ASSERT_NE(o.service, nullptr);
  auto blobs = o.blobs->List("hot/media/", "", 100);
  ASSERT_TRUE(blobs.ok()) << blobs.status();
  // Nothing half-written survives: the temporary area is empty after the reopen.
  EXPECT_TRUE(std::filesystem::is_empty(dir + "/blobs/~tmp"));

  if (point == "media.delete.after_marker") {
    // The marker is durable: access ended, and the object is restorable.
    EXPECT_TRUE(absl::IsNotFound(o.service->Head("media", "movie.mxf").status()));
    ASSERT_TRUE(o.service->Restore("media", "movie.mxf").ok());
    EXPECT_EQ(ReadAll(o.service.get()), v1);
  } else if (point == "media.put.after_metadata") {
    EXPECT_EQ(ReadAll(o.service.get()), v2);  // committed before the crash
    EXPECT_EQ(blobs->blobs.size(), 2u);       // v1's bytes await the GC (superseded row)
  } else {
    EXPECT_EQ(ReadAll(o.service.get()), v1);  // version 2 never became visible
    auto head = o.service->Head("media", "movie.mxf");
    ASSERT_TRUE(head.ok());
    if (point == "media.put.after_bytes") {
      // v2's bytes are durable but unreferenced: an orphan whose name shows it.
      ASSERT_EQ(blobs->blobs.size(), 2u);
      int orphans = 0;
      for (const auto& b : blobs->blobs) {
        if (b.name != head->row.blob) {
          ++orphans;
          EXPECT_EQ(b.size, v2.size());
          EXPECT_EQ(b.name.substr(0, std::string("hot/media/movie.mxf@").size()),
                    "hot/media/movie.mxf@");
        }
      }
      EXPECT_EQ(orphans, 1);
    } else {
      ASSERT_EQ(blobs->blobs.size(), 1u);  // only v1
      EXPECT_EQ(blobs->blobs[0].name, head->row.blob);
    }
    // The cut-short upload of v2 left its upload row: it names the orphan bytes (if any were
    // committed) and the collector can claim it, turning it into a superseded row.
    auto rows = o.service->objects_table()->Scan("media", {});
    ASSERT_TRUE(rows.ok());
    std::vector<store::Row> uploads;
    for (const auto& r : rows->rows) {
      if (r.clustering[0] == 'u') uploads.push_back(r);
    }
    ASSERT_EQ(uploads.size(), 1u);
    auto upload = media::DecodeUploadRow(uploads[0].value);
    ASSERT_TRUE(upload.ok());
    EXPECT_NE(upload->blob, head->row.blob);
    std::string key;
    uint64_t generation = 0;
    ASSERT_TRUE(media::ParseGenerationClustering(uploads[0].clustering, &key, &generation));
    auto claimed = o.service->AbandonUpload("media", key, generation, clock.NowMillis() + 1);
    ASSERT_TRUE(claimed.ok()) << claimed.status();
    EXPECT_EQ(claimed->blob, upload->blob);
    EXPECT_EQ(claimed->size, point == "media.put.after_bytes" ? v2.size() : 0u);
  }
  // Writing goes on normally after recovery.
  ASSERT_TRUE(PutObject(o.service.get(), "v3"));
  EXPECT_EQ(ReadAll(o.service.get()), "v3");
  o = {};
  std::filesystem::remove_all(dir);
}

// Small objects kept as inline rows: a crash between the bytes and the metadata leaves an
// inline row that the upload row names; after the metadata, the new version is whole.
class InlineMediaCrashTest : public ::testing::TestWithParam<const char*> {};

TEST_P(InlineMediaCrashTest, SmallObjectsSeeOneWholeVersionAfterACrash) {
  const std::string point = GetParam();
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("strata_media_inline_crash_" + std::to_string(getpid()) + "_" + point))
                              .string();
  std::filesystem::remove_all(dir);
  ManualClock clock;
  constexpr uint64_t kInlineMax = 1000;
  const std::string v1 = Pattern(900, 1);
  const std::string v2 = Pattern(950, 2);

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    MetricsRegistry metrics;
    Opened o = OpenAt(dir, &metrics, &clock, kInlineMax);
    if (!o.service) _exit(3);
    if (!o.service->PutBucket("media", {}).ok()) _exit(4);
    if (!PutObject(o.service.get(), v1)) _exit(5);  // acknowledged
    SetCrashPointForTesting(point);
    (void)PutObject(o.service.get(), v2);
    _exit(7);  // the crash point was not reached
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), kCrashPointExitCode) << "child did not die at the crash point";

  MetricsRegistry metrics;
  Opened o = OpenAt(dir, &metrics, &clock, kInlineMax);
  ASSERT_NE(o.service, nullptr);
  // Both versions' bytes are rows of the inline table, none is a file.
  auto files = o.files->List("hot/", "", 100);
  ASSERT_TRUE(files.ok());
  EXPECT_TRUE(files->blobs.empty());
  auto inline_rows = o.inline_blobs->table()->Scan("b", {});
  ASSERT_TRUE(inline_rows.ok());
  ASSERT_EQ(inline_rows->rows.size(), 2u);
  auto head = o.service->Head("media", "movie.mxf");
  ASSERT_TRUE(head.ok());
  if (point == "media.put.after_metadata") {
    EXPECT_EQ(ReadAll(o.service.get()), v2);
    // v1's bytes await the collector, named by a superseded row.
    auto rows = o.service->objects_table()->Scan("media", {});
    ASSERT_TRUE(rows.ok());
    int superseded = 0;
    for (const auto& r : rows->rows) {
      if (r.clustering[0] != 'g') continue;
      ++superseded;
      auto row = media::DecodeSupersededRow(r.value);
      ASSERT_TRUE(row.ok());
      EXPECT_NE(row->blob, head->row.blob);
      EXPECT_EQ(*o.blobs->Read(row->blob, 0, 2000), v1);
    }
    EXPECT_EQ(superseded, 1);
  } else {
    EXPECT_EQ(ReadAll(o.service.get()), v1);
    // The orphan v2 row is named by the upload row; the collector's claim sizes it.
    auto rows = o.service->objects_table()->Scan("media", {});
    ASSERT_TRUE(rows.ok());
    int uploads = 0;
    for (const auto& r : rows->rows) {
      if (r.clustering[0] != 'u') continue;
      ++uploads;
      std::string key;
      uint64_t generation = 0;
      ASSERT_TRUE(media::ParseGenerationClustering(r.clustering, &key, &generation));
      auto claimed = o.service->AbandonUpload("media", key, generation, clock.NowMillis() + 1);
      ASSERT_TRUE(claimed.ok()) << claimed.status();
      EXPECT_EQ(claimed->size, v2.size());
      ASSERT_TRUE(o.blobs->Delete(claimed->blob).ok());
      EXPECT_TRUE(absl::IsNotFound(o.blobs->Stat(claimed->blob).status()));
    }
    EXPECT_EQ(uploads, 1);
  }
  ASSERT_TRUE(PutObject(o.service.get(), "v3"));
  EXPECT_EQ(ReadAll(o.service.get()), "v3");
  o = {};
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Steps, InlineMediaCrashTest,
                         ::testing::Values("media.put.after_bytes", "media.put.after_metadata"),
                         [](const auto& info) { return CrashPointTestName(info.param); });

INSTANTIATE_TEST_SUITE_P(Steps, MediaCrashTest,
                         ::testing::Values("blob.write.after_part", "blob.commit.before_rename",
                                           "media.put.after_bytes", "media.put.after_metadata",
                                           "media.delete.after_marker"),
                         [](const auto& info) { return CrashPointTestName(info.param); });

}  // namespace
}  // namespace strata
