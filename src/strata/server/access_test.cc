// The access policy (which scope each route needs, which requests are audited) and its
// enforcement in Api::Handle and the streamed object PUT, over an in-memory key store.
#include "strata/server/access.h"

#include <future>
#include <map>

#include "gtest/gtest.h"
#include "strata/server/api.h"
#include "strata/store/memory_row_store.h"

namespace strata::server {
namespace {

using auth::Scope;

std::string ScopeOf(std::string_view method, std::string_view path) {
  const RouteAccess a = ClassifyRequest(method, path);
  return a.scope ? std::string(auth::ScopeName(*a.scope)) : "open";
}

TEST(ClassifyRequestTest, EveryRouteFamilyNeedsItsScope) {
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"GET", "/healthz", "open"},
      {"GET", "/metrics", "metrics:read"},
      {"GET", "/dashboard", "metrics:read"},
      {"POST", "/v1/viewing/events", "viewing:write"},
      {"GET", "/v1/members/7/viewing", "viewing:read"},
      {"GET", "/v1/members/7/summary", "viewing:read"},
      {"GET", "/v1/members/7/languages", "viewing:read"},
      {"DELETE", "/v1/members/7", "viewing:write"},
      {"POST", "/v1/members/7:rollup", "admin"},
      {"POST", "/v1/members/7:rotate", "admin"},
      {"PUT", "/v1/buckets/media", "objects:write"},
      {"GET", "/v1/buckets/media", "objects:read"},
      {"PUT", "/v1/buckets/media/objects/a/b", "objects:write"},
      {"GET", "/v1/buckets/media/objects/a/b", "objects:read"},
      {"HEAD", "/v1/buckets/media/objects/a/b", "objects:read"},
      {"DELETE", "/v1/buckets/media/objects/a/b", "objects:write"},
      {"POST", "/v1/buckets/media/objects/a/b:restore", "objects:write"},
      {"GET", "/v1/buckets/media/objects", "objects:read"},
      {"PUT", "/v1/asset-types/video", "assets:write"},
      {"GET", "/v1/asset-types/video/changes", "assets:read"},
      {"POST", "/v1/assets/video", "assets:write"},
      {"POST", "/v1/assets/video:batch", "assets:write"},
      {"GET", "/v1/assets/video?where=/x=1", "assets:read"},
      {"PATCH", "/v1/assets/video/0192", "assets:write"},
      {"DELETE", "/v1/assets/video/0192", "assets:write"},
      {"POST", "/v1/reprocess/jobs", "assets:write"},
      {"GET", "/v1/reprocess/jobs/3", "assets:read"},
      {"POST", "/v1/reprocess/jobs/3/dead-letters:retry", "assets:write"},
      {"GET", "/v1/reprocess/progress", "metrics:read"},
      {"POST", "/v1/reprocess/progress", "assets:write"},
      {"POST", "/v1/reprocess/jobs/3:cancel", "assets:write"},
      {"GET", "/v1/gc/stats", "metrics:read"},
      {"GET", "/v1/gc/runs/1", "metrics:read"},
      {"POST", "/v1/gc/runs", "admin"},
      {"POST", "/v1/archive/runs", "admin"},
      {"GET", "/v1/admin/viewing/tables", "admin"},
      {"POST", "/v1/admin/viewing/tables", "admin"},
      {"GET", "/v1/admin/jobs", "admin"},
      {"GET", "/v1/admin/jobs/j1-1", "admin"},
      {"POST", "/v1/admin/viewing/caches:drop", "admin"},
      {"POST", "/v1/admin/backup", "admin"},
      {"GET", "/v1/admin/audit", "admin"},
      {"POST", "/v1/admin/keys", "admin"},
      // Unknown paths need admin: a route added without a rule is never open.
      {"GET", "/", "admin"},
      {"GET", "/v2/anything", "admin"},
      {"GET", "/v1/unknown/thing", "admin"},
      {"GET", "/healthz/x", "admin"},
  };
  for (const auto& [method, path, scope] : cases) {
    EXPECT_EQ(ScopeOf(method, path), scope) << method << " " << path;
  }
}

TEST(ClassifyRequestTest, AdminActionsAndHardDeletesAreAudited) {
  const std::map<std::pair<std::string, std::string>, std::string> audited = {
      {{"DELETE", "/v1/members/7"}, "member.erase"},
      {{"DELETE", "/v1/assets/video/0192"}, "asset.delete"},
      {{"POST", "/v1/gc/runs"}, "gc.run"},
      {{"POST", "/v1/archive/runs"}, "archive.run"},
      {{"POST", "/v1/admin/backup"}, "admin.backup"},
      {{"POST", "/v1/admin/compact"}, "admin.compact"},
      {{"POST", "/v1/admin/scrub:run"}, "admin.scrub"},
      {{"POST", "/v1/admin/viewing/tables"}, "admin.viewing_tables"},
      {{"POST", "/v1/admin/viewing/caches:drop"}, "admin.caches_drop"},
      {{"POST", "/v1/admin/viewing/rotation:sweep"}, "admin.rotation_sweep"},
      {{"POST", "/v1/admin/keys"}, "key.create"},
      {{"DELETE", "/v1/admin/keys/0123456789abcdef"}, "key.revoke"},
      {{"POST", "/v1/members/7:rollup"}, "member.rollup"},
      {{"POST", "/v1/admin/made-up/path"}, "admin.other"},
  };
  for (const auto& [request, action] : audited) {
    EXPECT_EQ(ClassifyRequest(request.first, request.second).action, action) << request.second;
  }
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/v1/admin/audit"},
           {"GET", "/v1/admin/keys"},
           {"DELETE", "/v1/buckets/m/objects/k"},  // a soft delete: restorable
           {"POST", "/v1/viewing/events"},
           {"GET", "/v1/gc/runs"}}) {
    EXPECT_EQ(ClassifyRequest(method, path).action, "") << method << " " << path;
  }
}

TEST(ClassifyRequestTest, BasicCredentialsOnlyOnReads) {
  EXPECT_TRUE(ClassifyRequest("GET", "/dashboard").allow_basic);
  EXPECT_TRUE(ClassifyRequest("HEAD", "/v1/buckets/m/objects/k").allow_basic);
  EXPECT_FALSE(ClassifyRequest("POST", "/v1/gc/runs").allow_basic);
  EXPECT_FALSE(ClassifyRequest("DELETE", "/v1/members/1").allow_basic);
}

TEST(IsLoopbackAddressTest, OnlyThisMachine) {
  for (const char* a : {"127.0.0.1", "127.1.2.3", "::1", "localhost", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackAddress(a)) << a;
  }
  for (const char* a : {"0.0.0.0", "::", "10.0.0.1", "192.168.1.5", "::ffff:10.0.0.1", "128.0.0.1",
                        "example.com", ""}) {
    EXPECT_FALSE(IsLoopbackAddress(a)) << a;
  }
}

http::Request Req(std::string method, std::string target, std::string token = "") {
  http::Request r;
  r.method = std::move(method);
  r.target = target;
  const size_t q = target.find('?');
  r.path = target.substr(0, q);
  if (q != std::string::npos) r.query = target.substr(q + 1);
  r.headers.emplace_back("host", "127.0.0.1:8080");
  if (!token.empty()) r.headers.emplace_back("authorization", "Bearer " + token);
  return r;
}

std::vector<std::string> Challenges(const http::Response& r) {
  std::vector<std::string> out;
  for (const auto& [name, value] : r.headers) {
    if (name == "WWW-Authenticate") out.push_back(value);
  }
  return out;
}

// An Api over an in-memory key store and audit log; compaction is the admin action that
// needs no service behind it.
class ApiAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_ = std::move(*auth::KeyStore::Open(&rows_, &clock_));
    audit_ = std::move(*auth::AuditLog::Open(&rows_, &clock_));
    authenticator_ = std::make_unique<auth::Authenticator>(keys_.get(), &clock_);
    AdminHooks hooks;
    hooks.compact = [] { return absl::OkStatus(); };
    api_ = std::make_unique<Api>(nullptr, nullptr, &metrics_, hooks);
    api_->SetAllowedHosts({"localhost", "127.0.0.1"});
    api_->SetAccessControl({authenticator_.get(), keys_.get(), audit_.get()});
  }
  std::string Key(std::initializer_list<Scope> scopes, std::string* id = nullptr) {
    absl::StatusOr<auth::NewKey> k = keys_->Create("test", auth::Scopes::Of(scopes), "test");
    EXPECT_TRUE(k.ok()) << k.status();
    authenticator_->NoteKeyCreated();
    if (id != nullptr) *id = k->record.id;
    return k->token;
  }
  std::vector<auth::AuditRecord> AuditRecords() {
    absl::StatusOr<std::vector<auth::AuditRecord>> r = audit_->Recent(100);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<auth::AuditRecord>{};
  }
  // A compaction's answer: deferred (it runs on the admin thread), so wait for it.
  http::Response Await(http::Response r) {
    if (!r.defer) return r;
    std::promise<http::Response> replied;
    r.defer([&replied](http::Response out) { replied.set_value(std::move(out)); });
    return replied.get_future().get();
  }

  ManualClock clock_{1'765'000'000'000};
  store::MemoryRowStore rows_{&clock_};
  MetricsRegistry metrics_;
  std::unique_ptr<auth::KeyStore> keys_;
  std::unique_ptr<auth::AuditLog> audit_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  std::unique_ptr<Api> api_;
};

TEST_F(ApiAccessTest, WithoutKeysEveryRequestIsAnonymousAndStillAudited) {
  // A compaction is a job: started (202) and audited at once.
  EXPECT_EQ(Await(api_->Handle(Req("POST", "/v1/admin/compact"))).status, 202);
  std::vector<auth::AuditRecord> records = AuditRecords();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].key, "anonymous");
  EXPECT_EQ(records[0].action, "admin.compact");
  EXPECT_EQ(records[0].target, "/v1/admin/compact");
  EXPECT_EQ(records[0].result, "ok");
  EXPECT_EQ(records[0].status, 202);
}

TEST_F(ApiAccessTest, OnceAKeyExistsRequestsNeedOne) {
  const std::string admin = Key({Scope::kAdmin});
  http::Response r = api_->Handle(Req("GET", "/v1/gc/status"));
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("\"unauthorized\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("requires an API key"), std::string::npos) << r.body;
  EXPECT_EQ(Challenges(r), (std::vector<std::string>{"Bearer realm=\"strata\"",
                                                     "Basic realm=\"strata\", charset=\"UTF-8\""}));

  r = api_->Handle(Req("POST", "/v1/admin/compact", "strata_nonsense"));
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("malformed API key"), std::string::npos) << r.body;
  EXPECT_EQ(Challenges(r),
            (std::vector<std::string>{"Bearer realm=\"strata\", error=\"invalid_token\""}));
  std::string wrong = admin;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  r = api_->Handle(Req("POST", "/v1/admin/compact", wrong));
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("invalid API key"), std::string::npos) << r.body;

  // Two credentials: which one counts would depend on who reads them (a proxy may check the
  // last; the first used to win here).
  http::Request two = Req("GET", "/metrics", admin);
  two.headers.emplace_back("authorization", "Bearer strata_nonsense");
  r = api_->Handle(two);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("authorization: more than one Authorization header"), std::string::npos)
      << r.body;

  EXPECT_EQ(api_->Handle(Req("GET", "/healthz")).status, 200);  // always open
  EXPECT_EQ(api_->Handle(Req("GET", "/metrics", admin)).status, 200);
  // Nothing without a valid key reached the audit log.
  EXPECT_TRUE(AuditRecords().empty());
}

TEST_F(ApiAccessTest, AKeyWithoutTheScopeGets403NamingItAndIsAudited) {
  std::string id;
  const std::string reader = Key({Scope::kViewingRead, Scope::kMetricsRead}, &id);
  EXPECT_EQ(api_->Handle(Req("GET", "/metrics", reader)).status, 200);
  http::Response r = api_->Handle(Req("POST", "/v1/admin/compact", reader));
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("needs the 'admin' scope; key " + id + " has viewing:read,metrics:read"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(Challenges(r),
            (std::vector<std::string>{
                "Bearer realm=\"strata\", error=\"insufficient_scope\", scope=\"admin\""}));
  r = api_->Handle(Req("PUT", "/v1/buckets/media", reader));
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("'objects:write'"), std::string::npos) << r.body;
  std::vector<auth::AuditRecord> records = AuditRecords();
  ASSERT_EQ(records.size(), 1u);  // the bucket PUT is not an audited action
  EXPECT_EQ(records[0].key, id);
  EXPECT_EQ(records[0].result, "denied");
  EXPECT_EQ(records[0].status, 403);
}

TEST_F(ApiAccessTest, TheAuditNamesTheKeyOfADeferredAdminAction) {
  std::string id;
  const std::string admin = Key({Scope::kAdmin}, &id);
  http::Response r = api_->Handle(Req("POST", "/v1/admin/compact?wait=true", admin));
  ASSERT_TRUE(r.defer);
  EXPECT_TRUE(AuditRecords().empty()) << "audited when answered, with the answer's status";
  EXPECT_EQ(Await(std::move(r)).status, 200);
  std::vector<auth::AuditRecord> records = AuditRecords();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].key, id);
  EXPECT_EQ(records[0].action, "admin.compact");
  EXPECT_EQ(records[0].result, "ok");

  r = api_->Handle(Req("GET", "/v1/admin/audit?limit=5", admin));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"key\":\"" + id + "\",\"action\":\"admin.compact\""), std::string::npos)
      << r.body;
  EXPECT_EQ(api_->Handle(Req("GET", "/v1/admin/audit?limit=0", admin)).status, 400);
}

TEST_F(ApiAccessTest, KeysAreManagedOverHttpAndRevocationIsImmediate) {
  std::string admin_id;
  const std::string admin = Key({Scope::kAdmin}, &admin_id);
  http::Request create = Req("POST", "/v1/admin/keys", admin);
  create.body = R"({"name":"scraper","scopes":["metrics:read"]})";
  http::Response r = api_->Handle(create);
  ASSERT_EQ(r.status, 201) << r.body;
  const size_t at = r.body.find("\"token\":\"");
  ASSERT_NE(at, std::string::npos);
  const std::string token = r.body.substr(at + 9, r.body.find('"', at + 9) - at - 9);
  const std::string id = token.substr(7, 16);
  EXPECT_EQ(api_->Handle(Req("GET", "/metrics", token)).status, 200);
  EXPECT_EQ(api_->Handle(Req("POST", "/v1/admin/compact", token)).status, 403);

  r = api_->Handle(Req("GET", "/v1/admin/keys", admin));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"name\":\"scraper\""), std::string::npos);
  EXPECT_EQ(r.body.find(token.substr(24)), std::string::npos) << "a list never shows secrets";

  create.body = R"({"scopes":["metrics:read","everything"]})";
  r = api_->Handle(create);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("scopes: unknown scope 'everything'"), std::string::npos) << r.body;
  create.body = R"({"scopes":["admin"]} })";  // the parser used to stop at the object's end
  r = api_->Handle(create);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("body: unexpected content after the JSON object"), std::string::npos)
      << r.body;

  r = api_->Handle(Req("DELETE", "/v1/admin/keys/" + id, admin));
  EXPECT_EQ(r.status, 200) << r.body;
  r = api_->Handle(Req("GET", "/metrics", token));
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("is revoked"), std::string::npos) << r.body;
  EXPECT_EQ(api_->Handle(Req("DELETE", "/v1/admin/keys/zz", admin)).status, 400);

  std::vector<auth::AuditRecord> records = AuditRecords();
  ASSERT_GE(records.size(), 3u);
  // Oldest last (one node keeps the order of records of the same millisecond).
  EXPECT_EQ(records.back().action, "key.create");
  EXPECT_EQ(records.back().key, admin_id);
  bool revoked = false;
  for (const auth::AuditRecord& rec : records) {
    revoked |=
        rec.action == "key.revoke" && rec.target == "/v1/admin/keys/" + id && rec.result == "ok";
    EXPECT_EQ(rec.detail.find(token.substr(24)), std::string::npos) << "never a secret";
  }
  EXPECT_TRUE(revoked);
}

TEST_F(ApiAccessTest, BasicCredentialsWorkForReadsOnly) {
  const std::string admin = Key({Scope::kAdmin});
  const std::string basic = "dashboard:" + admin;
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string encoded;
  for (size_t i = 0; i < basic.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(basic[i]) << 16;
    if (i + 1 < basic.size()) n |= static_cast<uint8_t>(basic[i + 1]) << 8;
    if (i + 2 < basic.size()) n |= static_cast<uint8_t>(basic[i + 2]);
    encoded += kAlphabet[(n >> 18) & 63];
    encoded += kAlphabet[(n >> 12) & 63];
    encoded += i + 1 < basic.size() ? kAlphabet[(n >> 6) & 63] : '=';
    encoded += i + 2 < basic.size() ? kAlphabet[n & 63] : '=';
  }
  http::Request get = Req("GET", "/metrics");
  get.headers.emplace_back("authorization", "Basic " + encoded);
  EXPECT_EQ(api_->Handle(get).status, 200);
  http::Request post = Req("POST", "/v1/admin/compact");
  post.headers.emplace_back("authorization", "Basic " + encoded);
  http::Response r = api_->Handle(post);
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("GET and HEAD"), std::string::npos) << r.body;
}

TEST_F(ApiAccessTest, StreamedObjectPutsAreCheckedBeforeTheirBody) {
  const std::string reader = Key({Scope::kObjectsRead});
  http::StreamStart s = api_->OpenObjectStream(Req("PUT", "/v1/buckets/m/objects/k"));
  ASSERT_TRUE(s.response.has_value());
  EXPECT_FALSE(s.sink);
  EXPECT_EQ(s.response->status, 401);
  s = api_->OpenObjectStream(Req("PUT", "/v1/buckets/m/objects/k", reader));
  ASSERT_TRUE(s.response.has_value());
  EXPECT_EQ(s.response->status, 403);
  // The Origin check covers the streamed path too: a cross-site page cannot upload.
  const std::string writer = Key({Scope::kObjectsWrite});
  http::Request cross = Req("PUT", "/v1/buckets/m/objects/k", writer);
  cross.headers.emplace_back("origin", "http://evil.example");
  s = api_->OpenObjectStream(cross);
  ASSERT_TRUE(s.response.has_value());
  EXPECT_EQ(s.response->status, 403);
  EXPECT_NE(s.response->body.find("origin"), std::string::npos) << s.response->body;
}

TEST_F(ApiAccessTest, AnUnreadableKeyStoreFailsClosed) {
  // A key row that cannot be read: requests naming it get 503, never pass.
  store::MemoryRowStore other(&clock_);
  auto keys = auth::KeyStore::Open(&other, &clock_);
  ASSERT_TRUE(keys.ok());
  // The key row exists but is garbage: Required() is true, Verify cannot decode it.
  ASSERT_TRUE((*keys)->table()->Put("keys", "0123456789abcdef", "\x07garbage").ok());
  auth::Authenticator authenticator(keys->get(), &clock_);
  api_->SetAccessControl({&authenticator, keys->get(), nullptr});
  const std::string token = "strata_0123456789abcdef_" + std::string(64, 'a');
  http::Response r = api_->Handle(Req("GET", "/metrics", token));
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(api_->Handle(Req("GET", "/healthz")).status, 200);
}

}  // namespace
}  // namespace strata::server
