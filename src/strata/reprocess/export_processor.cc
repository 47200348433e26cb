// The `export` processor: writes each selected asset to one file per job, for analytics
// (docs/assets.md, "Export"). NDJSON (one JSON object a line) or an Avro object container
// file (avro_file.h). The file grows as <export dir>/job-<id>.<ext>.partial and is renamed to
// job-<id>.<ext> (after an fsync) when the job succeeds, so a file under its final name is
// complete. Records are appended after each asset's step has taken effect (Committed), so
// an asset re-read after a concurrent production write is written once, as committed.
//
// An export cannot be resumed: a restart in the middle may leave a torn last line or block,
// and the assets whose marks were written just before it would be missing. A job found
// running at start-up therefore fails ("start a new export"), and its dead letters cannot be
// retried once its file is closed.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>

#include "strata/assets/json.h"
#include "strata/base/status.h"
#include "strata/reprocess/avro_file.h"
#include "strata/reprocess/internal/processors.h"

namespace strata::reprocess::internal {
namespace {

using assets::JsonValue;

enum class Format { kNdjson, kAvro };

absl::Status SyncFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError("export: cannot open " + path + " to sync it");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return absl::InternalError("export: fsync " + path + " failed");
  return absl::OkStatus();
}

class ExportProcessor final : public Processor {
 public:
  explicit ExportProcessor(Format format) : format_(format) {}
  ~ExportProcessor() override {
    if (ndjson_ != nullptr) std::fclose(ndjson_);
  }

  absl::StatusOr<Outcome> Apply(const AssetInfo&, JsonValue*) const override {
    return Outcome::kUnchanged;
  }
  bool WantsCommitted() const override { return true; }
  bool CanRetryDeadLetters() const override { return false; }

  absl::Status Begin(const JobEnv& env) override {
    if (env.export_dir.empty()) {
      return absl::FailedPreconditionError("export: this server has no export directory");
    }
    if (env.resumed) {
      return absl::FailedPreconditionError(
          "export: interrupted by a restart; an export cannot be resumed (start a new export "
          "job)");
    }
    std::error_code ec;
    std::filesystem::create_directories(env.export_dir, ec);
    if (ec) return absl::InternalError("export: cannot create " + env.export_dir);
    final_path_ = env.export_dir + "/job-" + std::to_string(env.job_id) +
                  (format_ == Format::kAvro ? ".avro" : ".ndjson");
    partial_path_ = final_path_ + ".partial";
    std::lock_guard<std::mutex> lock(mu_);
    if (format_ == Format::kAvro) {
      STRATA_ASSIGN_OR_RETURN(avro_, AvroExportWriter::Create(partial_path_));
    } else {
      ndjson_ = std::fopen(partial_path_.c_str(), "wb");
      if (ndjson_ == nullptr) return absl::InternalError("export: cannot create " + partial_path_);
    }
    return absl::OkStatus();
  }

  absl::Status Committed(const AssetInfo& asset, const JsonValue& payload) override {
    ExportRecord r;
    r.type = std::string(asset.type);
    r.id = std::string(asset.id);
    r.version = asset.version;
    r.schema_version = asset.schema_version;
    r.created_at = asset.created_at;
    r.updated_at = asset.updated_at;
    r.payload = payload.Serialize();
    std::lock_guard<std::mutex> lock(mu_);
    if (avro_ != nullptr) return avro_->Append(r);
    if (ndjson_ == nullptr) return absl::FailedPreconditionError("export: no open file");
    std::string line = "{\"type\":";
    assets::AppendJsonString(&line, r.type);
    line += ",\"id\":";
    assets::AppendJsonString(&line, r.id);
    line += ",\"version\":" + std::to_string(r.version) +
            ",\"schema_version\":" + std::to_string(r.schema_version) +
            ",\"created_at\":" + std::to_string(r.created_at) +
            ",\"updated_at\":" + std::to_string(r.updated_at) + ",\"payload\":" + r.payload +
            "}\n";
    if (std::fwrite(line.data(), 1, line.size(), ndjson_) != line.size()) {
      return absl::InternalError("export: write to " + partial_path_ + " failed");
    }
    return absl::OkStatus();
  }

  absl::Status Finish(const JobEnv&) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (avro_ != nullptr) {
      STRATA_RETURN_IF_ERROR(avro_->Close());
      avro_.reset();
    } else if (ndjson_ != nullptr) {
      const bool ok = std::fflush(ndjson_) == 0;
      std::fclose(ndjson_);
      ndjson_ = nullptr;
      if (!ok) return absl::InternalError("export: write to " + partial_path_ + " failed");
    } else {
      return absl::OkStatus();  // finished already
    }
    STRATA_RETURN_IF_ERROR(SyncFile(partial_path_));
    std::error_code ec;
    std::filesystem::rename(partial_path_, final_path_, ec);
    if (ec) return absl::InternalError("export: cannot rename " + partial_path_);
    return absl::OkStatus();
  }

 private:
  const Format format_;
  std::string final_path_;
  std::string partial_path_;
  std::mutex mu_;
  std::unique_ptr<AvroExportWriter> avro_;  // guarded by mu_
  std::FILE* ndjson_ = nullptr;             // guarded by mu_
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
