// Tests of the language-preference write filter and its table, alone over the in-memory row
// store (viewing_service_test.cc covers it through ingest).
#include "strata/viewing/language_preferences.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "strata/store/memory_row_store.h"

namespace strata::viewing {
namespace {

constexpr Millis kT0 = 1'700'000'000'000;
constexpr Millis kDay = 24LL * 3600 * 1000;

ViewingRecord Play(MemberId member, Millis event_time, std::string audio,
                   std::string subtitle = "", std::string content = "en") {
  ViewingRecord r;
  r.member = member;
  r.kind = Kind::kPlay;
  r.session = std::to_string(event_time);
  r.started_at = event_time;
  r.event_time = event_time;
  r.content_lang = std::move(content);
  r.audio_lang = std::move(audio);
  r.subtitle_lang = std::move(subtitle);
  return r;
}

// Counts the point reads that reach a table (the rest passes through).
class CountingTable final : public store::Table {
 public:
  explicit CountingTable(store::Table* inner) : inner_(inner) {}
  const std::string& name() const override { return inner_->name(); }
  absl::StatusOr<std::string> Get(std::string_view p, std::string_view c,
                                  const store::ReadOptions& o) override {
    ++gets;
    return inner_->Get(p, c, o);
  }
  std::vector<absl::StatusOr<std::string>> MultiGet(std::span<const store::RowKey> keys,
                                                    const store::ReadOptions& o) override {
    ++multi_gets;
    multi_get_keys += keys.size();
    std::vector<absl::StatusOr<std::string>> out;
    for (const auto& k : keys) out.push_back(inner_->Get(k.partition, k.clustering, o));
    return out;
  }
  absl::Status Put(std::string_view p, std::string_view c, std::string_view v,
                   Millis e) override {
    return inner_->Put(p, c, v, e);
  }
  absl::Status Delete(std::string_view p, std::string_view c) override {
    return inner_->Delete(p, c);
  }
  absl::Status DeleteRange(std::string_view p, std::string_view s, std::string_view e) override {
    return inner_->DeleteRange(p, s, e);
  }
  absl::Status Apply(std::string_view p, const store::WriteBatch& b) override {
    return inner_->Apply(p, b);
  }
  absl::StatusOr<store::ScanPage> Scan(std::string_view p, const store::ScanOptions& o,
                                       const store::ReadOptions& r) override {
    return inner_->Scan(p, o, r);
  }
  absl::StatusOr<std::vector<store::KeyRange>> SplitRanges(int n) override {
    return inner_->SplitRanges(n);
  }
  absl::StatusOr<store::TableScanPage> ScanRange(const store::KeyRange& r, size_t l,
                                                 std::string_view c,
                                                 const store::ReadOptions& o) override {
    return inner_->ScanRange(r, l, c, o);
  }
  absl::StatusOr<store::TableStats> Stats() override { return inner_->Stats(); }

  int gets = 0;
  int multi_gets = 0;
  size_t multi_get_keys = 0;

 private:
  store::Table* inner_;
};

class LanguagePreferencesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto table = store_.OpenTable({"languages", store::TableProfile::kIndex});
    ASSERT_TRUE(table.ok()) << table.status();
    table_ = *table;
    prefs_ = std::make_unique<LanguagePreferences>(table_, 30 * kDay, &changes_, &unchanged_);
  }

  // Plans the changes of one member's plays; stores them if `store`. Returns the planned
  // change count (each change is a current row and a change row).
  size_t Ingest(const std::vector<ViewingRecord>& plays, bool store = true) {
    std::vector<const ViewingRecord*> ptrs;
    for (const auto& r : plays) ptrs.push_back(&r);
    std::vector<store::PartitionWrite> writes;
    std::vector<MemberId> touched;
    EXPECT_TRUE(prefs_->PlanChanges(ptrs, &writes, &touched).ok());
    if (writes.empty()) {
      EXPECT_TRUE(touched.empty());
      return 0;
    }
    EXPECT_EQ(writes.size(), 1u);
    EXPECT_EQ(touched, std::vector<MemberId>{plays.front().member});
    if (store) {
      EXPECT_TRUE(store_.Write(writes).ok());
    }
    return writes[0].batch.size() / 2;
  }

  ManualClock clock_{kT0};
  store::MemoryRowStore store_{&clock_};
  store::Table* table_ = nullptr;
  Counter changes_;
  Counter unchanged_;
  std::unique_ptr<LanguagePreferences> prefs_;
};

TEST_F(LanguagePreferencesTest, StoresAChangeOnlyWhenTheChoiceDiffers) {
  EXPECT_EQ(Ingest({Play(1, kT0, "en"), Play(1, kT0 + 1, "en"), Play(1, kT0 + 2, "fr", "en")}),
            2u);
  EXPECT_EQ(changes_.Value(), 2u);
  EXPECT_EQ(unchanged_.Value(), 1u);
  EXPECT_EQ(Ingest({Play(1, kT0 + 3, "fr", "en")}), 0u) << "same as the current preference";
  EXPECT_EQ(unchanged_.Value(), 2u);

  auto history = prefs_->Read(1);
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->current.size(), 1u);
  EXPECT_EQ(history->current[0].content_lang, "en");
  EXPECT_EQ(history->current[0].audio_lang, "fr");
  EXPECT_EQ(history->current[0].subtitle_lang, "en");
  ASSERT_EQ(history->changes.size(), 2u);
  EXPECT_EQ(history->changes[0].event_time, kT0 + 2);  // newest first
  EXPECT_EQ(history->changes[1].event_time, kT0);
}

TEST_F(LanguagePreferencesTest, ComparesInEventTimeOrderAndIgnoresOlderEvents) {
  // Out of order in the batch: sorted by event time, so en -> fr is one change each.
  EXPECT_EQ(Ingest({Play(2, kT0 + 5, "fr"), Play(2, kT0, "en")}), 2u);
  // An event older than the current preference never replaces it.
  EXPECT_EQ(Ingest({Play(2, kT0 + 1, "de")}), 0u);
  EXPECT_EQ(prefs_->Read(2)->current[0].audio_lang, "fr");
}

TEST_F(LanguagePreferencesTest, EachContentLanguageHasItsOwnPreference) {
  EXPECT_EQ(Ingest({Play(3, kT0, "en", "", "en"), Play(3, kT0 + 1, "en", "pt", "pt")}), 2u);
  EXPECT_EQ(prefs_->Read(3)->current.size(), 2u);
  // Plays without a content language carry no preference.
  EXPECT_EQ(Ingest({Play(3, kT0 + 2, "fr", "", "")}), 0u);
}

TEST_F(LanguagePreferencesTest, PrefetchReadsAllMissingPointsAtOnce) {
  // Stored: members 10..19 chose "en" for English content.
  for (MemberId m = 10; m < 20; ++m) ASSERT_EQ(Ingest({Play(m, kT0, "en")}), 1u);
  // A restarted server: nothing in memory, reads counted.
  CountingTable counting(table_);
  LanguagePreferences fresh(&counting, 30 * kDay, &changes_, &unchanged_);
  // One batch, ordered by member as ingest orders it: members 10..14 repeat their choice,
  // 15..19 change it, 20..24 are new; member 12 also plays Portuguese content.
  std::vector<ViewingRecord> batch;
  for (MemberId m = 10; m < 25; ++m) {
    batch.push_back(Play(m, kT0 + 10, m < 15 ? "en" : "fr"));
    batch.push_back(Play(m, kT0 + 11, m < 15 ? "en" : "fr"));
    if (m == 12) batch.push_back(Play(m, kT0 + 12, "pt", "", "pt"));
  }
  std::vector<const ViewingRecord*> ptrs;
  for (const auto& r : batch) ptrs.push_back(&r);
  ASSERT_TRUE(fresh.Prefetch(ptrs).ok());
  EXPECT_EQ(counting.multi_gets, 1);
  EXPECT_EQ(counting.multi_get_keys, 16u) << "15 members' en, member 12's pt, each once";
  // Planning the batch member by member reads nothing more, and finds the same changes as
  // reads one at a time would: none for 10..14, one each for 15..24, one for 12's pt.
  size_t planned = 0;
  for (size_t begin = 0; begin < ptrs.size();) {
    size_t end = begin;
    while (end < ptrs.size() && ptrs[end]->member == ptrs[begin]->member) ++end;
    std::vector<store::PartitionWrite> writes;
    std::vector<MemberId> touched;
    ASSERT_TRUE(fresh
                    .PlanChanges(std::span<const ViewingRecord* const>(ptrs.data() + begin,
                                                                       end - begin),
                                 &writes, &touched)
                    .ok());
    for (const auto& w : writes) planned += w.batch.size() / 2;
    begin = end;
  }
  EXPECT_EQ(counting.gets, 0);
  EXPECT_EQ(planned, 11u);
  // Everything is in memory now: a second prefetch reads nothing.
  ASSERT_TRUE(fresh.Prefetch(ptrs).ok());
  EXPECT_EQ(counting.multi_gets, 1);
}

TEST_F(LanguagePreferencesTest, ForgetRereadsTheStoredPreference) {
  ASSERT_EQ(Ingest({Play(4, kT0, "en")}), 1u);
  // Planned but never stored (the write failed): the comparison point ran ahead.
  ASSERT_EQ(Ingest({Play(4, kT0 + 1, "fr")}, /*store=*/false), 1u);
  EXPECT_EQ(Ingest({Play(4, kT0 + 2, "fr")}), 0u) << "the cache believes fr is stored";
  prefs_->Forget(4);
  EXPECT_EQ(Ingest({Play(4, kT0 + 3, "fr")}), 1u) << "re-read: en is what is stored";
}

TEST_F(LanguagePreferencesTest, EraseDeletesRowsAndComparisonPoints) {
  ASSERT_EQ(Ingest({Play(5, kT0, "en")}), 1u);
  ASSERT_EQ(Ingest({Play(6, kT0, "en")}), 1u);
  {
    std::unique_lock<std::mutex> lock = prefs_->LockMember(5);
    ASSERT_TRUE(prefs_->EraseLocked(5).ok());
  }
  auto erased = prefs_->Read(5);
  ASSERT_TRUE(erased.ok());
  EXPECT_TRUE(erased->current.empty());
  EXPECT_TRUE(erased->changes.empty());
  EXPECT_EQ(Ingest({Play(5, kT0 + 1, "en")}), 1u) << "no comparison point left";
  EXPECT_EQ(prefs_->Read(6)->current.size(), 1u) << "other members keep theirs";
}

TEST_F(LanguagePreferencesTest, ChangeRowsExpireCurrentRowsStay) {
  ASSERT_EQ(Ingest({Play(7, kT0, "en")}), 1u);
  clock_.Set(kT0 + 30 * kDay - 1);
  EXPECT_EQ(prefs_->Read(7)->changes.size(), 1u);
  clock_.Set(kT0 + 30 * kDay);
  auto history = prefs_->Read(7);
  ASSERT_TRUE(history.ok());
  EXPECT_TRUE(history->changes.empty());
  EXPECT_EQ(history->current.size(), 1u);
}

TEST(LanguagePreferencesRows, ChangeRowsStartWithH) {
  EXPECT_TRUE(LanguagePreferences::IsChangeRow("h\x80"));
  EXPECT_FALSE(LanguagePreferences::IsChangeRow("cen"));
  EXPECT_FALSE(LanguagePreferences::IsChangeRow(""));
}

}  // namespace
}  // namespace strata::viewing
