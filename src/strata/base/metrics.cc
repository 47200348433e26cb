#include "strata/base/metrics.h"

#include <cmath>
#include <cstdio>

namespace strata {

void Histogram::Observe(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(std::max(0.0, seconds) * 1e9),
                    std::memory_order_relaxed);
}

Histogram::Buckets Histogram::BucketCounts() const {
  Buckets out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = buckets_[i].load(std::memory_order_relaxed);
  return out;
}

double Histogram::Quantile(const Buckets& counts, double q) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0) return 0;
  const double rank = q * static_cast<double>(total);
  double seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    if (seen + static_cast<double>(counts[i]) >= rank) {
      if (i == kBounds.size()) return kBounds.back();
      const double lo = i == 0 ? 0.0 : kBounds[i - 1];
      return lo + (kBounds[i] - lo) * (rank - seen) / static_cast<double>(counts[i]);
    }
    seen += static_cast<double>(counts[i]);
  }
  return kBounds.back();
}

namespace {
std::string WithLabels(const std::string& labels, const std::string& extra) {
  if (labels.empty() && extra.empty()) return "";
  if (labels.empty()) return "{" + extra + "}";
  if (extra.empty()) return "{" + labels + "}";
  return "{" + labels + "," + extra + "}";
}
std::string FormatDouble(double v) {
  char buf[64];
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(v));
  } else {
    std::snprintf(buf, sizeof(buf), "%.10g", v);
  }
  return buf;
}
}  // namespace

void Histogram::Render(const std::string& name, const std::string& labels,
                       std::string* out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    std::string le = i < kBounds.size() ? FormatDouble(kBounds[i]) : "+Inf";
    *out += name + "_bucket" + WithLabels(labels, "le=\"" + le + "\"") + " " +
            std::to_string(cumulative) + "\n";
  }
  *out += name + "_sum" + WithLabels(labels, "") + " " +
          FormatDouble(static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9) +
          "\n";
  *out += name + "_count" + WithLabels(labels, "") + " " +
          std::to_string(count_.load(std::memory_order_relaxed)) + "\n";
}

MetricsRegistry::Family& MetricsRegistry::FamilyLocked(const std::string& name,
                                                       const std::string& help,
                                                       const char* type) {
  Family& f = families_[name];
  if (f.type.empty()) {
    f.help = help;
    f.type = type;
  }
  return f;
}

Counter* MetricsRegistry::GetCounter(const std::string& name, const std::string& help,
                                     const std::string& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = FamilyLocked(name, help, "counter").counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return slot.get();
}

Histogram* MetricsRegistry::GetHistogram(const std::string& name, const std::string& help,
                                         const std::string& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = FamilyLocked(name, help, "histogram").histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>();
  return slot.get();
}

void MetricsRegistry::AddGauge(const std::string& name, const std::string& help, GaugeFn fn) {
  std::lock_guard<std::mutex> lock(mu_);
  FamilyLocked(name, help, "gauge").gauges.push_back(std::move(fn));
}

std::string MetricsRegistry::RenderPrometheus() const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + " " + f.type + "\n";
    for (const auto& [labels, c] : f.counters) {
      out += name + WithLabels(labels, "") + " " + std::to_string(c->Value()) + "\n";
    }
    for (const auto& [labels, h] : f.histograms) h->Render(name, labels, &out);
    for (const auto& fn : f.gauges) {
      for (const auto& [labels, v] : fn()) {
        out += name + WithLabels(labels, "") + " " + FormatDouble(v) + "\n";
      }
    }
  }
  return out;
}

MetricsRegistry* MetricsRegistry::Default() {
  static MetricsRegistry* registry = new MetricsRegistry();
  return registry;
}

}  // namespace strata
