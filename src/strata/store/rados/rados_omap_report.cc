// strata_rados_omap_report: omap keys per RADOS object in a Strata deployment's pools, to
// check the "bounded partitions" goal (issue 12: no object over 100k omap keys).
//
//   strata_rados_omap_report --ceph-conf PATH --pool-prefix P [--top 10] [--limit 100000]
//
// Lists every object of `P.live`, `P.index` and `P.compressed` (all namespaces: every table,
// and the catalog) and counts its omap keys (RadosRowStore::CountOmapKeys). Prints per table
// the objects, keys and the largest object; the distribution of objects by key count; the
// `top` largest objects. Exit code 0 when no object holds more than `limit` keys, 1 when one
// does, 2 for bad arguments or an unreachable cluster. Reads only; safe beside a running
// server (the counts are then a moving picture).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "strata/store/rados/rados_row_store.h"

namespace {

struct Args {
  std::string ceph_conf;
  std::string pool_prefix;
  size_t top = 10;
  uint64_t limit = 100'000;
};

bool Parse(int argc, char** argv, Args* a) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--ceph-conf")
      a->ceph_conf = v;
    else if (k == "--pool-prefix")
      a->pool_prefix = v;
    else if (k == "--top")
      a->top = std::strtoull(v, nullptr, 10);
    else if (k == "--limit")
      a->limit = std::strtoull(v, nullptr, 10);
    else
      return false;
  }
  return (argc % 2) == 1 && !a->pool_prefix.empty();
}

// Object names of unsharded tables are raw partition keys: print them escaped.
std::string Printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace strata::store;
  Args args;
  if (!Parse(argc, argv, &args)) {
    std::fprintf(stderr,
                 "usage: strata_rados_omap_report --ceph-conf PATH --pool-prefix P [--top N] "
                 "[--limit KEYS]\n");
    return 2;
  }
  RadosRowStoreOptions options;
  options.ceph_conf = args.ceph_conf;
  options.pool_prefix = args.pool_prefix;
  options.reap_interval_ms = 0;  // a reader: no background reaper
  options.reap_on_read = false;
  absl::StatusOr<std::unique_ptr<RadosRowStore>> store = RadosRowStore::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<RadosOmapReport> report = (*store)->CountOmapKeys(args.top);
  if (!report.ok()) {
    std::fprintf(stderr, "%s\n", report.status().ToString().c_str());
    return 2;
  }
  std::printf("%-26s %-22s %10s %12s %10s %10s\n", "pool", "table", "objects", "keys", "keys/obj",
              "max keys");
  uint64_t max_keys = 0;
  for (const RadosOmapReport::TableKeys& t : report->tables) {
    std::printf("%-26s %-22s %10llu %12llu %10.1f %10llu\n", t.pool.c_str(),
                t.table.empty() ? "(catalog)" : Printable(t.table).c_str(),
                static_cast<unsigned long long>(t.objects), static_cast<unsigned long long>(t.keys),
                t.objects ? static_cast<double>(t.keys) / t.objects : 0.0,
                static_cast<unsigned long long>(t.max_keys));
    if (t.max_keys > max_keys) max_keys = t.max_keys;
  }
  std::printf("total: %llu objects, %llu omap keys, max %llu keys in one object\n",
              static_cast<unsigned long long>(report->objects),
              static_cast<unsigned long long>(report->keys),
              static_cast<unsigned long long>(max_keys));
  static const char* kBucketNames[RadosOmapReport::kBuckets] = {
      "0", "1-10", "11-100", "101-1k", "1,001-10k", "10,001-100k", "100,001-1M", "> 1M"};
  std::printf("objects by omap keys:");
  for (size_t i = 0; i < RadosOmapReport::kBuckets; ++i) {
    std::printf(" [%s] %llu", kBucketNames[i],
                static_cast<unsigned long long>(report->histogram[i]));
  }
  std::printf("\nlargest objects:\n");
  for (const RadosOmapReport::ObjectKeys& o : report->largest) {
    std::printf("  %10llu keys  %s / %s / %s\n", static_cast<unsigned long long>(o.keys),
                o.pool.c_str(), o.table.empty() ? "(catalog)" : Printable(o.table).c_str(),
                Printable(o.object).c_str());
  }
  const bool within = max_keys <= args.limit;
  std::printf("%s: max %llu keys per object, limit %llu\n", within ? "within" : "OVER",
              static_cast<unsigned long long>(max_keys),
              static_cast<unsigned long long>(args.limit));
  return within ? 0 : 1;
}
