#include "strata/store/kafka/kafka_queue.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "strata/base/log.h"
#include "strata/base/status.h"

namespace strata::store {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

using TopicMap = std::map<std::string, int>;

constexpr std::string_view kRegistryTopic = "__strata_queue_groups";

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using RdKafka = std::unique_ptr<rd_kafka_t, RdKafkaDeleter>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

absl::Status Unavailable(std::string_view what, rd_kafka_resp_err_t err) {
  return absl::UnavailableError("kafka: " + std::string(what) + ": " + rd_kafka_err2str(err));
}

std::string TopicLabels(std::string_view topic) { return "topic=\"" + std::string(topic) + "\""; }
std::string GroupLabels(std::string_view topic, std::string_view group) {
  return TopicLabels(topic) + ",group=\"" + std::string(group) + "\"";
}

absl::Status BadPartition(std::string_view field, int partition, int partitions) {
  return absl::InvalidArgumentError(std::string(field) + ": " + std::to_string(partition) +
                                    " is not in 0.." + std::to_string(partitions - 1));
}

absl::Status LostAssignment(const PollRequest& request) {
  return absl::UnavailableError("kafka: group " + request.group + " lost its partitions of " +
                                request.topic +
                                " (no group coordinator answered within the session timeout); "
                                "polling again rejoins once the brokers are back");
}

// A librdkafka configuration; Set() failures are programming errors reported at Build().
class Config {
 public:
  Config() : conf_(rd_kafka_conf_new()) {}
  ~Config() {
    if (conf_ != nullptr) rd_kafka_conf_destroy(conf_);
  }
  Config& Set(const std::string& key, const std::string& value) {
    char err[256];
    if (rd_kafka_conf_set(conf_, key.c_str(), value.c_str(), err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
      error_ += key + ": " + err + "; ";
    }
    return *this;
  }
  rd_kafka_conf_t* get() { return conf_; }
  absl::StatusOr<RdKafka> Build(rd_kafka_type_t type) {
    if (!error_.empty()) return absl::InternalError("kafka: configuration: " + error_);
    char err[512];
    rd_kafka_t* rk = rd_kafka_new(type, conf_, err, sizeof(err));
    if (rk == nullptr) return absl::InvalidArgumentError(std::string("kafka: ") + err);
    conf_ = nullptr;  // owned by rk now
    return RdKafka(rk);
  }

 private:
  rd_kafka_conf_t* conf_;
  std::string error_;
};

Message ToMessage(const rd_kafka_message_t* m) {
  Message out;
  out.partition = m->partition;
  out.offset = static_cast<uint64_t>(m->offset);
  if (m->key != nullptr) out.key.assign(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) out.value.assign(static_cast<const char*>(m->payload), m->len);
  rd_kafka_timestamp_type_t type;
  const int64_t ts = rd_kafka_message_timestamp(m, &type);
  out.publish_time = ts >= 0 ? ts : 0;
  return out;
}

// ---------------------------------------------------------------------------------------
// The broker's admin API.

class BrokerTopicAdmin final : public KafkaTopicAdmin {
 public:
  BrokerTopicAdmin(rd_kafka_t* rk, Millis timeout_ms) : rk_(rk), timeout_ms_(timeout_ms) {}

  absl::Status CreateTopic(std::string_view name, int partitions, Millis retention_ms) override {
    char err[256];
    rd_kafka_NewTopic_t* topic =
        rd_kafka_NewTopic_new(std::string(name).c_str(), partitions, -1, err, sizeof(err));
    if (topic == nullptr) return absl::InvalidArgumentError(std::string("kafka: ") + err);
    rd_kafka_NewTopic_set_config(topic, "retention.ms", std::to_string(retention_ms).c_str());
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk_);
    rd_kafka_AdminOptions_t* opts = Options(RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(rk_, &topic, 1, opts, q);
    absl::Status status = absl::OkStatus();
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, static_cast<int>(timeout_ms_ + 1000));
    if (ev == nullptr) {
      status = absl::UnavailableError("kafka: CreateTopics: no answer in time");
    } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status = Unavailable("CreateTopics", rd_kafka_event_error(ev));
    } else {
      size_t n = 0;
      const rd_kafka_topic_result_t** results =
          rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
      for (size_t i = 0; i < n; ++i) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
        if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
          status = absl::AlreadyExistsError("kafka: topic exists");
        } else if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
          status = Unavailable("CreateTopics", e);
        }
      }
    }
    if (ev != nullptr) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(topic);
    return status;
  }

  absl::StatusOr<Millis> Retention(std::string_view name) override {
    rd_kafka_ConfigResource_t* res =
        rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, std::string(name).c_str());
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk_);
    rd_kafka_AdminOptions_t* opts = Options(RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_DescribeConfigs(rk_, &res, 1, opts, q);
    absl::StatusOr<Millis> out = absl::NotFoundError("kafka: no retention.ms");
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, static_cast<int>(timeout_ms_ + 1000));
    if (ev == nullptr) {
      out = absl::UnavailableError("kafka: DescribeConfigs: no answer in time");
    } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      out = Unavailable("DescribeConfigs", rd_kafka_event_error(ev));
    } else {
      size_t n = 0;
      const rd_kafka_ConfigResource_t** rs =
          rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
      for (size_t i = 0; i < n; ++i) {
        if (rd_kafka_ConfigResource_error(rs[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
          out = absl::NotFoundError("kafka: " +
                                    std::string(rd_kafka_err2str(rd_kafka_ConfigResource_error(rs[i]))));
          continue;
        }
        size_t c = 0;
        const rd_kafka_ConfigEntry_t** entries = rd_kafka_ConfigResource_configs(rs[i], &c);
        for (size_t k = 0; k < c; ++k) {
          if (std::string_view(rd_kafka_ConfigEntry_name(entries[k])) == "retention.ms" &&
              rd_kafka_ConfigEntry_value(entries[k]) != nullptr) {
            out = std::stoll(rd_kafka_ConfigEntry_value(entries[k]));
          }
        }
      }
    }
    if (ev != nullptr) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    return out;
  }

  // AlterConfigs (not incremental in librdkafka 2.0) replaces the topic's whole dynamic
  // configuration: Strata sets only retention.ms on its topics, so that is all there is.
  absl::Status SetRetention(std::string_view name, Millis retention_ms) override {
    rd_kafka_ConfigResource_t* res =
        rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, std::string(name).c_str());
    rd_kafka_ConfigResource_set_config(res, "retention.ms", std::to_string(retention_ms).c_str());
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk_);
    rd_kafka_AdminOptions_t* opts = Options(RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
    rd_kafka_AlterConfigs(rk_, &res, 1, opts, q);
    absl::Status status = absl::OkStatus();
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, static_cast<int>(timeout_ms_ + 1000));
    if (ev == nullptr) {
      status = absl::UnavailableError("kafka: AlterConfigs: no answer in time");
    } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status = Unavailable("AlterConfigs", rd_kafka_event_error(ev));
    }
    if (ev != nullptr) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    return status;
  }

 private:
  rd_kafka_AdminOptions_t* Options(rd_kafka_admin_op_t op) {
    rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk_, op);
    char err[256];
    (void)rd_kafka_AdminOptions_set_request_timeout(opts, static_cast<int>(timeout_ms_), err,
                                                    sizeof(err));
    return opts;
  }

  rd_kafka_t* rk_;
  const Millis timeout_ms_;
};

// ---------------------------------------------------------------------------------------

class KafkaQueue;

// One publish call: its messages' delivery reports land here.
struct Delivery {
  std::mutex mu;
  std::condition_variable done;
  size_t pending = 0;
  std::vector<PublishResult> results;
  absl::Status error;
};

struct DeliverySlot {
  std::shared_ptr<Delivery> delivery;
  size_t index;
};

// The member of one (group, topic) in this process.
struct GroupConsumer {
  struct Part {
    bool assigned = false;
    bool paused = false;
    std::deque<Message> buffer;  // fetched, not yet handed out
    int64_t fetched = -1;        // offset after the last fetched message (-1: not yet known)
    int64_t delivered = -1;      // offset after the last message handed out (-1: none yet)
    int64_t committed = -1;      // the group's committed offset (-1: none or unknown)
    bool committed_known = false;  // `committed` was read from the broker or set by Commit
    Millis last_progress = 0;    // by the injected clock: delivery or commit
  };

  KafkaQueue* queue = nullptr;
  std::string group, topic;            // as the caller names them
  std::string kafka_group, kafka_topic;  // on the cluster
  RdKafka rk;
  Counter* delivered_total = nullptr;
  Counter* committed_total = nullptr;
  Counter* redelivered_total = nullptr;

  std::mutex mu;
  std::condition_variable changed;
  bool polling = false;  // a thread is inside rd_kafka_consumer_poll, a seek or pause
  bool joined = false;   // the first rebalance callback ran
  // The member's session timed out without the coordinator (librdkafka revoked the
  // partitions as lost); it rejoins by itself once the brokers answer again.
  bool assignment_lost = false;
  std::vector<Part> parts;
  size_t next_start = 0;  // rotates which partition a Poll serves first
};

class KafkaQueue final : public Queue {
 public:
  explicit KafkaQueue(KafkaQueueOptions options)
      : options_(std::move(options)),
        clock_(options_.clock != nullptr ? options_.clock : SystemClock::Default()),
        metrics_(options_.metrics != nullptr ? options_.metrics : MetricsRegistry::Default()) {}

  ~KafkaQueue() override {
    std::map<std::string, std::unique_ptr<GroupConsumer>, std::less<>> consumers;
    {
      std::lock_guard<std::mutex> lock(mu_);
      consumers.swap(consumers_);
    }
    // Leave the groups at once (their partitions move to the other members now, not after
    // the session timeout). Close serves the revoke callback, which takes c->mu.
    for (auto& [name, c] : consumers) rd_kafka_consumer_close(c->rk.get());
    consumers.clear();
    committers_.clear();
    if (reader_ != nullptr) rd_kafka_consumer_close(reader_.get());
    reader_.reset();
    stopping_ = true;
    if (poll_thread_.joinable()) poll_thread_.join();
    if (producer_ != nullptr) rd_kafka_flush(producer_.get(), static_cast<int>(options_.request_timeout_ms));
    owned_admin_.reset();
    producer_.reset();
  }

  absl::Status Init();

  absl::Status CreateTopic(const TopicOptions& options) override;
  absl::StatusOr<TopicInfo> DescribeTopic(std::string_view topic) override;
  absl::StatusOr<std::vector<TopicInfo>> ListTopics() override;
  absl::StatusOr<std::vector<std::string>> ListGroups(std::string_view topic) override;
  absl::StatusOr<std::vector<PublishResult>> Publish(
      std::string_view topic, std::span<const PublishMessage> messages) override;
  absl::StatusOr<std::vector<Message>> Poll(const PollRequest& request) override;
  absl::StatusOr<std::vector<Message>> Read(std::string_view topic, int partition,
                                            uint64_t offset, int max_messages) override;
  absl::Status Commit(std::string_view group, std::string_view topic, int partition,
                      uint64_t offset) override;
  absl::Status Rewind(std::string_view group, std::string_view topic) override;
  absl::StatusOr<std::vector<PartitionLag>> Lag(std::string_view group,
                                                std::string_view topic) override;
  absl::StatusOr<uint64_t> EnforceRetention() override { return 0; }

  // Called by librdkafka on the thread inside rd_kafka_consumer_poll.
  void OnRebalance(GroupConsumer* c, rd_kafka_resp_err_t err,
                   rd_kafka_topic_partition_list_t* partitions);

 private:
  std::string Full(std::string_view name) const { return options_.topic_prefix + std::string(name); }
  int Timeout() const { return static_cast<int>(options_.request_timeout_ms); }

  // name -> partition count from the cluster's metadata (all topics under the prefix).
  absl::StatusOr<TopicMap> FetchTopics();
  // The partition count, or InvalidArgument "topic: unknown topic".
  absl::StatusOr<int> Partitions(std::string_view topic);
  absl::Status Watermarks(const std::string& kafka_topic, int partition, int64_t* low,
                          int64_t* high);
  absl::StatusOr<GroupConsumer*> Consumer(std::string_view group, std::string_view topic,
                                          int partitions);
  absl::StatusOr<rd_kafka_t*> Committer(std::string_view group);
  // Committed offsets of every partition (-1 = none) through `rk` (its group.id).
  absl::StatusOr<std::vector<int64_t>> Committed(rd_kafka_t* rk, const std::string& kafka_topic,
                                                 int partitions);
  absl::Status Register(std::string_view group, std::string_view topic);
  // Produces `messages` to the partitions `chosen` and waits for every delivery report.
  absl::StatusOr<std::vector<PublishResult>> Produce(const std::string& kafka_topic,
                                                     std::span<const PublishMessage> messages,
                                                     const std::vector<int>& chosen);
  absl::StatusOr<std::vector<Message>> ReadRange(const std::string& kafka_topic, int partition,
                                                 int64_t start, int64_t count);
  // Becomes the poller of `c` (waits until no other thread is); call with c->mu held.
  void AcquirePoller(GroupConsumer* c, std::unique_lock<std::mutex>& lock);
  void ReleasePoller(GroupConsumer* c);
  // Whether the last fetch saw messages beyond the buffer of an assigned partition among
  // `wanted` (librdkafka's cached high watermark; no round trip). Call with c->mu held.
  bool MoreOnBroker(GroupConsumer* c, const std::vector<int>& wanted);
  // One round of rd_kafka_consumer_poll into the buffers; call as the poller, without c->mu.
  void FetchInto(GroupConsumer* c, int timeout_ms);
  // Seeks the partitions back to their committed offsets; call as the poller, with c->mu.
  absl::Status SeekToCommitted(GroupConsumer* c, const std::vector<int>& partitions,
                               std::unique_lock<std::mutex>& lock);

  const KafkaQueueOptions options_;
  Clock* const clock_;
  MetricsRegistry* const metrics_;
  RdKafka producer_;
  std::unique_ptr<KafkaTopicAdmin> owned_admin_;
  KafkaTopicAdmin* admin_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::thread poll_thread_;  // serves the producer's delivery reports
  std::atomic<uint64_t> round_robin_{0};

  std::mutex mu_;  // guards the maps below
  std::map<std::string, int, std::less<>> partitions_;
  std::map<std::string, Counter*, std::less<>> published_total_;
  std::map<std::string, std::unique_ptr<GroupConsumer>, std::less<>> consumers_;
  std::map<std::string, RdKafka, std::less<>> committers_;
  std::set<std::string, std::less<>> registered_;

  std::mutex reader_mu_;  // one Read at a time on reader_
  RdKafka reader_;
};

void DeliveryReport(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  auto* slot = static_cast<DeliverySlot*>(m->_private);
  if (slot == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(slot->delivery->mu);
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (slot->delivery->error.ok()) slot->delivery->error = Unavailable("publish", m->err);
    } else {
      slot->delivery->results[slot->index] =
          PublishResult{m->partition, static_cast<uint64_t>(m->offset)};
    }
    if (--slot->delivery->pending == 0) slot->delivery->done.notify_all();
  }
  delete slot;
}

void RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                       rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* c = static_cast<GroupConsumer*>(opaque);
  c->queue->OnRebalance(c, err, partitions);
}

void LogCallback(const rd_kafka_t*, int level, const char* fac, const char* buf) {
  if (level <= 2) {
    STRATA_LOG_WARN("kafka", "facility", fac, "message", buf);
  } else if (level == 3) {
    STRATA_LOG_DEBUG("kafka", "facility", fac, "message", buf);
  }
}

absl::Status KafkaQueue::Init() {
  if (options_.brokers.empty()) return absl::InvalidArgumentError("brokers: must not be empty");
  Config conf;
  conf.Set("bootstrap.servers", options_.brokers)
      .Set("enable.idempotence", "true")
      .Set("acks", "all")
      .Set("linger.ms", std::to_string(options_.linger_ms))
      .Set("message.timeout.ms", std::to_string(options_.publish_timeout_ms))
      .Set("socket.timeout.ms", std::to_string(options_.request_timeout_ms))
      .Set("allow.auto.create.topics", "false")
      .Set("partitioner", "consistent_random");
  rd_kafka_conf_set_dr_msg_cb(conf.get(), DeliveryReport);
  rd_kafka_conf_set_log_cb(conf.get(), LogCallback);
  STRATA_ASSIGN_OR_RETURN(producer_, conf.Build(RD_KAFKA_PRODUCER));
  poll_thread_ = std::thread([this] {
    while (!stopping_.load()) rd_kafka_poll(producer_.get(), 100);
  });
  if (options_.topic_admin != nullptr) {
    admin_ = options_.topic_admin;
  } else {
    owned_admin_ = std::make_unique<BrokerTopicAdmin>(producer_.get(), options_.request_timeout_ms);
    admin_ = owned_admin_.get();
  }
  // Reaching the brokers at all is the start-up check.
  absl::StatusOr<TopicMap> topics = FetchTopics();
  if (!topics.ok()) {
    return absl::UnavailableError("kafka: brokers " + options_.brokers +
                                  " unreachable: " + std::string(topics.status().message()));
  }
  if (!topics->contains(std::string(kRegistryTopic))) {
    absl::Status s = admin_->CreateTopic(Full(kRegistryTopic), 1, -1);
    if (!s.ok() && !absl::IsAlreadyExists(s)) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<TopicMap> KafkaQueue::FetchTopics() {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(producer_.get(), 1, nullptr, &md, Timeout());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return Unavailable("metadata", err);
  TopicMap out;
  for (int i = 0; i < md->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& t = md->topics[i];
    std::string_view name(t.topic);
    if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR || !name.starts_with(options_.topic_prefix)) continue;
    out.emplace(name.substr(options_.topic_prefix.size()), t.partition_cnt);
  }
  rd_kafka_metadata_destroy(md);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, n] : out) partitions_[name] = n;
  }
  return out;
}

absl::StatusOr<int> KafkaQueue::Partitions(std::string_view topic) {
  STRATA_RETURN_IF_ERROR(ValidateQueueName(topic, "topic"));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = partitions_.find(topic); it != partitions_.end()) return it->second;
  }
  STRATA_ASSIGN_OR_RETURN(TopicMap topics, FetchTopics());
  auto it = topics.find(std::string(topic));
  if (it == topics.end()) {
    return absl::InvalidArgumentError("topic: unknown topic " + std::string(topic));
  }
  return it->second;
}

absl::Status KafkaQueue::Watermarks(const std::string& kafka_topic, int partition, int64_t* low,
                                    int64_t* high) {
  // rd_kafka_query_watermark_offsets does not bound its wait when the partition's leader
  // went away after it was looked up (seen with librdkafka 2.0.2: it waits until the broker
  // is back). A metadata request for the topic first does honour the timeout, so a lost
  // cluster gives Unavailable here; the window between the two calls stays open.
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(producer_.get(), kafka_topic.c_str(), nullptr);
  if (rkt == nullptr) return absl::InternalError("kafka: topic handle for " + kafka_topic);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t meta = rd_kafka_metadata(producer_.get(), 0, rkt, &md, Timeout());
  bool leader_known = false;
  if (meta == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < md->topic_cnt; ++i) {
      for (int k = 0; k < md->topics[i].partition_cnt; ++k) {
        const rd_kafka_metadata_partition_t& mp = md->topics[i].partitions[k];
        if (mp.id == partition && mp.leader >= 0) leader_known = true;
      }
    }
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_topic_destroy(rkt);
  if (meta != RD_KAFKA_RESP_ERR_NO_ERROR) return Unavailable("metadata of " + kafka_topic, meta);
  if (!leader_known) {
    return absl::UnavailableError("kafka: no leader for " + kafka_topic + " partition " +
                                  std::to_string(partition));
  }
  rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
      producer_.get(), kafka_topic.c_str(), partition, low, high, Timeout());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return Unavailable("watermarks of " + kafka_topic, err);
  return absl::OkStatus();
}

absl::Status KafkaQueue::CreateTopic(const TopicOptions& options) {
  STRATA_RETURN_IF_ERROR(ValidateTopicOptions(options));
  const Millis retention = std::max(options.retention_ms, options_.min_retention_ms);
  absl::Status created = admin_->CreateTopic(Full(options.name), options.partitions, retention);
  if (!created.ok() && !absl::IsAlreadyExists(created)) return created;
  // The topic becomes visible in metadata shortly after CreateTopics answers.
  const auto deadline = SteadyClock::now() + milliseconds(options_.request_timeout_ms);
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(TopicMap topics, FetchTopics());
    if (auto it = topics.find(options.name); it != topics.end()) {
      if (it->second != options.partitions) {
        return absl::FailedPreconditionError("topic: " + options.name + " exists with " +
                                             std::to_string(it->second) + " partitions, not " +
                                             std::to_string(options.partitions));
      }
      break;
    }
    if (SteadyClock::now() >= deadline) {
      return absl::UnavailableError("kafka: topic " + options.name + " not in metadata in time");
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  if (absl::IsAlreadyExists(created)) {
    STRATA_RETURN_IF_ERROR(admin_->SetRetention(Full(options.name), retention));
  }
  return absl::OkStatus();
}

absl::StatusOr<TopicInfo> KafkaQueue::DescribeTopic(std::string_view topic) {
  STRATA_RETURN_IF_ERROR(ValidateQueueName(topic, "topic"));
  STRATA_ASSIGN_OR_RETURN(TopicMap topics, FetchTopics());
  auto it = topics.find(std::string(topic));
  if (it == topics.end() || topic.starts_with("__")) {
    return absl::NotFoundError("topic: unknown topic " + std::string(topic));
  }
  STRATA_ASSIGN_OR_RETURN(Millis retention, admin_->Retention(Full(topic)));
  return TopicInfo{std::string(topic), it->second, retention};
}

absl::StatusOr<std::vector<TopicInfo>> KafkaQueue::ListTopics() {
  STRATA_ASSIGN_OR_RETURN(TopicMap topics, FetchTopics());
  std::vector<TopicInfo> out;
  for (const auto& [name, partitions] : topics) {
    if (name.starts_with("__")) continue;  // Kafka's and this queue's internal topics
    STRATA_ASSIGN_OR_RETURN(Millis retention, admin_->Retention(Full(name)));
    out.push_back(TopicInfo{name, partitions, retention});
  }
  return out;
}

absl::Status KafkaQueue::Register(std::string_view group, std::string_view topic) {
  const std::string entry = std::string(topic) + "/" + std::string(group);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (registered_.contains(entry)) return absl::OkStatus();
  }
  PublishMessage m{std::string(topic), std::string(group), 0};
  STRATA_RETURN_IF_ERROR(
      Produce(Full(kRegistryTopic), std::span<const PublishMessage>(&m, 1), {0}).status());
  std::lock_guard<std::mutex> lock(mu_);
  registered_.insert(entry);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> KafkaQueue::ListGroups(std::string_view topic) {
  STRATA_RETURN_IF_ERROR(Partitions(topic).status());
  const std::string registry = Full(kRegistryTopic);
  int64_t low = 0, high = 0;
  STRATA_RETURN_IF_ERROR(Watermarks(registry, 0, &low, &high));
  std::set<std::string> groups;
  for (int64_t at = low; at < high;) {
    STRATA_ASSIGN_OR_RETURN(std::vector<Message> page,
                            ReadRange(registry, 0, at, std::min<int64_t>(high - at, 1000)));
    if (page.empty()) break;
    for (const Message& m : page) {
      if (m.key == topic) groups.insert(m.value);
    }
    at = static_cast<int64_t>(page.back().offset) + 1;
  }
  return std::vector<std::string>(groups.begin(), groups.end());
}

absl::StatusOr<std::vector<PublishResult>> KafkaQueue::Publish(
    std::string_view topic, std::span<const PublishMessage> messages) {
  STRATA_ASSIGN_OR_RETURN(const int partitions, Partitions(topic));
  if (messages.size() > kMaxPublishBatch) {
    return absl::InvalidArgumentError("messages: more than 10000 in one batch");
  }
  std::vector<int> chosen(messages.size());
  size_t unkeyed = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    const PublishMessage& m = messages[i];
    if (m.key.size() + m.value.size() > kMaxMessageBytes) {
      return absl::InvalidArgumentError("messages[" + std::to_string(i) +
                                        "]: key + value exceed 1000000 bytes");
    }
    if (m.partition != kAnyPartition && (m.partition < 0 || m.partition >= partitions)) {
      return BadPartition("partition", m.partition, partitions);
    }
    if (m.partition == kAnyPartition && m.key.empty()) ++unkeyed;
  }
  uint64_t next_round_robin = round_robin_.fetch_add(unkeyed);
  for (size_t i = 0; i < messages.size(); ++i) {
    const PublishMessage& m = messages[i];
    if (m.partition != kAnyPartition) {
      chosen[i] = m.partition;
    } else if (!m.key.empty()) {
      chosen[i] = KeyPartition(m.key, partitions);
    } else {
      chosen[i] = static_cast<int>(next_round_robin++ % static_cast<uint64_t>(partitions));
    }
  }
  if (messages.empty()) return std::vector<PublishResult>{};
  STRATA_ASSIGN_OR_RETURN(std::vector<PublishResult> results,
                          Produce(Full(topic), messages, chosen));
  Counter* published = nullptr;
  {
    std::lock_guard<std::mutex> guard(mu_);
    Counter*& c = published_total_[std::string(topic)];
    if (c == nullptr) {
      c = metrics_->GetCounter("strata_queue_published_total", "Messages published",
                               TopicLabels(topic));
    }
    published = c;
  }
  published->Inc(messages.size());
  return results;
}

absl::StatusOr<std::vector<PublishResult>> KafkaQueue::Produce(
    const std::string& kafka_topic, std::span<const PublishMessage> messages,
    const std::vector<int>& chosen) {
  auto delivery = std::make_shared<Delivery>();
  delivery->results.resize(messages.size());
  delivery->pending = messages.size();
  const Millis now = clock_->NowMillis();
  const auto deadline = SteadyClock::now() + milliseconds(options_.publish_timeout_ms +
                                                          options_.request_timeout_ms);
  for (size_t i = 0; i < messages.size(); ++i) {
    const PublishMessage& m = messages[i];
    auto* slot = new DeliverySlot{delivery, i};
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer_.get(), RD_KAFKA_V_TOPIC(kafka_topic.c_str()), RD_KAFKA_V_PARTITION(chosen[i]),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(m.key.empty() ? nullptr : m.key.data(), m.key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(m.value.data()), m.value.size()),
          RD_KAFKA_V_TIMESTAMP(now), RD_KAFKA_V_OPAQUE(slot), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && SteadyClock::now() < deadline) {
        std::this_thread::sleep_for(milliseconds(2));  // the poll thread drains reports
        continue;
      }
      delete slot;
      // The rest of the batch is not produced; wait for what was.
      std::unique_lock<std::mutex> lock(delivery->mu);
      delivery->pending -= messages.size() - i;
      if (delivery->error.ok()) delivery->error = Unavailable("publish to " + kafka_topic, err);
      i = messages.size();
      break;
    }
  }
  std::unique_lock<std::mutex> lock(delivery->mu);
  if (!delivery->done.wait_until(lock, deadline, [&] { return delivery->pending == 0; })) {
    return absl::UnavailableError("kafka: publish to " + kafka_topic +
                                  ": no delivery report in time");
  }
  if (!delivery->error.ok()) return delivery->error;
  return delivery->results;
}

absl::StatusOr<std::vector<int64_t>> KafkaQueue::Committed(rd_kafka_t* rk,
                                                           const std::string& kafka_topic,
                                                           int partitions) {
  PartitionList list(rd_kafka_topic_partition_list_new(partitions));
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), kafka_topic.c_str(), p);
  }
  rd_kafka_resp_err_t err = rd_kafka_committed(rk, list.get(), Timeout());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return Unavailable("committed offsets", err);
  std::vector<int64_t> out(partitions, -1);
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& e = list->elems[i];
    if (e.err != RD_KAFKA_RESP_ERR_NO_ERROR) return Unavailable("committed offset", e.err);
    if (e.offset >= 0 && e.partition < partitions) out[e.partition] = e.offset;
  }
  return out;
}

absl::StatusOr<rd_kafka_t*> KafkaQueue::Committer(std::string_view group) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = committers_.find(group); it != committers_.end()) return it->second.get();
  // A consumer with the group's id that never subscribes: it reads and commits offsets as
  // a "simple" committer without joining the group.
  Config conf;
  conf.Set("bootstrap.servers", options_.brokers)
      .Set("group.id", Full(group))
      .Set("enable.auto.commit", "false")
      .Set("enable.auto.offset.store", "false")
      .Set("socket.timeout.ms", std::to_string(options_.request_timeout_ms));
  rd_kafka_conf_set_log_cb(conf.get(), LogCallback);
  STRATA_ASSIGN_OR_RETURN(RdKafka rk, conf.Build(RD_KAFKA_CONSUMER));
  rd_kafka_t* raw = rk.get();
  committers_.emplace(std::string(group), std::move(rk));
  return raw;
}

absl::StatusOr<GroupConsumer*> KafkaQueue::Consumer(std::string_view group,
                                                    std::string_view topic, int partitions) {
  const std::string key = std::string(group) + "/" + std::string(topic);
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = consumers_.find(key); it != consumers_.end()) return it->second.get();
  auto c = std::make_unique<GroupConsumer>();
  c->queue = this;
  c->group = std::string(group);
  c->topic = std::string(topic);
  c->kafka_group = Full(group);
  c->kafka_topic = Full(topic);
  c->parts.resize(partitions);
  const std::string labels = GroupLabels(topic, group);
  c->delivered_total =
      metrics_->GetCounter("strata_queue_delivered_total", "Messages delivered by Poll", labels);
  c->committed_total = metrics_->GetCounter("strata_queue_committed_total",
                                            "Messages newly covered by commits", labels);
  c->redelivered_total = metrics_->GetCounter(
      "strata_queue_redelivered_total", "Messages handed out again after a rewind", labels);
  Config conf;
  conf.Set("bootstrap.servers", options_.brokers)
      .Set("group.id", c->kafka_group)
      .Set("enable.auto.commit", "false")
      .Set("enable.auto.offset.store", "false")
      .Set("auto.offset.reset", "earliest")
      .Set("allow.auto.create.topics", "false")
      .Set("enable.partition.eof", "false")
      .Set("partition.assignment.strategy", "range")
      .Set("session.timeout.ms", std::to_string(options_.session_timeout_ms))
      .Set("heartbeat.interval.ms", std::to_string(options_.heartbeat_interval_ms))
      .Set("max.poll.interval.ms", std::to_string(options_.max_poll_interval_ms))
      .Set("socket.timeout.ms", std::to_string(options_.request_timeout_ms))
      .Set("fetch.wait.max.ms", "100");
  rd_kafka_conf_set_rebalance_cb(conf.get(), RebalanceCallback);
  rd_kafka_conf_set_opaque(conf.get(), c.get());
  rd_kafka_conf_set_log_cb(conf.get(), LogCallback);
  STRATA_ASSIGN_OR_RETURN(c->rk, conf.Build(RD_KAFKA_CONSUMER));
  rd_kafka_poll_set_consumer(c->rk.get());
  PartitionList subscription(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(subscription.get(), c->kafka_topic.c_str(),
                                    RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk.get(), subscription.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return Unavailable("subscribe", err);
  GroupConsumer* raw = c.get();
  consumers_.emplace(key, std::move(c));
  return raw;
}

void KafkaQueue::OnRebalance(GroupConsumer* c, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t* partitions) {
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    // Start each partition at the committed offset (or the first retained message).
    std::vector<int64_t> committed(c->parts.size(), -1);
    bool known = false;
    absl::StatusOr<std::vector<int64_t>> fetched =
        Committed(c->rk.get(), c->kafka_topic, static_cast<int>(c->parts.size()));
    if (fetched.ok()) {
      committed = *fetched;
      known = true;
    }
    {
      std::lock_guard<std::mutex> lock(c->mu);
      for (int i = 0; i < partitions->cnt; ++i) {
        const int p = partitions->elems[i].partition;
        if (p < 0 || p >= static_cast<int>(c->parts.size())) continue;
        GroupConsumer::Part& part = c->parts[p];
        part = GroupConsumer::Part{};
        part.assigned = true;
        part.committed = committed[p];
        part.committed_known = known;
        part.fetched = part.delivered = committed[p];
        part.last_progress = clock_->NowMillis();
        if (known && committed[p] >= 0) partitions->elems[i].offset = committed[p];
      }
      c->assignment_lost = false;
    }
    rd_kafka_assign(c->rk.get(), partitions);
  } else {
    const bool lost = rd_kafka_assignment_lost(c->rk.get()) == 1;
    if (lost) {
      STRATA_LOG_WARN("kafka consumer lost its partitions (no group coordinator within the "
                      "session timeout)",
                      "group", c->group, "topic", c->topic);
    }
    std::lock_guard<std::mutex> lock(c->mu);
    c->assignment_lost = lost;
    for (int i = 0; i < partitions->cnt; ++i) {
      const int p = partitions->elems[i].partition;
      if (p >= 0 && p < static_cast<int>(c->parts.size())) c->parts[p] = GroupConsumer::Part{};
    }
    rd_kafka_assign(c->rk.get(), nullptr);
  }
  std::lock_guard<std::mutex> lock(c->mu);
  c->joined = true;
  c->changed.notify_all();
}

void KafkaQueue::AcquirePoller(GroupConsumer* c, std::unique_lock<std::mutex>& lock) {
  c->changed.wait(lock, [c] { return !c->polling; });
  c->polling = true;
}

void KafkaQueue::ReleasePoller(GroupConsumer* c) {
  c->polling = false;
  c->changed.notify_all();
}

bool KafkaQueue::MoreOnBroker(GroupConsumer* c, const std::vector<int>& wanted) {
  for (int p : wanted) {
    const GroupConsumer::Part& part = c->parts[p];
    if (!part.assigned || !part.buffer.empty() || part.paused || part.fetched < 0) continue;
    int64_t low = 0, high = 0;
    if (rd_kafka_get_watermark_offsets(c->rk.get(), c->kafka_topic.c_str(), p, &low, &high) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        high > part.fetched) {
      return true;
    }
  }
  return false;
}

void KafkaQueue::FetchInto(GroupConsumer* c, int timeout_ms) {
  std::vector<rd_kafka_message_t*> got;
  rd_kafka_message_t* m = rd_kafka_consumer_poll(c->rk.get(), timeout_ms);
  while (m != nullptr) {
    got.push_back(m);
    if (got.size() >= 500) break;
    m = rd_kafka_consumer_poll(c->rk.get(), 0);
  }
  std::vector<int> to_pause;
  {
    std::lock_guard<std::mutex> lock(c->mu);
    for (rd_kafka_message_t* msg : got) {
      if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        STRATA_LOG_DEBUG("kafka consumer", "group", c->group, "error",
                         rd_kafka_err2str(msg->err));
        continue;
      }
      const int p = msg->partition;
      if (p < 0 || p >= static_cast<int>(c->parts.size())) continue;
      GroupConsumer::Part& part = c->parts[p];
      if (!part.assigned || (part.fetched >= 0 && msg->offset < part.fetched)) continue;
      part.buffer.push_back(ToMessage(msg));
      part.fetched = msg->offset + 1;
      if (!part.paused &&
          part.buffer.size() >= static_cast<size_t>(options_.max_buffered_per_partition)) {
        part.paused = true;
        to_pause.push_back(p);
      }
    }
  }
  for (rd_kafka_message_t* msg : got) rd_kafka_message_destroy(msg);
  if (!to_pause.empty()) {
    PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(to_pause.size())));
    for (int p : to_pause) rd_kafka_topic_partition_list_add(list.get(), c->kafka_topic.c_str(), p);
    rd_kafka_pause_partitions(c->rk.get(), list.get());
  }
}

absl::Status KafkaQueue::SeekToCommitted(GroupConsumer* c, const std::vector<int>& partitions,
                                         std::unique_lock<std::mutex>& lock) {
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (int p : partitions) {
    GroupConsumer::Part& part = c->parts[p];
    rd_kafka_topic_partition_t* e =
        rd_kafka_topic_partition_list_add(list.get(), c->kafka_topic.c_str(), p);
    e->offset = part.committed >= 0 ? part.committed : RD_KAFKA_OFFSET_BEGINNING;
  }
  lock.unlock();
  rd_kafka_error_t* error = rd_kafka_seek_partitions(c->rk.get(), list.get(), Timeout());
  lock.lock();
  if (error != nullptr) {
    absl::Status s = absl::UnavailableError(std::string("kafka: seek: ") +
                                            rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
    return s;
  }
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& e = list->elems[i];
    GroupConsumer::Part& part = c->parts[e.partition];
    if (e.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Unavailable("seek of partition " + std::to_string(e.partition), e.err);
    }
    if (part.delivered > part.committed) {
      c->redelivered_total->Inc(static_cast<uint64_t>(part.delivered - std::max<int64_t>(part.committed, 0)));
    }
    part.buffer.clear();
    part.fetched = part.delivered = part.committed;
    part.last_progress = clock_->NowMillis();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Message>> KafkaQueue::Poll(const PollRequest& request) {
  STRATA_RETURN_IF_ERROR(ValidatePollRequest(request));
  STRATA_ASSIGN_OR_RETURN(const int partitions, Partitions(request.topic));
  std::vector<int> wanted = request.partitions;
  if (wanted.empty()) {
    for (int p = 0; p < partitions; ++p) wanted.push_back(p);
  }
  std::vector<bool> seen(partitions, false);
  for (int p : wanted) {
    if (p < 0 || p >= partitions) return BadPartition("partitions", p, partitions);
    if (seen[p]) return absl::InvalidArgumentError("partitions: " + std::to_string(p) + " is repeated");
    seen[p] = true;
  }
  STRATA_RETURN_IF_ERROR(Register(request.group, request.topic));
  STRATA_ASSIGN_OR_RETURN(GroupConsumer * c, Consumer(request.group, request.topic, partitions));

  const auto now = SteadyClock::now();
  auto deadline = now + milliseconds(request.wait_ms);
  bool checked_pending = false;
  bool filling = false;
  std::vector<Message> out;
  std::unique_lock<std::mutex> lock(c->mu);
  if (!c->joined) {
    const auto join_deadline = now + milliseconds(options_.join_timeout_ms);
    while (!c->joined) {
      if (SteadyClock::now() >= join_deadline) {
        return absl::UnavailableError("kafka: group " + request.group + " got no assignment of " +
                                      request.topic + " within " +
                                      std::to_string(options_.join_timeout_ms) + " ms");
      }
      if (c->polling) {
        c->changed.wait_for(lock, milliseconds(100));
        continue;
      }
      c->polling = true;
      lock.unlock();
      FetchInto(c, 100);
      lock.lock();
      ReleasePoller(c);
    }
  }
  for (;;) {
    // A partition whose delivered messages went uncommitted for the redelivery timeout goes
    // back to its committed offset.
    if (options_.redelivery_timeout_ms > 0) {
      std::vector<int> stalled;
      const Millis t = clock_->NowMillis();
      for (int p : wanted) {
        const GroupConsumer::Part& part = c->parts[p];
        if (part.assigned && part.delivered > std::max<int64_t>(part.committed, 0) &&
            t - part.last_progress >= options_.redelivery_timeout_ms) {
          stalled.push_back(p);
        }
      }
      if (!stalled.empty()) {
        AcquirePoller(c, lock);
        absl::Status s = SeekToCommitted(c, stalled, lock);
        ReleasePoller(c);
        STRATA_RETURN_IF_ERROR(s);
      }
    }
    std::vector<int> to_resume;
    for (size_t k = 0; k < wanted.size() && out.size() < static_cast<size_t>(request.max_messages);
         ++k) {
      const int p = wanted[(c->next_start + k) % wanted.size()];
      GroupConsumer::Part& part = c->parts[p];
      if (!part.assigned) continue;
      while (!part.buffer.empty() && out.size() < static_cast<size_t>(request.max_messages)) {
        out.push_back(std::move(part.buffer.front()));
        part.buffer.pop_front();
        part.delivered = static_cast<int64_t>(out.back().offset) + 1;
        part.last_progress = clock_->NowMillis();
      }
      if (part.paused &&
          part.buffer.size() < static_cast<size_t>(options_.max_buffered_per_partition / 2)) {
        part.paused = false;
        to_resume.push_back(p);
      }
    }
    c->next_start = (c->next_start + 1) % std::max<size_t>(wanted.size(), 1);
    if (!to_resume.empty()) {
      PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(to_resume.size())));
      for (int p : to_resume) {
        rd_kafka_topic_partition_list_add(list.get(), c->kafka_topic.c_str(), p);
      }
      rd_kafka_resume_partitions(c->rk.get(), list.get());
    }
    if (!out.empty()) {
      // Fill the page while the broker holds more for these partitions (a fetch may carry
      // one produce batch per partition only), within fetch_wait_ms.
      if (out.size() >= static_cast<size_t>(request.max_messages) || !MoreOnBroker(c, wanted)) {
        c->delivered_total->Inc(out.size());
        return out;
      }
      if (!filling) {
        filling = true;
        deadline = SteadyClock::now() + milliseconds(options_.fetch_wait_ms);
        checked_pending = true;
      }
    }
    if (SteadyClock::now() >= deadline) {
      if (!out.empty()) {
        c->delivered_total->Inc(out.size());
        return out;
      }
      // A member whose session timed out without the brokers has no partitions: "nothing
      // to deliver" would hide the outage from the caller.
      if (c->assignment_lost) return LostAssignment(request);
      if (checked_pending) return out;
      // The request's wait is over. Messages the broker already holds beyond this member's
      // position are still fetched (a round trip), so that "nothing returned" means "nothing
      // published beyond the position", as on the embedded queue.
      checked_pending = true;
      std::vector<std::pair<int, int64_t>> positions;
      for (int p : wanted) {
        if (c->parts[p].assigned) positions.emplace_back(p, c->parts[p].fetched);
      }
      lock.unlock();
      bool pending = false;
      for (const auto& [p, fetched] : positions) {
        int64_t low = 0, high = 0;
        STRATA_RETURN_IF_ERROR(Watermarks(c->kafka_topic, p, &low, &high));
        if (high > std::max(fetched, low)) pending = true;
      }
      lock.lock();
      if (!pending) return out;
      deadline = SteadyClock::now() + milliseconds(options_.fetch_wait_ms);
      continue;
    }
    if (!c->polling) {
      c->polling = true;
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
      lock.unlock();
      FetchInto(c, static_cast<int>(std::clamp<int64_t>(left.count(), 0, 100)));
      lock.lock();
      ReleasePoller(c);
    } else {
      c->changed.wait_until(lock, std::min(deadline, SteadyClock::now() + milliseconds(100)));
    }
  }
}

absl::StatusOr<std::vector<Message>> KafkaQueue::ReadRange(const std::string& kafka_topic,
                                                           int partition, int64_t start,
                                                           int64_t count) {
  std::lock_guard<std::mutex> lock(reader_mu_);
  if (reader_ == nullptr) {
    // assign() needs a group id; this one never joins a group and never commits.
    Config conf;
    conf.Set("bootstrap.servers", options_.brokers)
        .Set("group.id", options_.topic_prefix + "__strata_reader")
        .Set("enable.auto.commit", "false")
        .Set("enable.auto.offset.store", "false")
        .Set("enable.partition.eof", "false")
        .Set("socket.timeout.ms", std::to_string(options_.request_timeout_ms))
        .Set("fetch.wait.max.ms", "50");
    rd_kafka_conf_set_log_cb(conf.get(), LogCallback);
    STRATA_ASSIGN_OR_RETURN(reader_, conf.Build(RD_KAFKA_CONSUMER));
    rd_kafka_poll_set_consumer(reader_.get());
  }
  PartitionList list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), kafka_topic.c_str(), partition)->offset = start;
  rd_kafka_resp_err_t err = rd_kafka_assign(reader_.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return Unavailable("assign", err);
  std::vector<Message> out;
  int64_t next = start;
  const auto deadline = SteadyClock::now() + milliseconds(options_.request_timeout_ms);
  while (static_cast<int64_t>(out.size()) < count && SteadyClock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(reader_.get(), 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && kafka_topic == rd_kafka_topic_name(m->rkt) &&
        m->partition == partition && m->offset >= next) {
      out.push_back(ToMessage(m));
      next = m->offset + 1;
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_assign(reader_.get(), nullptr);
  if (out.empty() && count > 0) {
    return absl::UnavailableError("kafka: read of " + kafka_topic + " got nothing in time");
  }
  return out;
}

absl::StatusOr<std::vector<Message>> KafkaQueue::Read(std::string_view topic, int partition,
                                                      uint64_t offset, int max_messages) {
  STRATA_ASSIGN_OR_RETURN(const int partitions, Partitions(topic));
  if (partition < 0 || partition >= partitions) {
    return BadPartition("partition", partition, partitions);
  }
  if (max_messages < 1 || max_messages > kMaxPollMessages) {
    return absl::InvalidArgumentError("max_messages: must be 1..10000");
  }
  const std::string kafka_topic = Full(topic);
  int64_t low = 0, high = 0;
  STRATA_RETURN_IF_ERROR(Watermarks(kafka_topic, partition, &low, &high));
  if (offset >= static_cast<uint64_t>(high)) return std::vector<Message>{};
  const int64_t start = std::max<int64_t>(static_cast<int64_t>(offset), low);
  return ReadRange(kafka_topic, partition, start, std::min<int64_t>(max_messages, high - start));
}

absl::Status KafkaQueue::Commit(std::string_view group, std::string_view topic, int partition,
                                uint64_t offset) {
  STRATA_RETURN_IF_ERROR(ValidateQueueName(group, "group"));
  STRATA_ASSIGN_OR_RETURN(const int partitions, Partitions(topic));
  if (partition < 0 || partition >= partitions) {
    return BadPartition("partition", partition, partitions);
  }
  const std::string kafka_topic = Full(topic);
  int64_t low = 0, high = 0;
  STRATA_RETURN_IF_ERROR(Watermarks(kafka_topic, partition, &low, &high));
  if (offset > static_cast<uint64_t>(high)) {
    return absl::InvalidArgumentError("offset: " + std::to_string(offset) +
                                      " is beyond the end (" + std::to_string(high) +
                                      ") of partition " + std::to_string(partition));
  }
  STRATA_RETURN_IF_ERROR(Register(group, topic));
  GroupConsumer* c = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = consumers_.find(std::string(group) + "/" + std::string(topic));
    if (it != consumers_.end()) c = it->second.get();
  }
  // Through this process's member of the group when there is one (the broker takes commits
  // only from members while the group has any), else as a simple committer.
  rd_kafka_t* rk = nullptr;
  if (c != nullptr) {
    rk = c->rk.get();
  } else {
    STRATA_ASSIGN_OR_RETURN(rk, Committer(group));
  }
  // The partition's owner knows the committed offset (it alone commits it); anyone else
  // asks the broker.
  int64_t before = -1;
  bool known = false;
  if (c != nullptr) {
    std::lock_guard<std::mutex> lock(c->mu);
    const GroupConsumer::Part& part = c->parts[partition];
    if (part.assigned && part.committed_known) {
      before = part.committed;
      known = true;
    }
  }
  if (!known) {
    STRATA_ASSIGN_OR_RETURN(std::vector<int64_t> committed,
                            Committed(rk, kafka_topic, partitions));
    before = committed[partition];
  }
  if (static_cast<int64_t>(offset) <= before) return absl::OkStatus();  // only forward
  PartitionList list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), kafka_topic.c_str(), partition)->offset =
      static_cast<int64_t>(offset);
  rd_kafka_resp_err_t err = rd_kafka_commit(rk, list.get(), 0);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR && list->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    err = list->elems[0].err;
  }
  if (err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
      err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION || err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
      err == RD_KAFKA_RESP_ERR__STATE) {
    return absl::AbortedError("kafka: commit of group " + std::string(group) + " on " +
                              std::string(topic) + " refused (" + rd_kafka_err2str(err) +
                              "): the group is rebalancing; the messages will be delivered "
                              "again");
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return Unavailable("commit", err);
  if (c != nullptr) {
    std::lock_guard<std::mutex> lock(c->mu);
    GroupConsumer::Part& part = c->parts[partition];
    c->committed_total->Inc(static_cast<uint64_t>(static_cast<int64_t>(offset) -
                                                  std::max<int64_t>(before, low)));
    part.committed = std::max<int64_t>(part.committed, static_cast<int64_t>(offset));
    if (part.assigned) part.committed_known = true;
    part.last_progress = clock_->NowMillis();
    // Committing ahead of the position skips those messages for the group.
    if (part.assigned && part.delivered < part.committed) {
      while (!part.buffer.empty() &&
             static_cast<int64_t>(part.buffer.front().offset) < part.committed) {
        part.buffer.pop_front();
      }
      part.delivered = part.committed;
      if (part.fetched < part.committed) {
        // Not fetched yet: skip ahead on the broker side too.
        part.buffer.clear();
        part.fetched = part.committed;
        PartitionList seek(rd_kafka_topic_partition_list_new(1));
        rd_kafka_topic_partition_list_add(seek.get(), kafka_topic.c_str(), partition)->offset =
            part.committed;
        rd_kafka_error_t* e = rd_kafka_seek_partitions(c->rk.get(), seek.get(), Timeout());
        if (e != nullptr) rd_kafka_error_destroy(e);
      }
    }
  }
  return absl::OkStatus();
}

absl::Status KafkaQueue::Rewind(std::string_view group, std::string_view topic) {
  STRATA_RETURN_IF_ERROR(ValidateQueueName(group, "group"));
  STRATA_RETURN_IF_ERROR(Partitions(topic).status());
  GroupConsumer* c = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = consumers_.find(std::string(group) + "/" + std::string(topic));
    if (it != consumers_.end()) c = it->second.get();
  }
  // Without a member here, the next Poll joins and starts at the committed offsets anyway.
  if (c == nullptr) return absl::OkStatus();
  STRATA_ASSIGN_OR_RETURN(std::vector<int64_t> committed,
                          Committed(c->rk.get(), c->kafka_topic, static_cast<int>(c->parts.size())));
  std::unique_lock<std::mutex> lock(c->mu);
  AcquirePoller(c, lock);
  std::vector<int> assigned;
  for (size_t p = 0; p < c->parts.size(); ++p) {
    if (!c->parts[p].assigned) continue;
    c->parts[p].committed = committed[p];
    c->parts[p].committed_known = true;
    assigned.push_back(static_cast<int>(p));
  }
  absl::Status s = assigned.empty() ? absl::OkStatus() : SeekToCommitted(c, assigned, lock);
  ReleasePoller(c);
  return s;
}

absl::StatusOr<std::vector<PartitionLag>> KafkaQueue::Lag(std::string_view group,
                                                          std::string_view topic) {
  STRATA_RETURN_IF_ERROR(ValidateQueueName(group, "group"));
  STRATA_ASSIGN_OR_RETURN(const int partitions, Partitions(topic));
  const std::string kafka_topic = Full(topic);
  STRATA_ASSIGN_OR_RETURN(rd_kafka_t * rk, Committer(group));
  STRATA_ASSIGN_OR_RETURN(std::vector<int64_t> committed, Committed(rk, kafka_topic, partitions));
  std::vector<PartitionLag> out;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    STRATA_RETURN_IF_ERROR(Watermarks(kafka_topic, p, &low, &high));
    PartitionLag l;
    l.partition = p;
    l.committed = committed[p] >= 0 ? static_cast<uint64_t>(committed[p]) : 0;
    l.start_offset = static_cast<uint64_t>(low);
    l.end_offset = static_cast<uint64_t>(high);
    const uint64_t from = std::max(l.committed, l.start_offset);
    l.backlog = l.end_offset > from ? l.end_offset - from : 0;
    out.push_back(l);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Queue>> OpenKafkaQueue(KafkaQueueOptions options) {
  auto queue = std::make_unique<KafkaQueue>(std::move(options));
  STRATA_RETURN_IF_ERROR(queue->Init());
  return std::unique_ptr<Queue>(std::move(queue));
}

}  // namespace strata::store
