// The backend choice's validation and the S3 key lookup (opening real backends is covered by
// the end-to-end tests: tests/e2e/test_distributed.py).
#include "strata/server/backends.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "strata/server/server.h"

namespace strata::server {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(ValidateBackendConfig, DefaultsAreTheEmbeddedDeployment) {
  BackendConfig c;
  EXPECT_TRUE(ValidateBackendConfig(c).ok());
  EXPECT_EQ(c.rows.backend, "rocksdb");
  EXPECT_EQ(c.blobs.backend, "local");
  EXPECT_EQ(c.queue.backend, "embedded");
  EXPECT_EQ(c.cache.backend, "memory");
}

TEST(ValidateBackendConfig, UnknownNamesNameTheKey) {
  const std::map<std::string, std::function<void(BackendConfig&)>> cases = {
      {"rows.backend: unknown backend \"cassandra\"",
       [](BackendConfig& c) { c.rows.backend = "cassandra"; }},
      {"blobs.backend: unknown backend \"gcs\"", [](BackendConfig& c) { c.blobs.backend = "gcs"; }},
      {"queue.backend: unknown backend \"sqs\"", [](BackendConfig& c) { c.queue.backend = "sqs"; }},
      {"cache.backend: unknown backend \"redis\"",
       [](BackendConfig& c) { c.cache.backend = "redis"; }},
  };
  for (const auto& [message, change] : cases) {
    BackendConfig c;
    change(c);
    absl::Status s = ValidateBackendConfig(c);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_THAT(Message(s), HasSubstr(message));
  }
}

TEST(ValidateBackendConfig, MissingRequiredSettingsNameTheKey) {
  BackendConfig c;
  c.blobs.backend = "s3";
  c.blobs.bucket = "b";
  EXPECT_THAT(Message(ValidateBackendConfig(c)),
              HasSubstr("blobs.endpoint: required when blobs.backend is \"s3\""));
  c.blobs.endpoint = "127.0.0.1:7480";
  EXPECT_THAT(Message(ValidateBackendConfig(c)), HasSubstr("blobs.endpoint: must start with"));
  c.blobs.endpoint = "http://127.0.0.1:7480";
  c.blobs.bucket = "";
  EXPECT_THAT(Message(ValidateBackendConfig(c)), HasSubstr("blobs.bucket: required"));
  c.blobs.bucket = "b";
  EXPECT_TRUE(ValidateBackendConfig(c).ok());

  c = BackendConfig();
  c.cache.backend = "memcached";
  EXPECT_THAT(Message(ValidateBackendConfig(c)),
              HasSubstr("cache.servers: required when cache.backend is \"memcached\""));
  c.cache.servers = {"127.0.0.1:11211", "nohost"};
  EXPECT_THAT(Message(ValidateBackendConfig(c)),
              HasSubstr("cache.servers[1]: \"nohost\" is not host:port"));
  c.cache.servers = {"127.0.0.1:11211"};
  EXPECT_TRUE(ValidateBackendConfig(c).ok());

  c = BackendConfig();
  c.queue.backend = "kafka";
  EXPECT_THAT(Message(ValidateBackendConfig(c)), HasSubstr("queue.brokers: required"));
  c.rows.backend = "rados";
  c.queue.brokers = {"127.0.0.1:9092"};
  c.rows.ceph_conf = "";
  EXPECT_THAT(Message(ValidateBackendConfig(c)), HasSubstr("rows.ceph_conf: required"));
}

TEST(ResolveS3Credentials, EnvironmentStrataNamesFirstThenAws) {
  BlobsBackendConfig b;
  std::map<std::string, std::string> env = {{"AWS_ACCESS_KEY_ID", "aws-a"},
                                            {"AWS_SECRET_ACCESS_KEY", "aws-s"}};
  auto getenv = [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto c = ResolveS3Credentials(b, getenv);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key, "aws-a");
  env["STRATA_S3_ACCESS_KEY"] = "st-a";
  env["STRATA_S3_SECRET_KEY"] = "st-s";
  c = ResolveS3Credentials(b, getenv);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key, "st-a");
  EXPECT_EQ(c->secret_key, "st-s");
  env.clear();
  c = ResolveS3Credentials(b, getenv);
  EXPECT_TRUE(absl::IsInvalidArgument(c.status()));
  EXPECT_THAT(Message(c.status()), HasSubstr("STRATA_S3_ACCESS_KEY"));
}

TEST(ResolveS3Credentials, FileWinsOverTheEnvironment) {
  const std::string path = ::testing::TempDir() + "/strata-s3-credentials";
  {
    std::ofstream f(path);
    f << "[default]\n# a comment\naws_access_key_id = file-a\nsecret_key=\"file-s\"\n";
  }
  BlobsBackendConfig b;
  b.credentials_file = path;
  auto getenv = [](const char*) -> const char* { return "env"; };
  auto c = ResolveS3Credentials(b, getenv);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key, "file-a");
  EXPECT_EQ(c->secret_key, "file-s");
  {
    std::ofstream f(path);
    f << "access_key = only\n";
  }
  EXPECT_THAT(Message(ResolveS3Credentials(b, getenv).status()),
              HasSubstr("blobs.credentials_file"));
  b.credentials_file = path + ".missing";
  EXPECT_THAT(Message(ResolveS3Credentials(b, getenv).status()),
              HasSubstr("blobs.credentials_file: cannot read"));
  std::filesystem::remove(path);
}

// A cluster that cannot be reached at start is an error naming the backend and where it was
// looked for (here: a Ceph client config that does not exist).
TEST(OpenBackends, AnUnreachableBackendIsNamed) {
  ServerConfig config;
  config.data_dir = ::testing::TempDir() + "/strata-backends-test";
  config.backends.rows.backend = "rados";
  config.backends.rows.ceph_conf = config.data_dir + "/no-such-ceph.conf";
  auto b = OpenBackends(config, MetricsRegistry::Default());
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(Message(b.status()), HasSubstr("rows backend \"rados\""));
  EXPECT_THAT(Message(b.status()), HasSubstr("no-such-ceph.conf"));
  std::filesystem::remove_all(config.data_dir);
}

}  // namespace
}  // namespace strata::server
