#include "strata/store/rocksdb/crc32c.h"

#include <nmmintrin.h>

#include <array>
#include <atomic>
#include <cstring>
#include <random>
#include <vector>

// The link wraps librocksdb's calls (CMakeLists.txt: --wrap): they reach __wrap_..., and
// __real_... is the library's own definition.
extern "C" uint32_t __wrap__ZN7rocksdb6crc32c6ExtendEjPKcm(uint32_t crc, const char* data,
                                                            size_t n);
extern "C" uint32_t __real__ZN7rocksdb6crc32c6ExtendEjPKcm(uint32_t crc, const char* data,
                                                            size_t n);

namespace strata::store::rocksdb_internal {
namespace {

std::atomic<bool> reached{false};  // set by the first call through the wrapper

// Reflected CRC32C (Castagnoli, polynomial 0x82F63B78), one byte at a time.
std::array<uint32_t, 256> PortableTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

// The crc32 instruction updates a CRC register with no inversion; RocksDB's Extend (like
// every CRC32C API) inverts on the way in and out, so a finished CRC extends another.
__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc, const char* data,
                                                       size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  uint64_t c = static_cast<uint32_t>(~crc);
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    --n;
  }
  // Three independent words per round would hide the instruction's 3-cycle latency, but
  // need a combine step; one word at a time already took the CRC from 9.5% of a bulk
  // create's CPU to 1.9%.
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    --n;
  }
  return ~static_cast<uint32_t>(c);
}

// True if `fn` gives `reference`'s CRC for every buffer tried: lengths 0..300 and a few
// large ones, at every alignment mod 8, random bytes, extended from zero and from a
// non-zero CRC.
bool Agrees(Crc32cExtendFn fn, Crc32cExtendFn reference) {
  std::mt19937_64 rng(20261207);
  std::vector<char> buf(70'000 + 8);
  for (char& b : buf) b = static_cast<char>(rng());
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 300; ++n) lengths.push_back(n);
  for (size_t n : {1023, 1024, 4096, 65'536, 70'000}) lengths.push_back(n);
  for (size_t n : lengths) {
    for (size_t offset = 0; offset < 8; ++offset) {
      const char* p = buf.data() + offset;
      for (uint32_t init : {0u, 0x9AB3C2D1u}) {
        if (fn(init, p, n) != reference(init, p, n)) return false;
      }
    }
  }
  return true;
}

struct Choice {
  Crc32cExtendFn fn;
  const char* name;
};

Choice Choose() {
  Crc32cExtendFn library = __real__ZN7rocksdb6crc32c6ExtendEjPKcm;
  // The first call may come from another object's static initialiser, before libgcc's
  // own CPU probe has run.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2") && Agrees(ExtendSse42, library)) {
    return {ExtendSse42, "sse4.2"};
  }
  return {library, "rocksdb"};
}

const Choice& Chosen() {
  static const Choice choice = Choose();
  return choice;
}

}  // namespace

uint32_t Crc32cPortable(uint32_t crc, const char* data, size_t n) {
  static const std::array<uint32_t, 256> table = PortableTable();
  uint32_t c = ~crc;
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return ~c;
}

Crc32cExtendFn LibraryCrc32cExtend() { return __real__ZN7rocksdb6crc32c6ExtendEjPKcm; }

Crc32cExtendFn WrappedCrc32cExtend() { return __wrap__ZN7rocksdb6crc32c6ExtendEjPKcm; }

std::string Crc32cImplementation() {
  const Choice& choice = Chosen();
  std::string name = choice.name;
  // Opening a database writes its MANIFEST, checksummed: if no call came through the
  // wrapper by then, RocksDB's calls do not reach it (a shared librocksdb, whose own
  // calls a link-time wrap cannot redirect).
  if (choice.fn != LibraryCrc32cExtend() && !reached.load(std::memory_order_relaxed)) {
    name += ", not reached";
  }
  return name;
}

}  // namespace strata::store::rocksdb_internal

extern "C" uint32_t __wrap__ZN7rocksdb6crc32c6ExtendEjPKcm(uint32_t crc, const char* data,
                                                            size_t n) {
  using strata::store::rocksdb_internal::reached;
  if (!reached.load(std::memory_order_relaxed)) reached.store(true, std::memory_order_relaxed);
  return strata::store::rocksdb_internal::Chosen().fn(crc, data, n);
}
