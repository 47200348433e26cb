#include "strata/media/checksums.h"

#include <openssl/evp.h>
#include <xxhash.h>

#include <cstdio>
#include <stdexcept>

namespace strata::media {

struct ObjectHasher::State {
  EVP_MD_CTX* sha1 = nullptr;
  EVP_MD_CTX* md5 = nullptr;
  XXH3_state_t* xxh3 = nullptr;
};

ObjectHasher::ObjectHasher() : state_(std::make_unique<State>()) {
  state_->sha1 = EVP_MD_CTX_new();
  state_->md5 = EVP_MD_CTX_new();
  state_->xxh3 = XXH3_createState();
  // Allocation failures here are out-of-memory conditions, as for any std::string.
  if (state_->sha1 == nullptr || state_->md5 == nullptr || state_->xxh3 == nullptr ||
      EVP_DigestInit_ex(state_->sha1, EVP_sha1(), nullptr) != 1 ||
      EVP_DigestInit_ex(state_->md5, EVP_md5(), nullptr) != 1 ||
      XXH3_64bits_reset(state_->xxh3) != XXH_OK) {
    throw std::bad_alloc();
  }
}

ObjectHasher::~ObjectHasher() {
  EVP_MD_CTX_free(state_->sha1);
  EVP_MD_CTX_free(state_->md5);
  XXH3_freeState(state_->xxh3);
}

void ObjectHasher::Update(std::string_view data) {
  if (data.empty()) return;
  EVP_DigestUpdate(state_->sha1, data.data(), data.size());
  EVP_DigestUpdate(state_->md5, data.data(), data.size());
  XXH3_64bits_update(state_->xxh3, data.data(), data.size());
}

Digests ObjectHasher::Finish() {
  Digests d;
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(state_->sha1, buf, &n);
  d.sha1.assign(reinterpret_cast<char*>(buf), n);
  EVP_DigestFinal_ex(state_->md5, buf, &n);
  d.md5.assign(reinterpret_cast<char*>(buf), n);
  d.xxh3 = XXH3_64bits_digest(state_->xxh3);
  return d;
}

Xxh3Stream::Xxh3Stream() : state_(XXH3_createState()) {
  if (state_ == nullptr || XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_)) != XXH_OK) {
    throw std::bad_alloc();
  }
}

Xxh3Stream::~Xxh3Stream() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

void Xxh3Stream::Update(std::string_view data) {
  if (!data.empty()) XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data.data(), data.size());
}

uint64_t Xxh3Stream::Digest() const {
  return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state_));
}

std::string Hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    unsigned char b = static_cast<unsigned char>(c);
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace strata::media
