// The `reindex` processor: builds an index added to a type that already had assets
// (docs/assets.md, "Reprocessing": reindex). Each step rewrites the asset's index entries from
// the type's current definition (AssetService::ProcessOnce with rebuild_index); the payload
// is never changed. When every selected asset is done, Finish covers the creates that may
// have loaded the type just before the index was added (they carry no condition, so they can
// commit after the job's planning walked past them): it rebuilds every asset created since
// kCreateWindowMs before the job, then marks the indexes ready for search.
#include <string>
#include <utility>
#include <vector>

#include "strata/assets/asset_service.h"
#include "strata/base/status.h"
#include "strata/reprocess/internal/processors.h"

namespace strata::reprocess::internal {
namespace {

using assets::JsonValue;

// How long before the job's creation a create may have loaded the type (without the new
// index) and still commit after planning: a request in flight for longer than this and the
// whole job is not covered.
constexpr Millis kCreateWindowMs = 60'000;

class ReindexProcessor final : public Processor {
 public:
  explicit ReindexProcessor(std::vector<std::pair<std::string, uint16_t>> indexes)
      : indexes_(std::move(indexes)) {}

  absl::StatusOr<Outcome> Apply(const AssetInfo&, JsonValue*) const override {
    return Outcome::kUnchanged;  // the entries are the runner's (RebuildsIndex)
  }
  bool RebuildsIndex() const override { return true; }

  absl::Status Finish(const JobEnv& env) override {
    if (env.assets == nullptr) return absl::InternalError("reindex: no asset service");
    assets::ListQuery q;
    q.limit = 1000;
    q.ids_only = true;
    q.since = env.job_created_at - kCreateWindowMs;
    for (;;) {
      STRATA_ASSIGN_OR_RETURN(assets::AssetPage page, env.assets->List(env.type, q));
      for (const assets::AssetId& id : page.ids) {
        STRATA_RETURN_IF_ERROR(env.assets->RebuildIndex(env.type, id.ToString()).status());
      }
      if (page.next_cursor.empty()) break;
      q.cursor = std::move(page.next_cursor);
    }
    return env.assets->MarkIndexesReady(env.type, indexes_);
  }

 private:
  // (pointer, index id) as the type defined them when the processor was made.
  std::vector<std::pair<std::string, uint16_t>> indexes_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Processor>> MakeReindexProcessor(const JsonValue& spec,
                                                                const TypeLookup& lookup) {
  STRATA_RETURN_IF_ERROR(OnlyFields(spec, {"kind", "pointers"}));
  std::vector<std::string> pointers;
  if (const JsonValue* p = spec.Find("pointers")) {
    if (!p->is_array() || p->items().empty()) {
      return SpecError("pointers", "must be a non-empty array of indexed JSON pointers");
    }
    for (size_t i = 0; i < p->items().size(); ++i) {
      const JsonValue& item = p->items()[i];
      const std::string field = "pointers/" + std::to_string(i);
      if (!item.is_string()) return SpecError(field, "must be a JSON pointer string");
      STRATA_RETURN_IF_ERROR(
          assets::ParsePointer(item.string_value(), "processor/" + field).status());
      pointers.push_back(item.string_value());
    }
  }
  if (!lookup) {
    return std::unique_ptr<Processor>(
        new ReindexProcessor(std::vector<std::pair<std::string, uint16_t>>{}));
  }
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const assets::AssetType> type, lookup());
  std::vector<std::pair<std::string, uint16_t>> indexes;
  if (pointers.empty()) {
    for (const assets::IndexDef& d : type->indexes) {
      if (!d.ready) indexes.emplace_back(d.pointer, d.id);
    }
  } else {
    for (size_t i = 0; i < pointers.size(); ++i) {
      const assets::IndexDef* def = nullptr;
      for (const assets::IndexDef& d : type->indexes) {
        if (d.pointer == pointers[i]) def = &d;
      }
      if (def == nullptr) {
        return SpecError("pointers/" + std::to_string(i),
                         pointers[i] + " is not indexed in type " + type->name);
      }
      indexes.emplace_back(def->pointer, def->id);
    }
  }
  return std::unique_ptr<Processor>(new ReindexProcessor(std::move(indexes)));
}

}  // namespace strata::reprocess::internal
