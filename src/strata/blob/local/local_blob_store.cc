#include "strata/blob/local/local_blob_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "strata/base/crash_point.h"
#include "strata/base/status.h"

namespace strata::blob {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kObjectSuffix = "~obj";
constexpr std::string_view kTempDir = "~tmp";
// A blob being deleted: its directory renamed in place from "<c>~obj" to "<c>~del".
constexpr std::string_view kDeletingSuffix = "~del";
constexpr size_t kMaxEscapedComponent = 240;
constexpr uint32_t kMaxParts = 999'999;

absl::Status ErrnoError(const std::string& what, int err) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT || err == EIO) return absl::UnavailableError(msg);
  return absl::InternalError(msg);
}

// Linux takes any byte but '/' and NUL in a file name; escape only what could confuse a
// person or this layout ('%', '~', control bytes, a leading '.'), so names stay readable.
bool KeepByte(unsigned char c, bool first) {
  if (c == '.') return !first;
  return c >= 0x20 && c != 0x7f && c != '%' && c != '~';
}

std::string EscapeComponent(std::string_view c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(c.size());
  for (size_t i = 0; i < c.size(); ++i) {
    unsigned char b = static_cast<unsigned char>(c[i]);
    if (KeepByte(b, i == 0)) {
      out.push_back(static_cast<char>(b));
    } else {
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    }
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Inverse of EscapeComponent; false for anything EscapeComponent cannot produce.
bool UnescapeComponent(std::string_view e, std::string* out) {
  out->clear();
  for (size_t i = 0; i < e.size(); ++i) {
    if (e[i] != '%') {
      out->push_back(e[i]);
      continue;
    }
    if (i + 2 >= e.size()) return false;
    int hi = HexValue(e[i + 1]), lo = HexValue(e[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

// The escaped relative path of a name's components, without the object suffix.
absl::StatusOr<std::string> EscapedPath(std::string_view name) {
  STRATA_RETURN_IF_ERROR(ValidateBlobName(name));
  std::string out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string escaped = EscapeComponent(name.substr(start, end - start));
    if (escaped.size() > kMaxEscapedComponent) {
      return absl::InvalidArgumentError(
          "name: a '/'-separated component is longer than 240 bytes once escaped");
    }
    if (!out.empty()) out.push_back('/');
    out += escaped;
    start = end + 1;
  }
  return out;
}

std::string PartName(uint32_t index) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "part-%06u", index);
  return buf;
}

absl::Status FsyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + path, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoError("fsync " + path, err);
  return absl::OkStatus();
}

// Creates `dir` and any missing ancestors. With `sync`, each new directory's entry is made
// durable by fsyncing its parent once it exists: without that, a power cut can drop a new
// directory (and every blob renamed into it) even though the blob file itself was fsynced.
absl::Status CreateDirectories(const std::string& dir, bool sync) {
  std::vector<fs::path> missing;
  std::error_code ec;
  for (fs::path p = dir; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoError("mkdir " + it->string(), errno);
    }
    if (sync) STRATA_RETURN_IF_ERROR(FsyncPath(it->parent_path().string()));
  }
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// The part files of an object directory, in order. NotFound if the directory is absent.
absl::StatusOr<std::vector<std::string>> PartFiles(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT || errno == ENOTDIR) return absl::NotFoundError("blob not found");
    return ErrnoError("opendir " + dir, errno);
  }
  std::vector<std::string> parts;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n.substr(0, 5) == "part-") parts.emplace_back(n);
  }
  ::closedir(d);
  std::sort(parts.begin(), parts.end());
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] != PartName(static_cast<uint32_t>(i))) {
      return absl::DataLossError("blob " + dir + ": parts are not numbered 0..n-1");
    }
  }
  if (parts.empty()) return absl::DataLossError("blob " + dir + ": no parts");
  return parts;
}

// PartFiles of a committed blob that a Delete may be removing meanwhile. Delete renames
// "<c>~obj" away to "<c>~del" and only then unlinks the parts, so a listing taken while the
// directory is still in place -- the same directory before and after -- is complete. One
// that raced a delete could be short or empty: the blob is then gone (NotFound, as for a
// reader that came a moment later), unless a second look finds the name taken again.
absl::StatusOr<std::vector<std::string>> LivePartFiles(const std::string& dir) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    struct stat before;
    if (::stat(dir.c_str(), &before) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return absl::NotFoundError("blob not found");
      return ErrnoError("stat " + dir, errno);
    }
    absl::StatusOr<std::vector<std::string>> parts = PartFiles(dir);
    struct stat after;
    if (::stat(dir.c_str(), &after) == 0 && after.st_ino == before.st_ino &&
        after.st_dev == before.st_dev) {
      return parts;  // no delete began before the listing ended: what it says holds
    }
  }
  return absl::NotFoundError("blob not found");
}

// Removes a blob directory (files only, no subdirectories): unlinkat each file, then rmdir.
// Cheaper than std::filesystem::remove_all, whose remove() first tries unlink() on the
// directory itself -- taking the parent directory's lock for nothing -- before rmdir().
absl::Status RemoveBlobDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoError("opendir " + dir, errno);
  }
  absl::Status status;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    if (::unlinkat(::dirfd(d), e->d_name, 0) != 0 && errno != ENOENT && status.ok()) {
      status = ErrnoError("unlink " + dir + "/" + std::string(n), errno);
    }
  }
  ::closedir(d);
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT && status.ok()) {
    status = ErrnoError("rmdir " + dir, errno);
  }
  return status;
}

// Removes a blob at `path`: a file (one part) or a directory of parts.
absl::Status RemoveBlob(const std::string& path) {
  if (::unlink(path.c_str()) == 0 || errno == ENOENT) return absl::OkStatus();
  if (errno != EISDIR) return ErrnoError("unlink " + path, errno);
  return RemoveBlobDir(path);
}

// Writes a blob under ~tmp: a single file while it has one part (committed as one file:
// fewer inodes, fsyncs and directory operations for the common small object), moved into a
// directory of part files when a second part starts.
class LocalBlobWriter final : public BlobWriter {
 public:
  LocalBlobWriter(const LocalBlobStoreOptions* options, std::string temp_path,
                  std::string final_path)
      : options_(options), temp_path_(std::move(temp_path)), final_path_(std::move(final_path)) {}

  ~LocalBlobWriter() override {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) {
      std::error_code ec;
      fs::remove_all(temp_path_, ec);
      if (!temp_dir_.empty()) fs::remove_all(temp_dir_, ec);
    }
  }

  absl::Status Open() {
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) return ErrnoError("create " + temp_path_, errno);
    next_part_ = 1;
    part_size_ = 0;
    return absl::OkStatus();
  }

  absl::Status Append(std::string_view data) override {
    if (failed_ || committed_) return absl::FailedPreconditionError("blob writer is closed");
    while (!data.empty()) {
      if (part_size_ == options_->part_bytes) {
        if (absl::Status s = FinishPart(); !s.ok()) return Fail(s);
        STRATA_CRASH_POINT("blob.write.after_part");
        if (absl::Status s = OpenPart(); !s.ok()) return Fail(s);
      }
      size_t n =
          static_cast<size_t>(std::min<uint64_t>(data.size(), options_->part_bytes - part_size_));
      if (absl::Status s = WriteAll(fd_, data.substr(0, n)); !s.ok()) return Fail(s);
      part_size_ += n;
      size_ += n;
      data.remove_prefix(n);
    }
    return absl::OkStatus();
  }

  absl::Status Commit() override {
    if (failed_ || committed_) return absl::FailedPreconditionError("blob writer is closed");
    if (absl::Status s = FinishPart(); !s.ok()) return Fail(s);
    // One part: the file itself goes into place. Several: their directory (made durable
    // first: it names the parts).
    const std::string& source = temp_dir_.empty() ? temp_path_ : temp_dir_;
    if (options_->sync && !temp_dir_.empty()) {
      if (absl::Status s = FsyncPath(temp_dir_); !s.ok()) return Fail(s);
    }
    const std::string parent = fs::path(final_path_).parent_path().string();
    if (absl::Status s = CreateDirectories(parent, options_->sync); !s.ok()) return Fail(s);
    STRATA_CRASH_POINT("blob.commit.before_rename");
    if (::renameat2(AT_FDCWD, source.c_str(), AT_FDCWD, final_path_.c_str(), RENAME_NOREPLACE) !=
        0) {
      int err = errno;
      if (err == EEXIST || err == ENOTEMPTY) {
        return Fail(absl::AlreadyExistsError("name: a blob with this name exists"));
      }
      return Fail(ErrnoError("rename to " + final_path_, err));
    }
    committed_ = true;
    if (options_->sync) STRATA_RETURN_IF_ERROR(FsyncPath(parent));
    return absl::OkStatus();
  }

  uint64_t size() const override { return size_; }
  uint32_t parts() const override { return next_part_; }

 private:
  absl::Status OpenPart() {
    if (next_part_ >= kMaxParts) return absl::InvalidArgumentError("blob: too many parts");
    if (temp_dir_.empty()) {
      // The second part: the first one moves into a directory of parts.
      temp_dir_ = temp_path_ + ".d";
      if (::mkdir(temp_dir_.c_str(), 0755) != 0) {
        int err = errno;
        temp_dir_.clear();
        return ErrnoError("mkdir " + temp_path_ + ".d", err);
      }
      const std::string first = temp_dir_ + "/" + PartName(0);
      if (::rename(temp_path_.c_str(), first.c_str()) != 0) {
        return ErrnoError("rename " + temp_path_, errno);
      }
    }
    std::string path = temp_dir_ + "/" + PartName(next_part_);
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) return ErrnoError("create " + path, errno);
    ++next_part_;
    part_size_ = 0;
    return absl::OkStatus();
  }

  absl::Status FinishPart() {
    if (options_->sync && ::fsync(fd_) != 0) return ErrnoError("fsync part", errno);
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return ErrnoError("close part", errno);
    return absl::OkStatus();
  }

  absl::Status Fail(absl::Status s) {
    failed_ = true;
    return s;
  }

  const LocalBlobStoreOptions* options_;
  const std::string temp_path_;   // the single part, while there is one
  std::string temp_dir_;          // "" until a second part starts
  const std::string final_path_;  // "<escaped name>~obj"
  int fd_ = -1;
  uint32_t next_part_ = 0;
  uint64_t part_size_ = 0;
  uint64_t size_ = 0;
  bool committed_ = false;
  bool failed_ = false;
};

class LocalBlobReader final : public BlobReader {
 public:
  ~LocalBlobReader() override {
    for (const Part& p : parts_) ::close(p.fd);
  }

  absl::Status Open(const std::string& dir) {
    // A one-part blob is a file.
    int fd = ::open(dir.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR) return absl::NotFoundError("blob not found");
      return ErrnoError("open " + dir, errno);
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return ErrnoError("stat " + dir, err);
    }
    if (S_ISREG(st.st_mode)) {
      parts_.push_back(Part{fd, 0, static_cast<uint64_t>(st.st_size)});
      size_ = static_cast<uint64_t>(st.st_size);
      return absl::OkStatus();
    }
    ::close(fd);
    STRATA_ASSIGN_OR_RETURN(std::vector<std::string> names, LivePartFiles(dir));
    for (const std::string& n : names) {
      std::string path = dir + "/" + n;
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        // A concurrent Delete moved the directory away.
        if (errno == ENOENT) return absl::NotFoundError("blob not found");
        return ErrnoError("open " + path, errno);
      }
      struct stat st;
      if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        return ErrnoError("stat " + path, err);
      }
      parts_.push_back(Part{fd, size_, static_cast<uint64_t>(st.st_size)});
      size_ += static_cast<uint64_t>(st.st_size);
    }
    return absl::OkStatus();
  }

  uint64_t size() const override { return size_; }

  absl::Status ReadAt(uint64_t offset, size_t n, std::string* out) override {
    if (offset > size_) {
      return absl::OutOfRangeError("offset: " + std::to_string(offset) + " is past the end (" +
                                   std::to_string(size_) + " bytes)");
    }
    n = static_cast<size_t>(std::min<uint64_t>(n, size_ - offset));
    size_t base = out->size();
    out->resize(base + n);
    char* dst = out->data() + base;
    // The first part holding `offset`.
    auto it = std::upper_bound(parts_.begin(), parts_.end(), offset,
                               [](uint64_t o, const Part& p) { return o < p.start; });
    size_t i = static_cast<size_t>(it - parts_.begin()) - 1;
    while (n > 0 && i < parts_.size()) {
      const Part& p = parts_[i];
      uint64_t in_part = offset - p.start;
      size_t take = static_cast<size_t>(std::min<uint64_t>(n, p.size - in_part));
      size_t done = 0;
      while (done < take) {
        ssize_t r = ::pread(p.fd, dst + done, take - done, static_cast<off_t>(in_part + done));
        if (r < 0) {
          if (errno == EINTR) continue;
          out->resize(base);
          return ErrnoError("read part", errno);
        }
        if (r == 0) {
          out->resize(base);
          return absl::DataLossError("blob part shorter than when opened");
        }
        done += static_cast<size_t>(r);
      }
      dst += take;
      offset += take;
      n -= take;
      ++i;
    }
    return absl::OkStatus();
  }

 private:
  struct Part {
    int fd;
    uint64_t start;
    uint64_t size;
  };
  std::vector<Part> parts_;
  uint64_t size_ = 0;
};

// The time of last modification of a file or directory, ms since the epoch.
int64_t ModifiedMillis(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

// Appends to *out, in name order, the names of the committed blobs under `dir` (whose blobs'
// names start with `name_prefix/`) that start with `prefix` and sort after `after`, until
// *out holds `want` names. Each directory's entries are ordered by the names they hold --
// a blob "x" by "x", a directory "x" by "x/", since every name below it starts so and no
// sibling's does -- so walking them in that order yields names in order: the walk stops as
// soon as it has enough, and skips subtrees that only hold names <= `after`. A page then
// costs the directories on its path (each read whole, as readdir has no order), not the
// whole tree, and paging through a store reads each directory about once per page that
// ends in it.
absl::Status Walk(const std::string& dir, const std::string& name_prefix, std::string_view prefix,
                  std::string_view after, size_t want, std::vector<std::string>* out) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT || errno == ENOTDIR) return absl::OkStatus();
    return ErrnoError("opendir " + dir, errno);
  }
  struct Entry {
    std::string order;    // the blob's name, or the directory's name + "/"
    std::string escaped;  // the directory entry
    bool object;
  };
  std::vector<Entry> entries;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == ".." || n == kTempDir) continue;
    bool object = n.size() > kObjectSuffix.size() &&
                  n.substr(n.size() - kObjectSuffix.size()) == kObjectSuffix;
    // Escaped components never hold '~': anything else with one (a "~del" blob being
    // deleted) is not a name.
    if (!object && n.find('~') != std::string_view::npos) continue;
    std::string component;
    std::string_view escaped = n;
    if (object) escaped.remove_suffix(kObjectSuffix.size());
    if (!UnescapeComponent(escaped, &component)) continue;  // not ours
    std::string order = name_prefix.empty() ? component : name_prefix + "/" + component;
    if (!object) order.push_back('/');
    // Prune what cannot match the prefix.
    size_t common = std::min(order.size(), prefix.size());
    if (order.compare(0, common, prefix.substr(0, common)) != 0) continue;
    if (object) {
      if (order.size() < prefix.size() || order <= after) continue;
    } else if (order < after && after.substr(0, order.size()) != order) {
      // Every name below starts with `order`, which sorts before `after` without being a
      // prefix of it: all of them sort before `after`.
      continue;
    }
    entries.push_back(Entry{std::move(order), std::string(n), object});
  }
  ::closedir(d);
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.order < b.order; });
  for (Entry& e : entries) {
    if (out->size() >= want) break;
    if (e.object) {
      out->push_back(std::move(e.order));
    } else {
      e.order.pop_back();  // the trailing '/'
      STRATA_RETURN_IF_ERROR(Walk(dir + "/" + e.escaped, e.order, prefix, after, want, out));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalBlobStore>> LocalBlobStore::Open(
    const LocalBlobStoreOptions& options) {
  if (options.root.empty()) return absl::InvalidArgumentError("root: required");
  if (options.part_bytes < 4096) {
    return absl::InvalidArgumentError("part_bytes: must be at least 4096");
  }
  STRATA_RETURN_IF_ERROR(CreateDirectories(options.root, options.sync));
  std::error_code ec;
  // Whatever is under ~tmp was being written or deleted by a process that is gone.
  const std::string temp = options.root + "/" + std::string(kTempDir);
  fs::remove_all(temp, ec);
  if (ec) return absl::InternalError("clear " + temp + ": " + ec.message());
  fs::create_directories(temp, ec);
  if (ec) return absl::InternalError("create " + temp + ": " + ec.message());
  return std::unique_ptr<LocalBlobStore>(new LocalBlobStore(options));
}

std::string LocalBlobStore::NewTempPath() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[64];
  std::snprintf(buf, sizeof(buf), "/%016llx-%llu", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(counter.fetch_add(1)));
  return options_.root + "/" + std::string(kTempDir) + buf;
}

absl::StatusOr<std::string> LocalBlobStore::PathOf(std::string_view name) const {
  STRATA_ASSIGN_OR_RETURN(std::string rel, EscapedPath(name));
  return options_.root + "/" + rel + std::string(kObjectSuffix);
}

absl::StatusOr<std::unique_ptr<BlobWriter>> LocalBlobStore::NewWriter(std::string_view name) {
  STRATA_ASSIGN_OR_RETURN(std::string final_path, PathOf(name));
  auto writer = std::make_unique<LocalBlobWriter>(&options_, NewTempPath(), std::move(final_path));
  STRATA_RETURN_IF_ERROR(writer->Open());
  return std::unique_ptr<BlobWriter>(std::move(writer));
}

absl::StatusOr<std::unique_ptr<BlobReader>> LocalBlobStore::NewReader(std::string_view name) {
  STRATA_ASSIGN_OR_RETURN(std::string dir, PathOf(name));
  auto reader = std::make_unique<LocalBlobReader>();
  STRATA_RETURN_IF_ERROR(reader->Open(dir));
  return std::unique_ptr<BlobReader>(std::move(reader));
}

absl::StatusOr<BlobInfo> LocalBlobStore::Stat(std::string_view name) {
  STRATA_ASSIGN_OR_RETURN(std::string dir, PathOf(name));
  BlobInfo info;
  info.name = std::string(name);
  struct stat whole;
  if (::stat(dir.c_str(), &whole) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return absl::NotFoundError("blob not found");
    return ErrnoError("stat " + dir, errno);
  }
  info.modified_ms = ModifiedMillis(whole);
  if (S_ISREG(whole.st_mode)) {  // one part
    info.parts = 1;
    info.size = static_cast<uint64_t>(whole.st_size);
    return info;
  }
  STRATA_ASSIGN_OR_RETURN(std::vector<std::string> parts, LivePartFiles(dir));
  info.parts = static_cast<uint32_t>(parts.size());
  for (const std::string& p : parts) {
    struct stat st;
    if (::stat((dir + "/" + p).c_str(), &st) != 0) {
      if (errno == ENOENT) return absl::NotFoundError("blob not found");
      return ErrnoError("stat " + p, errno);
    }
    info.size += static_cast<uint64_t>(st.st_size);
  }
  return info;
}

absl::Status LocalBlobStore::Delete(std::string_view name) {
  const std::string one(name);
  return DeleteMany(std::span<const std::string>(&one, 1));
}

absl::Status LocalBlobStore::DeleteMany(std::span<const std::string> names) {
  std::vector<std::string> dirs;
  dirs.reserve(names.size());
  for (const std::string& name : names) {
    STRATA_ASSIGN_OR_RETURN(std::string dir, PathOf(name));
    dirs.push_back(std::move(dir));
  }
  // 1. Rename every object directory to "~del" in its own parent: the blob disappears
  // atomically, and a rename within one directory does not take the filesystem-wide lock
  // of cross-directory renames (which every PUT's commit needs).
  std::vector<std::string> doomed;
  std::vector<std::string> parents;
  absl::Status status;
  for (const std::string& dir : dirs) {
    std::string del = dir.substr(0, dir.size() - kObjectSuffix.size()) + std::string(kDeletingSuffix);
    int rc = ::rename(dir.c_str(), del.c_str());
    if (rc != 0 && (errno == ENOTEMPTY || errno == EEXIST || errno == EISDIR || errno == ENOTDIR)) {
      // A delete of this name was cut short by a crash: finish that one first.
      absl::Status s = RemoveBlob(del);
      if (!s.ok()) {
        status = s;
        break;
      }
      rc = ::rename(dir.c_str(), del.c_str());
    }
    if (rc != 0 && errno != ENOENT) {
      status = ErrnoError("rename " + dir, errno);
      break;
    }
    // Absent: already deleted -- or renamed by a delete a crash cut short (removed below).
    if (rc == 0) parents.push_back(fs::path(dir).parent_path().string());
    doomed.push_back(std::move(del));
  }
  // 2. Make the renames durable: one fsync per distinct parent directory.
  if (options_.sync && !parents.empty()) {
    std::sort(parents.begin(), parents.end());
    parents.erase(std::unique(parents.begin(), parents.end()), parents.end());
    for (const std::string& parent : parents) {
      absl::Status s = FsyncPath(parent);
      if (!s.ok() && status.ok()) status = s;
    }
  }
  // 3. Free the bytes. A crash before this leaves "~del" directories that no read or list
  // sees; deleting the name again removes them.
  for (const std::string& del : doomed) {
    absl::Status s = RemoveBlob(del);
    if (!s.ok() && status.ok()) status = s;
  }
  return status;
}

absl::StatusOr<ListPage> LocalBlobStore::List(std::string_view prefix, std::string_view after,
                                              size_t limit) {
  if (limit == 0 || limit > kMaxListLimit) {
    return absl::InvalidArgumentError("limit: must be 1..1000");
  }
  if (prefix.size() > kMaxNameBytes) return absl::InvalidArgumentError("prefix: too long");
  // Start the walk at the deepest directory the prefix names completely.
  std::string dir = options_.root;
  std::string name_prefix;
  size_t slash = prefix.rfind('/');
  if (slash != std::string_view::npos) {
    std::string_view head = prefix.substr(0, slash);
    if (!ValidateBlobName(head).ok()) return ListPage{};  // no valid name can match
    STRATA_ASSIGN_OR_RETURN(std::string rel, EscapedPath(head));
    dir += "/" + rel;
    name_prefix = std::string(head);
  }
  // One name more than the page: whether more follow.
  std::vector<std::string> names;
  STRATA_RETURN_IF_ERROR(Walk(dir, name_prefix, prefix, after, limit + 1, &names));
  ListPage page;
  for (const std::string& n : names) {
    if (page.blobs.size() == limit) {
      page.next_after = page.blobs.back().name;
      return page;
    }
    absl::StatusOr<BlobInfo> info = Stat(n);
    if (absl::IsNotFound(info.status())) continue;  // deleted meanwhile
    if (!info.ok()) return info.status();
    page.blobs.push_back(std::move(*info));
  }
  // Deletes made the page short while the walk stopped early: go on after what was read.
  if (names.size() > limit) page.next_after = names.back();
  return page;
}

absl::Status LocalBlobStore::Checkpoint(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) return absl::AlreadyExistsError("backup: " + dir + " exists");
  STRATA_RETURN_IF_ERROR(CreateDirectories(dir, options_.sync));
  const fs::path root(options_.root);
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path rel = fs::relative(it->path(), root, ec);
    if (ec) break;
    if (!rel.empty() && *rel.begin() == kTempDir) {  // uploads in flight: not committed
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    const fs::path target = fs::path(dir) / rel;
    if (it->is_directory()) {
      if (::mkdir(target.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoError("mkdir " + target.string(), errno);
      }
    } else if (::link(it->path().c_str(), target.c_str()) != 0) {
      return ErrnoError("link " + target.string(), errno);
    }
  }
  if (ec) return absl::InternalError("backup: walk " + options_.root + ": " + ec.message());
  return absl::OkStatus();
}

}  // namespace strata::blob
