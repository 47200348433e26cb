#include "strata/reprocess/avro_file.h"

#include <avro.h>

#include <cerrno>
#include <cstdio>

namespace strata::reprocess {
namespace {

constexpr char kSchema[] =
    R"({"type":"record","name":"Asset","namespace":"strata","fields":[)"
    R"({"name":"type","type":"string"},)"
    R"({"name":"id","type":"string"},)"
    R"({"name":"version","type":"long"},)"
    R"({"name":"schema_version","type":"long"},)"
    R"({"name":"created_at","type":"long"},)"
    R"({"name":"updated_at","type":"long"},)"
    R"({"name":"payload","type":"string"}]})";

absl::Status AvroError(std::string_view what) {
  return absl::InternalError("avro: " + std::string(what) + ": " + avro_strerror());
}

absl::Status SetString(avro_value_t* record, const char* name, const std::string& s) {
  avro_value_t field;
  if (avro_value_get_by_name(record, name, &field, nullptr) != 0 ||
      avro_value_set_string_len(&field, s.c_str(), s.size() + 1) != 0) {
    return AvroError(std::string("set ") + name);
  }
  return absl::OkStatus();
}

absl::Status SetLong(avro_value_t* record, const char* name, int64_t v) {
  avro_value_t field;
  if (avro_value_get_by_name(record, name, &field, nullptr) != 0 ||
      avro_value_set_long(&field, v) != 0) {
    return AvroError(std::string("set ") + name);
  }
  return absl::OkStatus();
}

absl::Status GetString(avro_value_t* record, const char* name, std::string* out) {
  avro_value_t field;
  const char* s = nullptr;
  size_t size = 0;  // includes the terminating NUL
  if (avro_value_get_by_name(record, name, &field, nullptr) != 0 ||
      avro_value_get_string(&field, &s, &size) != 0) {
    return AvroError(std::string("get ") + name);
  }
  out->assign(s, size > 0 ? size - 1 : 0);
  return absl::OkStatus();
}

absl::Status GetLong(avro_value_t* record, const char* name, int64_t* out) {
  avro_value_t field;
  if (avro_value_get_by_name(record, name, &field, nullptr) != 0 ||
      avro_value_get_long(&field, out) != 0) {
    return AvroError(std::string("get ") + name);
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view AvroExportSchema() { return kSchema; }

struct AvroExportWriter::State {
  avro_schema_t schema = nullptr;
  avro_value_iface_t* iface = nullptr;
  avro_value_t value{};
  bool has_value = false;
  avro_file_writer_t file = nullptr;

  ~State() {
    if (file != nullptr) avro_file_writer_close(file);
    if (has_value) avro_value_decref(&value);
    if (iface != nullptr) avro_value_iface_decref(iface);
    if (schema != nullptr) avro_schema_decref(schema);
  }
};

AvroExportWriter::AvroExportWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}
AvroExportWriter::~AvroExportWriter() = default;

absl::StatusOr<std::unique_ptr<AvroExportWriter>> AvroExportWriter::Create(
    const std::string& path) {
  auto state = std::make_unique<State>();
  if (avro_schema_from_json_length(kSchema, sizeof(kSchema) - 1, &state->schema) != 0) {
    return AvroError("schema");
  }
  state->iface = avro_generic_class_from_schema(state->schema);
  if (state->iface == nullptr) return AvroError("schema class");
  if (avro_generic_value_new(state->iface, &state->value) != 0) return AvroError("value");
  state->has_value = true;
  // avro_file_writer_create refuses an existing file: start from an empty one.
  if (std::remove(path.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError("avro: cannot replace " + path);
  }
  if (avro_file_writer_create_with_codec(path.c_str(), state->schema, &state->file, "deflate",
                                         64 * 1024) != 0) {
    state->file = nullptr;
    return AvroError("create " + path);
  }
  return std::unique_ptr<AvroExportWriter>(new AvroExportWriter(std::move(state)));
}

absl::Status AvroExportWriter::Append(const ExportRecord& r) {
  if (state_->file == nullptr) return absl::FailedPreconditionError("avro: file closed");
  avro_value_t* v = &state_->value;
  if (avro_value_reset(v) != 0) return AvroError("reset");
  if (absl::Status s = SetString(v, "type", r.type); !s.ok()) return s;
  if (absl::Status s = SetString(v, "id", r.id); !s.ok()) return s;
  if (absl::Status s = SetLong(v, "version", r.version); !s.ok()) return s;
  if (absl::Status s = SetLong(v, "schema_version", r.schema_version); !s.ok()) return s;
  if (absl::Status s = SetLong(v, "created_at", r.created_at); !s.ok()) return s;
  if (absl::Status s = SetLong(v, "updated_at", r.updated_at); !s.ok()) return s;
  if (absl::Status s = SetString(v, "payload", r.payload); !s.ok()) return s;
  if (avro_file_writer_append_value(state_->file, v) != 0) return AvroError("append");
  return absl::OkStatus();
}

absl::Status AvroExportWriter::Close() {
  if (state_->file == nullptr) return absl::OkStatus();
  const int rc = avro_file_writer_close(state_->file);
  state_->file = nullptr;
  if (rc != 0) return AvroError("close");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ExportRecord>> ReadAvroExport(const std::string& path,
                                                         std::string* schema_json) {
  avro_file_reader_t reader = nullptr;
  if (avro_file_reader(path.c_str(), &reader) != 0) return AvroError("open " + path);
  avro_schema_t schema = avro_file_reader_get_writer_schema(reader);
  avro_value_iface_t* iface = avro_generic_class_from_schema(schema);
  avro_value_t value;
  bool has_value = false;
  absl::Status status;
  std::vector<ExportRecord> out;
  if (schema_json != nullptr) {
    std::string buf(64 * 1024, '\0');
    avro_writer_t w = avro_writer_memory(buf.data(), static_cast<int64_t>(buf.size()));
    if (avro_schema_to_json(schema, w) == 0) {
      buf.resize(static_cast<size_t>(avro_writer_tell(w)));
      *schema_json = std::move(buf);
    } else {
      status = AvroError("schema to JSON");
    }
    avro_writer_free(w);
  }
  if (status.ok() && (iface == nullptr || avro_generic_value_new(iface, &value) != 0)) {
    status = AvroError("value");
  } else {
    has_value = status.ok();
  }
  while (status.ok()) {
    const int rc = avro_file_reader_read_value(reader, &value);
    if (rc == EOF) break;
    if (rc != 0) {
      status = AvroError("read " + path);
      break;
    }
    ExportRecord r;
    status.Update(GetString(&value, "type", &r.type));
    status.Update(GetString(&value, "id", &r.id));
    status.Update(GetLong(&value, "version", &r.version));
    status.Update(GetLong(&value, "schema_version", &r.schema_version));
    status.Update(GetLong(&value, "created_at", &r.created_at));
    status.Update(GetLong(&value, "updated_at", &r.updated_at));
    status.Update(GetString(&value, "payload", &r.payload));
    out.push_back(std::move(r));
  }
  if (has_value) avro_value_decref(&value);
  if (iface != nullptr) avro_value_iface_decref(iface);
  avro_schema_decref(schema);
  avro_file_reader_close(reader);
  if (!status.ok()) return status;
  return out;
}

}  // namespace strata::reprocess
