#include "strata/store/kafka/mock_cluster.h"

#include <arpa/inet.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>
#include <vector>

namespace strata::store {

struct MockKafkaCluster::Handles {
  rd_kafka_t* rk = nullptr;  // owns the mock cluster's threads
  rd_kafka_mock_cluster_t* cluster = nullptr;
  ~Handles() {
    if (cluster != nullptr) rd_kafka_mock_cluster_destroy(cluster);
    if (rk != nullptr) rd_kafka_destroy(rk);
  }
};

absl::StatusOr<std::unique_ptr<MockKafkaCluster>> MockKafkaCluster::Start(int brokers) {
  if (brokers < 1) return absl::InvalidArgumentError("brokers: must be >= 1");
  std::unique_ptr<MockKafkaCluster> out(new MockKafkaCluster());
  out->handles_ = std::make_unique<Handles>();
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The handle only hosts the cluster; it never connects anywhere.
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
  out->handles_->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (out->handles_->rk == nullptr) return absl::InternalError(std::string("kafka mock: ") + err);
  out->handles_->cluster = rd_kafka_mock_cluster_new(out->handles_->rk, brokers);
  if (out->handles_->cluster == nullptr) return absl::InternalError("kafka mock: cluster not created");
  out->bootstraps_ = rd_kafka_mock_cluster_bootstraps(out->handles_->cluster);
  out->brokers_ = brokers;
  return out;
}

MockKafkaCluster::~MockKafkaCluster() = default;

absl::Status MockKafkaCluster::CreateTopic(std::string_view name, int partitions,
                                           Millis retention_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (retention_.contains(name)) return absl::AlreadyExistsError("topic exists");
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
      handles_->cluster, std::string(name).c_str(), partitions, std::min(3, brokers_));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(std::string("kafka mock: ") + rd_kafka_err2str(err));
  }
  retention_.emplace(std::string(name), retention_ms);
  return absl::OkStatus();
}

absl::StatusOr<Millis> MockKafkaCluster::Retention(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = retention_.find(name);
  if (it == retention_.end()) return absl::NotFoundError("no such topic");
  return it->second;
}

absl::Status MockKafkaCluster::SetRetention(std::string_view name, Millis retention_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = retention_.find(name);
  if (it == retention_.end()) return absl::NotFoundError("no such topic");
  it->second = retention_ms;
  return absl::OkStatus();
}

absl::Status MockKafkaCluster::SetBrokersDown(bool down) {
  for (int id = 1; id <= brokers_; ++id) {
    rd_kafka_resp_err_t err = down ? rd_kafka_mock_broker_set_down(handles_->cluster, id)
                                   : rd_kafka_mock_broker_set_up(handles_->cluster, id);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::InternalError(std::string("kafka mock: ") + rd_kafka_err2str(err));
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<MockControlServer>> MockControlServer::Start(
    MockKafkaCluster* cluster) {
  std::unique_ptr<MockControlServer> s(new MockControlServer());
  s->cluster_ = cluster;
  s->listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  if (s->listen_fd_ < 0) return absl::InternalError("control: socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(s->listen_fd_, 64) != 0 ||
      getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::InternalError("control: cannot listen on 127.0.0.1");
  }
  s->port_ = ntohs(addr.sin_port);
  s->thread_ = std::thread([raw = s.get()] { raw->AcceptLoop(); });
  return s;
}

MockControlServer::~MockControlServer() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

void MockControlServer::AcceptLoop() {
  while (!stopping_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    Serve(fd);  // calls are short; one at a time keeps this simple
    close(fd);
  }
}

void MockControlServer::Serve(int fd) {
  std::string in;
  char buf[1024];
  for (;;) {
    size_t nl;
    while ((nl = in.find('\n')) == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 5000) <= 0) return;
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) return;
      in.append(buf, static_cast<size_t>(n));
    }
    std::istringstream line(in.substr(0, nl));
    in.erase(0, nl + 1);
    std::string cmd, name;
    line >> cmd >> name;
    std::string answer;
    auto status_answer = [](const absl::Status& s) -> std::string {
      if (s.ok()) return "ok";
      if (absl::IsAlreadyExists(s)) return "exists";
      if (absl::IsNotFound(s)) return "notfound";
      return "error " + std::string(s.message());
    };
    if (cmd == "create") {
      int partitions = 0;
      Millis retention = 0;
      line >> partitions >> retention;
      answer = status_answer(cluster_->CreateTopic(name, partitions, retention));
    } else if (cmd == "retention") {
      absl::StatusOr<Millis> r = cluster_->Retention(name);
      answer = r.ok() ? "ok " + std::to_string(*r) : status_answer(r.status());
    } else if (cmd == "set-retention") {
      Millis retention = 0;
      line >> retention;
      answer = status_answer(cluster_->SetRetention(name, retention));
    } else if (cmd == "down" || cmd == "up") {
      answer = status_answer(cluster_->SetBrokersDown(cmd == "down"));
    } else {
      answer = "error unknown command " + cmd;
    }
    answer += "\n";
    if (write(fd, answer.data(), answer.size()) != static_cast<ssize_t>(answer.size())) return;
  }
}

// ---------------------------------------------------------------------------------------

absl::StatusOr<std::string> MockControlAdmin::Call(const std::string& line) {
  const size_t colon = address_.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError("control: bad address " + address_);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address_.substr(colon + 1))));
  if (inet_pton(AF_INET, address_.substr(0, colon).c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError("control: bad address " + address_);
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::UnavailableError("control: socket failed");
  std::string out;
  absl::Status status = absl::OkStatus();
  const std::string request = line + "\n";
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    status = absl::UnavailableError("control: cannot reach " + address_);
  } else {
    char buf[256];
    while (out.find('\n') == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      ssize_t n = poll(&p, 1, 10000) > 0 ? read(fd, buf, sizeof(buf)) : -1;
      if (n <= 0) {
        status = absl::UnavailableError("control: no answer from " + address_);
        break;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  if (!status.ok()) return status;
  out.resize(out.find('\n'));
  return out;
}

namespace {
absl::Status FromAnswer(const std::string& answer) {
  if (answer == "ok" || answer.rfind("ok ", 0) == 0) return absl::OkStatus();
  if (answer == "exists") return absl::AlreadyExistsError("kafka mock: topic exists");
  if (answer == "notfound") return absl::NotFoundError("kafka mock: no such topic");
  return absl::InternalError("kafka mock: " + answer);
}
}  // namespace

absl::Status MockControlAdmin::CreateTopic(std::string_view name, int partitions,
                                           Millis retention_ms) {
  absl::StatusOr<std::string> answer = Call("create " + std::string(name) + " " +
                                            std::to_string(partitions) + " " +
                                            std::to_string(retention_ms));
  if (!answer.ok()) return answer.status();
  return FromAnswer(*answer);
}

absl::StatusOr<Millis> MockControlAdmin::Retention(std::string_view name) {
  absl::StatusOr<std::string> answer = Call("retention " + std::string(name));
  if (!answer.ok()) return answer.status();
  if (absl::Status s = FromAnswer(*answer); !s.ok()) return s;
  return std::stoll(answer->substr(3));
}

absl::Status MockControlAdmin::SetRetention(std::string_view name, Millis retention_ms) {
  absl::StatusOr<std::string> answer =
      Call("set-retention " + std::string(name) + " " + std::to_string(retention_ms));
  if (!answer.ok()) return answer.status();
  return FromAnswer(*answer);
}

absl::Status MockControlAdmin::SetBrokersDown(bool down) {
  absl::StatusOr<std::string> answer = Call(down ? "down" : "up");
  if (!answer.ok()) return answer.status();
  return FromAnswer(*answer);
}

}  // namespace strata::store
