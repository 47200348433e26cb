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
// A new processor is one class implementing Processor plus one line in MakeProcessor.
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

namespace strata::reprocess {

enum class Outcome { kChanged, kUnchanged };

class Processor {
 public:
  virtual ~Processor() = default;
  // Transforms `payload` in place.
  virtual absl::StatusOr<Outcome> Apply(assets::JsonValue* payload) const = 0;
};

// The schema of a type version (nullopt = the current one), for `validate`.
using SchemaLookup = std::function<absl::StatusOr<assets::Schema>(std::optional<uint32_t> version)>;

// Without a lookup, `validate` specs are checked but the processor refuses to run (Internal).
absl::StatusOr<std::unique_ptr<Processor>> MakeProcessor(const assets::JsonValue& spec,
                                                         const SchemaLookup& lookup = {});

// Sets the value at `tokens` (creating missing parent objects; an existing array element
// may be replaced, "-" appends). InvalidArgument if a parent is a scalar or an array index
// is out of range. `pointer` names the place in errors.
absl::Status SetAt(assets::JsonValue* root, const std::vector<std::string>& tokens,
                   assets::JsonValue value, const std::string& pointer);
// Removes the value at `tokens`; false if it was absent.
bool RemoveAt(assets::JsonValue* root, const std::vector<std::string>& tokens);

}  // namespace strata::reprocess
