// File: sim/status.h
// Status and Result<T>: how library code reports input errors (STYLE.md 5). Library code never
// exits; only main() turns a Status into an exit code. A Status holds every error found, so a
// user sees all problems of a file at once. Each error names the file, the JSON path, the bad
// value and what would be accepted.
//
//   Status st;
//   st.add({"scenarios/x.json", "/parallel/tp", "3", "tp=3 does not divide heads=32; use 1, 2, 4, 8, 16 or 32"});
//   if (!st.ok()) return st;
//
// Thread-safety: value types.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/check.h"

namespace trainsim {

struct Error {
  std::string file;     // "" when not from a file
  std::string path;     // JSON pointer, e.g. "/parallel/tp"; "" when not applicable
  std::string value;    // the offending value as the user wrote it; "" when missing
  std::string message;  // what is wrong and what would be accepted
  // "error: FILE: PATH = VALUE: MESSAGE"
  std::string to_string() const;
};

class Status {
 public:
  Status() = default;
  static Status error(std::string message) {
    Status s;
    s.add(Error{"", "", "", std::move(message)});
    return s;
  }
  static Status error(Error e) {
    Status s;
    s.add(std::move(e));
    return s;
  }
  bool ok() const { return errors_.empty(); }
  void add(Error e) { errors_.push_back(std::move(e)); }
  void merge(const Status& o) { errors_.insert(errors_.end(), o.errors_.begin(), o.errors_.end()); }
  const std::vector<Error>& errors() const { return errors_; }
  // One line per error.
  std::string to_string() const;

 private:
  std::vector<Error> errors_;
};

template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status st) : status_(std::move(st)) {     // NOLINT
    SIM_CHECK(!status_.ok(), "Result constructed from an ok Status without a value");
  }
  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & {
    SIM_CHECK(ok(), "Result::value() on error: %s", status_.to_string().c_str());
    return *value_;
  }
  const T& value() const& {
    SIM_CHECK(ok(), "Result::value() on error: %s", status_.to_string().c_str());
    return *value_;
  }
  T&& value() && {
    SIM_CHECK(ok(), "Result::value() on error: %s", status_.to_string().c_str());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace trainsim
