#include "strata/cli/call.h"

#include <cstdlib>
#include <iostream>

namespace strata::cli {

std::optional<http::Client> ClientFor(const std::string& url, int timeout_ms) {
  auto endpoint = http::ParseUrl(url);
  if (!endpoint.ok()) {
    std::cerr << "strata: " << endpoint.status().message() << "\n";
    return std::nullopt;
  }
  http::Client client(endpoint->host, endpoint->port, timeout_ms);
  // The key comes from the environment, never a flag: a command line is visible to every
  // user of the machine (ps).
  if (const char* key = std::getenv("STRATA_API_KEY"); key != nullptr && key[0] != '\0') {
    client.AddDefaultHeader("Authorization", std::string("Bearer ") + key);
  }
  return client;
}

void PrintTransportError(const std::string& url, const absl::Status& status) {
  std::cerr << "strata: " << url << ": " << status.message() << "\n";
}

int Call(const std::string& url, const std::string& method, const std::string& target,
         const std::string& body, const std::string& content_type) {
  std::optional<http::Client> client = ClientFor(url);
  if (!client) return 2;
  auto response = client->Request(method, target, body, content_type);
  if (!response.ok()) {
    PrintTransportError(url, response.status());
    return 1;
  }
  std::cout << response->body;
  if (!response->body.empty() && response->body.back() != '\n') std::cout << "\n";
  return response->status >= 200 && response->status < 300 ? 0 : 1;
}

}  // namespace strata::cli
