#include "strata/gc/export.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "strata/media/checksums.h"

namespace strata::gc {
namespace {

// The schema of the exported tables (docs/gc.md), written once per task directory.
constexpr char kSchema[] = R"({
  "format": "ndjson",
  "version": 1,
  "partitioning": ["dt"],
  "tables": {
    "buckets": {"bucket": "string", "ttl_ms": "int64", "grace_ms": "int64",
                "storage_class": "string", "created_at": "int64 ms", "updated_at": "int64 ms",
                "run_id": "uint64"},
    "objects": {"run_id": "uint64", "kind": "string: object|superseded", "bucket": "string",
                "key": "string", "generation": "uint64", "created_at": "int64 ms|null",
                "ttl_ms": "int64", "expires_at": "int64 ms|null", "deleted_at": "int64 ms|null",
                "grace_ms": "int64", "purge_at": "int64 ms|null", "superseded_at": "int64 ms|null",
                "size": "uint64", "parts": "uint32", "storage_class": "string", "blob": "string",
                "content_type": "string|null", "sha1": "hex string|null", "md5": "hex string|null",
                "xxh3": "hex string|null", "meta": "object string->string|null"},
    "worklist": {"run_id": "uint64", "as_of": "int64 ms", "kind": "string: object|superseded|orphan",
                 "reason": "string: expired|deleted|superseded|orphan|age", "bucket": "string",
                 "key": "string", "generation": "uint64", "size": "uint64", "parts": "uint32",
                 "storage_class": "string", "blob": "string"}
  }
}
)";

void Key(std::string* out, std::string_view k, bool first = false) {
  if (!first) out->push_back(',');
  AppendJsonString(out, k);
  out->push_back(':');
}
void Int(std::string* out, std::string_view k, int64_t v) {
  Key(out, k);
  out->append(std::to_string(v));
}
void IntOrNull(std::string* out, std::string_view k, int64_t v) {
  Key(out, k);
  out->append(v == 0 ? "null" : std::to_string(v));
}
void Str(std::string* out, std::string_view k, std::string_view v) {
  Key(out, k);
  AppendJsonString(out, v);
}

bool WriteLine(std::FILE* f, std::string* line) {
  line->push_back('\n');
  return std::fwrite(line->data(), 1, line->size(), f) == line->size();
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7f || c >= 0x80) {
      // Control bytes, and (conservatively) every non-ASCII byte: keys are validated to
      // printable bytes, so this is rare; \u00XX keeps the output valid JSON whatever the bytes.
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

ExportPart::~ExportPart() {
  if (objects_) std::fclose(objects_);
  if (work_) std::fclose(work_);
}

void ExportPart::Object(std::string_view bucket, std::string_view key,
                        const media::ObjectRow& row) {
  if (failed_ || !objects_) return;
  std::string& l = line_;
  l.assign("{");
  Key(&l, "run_id", true);
  l.append(std::to_string(run_id_));
  Str(&l, "kind", "object");
  Str(&l, "bucket", bucket);
  Str(&l, "key", key);
  Int(&l, "generation", static_cast<int64_t>(row.generation));
  Int(&l, "created_at", row.created_at);
  Int(&l, "ttl_ms", row.ttl_ms);
  IntOrNull(&l, "expires_at", row.expires_at());
  IntOrNull(&l, "deleted_at", row.deleted_at);
  Int(&l, "grace_ms", row.grace_ms);
  IntOrNull(&l, "purge_at", row.deleted_at == 0 ? 0 : row.deleted_at + row.grace_ms);
  Key(&l, "superseded_at");
  l.append("null");
  Int(&l, "size", static_cast<int64_t>(row.size));
  Int(&l, "parts", row.parts);
  Str(&l, "storage_class", row.storage_class);
  Str(&l, "blob", row.blob);
  Str(&l, "content_type", row.content_type);
  Str(&l, "sha1", media::Hex(row.sha1));
  Str(&l, "md5", media::Hex(row.md5));
  Str(&l, "xxh3", media::Hex64(row.xxh3));
  Key(&l, "meta");
  l.push_back('{');
  for (size_t i = 0; i < row.meta.size(); ++i) {
    if (i > 0) l.push_back(',');
    AppendJsonString(&l, row.meta[i].first);
    l.push_back(':');
    AppendJsonString(&l, row.meta[i].second);
  }
  l.append("}}");
  failed_ = !WriteLine(objects_, &l);
}

void ExportPart::Superseded(std::string_view bucket, std::string_view key, uint64_t generation,
                            const media::SupersededRow& row) {
  if (failed_ || !objects_) return;
  std::string& l = line_;
  l.assign("{");
  Key(&l, "run_id", true);
  l.append(std::to_string(run_id_));
  Str(&l, "kind", "superseded");
  Str(&l, "bucket", bucket);
  Str(&l, "key", key);
  Int(&l, "generation", static_cast<int64_t>(generation));
  for (const char* k : {"created_at", "expires_at", "deleted_at"}) {
    Key(&l, k);
    l.append("null");
  }
  Int(&l, "ttl_ms", 0);
  Int(&l, "grace_ms", 0);
  Key(&l, "purge_at");
  l.append("null");
  Int(&l, "superseded_at", row.superseded_at);
  Int(&l, "size", static_cast<int64_t>(row.size));
  Int(&l, "parts", row.parts);
  Str(&l, "storage_class", row.storage_class);
  Str(&l, "blob", row.blob);
  for (const char* k : {"content_type", "sha1", "md5", "xxh3", "meta"}) {
    Key(&l, k);
    l.append("null");
  }
  l.push_back('}');
  failed_ = !WriteLine(objects_, &l);
}

void ExportPart::Work(const WorkItem& item, Millis as_of) {
  if (failed_ || !work_) return;
  std::string& l = line_;
  l.assign("{");
  Key(&l, "run_id", true);
  l.append(std::to_string(item.run_id));
  Int(&l, "as_of", as_of);
  Str(&l, "kind", item.kind == WorkItem::Kind::kObject       ? "object"
                  : item.kind == WorkItem::Kind::kSuperseded ? "superseded"
                                                             : "orphan");
  Str(&l, "reason", item.reason);
  Str(&l, "bucket", item.bucket);
  Str(&l, "key", item.key);
  Int(&l, "generation", static_cast<int64_t>(item.generation));
  Int(&l, "size", static_cast<int64_t>(item.size));
  Int(&l, "parts", item.parts);
  Str(&l, "storage_class", item.storage_class);
  Str(&l, "blob", item.blob);
  l.push_back('}');
  failed_ = !WriteLine(work_, &l);
}

absl::StatusOr<std::unique_ptr<Exporter>> Exporter::Create(const std::string& export_dir,
                                                           std::string_view task,
                                                           const std::string& day,
                                                           uint64_t run_id) {
  std::unique_ptr<Exporter> e(new Exporter());
  e->root_ = export_dir + "/" + std::string(task);
  e->day_ = day;
  e->run_id_ = run_id;
  std::error_code ec;
  for (const char* table : {"buckets", "objects", "worklist"}) {
    std::filesystem::create_directories(e->root_ + "/" + table + "/dt=" + day, ec);
    if (ec) {
      return absl::InternalError("export_dir: cannot create " + e->root_ + ": " + ec.message());
    }
  }
  const std::string schema = e->root_ + "/_schema.json";
  if (!std::filesystem::exists(schema)) {
    std::FILE* f = std::fopen((schema + ".tmp").c_str(), "w");
    if (!f) return absl::InternalError("export_dir: cannot write " + schema);
    const bool ok = std::fputs(kSchema, f) >= 0;
    if (std::fclose(f) != 0 || !ok) return absl::InternalError("export_dir: write " + schema);
    std::filesystem::rename(schema + ".tmp", schema, ec);
    if (ec) return absl::InternalError("export_dir: rename " + schema + ": " + ec.message());
  }
  const std::string name =
      e->root_ + "/buckets/dt=" + day + "/run-" + std::to_string(run_id) + ".ndjson";
  e->buckets_ = std::fopen((name + ".tmp").c_str(), "w");
  if (!e->buckets_) return absl::InternalError("export_dir: cannot write " + name);
  e->files_.emplace_back(name + ".tmp", name);
  return e;
}

Exporter::~Exporter() {
  if (buckets_) std::fclose(buckets_);
  parts_.clear();
  for (const auto& [tmp, final_name] : files_) std::remove(tmp.c_str());
}

void Exporter::Bucket(std::string_view name, const media::BucketRow& row) {
  if (!buckets_) return;
  std::string l = "{";
  Str(&l, "bucket", name);
  l.erase(1, 1);  // no leading comma
  Int(&l, "ttl_ms", row.policy.ttl_ms);
  Int(&l, "grace_ms", row.policy.grace_ms);
  Str(&l, "storage_class", row.policy.storage_class);
  Int(&l, "created_at", row.created_at);
  Int(&l, "updated_at", row.updated_at);
  Int(&l, "run_id", static_cast<int64_t>(run_id_));
  l.push_back('}');
  if (!WriteLine(buckets_, &l)) status_ = absl::InternalError("export: write failed");
}

ExportPart* Exporter::Part(size_t i) {
  while (parts_.size() <= i) {
    auto part = std::make_unique<ExportPart>();
    part->run_id_ = run_id_;
    const std::string suffix = "/dt=" + day_ + "/run-" + std::to_string(run_id_) + "-part-" +
                               std::to_string(parts_.size()) + ".ndjson";
    const std::string objects = root_ + "/objects" + suffix;
    const std::string work = root_ + "/worklist" + suffix;
    part->objects_ = std::fopen((objects + ".tmp").c_str(), "w");
    part->work_ = std::fopen((work + ".tmp").c_str(), "w");
    if (!part->objects_ || !part->work_) {
      status_ =
          absl::InternalError("export: cannot create " + objects + ": " + std::strerror(errno));
    } else {
      std::setvbuf(part->objects_, nullptr, _IOFBF, 1 << 20);
      std::setvbuf(part->work_, nullptr, _IOFBF, 1 << 20);
    }
    files_.emplace_back(objects + ".tmp", objects);
    files_.emplace_back(work + ".tmp", work);
    parts_.push_back(std::move(part));
  }
  return parts_[i].get();
}

absl::Status Exporter::Finish() {
  bool ok = status_.ok();
  if (buckets_ && std::fclose(buckets_) != 0) ok = false;
  buckets_ = nullptr;
  for (auto& p : parts_) {
    if (p->failed_) ok = false;
    if (p->objects_ && std::fclose(p->objects_) != 0) ok = false;
    if (p->work_ && std::fclose(p->work_) != 0) ok = false;
    p->objects_ = p->work_ = nullptr;
  }
  if (!ok) return status_.ok() ? absl::InternalError("export: write failed") : status_;
  for (const auto& [tmp, final_name] : files_) {
    if (std::rename(tmp.c_str(), final_name.c_str()) != 0) {
      return absl::InternalError("export: rename " + final_name + ": " + std::strerror(errno));
    }
  }
  files_.clear();
  return absl::OkStatus();
}

absl::StatusOr<size_t> PruneExports(const std::string& export_dir, std::string_view task,
                                    size_t keep_runs) {
  namespace fs = std::filesystem;
  if (keep_runs == 0) return size_t{0};
  const fs::path root = fs::path(export_dir) / std::string(task);
  std::error_code ec;
  if (!fs::exists(root, ec)) return size_t{0};
  // run id -> its files, over every table's day directories.
  std::map<uint64_t, std::vector<fs::path>> runs;
  for (const char* table : {"buckets", "objects", "worklist"}) {
    const fs::path dir = root / table;
    if (!fs::is_directory(dir, ec)) continue;
    for (const auto& day : fs::directory_iterator(dir, ec)) {
      if (!day.is_directory(ec)) continue;
      for (const auto& file : fs::directory_iterator(day.path(), ec)) {
        const std::string name = file.path().filename().string();
        if (name.rfind("run-", 0) != 0) continue;
        uint64_t id = 0;
        size_t i = 4;
        for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) {
          id = id * 10 + static_cast<uint64_t>(name[i] - '0');
        }
        if (i == 4) continue;
        runs[id].push_back(file.path());
      }
    }
  }
  if (ec) return absl::InternalError("export: list " + root.string() + ": " + ec.message());
  size_t deleted = 0;
  size_t to_drop = runs.size() > keep_runs ? runs.size() - keep_runs : 0;
  for (auto it = runs.begin(); to_drop > 0; ++it, --to_drop) {  // oldest ids first
    for (const fs::path& f : it->second) {
      if (fs::remove(f, ec)) ++deleted;
      const fs::path day = f.parent_path();
      if (fs::is_empty(day, ec)) fs::remove(day, ec);
    }
  }
  return deleted;
}

}  // namespace strata::gc
