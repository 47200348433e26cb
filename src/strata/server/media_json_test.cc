#include "strata/server/media_json.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <random>

#include "strata/blob/local/local_blob_store.h"
#include "strata/server/api.h"
#include "strata/store/memory_row_store.h"

namespace strata::server {
namespace {

constexpr Millis kDay = 86'400'000;

TEST(MediaJson, BucketPolicyParsesDurationsAndNamesBadFields) {
  auto p = ParseBucketPolicy(R"({"ttl": "30d", "grace": "12h", "storage_class": "cold"})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->ttl_ms, 30 * kDay);
  EXPECT_EQ(p->grace_ms, 12 * 3'600'000);
  EXPECT_EQ(p->storage_class, "cold");
  p = ParseBucketPolicy(R"({"ttl": null})");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->ttl_ms, 0);
  EXPECT_EQ(p->grace_ms, 7 * kDay);
  EXPECT_TRUE(ParseBucketPolicy("").ok());
  auto expect_field = [](std::string_view body, std::string_view field) {
    auto r = ParseBucketPolicy(body);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << body;
    EXPECT_EQ(std::string(r.status().message()).substr(0, field.size()), field) << r.status();
  };
  expect_field(R"({"ttl": "30x"})", "ttl:");
  expect_field(R"({"ttl": 30})", "ttl:");
  expect_field(R"({"grace": "-1d"})", "grace:");
  expect_field(R"({"storage_class": 1})", "storage_class:");
  expect_field(R"({"colour": "red"})", "colour:");
  expect_field("[1]", "body:");
  expect_field("{", "body:");
  // Nothing may follow the object (the parser used to stop reading at its end).
  expect_field(R"({"ttl": "1d"} {})", "body: unexpected content");
  expect_field(R"({"ttl": "1d"} })", "body: unexpected content");
  EXPECT_TRUE(ParseBucketPolicy("{\"ttl\": \"1d\"}\r\n ").ok());
}

TEST(MediaJson, RangeHeaders) {
  auto r = ParseRange("bytes=0-99", 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first, 0u);
  EXPECT_EQ(r->length, 100u);
  r = ParseRange("bytes=990-", 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->length, 10u);
  r = ParseRange("bytes=-50", 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first, 950u);
  r = ParseRange("bytes=-5000", 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first, 0u);
  EXPECT_EQ(r->length, 1000u);
  r = ParseRange("bytes=900-5000", 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->length, 100u);
  for (const char* bad :
       {"0-9", "bytes=", "bytes=a-b", "bytes=5-1", "bytes=0-1,3-4", "items=0-1", "bytes=--1"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ParseRange(bad, 1000).status())) << bad;
  }
  EXPECT_TRUE(absl::IsOutOfRange(ParseRange("bytes=1000-", 1000).status()));
  EXPECT_TRUE(absl::IsOutOfRange(ParseRange("bytes=0-", 0).status()));
  EXPECT_TRUE(absl::IsOutOfRange(ParseRange("bytes=-0", 10).status()));
}

TEST(MediaJson, PathSegments) {
  EXPECT_EQ(DecodePathSegment("a%20b+c%2Fd", "key").value(), "a b+c/d");
  EXPECT_TRUE(absl::IsInvalidArgument(DecodePathSegment("a%2", "key").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(DecodePathSegment("a%zz", "key").status()));
}

// The media routes through Api::Handle (the whole-body fallback of PUT), on memory stores.
class MediaApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("strata_media_api_" + std::to_string(std::random_device{}())))
               .string();
    rows_ = std::make_unique<store::MemoryRowStore>(&clock_);
    blob::LocalBlobStoreOptions o;
    o.root = dir_;
    o.part_bytes = 4096;
    o.sync = false;
    blobs_ = *blob::LocalBlobStore::Open(o);
    media_ = *media::MediaService::Open(rows_.get(), blobs_.get(), &clock_, &metrics_);
    api_ = std::make_unique<Api>(nullptr, media_.get(), &metrics_, AdminHooks{});
  }
  void TearDown() override {
    api_.reset();
    media_.reset();
    blobs_.reset();
    std::filesystem::remove_all(dir_);
  }
  http::Response Call(std::string method, std::string target, std::string body = "",
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::Request r;
    r.method = std::move(method);
    r.target = target;
    size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    r.body = std::move(body);
    r.headers = std::move(headers);
    http::Response out = api_->Handle(r);
    if (!out.defer) return out;
    // Deferred (a listing runs on the bulk pool): the answer it replies with.
    std::promise<http::Response> replied;
    out.defer([&replied](http::Response reply) { replied.set_value(std::move(reply)); });
    return replied.get_future().get();
  }

  ManualClock clock_;
  MetricsRegistry metrics_;
  std::string dir_;
  std::unique_ptr<store::MemoryRowStore> rows_;
  std::unique_ptr<blob::LocalBlobStore> blobs_;
  std::unique_ptr<media::MediaService> media_;
  std::unique_ptr<Api> api_;
};

// DNS rebinding (a foreign Host) and cross-site requests (a foreign Origin on a
// state-changing method) are refused once the server names its hosts.
TEST_F(MediaApiTest, HostAndOriginChecks) {
  api_->SetAllowedHosts({"localhost", "127.0.0.1", "::1", "media.example"});
  using H = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(Call("GET", "/healthz", "", H{{"host", "127.0.0.1:8080"}}).status, 200);
  EXPECT_EQ(Call("GET", "/healthz", "", H{{"host", "[::1]:8080"}}).status, 200);
  EXPECT_EQ(Call("GET", "/healthz", "", H{{"host", "Media.Example"}}).status, 200);
  auto r = Call("GET", "/healthz", "", H{{"host", "evil.example:8080"}});
  EXPECT_EQ(r.status, 421);
  EXPECT_NE(r.body.find("host: 'evil.example'"), std::string::npos) << r.body;
  // RFC 9112 3.2: no Host, or two, is a 400 (two could be read differently by a proxy).
  r = Call("GET", "/healthz", "");
  EXPECT_EQ(r.status, 400) << "no Host at all";
  EXPECT_NE(r.body.find("host: required"), std::string::npos) << r.body;
  r = Call("GET", "/healthz", "", H{{"host", "127.0.0.1"}, {"host", "evil.example"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("host: more than one Host header"), std::string::npos) << r.body;
  // The audit's request: a cross-site POST to an admin action.
  r = Call("PUT", "/v1/buckets/clips", "{}",
           H{{"host", "127.0.0.1:8080"}, {"origin", "http://evil.example"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("origin:"), std::string::npos) << r.body;
  EXPECT_EQ(Call("GET", "/v1/buckets/clips", "", H{{"host", "127.0.0.1"}}).status, 404)
      << "the refused PUT changed nothing";
  // Same-origin pages and non-browser clients (no Origin) may write; reads need no Origin.
  EXPECT_EQ(Call("PUT", "/v1/buckets/clips", "{}",
                 H{{"host", "127.0.0.1:8080"}, {"origin", "http://127.0.0.1:8080"}})
                .status,
            200);
  EXPECT_EQ(Call("PUT", "/v1/buckets/clips2", "{}", H{{"host", "localhost"}}).status, 200);
  EXPECT_EQ(Call("GET", "/healthz", "",
                 H{{"host", "localhost"}, {"origin", "http://evil.example"}})
                .status,
            200);
}

// Only origin-form targets are routed ("healthz" used to be served as /healthz), every 405
// names the method, and /healthz and /metrics answer GET and HEAD only.
TEST_F(MediaApiTest, TargetsAndMethods) {
  for (const char* target : {"healthz", "*", "http://other.example/healthz"}) {
    http::Response r = Call("GET", target);
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_NE(r.body.find("path: the request target must start with '/'"), std::string::npos)
        << r.body;
  }
  for (const char* method : {"POST", "DELETE", "PUT"}) {
    EXPECT_EQ(Call(method, "/healthz").status, 405) << method;
    EXPECT_EQ(Call(method, "/metrics").status, 405) << method;
  }
  EXPECT_EQ(Call("HEAD", "/healthz").status, 200);
  http::Response r = Call("PATCH", "/v1/buckets/clips");
  EXPECT_EQ(r.status, 405);
  EXPECT_NE(r.body.find("method: PATCH is not allowed on this path"), std::string::npos) << r.body;
  r = Call(std::string(100, 'X'), "/v1/viewing/events");
  EXPECT_NE(r.body.find("method: " + std::string(32, 'X') + "... is not allowed"),
            std::string::npos)
      << r.body;
}

TEST_F(MediaApiTest, RoutesAndErrors) {
  EXPECT_EQ(Call("PUT", "/v1/buckets/clips", R"({"ttl":"7d"})").status, 200);
  auto r = Call("GET", "/v1/buckets/clips");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("ttl":"7d")"), std::string::npos) << r.body;
  EXPECT_EQ(Call("GET", "/v1/buckets/nope").status, 404);
  EXPECT_EQ(Call("PUT", "/v1/buckets/Bad_Name", "{}").status, 400);
  r = Call("PUT", "/v1/buckets/clips/objects/a%20b/c.txt", std::string(10000, 'q'),
           {{"content-type", "text/plain"}, {"x-strata-meta-lang", "en"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("key":"a b/c.txt")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("parts":3)"), std::string::npos) << r.body;
  r = Call("GET", "/v1/buckets/clips/objects/a%20b/c.txt", "", {{"range", "bytes=9998-"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, "qq");
  r = Call("GET", "/v1/buckets/clips/objects/a%20b/c.txt", "", {{"range", "bytes=10000-"}});
  EXPECT_EQ(r.status, 416);
  r = Call("GET", "/v1/buckets/clips/objects/a%20b/c.txt", "", {{"range", "bytes=x"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("range:"), std::string::npos);
  EXPECT_EQ(Call("GET", "/v1/buckets/clips/objects?meta.lang=en").body.find("a b/c.txt") !=
                std::string::npos,
            true);
  EXPECT_EQ(Call("GET", "/v1/buckets/clips/objects?meta.a=1&meta.b=2").status, 400);
  for (const char* query :
       {"limit=%2010", "limit=%2B10", "limit=-0", "prefix=%FF", "after=a%C0%AF"}) {
    r = Call("GET", std::string("/v1/buckets/clips/objects?") + query);
    EXPECT_EQ(r.status, 400) << query << ": " << r.body;
    EXPECT_NE(r.body.find(std::string(query).substr(0, std::string(query).find('=')) + ": "),
              std::string::npos)
        << r.body;
  }
  EXPECT_EQ(Call("DELETE", "/v1/buckets/clips/objects/a%20b/c.txt").status, 200);
  EXPECT_EQ(Call("HEAD", "/v1/buckets/clips/objects/a%20b/c.txt").status, 404);
  EXPECT_EQ(Call("POST", "/v1/buckets/clips/objects/a%20b/c.txt:restore").status, 200);
  EXPECT_EQ(Call("POST", "/v1/buckets/clips/objects/a%20b/c.txt:restore").status, 409);
  EXPECT_EQ(Call("POST", "/v1/buckets/clips/objects/a%20b/c.txt").status, 405);
  EXPECT_EQ(Call("PUT", "/v1/buckets/clips/objects/x", "", {{"x-strata-ttl", "soon"}}).status, 400);
  EXPECT_EQ(Call("PUT", "/v1/buckets/missing/objects/x", "").status, 404);
  EXPECT_EQ(Call("GET", "/v1/buckets/clips/objects?limit=0").status, 400);

  // Active content is a download, not a page on the API's origin.
  r = Call("PUT", "/v1/buckets/clips/objects/page.html", "<script>alert(1)</script>",
           {{"content-type", "text/html; charset=utf-8"}});
  ASSERT_EQ(r.status, 200) << r.body;
  r = Call("GET", "/v1/buckets/clips/objects/page.html");
  ASSERT_EQ(r.status, 200);
  auto has = [&](std::string_view name, std::string_view value) {
    for (const auto& [n, v] : r.headers) {
      if (n == name && v == value) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("Content-Disposition", "attachment"));
  ASSERT_EQ(Call("PUT", "/v1/buckets/clips/objects/plain.txt", "hello",
                 {{"content-type", "text/plain"}})
                .status,
            200);
  r = Call("GET", "/v1/buckets/clips/objects/plain.txt");
  ASSERT_EQ(r.status, 200);
  EXPECT_FALSE(has("Content-Disposition", "attachment")) << "plain data stays inline";
  EXPECT_TRUE(IsActiveContentType(" Image/SVG+XML ;x=1"));
  EXPECT_FALSE(IsActiveContentType("video/mp4"));
  // A key that is not UTF-8 (percent-decoded from the path) is refused, naming the key.
  r = Call("PUT", "/v1/buckets/clips/objects/bad%FFkey", "x");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("key: must be valid UTF-8"), std::string::npos) << r.body;
}

}  // namespace
}  // namespace strata::server

namespace strata::server {
namespace {

// Flips one byte in the middle of every stored blob file under `dir` (not the temp area).
int DamageBlobFiles(const std::string& dir) {
  int damaged = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().string().find("~tmp") != std::string::npos) continue;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    const auto size = static_cast<std::streamoff>(e.file_size());
    if (size == 0) continue;
    f.seekg(size / 2);
    char c = 0;
    f.get(c);
    f.seekp(size / 2);
    f.put(static_cast<char>(c ^ 0x5a));
    ++damaged;
  }
  return damaged;
}

// Damaged bytes are never served as if they were good: a whole-object read that does not
// match the stored XXH3 answers 500 (small objects) or withholds its last piece (streamed
// ones, whose status line went out first), and both count in the metric.
TEST_F(MediaApiTest, DamagedBytesAreNeverServedSilently) {
  ASSERT_EQ(Call("PUT", "/v1/buckets/clips", "{}").status, 200);
  ASSERT_EQ(Call("PUT", "/v1/buckets/clips/objects/small", std::string(10000, 's')).status, 200);
  std::string big;
  for (int i = 0; big.size() < 600'000; ++i) big += std::to_string(i) + ",";
  ASSERT_EQ(Call("PUT", "/v1/buckets/clips/objects/big", big).status, 200);
  // Before any damage both read back whole, and stream to the end.
  EXPECT_EQ(Call("GET", "/v1/buckets/clips/objects/small").body, std::string(10000, 's'));
  auto r = Call("GET", "/v1/buckets/clips/objects/big");
  ASSERT_TRUE(r.stream);
  std::string got;
  while (got.size() < r.stream_length) ASSERT_TRUE(r.stream(&got).ok());
  EXPECT_EQ(got, big);

  ASSERT_GT(DamageBlobFiles(dir_), 1);
  r = Call("GET", "/v1/buckets/clips/objects/small");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("checksum"), std::string::npos) << r.body;
  r = Call("GET", "/v1/buckets/clips/objects/big");
  ASSERT_EQ(r.status, 200);  // the status line goes out before the bytes are read
  ASSERT_TRUE(r.stream);
  got.clear();
  absl::Status s;
  while (s.ok() && got.size() < r.stream_length) {
    std::string piece;
    s = r.stream(&piece);
    if (s.ok()) got += piece;
  }
  EXPECT_TRUE(absl::IsInternal(s)) << s;
  EXPECT_LT(got.size(), r.stream_length) << "the last piece must be withheld";
  // A range is not checked (the checksum covers the whole object).
  EXPECT_EQ(Call("GET", "/v1/buckets/clips/objects/small", "", {{"range", "bytes=0-9"}}).status,
            206);
  EXPECT_NE(metrics_.RenderPrometheus().find("strata_media_checksum_mismatches_total 2"),
            std::string::npos);
}

}  // namespace
}  // namespace strata::server
