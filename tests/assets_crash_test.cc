// Crash safety of asset writes on the real stores (RocksDB row store + embedded queue): a
// child process creates assets (acknowledging each id to a file as its call returns), then
// dies (_exit, like kill -9) at a crash point inside an update or a batch create -- after the
// atomic write, before or after the change events reach the queue. The parent reopens the
// data directory and checks that every acknowledged asset is there, that the interrupted
// write is whole (row, index and history agree), and that the change feed holds every
// write's event at least once (the outbox publishes what the crash left).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "strata/assets/asset_service.h"
#include "strata/base/crash_point.h"
#include "strata/store/embedded_queue.h"
#include "strata/store/rocksdb/rocksdb_row_store.h"

namespace strata {
namespace {

constexpr char kType[] = R"({"schema":{"type":"object","required":["n"],
  "properties":{"n":{"type":"integer"},"tag":{"type":"string"}}},"indexed":["/n","/tag"]})";

// The embedded queue without its atomic PublishThen: Queue's default, which publishes and
// then applies the caller's write, as a queue on another system (Kafka) does.
class SeparateThenQueue final : public store::Queue {
 public:
  explicit SeparateThenQueue(store::Queue* inner) : inner_(inner) {}
  absl::Status CreateTopic(const store::TopicOptions& o) override { return inner_->CreateTopic(o); }
  absl::StatusOr<store::TopicInfo> DescribeTopic(std::string_view t) override {
    return inner_->DescribeTopic(t);
  }
  absl::StatusOr<std::vector<store::TopicInfo>> ListTopics() override {
    return inner_->ListTopics();
  }
  absl::StatusOr<std::vector<std::string>> ListGroups(std::string_view t) override {
    return inner_->ListGroups(t);
  }
  absl::StatusOr<std::vector<store::PublishResult>> Publish(
      std::string_view t, std::span<const store::PublishMessage> m) override {
    return inner_->Publish(t, m);
  }
  absl::StatusOr<std::vector<store::Message>> Poll(const store::PollRequest& r) override {
    return inner_->Poll(r);
  }
  absl::StatusOr<std::vector<store::Message>> Read(std::string_view t, int p, uint64_t offset,
                                                   int max) override {
    return inner_->Read(t, p, offset, max);
  }
  absl::Status Commit(std::string_view g, std::string_view t, int p, uint64_t offset) override {
    return inner_->Commit(g, t, p, offset);
  }
  absl::Status Rewind(std::string_view g, std::string_view t) override {
    return inner_->Rewind(g, t);
  }
  absl::StatusOr<std::vector<store::PartitionLag>> Lag(std::string_view g,
                                                       std::string_view t) override {
    return inner_->Lag(g, t);
  }
  absl::StatusOr<uint64_t> EnforceRetention() override { return inner_->EnforceRetention(); }

 private:
  store::Queue* const inner_;
};

struct Opened {
  std::unique_ptr<store::RocksRowStore> rows;
  std::unique_ptr<store::EmbeddedQueue> queue;
  std::unique_ptr<SeparateThenQueue> separate;
  std::unique_ptr<assets::AssetService> service;
};

// `separate_then`: the service publishes through SeparateThenQueue.
Opened OpenAt(const std::string& dir, MetricsRegistry* metrics, Clock* clock,
              bool separate_then = false) {
  Opened out;
  store::RocksRowStoreOptions o;
  o.path = dir + "/rows";
  o.clock = clock;
  o.block_cache_bytes = 8 << 20;
  auto rows = store::RocksRowStore::Open(o);
  if (!rows.ok()) {
    ADD_FAILURE() << rows.status();
    return {};
  }
  out.rows = std::move(*rows);
  store::EmbeddedQueueOptions qo;
  qo.clock = clock;
  qo.metrics = metrics;
  qo.retention_interval_ms = 0;
  auto queue = store::EmbeddedQueue::Open(out.rows.get(), qo);
  if (!queue.ok()) {
    ADD_FAILURE() << queue.status();
    return {};
  }
  out.queue = std::move(*queue);
  store::Queue* used = out.queue.get();
  if (separate_then) {
    out.separate = std::make_unique<SeparateThenQueue>(out.queue.get());
    used = out.separate.get();
  }
  auto service = assets::AssetService::Open(out.rows.get(), used, clock, metrics);
  if (!service.ok()) {
    ADD_FAILURE() << service.status();
    return {};
  }
  out.service = std::move(*service);
  return out;
}

struct Case {
  const char* point;
  bool batch;  // the interrupted write: a batch create (true) or an update (false)
  // The events published and the outbox row's removal in two writes (a queue on another
  // system): "queue.before_then" lies between them. The embedded queue makes them one.
  bool separate_then = false;
};

class AssetsCrashTest : public ::testing::TestWithParam<Case> {};

TEST_P(AssetsCrashTest, AcknowledgedWritesSurviveAndTheFeedMissesNothing) {
  const Case c = GetParam();
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("strata_assets_crash_" + std::to_string(getpid()) + "_" +
                            CrashPointTestName(c.point) + (c.batch ? "_batch" : "_update")))
                              .string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string acks = dir + "/acks";
  SystemClock clock;

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    MetricsRegistry metrics;
    Opened o = OpenAt(dir, &metrics, &clock, /*separate_then=*/c.separate_then);
    if (!o.service) _exit(3);
    if (!o.service->PutType("t", kType).ok()) _exit(4);
    std::ofstream ack(acks);
    for (int i = 0; i < 20; ++i) {
      auto a = o.service->Create("t", "{\"n\":" + std::to_string(i) + ",\"tag\":\"old\"}");
      if (!a.ok()) _exit(5);
      ack << a->id.ToString() << std::endl;  // flushed: the parent reads it after our death
    }
    o.service->FlushChanges();  // the creates' events out before the crash point is armed
    SetCrashPointForTesting(c.point);
    if (c.batch) {
      (void)o.service->CreateBatch("t", R"([{"n":100,"tag":"batch"},{"n":101,"tag":"batch"}])");
    } else {
      std::ifstream in(acks);
      std::string first;
      std::getline(in, first);
      (void)o.service->Patch("t", first, R"({"tag":"new"})", 1);
    }
    o.service->FlushChanges();  // the events are published by the service's thread
    _exit(7);  // the crash point was not reached
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), kCrashPointExitCode) << "child did not die at the crash point";

  std::vector<std::string> acked;
  {
    std::ifstream in(acks);
    for (std::string line; std::getline(in, line);) acked.push_back(line);
  }
  ASSERT_EQ(acked.size(), 20u);

  MetricsRegistry metrics;
  Opened o = OpenAt(dir, &metrics, &clock);
  ASSERT_NE(o.service, nullptr);
  for (const std::string& id : acked) {
    EXPECT_TRUE(o.service->Get("t", id).ok()) << id;
  }
  auto search = [&](std::string where) {
    assets::ListQuery q;
    q.limit = 1000;
    q.where = {std::move(where)};
    auto page = o.service->List("t", q);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->assets.size() : size_t{0};
  };
  // The interrupted write is whole: it was durable before the crash point.
  if (c.batch) {
    EXPECT_EQ(search("/tag=batch"), 2u);
    EXPECT_EQ(search("/n>=100"), 2u);
  } else {
    auto first = o.service->Get("t", acked[0]);
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first->row.version, 2u);
    EXPECT_EQ(search("/tag=new"), 1u);
    EXPECT_EQ(search("/tag=old"), 19u);
    auto versions = o.service->Versions("t", acked[0]);
    ASSERT_TRUE(versions.ok());
    EXPECT_EQ(versions->size(), 2u);
  }
  // The change feed: every create once, and the interrupted write's events at least once.
  auto changes = o.service->Changes("t", {}, 1000);
  ASSERT_TRUE(changes.ok()) << changes.status();
  std::map<std::string, int> counts;  // "id/version" -> events
  for (const auto& ch : *changes) {
    const size_t id_at = ch.event_json.find("\"id\":\"") + 6;
    const size_t version_at = ch.event_json.find("\"version\":") + 10;
    counts[ch.event_json.substr(id_at, 36) + "/" +
           ch.event_json.substr(version_at, ch.event_json.find(',', version_at) - version_at)]++;
  }
  for (const std::string& id : acked) EXPECT_EQ(counts[id + "/1"], 1) << id;
  const size_t expected_keys = 20 + (c.batch ? 2 : 1);
  EXPECT_EQ(counts.size(), expected_keys);
  const bool published_before_crash = std::string(c.point) == "queue.before_then";
  EXPECT_EQ(changes->size(), expected_keys + (published_before_crash ? (c.batch ? 2 : 1) : 0));
  if (!c.batch) {
    EXPECT_GE(counts[acked[0] + "/2"], 1);
  }
  // Writing goes on after recovery, and the outbox is empty (a restart publishes nothing).
  ASSERT_TRUE(o.service->Create("t", R"({"n":7})").ok());
  const size_t before = o.service->Changes("t", {}, 1000)->size();
  o = {};
  o = OpenAt(dir, &metrics, &clock);
  ASSERT_NE(o.service, nullptr);
  EXPECT_EQ(o.service->Changes("t", {}, 1000)->size(), before);
  o = {};
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Points, AssetsCrashTest,
                         ::testing::Values(Case{"assets.before_publish", false},
                                           Case{"queue.before_then", false, true},
                                           Case{"assets.before_publish", true},
                                           Case{"queue.before_then", true, true}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return CrashPointTestName(info.param.point) +
                                  (info.param.batch ? "_batch" : "_update");
                         });

}  // namespace
}  // namespace strata
