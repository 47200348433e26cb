#include "strata/store/queue_conformance.h"

#include <gmock/gmock.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <map>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace strata::store::testing {

QueueConformanceParam MakeQueueConformanceParam(std::string name, QueueHarnessFactory factory) {
  return QueueConformanceParam{std::move(name), std::move(factory)};
}

void QueueConformanceTest::SetUp() {
  harness_ = GetParam().factory();
  if (harness_ == nullptr && IsSkipped()) return;
  ASSERT_NE(harness_, nullptr) << "factory returned no harness";
  absl::StatusOr<std::unique_ptr<Queue>> queue = harness_->Open(&clock_, &metrics_);
  ASSERT_TRUE(queue.ok()) << queue.status();
  queue_ = std::move(*queue);
}

void QueueConformanceTest::TearDown() {
  queue_.reset();
  harness_.reset();
}

void QueueConformanceTest::Restart() {
  queue_.reset();
  absl::StatusOr<std::unique_ptr<Queue>> queue = harness_->Open(&clock_, &metrics_);
  ASSERT_TRUE(queue.ok()) << queue.status();
  queue_ = std::move(*queue);
}

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// "error:<code> <message>" or "ok", so a test can match the code and the field together.
template <typename T>
std::string Outcome(const absl::StatusOr<T>& result) {
  return result.ok() ? "ok" : result.status().ToString();
}
std::string Outcome(const absl::Status& status) { return status.ok() ? "ok" : status.ToString(); }

void ExpectInvalid(const absl::Status& status, const std::string& field) {
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(field + ":")) << status;
}

PublishMessage To(int partition, std::string value, std::string key = "") {
  return PublishMessage{std::move(key), std::move(value), partition};
}

absl::StatusOr<std::vector<PublishResult>> PublishOne(Queue* queue, const std::string& topic,
                                                      PublishMessage message) {
  return queue->Publish(topic, std::span<const PublishMessage>(&message, 1));
}

PollRequest Request(const std::string& group, const std::string& topic,
                    std::vector<int> partitions = {}, int max_messages = 100) {
  PollRequest r;
  r.group = group;
  r.topic = topic;
  r.partitions = std::move(partitions);
  r.max_messages = max_messages;
  r.wait_ms = 0;
  return r;
}

std::vector<Message> PollOrDie(Queue* queue, const PollRequest& request) {
  absl::StatusOr<std::vector<Message>> messages = queue->Poll(request);
  EXPECT_TRUE(messages.ok()) << messages.status();
  return messages.ok() ? std::move(*messages) : std::vector<Message>{};
}

std::vector<uint64_t> Offsets(const std::vector<Message>& messages) {
  std::vector<uint64_t> out;
  for (const Message& m : messages) out.push_back(m.offset);
  return out;
}

std::vector<std::string> Values(const std::vector<Message>& messages) {
  std::vector<std::string> out;
  for (const Message& m : messages) out.push_back(m.value);
  return out;
}

// Polls (without waiting) until a poll comes back empty; at most `guard` polls.
std::vector<Message> Drain(Queue* queue, const PollRequest& request, int guard = 10000) {
  std::vector<Message> all;
  for (int i = 0; i < guard; ++i) {
    std::vector<Message> page = PollOrDie(queue, request);
    if (page.empty()) break;
    for (Message& m : page) all.push_back(std::move(m));
  }
  return all;
}

void CreateTopic(Queue* queue, const std::string& name, int partitions,
                 Millis retention_ms = 7LL * 24 * 3600 * 1000) {
  absl::Status s = queue->CreateTopic(TopicOptions{name, partitions, retention_ms});
  ASSERT_TRUE(s.ok()) << s;
}

TEST_P(QueueConformanceTest, CreateAndDescribeTopics) {
  CreateTopic(queue_.get(), "work", 4, 5000);
  absl::StatusOr<TopicInfo> info = queue_->DescribeTopic("work");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->name, "work");
  EXPECT_EQ(info->partitions, 4);
  EXPECT_EQ(info->retention_ms, 5000);
  // Re-creating with the same count is fine and updates the retention.
  EXPECT_EQ(Outcome(queue_->CreateTopic(TopicOptions{"work", 4, 9000})), "ok");
  info = queue_->DescribeTopic("work");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->retention_ms, 9000);
  absl::Status other = queue_->CreateTopic(TopicOptions{"work", 3, 9000});
  EXPECT_TRUE(absl::IsFailedPrecondition(other)) << other;
  EXPECT_TRUE(absl::IsNotFound(queue_->DescribeTopic("nope").status()));

  ExpectInvalid(queue_->CreateTopic(TopicOptions{"", 1, 0}), "topic");
  ExpectInvalid(queue_->CreateTopic(TopicOptions{"has space", 1, 0}), "topic");
  ExpectInvalid(queue_->CreateTopic(TopicOptions{"a/b", 1, 0}), "topic");
  ExpectInvalid(queue_->CreateTopic(TopicOptions{std::string(250, 'x'), 1, 0}), "topic");
  ExpectInvalid(queue_->CreateTopic(TopicOptions{"t", 0, 0}), "partitions");
  ExpectInvalid(queue_->CreateTopic(TopicOptions{"t", -3, 0}), "partitions");
  ExpectInvalid(queue_->CreateTopic(TopicOptions{"t", kMaxTopicPartitions + 1, 0}), "partitions");
  ExpectInvalid(queue_->CreateTopic(TopicOptions{"t", 1, -1}), "retention_ms");
  EXPECT_EQ(Outcome(queue_->CreateTopic(TopicOptions{std::string(249, 'x'), 1, 0})), "ok");
  EXPECT_EQ(Outcome(queue_->CreateTopic(TopicOptions{"Gc.sweep-2_x", 2, 0})), "ok");

  Restart();
  ASSERT_NE(queue_, nullptr);
  info = queue_->DescribeTopic("work");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->partitions, 4);
  EXPECT_EQ(info->retention_ms, 9000);
  EXPECT_TRUE(queue_->DescribeTopic("Gc.sweep-2_x").ok());
  absl::StatusOr<std::vector<TopicInfo>> topics = queue_->ListTopics();
  ASSERT_TRUE(topics.ok()) << topics.status();
  std::vector<std::string> names;
  for (const TopicInfo& t : *topics) names.push_back(t.name);
  EXPECT_THAT(names, ElementsAre("Gc.sweep-2_x", "work", std::string(249, 'x')));
}

TEST_P(QueueConformanceTest, GroupsBecomeKnownByPollOrCommitAndSurviveRestarts) {
  CreateTopic(queue_.get(), "work", 2);
  CreateTopic(queue_.get(), "other", 1);
  absl::StatusOr<std::vector<std::string>> groups = queue_->ListGroups("work");
  ASSERT_TRUE(groups.ok()) << groups.status();
  EXPECT_TRUE(groups->empty());
  EXPECT_TRUE(PollOrDie(queue_.get(), Request("sweepers", "work")).empty());
  ASSERT_EQ(Outcome(queue_->Commit("auditors", "work", 1, 0)), "ok");
  ASSERT_TRUE(queue_->Lag("onlooker", "work").ok());  // reading lag does not join
  ASSERT_EQ(Outcome(queue_->Commit("elsewhere", "other", 0, 0)), "ok");
  groups = queue_->ListGroups("work");
  ASSERT_TRUE(groups.ok()) << groups.status();
  EXPECT_THAT(*groups, ElementsAre("auditors", "sweepers"));
  Restart();
  ASSERT_NE(queue_, nullptr);
  groups = queue_->ListGroups("work");
  ASSERT_TRUE(groups.ok()) << groups.status();
  EXPECT_THAT(*groups, ElementsAre("auditors", "sweepers"));
  ExpectInvalid(queue_->ListGroups("nope").status(), "topic");
}

TEST_P(QueueConformanceTest, PublishAssignsConsecutiveOffsetsPerPartition) {
  CreateTopic(queue_.get(), "work", 3);
  std::vector<PublishMessage> batch = {To(0, "a"), To(2, "b"), To(0, "c"), To(0, "d"), To(2, "e")};
  absl::StatusOr<std::vector<PublishResult>> results = queue_->Publish("work", batch);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 5u);
  std::vector<std::pair<int, uint64_t>> got;
  for (const PublishResult& r : *results) got.emplace_back(r.partition, r.offset);
  EXPECT_THAT(got, ElementsAre(std::pair(0, 0u), std::pair(2, 0u), std::pair(0, 1u),
                               std::pair(0, 2u), std::pair(2, 1u)));
  absl::StatusOr<std::vector<PublishResult>> more = PublishOne(queue_.get(), "work", To(0, "f"));
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_EQ((*more)[0].offset, 3u);
  // An empty batch publishes nothing.
  absl::StatusOr<std::vector<PublishResult>> none =
      queue_->Publish("work", std::span<const PublishMessage>());
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());

  EXPECT_THAT(Values(PollOrDie(queue_.get(), Request("g", "work", {0}))),
              ElementsAre("a", "c", "d", "f"));
  EXPECT_THAT(Values(PollOrDie(queue_.get(), Request("g", "work", {2}))), ElementsAre("b", "e"));
  EXPECT_TRUE(PollOrDie(queue_.get(), Request("g", "work", {1})).empty());
}

TEST_P(QueueConformanceTest, KeysChooseTheirPartitionAndEmptyKeysSpread) {
  constexpr int kPartitions = 5;
  CreateTopic(queue_.get(), "keyed", kPartitions);
  std::vector<PublishMessage> batch;
  for (int i = 0; i < 50; ++i) {
    batch.push_back(PublishMessage{"member-" + std::to_string(i % 10), std::to_string(i)});
  }
  absl::StatusOr<std::vector<PublishResult>> results = queue_->Publish("keyed", batch);
  ASSERT_TRUE(results.ok()) << results.status();
  for (size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ((*results)[i].partition, KeyPartition(batch[i].key, kPartitions)) << i;
  }
  // Every message of one key is in one partition, in publish order.
  std::vector<Message> all = Drain(queue_.get(), Request("g", "keyed"));
  ASSERT_EQ(all.size(), batch.size());
  std::map<std::string, std::vector<int>> by_key;
  std::map<std::string, std::set<int>> partitions_of_key;
  for (const Message& m : all) {
    by_key[m.key].push_back(std::stoi(m.value));
    partitions_of_key[m.key].insert(m.partition);
  }
  for (const auto& [key, values] : by_key) {
    EXPECT_TRUE(std::is_sorted(values.begin(), values.end())) << key;
    EXPECT_EQ(partitions_of_key[key].size(), 1u) << key;
  }
  // Messages without a key are spread over every partition.
  std::vector<PublishMessage> unkeyed(kPartitions * 4, PublishMessage{"", "x"});
  results = queue_->Publish("keyed", unkeyed);
  ASSERT_TRUE(results.ok()) << results.status();
  std::set<int> used;
  for (const PublishResult& r : *results) used.insert(r.partition);
  EXPECT_EQ(used.size(), static_cast<size_t>(kPartitions));
}

TEST_P(QueueConformanceTest, PollDeliversInOrderAndAdvancesThePosition) {
  CreateTopic(queue_.get(), "work", 1);
  const Millis t0 = clock_.NowMillis();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(PublishOne(queue_.get(), "work", To(0, "v" + std::to_string(i), "k")).ok());
    clock_.Advance(1);
  }
  std::vector<Message> first = PollOrDie(queue_.get(), Request("g", "work", {}, 4));
  EXPECT_THAT(Offsets(first), ElementsAre(0, 1, 2, 3));
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(first[0].key, "k");
  EXPECT_EQ(first[0].value, "v0");
  EXPECT_EQ(first[0].partition, 0);
  EXPECT_EQ(first[0].publish_time, t0);
  EXPECT_EQ(first[3].publish_time, t0 + 3);
  EXPECT_THAT(Offsets(PollOrDie(queue_.get(), Request("g", "work", {}, 4))),
              ElementsAre(4, 5, 6, 7));
  EXPECT_THAT(Offsets(PollOrDie(queue_.get(), Request("g", "work", {}, 4))), ElementsAre(8, 9));
  EXPECT_TRUE(PollOrDie(queue_.get(), Request("g", "work", {}, 4)).empty());
  // A second group reads the same messages independently.
  EXPECT_EQ(Drain(queue_.get(), Request("other", "work")).size(), 10u);
  // Binary keys and values and empty values survive.
  std::string binary("\0\xff\x01", 3);
  ASSERT_TRUE(PublishOne(queue_.get(), "work", To(0, binary, binary)).ok());
  ASSERT_TRUE(PublishOne(queue_.get(), "work", To(0, "", "")).ok());
  std::vector<Message> tail = PollOrDie(queue_.get(), Request("g", "work"));
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].key, binary);
  EXPECT_EQ(tail[0].value, binary);
  EXPECT_EQ(tail[1].value, "");
}

TEST_P(QueueConformanceTest, PollSpreadsMaxMessagesOverPartitions) {
  CreateTopic(queue_.get(), "work", 3);
  std::vector<PublishMessage> batch;
  for (int p = 0; p < 3; ++p) {
    for (int i = 0; i < 20; ++i) batch.push_back(To(p, std::to_string(p)));
  }
  ASSERT_TRUE(queue_->Publish("work", batch).ok());
  std::map<int, std::vector<uint64_t>> offsets;
  size_t total = 0;
  for (int round = 0; round < 100; ++round) {
    std::vector<Message> page = PollOrDie(queue_.get(), Request("g", "work", {}, 7));
    EXPECT_LE(page.size(), 7u);
    if (page.empty()) break;
    total += page.size();
    for (const Message& m : page) offsets[m.partition].push_back(m.offset);
  }
  EXPECT_EQ(total, 60u);
  for (int p = 0; p < 3; ++p) {
    ASSERT_EQ(offsets[p].size(), 20u) << p;
    for (uint64_t i = 0; i < 20; ++i) EXPECT_EQ(offsets[p][i], i) << p;
  }
}

TEST_P(QueueConformanceTest, RestartRedeliversFromTheCommittedOffset) {
  CreateTopic(queue_.get(), "work", 2);
  std::vector<PublishMessage> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(To(0, "a" + std::to_string(i)));
  for (int i = 0; i < 6; ++i) batch.push_back(To(1, "b" + std::to_string(i)));
  ASSERT_TRUE(queue_->Publish("work", batch).ok());
  EXPECT_EQ(Drain(queue_.get(), Request("g", "work")).size(), 16u);
  ASSERT_EQ(Outcome(queue_->Commit("g", "work", 0, 4)), "ok");
  ASSERT_EQ(Outcome(queue_->Commit("g", "work", 1, 6)), "ok");

  Restart();
  ASSERT_NE(queue_, nullptr);
  std::vector<Message> again = Drain(queue_.get(), Request("g", "work"));
  EXPECT_THAT(Values(again), ElementsAre("a4", "a5", "a6", "a7", "a8", "a9"));
  absl::StatusOr<std::vector<PartitionLag>> lag = queue_->Lag("g", "work");
  ASSERT_TRUE(lag.ok()) << lag.status();
  ASSERT_EQ(lag->size(), 2u);
  EXPECT_EQ((*lag)[0].committed, 4u);
  EXPECT_EQ((*lag)[0].end_offset, 10u);
  EXPECT_EQ((*lag)[0].backlog, 6u);
  EXPECT_EQ((*lag)[1].committed, 6u);
  EXPECT_EQ((*lag)[1].backlog, 0u);
  // New messages continue the offsets after a restart.
  absl::StatusOr<std::vector<PublishResult>> next = PublishOne(queue_.get(), "work", To(1, "b6"));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ((*next)[0].offset, 6u);
  EXPECT_THAT(Values(PollOrDie(queue_.get(), Request("g", "work", {1}))), ElementsAre("b6"));
}

TEST_P(QueueConformanceTest, RewindRedeliversOutstandingMessages) {
  CreateTopic(queue_.get(), "work", 1);
  std::vector<PublishMessage> batch(5, To(0, "x"));
  ASSERT_TRUE(queue_->Publish("work", batch).ok());
  EXPECT_EQ(PollOrDie(queue_.get(), Request("g", "work")).size(), 5u);
  ASSERT_EQ(Outcome(queue_->Commit("g", "work", 0, 2)), "ok");
  EXPECT_TRUE(PollOrDie(queue_.get(), Request("g", "work")).empty());
  ASSERT_EQ(Outcome(queue_->Rewind("g", "work")), "ok");
  EXPECT_THAT(Offsets(PollOrDie(queue_.get(), Request("g", "work"))), ElementsAre(2, 3, 4));
  // Rewinding a group that never polled is fine.
  EXPECT_EQ(Outcome(queue_->Rewind("never", "work")), "ok");
}

TEST_P(QueueConformanceTest, StalledConsumerGetsItsMessagesRedelivered) {
  CreateTopic(queue_.get(), "work", 1);
  std::vector<PublishMessage> batch(6, To(0, "x"));
  ASSERT_TRUE(queue_->Publish("work", batch).ok());
  EXPECT_EQ(PollOrDie(queue_.get(), Request("g", "work", {}, 4)).size(), 4u);
  clock_.Advance(kConformanceRedeliveryTimeoutMs - 1);
  // Not yet timed out: the position holds.
  EXPECT_THAT(Offsets(PollOrDie(queue_.get(), Request("g", "work", {}, 1))), ElementsAre(4));
  // A commit is progress: it restarts the timer.
  ASSERT_EQ(Outcome(queue_->Commit("g", "work", 0, 2)), "ok");
  clock_.Advance(kConformanceRedeliveryTimeoutMs - 1);
  EXPECT_THAT(Offsets(PollOrDie(queue_.get(), Request("g", "work", {}, 1))), ElementsAre(5));
  clock_.Advance(kConformanceRedeliveryTimeoutMs);
  // No progress for the whole timeout: everything after the commit comes back.
  EXPECT_THAT(Offsets(PollOrDie(queue_.get(), Request("g", "work"))), ElementsAre(2, 3, 4, 5));
}

TEST_P(QueueConformanceTest, CommitMovesOnlyForward) {
  CreateTopic(queue_.get(), "work", 2);
  std::vector<PublishMessage> batch(8, To(1, "x"));
  ASSERT_TRUE(queue_->Publish("work", batch).ok());
  ASSERT_EQ(Outcome(queue_->Commit("g", "work", 1, 5)), "ok");
  ASSERT_EQ(Outcome(queue_->Commit("g", "work", 1, 3)), "ok");  // ignored
  ASSERT_EQ(Outcome(queue_->Commit("g", "work", 1, 8)), "ok");  // == end offset: allowed
  absl::StatusOr<std::vector<PartitionLag>> lag = queue_->Lag("g", "work");
  ASSERT_TRUE(lag.ok()) << lag.status();
  EXPECT_EQ((*lag)[1].committed, 8u);
  ASSERT_EQ(Outcome(queue_->Commit("g", "work", 1, 6)), "ok");
  lag = queue_->Lag("g", "work");
  ASSERT_TRUE(lag.ok());
  EXPECT_EQ((*lag)[1].committed, 8u);
  // Committing ahead of the position skips those messages for the group.
  EXPECT_TRUE(PollOrDie(queue_.get(), Request("g", "work")).empty());
}

TEST_P(QueueConformanceTest, LagReportsBacklogPerPartition) {
  CreateTopic(queue_.get(), "work", 3);
  std::vector<PublishMessage> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(To(0, "x"));
  for (int i = 0; i < 3; ++i) batch.push_back(To(2, "y"));
  ASSERT_TRUE(queue_->Publish("work", batch).ok());
  // A group that never polled has its whole backlog ahead of it.
  absl::StatusOr<std::vector<PartitionLag>> lag = queue_->Lag("g", "work");
  ASSERT_TRUE(lag.ok()) << lag.status();
  ASSERT_EQ(lag->size(), 3u);
  for (int p = 0; p < 3; ++p) EXPECT_EQ((*lag)[p].partition, p);
  EXPECT_EQ((*lag)[0].backlog, 5u);
  EXPECT_EQ((*lag)[1].backlog, 0u);
  EXPECT_EQ((*lag)[2].backlog, 3u);
  EXPECT_EQ((*lag)[2].end_offset, 3u);
  // Delivery alone does not reduce the backlog; commits do.
  EXPECT_EQ(Drain(queue_.get(), Request("g", "work")).size(), 8u);
  lag = queue_->Lag("g", "work");
  ASSERT_TRUE(lag.ok());
  EXPECT_EQ((*lag)[0].backlog, 5u);
  ASSERT_EQ(Outcome(queue_->Commit("g", "work", 0, 2)), "ok");
  ASSERT_EQ(Outcome(queue_->Commit("g", "work", 2, 3)), "ok");
  lag = queue_->Lag("g", "work");
  ASSERT_TRUE(lag.ok());
  EXPECT_EQ((*lag)[0].committed, 2u);
  EXPECT_EQ((*lag)[0].backlog, 3u);
  EXPECT_EQ((*lag)[2].backlog, 0u);
}

TEST_P(QueueConformanceTest, RetentionTrimsOnlyWhatEveryGroupCommittedAndIsOld) {
  if (!harness_->TrimsOnEnforceRetention()) GTEST_SKIP() << "the broker trims by age alone";
  constexpr Millis kRetention = 1000;
  CreateTopic(queue_.get(), "work", 1, kRetention);
  std::vector<PublishMessage> batch(10, To(0, "old"));
  ASSERT_TRUE(queue_->Publish("work", batch).ok());
  ASSERT_EQ(Outcome(queue_->Commit("fast", "work", 0, 10)), "ok");
  ASSERT_EQ(Outcome(queue_->Commit("slow", "work", 0, 4)), "ok");
  auto enforce = [&]() -> uint64_t {
    absl::StatusOr<uint64_t> trimmed = queue_->EnforceRetention();
    EXPECT_TRUE(trimmed.ok()) << trimmed.status();
    return trimmed.value_or(0);
  };
  EXPECT_EQ(enforce(), 0u) << "messages younger than the retention stay";
  clock_.Advance(kRetention);
  EXPECT_EQ(enforce(), 4u) << "only below the slowest group's commit";
  absl::StatusOr<std::vector<PartitionLag>> lag = queue_->Lag("slow", "work");
  ASSERT_TRUE(lag.ok()) << lag.status();
  EXPECT_EQ((*lag)[0].start_offset, 4u);
  EXPECT_EQ((*lag)[0].backlog, 6u);
  EXPECT_THAT(Offsets(PollOrDie(queue_.get(), Request("slow", "work", {}, 2))), ElementsAre(4, 5));

  batch.assign(5, To(0, "young"));
  ASSERT_TRUE(queue_->Publish("work", batch).ok());  // offsets 10..14
  ASSERT_EQ(Outcome(queue_->Commit("slow", "work", 0, 15)), "ok");
  ASSERT_EQ(Outcome(queue_->Commit("fast", "work", 0, 15)), "ok");
  EXPECT_EQ(enforce(), 6u) << "the old ones only";
  clock_.Advance(kRetention);
  EXPECT_EQ(enforce(), 5u);
  EXPECT_EQ(enforce(), 0u);
  // A group arriving now starts at the first retained offset: nothing is left.
  EXPECT_TRUE(PollOrDie(queue_.get(), Request("late", "work")).empty());

  Restart();
  ASSERT_NE(queue_, nullptr);
  lag = queue_->Lag("fast", "work");
  ASSERT_TRUE(lag.ok()) << lag.status();
  EXPECT_EQ((*lag)[0].start_offset, 15u);
  EXPECT_EQ((*lag)[0].end_offset, 15u);
  absl::StatusOr<std::vector<PublishResult>> next = PublishOne(queue_.get(), "work", To(0, "z"));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ((*next)[0].offset, 15u);
  EXPECT_THAT(Values(PollOrDie(queue_.get(), Request("late", "work"))), ElementsAre("z"));
}

TEST_P(QueueConformanceTest, RetentionWaitsForAGroupThatHasOnlyPolled) {
  if (!harness_->TrimsOnEnforceRetention()) GTEST_SKIP() << "the broker trims by age alone";
  CreateTopic(queue_.get(), "work", 1, 0);
  std::vector<PublishMessage> batch(3, To(0, "x"));
  ASSERT_TRUE(queue_->Publish("work", batch).ok());
  EXPECT_EQ(PollOrDie(queue_.get(), Request("worker", "work")).size(), 3u);
  absl::StatusOr<uint64_t> trimmed = queue_->EnforceRetention();
  ASSERT_TRUE(trimmed.ok()) << trimmed.status();
  EXPECT_EQ(*trimmed, 0u) << "delivered is not processed";
  ASSERT_EQ(Outcome(queue_->Commit("worker", "work", 0, 2)), "ok");
  trimmed = queue_->EnforceRetention();
  ASSERT_TRUE(trimmed.ok()) << trimmed.status();
  EXPECT_EQ(*trimmed, 2u);
}

TEST_P(QueueConformanceTest, PollWaitsForAPublish) {
  CreateTopic(queue_.get(), "work", 2);
  // With nothing to read, a short wait returns empty.
  PollRequest quick = Request("g", "work");
  quick.wait_ms = 20;
  absl::StatusOr<std::vector<Message>> none = queue_->Poll(quick);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());

  constexpr Millis kLongWait = 60'000;
  std::atomic<bool> started{false};
  absl::StatusOr<std::vector<Message>> got;
  std::chrono::steady_clock::duration waited{};
  std::thread consumer([&] {
    PollRequest r = Request("g", "work", {1});
    r.wait_ms = kLongWait;
    started = true;
    const auto begin = std::chrono::steady_clock::now();
    got = queue_->Poll(r);
    waited = std::chrono::steady_clock::now() - begin;
  });
  while (!started) std::this_thread::yield();
  // Give the consumer a moment to block; the assertions below hold either way.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(PublishOne(queue_.get(), "work", To(0, "elsewhere")).ok());
  ASSERT_TRUE(PublishOne(queue_.get(), "work", To(1, "wake")).ok());
  consumer.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(Values(*got), ElementsAre("wake"));
  // Correctness, not speed: the consumer was woken by the publish, not by its timeout.
  EXPECT_LT(waited, std::chrono::milliseconds(kLongWait));
}

TEST_P(QueueConformanceTest, BadInputIsInvalidArgumentNamingTheField) {
  CreateTopic(queue_.get(), "work", 4);
  ExpectInvalid(PublishOne(queue_.get(), "nope", To(0, "x")).status(), "topic");
  ExpectInvalid(PublishOne(queue_.get(), "bad topic", To(0, "x")).status(), "topic");
  ExpectInvalid(PublishOne(queue_.get(), "work", To(4, "x")).status(), "partition");
  ExpectInvalid(PublishOne(queue_.get(), "work", To(-2, "x")).status(), "partition");
  ExpectInvalid(
      PublishOne(queue_.get(), "work", To(0, std::string(kMaxMessageBytes, 'v'), "k")).status(),
      "messages[0]");
  std::vector<PublishMessage> too_many(kMaxPublishBatch + 1, To(0, "x"));
  ExpectInvalid(queue_->Publish("work", too_many).status(), "messages");
  // A batch with one bad message publishes nothing.
  std::vector<PublishMessage> mixed = {To(0, "ok"), To(9, "bad")};
  ExpectInvalid(queue_->Publish("work", mixed).status(), "partition");
  absl::StatusOr<std::vector<PartitionLag>> lag = queue_->Lag("g", "work");
  ASSERT_TRUE(lag.ok()) << lag.status();
  EXPECT_EQ((*lag)[0].end_offset, 0u);

  PollRequest r = Request("g", "work");
  r.max_messages = 0;
  ExpectInvalid(queue_->Poll(r).status(), "max_messages");
  r.max_messages = -5;
  ExpectInvalid(queue_->Poll(r).status(), "max_messages");
  r.max_messages = kMaxPollMessages + 1;
  ExpectInvalid(queue_->Poll(r).status(), "max_messages");
  r.max_messages = 10;
  r.wait_ms = -1;
  ExpectInvalid(queue_->Poll(r).status(), "wait_ms");
  r.wait_ms = kMaxPollWaitMs + 1;
  ExpectInvalid(queue_->Poll(r).status(), "wait_ms");
  r.wait_ms = std::numeric_limits<Millis>::max();
  ExpectInvalid(queue_->Poll(r).status(), "wait_ms");
  ExpectInvalid(queue_->Poll(Request("g", "nope")).status(), "topic");
  ExpectInvalid(queue_->Poll(Request("", "work")).status(), "group");
  ExpectInvalid(queue_->Poll(Request("g/x", "work")).status(), "group");
  ExpectInvalid(queue_->Poll(Request("g", "work", {-1})).status(), "partitions");
  ExpectInvalid(queue_->Poll(Request("g", "work", {4})).status(), "partitions");
  ExpectInvalid(queue_->Poll(Request("g", "work", {1, 1})).status(), "partitions");

  ExpectInvalid(queue_->Commit("g", "nope", 0, 0), "topic");
  ExpectInvalid(queue_->Commit("", "work", 0, 0), "group");
  ExpectInvalid(queue_->Commit("g", "work", 4, 0), "partition");
  ExpectInvalid(queue_->Commit("g", "work", -1, 0), "partition");
  ExpectInvalid(queue_->Commit("g", "work", 0, 1), "offset");  // beyond the end (0)
  ExpectInvalid(queue_->Rewind("g", "nope"), "topic");
  ExpectInvalid(queue_->Rewind("bad group", "work"), "group");
  ExpectInvalid(queue_->Lag("g", "nope").status(), "topic");
  ExpectInvalid(queue_->Lag("", "work").status(), "group");
}

// Several publishers and consumers at once: every published message is delivered to every
// group exactly once (no consumer fails here, so nothing is redelivered), in offset order
// per partition, and publish offsets are unique and dense.
TEST_P(QueueConformanceTest, ConcurrentPublishersAndConsumersLoseNothing) {
  constexpr int kPartitions = 4;
  constexpr int kPublishers = 4;
  constexpr int kPerPublisher = 400;
  constexpr int kTotal = kPublishers * kPerPublisher;
  CreateTopic(queue_.get(), "work", kPartitions);

  std::mutex results_mu;
  std::map<int, std::vector<uint64_t>> published_offsets;
  std::atomic<int> publish_errors{0};
  std::atomic<int> publishers_done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kPublishers; ++t) {
    threads.emplace_back([&, t] {
      struct Done {
        std::atomic<int>* done;
        ~Done() { ++*done; }
      } done{&publishers_done};
      int sent = 0;
      while (sent < kPerPublisher) {
        const int n = std::min(1 + (sent % 7), kPerPublisher - sent);  // batches of 1..7
        std::vector<PublishMessage> batch;
        for (int i = 0; i < n; ++i) {
          const int seq = sent + i;
          batch.push_back(PublishMessage{"p" + std::to_string(t) + "-" + std::to_string(seq % 13),
                                         std::to_string(t * kPerPublisher + seq)});
        }
        absl::StatusOr<std::vector<PublishResult>> results = queue_->Publish("work", batch);
        if (!results.ok()) {
          ++publish_errors;
          return;
        }
        std::lock_guard<std::mutex> lock(results_mu);
        for (const PublishResult& r : *results) published_offsets[r.partition].push_back(r.offset);
        sent += n;
      }
    });
  }

  // Group "pair": two consumers with two partitions each; group "solo": one consumer of all.
  struct Consumer {
    std::string group;
    std::vector<int> partitions;
    std::vector<Message> received;
    int errors = 0;
  };
  std::vector<Consumer> consumers = {
      {"pair", {0, 1}, {}, 0}, {"pair", {2, 3}, {}, 0}, {"solo", {}, {}, 0}};
  std::atomic<int> pair_received{0};
  std::atomic<int> solo_received{0};
  for (Consumer& c : consumers) {
    threads.emplace_back([&, &c = c] {
      std::atomic<int>& counter = c.group == "pair" ? pair_received : solo_received;
      // Bounded: once every publisher is done, 50 empty polls in a row end the consumer
      // (a lost message then shows up as a count mismatch, not as a hang).
      int idle = 0;
      while (counter.load() < kTotal && c.errors == 0 && idle < 50) {
        PollRequest r = Request(c.group, "work", c.partitions, 25);
        r.wait_ms = 20;
        absl::StatusOr<std::vector<Message>> page = queue_->Poll(r);
        if (!page.ok()) {
          ++c.errors;
          break;
        }
        if (page->empty() && publishers_done.load() == kPublishers) ++idle;
        if (!page->empty()) idle = 0;
        std::map<int, uint64_t> next_commit;
        for (Message& m : *page) {
          next_commit[m.partition] = m.offset + 1;
          c.received.push_back(std::move(m));
        }
        counter += static_cast<int>(page->size());
        for (const auto& [p, offset] : next_commit) {
          if (!queue_->Commit(c.group, "work", p, offset).ok()) ++c.errors;
        }
        if (publish_errors.load() > 0) break;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(publish_errors.load(), 0);

  size_t published = 0;
  for (auto& [p, offsets] : published_offsets) {
    std::sort(offsets.begin(), offsets.end());
    for (size_t i = 0; i < offsets.size(); ++i) ASSERT_EQ(offsets[i], i) << "partition " << p;
    published += offsets.size();
  }
  EXPECT_EQ(published, static_cast<size_t>(kTotal));

  for (const std::string group : {"pair", "solo"}) {
    std::multiset<std::string> values;
    std::map<int, uint64_t> last_offset;
    for (const Consumer& c : consumers) {
      if (c.group != group) continue;
      EXPECT_EQ(c.errors, 0) << group;
      for (const Message& m : c.received) {
        values.insert(m.value);
        auto [it, first] = last_offset.emplace(m.partition, m.offset);
        if (!first) {
          EXPECT_GT(m.offset, it->second) << "offset order within a partition";
          it->second = m.offset;
        }
      }
    }
    EXPECT_EQ(values.size(), static_cast<size_t>(kTotal)) << group << ": exactly once";
    std::set<std::string> distinct(values.begin(), values.end());
    EXPECT_EQ(distinct.size(), static_cast<size_t>(kTotal)) << group << ": none lost";
    absl::StatusOr<std::vector<PartitionLag>> lag = queue_->Lag(group, "work");
    ASSERT_TRUE(lag.ok()) << lag.status();
    for (const PartitionLag& l : *lag) EXPECT_EQ(l.backlog, 0u) << group << " " << l.partition;
  }
}

// Retention running while a group consumes and commits, and while new groups join, never
// trims a message before its group has committed it, and never makes a Poll fail.
TEST_P(QueueConformanceTest, RetentionRacingConsumersLosesNothing) {
  constexpr int kMessages = 1200;
  CreateTopic(queue_.get(), "work", 2, 0);
  // The group is known to retention from its first Poll on; before that, retention 0 would
  // trim unread messages (a topic without known groups is trimmed by age alone).
  ASSERT_TRUE(PollOrDie(queue_.get(), Request("g", "work")).empty());
  std::atomic<bool> consumers_done{false};
  std::atomic<int> errors{0};
  std::thread publisher([&] {
    for (int i = 0; i < kMessages; i += 10) {
      std::vector<PublishMessage> batch;
      for (int k = i; k < i + 10; ++k) batch.push_back(PublishMessage{"", std::to_string(k)});
      if (!queue_->Publish("work", batch).ok()) ++errors;
    }
  });
  std::thread trimmer([&] {
    while (!consumers_done.load()) {
      if (!queue_->EnforceRetention().ok()) ++errors;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  std::vector<std::string> received;
  std::thread consumer([&] {
    int idle = 0;
    while (static_cast<int>(received.size()) < kMessages && idle < 500 && errors.load() == 0) {
      PollRequest r = Request("g", "work", {}, 7);
      r.wait_ms = 10;
      absl::StatusOr<std::vector<Message>> page = queue_->Poll(r);
      if (!page.ok()) {
        ++errors;
        break;
      }
      idle = page->empty() ? idle + 1 : 0;
      std::map<int, uint64_t> commit;
      for (const Message& m : *page) {
        received.push_back(m.value);
        commit[m.partition] = m.offset + 1;
      }
      for (const auto& [p, offset] : commit) {
        if (!queue_->Commit("g", "work", p, offset).ok()) ++errors;
      }
    }
  });
  // Late groups join while trimming runs; they may start anywhere, but in order and without
  // errors.
  std::thread joiner([&] {
    // Few groups: on a broker each one is a group join of seconds.
    for (int n = 0; n < 4 && errors.load() == 0; ++n) {
      std::map<int, uint64_t> last;
      for (int round = 0; round < 5; ++round) {
        absl::StatusOr<std::vector<Message>> page =
            queue_->Poll(Request("late" + std::to_string(n), "work", {}, 50));
        if (!page.ok()) {
          ++errors;
          return;
        }
        for (const Message& m : *page) {
          auto [it, first] = last.emplace(m.partition, m.offset);
          if (!first && m.offset <= it->second) ++errors;
          it->second = m.offset;
        }
      }
    }
  });
  publisher.join();
  consumer.join();
  joiner.join();
  consumers_done = true;
  trimmer.join();
  EXPECT_EQ(errors.load(), 0);
  std::set<std::string> distinct(received.begin(), received.end());
  EXPECT_EQ(received.size(), static_cast<size_t>(kMessages)) << "each message exactly once";
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kMessages));
}

}  // namespace
}  // namespace strata::store::testing

namespace strata::store::testing {

TEST_P(QueueConformanceTest, ReadFromAnOffsetMovesNoGroup) {
  CreateTopic(queue_.get(), "feed", 2);
  std::vector<PublishMessage> batch = {To(0, "a"), To(0, "b"), To(0, "c"), To(1, "x")};
  ASSERT_TRUE(queue_->Publish("feed", batch).ok());
  auto read = [&](int partition, uint64_t offset, int max) {
    absl::StatusOr<std::vector<Message>> m = queue_->Read("feed", partition, offset, max);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *m : std::vector<Message>{};
  };
  EXPECT_THAT(Values(read(0, 0, 10)), ElementsAre("a", "b", "c"));
  EXPECT_THAT(Offsets(read(0, 1, 1)), ElementsAre(1u));
  EXPECT_TRUE(read(0, 3, 10).empty());
  EXPECT_THAT(Values(read(1, 0, 10)), ElementsAre("x"));
  // No group became known, and a group still starts at offset 0.
  absl::StatusOr<std::vector<std::string>> groups = queue_->ListGroups("feed");
  ASSERT_TRUE(groups.ok());
  EXPECT_TRUE(groups->empty());
  EXPECT_THAT(Values(PollOrDie(queue_.get(), Request("g", "feed", {0}))),
              ElementsAre("a", "b", "c"));
  EXPECT_TRUE(absl::IsInvalidArgument(queue_->Read("feed", 2, 0, 10).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(queue_->Read("nope", 0, 0, 10).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(queue_->Read("feed", 0, 0, 0).status()));
}

}  // namespace strata::store::testing
