#include "sim/status.h"

namespace trainsim {

std::string Error::to_string() const {
  std::string s = "error: ";
  if (!file.empty()) s += file + ": ";
  if (!path.empty()) {
    s += path;
    if (!value.empty()) s += " = " + value;
    s += ": ";
  } else if (!value.empty()) {
    s += value + ": ";
  }
  s += message;
  return s;
}

std::string Status::to_string() const {
  std::string s;
  for (const auto& e : errors_) {
    s += e.to_string();
    s += '\n';
  }
  return s;
}

}  // namespace trainsim
