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
