// CRC32C for RocksDB in hardware.
//
// RocksDB checksums every WAL record, blob record and MANIFEST record with CRC32C (SST
// blocks use XXH3) through one exported function, rocksdb::crc32c::Extend. Debian 12's
// librocksdb 7.8 is built for baseline x86-64, so that function runs a table-driven loop:
// 9.5% of the server's CPU while creating assets and 5% of a search's (docs/benchmark-log.md,
// "CRC32C in hardware"). Strata links the static librocksdb.a, and the link wraps that
// function (CMakeLists.txt: `--wrap`): every call from RocksDB's other objects reaches
// crc32c.cc's __wrap_ definition instead, which runs, with SSE4.2 the CPU's crc32 instruction (the same polynomial and
// pre/post inversion, so checksums written by either read back by the other), checked at
// first use against the library's own Extend on a few thousand buffers; without SSE4.2, or
// if a check disagreed, every call goes on to the library's own Extend. RocksRowStore::Open
// names the choice in its log line, which also keeps this object in every link that has
// RocksDB's (the wrap needs its definition before librocksdb.a is read).
#ifndef STRATA_STORE_ROCKSDB_CRC32C_H_
#define STRATA_STORE_ROCKSDB_CRC32C_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace strata::store::rocksdb_internal {

// Which CRC32C RocksDB's calls run, for logs: "sse4.2" (ours, in hardware), "rocksdb" (the
// library's own), or "sse4.2, not reached" (no call came through the wrap by the time this
// was asked: a shared librocksdb, whose internal calls a link-time wrap cannot redirect;
// meaningful once a database has been opened). The first call makes the choice.
std::string Crc32cImplementation();

// The library's own rocksdb::crc32c::Extend, and the wrapper RocksDB's calls reach. For
// tests.
using Crc32cExtendFn = uint32_t (*)(uint32_t crc, const char* data, size_t n);
Crc32cExtendFn LibraryCrc32cExtend();
Crc32cExtendFn WrappedCrc32cExtend();

// CRC32C in software, byte by byte (the reference for tests and the fallback when neither
// the CPU nor the library can be used).
uint32_t Crc32cPortable(uint32_t crc, const char* data, size_t n);

}  // namespace strata::store::rocksdb_internal

#endif  // STRATA_STORE_ROCKSDB_CRC32C_H_
