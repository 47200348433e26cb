// KafkaQueue on the cluster's strata-kafka-mock (scripts/cluster.sh; CTest fixture
// `cluster`): the queue conformance suite, then what only Kafka does -- a member that stops
// polling loses its partitions to another member, and offsets move only on Commit.
// Every test works under its own topic/group prefix, so tests share the brokers safely.
// Skips when run by hand without a cluster (see cluster_env.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "strata/store/cluster_env.h"
#include "strata/store/kafka/kafka_queue.h"
#include "strata/store/kafka/mock_cluster.h"
#include "strata/store/queue_conformance.h"

namespace strata::store {
namespace {

std::string UniquePrefix() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  return "t" + std::to_string(getpid()) + "-" + std::to_string(counter++) + "-" +
         std::to_string(rd() % 1000000) + ".";
}

// Short group timings: a join on the mock costs about 3 s whatever these say.
KafkaQueueOptions TestOptions(const std::string& prefix, KafkaTopicAdmin* admin) {
  KafkaQueueOptions o;
  o.brokers = ClusterSetting("STRATA_KAFKA_BROKERS").value_or("");
  o.topic_prefix = prefix;
  o.topic_admin = admin;
  o.request_timeout_ms = 10'000;
  o.publish_timeout_ms = 10'000;
  o.session_timeout_ms = 6'000;
  o.heartbeat_interval_ms = 500;
  o.max_poll_interval_ms = 60'000;
  o.join_timeout_ms = 60'000;
  o.min_retention_ms = 0;
  o.linger_ms = 1;
  return o;
}

class KafkaHarness final : public testing::QueueHarness {
 public:
  KafkaHarness()
      : prefix_(UniquePrefix()),
        admin_(ClusterSetting("STRATA_KAFKA_MOCK_CONTROL").value_or("")) {}

  absl::StatusOr<std::unique_ptr<Queue>> Open(ManualClock* clock,
                                              MetricsRegistry* metrics) override {
    KafkaQueueOptions o = TestOptions(prefix_, &admin_);
    o.clock = clock;
    o.metrics = metrics;
    o.redelivery_timeout_ms = testing::kConformanceRedeliveryTimeoutMs;
    return OpenKafkaQueue(std::move(o));
  }
  bool TrimsOnEnforceRetention() const override { return false; }

 private:
  const std::string prefix_;
  MockControlAdmin admin_;
};

std::unique_ptr<testing::QueueHarness> MakeHarness() {
  for (const char* setting : {"STRATA_KAFKA_BROKERS", "STRATA_KAFKA_MOCK_CONTROL"}) {
    const std::string missing = ClusterMissing(setting);
    if (missing.empty()) continue;
    if (std::getenv("STRATA_CLUSTER_ENV") == nullptr) {
      [&] { GTEST_SKIP() << missing; }();
    } else {
      ADD_FAILURE() << missing;
    }
    return nullptr;
  }
  return std::make_unique<KafkaHarness>();
}

}  // namespace
}  // namespace strata::store

INSTANTIATE_QUEUE_CONFORMANCE(Kafka, ::strata::store::MakeHarness);

namespace strata::store {
namespace {

using ::testing::ElementsAre;

class KafkaQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* setting : {"STRATA_KAFKA_BROKERS", "STRATA_KAFKA_MOCK_CONTROL"}) {
      const std::string missing = ClusterMissing(setting);
      if (missing.empty()) continue;
      if (std::getenv("STRATA_CLUSTER_ENV") == nullptr) GTEST_SKIP() << missing;
      FAIL() << missing;
    }
    admin_ = std::make_unique<MockControlAdmin>(*ClusterSetting("STRATA_KAFKA_MOCK_CONTROL"));
  }

  std::unique_ptr<Queue> OpenQueue(KafkaQueueOptions options) {
    options.clock = &clock_;
    options.metrics = &metrics_;
    absl::StatusOr<std::unique_ptr<Queue>> q = OpenKafkaQueue(std::move(options));
    EXPECT_TRUE(q.ok()) << q.status();
    return q.ok() ? std::move(*q) : nullptr;
  }

  PollRequest Request(const std::string& group, const std::string& topic, Millis wait_ms) {
    PollRequest r;
    r.group = group;
    r.topic = topic;
    r.max_messages = 100;
    r.wait_ms = wait_ms;
    return r;
  }

  ManualClock clock_;
  MetricsRegistry metrics_;
  std::unique_ptr<MockControlAdmin> admin_;
  const std::string prefix_ = UniquePrefix();
};

// Member A takes every partition and its messages, commits nothing and stops polling.
// Member B (another queue, as another process would be) joins: A's partitions move to B,
// which gets every message again from the committed offsets -- at-least-once.
TEST_F(KafkaQueueTest, StalledMemberLosesItsPartitionsToAnother) {
  KafkaQueueOptions options = TestOptions(prefix_, admin_.get());
  options.session_timeout_ms = 3'000;
  options.max_poll_interval_ms = 4'000;
  std::unique_ptr<Queue> a = OpenQueue(options);
  std::unique_ptr<Queue> b = OpenQueue(options);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->CreateTopic(TopicOptions{"work", 2, 0}).ok());
  std::vector<PublishMessage> batch;
  for (int i = 0; i < 20; ++i) batch.push_back(PublishMessage{"", std::to_string(i), i % 2});
  ASSERT_TRUE(a->Publish("work", batch).ok());

  std::set<std::string> got_by_a;
  for (int round = 0; round < 50 && got_by_a.size() < 20; ++round) {
    absl::StatusOr<std::vector<Message>> page = a->Poll(Request("g", "work", 200));
    ASSERT_TRUE(page.ok()) << page.status();
    for (const Message& m : *page) got_by_a.insert(m.value);
  }
  ASSERT_EQ(got_by_a.size(), 20u) << "A, alone in the group, owns both partitions";

  // A stalls from here on. B's polls return once B has partitions; a bounded number of them.
  std::map<int, std::set<std::string>> got_by_b;
  size_t total = 0;
  for (int round = 0; round < 200 && total < 20; ++round) {
    absl::StatusOr<std::vector<Message>> page = b->Poll(Request("g", "work", 200));
    ASSERT_TRUE(page.ok()) << page.status();
    for (const Message& m : *page) {
      if (got_by_b[m.partition].insert(m.value).second) ++total;
    }
  }
  EXPECT_EQ(total, 20u) << "B took over both partitions from the committed offset (0)";
  EXPECT_EQ(got_by_b[0].size(), 10u);
  EXPECT_EQ(got_by_b[1].size(), 10u);
  // B commits; the group's backlog is then empty.
  ASSERT_TRUE(b->Commit("g", "work", 0, 10).ok());
  ASSERT_TRUE(b->Commit("g", "work", 1, 10).ok());
  absl::StatusOr<std::vector<PartitionLag>> lag = b->Lag("g", "work");
  ASSERT_TRUE(lag.ok()) << lag.status();
  for (const PartitionLag& l : *lag) EXPECT_EQ(l.backlog, 0u) << l.partition;
}

// Polling moves no committed offset (no auto-commit): a member that polled everything and
// restarted gets everything again; after Commit, nothing.
TEST_F(KafkaQueueTest, OffsetsMoveOnlyOnCommit) {
  const KafkaQueueOptions options = TestOptions(prefix_, admin_.get());
  std::unique_ptr<Queue> q = OpenQueue(options);
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->CreateTopic(TopicOptions{"work", 1, 0}).ok());
  std::vector<PublishMessage> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(PublishMessage{"", std::to_string(i), 0});
  ASSERT_TRUE(q->Publish("work", batch).ok());
  absl::StatusOr<std::vector<Message>> page = q->Poll(Request("g", "work", 1000));
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->size(), 10u);
  absl::StatusOr<std::vector<PartitionLag>> lag = q->Lag("g", "work");
  ASSERT_TRUE(lag.ok()) << lag.status();
  EXPECT_EQ((*lag)[0].committed, 0u);
  EXPECT_EQ((*lag)[0].backlog, 10u);

  q.reset();  // a restart: the member leaves the group
  q = OpenQueue(options);
  ASSERT_NE(q, nullptr);
  page = q->Poll(Request("g", "work", 1000));
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->size(), 10u) << "nothing was committed, so everything comes again";
  EXPECT_EQ(page->front().offset, 0u);
  ASSERT_TRUE(q->Commit("g", "work", 0, 10).ok());

  q.reset();
  q = OpenQueue(options);
  ASSERT_NE(q, nullptr);
  page = q->Poll(Request("g", "work", 200));
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->empty());
  lag = q->Lag("g", "work");
  ASSERT_TRUE(lag.ok()) << lag.status();
  EXPECT_EQ((*lag)[0].committed, 10u);
  EXPECT_EQ((*lag)[0].backlog, 0u);
  absl::StatusOr<std::vector<std::string>> groups = q->ListGroups("work");
  ASSERT_TRUE(groups.ok()) << groups.status();
  EXPECT_THAT(*groups, ElementsAre("g"));
}

}  // namespace
}  // namespace strata::store
