// strata_blob_bench: throughput of a BlobStore backend driven directly (no HTTP server in
// between): large uploads (MB/s, multipart), ranged reads back (MB/s), small-object PUTs and
// GETs (per second) and a DeleteMany sweep, with T threads. Backends: `s3` (endpoint,
// credentials and region from STRATA_S3_* in the environment, or from the file that
// STRATA_CLUSTER_ENV names, as scripts/cluster.sh writes it) and `local` (a temp directory).
// A fresh bucket / directory per run, removed at the end.
//
//   strata_blob_bench [--backend s3|local] [--threads 4] [--large-mib 64] [--large-count 8]
//                     [--part-mib 8] [--small-bytes 4096] [--small-count 4000]
//                     [--delete-threads 1]
// --delete-threads N splits the DeleteMany sweep into N slices deleted at once, each on its
// own thread (the S3 backend sends DeleteObjects of up to 1000 keys per request): the
// delete rate the S3 server sustains with N requests in flight.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "strata/blob/local/local_blob_store.h"
#include "strata/blob/s3/s3_blob_store.h"
#include "strata/store/cluster_env.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Runs fn(i) for i in [0, n) on `threads` threads; returns the number of failures.
template <typename Fn>
int Parallel(int threads, int n, Fn fn) {
  std::atomic<int> next{0}, failures{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < n;) {
        if (!fn(i)) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : ts) th.join();
  return failures.load();
}

}  // namespace

int main(int argc, char** argv) {
  std::string backend = "s3";
  int threads = 4, large_count = 8, small_count = 4000, delete_threads = 1;
  uint64_t large_mib = 64, part_mib = 8, small_bytes = 4096;
  if (argc % 2 == 0) {
    std::fprintf(stderr, "%s: a value is missing\n", argv[argc - 1]);
    return 2;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    try {
      if (flag == "--backend")
        backend = value;
      else if (flag == "--threads")
        threads = std::stoi(value);
      else if (flag == "--large-mib")
        large_mib = std::stoull(value);
      else if (flag == "--large-count")
        large_count = std::stoi(value);
      else if (flag == "--part-mib")
        part_mib = std::stoull(value);
      else if (flag == "--small-bytes")
        small_bytes = std::stoull(value);
      else if (flag == "--small-count")
        small_count = std::stoi(value);
      else if (flag == "--delete-threads")
        delete_threads = std::stoi(value);
      else {
        std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
        return 2;
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "%s: not a number: %s\n", flag.c_str(), value.c_str());
      return 2;
    }
  }
  if (threads < 1 || delete_threads < 1 || large_count < 0 || small_count < 1) {
    std::fprintf(stderr,
                 "--threads and --delete-threads must be >= 1, --small-count >= 1, "
                 "--large-count >= 0\n");
    return 2;
  }

  std::unique_ptr<strata::blob::BlobStore> store;
  strata::blob::S3BlobStore* s3 = nullptr;
  std::string dir;
  if (backend == "s3") {
    using strata::store::ClusterSetting;
    strata::blob::S3BlobStoreOptions o;
    o.endpoint = ClusterSetting("STRATA_S3_ENDPOINT").value_or("");
    o.region = ClusterSetting("STRATA_S3_REGION").value_or("us-east-1");
    o.credentials.access_key = ClusterSetting("STRATA_S3_ACCESS_KEY").value_or("");
    o.credentials.secret_key = ClusterSetting("STRATA_S3_SECRET_KEY").value_or("");
    std::mt19937_64 rng{std::random_device{}()};
    o.bucket = "strata-bench-" + std::to_string(rng() % 1000000000);
    o.create_bucket = true;
    o.part_bytes = part_mib << 20;
    auto opened = strata::blob::S3BlobStore::Open(o);
    if (!opened.ok()) {
      std::fprintf(stderr, "s3: %s\n", opened.status().ToString().c_str());
      return 1;
    }
    s3 = opened->get();
    store = std::move(*opened);
  } else {
    dir = (std::filesystem::temp_directory_path() / "strata_blob_bench").string();
    std::filesystem::remove_all(dir);
    strata::blob::LocalBlobStoreOptions o;
    o.root = dir;
    o.part_bytes = part_mib << 20;
    auto opened = strata::blob::LocalBlobStore::Open(o);
    if (!opened.ok()) {
      std::fprintf(stderr, "local: %s\n", opened.status().ToString().c_str());
      return 1;
    }
    store = std::move(*opened);
  }

  std::string chunk(1 << 20, '\0');
  std::mt19937_64 rng(1);
  for (char& c : chunk) c = static_cast<char>(rng());
  const std::string small(small_bytes, 's');

  auto t0 = Clock::now();
  int failed = Parallel(threads, large_count, [&](int i) {
    auto w = store->NewWriter("large/" + std::to_string(i));
    if (!w.ok()) return false;
    for (uint64_t m = 0; m < large_mib; ++m) {
      if (!(*w)->Append(chunk).ok()) return false;
    }
    return (*w)->Commit().ok();
  });
  double up = Seconds(t0);
  const double large_total_mb = static_cast<double>(large_mib * large_count);
  std::printf("%s upload: %d x %llu MiB (parts of %llu MiB), %d threads: %.1f MB/s (%d failed)\n",
              backend.c_str(), large_count, static_cast<unsigned long long>(large_mib),
              static_cast<unsigned long long>(part_mib), threads, large_total_mb / up, failed);

  t0 = Clock::now();
  failed = Parallel(threads, large_count, [&](int i) {
    auto r = store->NewReader("large/" + std::to_string(i));
    if (!r.ok()) return false;
    std::string out;
    for (uint64_t off = 0; off < (*r)->size(); off += 8 << 20) {
      out.clear();
      if (!(*r)->ReadAt(off, 8 << 20, &out).ok()) return false;
    }
    return true;
  });
  double down = Seconds(t0);
  std::printf("%s ranged read (8 MiB ranges): %.1f MB/s (%d failed)\n", backend.c_str(),
              large_total_mb / down, failed);

  t0 = Clock::now();
  failed = Parallel(threads, small_count,
                    [&](int i) { return store->Put("small/" + std::to_string(i), small).ok(); });
  double puts = Seconds(t0);
  std::printf("%s small PUT (%llu B), %d threads: %.0f PUT/s (%d failed)\n", backend.c_str(),
              static_cast<unsigned long long>(small_bytes), threads, small_count / puts, failed);

  t0 = Clock::now();
  failed = Parallel(threads, small_count, [&](int i) {
    return store->Read("small/" + std::to_string(i), 0, small_bytes).ok();
  });
  double gets = Seconds(t0);
  std::printf("%s small GET (open + one ranged read): %.0f GET/s (%d failed)\n", backend.c_str(),
              small_count / gets, failed);

  std::vector<std::string> names;
  for (int i = 0; i < small_count; ++i) names.push_back("small/" + std::to_string(i));
  const int slices = std::min(delete_threads, small_count);
  std::vector<absl::Status> deleted(slices);
  t0 = Clock::now();
  {
    std::vector<std::thread> ts;
    for (int t = 0; t < slices; ++t) {
      ts.emplace_back([&, t] {
        const size_t begin = names.size() * t / slices, end = names.size() * (t + 1) / slices;
        std::vector<std::string> slice(names.begin() + begin, names.begin() + end);
        deleted[t] = store->DeleteMany(slice);
      });
    }
    for (auto& th : ts) th.join();
  }
  double dels = Seconds(t0);
  absl::Status del = absl::OkStatus();
  for (const absl::Status& s : deleted) del.Update(s);
  std::printf("%s DeleteMany of %d in %d slices at once: %.0f deletes/s (%s)\n", backend.c_str(),
              small_count, slices, small_count / dels, del.ok() ? "ok" : del.ToString().c_str());

  if (s3 != nullptr) {
    std::printf("s3 retries: %llu, connections opened: %llu\n",
                static_cast<unsigned long long>(s3->retries()),
                static_cast<unsigned long long>(s3->connections_opened()));
    absl::Status dropped = s3->DropBucket();
    if (!dropped.ok()) std::fprintf(stderr, "drop bucket: %s\n", dropped.ToString().c_str());
  } else {
    store.reset();
    std::filesystem::remove_all(dir);
  }
  return 0;
}
