// MockKafkaCluster: librdkafka's mock cluster (rdkafka_mock.h), a Kafka-protocol broker set
// on 127.0.0.1, for tests only. It speaks produce, fetch, offsets and consumer groups, but has
// no admin API: topics are created here (CreateTopic), and this class remembers their
// retention.ms (the mock never trims). strata-kafka-mock runs one for many processes and
// serves these calls on a control port (MockControlServer); a test can also run one
// in-process (to stop its brokers, say).
//
// MockControlAdmin is the KafkaTopicAdmin that a KafkaQueue uses against such a cluster: it
// calls CreateTopic / Retention / SetRetention over the control port (one line each way:
// "create NAME PARTITIONS RETENTION", "retention NAME", "set-retention NAME MS", "down",
// "up"; answers "ok [value]", "exists", "notfound" or "error MESSAGE").
//
// Thread safety: every method is thread-safe.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/store/kafka/kafka_queue.h"

namespace strata::store {

class MockKafkaCluster {
 public:
  static absl::StatusOr<std::unique_ptr<MockKafkaCluster>> Start(int brokers);
  ~MockKafkaCluster();
  MockKafkaCluster(const MockKafkaCluster&) = delete;
  MockKafkaCluster& operator=(const MockKafkaCluster&) = delete;

  // "127.0.0.1:port,..." for bootstrap.servers.
  std::string bootstrap_servers() const { return bootstraps_; }
  int brokers() const { return brokers_; }

  // AlreadyExists when the topic exists (with any count).
  absl::Status CreateTopic(std::string_view name, int partitions, Millis retention_ms);
  absl::StatusOr<Millis> Retention(std::string_view name);
  absl::Status SetRetention(std::string_view name, Millis retention_ms);
  // Every broker stops (down = true) or resumes answering: connections are closed and new
  // ones refused, as when the broker processes die, but the logs are kept.
  absl::Status SetBrokersDown(bool down);

 private:
  MockKafkaCluster() = default;
  struct Handles;
  std::unique_ptr<Handles> handles_;
  std::string bootstraps_;
  int brokers_ = 0;
  std::mutex mu_;
  std::map<std::string, Millis, std::less<>> retention_;
};

// Serves a cluster's topic calls on 127.0.0.1 (the port is chosen by the system).
class MockControlServer {
 public:
  static absl::StatusOr<std::unique_ptr<MockControlServer>> Start(MockKafkaCluster* cluster);
  ~MockControlServer();
  int port() const { return port_; }

 private:
  MockControlServer() = default;
  void AcceptLoop();
  void Serve(int fd);
  MockKafkaCluster* cluster_ = nullptr;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

class MockControlAdmin final : public KafkaTopicAdmin {
 public:
  // `address` is "127.0.0.1:port" (strata-kafka-mock's STRATA_KAFKA_MOCK_CONTROL).
  explicit MockControlAdmin(std::string address) : address_(std::move(address)) {}
  absl::Status CreateTopic(std::string_view name, int partitions, Millis retention_ms) override;
  absl::StatusOr<Millis> Retention(std::string_view name) override;
  absl::Status SetRetention(std::string_view name, Millis retention_ms) override;
  // Not part of KafkaTopicAdmin: stops or restarts every broker of the helper's cluster.
  absl::Status SetBrokersDown(bool down);

 private:
  // Sends one line, returns the answer line.
  absl::StatusOr<std::string> Call(const std::string& line);
  const std::string address_;
};

}  // namespace strata::store
