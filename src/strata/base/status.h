// Error handling helpers for Strata: errors are absl::Status values, never exceptions.
//
// STRATA_RETURN_IF_ERROR(expr)      returns the status of `expr` if it is not OK.
// STRATA_ASSIGN_OR_RETURN(lhs, expr) evaluates an absl::StatusOr<T>, returns its status on
//                                    error, otherwise moves the value into `lhs`.
// Debian 12's Abseil (20220623) has no status macros of its own, hence these.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define STRATA_CONCAT_INNER_(a, b) a##b
#define STRATA_CONCAT_(a, b) STRATA_CONCAT_INNER_(a, b)

#define STRATA_RETURN_IF_ERROR(expr)                    \
  do {                                                  \
    ::absl::Status strata_status_ = (expr);             \
    if (!strata_status_.ok()) return strata_status_;    \
  } while (0)

#define STRATA_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(*tmp)

#define STRATA_ASSIGN_OR_RETURN(lhs, expr) \
  STRATA_ASSIGN_OR_RETURN_IMPL_(STRATA_CONCAT_(strata_statusor_, __LINE__), lhs, expr)
