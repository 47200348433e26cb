// strata_kafka_queue_bench: publish and consume throughput of KafkaQueue on librdkafka's mock
// cluster (3 brokers in this process), for docs/benchmarks.md. Not a test.
//
//   strata_kafka_queue_bench [MESSAGES [VALUE_BYTES [BATCH]]]   (defaults 100000 100 500)
//
// The mock keeps at most 5 MB (or 100000 batches) per partition and trims the oldest, like a
// small retention.bytes: keep MESSAGES x VALUE_BYTES / 4 well under 5 MB, or the consumer
// finds its offsets trimmed and skips ahead (reported as a shortfall).
//
// Publishes MESSAGES messages (round robin over 4 partitions) in Publish batches of BATCH,
// waiting for each batch's delivery reports; then one group polls pages of 1000 and commits
// after each page. Prints messages per second for both phases.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "strata/store/kafka/kafka_queue.h"
#include "strata/store/kafka/mock_cluster.h"

namespace {

class InProcessAdmin final : public strata::store::KafkaTopicAdmin {
 public:
  explicit InProcessAdmin(strata::store::MockKafkaCluster* c) : c_(c) {}
  absl::Status CreateTopic(std::string_view n, int p, strata::Millis r) override {
    return c_->CreateTopic(n, p, r);
  }
  absl::StatusOr<strata::Millis> Retention(std::string_view n) override { return c_->Retention(n); }
  absl::Status SetRetention(std::string_view n, strata::Millis r) override {
    return c_->SetRetention(n, r);
  }

 private:
  strata::store::MockKafkaCluster* c_;
};

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace strata::store;
  const int messages = argc > 1 ? std::atoi(argv[1]) : 100'000;
  const int value_bytes = argc > 2 ? std::atoi(argv[2]) : 100;
  const int batch_size = argc > 3 ? std::atoi(argv[3]) : 500;
  auto cluster = MockKafkaCluster::Start(3);
  if (!cluster.ok()) return std::fprintf(stderr, "%s\n", cluster.status().ToString().c_str()), 1;
  InProcessAdmin admin(cluster->get());
  KafkaQueueOptions o;
  o.brokers = (*cluster)->bootstrap_servers();
  o.topic_admin = &admin;
  o.min_retention_ms = 0;
  auto queue = OpenKafkaQueue(o);
  if (!queue.ok()) return std::fprintf(stderr, "%s\n", queue.status().ToString().c_str()), 1;
  Queue* q = queue->get();
  if (!q->CreateTopic(TopicOptions{"bench", 4, 0}).ok()) return 1;

  const std::string value(static_cast<size_t>(value_bytes), 'v');
  auto start = std::chrono::steady_clock::now();
  for (int sent = 0; sent < messages; sent += batch_size) {
    std::vector<PublishMessage> batch(static_cast<size_t>(std::min(batch_size, messages - sent)),
                                      PublishMessage{"", value});
    auto r = q->Publish("bench", batch);
    if (!r.ok()) return std::fprintf(stderr, "publish: %s\n", r.status().ToString().c_str()), 1;
  }
  const double publish_s = Seconds(start);

  // The first Poll includes the group join (about 3 s on the mock): timed separately.
  start = std::chrono::steady_clock::now();
  PollRequest r;
  r.group = "g";
  r.topic = "bench";
  r.max_messages = 1000;
  r.wait_ms = 1000;
  auto first = q->Poll(r);
  if (!first.ok()) return 1;
  const double join_s = Seconds(start);
  long received = static_cast<long>(first->size());
  start = std::chrono::steady_clock::now();
  while (received < messages) {
    auto page = q->Poll(r);
    if (!page.ok()) return std::fprintf(stderr, "poll: %s\n", page.status().ToString().c_str()), 1;
    if (page->empty()) break;
    received += static_cast<long>(page->size());
    std::map<int, uint64_t> commit;
    for (const Message& m : *page) commit[m.partition] = m.offset + 1;
    for (const auto& [p, offset] : commit) {
      if (!q->Commit("g", "bench", p, offset).ok()) return 1;
    }
  }
  const double consume_s = Seconds(start);
  if (received < messages) {
    auto lag = q->Lag("g", "bench");
    if (lag.ok()) {
      for (const PartitionLag& l : *lag) {
        std::fprintf(stderr, "partition %d committed %lu end %lu\n", l.partition,
                     static_cast<unsigned long>(l.committed), static_cast<unsigned long>(l.end_offset));
      }
    }
    for (int i = 0; i < 3; ++i) {
      auto page = q->Poll(r);
      std::fprintf(stderr, "retry poll: %s %zu\n", page.status().ToString().c_str(),
                   page.ok() ? page->size() : 0);
    }
  }
  std::printf("messages=%d value_bytes=%d publish_batch=%d\n", messages, value_bytes, batch_size);
  std::printf("publish: %.0f msg/s (%.2f s, delivery reports awaited per batch)\n",
              messages / publish_s, publish_s);
  std::printf("consume: %.0f msg/s (%ld messages, %.2f s, commit per page of 1000; "
              "group join %.2f s excluded)\n",
              (received - static_cast<long>(first->size())) / consume_s, received, consume_s,
              join_s);
  return received == messages ? 0 : 1;
}
