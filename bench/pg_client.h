// A minimal PostgreSQL client for `strata bench viewing --mode compare`, over libpq (the
// only user of libpq in Strata; it stays inside the bench library).
//
// The table the compare bench uses (kind: 0 = play, 1 = preview):
//   viewing(member bigint, kind smallint, started_at bigint, session text, title bigint,
//           event_time bigint, position_ms bigint, watched_ms bigint, device text,
//           country text, content_lang text, audio_lang text, subtitle_lang text,
//           primary key (member, kind, started_at, session))
// Writes are batched upserts that keep the last writer by event_time, as Strata does:
//   INSERT INTO viewing VALUES (...), (...) ON CONFLICT (member, kind, started_at, session)
//   DO UPDATE SET ... WHERE excluded.event_time > viewing.event_time
// prepared once per row count on each connection. The newest plays of a member are read by
// a backward scan of the primary key's index.
//
// Thread safety: a PgConnection is used by one thread at a time (libpq's own rule); free
// functions are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/history_workload.h"
#include "bench/viewing_workload.h"

struct pg_conn;  // libpq's PGconn, kept out of this header

namespace strata::bench {

// CREATE TABLE statement of the table above.
extern const char* const kPgCreateViewingTable;

// The parameters of one upsert, built before a timed phase.
struct PgBatch {
  uint32_t events = 0;  // events of the workload it carries
  uint32_t rows = 0;    // rows it writes: events with the same key merged
  // rows * kPgColumns NUL-terminated text values, row by row, in the table's column order.
  std::string values;
};
inline constexpr int kPgColumns = 13;

// Builds one upsert's parameters from a batch of events. Events with the same key (member,
// kind, started_at, session) are merged into the one with the greatest event_time (the
// first of equals): PostgreSQL refuses to update one row twice in one command ("ON
// CONFLICT DO UPDATE command cannot affect row a second time"), and this is what the
// upsert keeps anyway. Rows are sorted by key, so that concurrent batches lock the rows they
// share in the same order (unsorted, busy members' rows deadlocked batches of the
// history load against each other).
PgBatch MakePgBatch(const std::vector<ViewingEvent>& events);

class PgConnection {
 public:
  // Connects with a libpq connection string ("host=127.0.0.1 port=5432 user=x dbname=y").
  // Unavailable with libpq's message when that fails.
  static absl::StatusOr<std::unique_ptr<PgConnection>> Connect(const std::string& conninfo);
  ~PgConnection();

  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs SQL that returns no rows (several statements allowed). Internal with the server's
  // message on failure.
  absl::Status Exec(const std::string& sql);
  // Runs a query and returns its rows as text (NULL as ""). For small answers.
  absl::StatusOr<std::vector<std::vector<std::string>>> Query(const std::string& sql);
  // Upserts one batch (its own transaction: autocommit).
  absl::Status Upsert(const PgBatch& batch);
  // The newest `limit` plays of `member` (started_at descending): the number of rows, and
  // the rows themselves into *out when out is not null. Prepared as statement "newest" on
  // first use, with that limit; InvalidArgument for another limit later.
  absl::StatusOr<size_t> NewestPlays(uint64_t member, int limit, std::vector<StoredPlay>* out);

  // Generic prepared statements (the asset bench's): Prepare parses `sql` once per
  // connection as statement `name`, parameter types inferred by the server; Internal with
  // the server's message on failure.
  absl::Status Prepare(const std::string& name, const std::string& sql);
  // Executes prepared statement `name` with NUL-terminated text parameters (nullptr = NULL),
  // results as text. The number of rows returned (0 for a command), and the first column of
  // the last row into *last_first_column when that is not null and there are rows.
  absl::StatusOr<size_t> ExecPrepared(const std::string& name,
                                      const std::vector<const char*>& params,
                                      std::string* last_first_column = nullptr);

 private:
  explicit PgConnection(pg_conn* conn) : conn_(conn) {}
  absl::Status PrepareUpsert(uint32_t rows);

  pg_conn* conn_;
  std::vector<bool> upsert_prepared_;  // by row count
  int newest_limit_ = 0;               // 0 = "newest" not prepared yet
  std::vector<const char*> params_;    // reused
};

}  // namespace strata::bench
