// An LD_PRELOAD shim for power-loss tests: it journals, for the files under one directory,
// every operation whose durability matters, so that a test can kill the process and then
// rebuild what a disk would hold after a power cut at that moment (tests/e2e/powerloss.py).
//
// The model (ext4-like, without any ordering luck): file bytes are durable up to the size
// they had at their last successful fsync/fdatasync; a new name (create, mkdir, rename's
// target) is durable once its parent directory has been fsynced after it. Removals (unlink,
// rmdir, a rename's old name, the file a rename replaces) are taken as durable at once: the
// shim cannot bring deleted bytes back, so the model never resurrects a file.
//
// Environment:
//   STRATA_POWERLOSS_ROOT     absolute directory whose contents are journaled (required)
//   STRATA_POWERLOSS_JOURNAL  the journal file, appended to (required; outside the root)
//   STRATA_POWERLOSS_FAIL_FLAG  while this file exists, fsync and fdatasync of any regular
//                             file under the root fail with EIO (a failing disk)
//   STRATA_POWERLOSS_STALL_FLAG while this file exists, fsync and fdatasync of any regular
//                             file under the root wait (a stalled disk: every durable write,
//                             WAL sync or compaction output waits until the file is removed)
// Journal lines, each written with one write(2) (so a kill -9 never leaves half a line):
//   C <dev:ino> f|d <path>     a name created (file or directory)
//   R <dev:ino> <old>\t<new>   a rename
//   U <path>                   a name removed
//   S <dev:ino> <size>         file bytes up to size made durable
//   D <path>                   a directory's entries made durable
// Paths are absolute and resolved through the directory the process named them from.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <string>

namespace {

const char* Root() {
  static const char* root = getenv("STRATA_POWERLOSS_ROOT");
  return root;
}

int JournalFd() {
  static int fd = [] {
    const char* path = getenv("STRATA_POWERLOSS_JOURNAL");
    if (path == nullptr) return -1;
    using OpenFn = int (*)(const char*, int, ...);
    auto real_open = reinterpret_cast<OpenFn>(dlsym(RTLD_NEXT, "open"));
    return real_open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }();
  return fd;
}

bool UnderRoot(const std::string& path) {
  const char* root = Root();
  if (root == nullptr || JournalFd() < 0) return false;
  const size_t n = strlen(root);
  // The root itself counts: fsyncing it makes its own entries durable.
  return path.size() >= n && path.compare(0, n, root) == 0 &&
         (path.size() == n || path[n] == '/');
}

void Journal(const std::string& line) {
  const int fd = JournalFd();
  if (fd < 0) return;
  std::string l = line + "\n";
  ssize_t ignored = write(fd, l.data(), l.size());
  (void)ignored;
}

std::string FdPath(int fd) {
  char link[64];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  char buf[PATH_MAX];
  ssize_t n = readlink(link, buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

// An absolute path for (dirfd, path), without resolving the last component.
std::string Resolve(int dirfd, const char* path) {
  if (path == nullptr) return "";
  if (path[0] == '/') return path;
  std::string base;
  if (dirfd == AT_FDCWD) {
    char buf[PATH_MAX];
    if (getcwd(buf, sizeof(buf)) == nullptr) return "";
    base = buf;
  } else {
    base = FdPath(dirfd);
    if (base.empty()) return "";
  }
  std::string p = path;
  while (p.compare(0, 2, "./") == 0) p.erase(0, 2);
  return base + "/" + p;
}

std::string Id(const struct stat& st) {
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

void JournalCreated(const std::string& path, bool dir) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  Journal("C " + Id(st) + (dir ? " d " : " f ") + path);
}

template <typename Fn>
Fn Real(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

bool Failing() {
  static const char* flag = getenv("STRATA_POWERLOSS_FAIL_FLAG");
  return flag != nullptr && access(flag, F_OK) == 0;
}

bool Stalled() {
  static const char* flag = getenv("STRATA_POWERLOSS_STALL_FLAG");
  return flag != nullptr && access(flag, F_OK) == 0;
}

// fsync/fdatasync: journal what became durable once the real call succeeded.
int SyncCommon(int fd, int (*real)(int)) {
  struct stat st;
  const bool have = fstat(fd, &st) == 0;
  const std::string path = have ? FdPath(fd) : "";
  const bool tracked = have && UnderRoot(path);
  while (tracked && S_ISREG(st.st_mode) && Stalled()) usleep(10'000);
  if (tracked && S_ISREG(st.st_mode) && Failing()) {
    errno = EIO;
    return -1;
  }
  const int rc = real(fd);
  if (rc == 0 && tracked) {
    if (S_ISDIR(st.st_mode)) {
      Journal("D " + path);
    } else if (S_ISREG(st.st_mode)) {
      struct stat now;
      if (fstat(fd, &now) == 0) Journal("S " + Id(now) + " " + std::to_string(now.st_size));
    }
  }
  return rc;
}

int OpenCommon(int dirfd, const char* path, int flags, mode_t mode) {
  using OpenAtFn = int (*)(int, const char*, int, ...);
  static OpenAtFn real_openat = Real<OpenAtFn>("openat");
  std::string full;
  bool created = false;
  if ((flags & O_CREAT) != 0) {
    full = Resolve(dirfd, path);
    created = UnderRoot(full) && !Exists(full);
  }
  const int fd = real_openat(dirfd, path, flags, mode);
  if (fd >= 0 && created) JournalCreated(full, false);
  return fd;
}

}  // namespace

extern "C" {

// The optional mode argument of the open family (present with O_CREAT or O_TMPFILE).
#define STRATA_SHIM_MODE(flags, mode)                \
  mode_t mode = 0;                                   \
  if (((flags) & (O_CREAT | O_TMPFILE)) != 0) {      \
    va_list ap;                                      \
    va_start(ap, flags);                             \
    mode = static_cast<mode_t>(va_arg(ap, int));     \
    va_end(ap);                                      \
  }

int open(const char* path, int flags, ...) {
  STRATA_SHIM_MODE(flags, mode)
  return OpenCommon(AT_FDCWD, path, flags, mode);
}

int open64(const char* path, int flags, ...) {
  STRATA_SHIM_MODE(flags, mode)
  return OpenCommon(AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char* path, int flags, ...) {
  STRATA_SHIM_MODE(flags, mode)
  return OpenCommon(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char* path, int flags, ...) {
  STRATA_SHIM_MODE(flags, mode)
  return OpenCommon(dirfd, path, flags, mode);
}

int creat(const char* path, mode_t mode) {
  return OpenCommon(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int creat64(const char* path, mode_t mode) {
  return OpenCommon(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int mkdirat(int dirfd, const char* path, mode_t mode) {
  static auto real = Real<int (*)(int, const char*, mode_t)>("mkdirat");
  const std::string full = Resolve(dirfd, path);
  const int rc = real(dirfd, path, mode);
  if (rc == 0 && UnderRoot(full)) JournalCreated(full, true);
  return rc;
}

int mkdir(const char* path, mode_t mode) {
  static auto real = Real<int (*)(const char*, mode_t)>("mkdir");
  const std::string full = Resolve(AT_FDCWD, path);
  const int rc = real(path, mode);
  if (rc == 0 && UnderRoot(full)) JournalCreated(full, true);
  return rc;
}

int renameat2(int olddirfd, const char* oldpath, int newdirfd, const char* newpath,
              unsigned int flags) {
  static auto real = Real<int (*)(int, const char*, int, const char*, unsigned int)>("renameat2");
  const std::string from = Resolve(olddirfd, oldpath);
  const std::string to = Resolve(newdirfd, newpath);
  const int rc = real(olddirfd, oldpath, newdirfd, newpath, flags);
  if (rc == 0 && (UnderRoot(from) || UnderRoot(to))) {
    struct stat st;
    if (lstat(to.c_str(), &st) == 0) Journal("R " + Id(st) + " " + from + "\t" + to);
  }
  return rc;
}

int renameat(int olddirfd, const char* oldpath, int newdirfd, const char* newpath) {
  return renameat2(olddirfd, oldpath, newdirfd, newpath, 0);
}

int rename(const char* oldpath, const char* newpath) {
  return renameat2(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);
}

int unlinkat(int dirfd, const char* path, int flags) {
  static auto real = Real<int (*)(int, const char*, int)>("unlinkat");
  const std::string full = Resolve(dirfd, path);
  const int rc = real(dirfd, path, flags);
  if (rc == 0 && UnderRoot(full)) Journal("U " + full);
  return rc;
}

int unlink(const char* path) { return unlinkat(AT_FDCWD, path, 0); }

int rmdir(const char* path) { return unlinkat(AT_FDCWD, path, AT_REMOVEDIR); }

// std::filesystem::remove and remove_all call remove(3).
int remove(const char* path) {
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) return rmdir(path);
  return unlink(path);
}

int fsync(int fd) {
  static auto real = Real<int (*)(int)>("fsync");
  return SyncCommon(fd, real);
}

int fdatasync(int fd) {
  static auto real = Real<int (*)(int)>("fdatasync");
  return SyncCommon(fd, real);
}

}  // extern "C"
