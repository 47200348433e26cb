// EmbeddedQueue: the Queue of queue.h on a RowStore (RocksDB in production, MemoryRowStore
// in tests), so messages share the store's write-ahead log and sync policy: a publish that
// returned OK survives kill -9, and power loss as the row store's SyncPolicy says.
//
// Layout (three tables, see docs/queue-and-cache.md):
//  * queue_topics   partition "topics", clustering = topic name -> partitions, retention.
//  * queue_messages partition "<topic>/<p>" (p in decimal): clustering = 8-byte big-endian
//    offset -> publish time, key, value; and the partition's meta row (clustering "", which
//    sorts before every offset) -> next offset, first retained offset. A publish writes its
//    messages and the meta row in one atomic batch, so a crash never leaves a gap or a
//    reused offset.
//  * queue_offsets  partition = topic, clustering "<group>/" + 4-byte big-endian partition
//    -> committed offset. A group's rows are created (at 0) by its first Poll or Commit,
//    which makes it known to retention.
// One EmbeddedQueue must own these tables of a store: it keeps offsets and positions in
// memory (loaded at Open) and is the only writer.
//
// Poll blocks on a condition variable signalled by Publish; it never spins. Positions
// (delivered but not committed) live in memory only, which is what makes a restart redeliver.
//
// Metrics (registry given in the options): strata_queue_published_total{topic},
// strata_queue_delivered_total{topic,group}, strata_queue_committed_total{topic,group}
// (messages newly covered by commits), strata_queue_redelivered_total{topic,group}
// (messages handed out again after a rewind or timeout), strata_queue_trimmed_total{topic},
// and the gauge strata_queue_backlog{topic,group} (sum over partitions).
//
// Retention runs on a background thread every `retention_interval_ms` (or on demand through
// EnforceRetention).
//
// Thread safety: every method is thread-safe. The RowStore must outlive the queue.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/base/metrics.h"
#include "strata/store/queue.h"
#include "strata/store/row_store.h"

namespace strata::store {

struct EmbeddedQueueOptions {
  // Decides publish times, retention and the redelivery timeout. Must outlive the queue.
  // Default nullptr = SystemClock::Default().
  Clock* clock = nullptr;
  // Where the queue's metrics go. Must outlive the queue. nullptr = MetricsRegistry::Default().
  MetricsRegistry* metrics = nullptr;
  // Milliseconds (by `clock`) without progress on a partition with outstanding messages
  // after which a group's position falls back to its committed offset. 0 = never (only a
  // reopen or Rewind redelivers). Default 5 minutes.
  Millis redelivery_timeout_ms = 5 * 60 * 1000;
  // Wall-clock milliseconds between EnforceRetention runs on a background thread.
  // 0 = no thread (the owner calls EnforceRetention). Default 60 s.
  Millis retention_interval_ms = 60 * 1000;
};

class EmbeddedQueue final : public Queue {
 public:
  // Opens the queue's tables in `rows` (creating them) and loads topics, partition counters
  // and committed offsets.
  static absl::StatusOr<std::unique_ptr<EmbeddedQueue>> Open(RowStore* rows,
                                                             EmbeddedQueueOptions options = {});
  ~EmbeddedQueue() override;

  EmbeddedQueue(const EmbeddedQueue&) = delete;
  EmbeddedQueue& operator=(const EmbeddedQueue&) = delete;

  absl::Status CreateTopic(const TopicOptions& options) override;
  absl::StatusOr<TopicInfo> DescribeTopic(std::string_view topic) override;
  absl::StatusOr<std::vector<TopicInfo>> ListTopics() override;
  absl::StatusOr<std::vector<std::string>> ListGroups(std::string_view topic) override;
  absl::StatusOr<std::vector<PublishResult>> Publish(
      std::string_view topic, std::span<const PublishMessage> messages) override;
  // The messages and `then` in one WriteInOrder of the row store (atomic on RocksDB and the
  // memory store): a request's change event and its outbox row's removal cost one write.
  absl::StatusOr<std::vector<PublishResult>> PublishThen(
      std::string_view topic, std::span<const PublishMessage> messages,
      const PartitionWrite& then) override;
  absl::StatusOr<std::vector<Message>> Poll(const PollRequest& request) override;
  absl::StatusOr<std::vector<Message>> Read(std::string_view topic, int partition,
                                            uint64_t offset, int max_messages) override;
  absl::Status Commit(std::string_view group, std::string_view topic, int partition,
                      uint64_t offset) override;
  absl::Status Rewind(std::string_view group, std::string_view topic) override;
  absl::StatusOr<std::vector<PartitionLag>> Lag(std::string_view group,
                                                std::string_view topic) override;
  absl::StatusOr<uint64_t> EnforceRetention() override;

 private:
  absl::StatusOr<std::vector<PublishResult>> PublishImpl(std::string_view topic,
                                                         std::span<const PublishMessage> messages,
                                                         const PartitionWrite* then);
  struct PartitionState;
  struct GroupState;
  struct TopicState;
  struct GaugeLink;

  EmbeddedQueue(RowStore* rows, EmbeddedQueueOptions options);
  absl::Status Load();
  absl::Status LoadTopic(TopicState* topic);
  // The topic, or InvalidArgument naming "topic". Requires mu_.
  absl::StatusOr<TopicState*> FindTopicLocked(std::string_view topic);
  // The group's state on the topic, creating (and persisting) it at committed offsets 0.
  absl::StatusOr<GroupState*> EnsureGroup(std::string_view group, TopicState* topic);
  // Re-reads a partition's meta row after a failed write left memory unsure.
  void ReloadPartition(TopicState* topic, int partition);
  absl::StatusOr<uint64_t> TrimPartition(TopicState* topic, int partition);
  std::vector<std::pair<std::string, double>> BacklogGauge();
  void RetentionLoop();

  RowStore* const rows_;
  const EmbeddedQueueOptions options_;
  Clock* const clock_;
  MetricsRegistry* const metrics_;
  Table* topics_table_ = nullptr;
  Table* messages_table_ = nullptr;
  Table* offsets_table_ = nullptr;

  std::mutex mu_;                      // guards topics_ and every in-memory offset and position
  std::condition_variable published_;  // signalled (with mu_) when messages become visible
  std::map<std::string, std::unique_ptr<TopicState>, std::less<>> topics_;
  std::mutex commit_mu_;  // serialises offset-table writes (commits, group creation)
  std::shared_ptr<GaugeLink> gauge_link_;

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by stop_mu_
  std::thread retention_thread_;
};

}  // namespace strata::store
