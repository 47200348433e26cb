// The S3 BlobStore against the radosgw of the throwaway cluster: the shared conformance suite
// (on versioned buckets, where the contract holds in full), then what is S3's own: multipart
// and ranges across parts, aborted uploads, listing past 1000 names, credentials, the
// unversioned bucket's weaker reader guarantee, stale-upload cleanup, and byte-identical
// interchange with an independent S3 client (boto3). Each test uses a fresh bucket.
#include "strata/blob/s3/s3_blob_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "strata/blob/blob_store_conformance.h"
#include "strata/blob/s3/s3_test_support.h"

namespace strata::blob {
namespace {

using s3_testing::AllowSmallParts;
using s3_testing::ClusterOptions;
using s3_testing::S3ClusterMissing;

std::string Pattern(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

void SkipWithoutCluster(bool* skipped) {
  std::string why = S3ClusterMissing();
  *skipped = !why.empty();
  if (!why.empty() && std::getenv("STRATA_CLUSTER_ENV") == nullptr) GTEST_SKIP() << why;
  ASSERT_TRUE(why.empty()) << why;
}

// A store on a fresh bucket that is dropped (every version, every upload) when destroyed.
class TempS3Store final : public BlobStore {
 public:
  explicit TempS3Store(std::unique_ptr<S3BlobStore> s) : s_(std::move(s)) {}
  ~TempS3Store() override {
    absl::Status st = s_->DropBucket();
    EXPECT_TRUE(st.ok()) << st;
  }
  absl::StatusOr<std::unique_ptr<BlobWriter>> NewWriter(std::string_view n) override {
    return s_->NewWriter(n);
  }
  absl::StatusOr<std::unique_ptr<BlobReader>> NewReader(std::string_view n) override {
    return s_->NewReader(n);
  }
  absl::StatusOr<BlobInfo> Stat(std::string_view n) override { return s_->Stat(n); }
  absl::Status Delete(std::string_view n) override { return s_->Delete(n); }
  absl::Status DeleteMany(std::span<const std::string> names) override {
    return s_->DeleteMany(names);
  }
  std::vector<absl::Status> DeleteEach(std::span<const std::string> names) override {
    return s_->DeleteEach(names);
  }
  absl::StatusOr<ListPage> List(std::string_view p, std::string_view a, size_t l) override {
    return s_->List(p, a, l);
  }
  S3BlobStore* s3() { return s_.get(); }

 private:
  std::unique_ptr<S3BlobStore> s_;
};

std::unique_ptr<TempS3Store> OpenTemp(uint64_t part_bytes, bool versioned) {
  absl::StatusOr<std::unique_ptr<S3BlobStore>> s =
      S3BlobStore::Open(ClusterOptions(part_bytes, versioned));
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return nullptr;
  EXPECT_EQ((*s)->versioned(), versioned);
  return std::make_unique<TempS3Store>(std::move(*s));
}

INSTANTIATE_BLOB_STORE_CONFORMANCE(S3, [](uint64_t part_bytes) -> std::unique_ptr<BlobStore> {
  bool skipped = false;
  SkipWithoutCluster(&skipped);
  if (skipped) return nullptr;
  AllowSmallParts();
  return OpenTemp(part_bytes, /*versioned=*/true);
});

class S3BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bool skipped = false;
    SkipWithoutCluster(&skipped);
    if (skipped) return;
    AllowSmallParts();
  }
  static constexpr uint64_t kPart = 64 << 10;
};

TEST_F(S3BlobStoreTest, MultipartAboveThresholdWithRangesAcrossPartBoundaries) {
  auto store = OpenTemp(kPart, true);
  ASSERT_NE(store, nullptr);
  const std::string data = Pattern(5 * kPart + 17, 42);
  auto w = store->NewWriter("mp/big");
  ASSERT_TRUE(w.ok());
  // Appends of an odd size, so parts fill across appends.
  for (size_t off = 0; off < data.size(); off += 10007) {
    ASSERT_TRUE((*w)->Append(std::string_view(data).substr(off, 10007)).ok());
  }
  EXPECT_EQ((*w)->parts(), 6u);
  // Not visible, and an incomplete upload exists until Commit.
  EXPECT_TRUE(absl::IsNotFound(store->Stat("mp/big").status()));
  auto uploads = store->s3()->ListIncompleteUploads();
  ASSERT_TRUE(uploads.ok()) << uploads.status();
  ASSERT_EQ(uploads->size(), 1u);
  EXPECT_EQ((*uploads)[0].name, "mp/big");
  ASSERT_TRUE((*w)->Commit().ok());
  uploads = store->s3()->ListIncompleteUploads();
  ASSERT_TRUE(uploads.ok());
  EXPECT_TRUE(uploads->empty());

  auto info = store->Stat("mp/big");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(info->parts, 6u);
  auto r = store->NewReader("mp/big");
  ASSERT_TRUE(r.ok());
  for (auto [off, n] : std::vector<std::pair<uint64_t, size_t>>{{kPart - 1, 2},
                                                                {kPart - 100, kPart + 200},
                                                                {2 * kPart, kPart},
                                                                {3 * kPart - 7, 2 * kPart + 30},
                                                                {0, data.size()},
                                                                {5 * kPart, 1000}}) {
    std::string out = "prefix:";
    ASSERT_TRUE((*r)->ReadAt(off, n, &out).ok()) << off;
    EXPECT_EQ(out, "prefix:" + data.substr(off, n)) << "offset " << off;
  }
  // The listing reports the part count too.
  auto page = store->List("mp/", "", 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->blobs.size(), 1u);
  EXPECT_EQ(page->blobs[0].parts, 6u);
  EXPECT_EQ(page->blobs[0].size, data.size());
}

TEST_F(S3BlobStoreTest, DestroyedWriterLeavesNoObjectAndNoIncompleteUpload) {
  auto store = OpenTemp(kPart, false);
  ASSERT_NE(store, nullptr);
  {
    auto w = store->NewWriter("ab/x");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(Pattern(3 * kPart + 5, 1)).ok());
    auto uploads = store->s3()->ListIncompleteUploads();
    ASSERT_TRUE(uploads.ok());
    EXPECT_EQ(uploads->size(), 1u);
  }
  auto uploads = store->s3()->ListIncompleteUploads();
  ASSERT_TRUE(uploads.ok());
  EXPECT_TRUE(uploads->empty());
  EXPECT_TRUE(absl::IsNotFound(store->Stat("ab/x").status()));
  auto page = store->List("", "", 10);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->blobs.empty());
}

TEST_F(S3BlobStoreTest, ListingContinuesPastAThousandNamesAndDeleteManyBatches) {
  auto store = OpenTemp(kPart, false);
  ASSERT_NE(store, nullptr);
  constexpr int kNames = 1234;
  std::vector<std::string> names;
  for (int i = 0; i < kNames; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "many/%05d", i);
    names.push_back(buf);
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < names.size(); i += 4) {
        if (!store->Put(names[i], names[i]).ok()) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(store->Put("other", "o").ok());

  std::vector<std::string> seen;
  std::string after;
  std::vector<size_t> page_sizes;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = store->List("many/", after, kMaxListLimit);
    ASSERT_TRUE(page.ok()) << page.status();
    page_sizes.push_back(page->blobs.size());
    for (const BlobInfo& b : page->blobs) seen.push_back(b.name);
    after = page->next_after;
    if (after.empty()) break;
  }
  EXPECT_EQ(page_sizes, (std::vector<size_t>{1000, 234}));
  EXPECT_EQ(seen, names);

  ASSERT_TRUE(store->DeleteMany(names).ok());  // two DeleteObjects batches
  auto page = store->List("", "", kMaxListLimit);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->blobs.size(), 1u);
  EXPECT_EQ(page->blobs[0].name, "other");
}

TEST_F(S3BlobStoreTest, BadCredentialsGiveAClearError) {
  S3BlobStoreOptions o = ClusterOptions(kPart, false);
  o.credentials.secret_key = "not-the-secret";
  o.max_attempts = 1;
  auto s = S3BlobStore::Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(s.status())) << s.status();
  EXPECT_NE(s.status().message().find("SignatureDoesNotMatch"), std::string::npos) << s.status();
  EXPECT_NE(s.status().message().find("STRATA_S3_SECRET_KEY"), std::string::npos);

  o.credentials.access_key = "NOSUCHACCESSKEY00000";
  s = S3BlobStore::Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(s.status())) << s.status();
  EXPECT_NE(s.status().message().find("InvalidAccessKeyId"), std::string::npos) << s.status();
}

TEST_F(S3BlobStoreTest, MissingBucketAndBadOptionsAreNamed) {
  S3BlobStoreOptions o = ClusterOptions(kPart, false);
  o.create_bucket = false;
  auto s = S3BlobStore::Open(o);
  EXPECT_TRUE(absl::IsNotFound(s.status())) << s.status();
  EXPECT_NE(s.status().message().find(o.bucket), std::string::npos);
  S3BlobStoreOptions bad = o;
  bad.bucket = "Bad_Bucket";
  EXPECT_TRUE(absl::IsInvalidArgument(S3BlobStore::Open(bad).status()));
  bad = o;
  bad.part_bytes = 100;
  EXPECT_TRUE(absl::IsInvalidArgument(S3BlobStore::Open(bad).status()));
  bad = o;
  bad.endpoint = "127.0.0.1:80";
  EXPECT_TRUE(absl::IsInvalidArgument(S3BlobStore::Open(bad).status()));
}

TEST_F(S3BlobStoreTest, UnreachableEndpointIsUnavailableNamingIt) {
  S3BlobStoreOptions o = ClusterOptions(kPart, false);
  // A port that was free a moment ago: nothing listens there.
  std::string port;
  ASSERT_EQ(s3_testing::Run("python3 -c 'import socket; s=socket.socket(); "
                            "s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])'",
                            &port),
            0);
  while (!port.empty() && port.back() == '\n') port.pop_back();
  o.endpoint = "http://127.0.0.1:" + port;
  o.max_attempts = 3;
  o.initial_backoff_ms = 1;
  auto s = S3BlobStore::Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsUnavailable(s.status())) << s.status();
  EXPECT_NE(s.status().message().find(o.endpoint), std::string::npos) << s.status();
}

// DeleteEach (the GC sweep's call) against radosgw: a bucket policy denies s3:DeleteObject
// under "locked/", so the one DeleteObjects request answers AccessDenied for those keys and
// deletes the others; each key gets its own status, and once the policy is gone the keys that
// failed go too (what the sweep's next attempt does).
TEST_F(S3BlobStoreTest, DeleteEachReportsTheKeysThatFailedAndDeletesTheRest) {
  auto store = OpenTemp(kPart, false);
  ASSERT_NE(store, nullptr);
  const std::vector<std::string> names = {"free/a", "locked/b", "free/c", "locked/d",
                                          "free/never-written"};
  for (const std::string& n : names) {
    if (n == "free/never-written") continue;
    ASSERT_TRUE(store->Put(n, "bytes of " + n).ok()) << n;
  }
  const std::string bucket = store->s3()->bucket();
  const std::string policy =
      R"({"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":["*"]},)"
      R"("Action":"s3:DeleteObject","Resource":["arn:aws:s3:::)" +
      bucket + R"(/locked/*"]}]})";
  std::string out;
  ASSERT_EQ(s3_testing::SetBucketPolicy(bucket, policy, &out), 0) << out;

  std::vector<absl::Status> got = store->s3()->DeleteEach(names);
  ASSERT_EQ(got.size(), names.size());
  EXPECT_TRUE(got[0].ok()) << got[0];
  EXPECT_TRUE(absl::IsPermissionDenied(got[1])) << got[1];
  EXPECT_NE(got[1].message().find("locked/b"), std::string_view::npos) << got[1];
  EXPECT_NE(got[1].message().find("AccessDenied"), std::string_view::npos) << got[1];
  EXPECT_TRUE(got[2].ok()) << got[2];
  EXPECT_TRUE(absl::IsPermissionDenied(got[3])) << got[3];
  EXPECT_TRUE(got[4].ok()) << got[4];  // absent: deleted as far as the caller cares
  EXPECT_TRUE(absl::IsNotFound(store->Stat("free/a").status()));
  EXPECT_TRUE(absl::IsNotFound(store->Stat("free/c").status()));
  EXPECT_EQ(store->Read("locked/b", 0, 100).value_or(""), "bytes of locked/b");
  EXPECT_EQ(store->Read("locked/d", 0, 100).value_or(""), "bytes of locked/d");
  // DeleteMany answers the first failure.
  EXPECT_TRUE(absl::IsPermissionDenied(store->DeleteMany(names)));

  ASSERT_EQ(s3_testing::SetBucketPolicy(bucket, "", &out), 0) << out;
  got = store->s3()->DeleteEach(names);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(got[i].ok()) << names[i] << ": " << got[i];
  EXPECT_TRUE(absl::IsNotFound(store->Stat("locked/b").status()));
  EXPECT_TRUE(absl::IsNotFound(store->Stat("locked/d").status()));
  // An invalid name is its own failure; the valid ones of the call are still deleted.
  ASSERT_TRUE(store->Put("free/e", "e").ok());
  got = store->s3()->DeleteEach(std::vector<std::string>{"bad//name", "free/e"});
  EXPECT_TRUE(absl::IsInvalidArgument(got[0])) << got[0];
  EXPECT_TRUE(got[1].ok()) << got[1];
  EXPECT_TRUE(absl::IsNotFound(store->Stat("free/e").status()));
}

TEST_F(S3BlobStoreTest, UnversionedBucketIsWriteOnceAtomicallyAndReadersPinTheEtag) {
  auto store = OpenTemp(kPart, false);
  ASSERT_NE(store, nullptr);
  // If-None-Match: * on the single PUT: exactly one of concurrent writers wins.
  for (int round = 0; round < 5; ++round) {
    const std::string name = "race/" + std::to_string(round);
    std::atomic<int> ok{0}, exists{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        absl::Status s = store->Put(name, "writer " + std::to_string(t));
        if (s.ok()) ok.fetch_add(1);
        if (absl::IsAlreadyExists(s)) exists.fetch_add(1);
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(ok.load(), 1) << name;
    EXPECT_EQ(exists.load(), 3) << name;
  }
  // A multipart writer of an existing name: AlreadyExists, the old bytes stay, no upload left.
  ASSERT_TRUE(store->Put("w/once", "first").ok());
  EXPECT_TRUE(absl::IsAlreadyExists(store->Put("w/once", Pattern(2 * kPart + 1, 3))));
  EXPECT_EQ(store->Read("w/once", 0, 100).value_or(""), "first");
  auto uploads = store->s3()->ListIncompleteUploads();
  ASSERT_TRUE(uploads.ok());
  EXPECT_TRUE(uploads->empty());

  // The weaker guarantee of an unversioned bucket: a reader never sees other bytes than it
  // opened, but a Delete ends it (NotFound), also when the name is written again.
  ASSERT_TRUE(store->Put("r/x", "old bytes").ok());
  auto r = store->NewReader("r/x");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(store->Delete("r/x").ok());
  std::string out;
  EXPECT_TRUE(absl::IsNotFound((*r)->ReadAt(0, 3, &out)));
  ASSERT_TRUE(store->Put("r/x", "new bytes").ok());
  EXPECT_TRUE(absl::IsNotFound((*r)->ReadAt(0, 3, &out)));
  EXPECT_EQ(out, "");
}

TEST_F(S3BlobStoreTest, VersionedReaderKeepsItsVersionAcrossDeleteAndRewrite) {
  auto store = OpenTemp(kPart, true);
  ASSERT_NE(store, nullptr);
  const std::string old_bytes = Pattern(2 * kPart + 9, 5);
  ASSERT_TRUE(store->Put("v/x", old_bytes).ok());
  auto r = store->NewReader("v/x");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(store->Delete("v/x").ok());
  EXPECT_TRUE(absl::IsNotFound(store->Stat("v/x").status()));
  auto page = store->List("v/", "", 10);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->blobs.empty());
  ASSERT_TRUE(store->Put("v/x", "new").ok());
  std::string out;
  ASSERT_TRUE((*r)->ReadAt(kPart - 3, kPart + 6, &out).ok());
  EXPECT_EQ(out, old_bytes.substr(kPart - 3, kPart + 6));
  EXPECT_EQ(store->Read("v/x", 0, 10).value_or(""), "new");
  // Write-once still holds after the rewrite.
  EXPECT_TRUE(absl::IsAlreadyExists(store->Put("v/x", "third")));
  EXPECT_EQ(store->Read("v/x", 0, 10).value_or(""), "new");
}

TEST_F(S3BlobStoreTest, OpenAbortsUploadsOlderThanItsAgeLimit) {
  auto store = OpenTemp(kPart, false);
  ASSERT_NE(store, nullptr);
  auto w = store->NewWriter("crashed/writer");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(Pattern(2 * kPart, 8)).ok());  // one part uploaded
  auto uploads = store->s3()->ListIncompleteUploads();
  ASSERT_TRUE(uploads.ok());
  ASSERT_EQ(uploads->size(), 1u);

  S3BlobStoreOptions o = ClusterOptions(kPart, false);
  o.bucket = store->s3()->bucket();
  // A store opened now with the default age (1 day) leaves the young upload alone...
  ASSERT_TRUE(S3BlobStore::Open(o).ok());
  uploads = store->s3()->ListIncompleteUploads();
  ASSERT_TRUE(uploads.ok());
  EXPECT_EQ(uploads->size(), 1u);
  // ...and one whose clock reads two days later aborts it, as it would a crashed writer's.
  ManualClock later(SystemClock::Default()->NowMillis() + 2 * 24 * 3600 * 1000ll);
  o.clock = &later;
  ASSERT_TRUE(S3BlobStore::Open(o).ok());
  uploads = store->s3()->ListIncompleteUploads();
  ASSERT_TRUE(uploads.ok());
  EXPECT_TRUE(uploads->empty());
  // The writer whose upload was cleared cannot commit: an error, and nothing visible.
  absl::Status commit = (*w)->Commit();
  EXPECT_FALSE(commit.ok());
  EXPECT_TRUE(absl::IsNotFound(store->Stat("crashed/writer").status()));
}

TEST_F(S3BlobStoreTest, ConnectionsAreReused) {
  auto store = OpenTemp(kPart, false);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("c/x", "x").ok());
  const uint64_t before = store->s3()->connections_opened();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(store->Stat("c/x").ok());
  // One thread, one pooled handle: its connection is kept alive across the 50 requests.
  EXPECT_LE(store->s3()->connections_opened() - before, 1u);
}

// An independent client (boto3) reads what Strata wrote, and Strata reads what it wrote,
// byte for byte, single-part and multipart both ways.
TEST_F(S3BlobStoreTest, Boto3ReadsWhatStrataWroteAndTheReverse) {
  if (s3_testing::Run("python3 -c 'import boto3' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-boto3 is not installed";
  }
  auto store = OpenTemp(kPart, false);
  ASSERT_NE(store, nullptr);
  S3BlobStoreOptions o = ClusterOptions(kPart, false);
  const std::string small = Pattern(1000, 11);
  const std::string big = Pattern(4 * kPart + 333, 12);
  ASSERT_TRUE(store->Put("interop/strata small", small).ok());
  ASSERT_TRUE(store->Put("interop/strata+big~ü", big).ok());

  const std::string dir =
      ::testing::TempDir() + "strata_s3_interop_" + s3_testing::FreshBucketName();
  ASSERT_EQ(s3_testing::Run("mkdir -p " + dir), 0);
  const std::string boto_big = Pattern(6 << 20, 13);  // boto3 splits at its own 5 MiB chunks
  {
    std::ofstream f(dir + "/boto_big", std::ios::binary);
    f << boto_big;
  }
  // The bucket name is not in `o` (fresh); read it from a listing-free source: the store's
  // own bucket is the one to use, so pass it through the environment of the script.
  const std::string script = R"PY(
import os, sys, boto3
from boto3.s3.transfer import TransferConfig
s3 = boto3.client("s3", endpoint_url=os.environ["EP"], region_name=os.environ["RG"],
                  aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"])
b, d = os.environ["BK"], os.environ["DIR"]
s3.download_file(b, "interop/strata small", d + "/got_small")
s3.download_file(b, "interop/strata+big~\u00fc", d + "/got_big")
s3.upload_file(d + "/boto_big", b, "interop/boto big",
               Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
s3.put_object(Bucket=b, Key="interop/boto small", Body=b"written by boto3")
)PY";
  {
    std::ofstream f(dir + "/interop.py");
    f << script;
  }
  const std::string env = "EP='" + o.endpoint + "' RG='" + o.region + "' AK='" +
                          o.credentials.access_key + "' SK='" + o.credentials.secret_key +
                          "' BK='" + store->s3()->bucket() + "' DIR='" + dir + "' ";
  std::string out;
  ASSERT_EQ(s3_testing::Run(env + "python3 " + dir + "/interop.py 2>&1", &out), 0) << out;
  auto slurp = [](const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  EXPECT_TRUE(slurp(dir + "/got_small") == small);
  EXPECT_TRUE(slurp(dir + "/got_big") == big);
  auto info = store->Stat("interop/boto big");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->size, boto_big.size());
  EXPECT_EQ(info->parts, 2u);  // boto3's own 5 MiB parts
  EXPECT_TRUE(store->Read("interop/boto big", 0, boto_big.size()).value_or("") == boto_big);
  EXPECT_EQ(store->Read("interop/boto small", 0, 100).value_or(""), "written by boto3");
  // Write-once holds against names another client wrote.
  EXPECT_TRUE(absl::IsAlreadyExists(store->Put("interop/boto small", "x")));
  s3_testing::Run("rm -rf " + dir);
}

TEST(S3CredentialsTest, FromFileAndEnvironment) {
  const std::string path =
      ::testing::TempDir() + "strata_s3_creds_" + s3_testing::FreshBucketName();
  {
    std::ofstream f(path);
    f << "# comment\n[default]\naws_access_key_id = AK1\naws_secret_access_key=SK1\n"
         "[other]\naws_access_key_id = AK2\naws_secret_access_key = SK2\n";
  }
  auto c = S3CredentialsFromFile(path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key, "AK1");
  EXPECT_EQ(c->secret_key, "SK1");
  {
    std::ofstream f(path);
    f << "access_key = A\n";
  }
  EXPECT_TRUE(absl::IsInvalidArgument(S3CredentialsFromFile(path).status()));
  EXPECT_TRUE(absl::IsNotFound(S3CredentialsFromFile(path + ".absent").status()));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace strata::blob
