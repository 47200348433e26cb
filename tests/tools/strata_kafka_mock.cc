// strata-kafka-mock: a Kafka-protocol cluster on 127.0.0.1 for tests, reachable by several
// processes: librdkafka's mock cluster (several brokers) plus a control port through which
// tests create topics (the mock has no admin API). Runs until SIGTERM or SIGINT.
//
//   strata-kafka-mock [--brokers N] [--env-file FILE] [--pid-file FILE]
//
// Prints, and writes to FILE (atomically, once everything listens):
//   export STRATA_KAFKA_BROKERS=127.0.0.1:port,...
//   export STRATA_KAFKA_MOCK_CONTROL=127.0.0.1:port
// Nothing is kept: topics and offsets live in this process's memory.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "strata/store/kafka/mock_cluster.h"

namespace {

bool WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out.good()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  int brokers = 3;
  std::string env_file, pid_file;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--brokers" && i + 1 < argc) {
      brokers = std::atoi(argv[++i]);
    } else if (arg == "--env-file" && i + 1 < argc) {
      env_file = argv[++i];
    } else if (arg == "--pid-file" && i + 1 < argc) {
      pid_file = argv[++i];
    } else {
      std::cerr << "usage: strata-kafka-mock [--brokers N] [--env-file FILE] [--pid-file FILE]\n";
      return 2;
    }
  }
  // Block the stop signals before any thread starts, so every thread inherits the mask and
  // sigwait below receives them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto cluster = strata::store::MockKafkaCluster::Start(brokers);
  if (!cluster.ok()) {
    std::cerr << "strata-kafka-mock: " << cluster.status() << "\n";
    return 1;
  }
  auto control = strata::store::MockControlServer::Start(cluster->get());
  if (!control.ok()) {
    std::cerr << "strata-kafka-mock: " << control.status() << "\n";
    return 1;
  }
  const std::string env = "export STRATA_KAFKA_BROKERS=" + (*cluster)->bootstrap_servers() +
                          "\nexport STRATA_KAFKA_MOCK_CONTROL=127.0.0.1:" +
                          std::to_string((*control)->port()) + "\n";
  if (!pid_file.empty() && !WriteAtomically(pid_file, std::to_string(getpid()) + "\n")) {
    std::cerr << "strata-kafka-mock: cannot write " << pid_file << "\n";
    return 1;
  }
  if (!env_file.empty() && !WriteAtomically(env_file, env)) {
    std::cerr << "strata-kafka-mock: cannot write " << env_file << "\n";
    return 1;
  }
  std::cout << env << std::flush;
  int sig = 0;
  sigwait(&stop, &sig);
  control->reset();
  cluster->reset();
  return 0;
}
