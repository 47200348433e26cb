// The mark phase's analytic export: the snapshot's rows as NDJSON files (one JSON object per
// line, UTF-8), Hive-partitioned by day so DuckDB, Spark or pandas read them as tables:
//
//   <export_dir>/<task>/_schema.json                               the column types (docs/gc.md)
//   <export_dir>/<task>/buckets/dt=YYYY-MM-DD/run-<id>.ndjson
//   <export_dir>/<task>/objects/dt=YYYY-MM-DD/run-<id>-part-<n>.ndjson   object + superseded rows
//   <export_dir>/<task>/worklist/dt=YYYY-MM-DD/run-<id>-part-<n>.ndjson  the eligible items
//
// e.g. DuckDB: SELECT dt, reason, count(*), sum(size) FROM
//   read_json_auto('<dir>/gc/worklist/*/*.ndjson', hive_partitioning=true) GROUP BY ALL;
// Files are written under a temporary name and renamed when complete (Finish), so a reader
// never sees half a file. Keys that are not valid UTF-8 are written with \u00XX escapes of
// their bytes (JSON strings cannot hold raw bytes). Not thread-safe, except that each
// ExportPart may be used by its own thread.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/gc/records.h"
#include "strata/media/rows.h"

namespace strata::gc {

class ExportPart {
 public:
  ~ExportPart();
  void Object(std::string_view bucket, std::string_view key, const media::ObjectRow& row);
  void Superseded(std::string_view bucket, std::string_view key, uint64_t generation,
                  const media::SupersededRow& row);
  void Work(const WorkItem& item, Millis as_of);

 private:
  friend class Exporter;
  std::FILE* objects_ = nullptr;
  std::FILE* work_ = nullptr;
  uint64_t run_id_ = 0;
  std::string line_;
  bool failed_ = false;
};

class Exporter {
 public:
  static absl::StatusOr<std::unique_ptr<Exporter>> Create(const std::string& export_dir,
                                                          std::string_view task,
                                                          const std::string& day, uint64_t run_id);
  ~Exporter();
  void Bucket(std::string_view name, const media::BucketRow& row);
  // The writer of scan range `i` (created on first use; call from one thread first).
  ExportPart* Part(size_t i);
  absl::Status Finish();
  const std::string& root() const { return root_; }

 private:
  std::string root_;  // <export_dir>/<task>
  std::string day_;
  uint64_t run_id_ = 0;
  std::FILE* buckets_ = nullptr;
  std::vector<std::unique_ptr<ExportPart>> parts_;
  // (temporary, final) names to rename at Finish.
  std::vector<std::pair<std::string, std::string>> files_;
  absl::Status status_;
};

// Deletes the export files of all but the newest `keep_runs` runs (by run id) under
// <export_dir>/<task>, and the day directories left empty; every run, dry runs included,
// writes a snapshot, so without this the disk fills. Files not named run-<id>... are left
// alone. Returns how many files were deleted. keep_runs == 0: nothing is deleted.
absl::StatusOr<size_t> PruneExports(const std::string& export_dir, std::string_view task,
                                    size_t keep_runs);

// Appends `s` as a JSON string (quotes included).
void AppendJsonString(std::string* out, std::string_view s);

}  // namespace strata::gc
