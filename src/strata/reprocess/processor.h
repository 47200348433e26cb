// Reprocessing processors: what a job does to each selected asset's payload (issue 15,
// "Reprocessing"). A processor is built once per job from its JSON spec and then applied to
// many payloads, from several workers at once.
//
// Built in (spec -> effect):
//   {"kind":"set","path":"/status","value":V}     sets the value (creating missing parent
//                                                 objects); unchanged if already equal
//   {"kind":"remove","path":"/tmp"}               removes it; unchanged if absent
//   {"kind":"rename","from":"/a","to":"/b"}       moves the value; unchanged if /a is absent
//   {"kind":"copy","from":"/a","to":"/b"}         copies it; unchanged if /a is absent
//   {"kind":"map","path":"/fmt","table":{"4K":"4k"},"default":V?}
//                                                 replaces a string value by its table entry
//                                                 (or `default` if given); unchanged when it
//                                                 is absent, not a string, or has no entry and
//                                                 no default
//   {"kind":"validate","schema_version":N?}       checks the payload against version N of
//                                                 the type's schema (default: the current
//                                                 one); a violation is an error (the job's
//                                                 dead letter, with the pointer and rule);
//                                                 never changes anything
//   {"kind":"reindex","pointers":["/x"]?}         rewrites the asset's index entries from
//                                                 the type's current definition and, when
//                                                 the job is done, marks the listed indexes
//                                                 (default: every one not built yet) ready
//                                                 for search; never changes the payload
//   {"kind":"export","format":"ndjson"|"avro"}    records the asset as read (in its job
//                                                 mark); when the job is done, writes them
//                                                 all to <export dir>/job-<id>.ndjson or
//                                                 .avro (export_processor.cc); never
//                                                 changes it
//   {"kind":"webhook","url":"http://h:p/path","timeout_ms":N?}
//                                                 POSTs the asset and takes the answer: 200
//                                                 = the new payload, 204 = unchanged, 4xx =
//                                                 an error (dead letter), 5xx, timeout or no
//                                                 connection = Unavailable (the runner
//                                                 retries with backoff) (webhook_processor.cc)
// A new processor is one class implementing Processor (its hooks have defaults that fit a
// payload transform) plus one line in MakeProcessor.
//
// Errors: MakeProcessor answers InvalidArgument naming the spec field ("processor/path:
// ..."). Apply answers InvalidArgument for a payload it cannot process (the job's dead
// letter reason, e.g. "rename: /b exists"); the payload is then unspecified and must be
// discarded.
//
// Thread safety: Apply is const and thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/assets/json.h"
#include "strata/assets/schema.h"
#include "strata/base/clock.h"

namespace strata::assets {
class AssetService;
struct AssetType;
}  // namespace strata::assets

namespace strata::reprocess {

enum class Outcome { kChanged, kUnchanged };

// The asset a processor is applied to (besides its payload). Views: valid during the call.
struct AssetInfo {
  std::string_view type;
  std::string_view id;
  uint32_t version = 0;  // the version read
  uint32_t schema_version = 0;
  Millis created_at = 0;
  Millis updated_at = 0;
};

// What a processor may use while a job runs (Begin, Finish); not given to dry runs.
struct JobEnv {
  uint64_t job_id = 0;
  std::string type;
  Millis job_created_at = 0;
  assets::AssetService* assets = nullptr;
  // Where `export` writes its files; empty = exports are refused.
  std::string export_dir;
  // The job was started by an earlier process (it runs again after a restart), or its
  // threads had stopped (a dead-letter retry of a finished job).
  bool resumed = false;
};

class Processor {
 public:
  virtual ~Processor() = default;
  // Transforms `payload` in place. Called from several workers at once; for one asset it
  // may be called more than once (a production write came between read and write: the
  // asset is re-read and this runs again on the new payload).
  virtual absl::StatusOr<Outcome> Apply(const AssetInfo& asset,
                                        assets::JsonValue* payload) const = 0;

  // The hooks below have defaults that fit a payload transform.

  // True: the runner also rewrites the asset's index entries from the type's current
  // definition (reindex), counting an asset whose entries it rewrote as changed.
  virtual bool RebuildsIndex() const { return false; }
  // True: each asset's job mark holds the asset's row as its step committed it
  // (assets::JobMark::keep_row), so Finish can read back what the job did, exactly once per
  // asset whatever crashes and redeliveries happened (AssetService::ScanJobRows): export.
  virtual bool RecordsRows() const { return false; }
  // Before the job's workers start, in the process that runs them. An error fails the job.
  virtual absl::Status Begin(const JobEnv& /*env*/) { return absl::OkStatus(); }
  // After every event was processed, before the job is marked succeeded (called by one
  // worker; again if dead letters are retried and the job finishes again). An error fails
  // the job.
  virtual absl::Status Finish(const JobEnv& /*env*/) { return absl::OkStatus(); }
  // After the job reached a final state (succeeded, failed or cancelled) and its workers in
  // this process stopped. Not called if the process stops first (a crash or shutdown just
  // after the transition leaves it undone). export: drops the rows its marks held.
  virtual void Ended(const JobEnv& /*env*/) {}
  // True: Apply is a cheap, pure function of the payload (no I/O, no side effect, no
  // retryable error), so the runner may process a polled batch of events together
  // (AssetService::ProcessMany: one read and one compare-and-set write per bucket). Default
  // false: one ProcessOnce per event (webhook, reindex).
  virtual bool Batchable() const { return false; }
  // False: a finished job cannot take its dead letters back (export: its file is written
  // and the rows it was written from are gone).
  virtual bool CanRetryDeadLetters() const { return true; }
};

// The schema of a type version (nullopt = the current one), for `validate`.
using SchemaLookup = std::function<absl::StatusOr<assets::Schema>(std::optional<uint32_t> version)>;
// The type's current definition, for `reindex`.
using TypeLookup = std::function<absl::StatusOr<std::shared_ptr<const assets::AssetType>>()>;

struct ProcessorEnv {
  SchemaLookup schema;
  TypeLookup type;
};

// Without lookups, `validate` and `reindex` specs are checked but the processors refuse to
// run (Internal).
absl::StatusOr<std::unique_ptr<Processor>> MakeProcessor(const assets::JsonValue& spec,
                                                         const ProcessorEnv& env = {});

// Sets the value at `tokens` (creating missing parent objects; an existing array element
// may be replaced, "-" appends). InvalidArgument if a parent is a scalar or an array index
// is out of range. `pointer` names the place in errors.
absl::Status SetAt(assets::JsonValue* root, const std::vector<std::string>& tokens,
                   assets::JsonValue value, const std::string& pointer);
// Removes the value at `tokens`; false if it was absent.
bool RemoveAt(assets::JsonValue* root, const std::vector<std::string>& tokens);

}  // namespace strata::reprocess
