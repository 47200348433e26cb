// strata_rados_bench: batched-write throughput of viewing-like rows on the RADOS row store.
//
//   strata_rados_bench --ceph-conf PATH [--seconds 10] [--threads 4] [--partitions 100]
//                      [--rows 10] [--members 100000] [--value-bytes 120] [--put-if-newer 1]
//                      [--shards 64]
//
// Each thread calls RowStore::Write in a loop with `partitions` partition batches (members
// drawn uniformly from `members`) of `rows` rows each: a live viewing row per event (key =
// started_at BE + session, value = `value-bytes` bytes), written with PutIfNewer as the
// viewing service does. Prints rows (events) per second and the mean latency per Write call.
// `shards`: shard objects of the live table (0 = one object per partition).
// Uses a fresh pool prefix and deletes its pools at the end. Not a test: no assertions.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "strata/base/coding.h"
#include "strata/store/rados/rados_row_store.h"

namespace {

struct Args {
  std::string ceph_conf;
  double seconds = 10;
  int threads = 4;
  int partitions = 100;
  int rows = 10;
  uint64_t members = 100'000;
  size_t value_bytes = 120;
  bool put_if_newer = true;
  size_t max_in_flight = 128;
  uint32_t shards = 64;
};

bool Parse(int argc, char** argv, Args* a) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--ceph-conf") a->ceph_conf = v;
    else if (k == "--seconds") a->seconds = std::atof(v);
    else if (k == "--threads") a->threads = std::atoi(v);
    else if (k == "--partitions") a->partitions = std::atoi(v);
    else if (k == "--rows") a->rows = std::atoi(v);
    else if (k == "--members") a->members = std::strtoull(v, nullptr, 10);
    else if (k == "--value-bytes") a->value_bytes = std::strtoull(v, nullptr, 10);
    else if (k == "--put-if-newer") a->put_if_newer = std::atoi(v) != 0;
    else if (k == "--max-in-flight") a->max_in_flight = std::strtoull(v, nullptr, 10);
    else if (k == "--shards") a->shards = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    else return false;
  }
  return (argc % 2) == 1 && a->threads > 0 && a->partitions > 0 && a->rows > 0 &&
         a->members > 0 && a->seconds > 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace strata;
  using namespace strata::store;
  Args args;
  if (!Parse(argc, argv, &args)) {
    std::fprintf(stderr,
                 "usage: strata_rados_bench --ceph-conf PATH [--seconds S] [--threads N] "
                 "[--partitions N] [--rows N] [--members N] [--value-bytes N] "
                 "[--put-if-newer 0|1] [--max-in-flight N] [--shards N]\n");
    return 2;
  }
  RadosRowStoreOptions options;
  options.ceph_conf = args.ceph_conf;
  options.pool_prefix = "strata.bench." + std::to_string(std::random_device()() % 1000000);
  options.delete_pools_on_close = true;
  options.max_in_flight = args.max_in_flight;
  options.live_shards = args.shards;
  absl::StatusOr<std::unique_ptr<RadosRowStore>> store = RadosRowStore::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<Table*> table = (*store)->OpenTable(TableOptions{"plays_live", TableProfile::kLive});
  if (!table.ok()) {
    std::fprintf(stderr, "%s\n", table.status().ToString().c_str());
    return 1;
  }
  std::atomic<uint64_t> rows{0}, calls{0}, errors{0};
  std::atomic<bool> stop{false};
  const std::string value(args.value_bytes, 'v');
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (int th = 0; th < args.threads; ++th) {
    threads.emplace_back([&, th] {
      std::mt19937_64 random(th + 1);
      uint64_t started_at = 1'700'000'000'000;
      while (!stop.load(std::memory_order_relaxed)) {
        std::vector<PartitionWrite> writes;
        writes.reserve(args.partitions);
        for (int p = 0; p < args.partitions; ++p) {
          std::string partition;
          coding::PutFixed64BE(&partition, random() % args.members + 1);
          writes.push_back(PartitionWrite{*table, std::move(partition), WriteBatch()});
          for (int r = 0; r < args.rows; ++r) {
            std::string key;
            coding::PutFixed64BE(&key, started_at++);
            key += "session-" + std::to_string(random() % 1000000);
            if (args.put_if_newer) {
              writes.back().batch.PutIfNewer(std::move(key), started_at, value);
            } else {
              writes.back().batch.Put(std::move(key), value);
            }
          }
        }
        absl::Status s = (*store)->Write(writes);
        if (!s.ok()) {
          if (errors++ == 0) std::fprintf(stderr, "write: %s\n", s.ToString().c_str());
          continue;
        }
        rows += static_cast<uint64_t>(args.partitions) * args.rows;
        ++calls;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(args.seconds));
  stop = true;
  for (std::thread& t : threads) t.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "rados rows: %d threads x Write(%d partitions x %d rows, %zu-byte values, %s, %u shards): "
      "%.0f rows/s, %.1f ms per Write call, %llu errors, %.1f s\n",
      args.threads, args.partitions, args.rows, args.value_bytes,
      args.put_if_newer ? "PutIfNewer" : "Put", args.shards, rows.load() / elapsed,
      calls.load() ? 1000.0 * elapsed * args.threads / calls.load() : 0.0,
      static_cast<unsigned long long>(errors.load()), elapsed);
  return errors.load() == 0 ? 0 : 1;
}
