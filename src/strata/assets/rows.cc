#include "strata/assets/rows.h"

#include <algorithm>
#include <cstdio>

#include "strata/assets/json.h"
#include "strata/base/coding.h"

namespace strata::assets {
namespace {

constexpr Millis kDayMs = 86'400'000;
constexpr char kOutboxFormatV1 = 1;

// Howard Hinnant's civil-from-days and days-from-civil (public domain algorithms).
void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

void AppendInverted(std::string* out, const AssetId& id) {
  for (uint8_t b : id.bytes) out->push_back(static_cast<char>(~b));
}

std::string Hex(std::string_view bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    out.push_back(kHex[static_cast<uint8_t>(c) >> 4]);
    out.push_back(kHex[static_cast<uint8_t>(c) & 15]);
  }
  return out;
}

std::optional<std::string> Unhex(std::string_view text) {
  if (text.size() % 2 != 0 || text.size() > 2 * 8192) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 2);
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < text.size(); i += 2) {
    const int hi = digit(text[i]);
    const int lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

}  // namespace

Millis BucketStart(BucketUnit unit, Millis t) {
  const int64_t days = FloorDiv(t, kDayMs);
  if (unit == BucketUnit::kDay) return days * kDayMs;
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  return DaysFromCivil(y, m, 1) * kDayMs;
}

Millis PreviousBucketStart(BucketUnit unit, Millis start) { return BucketStart(unit, start - 1); }

std::string BucketPartition(std::string_view type, BucketUnit unit, Millis start) {
  int64_t y;
  unsigned m, d;
  CivilFromDays(FloorDiv(start, kDayMs), &y, &m, &d);
  char buf[32];
  if (unit == BucketUnit::kDay) {
    std::snprintf(buf, sizeof(buf), "/d%04lld%02u%02u", static_cast<long long>(y), m, d);
  } else {
    std::snprintf(buf, sizeof(buf), "/m%04lld%02u", static_cast<long long>(y), m);
  }
  std::string out(type);
  out.append(buf);
  return out;
}

std::string AssetKey(const AssetId& id) {
  std::string k(1, kAssetPrefix);
  AppendInverted(&k, id);
  return k;
}

std::optional<AssetId> AssetIdFromKey(std::string_view key) {
  if (key.size() != 17 || key[0] != kAssetPrefix) return std::nullopt;
  AssetId id;
  for (int i = 0; i < 16; ++i) id.bytes[i] = static_cast<uint8_t>(~key[1 + i]);
  return id;
}

std::string HistoryPrefix(const AssetId& id) {
  std::string k(1, kHistoryPrefix);
  k.append(id.view());
  return k;
}

std::string HistoryKey(const AssetId& id, uint32_t version) {
  std::string k = HistoryPrefix(id);
  coding::PutFixed32BE(&k, version);
  return k;
}

std::string IndexPrefix(uint16_t index_id) {
  std::string k(1, kIndexPrefix);
  k.push_back(static_cast<char>(index_id >> 8));
  k.push_back(static_cast<char>(index_id & 0xff));
  return k;
}

std::string IndexEntry(uint16_t index_id, std::string_view encoded_value) {
  std::string e;
  e.push_back(static_cast<char>(index_id >> 8));
  e.push_back(static_cast<char>(index_id & 0xff));
  e.append(encoded_value);
  return e;
}

std::string IndexKeyFromEntry(std::string_view entry, const AssetId& id) {
  std::string k(1, kIndexPrefix);
  k.append(entry);
  AppendInverted(&k, id);
  return k;
}

std::string IndexKey(uint16_t index_id, std::string_view encoded_value, const AssetId& id) {
  return IndexKeyFromEntry(IndexEntry(index_id, encoded_value), id);
}

std::string AssetKeyAfter(const AssetId& id) {
  std::string k = AssetKey(id);
  k.push_back('\0');
  return k;
}

std::optional<AssetId> AssetIdFromIndexKey(std::string_view key) {
  if (key.size() < 3 + 16 || key[0] != kIndexPrefix) return std::nullopt;  // index 0: no value
  AssetId id;
  const size_t at = key.size() - 16;
  for (int i = 0; i < 16; ++i) id.bytes[i] = static_cast<uint8_t>(~key[at + i]);
  return id;
}

std::string OutboxKey(const AssetId& id, uint32_t version) {
  std::string k(1, kOutboxPrefix);
  k.append(id.view());
  coding::PutFixed32BE(&k, version);
  return k;
}

std::string JobMarkKey(uint64_t job_id, const AssetId& id) {
  std::string k = JobMarkPrefix(job_id);
  k.append(id.view());
  return k;
}

std::string JobMarkPrefix(uint64_t job_id) {
  std::string k(1, kJobMarkPrefix);
  coding::PutFixed64BE(&k, job_id);
  return k;
}

std::optional<AssetId> AssetIdFromJobMarkKey(std::string_view key) {
  if (key.size() != 1 + 8 + 16 || key[0] != kJobMarkPrefix) return std::nullopt;
  return AssetId::FromBytes(key.substr(9));
}

std::string TypeVersionKey(uint32_t version) {
  std::string k(1, kTypeVersionPrefix);
  coding::PutFixed32BE(&k, version);
  return k;
}

std::string BucketDirectoryKey(Millis start) {
  std::string k(1, kBucketPrefix);
  coding::PutFixed64BE(&k, static_cast<uint64_t>(start));
  return k;
}

std::string EncodeAssetRow(const AssetRow& row) {
  std::string out;
  out.reserve(64 + row.payload.size());
  AppendAssetRowHeader(row, &out);
  out.append(row.payload);
  return out;
}

void AppendAssetRowHeader(const AssetRow& row, std::string* out) {
  out->push_back(kAssetRowFormatV1);
  coding::PutVarint64(out, row.version);
  coding::PutVarint64(out, row.schema_version);
  coding::PutVarint64(out, coding::ZigZag(row.created_at));
  coding::PutVarint64(out, coding::ZigZag(row.updated_at));
  coding::PutVarint64(out, row.index_entries.size());
  for (const std::string& e : row.index_entries) coding::PutLengthPrefixed(out, e);
}

std::optional<AssetRow> DecodeOwnedAssetRow(std::string&& in) {
  // The header is decoded from a view; the payload then keeps the buffer.
  std::string_view rest(in);
  std::optional<AssetRow> header = DecodeAssetRowHeader(&rest);
  if (!header) return std::nullopt;
  const size_t header_bytes = in.size() - rest.size();
  header->payload = std::move(in);
  header->payload.erase(0, header_bytes);
  return header;
}

std::optional<AssetRow> DecodeAssetRow(std::string_view in) {
  std::optional<AssetRow> row = DecodeAssetRowHeader(&in);
  if (row) row->payload.assign(in.data(), in.size());
  return row;
}

namespace {

// The header's fields after its format byte.
std::optional<AssetRow> DecodeHeaderFields(std::string_view* rest) {
  std::string_view& in = *rest;
  AssetRow row;
  uint64_t version, schema_version, created, updated, entries;
  if (!coding::GetVarint64(&in, &version) || !coding::GetVarint64(&in, &schema_version) ||
      !coding::GetVarint64(&in, &created) || !coding::GetVarint64(&in, &updated) ||
      !coding::GetVarint64(&in, &entries) || version > UINT32_MAX || schema_version > UINT32_MAX ||
      entries > 4096) {
    return std::nullopt;
  }
  row.version = static_cast<uint32_t>(version);
  row.schema_version = static_cast<uint32_t>(schema_version);
  row.created_at = coding::UnZigZag(created);
  row.updated_at = coding::UnZigZag(updated);
  row.index_entries.reserve(entries);
  for (uint64_t i = 0; i < entries; ++i) {
    std::string_view e;
    if (!coding::GetLengthPrefixed(&in, &e)) return std::nullopt;
    row.index_entries.emplace_back(e);
  }
  return row;
}

}  // namespace

std::optional<AssetRow> DecodeAssetRowHeader(std::string_view* rest) {
  if (rest->empty() || (*rest)[0] != kAssetRowFormatV1) return std::nullopt;
  rest->remove_prefix(1);
  return DecodeHeaderFields(rest);
}

std::string EncodeHistoryRow(const AssetRow& previous, std::string_view next_payload) {
  std::string_view old = previous.payload;
  const size_t most = std::min(old.size(), next_payload.size());
  size_t prefix = 0;
  while (prefix < most && old[prefix] == next_payload[prefix]) ++prefix;
  size_t suffix = 0;
  while (suffix < most - prefix &&
         old[old.size() - 1 - suffix] == next_payload[next_payload.size() - 1 - suffix]) {
    ++suffix;
  }
  const size_t middle = old.size() - prefix - suffix;
  // Whole when the delta would save little (its two varints and the dependency on the
  // next version are not worth a few bytes).
  if (middle + 16 >= old.size()) return EncodeAssetRow(previous);
  std::string out;
  out.reserve(64 + middle);
  AppendAssetRowHeader(previous, &out);
  out[0] = kHistoryDeltaFormat;
  coding::PutVarint64(&out, prefix);
  coding::PutVarint64(&out, suffix);
  out.append(old.substr(prefix, middle));
  return out;
}

bool IsHistoryDelta(std::string_view in) { return !in.empty() && in[0] == kHistoryDeltaFormat; }

std::optional<AssetRow> DecodeHistoryHeader(std::string_view in) {
  if (in.empty() || (in[0] != kAssetRowFormatV1 && in[0] != kHistoryDeltaFormat)) {
    return std::nullopt;
  }
  in.remove_prefix(1);
  return DecodeHeaderFields(&in);
}

std::optional<AssetRow> DecodeHistoryRow(std::string_view in, std::string_view next_payload) {
  if (!IsHistoryDelta(in)) return DecodeAssetRow(in);
  in.remove_prefix(1);
  std::optional<AssetRow> row = DecodeHeaderFields(&in);
  uint64_t prefix, suffix;
  if (!row || !coding::GetVarint64(&in, &prefix) || !coding::GetVarint64(&in, &suffix) ||
      prefix > next_payload.size() || suffix > next_payload.size() - prefix) {
    return std::nullopt;
  }
  row->payload.reserve(prefix + in.size() + suffix);
  row->payload.assign(next_payload.substr(0, prefix));
  row->payload.append(in);
  row->payload.append(next_payload.substr(next_payload.size() - suffix));
  return row;
}

std::string_view ChangeOpName(ChangeOp op) {
  switch (op) {
    case ChangeOp::kCreate:
      return "create";
    case ChangeOp::kUpdate:
      return "update";
    case ChangeOp::kDelete:
      return "delete";
  }
  return "?";
}

std::string EncodeChangeEvent(const ChangeEvent& e) {
  std::string out = "{\"type\":";
  AppendJsonString(&out, e.type);
  out += ",\"id\":\"" + e.id.ToString() + "\",\"version\":" + std::to_string(e.version) +
         ",\"op\":\"" + std::string(ChangeOpName(e.op)) + "\",\"time\":" + std::to_string(e.time) +
         "}";
  return out;
}

std::string EncodeOutbox(const std::vector<std::string>& events) {
  std::string out(1, kOutboxFormatV1);
  coding::PutVarint64(&out, events.size());
  for (const std::string& e : events) coding::PutLengthPrefixed(&out, e);
  return out;
}

std::optional<std::vector<std::string>> DecodeOutbox(std::string_view in) {
  if (in.empty() || in[0] != kOutboxFormatV1) return std::nullopt;
  in.remove_prefix(1);
  uint64_t n;
  if (!coding::GetVarint64(&in, &n) || n > in.size()) return std::nullopt;
  std::vector<std::string> out;
  for (uint64_t i = 0; i < n; ++i) {
    std::string_view e;
    if (!coding::GetLengthPrefixed(&in, &e)) return std::nullopt;
    out.emplace_back(e);
  }
  if (!in.empty()) return std::nullopt;
  return out;
}

std::string EncodeListCursor(const ListCursor& c) {
  std::string raw(1, '\x01');
  raw.append(c.last.view());
  return Hex(raw);
}

std::string EncodeSearchCursor(const SearchCursor& c) {
  std::string raw(1, '\x02');
  coding::PutFixed64BE(&raw, c.query_hash);
  coding::PutFixed64BE(&raw, static_cast<uint64_t>(c.bucket));
  raw.append(c.last_key);
  return Hex(raw);
}

std::optional<ListCursor> DecodeListCursor(std::string_view text) {
  std::optional<std::string> raw = Unhex(text);
  if (!raw || raw->size() != 17 || (*raw)[0] != '\x01') return std::nullopt;
  ListCursor c;
  c.last = *AssetId::FromBytes(std::string_view(*raw).substr(1));
  return c;
}

std::optional<SearchCursor> DecodeSearchCursor(std::string_view text) {
  std::optional<std::string> raw = Unhex(text);
  if (!raw || raw->size() < 17 + 20 || (*raw)[0] != '\x02') return std::nullopt;
  std::string_view in(*raw);
  in.remove_prefix(1);
  SearchCursor c;
  uint64_t bucket;
  if (!coding::GetFixed64BE(&in, &c.query_hash) || !coding::GetFixed64BE(&in, &bucket)) {
    return std::nullopt;
  }
  c.bucket = static_cast<Millis>(bucket);
  if (in.empty() || in[0] != kIndexPrefix || in.size() > 4096) return std::nullopt;
  c.last_key.assign(in.data(), in.size());
  return c;
}

}  // namespace strata::assets
