#include "strata/store/embedded_queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "strata/base/status.h"
#include "strata/store/memory_row_store.h"
#include "strata/store/queue_conformance.h"

namespace strata::store {
namespace {

using ::testing::HasSubstr;

// The embedded queue over a MemoryRowStore that outlives each queue, so a "restart" keeps
// the rows and loses only the queue's memory (positions), as a process restart does.
class MemoryQueueHarness final : public testing::QueueHarness {
 public:
  absl::StatusOr<std::unique_ptr<Queue>> Open(ManualClock* clock,
                                              MetricsRegistry* metrics) override {
    if (rows_ == nullptr) rows_ = std::make_unique<MemoryRowStore>(clock);
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
  std::unique_ptr<MemoryRowStore> rows_;
};

INSTANTIATE_QUEUE_CONFORMANCE(EmbeddedOnMemory,
                              [] { return std::make_unique<MemoryQueueHarness>(); });

TEST(KeyPartitionTest, IsCrc32ModuloPartitions) {
  // The CRC-32 check value: crc32("123456789") = 0xCBF43926 (zlib, librdkafka's rd_crc32).
  EXPECT_EQ(KeyPartition("123456789", 1'000'000'007),
            static_cast<int>(0xCBF43926u % 1'000'000'007u));
  EXPECT_EQ(KeyPartition("123456789", 10), static_cast<int>(0xCBF43926u % 10));
  EXPECT_EQ(KeyPartition("", 7), 0);  // crc32("") = 0
  EXPECT_EQ(KeyPartition("anything", 1), 0);
}

class EmbeddedQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EmbeddedQueueOptions options;
    options.clock = &clock_;
    options.metrics = &metrics_;
    absl::StatusOr<std::unique_ptr<EmbeddedQueue>> queue = EmbeddedQueue::Open(&rows_, options);
    ASSERT_TRUE(queue.ok()) << queue.status();
    queue_ = std::move(*queue);
  }

  ManualClock clock_;
  MetricsRegistry metrics_;
  MemoryRowStore rows_{&clock_};
  std::unique_ptr<EmbeddedQueue> queue_;
};

TEST_F(EmbeddedQueueTest, OpenRejectsBadOptions) {
  EXPECT_TRUE(absl::IsInvalidArgument(EmbeddedQueue::Open(nullptr).status()));
  EmbeddedQueueOptions options;
  options.redelivery_timeout_ms = -1;
  absl::Status s = EmbeddedQueue::Open(&rows_, options).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(std::string(s.message()), HasSubstr("redelivery_timeout_ms"));
  options = {};
  options.retention_interval_ms = -1;
  s = EmbeddedQueue::Open(&rows_, options).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("retention_interval_ms"));
}

TEST_F(EmbeddedQueueTest, BackgroundThreadEnforcesRetention) {
  EmbeddedQueueOptions options;
  options.clock = &clock_;
  options.metrics = &metrics_;
  options.retention_interval_ms = 5;
  queue_.reset();
  absl::StatusOr<std::unique_ptr<EmbeddedQueue>> queue = EmbeddedQueue::Open(&rows_, options);
  ASSERT_TRUE(queue.ok()) << queue.status();
  ASSERT_TRUE((*queue)->CreateTopic(TopicOptions{"work", 1, 0}).ok());
  std::vector<PublishMessage> batch(3, PublishMessage{"", "x", 0});
  ASSERT_TRUE((*queue)->Publish("work", batch).ok());
  ASSERT_TRUE((*queue)->Commit("g", "work", 0, 2).ok());
  // Wait (bounded) for the thread: a condition, not a speed assertion.
  uint64_t start = 0;
  for (int i = 0; i < 2000 && start < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    absl::StatusOr<std::vector<PartitionLag>> lag = (*queue)->Lag("g", "work");
    ASSERT_TRUE(lag.ok()) << lag.status();
    start = (*lag)[0].start_offset;
  }
  EXPECT_EQ(start, 2u) << "trimmed up to the commit, and no further";
  queue->reset();  // joins the thread
}

// PublishThen: the messages and the caller's write together, the write only with them.
TEST_F(EmbeddedQueueTest, PublishThenAppliesTheCallersWriteWithTheMessages) {
  ASSERT_TRUE(queue_->CreateTopic(TopicOptions{"feed", 1, 0}).ok());
  absl::StatusOr<Table*> mine = rows_.OpenTable({"outbox", TableProfile::kIndex});
  ASSERT_TRUE(mine.ok());
  ASSERT_TRUE((*mine)->Put("p", "o1", "events").ok());
  PartitionWrite then{*mine, "p", WriteBatch()};
  then.batch.Delete("o1");
  std::vector<PublishMessage> batch = {PublishMessage{"", "e1", 0}, PublishMessage{"", "e2", 0}};
  absl::StatusOr<std::vector<PublishResult>> r = queue_->PublishThen("feed", batch, then);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1].offset, 1u);
  EXPECT_TRUE(absl::IsNotFound((*mine)->Get("p", "o1").status()));
  absl::StatusOr<std::vector<Message>> read = queue_->Read("feed", 0, 0, 10);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[1].value, "e2");

  // Nothing published (an unknown topic, an oversize message): the write is not applied.
  ASSERT_TRUE((*mine)->Put("p", "o1", "events").ok());
  EXPECT_TRUE(absl::IsInvalidArgument(queue_->PublishThen("nope", batch, then).status()));
  std::vector<PublishMessage> huge = {PublishMessage{"", std::string(2'000'000, 'x'), 0}};
  EXPECT_TRUE(absl::IsInvalidArgument(queue_->PublishThen("feed", huge, then).status()));
  EXPECT_EQ((*mine)->Get("p", "o1").value_or("?"), "events");
  EXPECT_EQ(queue_->Read("feed", 0, 0, 10)->size(), 2u);
  // No table: refused.
  EXPECT_TRUE(absl::IsInvalidArgument(
      queue_->PublishThen("feed", batch, PartitionWrite{nullptr, "p", WriteBatch()}).status()));
}

TEST_F(EmbeddedQueueTest, LayoutIsTheDocumentedOne) {
  ASSERT_TRUE(queue_->CreateTopic(TopicOptions{"gc", 2, 0}).ok());
  std::vector<PublishMessage> batch = {PublishMessage{"k", "v", 1}};
  ASSERT_TRUE(queue_->Publish("gc", batch).ok());
  ASSERT_TRUE(queue_->Commit("g", "gc", 1, 1).ok());
  absl::StatusOr<Table*> messages = rows_.OpenTable({"queue_messages", TableProfile::kLive});
  absl::StatusOr<Table*> offsets = rows_.OpenTable({"queue_offsets", TableProfile::kIndex});
  absl::StatusOr<Table*> topics = rows_.OpenTable({"queue_topics", TableProfile::kIndex});
  ASSERT_TRUE(messages.ok() && offsets.ok() && topics.ok());
  // No meta row until a trim: publish writes message rows only.
  EXPECT_TRUE(absl::IsNotFound((*messages)->Get("gc/1", "").status()));
  // Message row at big-endian offset 0: format 1, zigzag time, key, value.
  absl::StatusOr<std::string> row = (*messages)->Get("gc/1", std::string(8, '\0'));
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(row->substr(0, 1), "\x01");
  EXPECT_EQ(row->substr(row->size() - 3), std::string("\x01kv", 3));
  EXPECT_EQ((*offsets)->Get("gc", std::string("g/\0\0\0\x01", 6)).value_or("?"),
            std::string("\x01\x01", 2));
  EXPECT_EQ((*topics)->Get("topics", "gc").value_or("?"), std::string("\x01\x02\x00", 3));
  // A trim writes the meta row: format 1, next = 1, start = 1 (group g committed 1).
  absl::StatusOr<uint64_t> trimmed = queue_->EnforceRetention();
  ASSERT_TRUE(trimmed.ok()) << trimmed.status();
  EXPECT_EQ(*trimmed, 1u);
  EXPECT_EQ((*messages)->Get("gc/1", "").value_or("?"), std::string("\x01\x01\x01", 3));
}

// Reopens the queue over the same rows, as a restart does.
class EmbeddedQueueRestartTest : public EmbeddedQueueTest {
 protected:
  absl::StatusOr<std::unique_ptr<EmbeddedQueue>> OpenQueue() {
    EmbeddedQueueOptions options;
    options.clock = &clock_;
    options.metrics = &metrics_;
    options.retention_interval_ms = 0;
    return EmbeddedQueue::Open(&rows_, options);
  }
  void Reopen() {
    queue_.reset();
    absl::StatusOr<std::unique_ptr<EmbeddedQueue>> queue = OpenQueue();
    ASSERT_TRUE(queue.ok()) << queue.status();
    queue_ = std::move(*queue);
  }
  uint64_t PublishOne(const std::string& topic) {
    std::vector<PublishMessage> one = {PublishMessage{"", "m", 0}};
    absl::StatusOr<std::vector<PublishResult>> r = queue_->Publish(topic, one);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? (*r)[0].offset : UINT64_MAX;
  }
};

TEST_F(EmbeddedQueueRestartTest, NextOffsetComesFromTheNewestStoredMessage) {
  ASSERT_TRUE(queue_->CreateTopic(TopicOptions{"feed", 1, 0}).ok());
  for (uint64_t i = 0; i < 5; ++i) EXPECT_EQ(PublishOne("feed"), i);
  Reopen();
  EXPECT_EQ(PublishOne("feed"), 5u) << "no offset reused after a restart";
  absl::StatusOr<std::vector<Message>> all = queue_->Read("feed", 0, 0, 100);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 6u);
  EXPECT_EQ(all->back().offset, 5u);
}

TEST_F(EmbeddedQueueRestartTest, NextOffsetSurvivesATrimOfEveryMessage) {
  ASSERT_TRUE(queue_->CreateTopic(TopicOptions{"feed", 1, 0}).ok());
  for (int i = 0; i < 4; ++i) PublishOne("feed");
  ASSERT_TRUE(queue_->Commit("g", "feed", 0, 4).ok());
  absl::StatusOr<uint64_t> trimmed = queue_->EnforceRetention();
  ASSERT_TRUE(trimmed.ok()) << trimmed.status();
  ASSERT_EQ(*trimmed, 4u) << "every message trimmed: only the meta row knows the next offset";
  Reopen();
  absl::StatusOr<std::vector<PartitionLag>> lag = queue_->Lag("g", "feed");
  ASSERT_TRUE(lag.ok()) << lag.status();
  EXPECT_EQ((*lag)[0].start_offset, 4u);
  EXPECT_EQ((*lag)[0].end_offset, 4u);
  EXPECT_EQ(PublishOne("feed"), 4u);
  // Messages published after the trim, then a restart: the newest message decides again.
  PublishOne("feed");
  Reopen();
  EXPECT_EQ(PublishOne("feed"), 6u);
}

TEST_F(EmbeddedQueueRestartTest, CorruptMessageKeyFailsTheOpenNamingThePartition) {
  ASSERT_TRUE(queue_->CreateTopic(TopicOptions{"feed", 1, 0}).ok());
  PublishOne("feed");
  absl::StatusOr<Table*> messages = rows_.OpenTable({"queue_messages", TableProfile::kLive});
  ASSERT_TRUE(messages.ok());
  ASSERT_TRUE((*messages)->Put("feed/0", std::string(9, '\x7f'), "\x01").ok());
  queue_.reset();
  absl::Status s = OpenQueue().status();
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("feed/0"));
}

TEST_F(EmbeddedQueueTest, MetricsCountAndGaugeBacklog) {
  ASSERT_TRUE(queue_->CreateTopic(TopicOptions{"work", 2, 0}).ok());
  std::vector<PublishMessage> batch(5, PublishMessage{"", "x", 0});
  ASSERT_TRUE(queue_->Publish("work", batch).ok());
  PollRequest r;
  r.group = "g";
  r.topic = "work";
  r.max_messages = 3;
  ASSERT_EQ(queue_->Poll(r).value_or(std::vector<Message>{}).size(), 3u);
  ASSERT_TRUE(queue_->Commit("g", "work", 0, 2).ok());
  ASSERT_TRUE(queue_->Rewind("g", "work").ok());
  const std::string text = metrics_.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("strata_queue_published_total{topic=\"work\"} 5"));
  EXPECT_THAT(text, HasSubstr("strata_queue_delivered_total{topic=\"work\",group=\"g\"} 3"));
  EXPECT_THAT(text, HasSubstr("strata_queue_committed_total{topic=\"work\",group=\"g\"} 2"));
  EXPECT_THAT(text, HasSubstr("strata_queue_redelivered_total{topic=\"work\",group=\"g\"} 1"));
  EXPECT_THAT(text, HasSubstr("strata_queue_backlog{topic=\"work\",group=\"g\"} 3"));
  // The gauge outlives the queue harmlessly: it reports nothing once the queue is gone.
  queue_.reset();
  EXPECT_THAT(metrics_.RenderPrometheus(), ::testing::Not(HasSubstr("strata_queue_backlog{")));
}

}  // namespace
}  // namespace strata::store
