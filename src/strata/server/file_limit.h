// The open-file limit `strata serve` needs: every connection is a file descriptor, and so are
// RocksDB's table and log files and the blob files being read or written. A soft
// RLIMIT_NOFILE of 1024 (a common default) refuses the 1000th concurrent connection with
// EMFILE long before --max-connections says so. Thread-safe (pure, or one syscall pair).
#pragma once

#include <cstdint>
#include <string>

namespace strata::server {

// File descriptors kept for everything but connections: RocksDB's files (it keeps its table
// files open), logs, the blob files of uploads and reads in flight, sockets to backends.
inline constexpr uint64_t kReservedFileDescriptors = 1024;

// Ceiling used when the hard limit is unlimited (the kernel's fs.nr_open default is 2^20).
inline constexpr uint64_t kUnlimitedFileDescriptors = uint64_t{1} << 20;

struct FileLimitPlan {
  uint64_t raise_to = 0;  // the soft limit to set; 0 = leave it
  std::string warning;    // "" or why the limit is still too low for max_connections
};

// What to do with a soft limit `soft` and hard limit `hard` (UINT64_MAX = unlimited) for up
// to `max_connections` connections (0 = no limit): raise the soft limit to the hard one
// when lower, and warn when even that leaves fewer than max_connections +
// kReservedFileDescriptors descriptors.
FileLimitPlan PlanFileLimit(uint64_t soft, uint64_t hard, uint64_t max_connections);

// Applies PlanFileLimit to this process (getrlimit/setrlimit) and logs what it did: an info
// line when it raised the limit, a warning when the result is too low or setrlimit failed.
// Returns the soft limit in force afterwards.
uint64_t RaiseFileLimit(uint64_t max_connections);

}  // namespace strata::server
