// The asset service on the embedded RocksDB row store and queue (and the in-memory store).
#include "strata/assets/asset_service.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "strata/assets/index_key.h"
#include "strata/base/coding.h"
#include "strata/store/embedded_queue.h"
#include "strata/store/memory_row_store.h"
#include "strata/store/rocksdb/rocksdb_row_store.h"

namespace strata::assets {
namespace {

namespace fs = std::filesystem;
constexpr Millis kDay = 86'400'000;
constexpr Millis kStart = 1'765'000'000'000;  // 2025-12-06T05:46:40Z

constexpr char kVideoType[] = R"({
  "schema": {
    "type": "object",
    "required": ["show_id", "format"],
    "properties": {
      "show_id": {"type": "integer", "minimum": 1},
      "format": {"type": "string", "enum": ["hd", "4k", "sd"]},
      "duration_s": {"type": "number", "minimum": 0},
      "title": {"type": "string", "maxLength": 100}
    }
  },
  "indexed": ["/show_id", "/format", "/duration_s", "/title"],
  "bucket": "day",
  "keep_versions": 3
})";

std::string Video(int show, const char* format, double duration, const std::string& title = "t") {
  return "{\"show_id\":" + std::to_string(show) + ",\"format\":\"" + format +
         "\",\"duration_s\":" + JsonValue::Double(duration).Serialize() + ",\"title\":\"" + title +
         "\"}";
}

class AssetServiceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    static std::mt19937_64 rng{std::random_device{}()};
    dir_ = (fs::temp_directory_path() / ("strata_assets_" + std::to_string(rng()))).string();
    Open();
    ASSERT_TRUE(service_->PutType("video", kVideoType).ok());
  }
  void Open() {
    if (GetParam() == "Memory") {
      if (!memory_) memory_ = std::make_unique<store::MemoryRowStore>(&clock_);
      rows_ = memory_.get();
    } else {
      store::RocksRowStoreOptions o;
      o.path = dir_ + "/rows";
      o.clock = &clock_;
      o.block_cache_bytes = 8 << 20;
      auto r = store::RocksRowStore::Open(o);
      ASSERT_TRUE(r.ok()) << r.status();
      rocks_ = std::move(*r);
      rows_ = rocks_.get();
    }
    store::EmbeddedQueueOptions qo;
    qo.clock = &clock_;
    qo.metrics = &metrics_;
    qo.retention_interval_ms = 0;
    auto q = store::EmbeddedQueue::Open(rows_, qo);
    ASSERT_TRUE(q.ok()) << q.status();
    queue_ = std::move(*q);
    AssetOptions options;
    options.id_seed = 99;
    options.max_process_write = max_process_write_;
    options.max_queued_forwards = max_queued_forwards_;
    auto s = AssetService::Open(rows_, queue_.get(), &clock_, &metrics_, options);
    ASSERT_TRUE(s.ok()) << s.status();
    service_ = std::move(*s);
  }
  size_t max_process_write_ = AssetOptions{}.max_process_write;
  size_t max_queued_forwards_ = AssetOptions{}.max_queued_forwards;
  // Outbox rows in the assets table (change events not published yet).
  size_t OutboxRows() {
    absl::StatusOr<store::Table*> assets =
        rows_->OpenTable({"assets", store::TableProfile::kDocument});
    EXPECT_TRUE(assets.ok());
    if (!assets.ok()) return 0;
    absl::StatusOr<std::vector<store::KeyRange>> ranges = (*assets)->SplitRanges(1);
    EXPECT_TRUE(ranges.ok());
    size_t n = 0;
    for (const store::KeyRange& range : *ranges) {
      absl::StatusOr<store::TableScanPage> page = (*assets)->ScanRange(range, 1024, "");
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) continue;
      EXPECT_TRUE(page->next_cursor.empty());
      for (const store::TableRow& r : page->rows) n += r.clustering[0] == kOutboxPrefix;
    }
    return n;
  }
  void Close() {
    service_.reset();
    queue_.reset();
    rocks_.reset();
  }
  void TearDown() override {
    Close();
    memory_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Asset Create(const std::string& payload) {
    absl::StatusOr<Asset> a = service_->Create("video", payload);
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? *a : Asset{};
  }
  // Every id of a full search, following cursors.
  std::vector<std::string> SearchIds(std::vector<std::string> where, size_t limit = 7,
                                     std::optional<Millis> since = {},
                                     std::optional<Millis> until = {}) {
    std::vector<std::string> ids;
    ListQuery q;
    q.limit = limit;
    q.where = std::move(where);
    q.since = since;
    q.until = until;
    for (int guard = 0; guard < 10000; ++guard) {
      absl::StatusOr<AssetPage> page = service_->List("video", q);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      for (const Asset& a : page->assets) ids.push_back(a.id.ToString());
      if (page->next_cursor.empty()) break;
      q.cursor = page->next_cursor;
    }
    return ids;
  }
  // The oracle: ids of live assets whose payload matches, by brute force.
  std::set<std::string> Oracle(const std::map<std::string, std::string>& live,
                               const std::vector<std::string>& where) {
    Schema schema = *Schema::Parse(*(*ParseJson(kVideoType, "t")).Find("schema"));
    std::set<std::string> out;
    for (const auto& [id, payload] : live) {
      JsonValue doc = *ParseJson(payload, "p");
      bool match = true;
      for (const std::string& w : where) {
        WhereCondition c = *ParseWhere(w);
        EXPECT_TRUE(BindWhere(schema, &c).ok());
        match = match && MatchesWhere(c, doc);
      }
      if (match) out.insert(id);
    }
    return out;
  }

  ManualClock clock_{kStart};
  MetricsRegistry metrics_;
  std::string dir_;
  std::unique_ptr<store::MemoryRowStore> memory_;
  std::unique_ptr<store::RocksRowStore> rocks_;
  store::RowStore* rows_ = nullptr;
  std::unique_ptr<store::EmbeddedQueue> queue_;
  std::unique_ptr<AssetService> service_;
};

TEST_P(AssetServiceTest, TypesAreVersionedAndBadOnesNamed) {
  absl::StatusOr<TypeWithHistory> t = service_->GetType("video");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->current->version, 1u);
  EXPECT_EQ(t->current->keep_versions, 3u);
  // The same definition again changes nothing; a changed schema makes version 2.
  ASSERT_EQ((*service_->PutType("video", kVideoType))->version, 1u);
  std::string v2 = kVideoType;
  v2.replace(v2.find("\"maxLength\": 100"), 16, "\"maxLength\": 50");
  ASSERT_EQ((*service_->PutType("video", v2))->version, 2u);
  t = service_->GetType("video");
  ASSERT_EQ(t->history_json.size(), 2u);
  EXPECT_NE(t->history_json[0].find("\"version\":2"), std::string::npos);
  EXPECT_NE(t->history_json[1].find("\"version\":1"), std::string::npos);

  auto error = [&](std::string_view type, std::string_view body) {
    absl::StatusOr<std::shared_ptr<const AssetType>> r = service_->PutType(type, body);
    return r.ok() ? std::string("ok") : std::string(r.status().message());
  };
  EXPECT_EQ(error("video", R"({"schema":{"type":"object"},"bucket":"month"})"),
            "bucket: cannot change from day to month once the type exists (rows are "
            "partitioned by it)");
  EXPECT_EQ(error("x", R"({"schema":{"type":"obj"}})").substr(0, 29),
            "schema /type: must be one of ");
  EXPECT_EQ(error("x", R"({"schema":{},"indexed":["a"]})"),
            "indexed/0: JSON pointer \"a\" must start with '/'");
  EXPECT_EQ(error("x", R"({"schema":{},"indexed":["/a","/a"]})"), "indexed/1: repeats /a");
  EXPECT_EQ(error("x", R"({"schema":{"properties":{"o":{"type":"object"}}},"indexed":["/o"]})"),
            "indexed/0: /o is an object or array in the schema; only scalar values are indexed");
  EXPECT_EQ(error("x", R"({"schema":{},"colour":1})"),
            "colour: unknown field (known: schema, indexed, bucket, keep_versions)");
  EXPECT_EQ(error("x", R"({"indexed":[]})"), "schema: required");
  EXPECT_EQ(error("x", R"({"schema":{},"keep_versions":-1})"),
            "keep_versions: must be an integer 0..1000");
  EXPECT_EQ(error("bad/name", R"({"schema":{}})"),
            "type: must be 1..64 characters of [A-Za-z0-9_-]");
  EXPECT_TRUE(absl::IsNotFound(service_->GetType("nope").status()));
}

TEST_P(AssetServiceTest, KeptVersionsAreDeltasThatRebuildEachPayloadExactly) {
  auto doc_type = [](int keep) {
    return R"({"schema":{"type":"object"},"keep_versions":)" + std::to_string(keep) + "}";
  };
  ASSERT_TRUE(service_->PutType("doc", doc_type(5)).ok());
  const std::string body(500, 'b');
  std::vector<std::string> payloads = {R"({"n":1,"body":")" + body + R"("})"};
  absl::StatusOr<Asset> a = service_->Create("doc", payloads[0]);
  ASSERT_TRUE(a.ok()) << a.status();
  const std::string id = a->id.ToString();
  auto patch = [&](const std::string& p) {
    absl::StatusOr<Asset> r = service_->Patch("doc", id, p, std::nullopt);
    ASSERT_TRUE(r.ok()) << r.status();
    payloads.push_back(r->row.payload);
  };
  patch(R"({"n":2})");  // one field changed
  absl::StatusOr<Asset> replaced =
      service_->Replace("doc", id, R"({"other":")" + std::string(400, 'o') + R"("})", {});
  ASSERT_TRUE(replaced.ok()) << replaced.status();  // nothing in common
  payloads.push_back(replaced->row.payload);
  patch(R"({"tag":"x"})");   // a member appended
  patch(R"({"tag":null})");  // and removed
  std::reverse(payloads.begin(), payloads.end());  // newest first, as listed
  absl::StatusOr<std::vector<AssetRow>> versions = service_->Versions("doc", id);
  ASSERT_TRUE(versions.ok()) << versions.status();
  ASSERT_EQ(versions->size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ((*versions)[i].version, 5 - i);
    EXPECT_EQ((*versions)[i].payload, payloads[i]) << "version " << 5 - i;
  }
  // Stored: versions 1, 3 and 4 as deltas of a few bytes; version 2 (replaced whole) in full.
  const std::string partition =
      BucketPartition("doc", BucketUnit::kDay, BucketStart(BucketUnit::kDay, kStart));
  store::ScanOptions history;
  history.start = HistoryPrefix(a->id);
  history.end = PrefixSuccessor(history.start);
  absl::StatusOr<store::ScanPage> rows = service_->assets_table()->Scan(partition, history);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->rows.size(), 4u);
  std::vector<bool> delta;
  for (const store::Row& r : rows->rows) {
    delta.push_back(IsHistoryDelta(r.value));
    if (delta.back()) {
      EXPECT_LT(r.value.size(), 64u);
    }
  }
  EXPECT_EQ(delta, (std::vector<bool>{true, false, true, true}));

  // keep_versions lowered to 1 for one update: it deletes version 4's row (an update deletes
  // the row keep_versions behind the version it replaces). Raised again, the listing stops
  // at that gap instead of rebuilding version 3 on the wrong base.
  ASSERT_TRUE(service_->PutType("doc", doc_type(1)).ok());
  patch(R"({"n":6})");
  ASSERT_TRUE(service_->PutType("doc", doc_type(5)).ok());
  patch(R"({"n":7})");
  versions = service_->Versions("doc", id);
  ASSERT_TRUE(versions.ok()) << versions.status();
  std::vector<uint32_t> numbers;
  for (const AssetRow& r : *versions) numbers.push_back(r.version);
  EXPECT_EQ(numbers, (std::vector<uint32_t>{7, 6, 5}));
  EXPECT_EQ(versions->back().payload, payloads[0]);  // version 5, rebuilt through 6 and 7
}

TEST_P(AssetServiceTest, CreateGetReplacePatchDeleteWithVersions) {
  Asset a = Create(Video(7, "hd", 60));
  EXPECT_EQ(a.row.version, 1u);
  EXPECT_EQ(a.row.schema_version, 1u);
  EXPECT_EQ(a.row.created_at, kStart);
  EXPECT_EQ(a.id.time(), kStart);
  absl::StatusOr<Asset> got = service_->Get("video", a.id.ToString());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->row.payload, Video(7, "hd", 60));

  clock_.Advance(1000);
  absl::StatusOr<Asset> replaced =
      service_->Replace("video", a.id.ToString(), Video(7, "4k", 61), 1);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ(replaced->row.version, 2u);
  EXPECT_EQ(replaced->row.updated_at, kStart + 1000);
  EXPECT_EQ(replaced->row.created_at, kStart);
  absl::StatusOr<Asset> patched =
      service_->Patch("video", a.id.ToString(), R"({"title":null,"duration_s":90})", std::nullopt);
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ(patched->row.payload, R"({"show_id":7,"format":"4k","duration_s":90})");
  // A patch that breaks the schema changes nothing and names the pointer and the rule.
  absl::StatusOr<Asset> bad = service_->Patch("video", a.id.ToString(), R"({"format":"8k"})", 3);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "payload /format: enum: must be one of the listed values");
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(service_
                    ->Patch("video", a.id.ToString(),
                            "{\"show_id\":" + std::to_string(10 + i) + "}", std::nullopt)
                    .ok());
  }
  // Version 6 now; keep_versions 3 keeps versions 3, 4, 5 behind it.
  absl::StatusOr<std::vector<AssetRow>> versions = service_->Versions("video", a.id.ToString());
  ASSERT_TRUE(versions.ok()) << versions.status();
  std::vector<uint32_t> numbers;
  for (const AssetRow& r : *versions) numbers.push_back(r.version);
  EXPECT_EQ(numbers, (std::vector<uint32_t>{6, 5, 4, 3}));
  EXPECT_EQ(versions->back().payload, R"({"show_id":7,"format":"4k","duration_s":90})");

  ASSERT_TRUE(service_->Delete("video", a.id.ToString(), 6).ok());
  EXPECT_TRUE(absl::IsNotFound(service_->Get("video", a.id.ToString()).status()));
  // Nothing of the asset is left in its partition: row, index entries, versions, outbox
  // (once the service's thread has published the events).
  service_->FlushChanges();
  absl::StatusOr<store::ScanPage> rest = service_->assets_table()->Scan(
      BucketPartition("video", BucketUnit::kDay, BucketStart(BucketUnit::kDay, kStart)), {});
  ASSERT_TRUE(rest.ok());
  EXPECT_TRUE(rest->rows.empty()) << rest->rows.size() << " rows left";
  EXPECT_TRUE(absl::IsNotFound(service_->Versions("video", a.id.ToString()).status()));
  EXPECT_TRUE(absl::IsNotFound(service_->Delete("video", a.id.ToString(), {})));
  EXPECT_TRUE(SearchIds({"/show_id=12"}).empty());
  // Bad input is named.
  EXPECT_EQ(service_->Get("video", "nope").status().message(),
            "id: \"nope\" is not a UUIDv7 asset id");
  EXPECT_EQ(service_->Create("video", R"({"show_id":1})").status().message(),
            "payload /: required: missing property \"format\"");
  EXPECT_EQ(service_->Create("video", "[1]").status().message(), "payload: must be a JSON object");
  EXPECT_TRUE(absl::IsNotFound(service_->Create("nope", "{}").status()));
}

TEST_P(AssetServiceTest, StaleIfMatchIs412AndChangesNothing) {
  Asset a = Create(Video(1, "hd", 10));
  ASSERT_TRUE(service_->Patch("video", a.id.ToString(), R"({"duration_s":11.0})", 1).ok());
  absl::StatusOr<Asset> stale = service_->Replace("video", a.id.ToString(), Video(1, "sd", 99), 1);
  ASSERT_TRUE(absl::IsFailedPrecondition(stale.status())) << stale.status();
  EXPECT_EQ(stale.status().message(), "If-Match: the asset is at version 2, not 1");
  EXPECT_TRUE(absl::IsFailedPrecondition(service_->Delete("video", a.id.ToString(), 1)));
  absl::StatusOr<Asset> now = service_->Get("video", a.id.ToString());
  EXPECT_EQ(now->row.version, 2u);
  EXPECT_EQ(now->row.payload, Video(1, "hd", 11));
  EXPECT_EQ(SearchIds({"/format=sd"}).size(), 0u);
  EXPECT_EQ(SearchIds({"/format=hd"}).size(), 1u);
}

// Writers race on one asset with If-Match: exactly one wins each version, the others get
// 412, and no update is lost.
TEST_P(AssetServiceTest, ConcurrentIfMatchWritersNeverLoseAnUpdate) {
  Asset a = Create(R"({"show_id":1,"format":"hd","duration_s":0})");
  constexpr int kThreads = 4;
  constexpr int kEach = 25;
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int done = 0; done < kEach;) {
        absl::StatusOr<Asset> cur = service_->Get("video", a.id.ToString());
        ASSERT_TRUE(cur.ok());
        JsonValue doc = *ParseJson(cur->row.payload, "p");
        const double n = doc.Find("duration_s")->number() + 1;
        absl::StatusOr<Asset> w = service_->Patch(
            "video", a.id.ToString(), "{\"duration_s\":" + JsonValue::Double(n).Serialize() + "}",
            cur->row.version);
        if (w.ok()) {
          ++done;
        } else {
          ASSERT_TRUE(absl::IsFailedPrecondition(w.status())) << w.status();
          ++conflicts;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  absl::StatusOr<Asset> end = service_->Get("video", a.id.ToString());
  JsonValue doc = *ParseJson(end->row.payload, "p");
  EXPECT_EQ(doc.Find("duration_s")->number(), kThreads * kEach) << conflicts.load();
  EXPECT_EQ(end->row.version, 1u + kThreads * kEach);
  // The index holds exactly the final value.
  EXPECT_EQ(SearchIds({"/duration_s>=0"}).size(), 1u);
  EXPECT_EQ(SearchIds({"/duration_s=" + std::to_string(kThreads * kEach)}).size(), 1u);
}

TEST_P(AssetServiceTest, IndexStaysConsistentWithRowsThroughUpdatesAndDeletes) {
  std::mt19937_64 rng(5);
  std::map<std::string, std::string> live;
  const char* formats[] = {"hd", "4k", "sd"};
  auto payload = [&] {
    return Video(1 + static_cast<int>(rng() % 5), formats[rng() % 3],
                 static_cast<double>(rng() % 1000) / 4,
                 std::string(1, static_cast<char>('a' + rng() % 4)) +
                     std::string(1, static_cast<char>('a' + rng() % 4)));
  };
  for (int step = 0; step < 400; ++step) {
    clock_.Advance(static_cast<Millis>(rng() % (kDay / 4)));  // several buckets
    const int action = live.empty() ? 0 : static_cast<int>(rng() % 4);
    if (action <= 1) {
      Asset a = Create(payload());
      live[a.id.ToString()] = a.row.payload;
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      if (action == 2) {
        absl::StatusOr<Asset> u = service_->Replace("video", it->first, payload(), {});
        ASSERT_TRUE(u.ok()) << u.status();
        it->second = u->row.payload;
      } else {
        ASSERT_TRUE(service_->Delete("video", it->first, {}).ok());
        live.erase(it);
      }
    }
  }
  const std::vector<std::vector<std::string>> queries = {
      {"/format=4k"},
      {"/show_id=3"},
      {"/duration_s>=100", "/duration_s<200"},
      {"/duration_s>240"},
      {"/duration_s<=10"},
      {"/title^=b"},
      {"/title>c"},
      {"/format=hd", "/show_id>=4"},
      {"/show_id<3", "/title^=a", "/format=sd"},
  };
  for (const auto& q : queries) {
    std::vector<std::string> got = SearchIds(q);
    std::set<std::string> unique(got.begin(), got.end());
    EXPECT_EQ(unique.size(), got.size()) << "duplicates for " << q[0];
    EXPECT_EQ(unique, Oracle(live, q)) << q[0];
  }
  // Every partition's index entries are exactly those its asset rows name (no orphan, none
  // missing), and no outbox row is left behind.
  absl::StatusOr<store::ScanPage> buckets = service_->types_table()->Scan("video", {"b", "c"});
  ASSERT_TRUE(buckets.ok());
  EXPECT_GT(buckets->rows.size(), 3u);
  for (const store::Row& b : buckets->rows) {
    std::string_view k(b.clustering);
    k.remove_prefix(1);
    uint64_t start = 0;
    ASSERT_TRUE(coding::GetFixed64BE(&k, &start));
    const std::string partition =
        BucketPartition("video", BucketUnit::kDay, static_cast<Millis>(start));
    std::set<std::string> named, present;
    store::ScanOptions all;
    service_->FlushChanges();  // no outbox row left
    for (;;) {
      absl::StatusOr<store::ScanPage> page = service_->assets_table()->Scan(partition, all);
      ASSERT_TRUE(page.ok());
      for (const store::Row& r : page->rows) {
        if (r.clustering[0] == kAssetPrefix) {
          std::optional<AssetRow> row = DecodeAssetRow(r.value);
          ASSERT_TRUE(row.has_value());
          for (const std::string& e : row->index_entries) {
            named.insert(IndexKeyFromEntry(e, *AssetIdFromKey(r.clustering)));
          }
        } else if (r.clustering[0] == kIndexPrefix) {
          present.insert(r.clustering);
        } else {
          EXPECT_EQ(r.clustering[0], kHistoryPrefix) << "unexpected row in " << partition;
        }
      }
      if (page->next_cursor.empty()) break;
      all.cursor = page->next_cursor;
    }
    EXPECT_EQ(named, present) << partition;
  }
  // Plain listing: every live asset once, newest first.
  std::vector<std::string> all = SearchIds({}, 9);
  EXPECT_EQ(all.size(), live.size());
  EXPECT_TRUE(std::is_sorted(all.rbegin(), all.rend()));
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), live.size());
}

// A search pages through its driving index (more than one store page of candidates: 2,000
// "hd" entries in one bucket, the store's page limit being 1,024): a selective second
// condition still finds every match, newest first, at every limit, and a search whose
// candidates all match stops at its limit with a cursor that resumes exactly after it.
TEST_P(AssetServiceTest, SearchPagesThroughManyCandidatesOfOneBucket) {
  std::map<std::string, std::string> live;
  std::vector<std::string> newest_first_hd;
  for (int i = 0; i < 2500; ++i) {
    clock_.Advance(1);
    Asset a = Create(Video(i % 100 == 7 ? 5 : 1 + i % 4, i % 5 == 0 ? "4k" : "hd", i));
    live[a.id.ToString()] = a.row.payload;
    if (i % 5 != 0) newest_first_hd.insert(newest_first_hd.begin(), a.id.ToString());
  }
  const std::vector<std::string> selective = {"/format=hd", "/show_id=5"};
  for (size_t limit : {size_t{1}, size_t{10}, size_t{100}, size_t{1000}}) {
    std::vector<std::string> got = SearchIds(selective, limit);
    EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), Oracle(live, selective)) << limit;
    EXPECT_TRUE(std::is_sorted(got.rbegin(), got.rend())) << limit;  // newest first
    EXPECT_EQ(got.size(), 25u) << limit;  // i % 100 == 7: 25 of 2,500, all "hd"
  }
  for (size_t limit : {size_t{100}, size_t{1000}}) {
    ListQuery q;
    q.limit = limit;
    q.where = {"/format=hd"};
    absl::StatusOr<AssetPage> first = service_->List("video", q);
    ASSERT_TRUE(first.ok()) << first.status();
    ASSERT_EQ(first->assets.size(), limit);
    ASSERT_FALSE(first->next_cursor.empty());
    q.cursor = first->next_cursor;
    absl::StatusOr<AssetPage> second = service_->List("video", q);
    ASSERT_TRUE(second.ok()) << second.status();
    ASSERT_FALSE(second->assets.empty());
    EXPECT_EQ(first->assets.front().id.ToString(), newest_first_hd[0]);
    EXPECT_EQ(second->assets.front().id.ToString(), newest_first_hd[limit]);
  }
  EXPECT_EQ(SearchIds({"/format=hd"}, 1000), newest_first_hd);
}

TEST_P(AssetServiceTest, PagesNewestFirstAcrossBucketsWithTimeBounds) {
  std::vector<Asset> made;
  for (int i = 0; i < 30; ++i) {
    made.push_back(Create(Video(1, "hd", i)));
    clock_.Advance(kDay / 5);  // about 6 days, 7 buckets
  }
  std::vector<std::string> all = SearchIds({}, 4);
  ASSERT_EQ(all.size(), 30u);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(all[i], made[29 - i].id.ToString());
  const Millis since = made[5].row.created_at;
  const Millis until = made[20].row.created_at;
  std::vector<std::string> window = SearchIds({}, 4, since, until);
  ASSERT_EQ(window.size(), 15u);
  EXPECT_EQ(window.front(), made[19].id.ToString());
  EXPECT_EQ(window.back(), made[5].id.ToString());
  // Same window through the index.
  EXPECT_EQ(SearchIds({"/format=hd"}, 4, since, until), window);
}

TEST_P(AssetServiceTest, IdsOnlyListingsMatchWholeOnesAlsoInBucketsMadeBeforeIndexZero) {
  std::vector<Asset> made;
  for (int i = 0; i < 40; ++i) {
    made.push_back(Create(Video(1 + i % 3, i % 2 ? "hd" : "sd", i)));
    clock_.Advance(kDay / 5);  // about 8 days, 9 buckets
  }
  for (int i : {3, 17, 39}) ASSERT_TRUE(service_->Delete("video", made[i].id.ToString(), {}).ok());
  ASSERT_TRUE(service_->Replace("video", made[5].id.ToString(), Video(2, "4k", 1), {}).ok());
  auto ids = [&](std::vector<std::string> where, bool ids_only, size_t limit,
                 std::optional<Millis> since = {}, std::optional<Millis> until = {}) {
    std::vector<std::string> out;
    ListQuery q;
    q.limit = limit;
    q.where = where;
    q.since = since;
    q.until = until;
    q.ids_only = ids_only;
    for (int guard = 0; guard < 1000; ++guard) {
      absl::StatusOr<AssetPage> page = service_->List("video", q);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      EXPECT_TRUE(ids_only ? page->assets.empty() : page->ids.empty());
      for (const Asset& a : page->assets) out.push_back(a.id.ToString());
      for (const AssetId& id : page->ids) out.push_back(id.ToString());
      if (page->next_cursor.empty()) break;
      q.cursor = page->next_cursor;
    }
    return out;
  };
  auto check = [&] {
    const std::vector<std::string> all = ids({}, false, 1000);
    ASSERT_EQ(all.size(), 37u);
    for (size_t limit : {1, 4, 1000}) EXPECT_EQ(ids({}, true, limit), all) << limit;
    const Millis since = made[6].row.created_at, until = made[30].row.created_at;
    EXPECT_EQ(ids({}, true, 3, since, until), ids({}, false, 1000, since, until));
    EXPECT_EQ(ids({}, true, 3, since), ids({}, false, 1000, since));
    EXPECT_EQ(ids({"/format=hd"}, true, 3), ids({"/format=hd"}, false, 1000));
  };
  check();
  // Buckets written before index 0 existed: directory rows without the marker, rows without
  // index-0 entries. Ids then come from the rows, and the bucket stays so.
  store::Table* types = service_->types_table();
  absl::StatusOr<store::ScanPage> buckets = types->Scan("video", {"b", "c"});
  ASSERT_TRUE(buckets.ok());
  for (size_t b = 0; b < buckets->rows.size(); b += 2) {
    const store::Row& dir = buckets->rows[b];
    ASSERT_EQ(dir.value, kBucketListedByIndex);
    ASSERT_TRUE(types->Put("video", dir.clustering, "").ok());
    std::string_view k(dir.clustering);
    k.remove_prefix(1);
    uint64_t start = 0;
    ASSERT_TRUE(coding::GetFixed64BE(&k, &start));
    const std::string partition =
        BucketPartition("video", BucketUnit::kDay, static_cast<Millis>(start));
    const std::string zero = IndexPrefix(kEveryAssetIndex);
    ASSERT_TRUE(service_->assets_table()->DeleteRange(partition, zero, PrefixSuccessor(zero)).ok());
  }
  check();
  Close();
  Open();
  clock_.Advance(-kDay / 5);  // back into the newest bucket, which is now an old one
  made.push_back(Create(Video(3, "hd", 7)));
  const std::vector<std::string> all = ids({}, false, 1000);
  ASSERT_EQ(all.size(), 38u);
  EXPECT_EQ(ids({}, true, 5), all);
}

TEST_P(AssetServiceTest, PagingWhileCreatingSeesEachOldAssetExactlyOnce) {
  std::set<std::string> before;
  for (int i = 0; i < 50; ++i) {
    before.insert(Create(Video(1, "hd", i)).id.ToString());
    clock_.Advance(kDay / 10);
  }
  ListQuery q;
  q.limit = 7;
  std::vector<std::string> seen;
  for (int guard = 0; guard < 100; ++guard) {
    absl::StatusOr<AssetPage> page = service_->List("video", q);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const Asset& a : page->assets) seen.push_back(a.id.ToString());
    // New assets keep arriving between pages (in the newest bucket and a new one).
    for (int k = 0; k < 3; ++k) Create(Video(2, "sd", k));
    clock_.Advance(kDay / 3);
    if (page->next_cursor.empty()) break;
    q.cursor = page->next_cursor;
  }
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), before);
  EXPECT_EQ(seen.size(), before.size());
}

TEST_P(AssetServiceTest, SearchRejectsNamedBadInput) {
  Create(Video(1, "hd", 1));
  auto error = [&](std::vector<std::string> where, std::string cursor = "") {
    ListQuery q;
    q.where = std::move(where);
    q.cursor = std::move(cursor);
    absl::StatusOr<AssetPage> p = service_->List("video", q);
    return p.ok() ? std::string("ok") : std::string(p.status().message());
  };
  EXPECT_EQ(error({"/nope=1"}),
            "where: /nope is not indexed in type video (indexed: /show_id, /format, "
            "/duration_s, /title)");
  EXPECT_EQ(error({"/show_id=x"}),
            "where \"/show_id=x\": value must be a number (the schema says so for /show_id)");
  EXPECT_EQ(error({"/format"}), "where \"/format\": no operator (use =, <, <=, >, >= or ^=)");
  EXPECT_EQ(error({"/format=hd"}, "zz"), "cursor: malformed (pass next_cursor as given)");
  ListQuery negative;
  negative.until = -1;
  EXPECT_EQ(service_->List("video", negative).status().message(),
            "until: must be >= 0 (milliseconds since the epoch)");
  // A cursor of one query does not fit another.
  ListQuery q;
  q.limit = 1;
  q.where = {"/format=hd"};
  Create(Video(1, "hd", 2));
  absl::StatusOr<AssetPage> p = service_->List("video", q);
  ASSERT_TRUE(p.ok());
  ASSERT_FALSE(p->next_cursor.empty());
  EXPECT_EQ(error({"/format=sd"}, p->next_cursor),
            "cursor: belongs to another query (same type, where, since and until needed)");
  // An index added after assets exist is not used until built.
  std::string v2 = kVideoType;
  v2.replace(v2.find("\"/title\"]"), 9, "\"/title\", \"/extra\"]");
  ASSERT_TRUE(service_->PutType("video", v2).ok());
  ListQuery extra;
  extra.where = {"/extra=1"};
  EXPECT_TRUE(absl::IsFailedPrecondition(service_->List("video", extra).status()));
}

TEST_P(AssetServiceTest, SearchDecidesRoundedIndexValuesOnThePayload) {
  // Integers beyond 2^53 share an index value (the same double) and long strings share their
  // indexed first 512 bytes: conditions on them must still be exact. Conditions on other
  // values are decided on the rows' index entries; missing values never match.
  ASSERT_TRUE(
      service_->PutType("doc", R"({"schema":{"type":"object"},"indexed":["/kind","/n","/s"]})")
          .ok());
  const std::string base(600, 'x');
  auto create = [&](const std::string& payload) {
    absl::StatusOr<Asset> a = service_->Create("doc", payload);
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? a->id.ToString() : "";
  };
  const std::string big1 = create(R"({"kind":"a","n":9007199254740993,"s":")" + base + "1\"}");
  const std::string big2 = create(R"({"kind":"a","n":9007199254740992,"s":")" + base + "2\"}");
  const std::string small = create(R"({"kind":"a","n":5,"s":"short"})");
  const std::string other = create(R"({"kind":"b","n":5.0})");
  const std::string nested = create(R"({"kind":"b","n":{"x":5},"s":["short"]})");
  auto ids = [&](std::vector<std::string> where) {
    ListQuery q;
    q.where = std::move(where);
    absl::StatusOr<AssetPage> page = service_->List("doc", q);
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<std::string> out;
    if (page.ok()) {
      for (const Asset& a : page->assets) out.push_back(a.id.ToString());
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids({"/kind=a", "/n=9007199254740993"}), V{big1});
  EXPECT_EQ(ids({"/kind=a", "/n=9007199254740992"}), V{big2});
  EXPECT_EQ(ids({"/kind=a", "/n>9007199254740992"}), V{big1});
  EXPECT_EQ(ids({"/n=9007199254740993"}), V{big1});
  EXPECT_EQ(ids({"/kind=a", "/s=" + base + "2"}), V{big2});
  EXPECT_EQ(ids({"/kind=a", "/s^=" + base + "1"}), V{big1});
  EXPECT_EQ(ids({"/kind=a", "/s>" + base + "1"}), V{big2});
  EXPECT_EQ(ids({"/s=" + base + "1"}), V{big1});
  EXPECT_EQ(ids({"/kind=a", "/n=5"}), V{small});
  EXPECT_EQ(ids({"/n=5"}), (V{other, small}));
  EXPECT_EQ(ids({"/kind=b", "/n<=5"}), V{other});
  EXPECT_EQ(ids({"/kind=b", "/s=short"}), V{});
  EXPECT_EQ(ids({"/kind=a", "/s^=sh"}), V{small});
  EXPECT_EQ(ids({"/kind=a", "/n=\"5\""}), V{});
  (void)nested;
}

TEST_P(AssetServiceTest, BatchCreateWritesValidOnesAndNamesRejects) {
  std::string body = "[";
  for (int i = 0; i < 100; ++i) {
    if (i > 0) body += ",";
    body += i == 17 ? R"({"show_id":0,"format":"hd"})" : Video(i + 1, i % 2 ? "4k" : "hd", i);
  }
  body += ",7]";
  absl::StatusOr<BatchResult> r = service_->CreateBatch("video", body);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->ids.size(), 101u);
  ASSERT_EQ(r->rejected.size(), 2u);
  EXPECT_EQ(r->rejected[0].first, 17u);
  EXPECT_EQ(r->rejected[0].second, "payload[17] /show_id: minimum: must be >= 1");
  EXPECT_EQ(r->rejected[1].first, 100u);
  EXPECT_FALSE(r->ids[17].has_value());
  for (size_t i = 1; i < 100; ++i) {
    if (i == 17 || i == 18) continue;
    EXPECT_LT(*r->ids[i - 1], *r->ids[i]);  // creation order
  }
  EXPECT_EQ(SearchIds({"/format=4k"}).size(), 49u);  // odd i, but 17 was rejected
  EXPECT_EQ(SearchIds({}, 1000).size(), 99u);
  absl::StatusOr<std::vector<ChangeRecord>> changes = service_->Changes("video", {}, 1000);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(changes->size(), 99u);
  EXPECT_EQ(service_->CreateBatch("video", "{}").status().message(),
            "body: must be a JSON array of payloads");
}

TEST_P(AssetServiceTest, ChangeFeedHasEveryWriteInOrder) {
  Asset a = Create(Video(1, "hd", 1));
  ASSERT_TRUE(service_->Patch("video", a.id.ToString(), R"({"duration_s":2})", {}).ok());
  ASSERT_TRUE(service_->Delete("video", a.id.ToString(), {}).ok());
  absl::StatusOr<std::vector<ChangeRecord>> all = service_->Changes("video", {}, 10);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  const std::string id = a.id.ToString();
  EXPECT_EQ((*all)[0].event_json,
            "{\"type\":\"video\",\"id\":\"" + id +
                "\",\"version\":1,\"op\":\"create\",\"time\":" + std::to_string(kStart) + "}");
  EXPECT_NE((*all)[1].event_json.find("\"version\":2,\"op\":\"update\""), std::string::npos);
  EXPECT_NE((*all)[2].event_json.find("\"version\":3,\"op\":\"delete\""), std::string::npos);
  absl::StatusOr<std::vector<ChangeRecord>> after = service_->Changes("video", 0, 1);
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].offset, 1u);
  EXPECT_TRUE(service_->Changes("video", 2, 10)->empty());
  EXPECT_TRUE(absl::IsNotFound(service_->Changes("nope", {}, 10).status()));
}

// An outbox row left by a crash between the write and the publish is published at Open.
TEST_P(AssetServiceTest, OutboxLeftOverIsPublishedAtOpen) {
  Asset a = Create(Video(1, "hd", 1));
  // Simulate the crash window: put an outbox row back as if the publish never happened.
  const std::string partition =
      BucketPartition("video", BucketUnit::kDay, BucketStart(BucketUnit::kDay, kStart));
  const std::string event = EncodeChangeEvent({"video", a.id, 9, ChangeOp::kUpdate, kStart});
  store::Table* assets = service_->assets_table();
  ASSERT_TRUE(assets->Put(partition, OutboxKey(a.id, 9), EncodeOutbox({event})).ok());
  Close();
  Open();
  absl::StatusOr<std::vector<ChangeRecord>> all = service_->Changes("video", {}, 10);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].event_json, event);
  EXPECT_TRUE(
      absl::IsNotFound(service_->assets_table()->Get(partition, OutboxKey(a.id, 9)).status()));
}

// A reprocessing step takes effect once per (job, asset), whatever the queue redelivers.
TEST_P(AssetServiceTest, ProcessOnceTakesEffectOncePerJob) {
  Asset a = Create(Video(1, "hd", 10));
  const std::string id = a.id.ToString();
  int calls = 0;
  auto set_title = [&](const AssetRow&, JsonValue* payload) -> absl::StatusOr<bool> {
    ++calls;
    if (const JsonValue* t = payload->Find("title"); t != nullptr && t->string_value() == "x") {
      return false;
    }
    payload->Set("title", JsonValue::String("x"));
    return true;
  };
  absl::StatusOr<ProcessResult> r = service_->ProcessOnce("video", id, {1, 0}, set_title);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, ProcessResult::Kind::kChanged);
  EXPECT_EQ(r->version, 2u);
  // Redelivered: nothing happens, the processor is not even run.
  r = service_->ProcessOnce("video", id, {1, 0}, set_title);
  EXPECT_EQ(r->kind, ProcessResult::Kind::kAlreadyDone);
  EXPECT_EQ(calls, 1);
  // Another job that changes nothing records its mark and writes no version.
  r = service_->ProcessOnce("video", id, {2, 0}, set_title);
  EXPECT_EQ(r->kind, ProcessResult::Kind::kUnchanged);
  r = service_->ProcessOnce("video", id, {2, 0}, set_title);
  EXPECT_EQ(r->kind, ProcessResult::Kind::kAlreadyDone);
  EXPECT_EQ(service_->Get("video", id)->row.version, 2u);
  EXPECT_EQ(service_->Changes("video", {}, 10)->size(), 2u);  // create + one update
  // A processor error or a schema violation writes nothing (no mark: a retry runs again).
  auto failing = [](const AssetRow&, JsonValue*) -> absl::StatusOr<bool> {
    return absl::InvalidArgumentError("map: no entry");
  };
  EXPECT_EQ(service_->ProcessOnce("video", id, {3, 0}, failing).status().message(),
            "map: no entry");
  auto breaking = [](const AssetRow&, JsonValue* p) -> absl::StatusOr<bool> {
    p->Set("format", JsonValue::String("8k"));
    return true;
  };
  EXPECT_EQ(service_->ProcessOnce("video", id, {3, 0}, breaking).status().message(),
            "payload /format: enum: must be one of the listed values");
  r = service_->ProcessOnce("video", id, {3, 0}, set_title);
  EXPECT_EQ(r->kind, ProcessResult::Kind::kUnchanged);
  ASSERT_TRUE(service_->Delete("video", id, {}).ok());
  r = service_->ProcessOnce("video", id, {4, 0}, set_title);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, ProcessResult::Kind::kGone);
}

// A production write between the job's read and its write is never overwritten: the job's
// write fails its condition, re-reads and processes the new payload.
TEST_P(AssetServiceTest, ProcessOnceNeverOverwritesAConcurrentWrite) {
  Asset a = Create(Video(1, "hd", 10));
  const std::string id = a.id.ToString();
  bool first = true;
  auto step = [&](const AssetRow&, JsonValue* payload) -> absl::StatusOr<bool> {
    if (first) {
      first = false;
      // A client updates the asset while the job holds its copy.
      absl::StatusOr<Asset> client =
          service_->Patch("video", id, R"({"duration_s":99})", std::nullopt);
      EXPECT_TRUE(client.ok()) << client.status();
    }
    payload->Set("title", JsonValue::String("reprocessed"));
    return true;
  };
  absl::StatusOr<ProcessResult> r = service_->ProcessOnce("video", id, {7, 0}, step);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, ProcessResult::Kind::kChanged);
  EXPECT_EQ(r->conflicts, 1);
  EXPECT_EQ(r->version, 3u);
  absl::StatusOr<Asset> now = service_->Get("video", id);
  EXPECT_EQ(now->row.payload,
            R"({"show_id":1,"format":"hd","duration_s":99,"title":"reprocessed"})");
  EXPECT_EQ(SearchIds({"/duration_s=99"}).size(), 1u);
  EXPECT_EQ(SearchIds({"/title=reprocessed"}).size(), 1u);
}

// A job mark with keep_row holds the row its step committed (the changed version, or the
// row read when nothing changed), through ProcessOnce and ProcessMany alike; ScanJobRows
// gives each marked asset once, and DeleteJobMarks removes the marks of that job only.
TEST_P(AssetServiceTest, JobMarksCanHoldTheCommittedRows) {
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(Create(Video(i + 1, "hd", 10)).id.ToString());
  auto set_title = [](const AssetRow&, JsonValue* payload) -> absl::StatusOr<bool> {
    payload->Set("title", JsonValue::String("kept"));
    return true;
  };
  auto same = [](const AssetRow&, JsonValue*) -> absl::StatusOr<bool> { return false; };
  JobMark keep{21, 0, /*keep_row=*/true};
  ASSERT_EQ(service_->ProcessOnce("video", ids[0], keep, set_title)->kind,
            ProcessResult::Kind::kChanged);
  ASSERT_EQ(service_->ProcessOnce("video", ids[1], keep, same)->kind,
            ProcessResult::Kind::kUnchanged);
  std::vector<std::string> rest = {ids[2], ids[3]};
  auto many_fn = [&](size_t index, const AssetRow& row, JsonValue* p) -> absl::StatusOr<bool> {
    return index == 0 ? set_title(row, p) : same(row, p);
  };
  absl::StatusOr<ProcessManyResult> many = service_->ProcessMany("video", rest, keep, many_fn);
  ASSERT_TRUE(many.ok()) << many.status();
  // Another job's marks (without rows) on the same assets are not this job's.
  ASSERT_TRUE(service_->ProcessOnce("video", ids[0], {22, 0}, same).ok());
  ASSERT_TRUE(service_->ProcessOnce("video", ids[3], {22, 0}, same).ok());
  // Changed later, after the step: the mark keeps what the step committed.
  ASSERT_TRUE(service_->Patch("video", ids[1], R"({"title":"after"})", std::nullopt).ok());

  std::map<std::string, AssetRow> rows;
  ASSERT_TRUE(service_
                  ->ScanJobRows("video", 21,
                                [&](const AssetId& id, const AssetRow& row) {
                                  EXPECT_TRUE(rows.emplace(id.ToString(), row).second);
                                  return absl::OkStatus();
                                })
                  .ok());
  ASSERT_EQ(rows.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    const AssetRow& row = rows[ids[i]];
    const bool changed = i == 0 || i == 2;
    EXPECT_EQ(row.version, changed ? 2u : 1u) << i;
    JsonValue payload = *ParseJson(row.payload, "p");
    const JsonValue* title = payload.Find("title");
    if (changed) {
      ASSERT_NE(title, nullptr) << i;
      EXPECT_EQ(title->string_value(), "kept");
      EXPECT_EQ(row.payload, service_->Get("video", ids[i])->row.payload) << i;
    } else {
      EXPECT_EQ(row.payload, Video(i + 1, "hd", 10)) << i;  // as created
    }
  }
  // An error from the callback stops the scan and is answered.
  int calls = 0;
  EXPECT_EQ(service_
                ->ScanJobRows("video", 21,
                              [&](const AssetId&, const AssetRow&) {
                                ++calls;
                                return absl::InternalError("disk full");
                              })
                .message(),
            "disk full");
  EXPECT_EQ(calls, 1);
  auto count = [](int* n) {
    return [n](const AssetId&, const AssetRow&) {
      ++*n;
      return absl::OkStatus();
    };
  };
  // A job whose marks hold no row cannot be scanned for rows.
  int other = 0;
  EXPECT_TRUE(absl::IsDataLoss(service_->ScanJobRows("video", 22, count(&other))));

  ASSERT_TRUE(service_->DeleteJobMarks("video", 21).ok());
  calls = 0;
  ASSERT_TRUE(service_->ScanJobRows("video", 21, count(&calls)).ok());
  EXPECT_EQ(calls, 0);
  // Job 22's marks are still there: a redelivery of its events does nothing.
  EXPECT_EQ(service_->ProcessOnce("video", ids[0], {22, 0}, same)->kind,
            ProcessResult::Kind::kAlreadyDone);
  EXPECT_TRUE(absl::IsNotFound(service_->ScanJobRows("nope", 21, count(&calls))));
}

// ProcessMany: one read and one conditional batch per bucket, each asset once per job
// (redelivered, or given twice in one call), errors per asset, nothing written for them.
TEST_P(AssetServiceTest, ProcessManyTakesEffectOncePerJobAndAsset) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Create(Video(i + 1, "hd", 10)).id.ToString());
  const std::string deleted = Create(Video(9, "hd", 10)).id.ToString();
  ASSERT_TRUE(service_->Delete("video", deleted, {}).ok());
  std::vector<std::string> call = {ids[0], ids[1], "not-an-id", ids[2], ids[0],
                                   deleted,  ids[3], ids[4]};
  int calls = 0;
  auto fn = [&](size_t index, const AssetRow& row, JsonValue* payload) -> absl::StatusOr<bool> {
    ++calls;
    EXPECT_EQ(row.version, 1u);
    if (call[index] == ids[3]) return absl::InvalidArgumentError("map: no entry");
    if (call[index] == ids[4]) return false;  // already as the processor wants it
    payload->Set("title", JsonValue::String("many"));
    return true;
  };
  const size_t changes_before = service_->Changes("video", {}, 100)->size();
  absl::StatusOr<ProcessManyResult> r = service_->ProcessMany("video", call, {11, 0}, fn);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->results.size(), call.size());
  EXPECT_EQ(r->batch_conflicts, 0);
  EXPECT_EQ(calls, 5);  // ids[0] once, not for the bad id nor the deleted asset
  auto kind = [&](size_t i) { return r->results[i]->kind; };
  EXPECT_EQ(kind(0), ProcessResult::Kind::kChanged);
  EXPECT_EQ(r->results[0]->version, 2u);
  EXPECT_EQ(kind(1), ProcessResult::Kind::kChanged);
  EXPECT_FALSE(r->results[2].ok());
  EXPECT_EQ(kind(3), ProcessResult::Kind::kChanged);
  EXPECT_EQ(kind(4), ProcessResult::Kind::kAlreadyDone);  // given twice: once in effect
  EXPECT_EQ(kind(5), ProcessResult::Kind::kGone);
  EXPECT_EQ(r->results[6].status().message(), "map: no entry");
  EXPECT_EQ(kind(7), ProcessResult::Kind::kUnchanged);
  for (int i : {0, 1, 2}) {
    absl::StatusOr<Asset> a = service_->Get("video", ids[i]);
    EXPECT_EQ(a->row.version, 2u) << i;
    EXPECT_EQ(a->row.payload.find(R"("title":"many")") != std::string::npos, true) << i;
    EXPECT_EQ(service_->Versions("video", ids[i])->size(), 2u) << i;  // the old one kept
  }
  EXPECT_EQ(service_->Get("video", ids[3])->row.version, 1u);  // the error wrote nothing
  EXPECT_EQ(service_->Get("video", ids[4])->row.version, 1u);  // unchanged: only the mark
  EXPECT_EQ(SearchIds({"/title=many"}, 100).size(), 3u);       // index entries written
  EXPECT_EQ(service_->Changes("video", {}, 100)->size(), changes_before + 3);
  // Redelivered: nothing happens, the processor is not run; the failed asset runs again.
  calls = 0;
  r = service_->ProcessMany("video", call, {11, 0}, fn);
  ASSERT_TRUE(r.ok()) << r.status();
  for (size_t i : {0, 1, 3, 4, 7}) EXPECT_EQ(kind(i), ProcessResult::Kind::kAlreadyDone) << i;
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(service_->Get("video", ids[0])->row.version, 2u);
  EXPECT_EQ(service_->Changes("video", {}, 100)->size(), changes_before + 3);
  // The same assets through ProcessOnce of the same job: done already.
  auto once = [](const AssetRow&, JsonValue*) -> absl::StatusOr<bool> { return true; };
  EXPECT_EQ(service_->ProcessOnce("video", ids[1], {11, 0}, once)->kind,
            ProcessResult::Kind::kAlreadyDone);
}

// A production write between ProcessMany's read and its write fails the whole batch's
// condition: nothing of it is applied, and each asset is redone on what it holds now.
TEST_P(AssetServiceTest, ProcessManyNeverOverwritesAConcurrentWrite) {
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(Create(Video(i + 1, "hd", 10)).id.ToString());
  bool first = true;
  auto fn = [&](size_t index, const AssetRow&, JsonValue* payload) -> absl::StatusOr<bool> {
    if (index == 2 && first) {
      first = false;
      absl::StatusOr<Asset> client =
          service_->Patch("video", ids[1], R"({"duration_s":99})", std::nullopt);
      EXPECT_TRUE(client.ok()) << client.status();
    }
    payload->Set("title", JsonValue::String("reprocessed"));
    return true;
  };
  absl::StatusOr<ProcessManyResult> r = service_->ProcessMany("video", ids, {12, 0}, fn);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->batch_conflicts, 1);
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(r->results[i].ok()) << i;
    EXPECT_EQ(r->results[i]->kind, ProcessResult::Kind::kChanged) << i;
    absl::StatusOr<Asset> a = service_->Get("video", ids[i]);
    EXPECT_EQ(a->row.version, i == 1 ? 3u : 2u) << i;  // one job write each
    EXPECT_NE(a->row.payload.find(R"("title":"reprocessed")"), std::string::npos) << i;
  }
  EXPECT_EQ(service_->Get("video", ids[1])->row.payload,
            R"({"show_id":2,"format":"hd","duration_s":99,"title":"reprocessed"})");
  EXPECT_EQ(SearchIds({"/duration_s=99"}).size(), 1u);
  EXPECT_EQ(SearchIds({"/title=reprocessed"}, 100).size(), 4u);
}

// Change events are published by the service's thread: whatever waits when the service
// closes is published first (nothing is left for the next Open's outbox recovery).
TEST_P(AssetServiceTest, ClosingTheServicePublishesTheChangeEventsThatWait) {
  for (int i = 0; i < 30; ++i) Create(Video(i + 1, "hd", 10));
  service_.reset();  // no FlushChanges
  EXPECT_EQ(OutboxRows(), 0u);
  absl::StatusOr<std::vector<store::Message>> feed =
      queue_->Read(AssetService::TopicFor("video"), 0, 0, 1000);
  ASSERT_TRUE(feed.ok()) << feed.status();
  EXPECT_EQ(feed->size(), 30u);
}

// A full forwarder queue makes writers wait for room: with room for one, writers on two
// threads still get every event into the feed, each asset's in version order.
TEST_P(AssetServiceTest, AFullForwarderQueueKeepsEveryEventInWriteOrder) {
  Close();
  max_queued_forwards_ = 1;
  Open();
  Asset a = Create(Video(1, "hd", 10));
  Asset b = Create(Video(2, "hd", 10));
  auto patch = [&](const Asset& asset) {
    for (int i = 0; i < 40; ++i) {
      absl::StatusOr<Asset> p = service_->Patch(
          "video", asset.id.ToString(), "{\"duration_s\":" + std::to_string(i) + "}", std::nullopt);
      ASSERT_TRUE(p.ok()) << p.status();
    }
  };
  std::thread other([&] { patch(b); });
  patch(a);
  other.join();
  absl::StatusOr<std::vector<ChangeRecord>> feed = service_->Changes("video", {}, 1000);
  ASSERT_TRUE(feed.ok()) << feed.status();
  ASSERT_EQ(feed->size(), 82u);
  std::map<std::string, int> last;  // id -> last version seen
  for (const ChangeRecord& c : *feed) {
    for (const Asset* asset : {&a, &b}) {
      if (c.event_json.find(asset->id.ToString()) == std::string::npos) continue;
      const size_t at = c.event_json.find("\"version\":") + 10;
      const int version = std::stoi(c.event_json.substr(at));
      EXPECT_EQ(version, last[asset->id.ToString()] + 1) << c.event_json;
      last[asset->id.ToString()] = version;
    }
  }
  EXPECT_EQ(last[a.id.ToString()], 41);
  EXPECT_EQ(last[b.id.ToString()], 41);
}

// max_queued_forwards 0: a write answers after its events are published.
TEST_P(AssetServiceTest, WithoutTheForwarderAWriteAnswersAfterItsEventsArePublished) {
  Close();
  max_queued_forwards_ = 0;
  Open();
  Asset a = Create(Video(1, "hd", 10));
  EXPECT_EQ(OutboxRows(), 0u);
  absl::StatusOr<std::vector<store::Message>> feed =
      queue_->Read(AssetService::TopicFor("video"), 0, 0, 1000);
  ASSERT_TRUE(feed.ok()) << feed.status();
  ASSERT_EQ(feed->size(), 1u);
  EXPECT_NE(feed->front().value.find(a.id.ToString()), std::string::npos);
}

// A bucket's assets are written max_process_write at a time: a concurrent write fails only
// the batch that held its asset; the batches before and after it are applied as batches.
TEST_P(AssetServiceTest, ProcessManyWritesABucketInBatchesAndRedoesOnlyTheOneThatLostARace) {
  Close();
  max_process_write_ = 2;
  Open();
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(Create(Video(i + 1, "hd", 10)).id.ToString());
  const size_t changes_before = service_->Changes("video", {}, 100)->size();
  int calls = 0;
  auto fn = [&](size_t index, const AssetRow&, JsonValue* payload) -> absl::StatusOr<bool> {
    ++calls;
    if (index == 2 && calls == 3) {  // the second batch (ids 2 and 3), on its first read
      absl::StatusOr<Asset> client =
          service_->Patch("video", ids[3], R"({"duration_s":99})", std::nullopt);
      EXPECT_TRUE(client.ok()) << client.status();
    }
    payload->Set("title", JsonValue::String("chunked"));
    return true;
  };
  absl::StatusOr<ProcessManyResult> r = service_->ProcessMany("video", ids, {13, 0}, fn);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->batch_conflicts, 1);
  EXPECT_EQ(calls, 6 + 2);  // the second batch's two assets ran again, one by one
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(r->results[i].ok()) << i;
    EXPECT_EQ(r->results[i]->kind, ProcessResult::Kind::kChanged) << i;
    EXPECT_EQ(service_->Get("video", ids[i])->row.version, i == 3 ? 3u : 2u) << i;
  }
  EXPECT_EQ(SearchIds({"/title=chunked"}, 100).size(), 6u);
  EXPECT_EQ(SearchIds({"/duration_s=99"}).size(), 1u);  // the client's write kept
  EXPECT_EQ(service_->Changes("video", {}, 100)->size(), changes_before + 6 + 1);
}

INSTANTIATE_TEST_SUITE_P(Stores, AssetServiceTest, ::testing::Values("Rocks", "Memory"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace strata::assets
