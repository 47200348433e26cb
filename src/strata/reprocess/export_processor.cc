// The `export` processor: writes each selected asset to one file per job, for analytics
// (docs/assets.md, "Export"). NDJSON (one JSON object a line) or an Avro object container
// file (avro_file.h).
//
// Exactly once, crash or not: processing an asset writes nothing but its job mark, and the
// mark holds the asset's row as read (RecordsRows -> JobMark::keep_row), in the same atomic
// write that makes a redelivered event a no-op. The file is written only when every event
// is processed (Finish): from the marks, bucket by bucket (newest first, ids ascending
// within a bucket), as <export dir>/job-<id>.<ext>.partial, fsynced and renamed to
// job-<id>.<ext>, the directory fsynced. So a file under its final name is complete, a job
// interrupted anywhere (kill -9 while processing or while writing the file) resumes and
// writes the file again from the start, and no asset is in it twice or missing. Once the
// job is marked succeeded, its marks (and the rows they hold) are deleted; a crash just
// before that leaves them until they expire (JobRunnerOptions::mark_ttl_ms). A job that
// fails or is cancelled drops them too, and a failed Finish removes its .partial.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "strata/assets/asset_service.h"
#include "strata/assets/json.h"
#include "strata/base/log.h"
#include "strata/base/status.h"
#include "strata/reprocess/avro_file.h"
#include "strata/reprocess/internal/processors.h"

namespace strata::reprocess::internal {
namespace {

using assets::JsonValue;

enum class Format { kNdjson, kAvro };

// fsync of a file or directory by path.
absl::Status SyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError("export: cannot open " + path + " to sync it");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return absl::InternalError("export: fsync " + path + " failed");
  return absl::OkStatus();
}

std::string NdjsonLine(const ExportRecord& r) {
  std::string line = "{\"type\":";
  assets::AppendJsonString(&line, r.type);
  line += ",\"id\":";
  assets::AppendJsonString(&line, r.id);
  line += ",\"version\":" + std::to_string(r.version) +
          ",\"schema_version\":" + std::to_string(r.schema_version) +
          ",\"created_at\":" + std::to_string(r.created_at) +
          ",\"updated_at\":" + std::to_string(r.updated_at) + ",\"payload\":" + r.payload + "}\n";
  return line;
}

class ExportProcessor final : public Processor {
 public:
  explicit ExportProcessor(Format format) : format_(format) {}

  absl::StatusOr<Outcome> Apply(const AssetInfo&, JsonValue*) const override {
    return Outcome::kUnchanged;
  }
  bool RecordsRows() const override { return true; }
  // Nothing but the mark is written: many assets go in one write per bucket.
  bool Batchable() const override { return true; }
  bool CanRetryDeadLetters() const override { return false; }

  absl::Status Begin(const JobEnv& env) override {
    if (env.export_dir.empty()) {
      return absl::FailedPreconditionError("export: this server has no export directory");
    }
    std::error_code ec;
    std::filesystem::create_directories(env.export_dir, ec);
    if (ec) return absl::InternalError("export: cannot create " + env.export_dir);
    return absl::OkStatus();
  }

  absl::Status Finish(const JobEnv& env) override {
    absl::Status written = WriteFile(env);
    if (!written.ok()) {
      // The job fails: no incomplete file is left behind (Ended drops the marks).
      std::error_code ec;
      std::filesystem::remove(PartialPath(env), ec);
    }
    return written;
  }

  void Ended(const JobEnv& env) override {
    if (env.assets == nullptr) return;
    if (absl::Status s = env.assets->DeleteJobMarks(env.type, env.job_id); !s.ok()) {
      STRATA_LOG_WARN("reprocess: export's marks not deleted (they expire)", "job", env.job_id,
                      "error", s.ToString());
    }
  }

 private:
  std::string FinalPath(const JobEnv& env) const {
    return env.export_dir + "/job-" + std::to_string(env.job_id) +
           (format_ == Format::kAvro ? ".avro" : ".ndjson");
  }
  std::string PartialPath(const JobEnv& env) const { return FinalPath(env) + ".partial"; }

  absl::Status WriteFile(const JobEnv& env) {
    if (env.assets == nullptr) return absl::InternalError("export: no asset service");
    const std::string final_path = FinalPath(env);
    const std::string partial_path = PartialPath(env);
    // Truncates what an interrupted Finish left.
    std::unique_ptr<AvroExportWriter> avro;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> ndjson(nullptr, &std::fclose);
    if (format_ == Format::kAvro) {
      STRATA_ASSIGN_OR_RETURN(avro, AvroExportWriter::Create(partial_path));
    } else {
      ndjson.reset(std::fopen(partial_path.c_str(), "wb"));
      if (ndjson == nullptr) return absl::InternalError("export: cannot create " + partial_path);
    }
    uint64_t records = 0;
    ExportRecord r;
    absl::Status scanned = env.assets->ScanJobRows(
        env.type, env.job_id,
        [&](const assets::AssetId& id, const assets::AssetRow& row) -> absl::Status {
          r.type = env.type;
          r.id = id.ToString();
          r.version = row.version;
          r.schema_version = row.schema_version;
          r.created_at = row.created_at;
          r.updated_at = row.updated_at;
          r.payload = row.payload;
          ++records;
          if (avro != nullptr) return avro->Append(r);
          const std::string line = NdjsonLine(r);
          if (std::fwrite(line.data(), 1, line.size(), ndjson.get()) != line.size()) {
            return absl::InternalError("export: write to " + partial_path + " failed");
          }
          return absl::OkStatus();
        });
    STRATA_RETURN_IF_ERROR(scanned);
    if (avro != nullptr) {
      STRATA_RETURN_IF_ERROR(avro->Close());
    } else if (std::fflush(ndjson.get()) != 0 || std::fclose(ndjson.release()) != 0) {
      return absl::InternalError("export: write to " + partial_path + " failed");
    }
    STRATA_RETURN_IF_ERROR(SyncPath(partial_path, /*directory=*/false));
    std::error_code ec;
    std::filesystem::rename(partial_path, final_path, ec);
    if (ec) return absl::InternalError("export: cannot rename " + partial_path);
    STRATA_RETURN_IF_ERROR(SyncPath(env.export_dir, /*directory=*/true));
    STRATA_LOG_INFO("reprocess: export written", "job", env.job_id, "file", final_path, "assets",
                    records);
    return absl::OkStatus();
  }

  const Format format_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Processor>> MakeExportProcessor(const JsonValue& spec) {
  STRATA_RETURN_IF_ERROR(OnlyFields(spec, {"kind", "format"}));
  const JsonValue* f = spec.Find("format");
  Format format = Format::kNdjson;
  if (f != nullptr) {
    if (f->is_string() && f->string_value() == "avro") {
      format = Format::kAvro;
    } else if (!f->is_string() || f->string_value() != "ndjson") {
      return SpecError("format", "must be \"ndjson\" (the default) or \"avro\"");
    }
  }
  return std::unique_ptr<Processor>(new ExportProcessor(format));
}

}  // namespace strata::reprocess::internal
