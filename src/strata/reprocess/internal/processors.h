// The processors that live in files of their own (processor.h lists every kind), and the
// spec helpers they share with processor.cc. Internal to strata_reprocess.
#pragma once

#include <initializer_list>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "strata/assets/json.h"
#include "strata/reprocess/processor.h"

namespace strata::reprocess::internal {

// InvalidArgument "processor/<field>: <what>".
absl::Status SpecError(std::string_view field, std::string_view what);
// SpecError for the first member of `spec` not in `known`.
absl::Status OnlyFields(const assets::JsonValue& spec, std::initializer_list<std::string_view> known);

absl::StatusOr<std::unique_ptr<Processor>> MakeReindexProcessor(const assets::JsonValue& spec,
                                                                const TypeLookup& type);
absl::StatusOr<std::unique_ptr<Processor>> MakeExportProcessor(const assets::JsonValue& spec);
absl::StatusOr<std::unique_ptr<Processor>> MakeWebhookProcessor(const assets::JsonValue& spec);

}  // namespace strata::reprocess::internal
