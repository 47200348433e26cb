#include <gtest/gtest.h>

#include "absl/strings/escaping.h"

#include "strata/media/checksums.h"
#include "strata/media/rows.h"
#include "strata/media/validation.h"

namespace strata::media {
namespace {

TEST(MediaRowsTest, ObjectRowRoundTripsAndRejectsTruncation) {
  ObjectRow row;
  row.generation = 1'700'000'000'000'123;
  row.created_at = 1'700'000'000'000;
  row.ttl_ms = 30LL * 86'400'000;
  row.deleted_at = 1'700'000'100'000;
  row.grace_ms = 7LL * 86'400'000;
  row.size = 5 << 20;
  row.parts = 3;
  row.storage_class = "hot";
  row.blob = "hot/b/k@00";
  row.sha1 = std::string(20, '\x01');
  row.md5 = std::string(16, '\x02');
  row.xxh3 = 0xdeadbeefcafef00dULL;
  row.content_type = "video/mp4";
  row.wrapped_key = std::string("\0\xff key", 6);
  row.meta = {{"lang", "en"}, {"title", "x y"}};
  std::string enc = EncodeObjectRow(row);
  absl::StatusOr<ObjectRow> dec = DecodeObjectRow(enc);
  ASSERT_TRUE(dec.ok()) << dec.status();
  EXPECT_EQ(EncodeObjectRow(*dec), enc);
  EXPECT_EQ(dec->meta, row.meta);
  EXPECT_EQ(dec->wrapped_key, row.wrapped_key);
  EXPECT_EQ(dec->expires_at(), row.created_at + row.ttl_ms);
  for (size_t n = 0; n < enc.size(); ++n) {
    EXPECT_TRUE(absl::IsDataLoss(DecodeObjectRow(enc.substr(0, n)).status())) << n;
  }
  std::string v2 = enc;
  v2[0] = 2;
  EXPECT_TRUE(absl::IsDataLoss(DecodeObjectRow(v2).status()));
  EXPECT_TRUE(absl::IsDataLoss(DecodeObjectRow(enc + "x").status()));
}

TEST(MediaRowsTest, BucketAndSupersededRowsRoundTrip) {
  BucketRow b{{15LL * 86'400'000, 3'600'000, "cold"}, 5, 6};
  absl::StatusOr<BucketRow> bd = DecodeBucketRow(EncodeBucketRow(b));
  ASSERT_TRUE(bd.ok());
  EXPECT_EQ(bd->policy.ttl_ms, b.policy.ttl_ms);
  EXPECT_EQ(bd->policy.grace_ms, b.policy.grace_ms);
  EXPECT_EQ(bd->policy.storage_class, "cold");
  EXPECT_EQ(bd->updated_at, 6);
  SupersededRow s{"hot/b/k@01", 10, 1, "hot", -5};
  absl::StatusOr<SupersededRow> sd = DecodeSupersededRow(EncodeSupersededRow(s));
  ASSERT_TRUE(sd.ok());
  EXPECT_EQ(sd->blob, s.blob);
  EXPECT_EQ(sd->superseded_at, -5);
  EXPECT_TRUE(absl::IsDataLoss(DecodeBucketRow("").status()));
}

TEST(MediaRowsTest, IndexKeysSortByMetaKeyThenValueThenObjectKey) {
  EXPECT_LT(IndexClustering("a", "x", "zz"), IndexClustering("a", "xa", "a"));
  EXPECT_LT(IndexClustering("a", "x", "k1"), IndexClustering("a", "x", "k2"));
  EXPECT_LT(IndexClustering("a", "zzz", "k"), IndexClustering("ab", "", "k"));
  std::string p = IndexPrefix("a", "x");
  EXPECT_EQ(IndexClustering("a", "x", "k").substr(0, p.size()), p);
  EXPECT_GT(PrefixEnd(p), IndexClustering("a", "x", "\x7e\x7e"));
  EXPECT_LT(PrefixEnd(p), IndexClustering("a", "xa", ""));
  EXPECT_EQ(PrefixEnd("a\xff"), "b");
  EXPECT_EQ(PrefixEnd("\xff"), "");
  EXPECT_LT(SupersededClustering("k", 1), SupersededClustering("k", 2));
}

TEST(MediaValidationTest, Durations) {
  EXPECT_EQ(ParseDuration("30d", "ttl").value(), 30LL * 86'400'000);
  EXPECT_EQ(ParseDuration("12h", "ttl").value(), 12LL * 3'600'000);
  EXPECT_EQ(ParseDuration("90m", "ttl").value(), 90LL * 60'000);
  EXPECT_EQ(ParseDuration("3600s", "ttl").value(), 3'600'000);
  EXPECT_EQ(ParseDuration("0", "ttl").value(), 0);
  for (const char* bad : {"", "d", "30", "30x", "-1d", "+1d", "1.5d", "99999999d", " 1d", "1 d"}) {
    absl::StatusOr<Millis> r = ParseDuration(bad, "grace");
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().message().substr(0, 6), "grace:") << bad;
    }
  }
  EXPECT_EQ(FormatDuration(30LL * 86'400'000), "30d");
  EXPECT_EQ(FormatDuration(36LL * 3'600'000), "36h");
  EXPECT_EQ(FormatDuration(90'000), "90s");
  EXPECT_EQ(FormatDuration(0), "0");
}

TEST(MediaValidationTest, BucketsKeysAndMeta) {
  EXPECT_TRUE(ValidateBucketName("media-1.prod").ok());
  for (const char* bad : {"ab", "-ab", "ab-", "Abc", "a..b", "a_b", "a b"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ValidateBucketName(bad))) << bad;
  }
  EXPECT_TRUE(ValidateBucketName(std::string(63, 'a')).ok());
  EXPECT_FALSE(ValidateBucketName(std::string(64, 'a')).ok());
  EXPECT_TRUE(ValidateObjectKey("shows/s01/e01 final:v2.mov").ok());
  for (const char* bad : {"", "/a", "a/", "a//b", "a/../b", "..", "./a", "a\\b", "a\tb"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ValidateObjectKey(bad))) << bad;
  }
  EXPECT_FALSE(ValidateObjectKey(std::string(201, 'a')).ok());
  EXPECT_FALSE(ValidateObjectKey(std::string(1025, 'a')).ok());
  // UTF-8: multibyte keys are fine; bytes that are not UTF-8 are refused, naming the key.
  EXPECT_TRUE(ValidateObjectKey("séries/東京/🎬.mov").ok());
  for (std::string bad : {std::string("a\xff"), std::string("\xc3"), std::string("\xc0\xaf"),
                          std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"),
                          std::string("\x80" "abc"), std::string("ab\xe2\x82")}) {
    absl::Status s = ValidateObjectKey(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << absl::CEscape(bad);
    EXPECT_EQ(s.message(), "key: must be valid UTF-8") << absl::CEscape(bad);
  }
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF, the last code point
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));       // the euro sign
  EXPECT_TRUE(ValidateMetaKey("content-id_2").ok());
  EXPECT_FALSE(ValidateMetaKey("Upper").ok());
  EXPECT_FALSE(ValidateMetaValue("k", std::string(257, 'v')).ok());
  EXPECT_FALSE(ValidateStorageClass("").ok());
  EXPECT_TRUE(ValidateStorageClass("glacier_deep").ok());
}

TEST(MediaRowsTest, BlobNamesRoundTripAndForeignNamesAreRefused) {
  const std::string name = BlobName("hot", "media", "shows/a@b/pilot.mxf", 0x0123456789abcdefULL);
  EXPECT_EQ(name, "hot/media/shows/a@b/pilot.mxf@0123456789abcdef");
  BlobNameParts p;
  ASSERT_TRUE(ParseBlobName(name, &p));
  EXPECT_EQ(p.storage_class, "hot");
  EXPECT_EQ(p.bucket, "media");
  EXPECT_EQ(p.key, "shows/a@b/pilot.mxf");
  EXPECT_EQ(p.generation, 0x0123456789abcdefULL);
  for (const char* foreign :
       {"hot/media/k", "hot/media/k@123", "hot/media/k@0123456789ABCDEF",
        "hot/media@0123456789abcdef", "hot/Media/k@0123456789abcdef",
        "HOT/media/k@0123456789abcdef", "hot/media/@0123456789abcdef",
        "hot/media/a/../b@0123456789abcdef", "nothing", "hot/media/k@0123456789abcdef0"}) {
    EXPECT_FALSE(ParseBlobName(foreign, &p)) << foreign;
  }
}

TEST(ChecksumsTest, KnownVectors) {
  ObjectHasher h;
  h.Update("a");
  h.Update("bc");
  Digests d = h.Finish();
  EXPECT_EQ(Hex(d.sha1), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(Hex(d.md5), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(Hex64(d.xxh3), "78af5f94892f3950");
  ObjectHasher empty;
  Digests e = empty.Finish();
  EXPECT_EQ(Hex(e.sha1), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(Hex64(e.xxh3), "2d06800538d394c2");
}

}  // namespace
}  // namespace strata::media
