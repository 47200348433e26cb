// The queue interface: durable, partitioned topics with consumer groups (Kafka's model in
// small), for work lists such as the GC sweep, tier rotation and asset reprocessing.
//
// Model:
//  * A topic has a fixed number of partitions, set when it is created. A partition is an
//    append-only log; each message gets the next offset of its partition (0, 1, 2, ...).
//    Order holds within a partition only.
//  * Publish picks the partition from the message: an explicit partition, or a hash of the
//    key (CRC-32 of the key modulo the partition count, see KeyPartition), or, for an
//    empty key, round robin -- librdkafka's "consistent_random" partitioner. A publish that
//    returned OK is durable under the backend's sync policy (for the embedded queue: the row
//    store's; it survives kill -9 of the process). A batch publish that fails may have
//    published a prefix of some partitions' messages: retrying it can duplicate messages,
//    which at-least-once consumers must tolerate anyway. A batch's messages to one partition
//    get increasing offsets in batch order; they are consecutive unless another publisher's
//    messages interleave (the embedded queue never interleaves a batch; Kafka may).
//  * A consumer group has one committed offset per (topic, partition): the offset of the
//    next message the group has not yet processed (Kafka's convention). Commit only moves it
//    forward; a lower offset is ignored.
//  * Poll(group, topic, partitions) returns messages from the group's position in each
//    partition. The position starts at the committed offset and advances as Poll delivers.
//    It falls back to the committed offset when the queue is reopened (a restart), when
//    Rewind is called (the supervisor of a crashed consumer; Kafka's rebalance), or when the
//    group made no progress on that partition (no Commit, no new Poll delivery) for
//    `redelivery_timeout` with messages outstanding (a consumer that hangs or died; Kafka's
//    max.poll.interval.ms). So delivery is AT-LEAST-ONCE: a message is redelivered until a
//    commit covers it; consumers make their processing idempotent.
//  * Like Kafka, a partition should be consumed by one consumer of a group at a time (give
//    each consumer its own partitions); several groups read the same topic independently.
//  * Membership: on a broker-backed queue (Kafka) the group's partitions are divided among
//    the PROCESSES (queue instances) that poll it, by the broker. Poll(partitions) returns
//    messages only of the requested partitions that are assigned to this process; the others
//    come back empty here and are consumed by their owner. When an owner stops polling (for
//    max.poll.interval.ms) or dies (session timeout), its partitions move to the remaining
//    members and restart at the committed offset. The embedded queue has one member: every
//    partition is always this process's. Poll's wait_ms bounds the wait for NEW messages:
//    messages already published beyond the position are returned even with wait_ms = 0 (a
//    broker-backed queue fetches them, a bounded round trip).
//  * Commit may fail with Aborted on a broker-backed queue while the group rebalances (the
//    partition may now be someone else's): the messages are then delivered again, here or
//    to the new owner. Handlers are idempotent; a failed commit is logged, not retried.
//  * Retention (embedded): a message is trimmed once (a) every group known to the topic (one
//    that has polled or committed it) has committed past it, and (b) it is older than the
//    topic's retention. A broker-backed queue's broker trims by age alone (Kafka's
//    retention.ms, floored so that retention_ms = 0 does not delete unread work; see
//    store/kafka/kafka_queue.h) and its EnforceRetention returns 0.
//    Lag/backlog per group and partition is queryable.
//
// Mapping to Kafka (store/kafka/kafka_queue.h, librdkafka; docs/queue-and-cache.md):
//  * topic + partitions -> a Kafka topic with that many partitions (CreateTopic = admin
//    CreateTopics; an existing topic with the same count is fine).
//  * Publish -> rd_kafka_producev to the partition chosen here (KeyPartition is librdkafka's
//    consistent_random hash of non-empty keys), acks=all, enable.idempotence=true; OK after
//    the delivery reports.
//    PublishResult = the delivery report's partition and offset. Message::publish_time =
//    the message timestamp (CreateTime).
//  * group -> group.id; the first Poll of (group, topic) in a process subscribe()s one
//    consumer, so the broker balances partitions over processes; Poll(partitions) consumes
//    those of them assigned here; Commit -> synchronous commit of the offset (Kafka also
//    stores "next offset to read"); Rewind -> seek this member's partitions to committed;
//    max.poll.interval.ms -> a process that stops polling loses its partitions; the
//    redelivery timeout (injected clock) still covers a hung thread in a live process.
//  * Lag -> committed offsets (committed()) and watermarks (query_watermark_offsets);
//    ListTopics -> metadata; ListGroups -> a registry topic the first Poll/Commit writes to.
//  * EnforceRetention -> nothing to do: Kafka trims by retention.ms on the broker, without
//    regard to consumers; set retention.ms well above the worst backlog age.
//
// Names: topics and groups are 1..249 characters of [A-Za-z0-9._-] (Kafka's rule).
// Errors are values: InvalidArgument, naming the field, for bad arguments -- including an
// unknown topic passed to Publish, Poll, Commit, Rewind or Lag ("topic: unknown topic x");
// DescribeTopic answers NotFound for it. The row store's or broker's errors otherwise.
// Nothing throws.
// Thread safety: every method is thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/store/row_store.h"

namespace strata::store {

inline constexpr size_t kMaxQueueNameSize = 249;
inline constexpr int kMaxTopicPartitions = 4096;
// Largest key + value of one message (Kafka's default message.max.bytes is about 1 MB).
inline constexpr size_t kMaxMessageBytes = 1'000'000;
// Most messages one Poll may ask for, and one Publish may carry.
inline constexpr int kMaxPollMessages = 10'000;
inline constexpr size_t kMaxPublishBatch = 10'000;
// Longest a Poll may wait (5 minutes): consumers loop, they do not park forever.
inline constexpr Millis kMaxPollWaitMs = 300'000;
// Passed as PublishMessage::partition: choose by key (or round robin for an empty key).
inline constexpr int kAnyPartition = -1;

struct TopicOptions {
  std::string name;
  // Number of partitions, 1..kMaxTopicPartitions. Fixed for the topic's life.
  int partitions = 1;
  // Milliseconds a message is kept at least, even when every group has committed past it.
  // 0 = trim as soon as every group has committed past it. Default 7 days.
  Millis retention_ms = 7LL * 24 * 3600 * 1000;
};

struct TopicInfo {
  std::string name;
  int partitions = 0;
  Millis retention_ms = 0;
};

struct PublishMessage {
  std::string key;    // may be empty
  std::string value;  // key.size() + value.size() <= kMaxMessageBytes
  // kAnyPartition (default) = by key; otherwise 0..partitions-1.
  int partition = kAnyPartition;
};

struct PublishResult {
  int partition = 0;
  uint64_t offset = 0;
};

struct Message {
  int partition = 0;
  uint64_t offset = 0;
  std::string key;
  std::string value;
  Millis publish_time = 0;  // the queue's clock when published
};

struct PollRequest {
  std::string group;
  std::string topic;
  // Partitions to read; empty = every partition of the topic.
  std::vector<int> partitions;
  // Most messages returned, 1..kMaxPollMessages.
  int max_messages = 100;
  // Milliseconds to wait for a message when none is available (wall time, not the injected
  // clock), 0..kMaxPollWaitMs: 0 returns at once. Poll returns as soon as any message is
  // available.
  Millis wait_ms = 0;
};

struct PartitionLag {
  int partition = 0;
  uint64_t committed = 0;     // the group's committed offset (0 before its first commit)
  uint64_t start_offset = 0;  // first retained offset (older ones were trimmed)
  uint64_t end_offset = 0;    // offset the next published message will get
  // Messages published but not yet committed by the group: end - max(committed, start).
  uint64_t backlog = 0;
};

class Queue {
 public:
  virtual ~Queue() = default;

  // Creates a topic. OK if it exists with the same partition count (its retention is then
  // updated); FailedPrecondition if it exists with another count.
  virtual absl::Status CreateTopic(const TopicOptions& options) = 0;
  // NotFound for an unknown topic.
  virtual absl::StatusOr<TopicInfo> DescribeTopic(std::string_view topic) = 0;
  // Every topic, by name.
  virtual absl::StatusOr<std::vector<TopicInfo>> ListTopics() = 0;
  // The groups known to a topic (that polled or committed it), by name: with Lag, what an
  // operator's backlog view iterates.
  virtual absl::StatusOr<std::vector<std::string>> ListGroups(std::string_view topic) = 0;

  // Publishes messages (at most kMaxPublishBatch) in order; results are in the same order.
  // Messages to one partition get increasing offsets in batch order (see the header). InvalidArgument
  // (nothing published) for an unknown topic, a bad partition or an oversize message.
  virtual absl::StatusOr<std::vector<PublishResult>> Publish(
      std::string_view topic, std::span<const PublishMessage> messages) = 0;

  // Publish, then `then`: a write of the caller's (the asset service removes the outbox
  // row that held these events) applied only once the messages are stored. This default
  // publishes and then applies `then` to its table: a crash or a failed write in between
  // leaves `then` unapplied (and the call fails), so the caller's outbox is published again
  // (at least once). The embedded queue writes the messages and `then` in one ordered write
  // of its row store (one atomic write on RocksDB): then `then.table` must be a table of
  // that store.
  virtual absl::StatusOr<std::vector<PublishResult>> PublishThen(
      std::string_view topic, std::span<const PublishMessage> messages,
      const PartitionWrite& then);

  // Messages after the group's position, at most max_messages, in offset order within each
  // partition, from the requested partitions that this process owns in the group (all of
  // them on the embedded queue). An empty result means none arrived within wait_ms.
  virtual absl::StatusOr<std::vector<Message>> Poll(const PollRequest& request) = 0;

  // Reads messages of one partition from `offset` on (at most max_messages, in offset
  // order), outside any consumer group: no position moves, no group becomes known. For
  // viewers of a topic's history (an asset type's change feed). An offset below the first
  // retained one starts at the first retained message; at or past the end gives none.
  // Kafka: assign() the partition, seek(offset), consume.
  virtual absl::StatusOr<std::vector<Message>> Read(std::string_view topic, int partition,
                                                    uint64_t offset, int max_messages) = 0;

  // Records that the group processed every message of the partition below `offset`.
  // offset <= end_offset; a commit at or below the current one is ignored (OK). Aborted when
  // a broker refused it during a rebalance (the messages will be delivered again).
  virtual absl::Status Commit(std::string_view group, std::string_view topic, int partition,
                              uint64_t offset) = 0;

  // Moves the group's position in every partition of the topic (that this process owns)
  // back to its committed offset, so outstanding messages are delivered again (after a
  // consumer crash).
  virtual absl::Status Rewind(std::string_view group, std::string_view topic) = 0;

  // The group's lag in every partition of the topic, by partition.
  virtual absl::StatusOr<std::vector<PartitionLag>> Lag(std::string_view group,
                                                        std::string_view topic) = 0;

  // Trims every message that retention allows (see the header comment); returns how many.
  // Embedded backends need this called periodically; broker-backed ones (Kafka, whose
  // broker trims by age alone) return 0.
  virtual absl::StatusOr<uint64_t> EnforceRetention() = 0;
};

// The partition of a non-empty key: CRC-32 (IEEE 802.3, as zlib and librdkafka's rd_crc32)
// of the key, modulo `partitions`. Stable across versions: it is part of the data layout.
int KeyPartition(std::string_view key, int partitions);

// Argument checks shared by every backend, so they agree on InvalidArgument and messages.
// `field` names the argument ("topic", "group").
absl::Status ValidateQueueName(std::string_view name, std::string_view field);
absl::Status ValidateTopicOptions(const TopicOptions& options);
absl::Status ValidatePollRequest(const PollRequest& request);

}  // namespace strata::store
