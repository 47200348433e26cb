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
