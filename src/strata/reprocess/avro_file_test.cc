// Avro container files written by AvroExportWriter read back with avro-c's reader: every
// record, the schema in the header, deflate blocks across many records.
#include "strata/reprocess/avro_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace strata::reprocess {
namespace {

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("strata_avro_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

TEST(AvroFileTest, RecordsAndSchemaReadBack) {
  const std::string path = TempPath("a.avro");
  auto writer = AvroExportWriter::Create(path);
  ASSERT_TRUE(writer.ok()) << writer.status();
  std::vector<ExportRecord> in;
  for (int i = 0; i < 5000; ++i) {  // several 64 KiB blocks
    ExportRecord r;
    r.type = "video";
    r.id = "0190a0b0-0000-7000-8000-" + std::to_string(100000000000 + i);
    r.version = i % 7 + 1;
    r.schema_version = 2;
    r.created_at = 1760000000000 + i;
    r.updated_at = 1760000000500 + i;
    r.payload = "{\"n\":" + std::to_string(i) + ",\"s\":\"caf\xc3\xa9 \\\"q\\\"\"}";
    in.push_back(r);
    ASSERT_TRUE((*writer)->Append(r).ok());
  }
  ASSERT_TRUE((*writer)->Close().ok());
  EXPECT_FALSE((*writer)->Append(in[0]).ok());  // closed
  std::string schema;
  absl::StatusOr<std::vector<ExportRecord>> out = ReadAvroExport(path, &schema);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ((*out)[i].type, in[i].type);
    EXPECT_EQ((*out)[i].id, in[i].id);
    EXPECT_EQ((*out)[i].version, in[i].version);
    EXPECT_EQ((*out)[i].schema_version, in[i].schema_version);
    EXPECT_EQ((*out)[i].created_at, in[i].created_at);
    EXPECT_EQ((*out)[i].updated_at, in[i].updated_at);
    EXPECT_EQ((*out)[i].payload, in[i].payload);
  }
  EXPECT_NE(schema.find("\"name\":\"Asset\""), std::string::npos) << schema;
  EXPECT_NE(schema.find("\"payload\""), std::string::npos) << schema;
  // Compressed: smaller than the payloads alone.
  size_t payload_bytes = 0;
  for (const ExportRecord& r : in) payload_bytes += r.payload.size();
  EXPECT_LT(std::filesystem::file_size(path), payload_bytes);
  std::filesystem::remove(path);
}

TEST(AvroFileTest, AnEmptyFileHasOnlyItsHeaderAndAMissingFileIsAnError) {
  const std::string path = TempPath("empty.avro");
  auto writer = AvroExportWriter::Create(path);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Close().ok());
  absl::StatusOr<std::vector<ExportRecord>> out = ReadAvroExport(path);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(out->empty());
  std::filesystem::remove(path);
  EXPECT_FALSE(ReadAvroExport(path).ok());
}

}  // namespace
}  // namespace strata::reprocess
