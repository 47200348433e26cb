// Test support for blob/s3: options for the radosgw of the throwaway cluster (CTest fixture
// `cluster`, scripts/cluster.sh), throwaway bucket names, and shell helpers. Tests only.
#pragma once

#include <optional>
#include <string>

#include "strata/blob/s3/s3_blob_store.h"

namespace strata::blob::s3_testing {

// "" when the cluster's S3 settings are known, else why not (see store/cluster_env.h).
std::string S3ClusterMissing();

// Endpoint, region and credentials of the cluster's radosgw, a fresh bucket name, the bucket
// created at Open, small parts. Only when S3ClusterMissing() is "".
S3BlobStoreOptions ClusterOptions(uint64_t part_bytes, bool versioned);

// "strata-t-" and 16 random hex digits.
std::string FreshBucketName();

// Lets radosgw accept parts down to 4 KiB (the conformance suite uses them): sets
// rgw_multipart_min_part_size in the monitor's config database, then waits until the running
// radosgw (admin socket `asok`, "" = the cluster's client.rgw.a) reports it. Once per process.
void AllowSmallParts(const std::string& asok = "");

// Sets the bucket policy (JSON) of `bucket` at the cluster's radosgw, or removes it when
// `policy` is empty, with the curl tool (the store itself has no policy calls); 0 on success,
// else the failure in *out.
int SetBucketPolicy(const std::string& bucket, const std::string& policy, std::string* out);

// Runs `command` with /bin/sh; returns its exit code and, if `out`, its stdout.
int Run(const std::string& command, std::string* out = nullptr);

// The directory of the cluster (where its env, conf, pids and sockets are).
std::string ClusterDir();

}  // namespace strata::blob::s3_testing
