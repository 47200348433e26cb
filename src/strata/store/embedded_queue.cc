#include "strata/store/embedded_queue.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <utility>

#include "strata/base/coding.h"
#include "strata/base/log.h"
#include "strata/base/status.h"

namespace strata::store {
namespace {

constexpr char kTopicsTable[] = "queue_topics";
constexpr char kMessagesTable[] = "queue_messages";
constexpr char kOffsetsTable[] = "queue_offsets";
constexpr char kTopicsPartition[] = "topics";
// The clustering key of a partition's meta row: empty, so it sorts before every offset.
constexpr std::string_view kMetaKey = "";
// First byte of every value the queue writes (docs/queue-and-cache.md).
constexpr char kFormatV1 = 1;

std::string PartitionKey(std::string_view topic, int partition) {
  return std::string(topic) + "/" + std::to_string(partition);
}

std::string OffsetKey(uint64_t offset) {
  std::string key;
  coding::PutFixed64BE(&key, offset);
  return key;
}

std::string GroupKey(std::string_view group, int partition) {
  std::string key(group);
  key.push_back('/');
  coding::PutFixed32BE(&key, static_cast<uint32_t>(partition));
  return key;
}

std::string EncodeTopic(int partitions, Millis retention_ms) {
  std::string out(1, kFormatV1);
  coding::PutVarint64(&out, static_cast<uint64_t>(partitions));
  coding::PutVarint64(&out, static_cast<uint64_t>(retention_ms));
  return out;
}

bool DecodeTopic(std::string_view in, int* partitions, Millis* retention_ms) {
  uint64_t p, r;
  if (in.empty() || in[0] != kFormatV1) return false;
  in.remove_prefix(1);
  if (!coding::GetVarint64(&in, &p) || !coding::GetVarint64(&in, &r)) return false;
  if (p < 1 || p > static_cast<uint64_t>(kMaxTopicPartitions)) return false;
  *partitions = static_cast<int>(p);
  *retention_ms = static_cast<Millis>(r);
  return true;
}

std::string EncodeMeta(uint64_t next, uint64_t start) {
  std::string out(1, kFormatV1);
  coding::PutVarint64(&out, next);
  coding::PutVarint64(&out, start);
  return out;
}

bool DecodeMeta(std::string_view in, uint64_t* next, uint64_t* start) {
  if (in.empty() || in[0] != kFormatV1) return false;
  in.remove_prefix(1);
  return coding::GetVarint64(&in, next) && coding::GetVarint64(&in, start) && *start <= *next;
}

std::string EncodeMessage(Millis publish_time, std::string_view key, std::string_view value) {
  std::string out(1, kFormatV1);
  out.reserve(16 + key.size() + value.size());
  coding::PutVarint64(&out, coding::ZigZag(publish_time));
  coding::PutLengthPrefixed(&out, key);
  out.append(value);
  return out;
}

bool DecodeMessage(std::string_view in, Message* message) {
  uint64_t time;
  std::string_view key;
  if (in.empty() || in[0] != kFormatV1) return false;
  in.remove_prefix(1);
  if (!coding::GetVarint64(&in, &time) || !coding::GetLengthPrefixed(&in, &key)) return false;
  message->publish_time = coding::UnZigZag(time);
  message->key.assign(key.data(), key.size());
  message->value.assign(in.data(), in.size());
  return true;
}

std::string EncodeCommitted(uint64_t offset) {
  std::string out(1, kFormatV1);
  coding::PutVarint64(&out, offset);
  return out;
}

bool DecodeCommitted(std::string_view in, uint64_t* offset) {
  if (in.empty() || in[0] != kFormatV1) return false;
  in.remove_prefix(1);
  return coding::GetVarint64(&in, offset);
}

// Topic and group names are [A-Za-z0-9._-], so they need no escaping in label values.
std::string TopicLabels(std::string_view topic) { return "topic=\"" + std::string(topic) + "\""; }
std::string GroupLabels(std::string_view topic, std::string_view group) {
  return TopicLabels(topic) + ",group=\"" + std::string(group) + "\"";
}

absl::Status BadPartition(std::string_view field, int partition, int partitions) {
  return absl::InvalidArgumentError(std::string(field) + ": " + std::to_string(partition) +
                                    " is not in 0.." + std::to_string(partitions - 1));
}

}  // namespace

struct EmbeddedQueue::PartitionState {
  std::string key;  // "<topic>/<p>", the partition of queue_messages
  // Serialises writes of this partition's meta row (publish, trim), so offsets are assigned
  // and made visible in order.
  std::mutex append_mu;
  // Guarded by mu_; changed only while append_mu is held too.
  uint64_t next = 0;   // offset of the next message
  uint64_t start = 0;  // first retained offset
};

struct EmbeddedQueue::GroupState {
  struct Part {
    uint64_t committed = 0;
    uint64_t position = 0;   // next offset to deliver; >= committed
    Millis progress_at = 0;  // last delivery or commit (by clock_), for the redelivery timeout
  };
  std::vector<Part> parts;  // guarded by mu_
  Counter* delivered = nullptr;
  Counter* committed = nullptr;
  Counter* redelivered = nullptr;
};

struct EmbeddedQueue::TopicState {
  TopicInfo info;  // retention_ms guarded by mu_; the rest never changes
  std::vector<std::unique_ptr<PartitionState>> partitions;
  std::map<std::string, std::unique_ptr<GroupState>, std::less<>> groups;  // guarded by mu_
  uint64_t round_robin = 0;    // next partition for an empty key; guarded by mu_
  uint64_t poll_rotation = 0;  // where Poll starts, for fairness; guarded by mu_
  Counter* published = nullptr;
  Counter* trimmed = nullptr;
};

// The backlog gauge lives in the registry, which may outlive the queue: it reaches the
// queue through this link, cleared by the destructor.
struct EmbeddedQueue::GaugeLink {
  std::mutex mu;
  EmbeddedQueue* queue = nullptr;
};

EmbeddedQueue::EmbeddedQueue(RowStore* rows, EmbeddedQueueOptions options)
    : rows_(rows),
      options_(options),
      clock_(options.clock != nullptr ? options.clock : SystemClock::Default()),
      metrics_(options.metrics != nullptr ? options.metrics : MetricsRegistry::Default()) {}

EmbeddedQueue::~EmbeddedQueue() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (retention_thread_.joinable()) retention_thread_.join();
  if (gauge_link_ != nullptr) {
    std::lock_guard<std::mutex> lock(gauge_link_->mu);
    gauge_link_->queue = nullptr;
  }
}

absl::StatusOr<std::unique_ptr<EmbeddedQueue>> EmbeddedQueue::Open(RowStore* rows,
                                                                   EmbeddedQueueOptions options) {
  if (rows == nullptr) return absl::InvalidArgumentError("rows: must not be null");
  if (options.redelivery_timeout_ms < 0) {
    return absl::InvalidArgumentError("redelivery_timeout_ms: must be >= 0");
  }
  if (options.retention_interval_ms < 0) {
    return absl::InvalidArgumentError("retention_interval_ms: must be >= 0");
  }
  auto queue = std::unique_ptr<EmbeddedQueue>(new EmbeddedQueue(rows, options));
  STRATA_RETURN_IF_ERROR(queue->Load());
  auto link = std::make_shared<GaugeLink>();
  link->queue = queue.get();
  queue->gauge_link_ = link;
  queue->metrics_->AddGauge("strata_queue_backlog",
                            "Messages published but not committed, per topic and group",
                            [link]() -> std::vector<std::pair<std::string, double>> {
                              std::lock_guard<std::mutex> lock(link->mu);
                              if (link->queue == nullptr) return {};
                              return link->queue->BacklogGauge();
                            });
  if (options.retention_interval_ms > 0) {
    EmbeddedQueue* raw = queue.get();
    queue->retention_thread_ = std::thread([raw] { raw->RetentionLoop(); });
  }
  return queue;
}

void EmbeddedQueue::RetentionLoop() {
  std::unique_lock<std::mutex> lock(stop_mu_);
  for (;;) {
    if (stop_cv_.wait_for(lock, std::chrono::milliseconds(options_.retention_interval_ms),
                          [this] { return stopping_; })) {
      return;
    }
    lock.unlock();
    absl::StatusOr<uint64_t> trimmed = EnforceRetention();
    if (!trimmed.ok()) {
      STRATA_LOG_WARN("queue: retention failed", "error", trimmed.status().ToString());
    }
    lock.lock();
  }
}

namespace {

// Every row of one partition of a table, following cursors.
absl::StatusOr<std::vector<Row>> ScanPartition(Table* table, std::string_view partition) {
  std::vector<Row> rows;
  ScanOptions options;
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(ScanPage page, table->Scan(partition, options));
    for (Row& row : page.rows) rows.push_back(std::move(row));
    if (page.next_cursor.empty()) return rows;
    options.cursor = std::move(page.next_cursor);
  }
}

// A partition's offsets: `start` from its meta row (written by trims), `next` one past the
// newest stored message or the meta row's, whichever is higher. Publish writes only message
// rows: a meta row rewritten with every batch would sit at the front of the partition's key
// range in every flushed file, so each compaction of the messages table overlapped -- and
// rewrote -- all of the partition's older messages (docs/queue-and-cache.md).
absl::Status ReadPartitionOffsets(Table* table, const std::string& partition, uint64_t* next,
                                  uint64_t* start) {
  uint64_t meta_next = 0, meta_start = 0;
  absl::StatusOr<std::string> meta = table->Get(partition, kMetaKey);
  if (meta.ok()) {
    if (!DecodeMeta(*meta, &meta_next, &meta_start)) {
      return absl::DataLossError("queue: corrupt meta row of " + partition);
    }
  } else if (!absl::IsNotFound(meta.status())) {
    return meta.status();
  }
  ScanOptions last;
  last.start = OffsetKey(0);  // after the meta row
  last.reverse = true;
  last.limit = 1;
  STRATA_ASSIGN_OR_RETURN(ScanPage page, table->Scan(partition, last));
  uint64_t stored_next = 0;
  if (!page.rows.empty()) {
    std::string_view key(page.rows[0].clustering);
    uint64_t offset = 0;
    if (key.size() != 8 || !coding::GetFixed64BE(&key, &offset) || offset == UINT64_MAX) {
      return absl::DataLossError("queue: corrupt message key in " + partition);
    }
    stored_next = offset + 1;
  }
  *next = std::max(meta_next, stored_next);
  *start = meta_start;
  return absl::OkStatus();
}

}  // namespace

absl::Status EmbeddedQueue::Load() {
  STRATA_ASSIGN_OR_RETURN(topics_table_,
                          rows_->OpenTable(TableOptions{kTopicsTable, TableProfile::kIndex}));
  STRATA_ASSIGN_OR_RETURN(messages_table_,
                          rows_->OpenTable(TableOptions{.name = kMessagesTable,
                                                       .profile = TableProfile::kLive,
                                                       .append_only = true}));
  STRATA_ASSIGN_OR_RETURN(offsets_table_,
                          rows_->OpenTable(TableOptions{kOffsetsTable, TableProfile::kIndex}));
  STRATA_ASSIGN_OR_RETURN(std::vector<Row> topic_rows,
                          ScanPartition(topics_table_, kTopicsPartition));
  for (const Row& row : topic_rows) {
    auto topic = std::make_unique<TopicState>();
    topic->info.name = row.clustering;
    if (!DecodeTopic(row.value, &topic->info.partitions, &topic->info.retention_ms)) {
      return absl::DataLossError("queue: corrupt topic row " + row.clustering);
    }
    STRATA_RETURN_IF_ERROR(LoadTopic(topic.get()));
    std::lock_guard<std::mutex> lock(mu_);
    topics_[topic->info.name] = std::move(topic);
  }
  return absl::OkStatus();
}

absl::Status EmbeddedQueue::LoadTopic(TopicState* topic) {
  const std::string& name = topic->info.name;
  topic->published =
      metrics_->GetCounter("strata_queue_published_total", "Messages published", TopicLabels(name));
  topic->trimmed = metrics_->GetCounter("strata_queue_trimmed_total",
                                        "Messages removed by retention", TopicLabels(name));
  for (int p = 0; p < topic->info.partitions; ++p) {
    auto partition = std::make_unique<PartitionState>();
    partition->key = PartitionKey(name, p);
    STRATA_RETURN_IF_ERROR(ReadPartitionOffsets(messages_table_, partition->key,
                                                &partition->next, &partition->start));
    topic->partitions.push_back(std::move(partition));
  }
  STRATA_ASSIGN_OR_RETURN(std::vector<Row> offset_rows, ScanPartition(offsets_table_, name));
  const Millis now = clock_->NowMillis();
  for (const Row& row : offset_rows) {
    const std::string& key = row.clustering;
    std::string_view tail(key);
    uint32_t p = 0;
    uint64_t committed = 0;
    if (key.size() < 6 || key[key.size() - 5] != '/' ||
        !(tail.remove_prefix(key.size() - 4), coding::GetFixed32BE(&tail, &p)) ||
        p >= static_cast<uint32_t>(topic->info.partitions) ||
        !DecodeCommitted(row.value, &committed)) {
      return absl::DataLossError("queue: corrupt committed-offset row of topic " + name);
    }
    const std::string group = key.substr(0, key.size() - 5);
    auto it = topic->groups.find(group);
    if (it == topic->groups.end()) {
      auto state = std::make_unique<GroupState>();
      state->parts.resize(topic->info.partitions);
      const std::string labels = GroupLabels(name, group);
      state->delivered = metrics_->GetCounter("strata_queue_delivered_total",
                                              "Messages delivered by Poll", labels);
      state->committed = metrics_->GetCounter("strata_queue_committed_total",
                                              "Messages newly covered by commits", labels);
      state->redelivered = metrics_->GetCounter("strata_queue_redelivered_total",
                                                "Messages handed out again after a rewind", labels);
      it = topic->groups.emplace(group, std::move(state)).first;
    }
    GroupState::Part& part = it->second->parts[p];
    part.committed = committed;
    part.position = committed;  // a reopen redelivers everything not committed
    part.progress_at = now;
  }
  return absl::OkStatus();
}

absl::StatusOr<EmbeddedQueue::TopicState*> EmbeddedQueue::FindTopicLocked(std::string_view topic) {
  auto it = topics_.find(topic);
  if (it == topics_.end()) {
    return absl::InvalidArgumentError("topic: unknown topic " + std::string(topic));
  }
  return it->second.get();
}

absl::Status EmbeddedQueue::CreateTopic(const TopicOptions& options) {
  STRATA_RETURN_IF_ERROR(ValidateTopicOptions(options));
  std::lock_guard<std::mutex> commit_lock(commit_mu_);  // one metadata writer at a time
  TopicState* existing = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = topics_.find(options.name);
    if (it != topics_.end()) {
      existing = it->second.get();
      if (existing->info.partitions != options.partitions) {
        return absl::FailedPreconditionError("partitions: topic " + options.name + " exists with " +
                                             std::to_string(existing->info.partitions) +
                                             " partitions");
      }
      if (existing->info.retention_ms == options.retention_ms) return absl::OkStatus();
    }
  }
  STRATA_RETURN_IF_ERROR(topics_table_->Put(kTopicsPartition, options.name,
                                            EncodeTopic(options.partitions, options.retention_ms)));
  if (existing != nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    existing->info.retention_ms = options.retention_ms;
    return absl::OkStatus();
  }
  auto topic = std::make_unique<TopicState>();
  topic->info = TopicInfo{options.name, options.partitions, options.retention_ms};
  // Loading also picks up partitions left by an earlier incarnation whose topic row was lost
  // (there are none in normal operation: the topic row is written first).
  STRATA_RETURN_IF_ERROR(LoadTopic(topic.get()));
  std::lock_guard<std::mutex> lock(mu_);
  topics_[options.name] = std::move(topic);
  return absl::OkStatus();
}

absl::StatusOr<TopicInfo> EmbeddedQueue::DescribeTopic(std::string_view topic) {
  STRATA_RETURN_IF_ERROR(ValidateQueueName(topic, "topic"));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = topics_.find(topic);
  if (it == topics_.end()) return absl::NotFoundError("topic: unknown topic " + std::string(topic));
  return it->second->info;
}

absl::StatusOr<std::vector<TopicInfo>> EmbeddedQueue::ListTopics() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<TopicInfo> topics;
  for (const auto& [name, topic] : topics_) topics.push_back(topic->info);
  return topics;
}

absl::StatusOr<std::vector<std::string>> EmbeddedQueue::ListGroups(std::string_view topic_name) {
  STRATA_RETURN_IF_ERROR(ValidateQueueName(topic_name, "topic"));
  std::lock_guard<std::mutex> lock(mu_);
  STRATA_ASSIGN_OR_RETURN(TopicState * topic, FindTopicLocked(topic_name));
  std::vector<std::string> groups;
  for (const auto& [name, group] : topic->groups) groups.push_back(name);
  return groups;
}

void EmbeddedQueue::ReloadPartition(TopicState* topic, int partition) {
  PartitionState& state = *topic->partitions[partition];
  uint64_t next = 0, start = 0;
  if (absl::Status read = ReadPartitionOffsets(messages_table_, state.key, &next, &start);
      read.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    state.next = next;
    state.start = start;
  } else {
    STRATA_LOG_WARN("queue: cannot re-read a partition after a failed publish", "partition",
                    state.key, "error", read.ToString());
  }
}

absl::StatusOr<std::vector<PublishResult>> EmbeddedQueue::Publish(
    std::string_view topic_name, std::span<const PublishMessage> messages) {
  return PublishImpl(topic_name, messages, nullptr);
}

absl::StatusOr<std::vector<PublishResult>> EmbeddedQueue::PublishThen(
    std::string_view topic_name, std::span<const PublishMessage> messages,
    const PartitionWrite& then) {
  if (then.table == nullptr) return absl::InvalidArgumentError("then: no table");
  return PublishImpl(topic_name, messages, &then);
}

absl::StatusOr<std::vector<PublishResult>> EmbeddedQueue::PublishImpl(
    std::string_view topic_name, std::span<const PublishMessage> messages,
    const PartitionWrite* then) {
  STRATA_RETURN_IF_ERROR(ValidateQueueName(topic_name, "topic"));
  if (messages.size() > kMaxPublishBatch) {
    return absl::InvalidArgumentError("messages: more than 10000 in one batch");
  }
  std::vector<PublishResult> results(messages.size());
  if (messages.empty()) {
    if (then != nullptr) STRATA_RETURN_IF_ERROR(then->table->Apply(then->partition, then->batch));
    return results;
  }
  TopicState* topic;
  {
    std::lock_guard<std::mutex> lock(mu_);
    STRATA_ASSIGN_OR_RETURN(topic, FindTopicLocked(topic_name));
  }
  const int partitions = topic->info.partitions;
  size_t empty_keys = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    const PublishMessage& m = messages[i];
    if (m.key.size() + m.value.size() > kMaxMessageBytes) {
      return absl::InvalidArgumentError("messages[" + std::to_string(i) +
                                        "]: key and value larger than 1000000 bytes");
    }
    if (m.partition == kAnyPartition) {
      if (m.key.empty()) {
        ++empty_keys;
      } else {
        results[i].partition = KeyPartition(m.key, partitions);
      }
    } else if (m.partition < 0 || m.partition >= partitions) {
      return BadPartition("partition", m.partition, partitions);
    } else {
      results[i].partition = m.partition;
    }
  }
  if (empty_keys > 0) {
    uint64_t next_rr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      next_rr = topic->round_robin;
      topic->round_robin += empty_keys;
    }
    for (size_t i = 0; i < messages.size(); ++i) {
      if (messages[i].partition == kAnyPartition && messages[i].key.empty()) {
        results[i].partition = static_cast<int>(next_rr++ % partitions);
      }
    }
  }
  // Messages by partition, in batch order; partitions locked in ascending order (no deadlock
  // between concurrent multi-partition batches).
  std::map<int, std::vector<size_t>> by_partition;
  for (size_t i = 0; i < messages.size(); ++i) by_partition[results[i].partition].push_back(i);
  std::vector<std::unique_lock<std::mutex>> append_locks;
  for (const auto& [p, indices] : by_partition) {
    append_locks.emplace_back(topic->partitions[p]->append_mu);
  }
  std::vector<PartitionWrite> writes;
  std::vector<uint64_t> new_next;
  const Millis now = clock_->NowMillis();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [p, indices] : by_partition) {
      const PartitionState& state = *topic->partitions[p];
      writes.push_back(PartitionWrite{messages_table_, state.key, WriteBatch()});
      uint64_t offset = state.next;
      for (size_t i : indices) {
        writes.back().batch.Put(OffsetKey(offset),
                                EncodeMessage(now, messages[i].key, messages[i].value));
        results[i].offset = offset++;
      }
      new_next.push_back(offset);
    }
  }
  // The messages first, then the caller's write, which is applied only if they are.
  if (then != nullptr) writes.push_back(*then);
  absl::Status written = then != nullptr ? rows_->WriteInOrder(writes) : rows_->Write(writes);
  if (!written.ok()) {
    // Some partitions' batches may have been applied: resynchronise memory with the store.
    for (const auto& [p, indices] : by_partition) ReloadPartition(topic, p);
    return written;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t k = 0;
    for (const auto& [p, indices] : by_partition) topic->partitions[p]->next = new_next[k++];
  }
  published_.notify_all();
  topic->published->Inc(messages.size());
  return results;
}

absl::StatusOr<EmbeddedQueue::GroupState*> EmbeddedQueue::EnsureGroup(std::string_view group,
                                                                      TopicState* topic) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = topic->groups.find(group);
    if (it != topic->groups.end()) return it->second.get();
  }
  // Counters first: the metrics registry is never called with mu_ held (its gauge callback
  // takes mu_).
  auto state = std::make_unique<GroupState>();
  state->parts.resize(topic->info.partitions);
  const std::string labels = GroupLabels(topic->info.name, group);
  state->delivered =
      metrics_->GetCounter("strata_queue_delivered_total", "Messages delivered by Poll", labels);
  state->committed = metrics_->GetCounter("strata_queue_committed_total",
                                          "Messages newly covered by commits", labels);
  state->redelivered = metrics_->GetCounter("strata_queue_redelivered_total",
                                            "Messages handed out again after a rewind", labels);
  std::lock_guard<std::mutex> commit_lock(commit_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = topic->groups.find(group);
    if (it != topic->groups.end()) return it->second.get();
  }
  WriteBatch batch;
  for (int p = 0; p < topic->info.partitions; ++p) {
    batch.Put(GroupKey(group, p), EncodeCommitted(0));
  }
  STRATA_RETURN_IF_ERROR(offsets_table_->Apply(topic->info.name, batch));
  const Millis now = clock_->NowMillis();
  for (GroupState::Part& part : state->parts) part.progress_at = now;
  std::lock_guard<std::mutex> lock(mu_);
  GroupState* raw = state.get();
  topic->groups.emplace(std::string(group), std::move(state));
  return raw;
}

absl::StatusOr<std::vector<Message>> EmbeddedQueue::Read(std::string_view topic_name,
                                                         int partition, uint64_t offset,
                                                         int max_messages) {
  if (max_messages < 1 || max_messages > kMaxPollMessages) {
    return absl::InvalidArgumentError("max_messages: must be 1.." +
                                      std::to_string(kMaxPollMessages));
  }
  TopicState* topic;
  uint64_t begin = 0;
  uint64_t end = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    STRATA_ASSIGN_OR_RETURN(topic, FindTopicLocked(topic_name));
    if (partition < 0 || partition >= topic->info.partitions) {
      return BadPartition("partition", partition, topic->info.partitions);
    }
    const PartitionState& state = *topic->partitions[partition];
    begin = std::max(offset, state.start);
    end = state.next;
  }
  std::vector<Message> out;
  if (begin >= end) return out;
  end = std::min<uint64_t>(end, begin + static_cast<uint64_t>(max_messages));
  ScanOptions options;
  options.start = OffsetKey(begin);
  options.end = OffsetKey(end);
  options.limit = std::min<uint64_t>(kMaxPageRows, end - begin);
  const std::string key = PartitionKey(topic_name, partition);
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(ScanPage page, messages_table_->Scan(key, options));
    for (Row& row : page.rows) {
      std::string_view k(row.clustering);
      Message message;
      // Trimming may race with this read: a missing prefix is fine, corrupt rows are not.
      if (!coding::GetFixed64BE(&k, &message.offset) || !DecodeMessage(row.value, &message)) {
        return absl::DataLossError("queue: partition " + key + " has a corrupt message");
      }
      message.partition = partition;
      out.push_back(std::move(message));
    }
    if (page.next_cursor.empty()) break;
    options.cursor = std::move(page.next_cursor);
  }
  return out;
}

absl::StatusOr<std::vector<Message>> EmbeddedQueue::Poll(const PollRequest& request) {
  STRATA_RETURN_IF_ERROR(ValidatePollRequest(request));
  TopicState* topic;
  {
    std::lock_guard<std::mutex> lock(mu_);
    STRATA_ASSIGN_OR_RETURN(topic, FindTopicLocked(request.topic));
  }
  const int partitions = topic->info.partitions;
  std::vector<int> wanted = request.partitions;
  if (wanted.empty()) {
    for (int p = 0; p < partitions; ++p) wanted.push_back(p);
  }
  std::set<int> seen;
  for (int p : wanted) {
    if (p < 0 || p >= partitions) return BadPartition("partitions", p, partitions);
    if (!seen.insert(p).second) {
      return absl::InvalidArgumentError("partitions: " + std::to_string(p) + " is repeated");
    }
  }
  STRATA_ASSIGN_OR_RETURN(GroupState * group, EnsureGroup(request.group, topic));

  struct Claim {
    int partition;
    uint64_t begin;
    uint64_t end;
  };
  std::vector<Claim> claims;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(request.wait_ms);
  {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      const Millis now = clock_->NowMillis();
      uint64_t remaining = static_cast<uint64_t>(request.max_messages);
      const size_t first = topic->poll_rotation++ % wanted.size();
      for (size_t k = 0; k < wanted.size() && remaining > 0; ++k) {
        const int p = wanted[(first + k) % wanted.size()];
        const PartitionState& state = *topic->partitions[p];
        GroupState::Part& part = group->parts[p];
        if (options_.redelivery_timeout_ms > 0 && part.position > part.committed &&
            now - part.progress_at >= options_.redelivery_timeout_ms) {
          group->redelivered->Inc(part.position - std::max(part.committed, state.start));
          part.position = part.committed;
        }
        const uint64_t begin = std::max(part.position, state.start);
        if (begin >= state.next) continue;
        const uint64_t end = std::min(state.next, begin + remaining);
        claims.push_back(Claim{p, begin, end});
        remaining -= end - begin;
        part.position = end;
        part.progress_at = now;
      }
      if (!claims.empty() || std::chrono::steady_clock::now() >= deadline) break;
      published_.wait_until(lock, deadline);
    }
  }

  std::vector<Message> out;
  absl::Status read = absl::OkStatus();
  for (const Claim& claim : claims) {
    const PartitionState& state = *topic->partitions[claim.partition];
    ScanOptions options;
    options.start = OffsetKey(claim.begin);
    options.end = OffsetKey(claim.end);
    options.limit = std::min<uint64_t>(kMaxPageRows, claim.end - claim.begin);
    uint64_t expected = claim.begin;
    while (read.ok()) {
      absl::StatusOr<ScanPage> page = messages_table_->Scan(state.key, options);
      if (!page.ok()) {
        read = page.status();
        break;
      }
      for (Row& row : page->rows) {
        std::string_view key(row.clustering);
        uint64_t offset = 0;
        Message message;
        if (!coding::GetFixed64BE(&key, &offset) || offset != expected ||
            !DecodeMessage(row.value, &message)) {
          read = absl::DataLossError("queue: partition " + state.key + " lacks offset " +
                                     std::to_string(expected) + " or it is corrupt");
          break;
        }
        message.partition = claim.partition;
        message.offset = offset;
        out.push_back(std::move(message));
        ++expected;
      }
      if (page->next_cursor.empty()) break;
      options.cursor = std::move(page->next_cursor);
    }
    if (read.ok() && expected != claim.end) {
      read = absl::DataLossError("queue: partition " + state.key + " lacks offset " +
                                 std::to_string(expected));
    }
    if (!read.ok()) break;
  }
  if (!read.ok()) {
    // Hand the claimed ranges out again on the next Poll.
    std::lock_guard<std::mutex> lock(mu_);
    for (const Claim& claim : claims) {
      GroupState::Part& part = group->parts[claim.partition];
      part.position = std::max(part.committed, std::min(part.position, claim.begin));
    }
    return read;
  }
  group->delivered->Inc(out.size());
  return out;
}

absl::Status EmbeddedQueue::Commit(std::string_view group_name, std::string_view topic_name,
                                   int partition, uint64_t offset) {
  STRATA_RETURN_IF_ERROR(ValidateQueueName(group_name, "group"));
  STRATA_RETURN_IF_ERROR(ValidateQueueName(topic_name, "topic"));
  TopicState* topic;
  {
    std::lock_guard<std::mutex> lock(mu_);
    STRATA_ASSIGN_OR_RETURN(topic, FindTopicLocked(topic_name));
  }
  if (partition < 0 || partition >= topic->info.partitions) {
    return BadPartition("partition", partition, topic->info.partitions);
  }
  STRATA_ASSIGN_OR_RETURN(GroupState * group, EnsureGroup(group_name, topic));
  std::lock_guard<std::mutex> commit_lock(commit_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t end = topic->partitions[partition]->next;
    if (offset > end) {
      return absl::InvalidArgumentError("offset: " + std::to_string(offset) +
                                        " is beyond the end of the partition (" +
                                        std::to_string(end) + ")");
    }
    if (offset <= group->parts[partition].committed) return absl::OkStatus();
  }
  STRATA_RETURN_IF_ERROR(
      offsets_table_->Put(topic_name, GroupKey(group_name, partition), EncodeCommitted(offset)));
  std::lock_guard<std::mutex> lock(mu_);
  GroupState::Part& part = group->parts[partition];
  group->committed->Inc(offset - part.committed);
  part.committed = offset;
  part.position = std::max(part.position, offset);
  part.progress_at = clock_->NowMillis();
  return absl::OkStatus();
}

absl::Status EmbeddedQueue::Rewind(std::string_view group_name, std::string_view topic_name) {
  STRATA_RETURN_IF_ERROR(ValidateQueueName(group_name, "group"));
  STRATA_RETURN_IF_ERROR(ValidateQueueName(topic_name, "topic"));
  {
    std::lock_guard<std::mutex> lock(mu_);
    STRATA_ASSIGN_OR_RETURN(TopicState * topic, FindTopicLocked(topic_name));
    auto it = topic->groups.find(group_name);
    if (it == topic->groups.end()) return absl::OkStatus();  // nothing delivered yet
    GroupState& group = *it->second;
    for (size_t p = 0; p < group.parts.size(); ++p) {
      GroupState::Part& part = group.parts[p];
      const uint64_t from = std::max(part.committed, topic->partitions[p]->start);
      if (part.position > from) group.redelivered->Inc(part.position - from);
      part.position = part.committed;
    }
  }
  published_.notify_all();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PartitionLag>> EmbeddedQueue::Lag(std::string_view group_name,
                                                             std::string_view topic_name) {
  STRATA_RETURN_IF_ERROR(ValidateQueueName(group_name, "group"));
  STRATA_RETURN_IF_ERROR(ValidateQueueName(topic_name, "topic"));
  std::lock_guard<std::mutex> lock(mu_);
  STRATA_ASSIGN_OR_RETURN(TopicState * topic, FindTopicLocked(topic_name));
  auto it = topic->groups.find(group_name);
  const GroupState* group = it == topic->groups.end() ? nullptr : it->second.get();
  std::vector<PartitionLag> lags;
  for (int p = 0; p < topic->info.partitions; ++p) {
    const PartitionState& state = *topic->partitions[p];
    PartitionLag lag;
    lag.partition = p;
    lag.committed = group != nullptr ? group->parts[p].committed : 0;
    lag.start_offset = state.start;
    lag.end_offset = state.next;
    lag.backlog = state.next - std::min(state.next, std::max(lag.committed, state.start));
    lags.push_back(lag);
  }
  return lags;
}

absl::StatusOr<uint64_t> EmbeddedQueue::EnforceRetention() {
  std::vector<TopicState*> topics;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, topic] : topics_) topics.push_back(topic.get());
  }
  uint64_t trimmed = 0;
  for (TopicState* topic : topics) {
    for (int p = 0; p < topic->info.partitions; ++p) {
      STRATA_ASSIGN_OR_RETURN(uint64_t n, TrimPartition(topic, p));
      trimmed += n;
    }
  }
  return trimmed;
}

absl::StatusOr<uint64_t> EmbeddedQueue::TrimPartition(TopicState* topic, int partition) {
  PartitionState& state = *topic->partitions[partition];
  uint64_t start, bound;
  Millis retention_ms;
  {
    std::lock_guard<std::mutex> lock(mu_);
    start = state.start;
    bound = state.next;
    for (const auto& [name, group] : topic->groups) {
      bound = std::min(bound, group->parts[partition].committed);
    }
    retention_ms = topic->info.retention_ms;
  }
  if (bound <= start) return 0;
  // Rows below `bound` are immutable, so the age cut-off is found without locks.
  uint64_t trim_to = bound;
  if (retention_ms > 0) {
    const Millis cutoff = clock_->NowMillis() - retention_ms;
    ScanOptions options;
    options.start = OffsetKey(start);
    options.end = OffsetKey(bound);
    bool found = false;
    while (!found) {
      STRATA_ASSIGN_OR_RETURN(ScanPage page, messages_table_->Scan(state.key, options));
      for (const Row& row : page.rows) {
        std::string_view key(row.clustering);
        uint64_t offset = 0;
        Message message;
        if (!coding::GetFixed64BE(&key, &offset) || !DecodeMessage(row.value, &message)) {
          return absl::DataLossError("queue: corrupt message row in " + state.key);
        }
        if (message.publish_time > cutoff) {
          trim_to = offset;
          found = true;
          break;
        }
      }
      if (page.next_cursor.empty()) break;
      options.cursor = std::move(page.next_cursor);
    }
  }
  std::lock_guard<std::mutex> append_lock(state.append_mu);
  uint64_t next;
  {
    // Decide and publish the new start in one critical section with the claims of Poll:
    // a group that appeared since the scan (committed 0) lowers the bound again, and no Poll
    // can claim below the new start from here on, so no claimed row is ever trimmed.
    std::lock_guard<std::mutex> lock(mu_);
    start = state.start;  // another EnforceRetention may have trimmed meanwhile
    next = state.next;
    for (const auto& [name, group] : topic->groups) {
      trim_to = std::min(trim_to, group->parts[partition].committed);
    }
    if (trim_to <= start) return 0;
    state.start = trim_to;
  }
  WriteBatch batch;
  batch.DeleteRange(OffsetKey(start), OffsetKey(trim_to));
  batch.Put(std::string(kMetaKey), EncodeMeta(next, trim_to));
  if (absl::Status written = messages_table_->Apply(state.key, batch); !written.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    state.start = start;  // nothing was trimmed; the rows are still there
    return written;
  }
  topic->trimmed->Inc(trim_to - start);
  return trim_to - start;
}

std::vector<std::pair<std::string, double>> EmbeddedQueue::BacklogGauge() {
  std::vector<std::pair<std::string, double>> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [topic_name, topic] : topics_) {
    for (const auto& [group_name, group] : topic->groups) {
      uint64_t backlog = 0;
      for (size_t p = 0; p < group->parts.size(); ++p) {
        const PartitionState& state = *topic->partitions[p];
        backlog +=
            state.next - std::min(state.next, std::max(group->parts[p].committed, state.start));
      }
      out.emplace_back(GroupLabels(topic_name, group_name), static_cast<double>(backlog));
    }
  }
  return out;
}

}  // namespace strata::store
