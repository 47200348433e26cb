// HTTP helpers shared by the command groups of the `strata` command line: each operator
// command is one request (or a few) to a running server. Errors go to stderr as
// "strata: ..." and become exit codes: 2 for bad input (an unparsable --server URL), 1 for a
// transport failure or a non-2xx answer. Not thread-safe (the CLI is single-threaded).
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "strata/http/http_client.h"

namespace strata::cli {

// A client for the server at `url` ("http://host:port"), not yet connected; nullopt (with
// the reason printed) when the URL does not parse. When the environment has STRATA_API_KEY,
// every request carries it (`Authorization: Bearer ...`).
std::optional<http::Client> ClientFor(const std::string& url, int timeout_ms = 30'000);

// Prints a transport failure talking to `url`.
void PrintTransportError(const std::string& url, const absl::Status& status);

// Sends one request to the server named by `url` and prints the body; exit code 0 on 2xx.
int Call(const std::string& url, const std::string& method, const std::string& target,
         const std::string& body = "", const std::string& content_type = "application/json");

}  // namespace strata::cli
