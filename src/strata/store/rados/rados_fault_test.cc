// Fault test of the RADOS row store: the OSD stops answering in the middle of a write load.
//
// It runs on a cluster of its own (scripts/cluster.sh in a temporary directory), never on the
// shared one, which other tests use meanwhile. The OSD is frozen with SIGSTOP and thawed with
// SIGCONT rather than killed and restarted: the test cluster's OSD keeps its data in RAM
// (memstore), so a killed OSD comes back empty by design and "nothing acknowledged is lost"
// could only be tested against a disk-backed OSD. A frozen OSD is what a client sees of a
// dead or partitioned one: its socket accepts nothing and no reply comes.
//
// What is checked: while the OSD is frozen, writes and reads fail with Unavailable (the
// client's op timeout) instead of hanging; afterwards every acknowledged batch is there in
// full, every failed batch is there in full or not at all (each is one atomic operation,
// which the OSD may still apply once it runs again), and new writes succeed.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "strata/store/rados/rados_row_store.h"

namespace strata::store {
namespace {

bool HaveCephTools() {
  return std::system("command -v ceph-mon >/dev/null 2>&1 && command -v ceph-osd >/dev/null "
                     "2>&1 && command -v radosgw >/dev/null 2>&1") == 0;
}

class PrivateCluster {
 public:
  PrivateCluster() {
    char pattern[] = "/tmp/strata-rados-fault-XXXXXX";
    if (mkdtemp(pattern) == nullptr) return;
    dir_ = std::string(pattern) + "/cluster";
    const std::string command = std::string("bash ") + STRATA_CLUSTER_SCRIPT + " start " + dir_ +
                                " >" + dir_ + ".log 2>&1";
    started_ = std::system(command.c_str()) == 0;
  }
  ~PrivateCluster() {
    if (osd_pid_ > 0) kill(osd_pid_, SIGCONT);
    if (!dir_.empty()) {
      const std::string command =
          std::string("bash ") + STRATA_CLUSTER_SCRIPT + " stop " + dir_ + " >/dev/null 2>&1";
      (void)std::system(command.c_str());
      std::error_code ec;
      std::filesystem::remove_all(std::filesystem::path(dir_).parent_path(), ec);
    }
  }
  bool started() const { return started_; }
  std::string log() const {
    std::ifstream in(dir_ + ".log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::string conf() const { return dir_ + "/ceph.conf"; }
  pid_t OsdPid() {
    std::ifstream in(dir_ + "/osd.0.pid");
    in >> osd_pid_;
    return osd_pid_;
  }

 private:
  std::string dir_;
  bool started_ = false;
  pid_t osd_pid_ = 0;
};

TEST(RadosFaultTest, FrozenOsdGivesUnavailableAndLosesNothingAcknowledged) {
  if (geteuid() != 0 || !HaveCephTools()) {
    GTEST_SKIP() << "needs root and the Ceph daemons (scripts/install-deps.sh)";
  }
  PrivateCluster cluster;
  ASSERT_TRUE(cluster.started()) << cluster.log();
  RadosRowStoreOptions options;
  options.ceph_conf = cluster.conf();
  options.pool_prefix = "strata.fault";
  options.op_timeout_ms = 2000;
  options.reap_interval_ms = 0;
  absl::StatusOr<std::unique_ptr<RadosRowStore>> opened = RadosRowStore::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  RadosRowStore& store = **opened;
  absl::StatusOr<Table*> table = store.OpenTable(TableOptions{"rows", TableProfile::kLive});
  ASSERT_TRUE(table.ok()) << table.status();
  Table* t = *table;

  // Batch i writes rows i/0 .. i/3 into partition p<i % 8>, through RowStore::Write with
  // a second partition's batch beside it.
  auto write_batch = [&](int i) {
    std::vector<PartitionWrite> writes;
    for (int part = 0; part < 2; ++part) {
      writes.push_back(PartitionWrite{t, "p" + std::to_string((i + part) % 8), WriteBatch()});
      for (int r = 0; r < 4; ++r) {
        writes.back().batch.Put(std::to_string(i) + "/" + std::to_string(part) + "/" +
                                    std::to_string(r),
                                "v" + std::to_string(i));
      }
    }
    return store.Write(writes);
  };

  std::mutex mu;
  std::condition_variable cv;
  std::map<int, absl::Status> outcome;  // batch -> status
  int acked = 0, failed = 0;
  bool stop = false;
  std::thread writer([&] {
    for (int i = 0;; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stop) return;
      }
      absl::Status s = write_batch(i);
      std::lock_guard<std::mutex> lock(mu);
      outcome[i] = s;
      (s.ok() ? acked : failed)++;
      cv.notify_all();
    }
  });
  auto wait_until = [&](auto done) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done(); });
  };

  wait_until([&] { return acked >= 200; });
  const pid_t osd = cluster.OsdPid();
  ASSERT_GT(osd, 0);
  ASSERT_EQ(kill(osd, SIGSTOP), 0);
  wait_until([&] { return failed >= 2; });
  // Reads fail the same way.
  absl::StatusOr<std::string> read = t->Get("p0", "0/0/0");
  EXPECT_TRUE(absl::IsUnavailable(read.status())) << read.status();
  ASSERT_EQ(kill(osd, SIGCONT), 0);
  int acked_before_resume = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    acked_before_resume = acked;
  }
  wait_until([&] { return acked >= acked_before_resume + 100; });
  {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
  }
  writer.join();

  int unknown_applied = 0;
  for (const auto& [i, status] : outcome) {
    if (!status.ok()) {
      EXPECT_TRUE(absl::IsUnavailable(status)) << "batch " << i << ": " << status;
    }
    for (int part = 0; part < 2; ++part) {
      const std::string partition = "p" + std::to_string((i + part) % 8);
      int present = 0;
      for (int r = 0; r < 4; ++r) {
        absl::StatusOr<std::string> v = t->Get(
            partition, std::to_string(i) + "/" + std::to_string(part) + "/" + std::to_string(r));
        ASSERT_TRUE(v.ok() || absl::IsNotFound(v.status())) << v.status();
        if (v.ok()) {
          EXPECT_EQ(*v, "v" + std::to_string(i));
          ++present;
        }
      }
      if (status.ok()) {
        EXPECT_EQ(present, 4) << "acknowledged batch " << i << " lost rows";
      } else {
        EXPECT_TRUE(present == 0 || present == 4) << "batch " << i << " half applied";
        if (present == 4) ++unknown_applied;
      }
    }
  }
  std::printf("acknowledged %d, failed %d (of which %d partition batches applied later)\n",
              acked, failed, unknown_applied);
}

}  // namespace
}  // namespace strata::store
