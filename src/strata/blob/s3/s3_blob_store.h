// The BlobStore on any S3 API (AWS S3, MinIO, Ceph radosgw; tested against radosgw 16):
// one blob is one S3 object under its name (path-style URL endpoint/bucket/name), so any
// other S3 client reads what Strata wrote and the reverse. libcurl signs the requests
// (SigV4); nothing of curl or the XML parser shows in this header.
//
// How the contract of blob_store.h maps onto S3:
//  * Parts: a blob of at most `part_bytes` is one PUT; a larger one is a multipart upload of
//    `part_bytes` parts (the last one shorter), completed at Commit. BlobInfo::parts is the
//    S3 part count (the "-N" suffix of the object's ETag; 1 for a single PUT). The server must
//    accept parts that small: AWS needs >= 5 MiB, radosgw `rgw_multipart_min_part_size`
//    (5 MiB by default; the test cluster sets 4 KiB).
//  * Atomic visibility: S3 shows an object only once its PUT or CompleteMultipartUpload
//    returns, so nothing is visible before Commit. A process that dies mid-write leaves an
//    incomplete multipart upload (invisible, but it holds space): Open aborts the ones older
//    than `abort_uploads_older_than_ms` (default 1 day; an in-flight writer is far younger),
//    and a bucket lifecycle rule AbortIncompleteMultipartUpload does the same server-side.
//  * Write-once names, two bucket modes, chosen by the bucket's versioning state at Open:
//    - Unversioned bucket: a single PUT carries `If-None-Match: *`, which radosgw (and AWS,
//      MinIO) enforce atomically: exactly one concurrent writer of a name wins. A multipart
//      Commit checks with HEAD first and sends `If-None-Match: *` on the Complete; radosgw 16
//      ignores that header on Complete, so two multipart writers racing on one name within
//      the HEAD-to-Complete window can both succeed, the later object replacing the earlier.
//    - Versioned bucket: radosgw ignores `If-None-Match` here, so Commit writes a new version
//      and then lists the name's versions: the oldest version since the last delete marker
//      wins; a writer whose version is not it removes its version and gets AlreadyExists.
//      Exactly one concurrent writer wins, but for the moment between a loser's write and its
//      removal a Stat/NewReader may see the loser's bytes (and a loser that crashes in that
//      window leaves them current). Strata never writes one name twice on purpose (the media
//      service puts a generation in the name), so this is a guard against bugs, not a path.
//  * "A reader opened before a Delete keeps reading the old bytes":
//    - Versioned bucket: holds. The reader pins the version id it opened; Delete adds a delete
//      marker (the name is gone for Stat/List/NewReader at once) and the old version stays
//      readable until the bucket's lifecycle rule NoncurrentVersionExpiration removes it, so
//      the guarantee lasts that many days (set it >= 1 day; a reader lives seconds).
//    - Unversioned bucket: weaker. The reader pins the ETag (If-Match): it never sees other
//      bytes, but after a Delete its reads give NotFound. That is safe for Strata because the
//      media service deletes bytes only through the garbage collector, days after the soft
//      delete that ended access (the grace period), after re-checking eligibility; no reader
//      that the API handed out is still reading then.
//  * Delete is one DELETE (S3 answers 204 for an absent name; on a versioned bucket it also
//    adds a delete marker); DeleteMany and DeleteEach are DeleteObjects in batches of 1000
//    (with Content-MD5, which radosgw requires), whose answer lists failures per key: a key
//    that failed is reported alone and the others are gone. Deleting does not
//    chase incomplete uploads of the name: they are not visible and the age rule clears them.
//  * Errors: NotFound (absent name), OutOfRange, InvalidArgument, AlreadyExists as the
//    contract says; PermissionDenied when S3 rejects the credentials (the message names the
//    S3 code, e.g. SignatureDoesNotMatch); Unavailable when the endpoint cannot be reached or
//    keeps answering 5xx/SlowDown after the bounded retries (exponential backoff with full
//    jitter); Internal for any other S3 answer, with its code and message.
//  * Durability after Commit is the S3 service's (radosgw: the pool's replication).
//
// Thread-safe as the contract says: requests borrow a curl handle from a pool, so several
// threads use several connections, each kept alive for reuse.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/blob/blob_store.h"

namespace strata::blob {

struct S3Credentials {
  std::string access_key;
  std::string secret_key;
};

// STRATA_S3_ACCESS_KEY / STRATA_S3_SECRET_KEY, else AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY. NotFound (naming the variables) when neither pair is set.
absl::StatusOr<S3Credentials> S3CredentialsFromEnvironment();

// A file of `name = value` lines (blank lines, `#` comments and `[section]` headers are
// skipped): `access_key`/`secret_key`, or `aws_access_key_id`/`aws_secret_access_key` as in
// ~/.aws/credentials (the first section that has them). Never pass keys on a command line.
absl::StatusOr<S3Credentials> S3CredentialsFromFile(const std::string& path);

struct S3BlobStoreOptions {
  // "http://127.0.0.1:7480" or "https://s3.eu-west-1.amazonaws.com". Required.
  std::string endpoint;
  // The SigV4 signing region. radosgw accepts any; AWS needs the bucket's.
  std::string region = "us-east-1";
  // Required; 3..63 characters of [a-z0-9.-].
  std::string bucket;
  S3Credentials credentials;
  // Creates the bucket at Open when it does not exist (tests, the local demo). Default off:
  // a production bucket is made by the operator with its lifecycle rules.
  bool create_bucket = false;
  // Sets the bucket's versioning to Enabled at Open (idempotent): readers then survive
  // deletes (see above). Needs the right to change the bucket's configuration.
  bool enable_versioning = false;
  // Part size in bytes, and the single-PUT threshold: a blob up to this size is one PUT.
  // >= 4096. Default 8 MiB. The writer buffers at most one part.
  uint64_t part_bytes = 8ull << 20;
  // Per request, the first attempt included (>= 1). Default 5.
  int max_attempts = 5;
  // Backoff before retry k is uniform in [0, min(max, initial * 2^(k-1))] milliseconds.
  int64_t initial_backoff_ms = 50;
  int64_t max_backoff_ms = 2000;
  // TCP connect timeout, milliseconds. Default 2000.
  int64_t connect_timeout_ms = 2000;
  // A request that moves less than one byte per second for this many seconds is abandoned
  // (and retried): a stopped or unreachable server gives Unavailable, not a hang. Default 10.
  int64_t low_speed_seconds = 10;
  // Connections (curl handles) kept open for reuse between requests. Default 16.
  size_t max_idle_connections = 16;
  // Open aborts the bucket's incomplete multipart uploads started longer ago than this
  // (leftovers of crashed writers); 0 = do not. Milliseconds, default 1 day.
  int64_t abort_uploads_older_than_ms = 24ll * 3600 * 1000;
  // For the age above. Not owned; nullptr = SystemClock::Default().
  const Clock* clock = nullptr;
};

struct S3IncompleteUpload {
  std::string name;
  std::string upload_id;
  Millis initiated = 0;
};

class S3BlobStore final : public BlobStore {
 public:
  // Checks the options, reaches the bucket (Unavailable naming the endpoint if it cannot;
  // PermissionDenied for rejected credentials; NotFound for a missing bucket unless
  // create_bucket), reads its versioning state and aborts stale incomplete uploads.
  static absl::StatusOr<std::unique_ptr<S3BlobStore>> Open(S3BlobStoreOptions options);
  ~S3BlobStore() override;

  absl::StatusOr<std::unique_ptr<BlobWriter>> NewWriter(std::string_view name) override;
  absl::StatusOr<std::unique_ptr<BlobReader>> NewReader(std::string_view name) override;
  absl::StatusOr<BlobInfo> Stat(std::string_view name) override;
  absl::Status Delete(std::string_view name) override;
  absl::Status DeleteMany(std::span<const std::string> names) override;
  // DeleteObjects in batches of 1000; a key that S3 lists as an <Error> (AccessDenied,
  // InternalError, ...) gets its own status, the others are deleted (NoSuchKey is OK).
  std::vector<absl::Status> DeleteEach(std::span<const std::string> names) override;
  absl::StatusOr<ListPage> List(std::string_view prefix, std::string_view after,
                                size_t limit) override;

  // Whether the bucket's versioning was Enabled at Open (the stronger reader guarantee).
  bool versioned() const;
  const std::string& bucket() const;
  // The bucket's incomplete multipart uploads (every page).
  absl::StatusOr<std::vector<S3IncompleteUpload>> ListIncompleteUploads();
  // Aborts the incomplete uploads initiated before `initiated_before`; returns how many.
  absl::StatusOr<size_t> AbortIncompleteUploads(Millis initiated_before);
  // Removes every object, version, delete marker and incomplete upload, then the bucket.
  // For tests and tear-down of throwaway buckets; the store is unusable afterwards.
  absl::Status DropBucket();
  // Requests re-sent after a retryable failure, and TCP connections opened, since Open.
  uint64_t retries() const;
  uint64_t connections_opened() const;

  struct Impl;

 private:
  explicit S3BlobStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::blob
