// Avro object container files of exported assets, written and read with avro-c (Debian's
// libavro). avro_file.cc is the only file that includes avro-c's headers; it is its own
// library (strata_reprocess_avro), the only one linked with libavro.
//
// The file's schema (embedded in its header, as every container file's is; AvroExportSchema):
// a record "strata.Asset" with fields type, id (strings), version, schema_version (longs),
// created_at, updated_at (longs: ms since the Unix epoch, UTC) and payload (a string: the
// payload as compact JSON, since asset types' schemas change and may be open). Blocks are
// deflate-compressed.
//
// Thread safety: a writer is not thread-safe (the export processor serialises its appends);
// ReadAvroExport is.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace strata::reprocess {

struct ExportRecord {
  std::string type;
  std::string id;
  int64_t version = 0;
  int64_t schema_version = 0;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::string payload;  // compact JSON
};

// The writer schema, as JSON.
std::string_view AvroExportSchema();

class AvroExportWriter {
 public:
  // Creates (or truncates) the file at `path` and writes its header. Internal (with avro-c's
  // message) if that fails.
  static absl::StatusOr<std::unique_ptr<AvroExportWriter>> Create(const std::string& path);
  // Closes the file if Close was not called (errors are then lost).
  ~AvroExportWriter();
  AvroExportWriter(const AvroExportWriter&) = delete;
  AvroExportWriter& operator=(const AvroExportWriter&) = delete;

  absl::Status Append(const ExportRecord& record);
  // Writes the last block and closes the file.
  absl::Status Close();

 private:
  struct State;
  explicit AvroExportWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Every record of a container file written by AvroExportWriter, and (if `schema_json`) the
// writer schema found in its header, as avro-c prints it.
absl::StatusOr<std::vector<ExportRecord>> ReadAvroExport(const std::string& path,
                                                         std::string* schema_json = nullptr);

}  // namespace strata::reprocess
