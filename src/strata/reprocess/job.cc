#include "strata/reprocess/job.h"

#include <cmath>

#include "strata/assets/where.h"
#include "strata/base/status.h"
#include "strata/reprocess/processor.h"

namespace strata::reprocess {
namespace {

using assets::JsonValue;

constexpr char kJobFormatV1 = 1;

absl::Status Bad(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(std::string(field) + ": " + std::string(what));
}

absl::StatusOr<int64_t> IntField(const JsonValue& v, std::string_view field, int64_t lo,
                                 int64_t hi) {
  if (v.kind() != JsonValue::Kind::kInt || v.int_value() < lo || v.int_value() > hi) {
    return Bad(field, "must be an integer " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return v.int_value();
}

void AppendCounts(std::string* out, const JobCounts& c) {
  *out += "{\"selected\":" + std::to_string(c.selected) +
          ",\"processed\":" + std::to_string(c.processed) +
          ",\"changed\":" + std::to_string(c.changed) +
          ",\"unchanged\":" + std::to_string(c.unchanged) +
          ",\"conflicts_retried\":" + std::to_string(c.conflicts_retried) +
          ",\"failed\":" + std::to_string(c.failed) +
          ",\"dead_lettered\":" + std::to_string(c.dead_lettered) +
          ",\"dead_letters_retried\":" + std::to_string(c.dead_letters_retried) + "}";
}

}  // namespace

absl::StatusOr<JobSpec> ParseJobSpec(std::string_view body) {
  STRATA_ASSIGN_OR_RETURN(JsonValue doc, assets::ParseJson(body, "body", 32));
  if (!doc.is_object()) return Bad("body", "must be a JSON object");
  JobSpec spec;
  bool have_processor = false;
  for (const JsonValue::Member& m : doc.members()) {
    const JsonValue& v = m.second;
    if (m.first == "type") {
      if (!v.is_string() || v.string_value().empty() || v.string_value().size() > 64) {
        return Bad("type", "must be an asset type name");
      }
      spec.type = v.string_value();
    } else if (m.first == "select") {
      if (!v.is_object()) return Bad("select", "must be an object");
      for (const JsonValue::Member& s : v.members()) {
        if (s.first == "since" || s.first == "until") {
          STRATA_ASSIGN_OR_RETURN(int64_t t, IntField(s.second, "select/" + s.first, 0, INT64_MAX));
          (s.first == "since" ? spec.since : spec.until) = t;
        } else if (s.first == "where") {
          if (!s.second.is_array()) return Bad("select/where", "must be an array of strings");
          for (size_t i = 0; i < s.second.items().size(); ++i) {
            const JsonValue& w = s.second.items()[i];
            const std::string field = "select/where/" + std::to_string(i);
            if (!w.is_string()) return Bad(field, "must be a string such as \"/format=4k\"");
            absl::StatusOr<assets::WhereCondition> c = assets::ParseWhere(w.string_value());
            if (!c.ok()) return Bad(field, std::string(c.status().message()));
            spec.where.push_back(w.string_value());
          }
        } else {
          return Bad("select/" + s.first, "unknown field (known: since, until, where)");
        }
      }
    } else if (m.first == "processor") {
      STRATA_RETURN_IF_ERROR(MakeProcessor(v).status());
      spec.processor = v;
      have_processor = true;
    } else if (m.first == "dry_run") {
      if (!v.is_object()) return Bad("dry_run", "must be an object such as {\"sample\": 10}");
      const JsonValue* sample = v.Find("sample");
      if (sample == nullptr || v.members().size() != 1) {
        return Bad("dry_run", "must be {\"sample\": N}");
      }
      STRATA_ASSIGN_OR_RETURN(int64_t n, IntField(*sample, "dry_run/sample", 1, 1000));
      spec.dry_run_sample = static_cast<uint32_t>(n);
    } else if (m.first == "rate") {
      if (!v.is_number() || !std::isfinite(v.number()) || v.number() < 0) {
        return Bad("rate", "must be a number of assets per second >= 0 (0 = unlimited)");
      }
      spec.rate = v.number();
    } else if (m.first == "adaptive") {
      if (v.kind() != JsonValue::Kind::kBool) return Bad("adaptive", "must be true or false");
      spec.adaptive = v.bool_value();
    } else if (m.first == "concurrency") {
      STRATA_ASSIGN_OR_RETURN(int64_t n, IntField(v, "concurrency", 1, 64));
      spec.concurrency = static_cast<int>(n);
    } else if (m.first == "max_attempts") {
      STRATA_ASSIGN_OR_RETURN(int64_t n, IntField(v, "max_attempts", 1, 100));
      spec.max_attempts = static_cast<int>(n);
    } else {
      return Bad(m.first,
                 "unknown field (known: type, select, processor, dry_run, rate, "
                 "adaptive, concurrency, max_attempts)");
    }
  }
  if (spec.type.empty()) return Bad("type", "required");
  if (!have_processor) return Bad("processor", "required");
  if (spec.since && spec.until && *spec.since >= *spec.until) {
    return Bad("select/since", "must be before select/until");
  }
  return spec;
}

std::string JobSpec::ToJson() const {
  std::string out = "{\"type\":";
  assets::AppendJsonString(&out, type);
  out += ",\"select\":{";
  bool first = true;
  auto sep = [&] {
    if (!first) out.push_back(',');
    first = false;
  };
  if (since) {
    sep();
    out += "\"since\":" + std::to_string(*since);
  }
  if (until) {
    sep();
    out += "\"until\":" + std::to_string(*until);
  }
  if (!where.empty()) {
    sep();
    out += "\"where\":[";
    for (size_t i = 0; i < where.size(); ++i) {
      if (i > 0) out.push_back(',');
      assets::AppendJsonString(&out, where[i]);
    }
    out += "]";
  }
  out += "},\"processor\":";
  processor.AppendTo(&out);
  if (dry_run_sample) out += ",\"dry_run\":{\"sample\":" + std::to_string(*dry_run_sample) + "}";
  out += ",\"rate\":";
  JsonValue::Double(rate).AppendTo(&out);
  out += std::string(",\"adaptive\":") + (adaptive ? "true" : "false");
  out += ",\"concurrency\":" + std::to_string(concurrency) +
         ",\"max_attempts\":" + std::to_string(max_attempts) + "}";
  return out;
}

std::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kPlanning:
      return "planning";
    case JobState::kRunning:
      return "running";
    case JobState::kPaused:
      return "paused";
    case JobState::kCancelled:
      return "cancelled";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
  }
  return "?";
}

std::optional<JobState> JobStateFromName(std::string_view name) {
  for (JobState s : {JobState::kPlanning, JobState::kRunning, JobState::kPaused,
                     JobState::kCancelled, JobState::kSucceeded, JobState::kFailed}) {
    if (JobStateName(s) == name) return s;
  }
  return std::nullopt;
}

bool IsFinal(JobState state) {
  return state == JobState::kCancelled || state == JobState::kSucceeded ||
         state == JobState::kFailed;
}

absl::Status CheckTransition(JobState from, JobState to) {
  bool ok = false;
  switch (from) {
    case JobState::kPlanning:
      ok = to == JobState::kRunning || to == JobState::kCancelled || to == JobState::kFailed;
      break;
    case JobState::kRunning:
      ok = to == JobState::kPaused || to == JobState::kCancelled || to == JobState::kSucceeded ||
           to == JobState::kFailed;
      break;
    case JobState::kPaused:
      ok = to == JobState::kRunning || to == JobState::kCancelled;
      break;
    default:
      ok = false;
  }
  if (ok) return absl::OkStatus();
  return absl::FailedPreconditionError("state: a " + std::string(JobStateName(from)) +
                                       " job cannot become " + std::string(JobStateName(to)));
}

std::string EncodeJobRecord(const JobRecord& job) {
  std::string out(1, kJobFormatV1);
  out += "{\"id\":" + std::to_string(job.id) + ",\"state\":\"" +
         std::string(JobStateName(job.state)) + "\",\"spec\":" + job.spec.ToJson() + ",\"counts\":";
  AppendCounts(&out, job.counts);
  out += ",\"created_at\":" + std::to_string(job.created_at) +
         ",\"updated_at\":" + std::to_string(job.updated_at) + ",\"error\":";
  assets::AppendJsonString(&out, job.error);
  out += ",\"planned\":";
  out += job.planned ? "true" : "false";
  out += ",\"plan_cursor\":";
  assets::AppendJsonString(&out, job.plan_cursor);
  out += "}";
  return out;
}

absl::StatusOr<JobRecord> DecodeJobRecord(std::string_view in) {
  if (in.empty() || in[0] != kJobFormatV1) return absl::DataLossError("job: unknown format");
  in.remove_prefix(1);
  STRATA_ASSIGN_OR_RETURN(JsonValue doc, assets::ParseJson(in, "stored job", 64));
  auto need = [&](const JsonValue& obj, std::string_view key,
                  JsonValue::Kind kind) -> absl::StatusOr<const JsonValue*> {
    const JsonValue* v = obj.Find(key);
    if (v == nullptr || v->kind() != kind) {
      return absl::DataLossError("stored job: bad " + std::string(key));
    }
    return v;
  };
  JobRecord job;
  STRATA_ASSIGN_OR_RETURN(const JsonValue* id, need(doc, "id", JsonValue::Kind::kInt));
  STRATA_ASSIGN_OR_RETURN(const JsonValue* state, need(doc, "state", JsonValue::Kind::kString));
  STRATA_ASSIGN_OR_RETURN(const JsonValue* spec, need(doc, "spec", JsonValue::Kind::kObject));
  STRATA_ASSIGN_OR_RETURN(const JsonValue* counts, need(doc, "counts", JsonValue::Kind::kObject));
  STRATA_ASSIGN_OR_RETURN(const JsonValue* created, need(doc, "created_at", JsonValue::Kind::kInt));
  STRATA_ASSIGN_OR_RETURN(const JsonValue* updated, need(doc, "updated_at", JsonValue::Kind::kInt));
  STRATA_ASSIGN_OR_RETURN(const JsonValue* error, need(doc, "error", JsonValue::Kind::kString));
  job.id = static_cast<uint64_t>(id->int_value());
  std::optional<JobState> s = JobStateFromName(state->string_value());
  if (!s) return absl::DataLossError("stored job: bad state");
  job.state = *s;
  absl::StatusOr<JobSpec> parsed = ParseJobSpec(spec->Serialize());
  if (!parsed.ok()) return absl::DataLossError("stored job: " + parsed.status().ToString());
  job.spec = std::move(*parsed);
  uint64_t* fields[] = {&job.counts.selected,          &job.counts.processed,
                        &job.counts.changed,           &job.counts.unchanged,
                        &job.counts.conflicts_retried, &job.counts.failed,
                        &job.counts.dead_lettered};
  const char* names[] = {"selected",          "processed", "changed",      "unchanged",
                         "conflicts_retried", "failed",    "dead_lettered"};
  for (size_t i = 0; i < std::size(names); ++i) {
    STRATA_ASSIGN_OR_RETURN(const JsonValue* n, need(*counts, names[i], JsonValue::Kind::kInt));
    *fields[i] = static_cast<uint64_t>(n->int_value());
  }
  // Absent from rows written before dead letters could be retried.
  if (const JsonValue* n = counts->Find("dead_letters_retried");
      n != nullptr && n->kind() == JsonValue::Kind::kInt) {
    job.counts.dead_letters_retried = static_cast<uint64_t>(n->int_value());
  }
  job.created_at = created->int_value();
  job.updated_at = updated->int_value();
  job.error = error->string_value();
  STRATA_ASSIGN_OR_RETURN(const JsonValue* planned, need(doc, "planned", JsonValue::Kind::kBool));
  STRATA_ASSIGN_OR_RETURN(const JsonValue* plan_cursor,
                          need(doc, "plan_cursor", JsonValue::Kind::kString));
  job.planned = planned->bool_value();
  job.plan_cursor = plan_cursor->string_value();
  return job;
}

}  // namespace strata::reprocess
