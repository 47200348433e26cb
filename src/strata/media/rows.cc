#include "strata/media/rows.h"

#include "strata/base/coding.h"
#include "strata/media/checksums.h"
#include "strata/media/validation.h"

namespace strata::media {
namespace {

constexpr char kVersion = 1;

using coding::GetFixed64BE;
using coding::GetLengthPrefixed;
using coding::GetVarint64;
using coding::PutFixed64BE;
using coding::PutLengthPrefixed;
using coding::PutVarint64;

void PutTime(std::string* out, Millis t) { PutVarint64(out, coding::ZigZag(t)); }
bool GetTime(std::string_view* in, Millis* t) {
  uint64_t v;
  if (!GetVarint64(in, &v)) return false;
  *t = coding::UnZigZag(v);
  return true;
}
bool GetString(std::string_view* in, std::string* s) {
  std::string_view v;
  if (!GetLengthPrefixed(in, &v)) return false;
  s->assign(v);
  return true;
}
bool GetVersion(std::string_view* in) {
  if (in->empty() || (*in)[0] != kVersion) return false;
  in->remove_prefix(1);
  return true;
}
absl::Status Malformed(const char* what) {
  return absl::DataLossError(std::string(what) + ": malformed or unknown version");
}

}  // namespace

std::string EncodeBucketRow(const BucketRow& row) {
  std::string out(1, kVersion);
  PutTime(&out, row.created_at);
  PutTime(&out, row.updated_at);
  PutTime(&out, row.policy.ttl_ms);
  PutTime(&out, row.policy.grace_ms);
  PutLengthPrefixed(&out, row.policy.storage_class);
  return out;
}

absl::StatusOr<BucketRow> DecodeBucketRow(std::string_view in) {
  BucketRow row;
  if (!GetVersion(&in) || !GetTime(&in, &row.created_at) || !GetTime(&in, &row.updated_at) ||
      !GetTime(&in, &row.policy.ttl_ms) || !GetTime(&in, &row.policy.grace_ms) ||
      !GetString(&in, &row.policy.storage_class) || !in.empty()) {
    return Malformed("bucket row");
  }
  return row;
}

std::string EncodeObjectRow(const ObjectRow& row) {
  std::string out(1, kVersion);
  PutFixed64BE(&out, row.generation);
  PutTime(&out, row.created_at);
  PutTime(&out, row.ttl_ms);
  PutTime(&out, row.deleted_at);
  PutTime(&out, row.grace_ms);
  PutVarint64(&out, row.size);
  PutVarint64(&out, row.parts);
  PutLengthPrefixed(&out, row.storage_class);
  PutLengthPrefixed(&out, row.blob);
  PutLengthPrefixed(&out, row.sha1);
  PutLengthPrefixed(&out, row.md5);
  PutFixed64BE(&out, row.xxh3);
  PutLengthPrefixed(&out, row.content_type);
  PutLengthPrefixed(&out, row.wrapped_key);
  PutVarint64(&out, row.meta.size());
  for (const auto& [k, v] : row.meta) {
    PutLengthPrefixed(&out, k);
    PutLengthPrefixed(&out, v);
  }
  return out;
}

absl::StatusOr<ObjectRow> DecodeObjectRow(std::string_view in) {
  ObjectRow row;
  uint64_t parts = 0, n_meta = 0;
  if (!GetVersion(&in) || !GetFixed64BE(&in, &row.generation) || !GetTime(&in, &row.created_at) ||
      !GetTime(&in, &row.ttl_ms) || !GetTime(&in, &row.deleted_at) ||
      !GetTime(&in, &row.grace_ms) || !GetVarint64(&in, &row.size) || !GetVarint64(&in, &parts) ||
      parts > UINT32_MAX || !GetString(&in, &row.storage_class) || !GetString(&in, &row.blob) ||
      !GetString(&in, &row.sha1) || !GetString(&in, &row.md5) || !GetFixed64BE(&in, &row.xxh3) ||
      !GetString(&in, &row.content_type) || !GetString(&in, &row.wrapped_key) ||
      !GetVarint64(&in, &n_meta) || n_meta > in.size() / 2) {
    return Malformed("object row");
  }
  row.parts = static_cast<uint32_t>(parts);
  for (uint64_t i = 0; i < n_meta; ++i) {
    std::string k, v;
    if (!GetString(&in, &k) || !GetString(&in, &v)) return Malformed("object row");
    row.meta.emplace_back(std::move(k), std::move(v));
  }
  if (!in.empty()) return Malformed("object row");
  return row;
}

std::string EncodeSupersededRow(const SupersededRow& row) {
  std::string out(1, kVersion);
  PutLengthPrefixed(&out, row.blob);
  PutVarint64(&out, row.size);
  PutVarint64(&out, row.parts);
  PutLengthPrefixed(&out, row.storage_class);
  PutTime(&out, row.superseded_at);
  return out;
}

absl::StatusOr<SupersededRow> DecodeSupersededRow(std::string_view in) {
  SupersededRow row;
  uint64_t parts = 0;
  if (!GetVersion(&in) || !GetString(&in, &row.blob) || !GetVarint64(&in, &row.size) ||
      !GetVarint64(&in, &parts) || parts > UINT32_MAX || !GetString(&in, &row.storage_class) ||
      !GetTime(&in, &row.superseded_at) || !in.empty()) {
    return Malformed("superseded row");
  }
  row.parts = static_cast<uint32_t>(parts);
  return row;
}

std::string EncodeUploadRow(const UploadRow& row) {
  std::string out(1, kVersion);
  PutLengthPrefixed(&out, row.blob);
  PutLengthPrefixed(&out, row.storage_class);
  PutTime(&out, row.started_at);
  return out;
}

absl::StatusOr<UploadRow> DecodeUploadRow(std::string_view in) {
  UploadRow row;
  if (!GetVersion(&in) || !GetString(&in, &row.blob) || !GetString(&in, &row.storage_class) ||
      !GetTime(&in, &row.started_at) || !in.empty()) {
    return Malformed("upload row");
  }
  return row;
}

std::string ObjectClustering(std::string_view key) {
  std::string out = "o";
  out += key;
  return out;
}

std::string IndexPrefix(std::string_view meta_key, std::string_view value) {
  std::string out = "i";
  out += meta_key;
  out.push_back('\0');
  out += value;
  out.push_back('\0');
  return out;
}

std::string IndexClustering(std::string_view meta_key, std::string_view value,
                            std::string_view key) {
  std::string out = IndexPrefix(meta_key, value);
  out += key;
  return out;
}

std::string SupersededClustering(std::string_view key, uint64_t generation) {
  std::string out = "g";
  out += key;
  out.push_back('\0');
  PutFixed64BE(&out, generation);
  return out;
}

std::string UploadClustering(std::string_view key, uint64_t generation) {
  std::string out = "u";
  out += key;
  out.push_back('\0');
  PutFixed64BE(&out, generation);
  return out;
}

bool ParseGenerationClustering(std::string_view clustering, std::string* key,
                               uint64_t* generation) {
  if (clustering.size() < 11 || clustering[clustering.size() - 9] != '\0') return false;
  *key = std::string(clustering.substr(1, clustering.size() - 10));
  std::string_view gen = clustering.substr(clustering.size() - 8);
  return coding::GetFixed64BE(&gen, generation);
}

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last != 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

std::string BlobName(std::string_view storage_class, std::string_view bucket, std::string_view key,
                     uint64_t generation) {
  std::string out;
  out.reserve(storage_class.size() + bucket.size() + key.size() + 19);
  out.append(storage_class).append("/").append(bucket).append("/").append(key).append("@");
  out.append(Hex64(generation));
  return out;
}

bool ParseBlobName(std::string_view name, BlobNameParts* out) {
  const size_t first = name.find('/');
  if (first == std::string_view::npos) return false;
  const size_t second = name.find('/', first + 1);
  const size_t at = name.rfind('@');
  if (second == std::string_view::npos || at == std::string_view::npos || at < second ||
      name.size() - at - 1 != 16) {
    return false;
  }
  uint64_t generation = 0;
  for (char c : name.substr(at + 1)) {
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return false;
    generation = generation << 4 | static_cast<uint64_t>(v);
  }
  std::string_view storage_class = name.substr(0, first);
  std::string_view bucket = name.substr(first + 1, second - first - 1);
  std::string_view key = name.substr(second + 1, at - second - 1);
  if (!ValidateStorageClass(storage_class).ok() || !ValidateBucketName(bucket).ok() ||
      !ValidateObjectKey(key).ok()) {
    return false;
  }
  out->storage_class = std::string(storage_class);
  out->bucket = std::string(bucket);
  out->key = std::string(key);
  out->generation = generation;
  return true;
}

}  // namespace strata::media
