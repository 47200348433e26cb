#include "strata/store/queue.h"

#include <array>
#include <string>

#include "strata/base/crash_point.h"
#include "strata/base/status.h"

namespace strata::store {
namespace {

constexpr std::array<uint32_t, 256> MakeCrc32Table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kCrc32Table = MakeCrc32Table();

uint32_t Crc32(std::string_view data) {
  uint32_t c = 0xFFFFFFFFu;
  for (char ch : data) c = kCrc32Table[(c ^ static_cast<uint8_t>(ch)) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

}  // namespace

absl::StatusOr<std::vector<PublishResult>> Queue::PublishThen(
    std::string_view topic, std::span<const PublishMessage> messages, const PartitionWrite& then) {
  if (then.table == nullptr) return absl::InvalidArgumentError("then: no table");
  absl::StatusOr<std::vector<PublishResult>> published = Publish(topic, messages);
  if (!published.ok()) return published;
  // Published, `then` not applied yet: the caller's outbox is published again after a crash.
  STRATA_CRASH_POINT("queue.before_then");
  STRATA_RETURN_IF_ERROR(then.table->Apply(then.partition, then.batch));
  return published;
}

int KeyPartition(std::string_view key, int partitions) {
  if (partitions <= 0) return 0;
  return static_cast<int>(Crc32(key) % static_cast<uint32_t>(partitions));
}

absl::Status ValidateQueueName(std::string_view name, std::string_view field) {
  bool ok = !name.empty() && name.size() <= kMaxQueueNameSize;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-')) {
      ok = false;
    }
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(std::string(field) +
                                    ": must be 1..249 characters of [A-Za-z0-9._-]");
}

absl::Status ValidateTopicOptions(const TopicOptions& options) {
  if (absl::Status s = ValidateQueueName(options.name, "topic"); !s.ok()) return s;
  if (options.partitions < 1 || options.partitions > kMaxTopicPartitions) {
    return absl::InvalidArgumentError("partitions: must be 1..4096");
  }
  if (options.retention_ms < 0) {
    return absl::InvalidArgumentError("retention_ms: must be >= 0");
  }
  return absl::OkStatus();
}

absl::Status ValidatePollRequest(const PollRequest& request) {
  if (absl::Status s = ValidateQueueName(request.group, "group"); !s.ok()) return s;
  if (absl::Status s = ValidateQueueName(request.topic, "topic"); !s.ok()) return s;
  if (request.max_messages < 1 || request.max_messages > kMaxPollMessages) {
    return absl::InvalidArgumentError("max_messages: must be 1..10000");
  }
  if (request.wait_ms < 0 || request.wait_ms > kMaxPollWaitMs) {
    return absl::InvalidArgumentError("wait_ms: must be 0..300000");
  }
  return absl::OkStatus();
}

}  // namespace strata::store
