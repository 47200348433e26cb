#include "strata/blob/blob_store.h"

#include "strata/base/status.h"

namespace strata::blob {

absl::StatusOr<std::string> BlobStore::Read(std::string_view name, uint64_t offset, size_t n) {
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<BlobReader> reader, NewReader(name));
  std::string out;
  STRATA_RETURN_IF_ERROR(reader->ReadAt(offset, n, &out));
  return out;
}

absl::Status BlobStore::Put(std::string_view name, std::string_view data) {
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> writer, NewWriter(name));
  STRATA_RETURN_IF_ERROR(writer->Append(data));
  return writer->Commit();
}

absl::Status BlobStore::DeleteMany(std::span<const std::string> names) {
  for (const std::string& name : names) STRATA_RETURN_IF_ERROR(ValidateBlobName(name));
  for (const std::string& name : names) STRATA_RETURN_IF_ERROR(Delete(name));
  return absl::OkStatus();
}

std::vector<absl::Status> BlobStore::DeleteEach(std::span<const std::string> names) {
  std::vector<absl::Status> out(names.size());
  std::vector<std::string> valid;
  std::vector<size_t> where;
  for (size_t i = 0; i < names.size(); ++i) {
    out[i] = ValidateBlobName(names[i]);
    if (!out[i].ok()) continue;
    valid.push_back(names[i]);
    where.push_back(i);
  }
  if (valid.empty() || DeleteMany(valid).ok()) return out;
  // Something of the batch failed: find out which, one blob at a time (idempotent).
  for (size_t j = 0; j < valid.size(); ++j) out[where[j]] = Delete(valid[j]);
  return out;
}

absl::Status ValidateBlobName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError("name: must be 1..1024 bytes");
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view component = name.substr(start, end - start);
    if (component.empty() || component == "." || component == "..") {
      return absl::InvalidArgumentError(
          "name: '/'-separated components must not be empty, \".\" or \"..\"");
    }
    start = end + 1;
  }
  for (char c : name) {
    if (c == '\0' || c == '\\') {
      return absl::InvalidArgumentError("name: must not contain NUL or '\\'");
    }
  }
  return absl::OkStatus();
}

}  // namespace strata::blob
