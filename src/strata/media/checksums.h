// Streaming checksums of an object's bytes: SHA-1 and MD5 (OpenSSL EVP) and XXH3-64
// (xxhash), all computed in one pass while the bytes stream in. Not thread-safe (one per
// upload).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace strata::media {

struct Digests {
  std::string sha1;  // 20 raw bytes
  std::string md5;   // 16 raw bytes
  uint64_t xxh3 = 0;
};

class ObjectHasher {
 public:
  ObjectHasher();
  ~ObjectHasher();
  ObjectHasher(const ObjectHasher&) = delete;
  ObjectHasher& operator=(const ObjectHasher&) = delete;

  void Update(std::string_view data);
  // Finishes all three; the hasher must not be used afterwards.
  Digests Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// XXH3-64 alone, streaming: to verify an object's bytes as they are read back (the fastest
// of the three stored checksums, ~13 GB/s). Not thread-safe.
class Xxh3Stream {
 public:
  Xxh3Stream();
  ~Xxh3Stream();
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;
  void Update(std::string_view data);
  uint64_t Digest() const;

 private:
  void* state_;  // XXH3_state_t, kept out of this header
};

// Lower-case hex of raw bytes, and of a 64-bit value (16 digits).
std::string Hex(std::string_view bytes);
std::string Hex64(uint64_t v);

}  // namespace strata::media
