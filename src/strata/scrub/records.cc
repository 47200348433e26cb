#include "strata/scrub/records.h"

#include "strata/base/coding.h"

namespace strata::scrub {
namespace {

constexpr char kVersion = 0x01;

absl::Status Corrupt(std::string_view what) {
  return absl::DataLossError(std::string(what) + ": malformed");
}

bool GetVersion(std::string_view* in) {
  if (in->empty() || (*in)[0] != kVersion) return false;
  in->remove_prefix(1);
  return true;
}

// A pass: varint(id) zz(started_at) zz(finished_at) varint x 5 (objects, bytes, damaged,
// errors, skipped).
void PutPass(std::string* out, const PassRecord& p) {
  coding::PutVarint64(out, p.id);
  coding::PutZigZag64(out, p.started_at);
  coding::PutZigZag64(out, p.finished_at);
  for (uint64_t v : {p.objects, p.bytes, p.damaged, p.errors, p.skipped}) {
    coding::PutVarint64(out, v);
  }
}

bool GetPass(std::string_view* in, PassRecord* p) {
  if (!coding::GetVarint64(in, &p->id) || !coding::GetZigZag64(in, &p->started_at) ||
      !coding::GetZigZag64(in, &p->finished_at)) {
    return false;
  }
  for (uint64_t* v : {&p->objects, &p->bytes, &p->damaged, &p->errors, &p->skipped}) {
    if (!coding::GetVarint64(in, v)) return false;
  }
  return true;
}

// An optional pass: a byte 0 (absent) or 1 followed by the pass.
bool GetOptionalPass(std::string_view* in, std::optional<PassRecord>* p) {
  if (in->empty() || static_cast<uint8_t>((*in)[0]) > 1) return false;
  const bool present = (*in)[0] == 1;
  in->remove_prefix(1);
  if (!present) return true;
  PassRecord pass;
  if (!GetPass(in, &pass)) return false;
  *p = pass;
  return true;
}

}  // namespace

// version, [0|1 current pass], lp(position bucket), lp(position key), [0|1 last pass],
// varint(damaged objects).
std::string EncodeScrubState(const ScrubState& s) {
  std::string out(1, kVersion);
  out.push_back(s.current ? 1 : 0);
  if (s.current) PutPass(&out, *s.current);
  coding::PutLengthPrefixed(&out, s.position_bucket);
  coding::PutLengthPrefixed(&out, s.position_key);
  out.push_back(s.last ? 1 : 0);
  if (s.last) PutPass(&out, *s.last);
  coding::PutVarint64(&out, s.damaged_objects);
  return out;
}

absl::StatusOr<ScrubState> DecodeScrubState(std::string_view in) {
  ScrubState s;
  if (!GetVersion(&in) || !GetOptionalPass(&in, &s.current) ||
      !coding::GetLengthPrefixed(&in, &s.position_bucket) ||
      !coding::GetLengthPrefixed(&in, &s.position_key) || !GetOptionalPass(&in, &s.last) ||
      !coding::GetVarint64(&in, &s.damaged_objects) || !in.empty()) {
    return Corrupt("scrub state");
  }
  return s;
}

std::string DamageClustering(std::string_view bucket, std::string_view key, uint64_t generation) {
  std::string out(bucket);
  out.push_back('\0');
  out.append(key);
  out.push_back('\0');
  coding::PutFixed64BE(&out, generation);
  return out;
}

bool ParseDamageClustering(std::string_view clustering, DamageRecord* record) {
  const size_t a = clustering.find('\0');
  if (a == std::string_view::npos || clustering.size() < a + 1 + 9) return false;
  const size_t b = clustering.size() - 9;
  if (clustering[b] != '\0' || b <= a) return false;
  record->bucket = std::string(clustering.substr(0, a));
  record->key = std::string(clustering.substr(a + 1, b - a - 1));
  std::string_view gen = clustering.substr(b + 1);
  return coding::GetFixed64BE(&gen, &record->generation);
}

// version, lp(blob), lp(kind), lp(detail), varint(size), zz(detected_at), varint(last_pass).
std::string EncodeDamageRecord(const DamageRecord& d) {
  std::string out(1, kVersion);
  coding::PutLengthPrefixed(&out, d.blob);
  coding::PutLengthPrefixed(&out, d.kind);
  coding::PutLengthPrefixed(&out, d.detail);
  coding::PutVarint64(&out, d.size);
  coding::PutZigZag64(&out, d.detected_at);
  coding::PutVarint64(&out, d.last_pass);
  return out;
}

absl::Status DecodeDamageRecord(std::string_view in, DamageRecord* d) {
  if (!GetVersion(&in) || !coding::GetLengthPrefixed(&in, &d->blob) ||
      !coding::GetLengthPrefixed(&in, &d->kind) || !coding::GetLengthPrefixed(&in, &d->detail) ||
      !coding::GetVarint64(&in, &d->size) || !coding::GetZigZag64(&in, &d->detected_at) ||
      !coding::GetVarint64(&in, &d->last_pass) || !in.empty()) {
    return Corrupt("scrub damage record");
  }
  return absl::OkStatus();
}

}  // namespace strata::scrub
