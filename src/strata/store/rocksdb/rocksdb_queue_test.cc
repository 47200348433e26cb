// The embedded queue on RocksDB: the queue conformance suite over a RocksRowStore that is
// closed and reopened on every restart, and kill -9 tests of a publishing, committing child.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "strata/base/crash_point.h"
#include "strata/base/status.h"
#include "strata/store/embedded_queue.h"
#include "strata/store/queue_conformance.h"
#include "strata/store/rocksdb/rocksdb_row_store.h"

namespace strata::store {
namespace {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "strata-queue-XXXXXX").string();
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

RocksRowStoreOptions StoreOptions(const std::string& path, Clock* clock) {
  RocksRowStoreOptions options;
  options.path = path;
  options.clock = clock;
  options.block_cache_bytes = size_t{8} << 20;
  return options;
}

// Each Open closes the previous RocksDB instance and opens the directory again: a restart
// goes through RocksDB's recovery, not just a new queue object.
class RocksQueueHarness final : public testing::QueueHarness {
 public:
  explicit RocksQueueHarness(RocksRowStoreOptions::SyncPolicy policy) : policy_(policy) {}
  ~RocksQueueHarness() override { rows_.reset(); }

  absl::StatusOr<std::unique_ptr<Queue>> Open(ManualClock* clock,
                                              MetricsRegistry* metrics) override {
    if (dir_.path().empty()) return absl::InternalError("no temporary directory");
    rows_.reset();
    RocksRowStoreOptions store_options = StoreOptions(dir_.path(), clock);
    store_options.sync_policy = policy_;
    STRATA_ASSIGN_OR_RETURN(rows_, RocksRowStore::Open(store_options));
    EmbeddedQueueOptions options;
    options.clock = clock;
    options.metrics = metrics;
    options.redelivery_timeout_ms = testing::kConformanceRedeliveryTimeoutMs;
    options.retention_interval_ms = 0;  // the suite calls EnforceRetention itself
    STRATA_ASSIGN_OR_RETURN(std::unique_ptr<EmbeddedQueue> queue,
                            EmbeddedQueue::Open(rows_.get(), options));
    return std::unique_ptr<Queue>(std::move(queue));
  }

 private:
  const RocksRowStoreOptions::SyncPolicy policy_;
  TempDir dir_;  // declared before rows_: removed after the store is closed
  std::unique_ptr<RocksRowStore> rows_;
};

INSTANTIATE_QUEUE_CONFORMANCE(EmbeddedOnRocks, [] {
  return std::make_unique<RocksQueueHarness>(RocksRowStoreOptions::SyncPolicy::kPeriodic);
});
INSTANTIATE_QUEUE_CONFORMANCE(EmbeddedOnRocksSyncPerBatch, [] {
  return std::make_unique<RocksQueueHarness>(RocksRowStoreOptions::SyncPolicy::kPerBatch);
});

// What the crash child reports on its pipe, one record per acknowledged call.
struct Ack {
  int32_t kind;  // kPublished or kCommitted
  int32_t partition;
  uint64_t offset;  // published offset, or committed offset
  uint64_t seq;     // the message's sequence number (kPublished)
};
constexpr int32_t kPublished = 1;
constexpr int32_t kCommitted = 2;
constexpr int kPartitions = 3;
constexpr int kChildMessages = 4000;

// The child: publishes numbered messages (single and batched), and every 50 messages polls
// as group "worker" and commits part of what it got; reports every acknowledged call; never
// closes anything. Returns only by _exit.
[[noreturn]] void RunChild(const std::string& dir, int fd) {
  RocksRowStoreOptions store_options = StoreOptions(dir, nullptr);
  store_options.sync_interval_ms = 3'600'000;  // no fsync before the kill: process crash only
  auto rows = RocksRowStore::Open(store_options);
  if (!rows.ok()) _exit(2);
  MetricsRegistry metrics;
  EmbeddedQueueOptions options;
  options.metrics = &metrics;
  auto queue = EmbeddedQueue::Open(rows->get(), options);
  if (!queue.ok()) _exit(3);
  if (!(*queue)->CreateTopic(TopicOptions{"work", kPartitions, 0}).ok()) _exit(4);
  auto report = [fd](const Ack& ack) {
    if (write(fd, &ack, sizeof(ack)) != sizeof(ack)) _exit(5);
  };
  uint64_t seq = 0;
  while (seq < kChildMessages) {
    std::vector<PublishMessage> batch;
    const int n = seq % 3 == 0 ? 1 : 5;
    for (int i = 0; i < n; ++i) {
      batch.push_back(
          PublishMessage{"key" + std::to_string((seq + i) % 17), "msg" + std::to_string(seq + i)});
    }
    auto results = (*queue)->Publish("work", batch);
    if (!results.ok()) _exit(6);
    for (int i = 0; i < n; ++i) {
      report(Ack{kPublished, (*results)[i].partition, (*results)[i].offset, seq + i});
    }
    seq += n;
    if (seq % 50 < static_cast<uint64_t>(n)) {
      PollRequest r;
      r.group = "worker";
      r.topic = "work";
      r.max_messages = 40;
      auto got = (*queue)->Poll(r);
      if (!got.ok()) _exit(7);
      // Commit only the first half of what was delivered per partition: the rest stays
      // outstanding and must be redelivered after the crash.
      std::map<int, std::vector<uint64_t>> by_partition;
      for (const Message& m : *got) by_partition[m.partition].push_back(m.offset);
      for (const auto& [p, offsets] : by_partition) {
        const uint64_t commit = offsets[offsets.size() / 2];
        if (!(*queue)->Commit("worker", "work", p, commit).ok()) _exit(8);
        report(Ack{kCommitted, p, commit, 0});
      }
    }
  }
  _exit(kCrashPointExitCode);  // no destructors: nothing is closed
}

TEST(RocksQueueCrashTest, AcknowledgedPublishesAndCommitsSurviveKill9) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    RunChild(dir.path(), fds[1]);
  }
  close(fds[1]);
  std::map<std::pair<int, uint64_t>, uint64_t> published;  // (partition, offset) -> seq
  std::map<int, uint64_t> committed;
  bool killed = false;
  Ack ack;
  while (read(fds[0], &ack, sizeof(ack)) == sizeof(ack)) {
    if (ack.kind == kPublished) {
      published[{ack.partition, ack.offset}] = ack.seq;
    } else {
      committed[ack.partition] = std::max(committed[ack.partition], ack.offset);
    }
    if (!killed && published.size() == kChildMessages / 2) {
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
  RecordProperty("child_killed_mid_publish", died_by_kill ? "yes" : "no");
  ASSERT_GE(published.size(), static_cast<size_t>(kChildMessages / 2));
  ASSERT_FALSE(committed.empty());

  ManualClock clock;
  MetricsRegistry metrics;
  auto rows = RocksRowStore::Open(StoreOptions(dir.path(), &clock));
  ASSERT_TRUE(rows.ok()) << rows.status();
  EmbeddedQueueOptions options;
  options.clock = &clock;
  options.metrics = &metrics;
  auto queue = EmbeddedQueue::Open(rows->get(), options);
  ASSERT_TRUE(queue.ok()) << queue.status();

  // Every acknowledged publish is there, at its offset, with its content (a new group reads
  // everything).
  std::map<std::pair<int, uint64_t>, std::string> stored;
  PollRequest all;
  all.group = "auditor";
  all.topic = "work";
  all.max_messages = kMaxPollMessages;
  for (int guard = 0; guard < 100; ++guard) {
    auto page = (*queue)->Poll(all);
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->empty()) break;
    for (const Message& m : *page) stored[{m.partition, m.offset}] = m.value;
  }
  size_t lost = 0;
  for (const auto& [where, seq] : published) {
    auto it = stored.find(where);
    if (it == stored.end() || it->second != "msg" + std::to_string(seq)) ++lost;
  }
  EXPECT_EQ(lost, 0u) << "of " << published.size() << " acknowledged publishes";

  // Acknowledged commits survived, and the worker group resumes exactly at its committed
  // offset: everything delivered but not committed before the crash comes again.
  auto lag = (*queue)->Lag("worker", "work");
  ASSERT_TRUE(lag.ok()) << lag.status();
  PollRequest resume;
  resume.group = "worker";
  resume.topic = "work";
  resume.max_messages = kMaxPollMessages;
  std::map<int, std::vector<uint64_t>> redelivered;
  for (int guard = 0; guard < 100; ++guard) {
    auto page = (*queue)->Poll(resume);
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->empty()) break;
    for (const Message& m : *page) redelivered[m.partition].push_back(m.offset);
  }
  // Offsets are dense (the auditor read every offset below the end; Poll fails on a gap),
  // and publishing continues right after the recovered end: no offset is reused.
  std::map<int, uint64_t> stored_per_partition;
  for (const auto& [where, value] : stored) ++stored_per_partition[where.first];
  for (int p = 0; p < kPartitions; ++p) {
    EXPECT_EQ(stored_per_partition[p], (*lag)[p].end_offset) << "partition " << p;
    std::vector<PublishMessage> one = {PublishMessage{"", "after", p}};
    auto result = (*queue)->Publish("work", one);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ((*result)[0].offset, (*lag)[p].end_offset) << "partition " << p;
  }
  for (int p = 0; p < kPartitions; ++p) {
    const uint64_t acked_commit = committed.count(p) ? committed[p] : 0;
    const uint64_t stored_commit = (*lag)[p].committed;
    EXPECT_GE(stored_commit, acked_commit) << "partition " << p;
    const uint64_t end = (*lag)[p].end_offset;
    ASSERT_EQ(redelivered[p].size(), end - stored_commit) << "partition " << p;
    for (size_t i = 0; i < redelivered[p].size(); ++i) {
      EXPECT_EQ(redelivered[p][i], stored_commit + i) << "partition " << p;
    }
  }
}

}  // namespace
}  // namespace strata::store
