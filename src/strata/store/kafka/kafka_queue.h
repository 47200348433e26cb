// KafkaQueue: the Queue of store/queue.h on Apache Kafka through librdkafka. The mapping
// (docs/queue-and-cache.md has the whole of it):
//  * topic      -> a Kafka topic `<topic_prefix><topic>` with the same partition count,
//                  created through KafkaTopicAdmin (the broker's admin API by default).
//  * Publish    -> one idempotent producer (enable.idempotence, acks=all) per queue; the
//                  partition is chosen here (explicit, KeyPartition of the key, or round
//                  robin), the message timestamp is the injected clock; Publish returns only
//                  after every delivery report, so OK means the broker acknowledged it.
//  * group      -> a Kafka consumer group `<topic_prefix><group>`. The first Poll of a
//                  (group, topic) in this process creates one consumer that subscribe()s to
//                  the topic and waits for its assignment; Poll(partitions) then returns
//                  messages of those partitions THAT KAFKA ASSIGNED TO THIS PROCESS (others
//                  stay empty here and are consumed by the member that owns them). A process
//                  that stops polling for max_poll_interval_ms leaves the group and its
//                  partitions move to another member, restarting at the committed offset.
//  * Commit     -> a synchronous offset commit (through the group's member in this process, or
//                  as a simple committer when this process has none), moving only forward.
//                  A commit can fail while the group rebalances (Aborted): the messages are
//                  then delivered again, to this member or to the partition's new owner.
//  * Read       -> a consumer with assign() of one partition (no group joined or committed).
//  * Lag        -> committed offsets (OffsetFetch) vs. the broker's watermarks.
//  * ListGroups -> a registry topic `<topic_prefix>__strata_queue_groups` to which the first
//                  Poll or Commit of a (group, topic) in a process appends one record.
//  * EnforceRetention -> 0: the broker trims by retention.ms by age alone, never waiting for
//                  consumers. So a topic's retention.ms is max(retention_ms, min_retention_ms):
//                  a backlog older than that is lost on Kafka (keep it far above the worst one).
//
// Delivery is at-least-once, as the Queue contract says: a restart, a rebalance, a failed
// commit, Rewind and the redelivery timeout all hand out uncommitted messages again.
//
// Errors: the Queue contract's InvalidArgument for bad arguments; Unavailable, after at most
// `request_timeout_ms` (metadata, offsets, watermarks, admin) or `publish_timeout_ms`
// (delivery), when the brokers cannot be reached -- never an unbounded wait.
// Thread safety: every method is thread-safe. No librdkafka header is included here.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/base/metrics.h"
#include "strata/store/queue.h"

namespace strata::store {

// How topics are created and their retention read and changed. The default (KafkaQueueOptions
// ::topic_admin == nullptr) is the broker's admin API (CreateTopics, DescribeConfigs,
// AlterConfigs). Tests on librdkafka's mock cluster, which has no admin API, use one that asks
// the mock (strata-kafka-mock's control port). Names given here are the full Kafka names
// (prefix included). Implementations are thread-safe.
class KafkaTopicAdmin {
 public:
  virtual ~KafkaTopicAdmin() = default;
  // Creates the topic with `partitions` partitions and retention.ms = `retention_ms`
  // (-1 = forever). AlreadyExists when a topic of that name exists (whatever its count).
  virtual absl::Status CreateTopic(std::string_view name, int partitions, Millis retention_ms) = 0;
  // The topic's retention.ms; NotFound for an unknown topic.
  virtual absl::StatusOr<Millis> Retention(std::string_view name) = 0;
  virtual absl::Status SetRetention(std::string_view name, Millis retention_ms) = 0;
};

struct KafkaQueueOptions {
  // Bootstrap servers, "host:port,host:port". Required.
  std::string brokers;
  // Prepended to every topic and group name on the cluster (say "strata." or a test's unique
  // prefix), so deployments and tests can share brokers. Topics outside it are not listed.
  // Default "".
  std::string topic_prefix;
  // Decides message timestamps (publish_time) and the redelivery timeout. Must outlive the
  // queue. nullptr = SystemClock::Default().
  Clock* clock = nullptr;
  // Metrics (the embedded queue's names). Must outlive the queue. nullptr = Default().
  MetricsRegistry* metrics = nullptr;
  // Must outlive the queue. nullptr = the broker's admin API.
  KafkaTopicAdmin* topic_admin = nullptr;
  // Milliseconds (wall time) any broker round trip may take before Unavailable: metadata,
  // watermarks, offset fetch and commit, seeks, admin calls. Default 10 s.
  Millis request_timeout_ms = 10'000;
  // Milliseconds (wall time) a Publish waits for its delivery reports (librdkafka's
  // delivery.timeout.ms: retries included) before Unavailable. Default 30 s.
  Millis publish_timeout_ms = 30'000;
  // librdkafka's linger.ms: how long the producer batches. Default 2 ms.
  Millis linger_ms = 2;
  // Consumer group timing (librdkafka's session.timeout.ms, heartbeat.interval.ms,
  // max.poll.interval.ms). A member whose process dies is evicted after the session timeout;
  // one whose process stops calling Poll for max_poll_interval_ms leaves the group; either
  // way its partitions move to the other members. Defaults 10 s, 1 s, 5 minutes.
  Millis session_timeout_ms = 10'000;
  Millis heartbeat_interval_ms = 1'000;
  Millis max_poll_interval_ms = 300'000;
  // Milliseconds (wall time) the first Poll of a group waits for the group's assignment
  // (Kafka's join takes seconds) before Unavailable. Default 60 s.
  Millis join_timeout_ms = 60'000;
  // Milliseconds a Poll waits for messages that the broker already has beyond this member's
  // position (a fetch round trip), even when the request's wait_ms is shorter. Default 5 s.
  Millis fetch_wait_ms = 5'000;
  // Milliseconds (by `clock`) without progress on a partition with delivered but uncommitted
  // messages after which this member goes back to the committed offset (a worker thread
  // that hung while its process keeps polling; max.poll.interval.ms covers a hung process).
  // 0 = never. Default 5 minutes.
  Millis redelivery_timeout_ms = 5 * 60 * 1000;
  // Floor of a topic's retention.ms on the broker, because Kafka trims without waiting for
  // consumers (TopicOptions::retention_ms = 0 would otherwise delete unread work). Default 7
  // days. Tests on the mock cluster, which never trims, set 0.
  Millis min_retention_ms = 7LL * 24 * 3600 * 1000;
  // Messages fetched ahead and held per partition before fetching of that partition pauses
  // (until Poll takes them). Default 2000.
  int max_buffered_per_partition = 2000;
};

// Connects (checking that the brokers answer within request_timeout_ms: Unavailable, naming
// them, otherwise) and creates the group registry topic if needed.
absl::StatusOr<std::unique_ptr<Queue>> OpenKafkaQueue(KafkaQueueOptions options);

}  // namespace strata::store
