// The dashboard page (web/dashboard.html), embedded in the binary at build time.
#pragma once

#include <string_view>

namespace strata::server {

std::string_view DashboardHtml();

}  // namespace strata::server
