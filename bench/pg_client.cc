#include "bench/pg_client.h"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <tuple>
#include <unordered_map>

namespace strata::bench {

const char* const kPgCreateViewingTable =
    "CREATE TABLE viewing (member bigint, kind smallint, started_at bigint, session text, "
    "title bigint, event_time bigint, position_ms bigint, watched_ms bigint, device text, "
    "country text, content_lang text, audio_lang text, subtitle_lang text, "
    "PRIMARY KEY (member, kind, started_at, session))";

namespace {

constexpr Oid kInt8 = 20;
constexpr Oid kInt2 = 21;
constexpr Oid kText = 25;
constexpr Oid kColumnTypes[kPgColumns] = {kInt8, kInt2, kInt8, kText, kInt8, kInt8, kInt8,
                                          kInt8, kText, kText, kText, kText, kText};

struct KeyHash {
  size_t operator()(const std::tuple<uint64_t, bool, Millis, uint64_t>& k) const {
    return Mix64(std::get<0>(k) ^ Mix64(static_cast<uint64_t>(std::get<2>(k)) ^
                                        (std::get<3>(k) << 1) ^ (std::get<1>(k) ? 1 : 0)));
  }
};

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, end);
  out->push_back('\0');
}
void AppendText(std::string_view s, std::string* out) {
  out->append(s);
  out->push_back('\0');
}

std::string Message(PGconn* conn) {
  std::string m = PQerrorMessage(conn);
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

// Frees a PGresult at scope exit.
struct Result {
  PGresult* r;
  ~Result() { PQclear(r); }
};

int64_t ToInt(const char* s) { return std::strtoll(s, nullptr, 10); }

}  // namespace

PgBatch MakePgBatch(const std::vector<ViewingEvent>& events) {
  PgBatch batch;
  batch.events = static_cast<uint32_t>(events.size());
  std::unordered_map<std::tuple<uint64_t, bool, Millis, uint64_t>, size_t, KeyHash> index;
  std::vector<const ViewingEvent*> rows;
  rows.reserve(events.size());
  for (const ViewingEvent& e : events) {
    auto [it, inserted] =
        index.try_emplace({e.member, e.preview, e.started_at, e.session}, rows.size());
    if (inserted) {
      rows.push_back(&e);
    } else if (e.event_time > rows[it->second]->event_time) {
      rows[it->second] = &e;
    }
  }
  // One lock order for every batch: concurrent upserts that share keys (a busy member's
  // latest playback) then wait for each other instead of deadlocking.
  std::sort(rows.begin(), rows.end(), [](const ViewingEvent* a, const ViewingEvent* b) {
    return std::tie(a->member, a->preview, a->started_at, a->session) <
           std::tie(b->member, b->preview, b->started_at, b->session);
  });
  batch.rows = static_cast<uint32_t>(rows.size());
  batch.values.reserve(rows.size() * 110);
  for (const ViewingEvent* e : rows) {
    AppendInt(static_cast<int64_t>(e->member), &batch.values);
    AppendInt(e->preview ? 1 : 0, &batch.values);
    AppendInt(e->started_at, &batch.values);
    AppendInt(static_cast<int64_t>(e->session), &batch.values);
    AppendInt(static_cast<int64_t>(e->title), &batch.values);
    AppendInt(e->event_time, &batch.values);
    AppendInt(e->position_ms, &batch.values);
    AppendInt(e->watched_ms, &batch.values);
    AppendText(e->device, &batch.values);
    AppendText(e->country, &batch.values);
    AppendText(e->content_lang, &batch.values);
    AppendText(e->audio_lang, &batch.values);
    AppendText(e->subtitle_lang, &batch.values);
  }
  return batch;
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& conninfo) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return absl::UnavailableError("PQconnectdb: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string m = Message(conn);
    PQfinish(conn);
    return absl::UnavailableError("postgres: " + m);
  }
  return std::unique_ptr<PgConnection>(new PgConnection(conn));
}

PgConnection::~PgConnection() { PQfinish(conn_); }

absl::Status PgConnection::Exec(const std::string& sql) {
  Result r{PQexec(conn_, sql.c_str())};
  const ExecStatusType s = PQresultStatus(r.r);
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
    return absl::InternalError("postgres: " + Message(conn_) + " (in: " + sql.substr(0, 80) + ")");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<std::string>>> PgConnection::Query(const std::string& sql) {
  Result r{PQexec(conn_, sql.c_str())};
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK) {
    return absl::InternalError("postgres: " + Message(conn_) + " (in: " + sql.substr(0, 80) + ")");
  }
  std::vector<std::vector<std::string>> rows(static_cast<size_t>(PQntuples(r.r)));
  for (int i = 0; i < PQntuples(r.r); ++i) {
    for (int j = 0; j < PQnfields(r.r); ++j) rows[i].emplace_back(PQgetvalue(r.r, i, j));
  }
  return rows;
}

absl::Status PgConnection::PrepareUpsert(uint32_t rows) {
  if (rows < upsert_prepared_.size() && upsert_prepared_[rows]) return absl::OkStatus();
  std::string sql =
      "INSERT INTO viewing (member, kind, started_at, session, title, event_time, position_ms, "
      "watched_ms, device, country, content_lang, audio_lang, subtitle_lang) VALUES ";
  int p = 1;
  for (uint32_t i = 0; i < rows; ++i) {
    sql += i == 0 ? "(" : ",(";
    for (int c = 0; c < kPgColumns; ++c) {
      if (c > 0) sql += ',';
      sql += '$';
      sql += std::to_string(p++);
    }
    sql += ')';
  }
  sql +=
      " ON CONFLICT (member, kind, started_at, session) DO UPDATE SET title = excluded.title, "
      "event_time = excluded.event_time, position_ms = excluded.position_ms, "
      "watched_ms = excluded.watched_ms, device = excluded.device, country = excluded.country, "
      "content_lang = excluded.content_lang, audio_lang = excluded.audio_lang, "
      "subtitle_lang = excluded.subtitle_lang WHERE excluded.event_time > viewing.event_time";
  std::vector<Oid> types;
  types.reserve(static_cast<size_t>(rows) * kPgColumns);
  for (uint32_t i = 0; i < rows; ++i)
    types.insert(types.end(), kColumnTypes, kColumnTypes + kPgColumns);
  const std::string name = "upsert" + std::to_string(rows);
  Result r{
      PQprepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(types.size()), types.data())};
  if (PQresultStatus(r.r) != PGRES_COMMAND_OK) {
    return absl::InternalError("postgres: prepare " + name + ": " + Message(conn_));
  }
  if (upsert_prepared_.size() <= rows) upsert_prepared_.resize(rows + 1, false);
  upsert_prepared_[rows] = true;
  return absl::OkStatus();
}

absl::Status PgConnection::Upsert(const PgBatch& batch) {
  if (batch.rows == 0) return absl::OkStatus();
  if (absl::Status s = PrepareUpsert(batch.rows); !s.ok()) return s;
  const size_t n = static_cast<size_t>(batch.rows) * kPgColumns;
  params_.clear();
  params_.reserve(n);
  const char* p = batch.values.data();
  const char* end = p + batch.values.size();
  while (p < end && params_.size() < n) {
    params_.push_back(p);
    while (*p != '\0') ++p;
    ++p;
  }
  if (params_.size() != n) return absl::InternalError("upsert: malformed batch");
  const std::string name = "upsert" + std::to_string(batch.rows);
  Result r{PQexecPrepared(conn_, name.c_str(), static_cast<int>(n), params_.data(), nullptr,
                          nullptr, 0)};
  if (PQresultStatus(r.r) != PGRES_COMMAND_OK) {
    return absl::InternalError("postgres: upsert: " + Message(conn_));
  }
  return absl::OkStatus();
}

absl::Status PgConnection::Prepare(const std::string& name, const std::string& sql) {
  Result r{PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr)};
  if (PQresultStatus(r.r) != PGRES_COMMAND_OK) {
    return absl::InternalError("postgres: prepare " + name + ": " + Message(conn_));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> PgConnection::ExecPrepared(const std::string& name,
                                                  const std::vector<const char*>& params,
                                                  std::string* last_first_column) {
  Result r{PQexecPrepared(conn_, name.c_str(), static_cast<int>(params.size()), params.data(),
                          nullptr, nullptr, 0)};
  const ExecStatusType st = PQresultStatus(r.r);
  if (st == PGRES_COMMAND_OK) return size_t{0};
  if (st != PGRES_TUPLES_OK) {
    return absl::InternalError("postgres: " + name + ": " + Message(conn_));
  }
  const int n = PQntuples(r.r);
  if (last_first_column != nullptr && n > 0 && PQnfields(r.r) > 0) {
    last_first_column->assign(PQgetvalue(r.r, n - 1, 0));
  }
  return static_cast<size_t>(n);
}

absl::StatusOr<size_t> PgConnection::NewestPlays(uint64_t member, int limit,
                                                 std::vector<StoredPlay>* out) {
  if (newest_limit_ == 0) {
    // The limit is part of the statement (a constant for the planner, like the query a
    // service would send).
    const Oid types[1] = {kInt8};
    const std::string sql =
        "SELECT member, title, session, started_at, event_time, position_ms, watched_ms, "
        "device, country, content_lang, audio_lang, subtitle_lang FROM viewing "
        "WHERE member = $1 AND kind = 0 ORDER BY started_at DESC LIMIT " +
        std::to_string(limit);
    Result r{PQprepare(conn_, "newest", sql.c_str(), 1, types)};
    if (PQresultStatus(r.r) != PGRES_COMMAND_OK) {
      return absl::InternalError("postgres: prepare newest: " + Message(conn_));
    }
    newest_limit_ = limit;
  } else if (limit != newest_limit_) {
    return absl::InvalidArgumentError("limit: this connection reads " +
                                      std::to_string(newest_limit_) + " plays");
  }
  const std::string m = std::to_string(member);
  const char* params[1] = {m.c_str()};
  Result r{PQexecPrepared(conn_, "newest", 1, params, nullptr, nullptr, 0)};
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK) {
    return absl::InternalError("postgres: newest plays: " + Message(conn_));
  }
  const int rows = PQntuples(r.r);
  if (out != nullptr) {
    out->clear();
    for (int i = 0; i < rows; ++i) {
      StoredPlay s;
      s.member = static_cast<uint64_t>(ToInt(PQgetvalue(r.r, i, 0)));
      s.title = static_cast<uint64_t>(ToInt(PQgetvalue(r.r, i, 1)));
      s.session = PQgetvalue(r.r, i, 2);
      s.started_at = ToInt(PQgetvalue(r.r, i, 3));
      s.event_time = ToInt(PQgetvalue(r.r, i, 4));
      s.position_ms = ToInt(PQgetvalue(r.r, i, 5));
      s.watched_ms = ToInt(PQgetvalue(r.r, i, 6));
      s.device = PQgetvalue(r.r, i, 7);
      s.country = PQgetvalue(r.r, i, 8);
      s.content_lang = PQgetvalue(r.r, i, 9);
      s.audio_lang = PQgetvalue(r.r, i, 10);
      s.subtitle_lang = PQgetvalue(r.r, i, 11);
      out->push_back(std::move(s));
    }
  }
  return static_cast<size_t>(rows);
}

}  // namespace strata::bench
