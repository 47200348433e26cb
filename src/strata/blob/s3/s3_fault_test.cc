// Fault tests of the S3 BlobStore: a private radosgw (started the way scripts/cluster.sh
// starts the cluster's, `radosgw --id rgw.a` with CEPH_CONF, but on its own port, pid file and
// admin socket) over the cluster's monitor and OSD is killed or stopped while Strata uses it.
// The shared radosgw of the cluster is never touched, so tests running beside these do not
// notice. No timing assertions: a dead endpoint must give Unavailable, whatever the time.
//
// A killed radosgw leaves its watches on the zone's notify objects for the OSD's watch timeout
// (30 s), and until then every bucket creation on the cluster waits 10 s on the dead watcher.
// So after a kill the test blocklists the dead instance's address, as an operator would, and
// the cluster is at once as healthy for later tests as before.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_join.h"
#include "strata/blob/s3/s3_blob_store.h"
#include "strata/blob/s3/s3_test_support.h"
#include "strata/store/cluster_env.h"

namespace strata::blob {
namespace {

using s3_testing::ClusterDir;
using s3_testing::Run;

std::string Pattern(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class PrivateRadosgw {
 public:
  PrivateRadosgw() {
    std::string out;
    Run("python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); "
        "print(s.getsockname()[1])'",
        &out);
    port_ = std::stoi(out);
    const std::string base = ClusterDir() + "/fault-rgw-" + std::to_string(port_);
    pid_file_ = base + ".pid";  // in the cluster's directory: its stop kills a leftover too
    asok_ = base + ".asok";
    log_ = ClusterDir() + "/log/fault-rgw-" + std::to_string(port_) + ".log";
  }
  ~PrivateRadosgw() {
    if (pid_ > 0) Kill();
    for (const std::string& addr : blocklisted_) {
      Run(Ceph() + "timeout 30 ceph osd blocklist rm " + addr + " >/dev/null 2>&1");
    }
    Run("rm -f " + pid_file_);
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& asok() const { return asok_; }

  // Starts it and waits (bounded) until it answers HTTP.
  void Start() {
    const std::set<std::string> before = Watchers();
    Run("rm -f " + pid_file_);
    int rc = Run(Ceph() +
                 "timeout 60 radosgw --id rgw.a --rgw-frontends='beast "
                 "endpoint=127.0.0.1:" +
                 std::to_string(port_) + "' --pid-file=" + pid_file_ + " --admin-socket=" + asok_ +
                 " --log-file=" + log_ + " --rgw-multipart-min-part-size=4096 >>" + log_ + " 2>&1");
    ASSERT_EQ(rc, 0) << "radosgw did not start; see " << log_;
    for (int i = 0; i < 600; ++i) {
      if (Run("curl -fs -o /dev/null " + endpoint() + "/") == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::string pid;
    Run("cat " + pid_file_, &pid);
    pid_ = pid.empty() ? 0 : std::stoi(pid);
    ASSERT_GT(pid_, 0);
    ASSERT_EQ(Run("curl -fs -o /dev/null " + endpoint() + "/"), 0) << "radosgw does not answer";
    // Its address is the one new watcher. Two new ones would mean another radosgw started
    // meanwhile (CTest's RESOURCE_LOCK private_radosgw keeps these tests apart): blocklisting
    // the wrong one after a kill would break that other radosgw, so refuse to guess.
    std::vector<std::string> fresh;
    for (const std::string& w : Watchers()) {
      if (!before.count(w)) fresh.push_back(w);
    }
    ASSERT_EQ(fresh.size(), 1u) << "new watchers on notify.0: " << absl::StrJoin(fresh, " ")
                                << " (expected only the private radosgw's)";
    addr_ = fresh[0];
  }

  // SIGKILL, then blocklist its address so the OSD drops its watches now.
  void Kill() {
    ASSERT_GT(pid_, 0);
    kill(pid_, SIGCONT);
    ASSERT_EQ(kill(pid_, SIGKILL), 0);
    WaitGone();
    pid_ = 0;
    ASSERT_EQ(Run(Ceph() + "timeout 30 ceph osd blocklist add " + addr_ + " >/dev/null 2>&1"), 0);
    blocklisted_.push_back(addr_);
    for (int i = 0; i < 300 && Watchers().count(addr_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(Watchers().count(addr_), 0u) << "the dead radosgw's watch is still there";
  }
  void Pause() { ASSERT_EQ(kill(pid_, SIGSTOP), 0); }
  void Resume() { ASSERT_EQ(kill(pid_, SIGCONT), 0); }

 private:
  void WaitGone() {
    // It is not our child (radosgw daemonizes): poll until the pid is gone.
    for (int i = 0; i < 1000 && kill(pid_, 0) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  static std::string Ceph() {
    return "CEPH_CONF=" + store::ClusterSetting("CEPH_CONF").value_or("") + " ";
  }
  // Client addresses watching the zone's first notify object (every radosgw watches it).
  static std::set<std::string> Watchers() {
    std::string out;
    Run(Ceph() + "timeout 30 rados -p default.rgw.control listwatchers notify.0 2>/dev/null", &out);
    std::set<std::string> addrs;
    std::istringstream in(out);
    std::string word;
    while (in >> word) {
      if (word.rfind("watcher=", 0) == 0) addrs.insert(word.substr(8));
    }
    return addrs;
  }

  int port_ = 0;
  int pid_ = 0;
  std::string pid_file_, asok_, log_, addr_;
  std::vector<std::string> blocklisted_;
};

class S3FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = s3_testing::S3ClusterMissing();
    if (!why.empty() && std::getenv("STRATA_CLUSTER_ENV") == nullptr) GTEST_SKIP() << why;
    ASSERT_TRUE(why.empty()) << why;
    ASSERT_NO_FATAL_FAILURE(rgw_.Start());
  }

  std::unique_ptr<S3BlobStore> Open(int attempts = 3, int64_t low_speed_seconds = 3) {
    S3BlobStoreOptions o = s3_testing::ClusterOptions(kPart, /*versioned=*/false);
    o.endpoint = rgw_.endpoint();
    if (!bucket_.empty()) o.bucket = bucket_;
    bucket_ = o.bucket;
    o.max_attempts = attempts;
    o.initial_backoff_ms = 20;
    o.max_backoff_ms = 200;
    o.connect_timeout_ms = 1000;
    o.low_speed_seconds = low_speed_seconds;
    auto s = S3BlobStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  static constexpr uint64_t kPart = 64 << 10;
  PrivateRadosgw rgw_;
  std::string bucket_;
};

TEST_F(S3FaultTest, RadosgwKilledMidUploadGivesUnavailableAndLosesNothingCommitted) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<std::pair<std::string, std::string>> committed;
  for (int i = 0; i < 10; ++i) {
    committed.emplace_back("keep/" + std::to_string(i), Pattern(100 + i * 977, i));
  }
  committed.emplace_back("keep/big", Pattern(3 * kPart + 500, 99));
  for (const auto& [name, data] : committed) ASSERT_TRUE(store->Put(name, data).ok()) << name;

  auto w = store->NewWriter("inflight");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(Pattern(2 * kPart, 7)).ok());  // a multipart upload is under way

  ASSERT_NO_FATAL_FAILURE(rgw_.Kill());
  absl::Status st = (*w)->Append(Pattern(2 * kPart, 8));
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  EXPECT_NE(st.message().find(rgw_.endpoint()), std::string::npos) << st;
  EXPECT_FALSE((*w)->Commit().ok());  // the writer is aborted after a failure
  EXPECT_TRUE(absl::IsUnavailable(store->Stat("keep/1").status()));
  EXPECT_TRUE(absl::IsUnavailable(store->Put("new", "x")));
  w->reset();  // its abort cannot reach the server either: the upload stays behind

  ASSERT_NO_FATAL_FAILURE(rgw_.Start());
  for (const auto& [name, data] : committed) {
    absl::StatusOr<std::string> got = store->Read(name, 0, data.size() + 1);
    ASSERT_TRUE(got.ok()) << name << ": " << got.status();
    EXPECT_TRUE(*got == data) << name;
  }
  EXPECT_TRUE(absl::IsNotFound(store->Stat("inflight").status()));
  EXPECT_TRUE(absl::IsNotFound(store->Stat("new").status()));
  // The leftover upload of the killed writer is what the age rule at Open clears.
  auto uploads = store->ListIncompleteUploads();
  ASSERT_TRUE(uploads.ok()) << uploads.status();
  ASSERT_EQ(uploads->size(), 1u);
  EXPECT_EQ((*uploads)[0].name, "inflight");
  auto aborted = store->AbortIncompleteUploads(SystemClock::Default()->NowMillis() + 60'000);
  ASSERT_TRUE(aborted.ok());
  EXPECT_EQ(*aborted, 1u);
  // The store goes on working on the restarted server.
  ASSERT_TRUE(store->Put("after/restart", Pattern(2 * kPart + 1, 5)).ok());
  EXPECT_TRUE(store->Read("after/restart", 0, 3 * kPart).value_or("") == Pattern(2 * kPart + 1, 5));
  absl::Status dropped = store->DropBucket();
  EXPECT_TRUE(dropped.ok()) << dropped;
}

TEST_F(S3FaultTest, StoppedRadosgwGivesUnavailableNotAHang) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("a", "alpha").ok());
  // While it is stopped its watches stall other radosgw's bucket changes: keep that short.
  store = Open(/*attempts=*/2, /*low_speed_seconds=*/1);
  ASSERT_NE(store, nullptr);
  // A stopped server still accepts TCP connections (the kernel does), then never answers:
  // only the low-speed timeout ends each attempt.
  ASSERT_NO_FATAL_FAILURE(rgw_.Pause());
  const absl::Status stat = store->Stat("a").status();
  EXPECT_TRUE(absl::IsUnavailable(stat)) << stat;
  const std::string b = Pattern(kPart / 2, 3);
  absl::Status put = store->Put("b", b);
  EXPECT_TRUE(absl::IsUnavailable(put)) << put;
  EXPECT_GT(store->retries(), 0u);
  ASSERT_NO_FATAL_FAILURE(rgw_.Resume());
  // The checks after the resume use the patient settings: a radosgw catching up on a loaded
  // machine may take more than 1 s to answer the first request.
  store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Read("a", 0, 10).value_or(""), "alpha");
  // Unavailable means "outcome unknown": the server may have finished the PUT it had already
  // received once it resumed. Either nothing or exactly the bytes, never a torn object.
  absl::StatusOr<std::string> got = store->Read("b", 0, b.size() + 1);
  if (got.ok()) {
    EXPECT_TRUE(*got == b);
  } else {
    EXPECT_TRUE(absl::IsNotFound(got.status())) << got.status();
  }
  absl::Status dropped = store->DropBucket();
  EXPECT_TRUE(dropped.ok()) << dropped;
}

}  // namespace
}  // namespace strata::blob
