// Crash safety of the lifecycle collector's sweep on the real stores (RocksDB, local files,
// the embedded queue): a child process prepares objects (expired, soft-deleted past grace,
// re-written, live), starts a GC run and dies (_exit, like kill -9) at a crash point of the
// publish or of a sweep step. The parent reopens the data directory: the run resumes from the
// queue, and the final state matches the oracle -- every eligible item gone (bytes, index
// entries, rows), every other object intact -- with each deletion audited exactly once.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "strata/base/crash_point.h"
#include "strata/blob/local/local_blob_store.h"
#include "strata/gc/collector.h"
#include "strata/media/media_service.h"
#include "strata/store/embedded_queue.h"
#include "strata/store/rocksdb/rocksdb_row_store.h"

namespace strata {
namespace {

constexpr Millis kHour = 3'600'000;
constexpr int kObjects = 60;  // i % 3: 0 expires, 1 soft-deleted, 2 live; i % 12 == 2 re-written

struct Stack {
  std::unique_ptr<store::RocksRowStore> rows;
  std::unique_ptr<blob::LocalBlobStore> blobs;
  std::unique_ptr<store::EmbeddedQueue> queue;
  std::unique_ptr<media::MediaService> media;
  std::unique_ptr<gc::HardDeleteTask> task;
  std::unique_ptr<gc::Collector> collector;
};

bool OpenAt(const std::string& dir, MetricsRegistry* metrics, Clock* clock, Stack* s) {
  store::RocksRowStoreOptions o;
  o.path = dir + "/rows";
  o.clock = clock;
  auto rows = store::RocksRowStore::Open(o);
  if (!rows.ok()) return false;
  s->rows = std::move(*rows);
  blob::LocalBlobStoreOptions bo;
  bo.root = dir + "/blobs";
  bo.part_bytes = 4096;
  auto blobs = blob::LocalBlobStore::Open(bo);
  if (!blobs.ok()) return false;
  s->blobs = std::move(*blobs);
  store::EmbeddedQueueOptions qo;
  qo.clock = clock;
  qo.metrics = metrics;
  qo.retention_interval_ms = 0;
  auto queue = store::EmbeddedQueue::Open(s->rows.get(), qo);
  if (!queue.ok()) return false;
  s->queue = std::move(*queue);
  auto media = media::MediaService::Open(s->rows.get(), s->blobs.get(), clock, metrics);
  if (!media.ok()) return false;
  s->media = std::move(*media);
  s->task = std::make_unique<gc::HardDeleteTask>(s->media.get(), /*orphan_age_ms=*/kHour);
  gc::CollectorOptions co;
  co.export_dir = dir + "/export";
  co.control_interval_ms = 20;
  co.max_workers = 2;
  co.backlog_per_worker = 10;
  co.throttle.initial_rate = 10000;
  auto collector = gc::Collector::Open(s->rows.get(), s->queue.get(), s->media.get(), s->task.get(),
                                       clock, metrics, co);
  if (!collector.ok()) return false;
  s->collector = std::move(*collector);
  return true;
}

std::string Key(int i) { return "clip/" + std::to_string(i) + ".mov"; }
std::string Data(int i, int version) {
  return std::string(100 + i * 150, static_cast<char>('a' + version)) + std::to_string(i);
}

bool Put(media::MediaService* m, int i, int version) {
  media::PutObjectOptions o;
  if (i % 3 == 0) o.ttl_ms = kHour;
  o.meta = {{"show", "s" + std::to_string(i % 5)}};
  auto up = m->BeginPut("media", Key(i), o);
  if (!up.ok()) return false;
  if (!(*up)->Append(Data(i, version)).ok()) return false;
  return (*up)->Commit().ok();
}

class GcCrashTest : public ::testing::TestWithParam<const char*> {};

TEST_P(GcCrashTest, SweepResumesAndMatchesTheOracleAfterACrash) {
  const std::string point = GetParam();
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("strata_gc_crash_" + std::to_string(getpid()) + "_" + point))
                              .string();
  std::filesystem::remove_all(dir);
  ManualClock clock;
  // The oracle: what the run must delete.
  uint64_t eligible = 0, eligible_bytes = 0;
  for (int i = 0; i < kObjects; ++i) {
    if (i % 3 != 2) {
      ++eligible;
      eligible_bytes += Data(i, i % 12 == 2 ? 1 : 0).size();
    }
    if (i % 12 == 2) {
      ++eligible;  // the superseded first version
      eligible_bytes += Data(i, 0).size();
    }
  }
  const std::string orphan_data = "bytes of an upload whose metadata never came";
  ++eligible;  // the abandoned upload
  eligible_bytes += orphan_data.size();

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    MetricsRegistry metrics;
    Stack s;
    if (!OpenAt(dir, &metrics, &clock, &s)) _exit(3);
    media::BucketPolicy p;
    p.grace_ms = kHour;
    if (!s.media->PutBucket("media", p).ok()) _exit(4);
    for (int i = 0; i < kObjects; ++i) {
      if (!Put(s.media.get(), i, 0)) _exit(5);
      if (i % 12 == 2 && !Put(s.media.get(), i, 1)) _exit(5);
      if (i % 3 == 1 && !s.media->Delete("media", Key(i)).ok()) _exit(6);
    }
    // An upload that crashed between its bytes and its metadata.
    const std::string orphan_blob = "hot/media/orphan@" + media::Hex64(1);
    if (!s.blobs->Put(orphan_blob, orphan_data).ok()) _exit(9);
    if (!s.media->objects_table()
             ->Put("media", media::UploadClustering("orphan", 1),
                   media::EncodeUploadRow({orphan_blob, "hot", clock.NowMillis()}))
             .ok()) {
      _exit(9);
    }
    clock.Advance(2 * kHour);
    SetCrashPointForTesting(point);
    if (!s.collector->Start().ok()) _exit(8);
    auto run = s.collector->RunAndWait({}, 30'000);
    (void)run;
    _exit(7);  // the crash point was not reached
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), kCrashPointExitCode) << "child did not die at the crash point";

  clock.Advance(2 * kHour);
  MetricsRegistry metrics;
  Stack s;
  ASSERT_TRUE(OpenAt(dir, &metrics, &clock, &s));
  auto before = s.collector->GetRun(1);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_NE(before->state, gc::RunState::kDone);
  ASSERT_TRUE(s.collector->Start().ok());
  auto run = s.collector->WaitRun(1, 30'000);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->state, gc::RunState::kDone) << run->error;
  EXPECT_EQ(run->eligible, eligible);
  EXPECT_EQ(run->processed, eligible);  // exactly once, despite the redelivery
  EXPECT_EQ(run->processed_bytes, eligible_bytes);
  EXPECT_EQ(run->errors, 0u);
  auto stats = s.collector->Stats(1);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)[0].objects, eligible);
  EXPECT_EQ((*stats)[0].bytes, eligible_bytes);

  // Survivors intact, the rest gone everywhere.
  size_t live = 0;
  for (int i = 0; i < kObjects; ++i) {
    auto row = s.media->objects_table()->Get("media", "o" + Key(i));
    if (i % 3 == 2) {
      ++live;
      auto opened = s.media->OpenForRead("media", Key(i));
      ASSERT_TRUE(opened.ok()) << Key(i) << ": " << opened.status();
      std::string bytes;
      ASSERT_TRUE(opened->reader->ReadAt(0, 1 << 20, &bytes).ok());
      EXPECT_EQ(bytes, Data(i, i % 12 == 2 ? 1 : 0));
    } else {
      EXPECT_TRUE(absl::IsNotFound(row.status())) << Key(i);
    }
  }
  auto blobs = s.blobs->List("hot/media/", "", 1000);
  ASSERT_TRUE(blobs.ok());
  EXPECT_EQ(blobs->blobs.size(), live);
  store::ScanOptions scan;
  scan.start = "g";  // superseded rows ("g") and index entries ("i")
  scan.end = "j";
  auto rest = s.media->objects_table()->Scan("media", scan);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->rows.size(), live);  // one index entry per survivor, no superseded rows
  scan.start = "u";  // upload rows
  scan.end = "v";
  rest = s.media->objects_table()->Scan("media", scan);
  ASSERT_TRUE(rest.ok());
  EXPECT_TRUE(rest->rows.empty());
  s.collector.reset();
  s = Stack();
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Points, GcCrashTest,
                         ::testing::Values("lifecycle.publish.after_batch",
                                           "lifecycle.sweep.after_record", "gc.sweep.after_bytes",
                                           "gc.sweep.orphan_claimed", "gc.sweep.after_index",
                                           "gc.sweep.after_row",
                                           "lifecycle.sweep.before_commit"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (c == '.') c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace strata
