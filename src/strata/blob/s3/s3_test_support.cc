#include "strata/blob/s3/s3_test_support.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "strata/store/cluster_env.h"

namespace strata::blob::s3_testing {

using store::ClusterMissing;
using store::ClusterSetting;

std::string S3ClusterMissing() {
  for (const char* name :
       {"STRATA_S3_ENDPOINT", "STRATA_S3_ACCESS_KEY", "STRATA_S3_SECRET_KEY", "CEPH_CONF"}) {
    std::string why = ClusterMissing(name);
    if (!why.empty()) return why;
  }
  return "";
}

std::string FreshBucketName() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  char buf[32];
  std::snprintf(buf, sizeof buf, "strata-t-%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

S3BlobStoreOptions ClusterOptions(uint64_t part_bytes, bool versioned) {
  S3BlobStoreOptions o;
  o.endpoint = ClusterSetting("STRATA_S3_ENDPOINT").value_or("");
  o.region = ClusterSetting("STRATA_S3_REGION").value_or("us-east-1");
  o.credentials.access_key = ClusterSetting("STRATA_S3_ACCESS_KEY").value_or("");
  o.credentials.secret_key = ClusterSetting("STRATA_S3_SECRET_KEY").value_or("");
  o.bucket = FreshBucketName();
  o.create_bucket = true;
  o.enable_versioning = versioned;
  o.part_bytes = part_bytes;
  return o;
}

int Run(const std::string& command, std::string* out) {
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) {
    if (out != nullptr) out->append(buf, n);
  }
  int rc = pclose(p);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int SetBucketPolicy(const std::string& bucket, const std::string& policy, std::string* out) {
  const S3BlobStoreOptions o = ClusterOptions(4096, false);
  const std::string url = o.endpoint + "/" + bucket + "?policy=";  // "=": curl signs it so
  std::string command = "curl -sS -o /dev/stderr -w '%{http_code}' --aws-sigv4 'aws:amz:" +
                        o.region + ":s3' -u '" + o.credentials.access_key + ":" +
                        o.credentials.secret_key +
                        "' -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' ";
  if (policy.empty()) {
    command += "-X DELETE '" + url + "'";
  } else {
    const std::string file = ::testing::TempDir() + "strata_policy_" + bucket + ".json";
    {
      std::ofstream f(file);
      f << policy;
    }
    command += "-X PUT --data-binary @" + file + " '" + url + "'";
  }
  std::string code;
  const int rc = Run(command + " 2>&1", &code);
  if (out != nullptr) *out = code;
  if (rc != 0) return rc;
  // The status code is the last three characters (the body, if any, comes first).
  const std::string status = code.size() >= 3 ? code.substr(code.size() - 3) : code;
  return status == "200" || status == "204" ? 0 : 1;
}

std::string ClusterDir() {
  std::string conf = ClusterSetting("CEPH_CONF").value_or("");
  size_t slash = conf.rfind('/');
  return slash == std::string::npos ? "." : conf.substr(0, slash);
}

void AllowSmallParts(const std::string& asok_in) {
  static std::once_flag mon_once;
  const std::string env = "CEPH_CONF=" + ClusterSetting("CEPH_CONF").value_or("") + " ";
  std::call_once(mon_once, [&] {
    int rc = Run(env +
                 "timeout 30 ceph config set client.rgw.a rgw_multipart_min_part_size 4096 "
                 "2>&1");
    ASSERT_EQ(rc, 0) << "ceph config set failed";
  });
  const std::string asok = asok_in.empty() ? ClusterDir() + "/client.rgw.a.asok" : asok_in;
  // The monitor pushes the change to radosgw; wait (bounded) until it has it.
  for (int i = 0; i < 200; ++i) {
    std::string out;
    Run(env + "timeout 10 ceph --admin-daemon " + asok +
            " config get rgw_multipart_min_part_size 2>/dev/null",
        &out);
    if (out.find("\"4096\"") != std::string::npos) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL() << "radosgw did not take rgw_multipart_min_part_size = 4096";
}

}  // namespace strata::blob::s3_testing
