// File: reports/text_table.h
// Small text helpers shared by the report formatters: printf-style formatting into a
// std::string and an aligned plain-text table. Output depends only on the inputs (snprintf
// with fixed formats, "C" locale number formatting is what snprintf does for %f/%d unless a
// program calls setlocale, which trainsim never does), so reports are byte-for-byte stable.
//
//   TextTable t({"what", "time"}, {Align::kLeft, Align::kRight});
//   t.add({"gemm", "1.234 s"});
//   out += t.render("  ");   // two-space indent; columns separated by two spaces
//
// Cells are measured in bytes, so keep non-ASCII text to the last column.
// Thread-safety: value types, no shared state.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sim/units.h"

namespace trainsim::reports {

// snprintf into a std::string (any length).
std::string strf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// 0.1234 -> "12.3%" (unsigned_pct) and "+12.3%" (signed_pct).
std::string unsigned_pct(double fraction);
std::string signed_pct(double fraction);
// Share of `part` in `whole` as unsigned_pct ("12.3%"); "-" when whole is not positive.
std::string share(Time part, Time whole);
// A time in milliseconds with three decimals: "12.345 ms".
std::string ms(Time t);

// 1234567 -> "1,234,567" (rounded to the nearest integer; negative values keep their sign).
std::string group_digits(double v);

// Bytes as GiB with two decimals, no unit: "62.10".
std::string gib2(int64_t bytes);

// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break, its quotes
// doubled.
std::string csv_field(const std::string& s);
// The shortest text that reads back to v (std::to_chars); "inf" / "-inf"; "" for NaN.
std::string csv_number(double v);

enum class Align : uint8_t { kLeft, kRight };

class TextTable {
 public:
  // REQUIRES: header.size() == align.size().
  TextTable(std::vector<std::string> header, std::vector<Align> align);
  // REQUIRES: row.size() == number of columns.
  void add(std::vector<std::string> row);
  // A line that is printed as-is (not aligned), e.g. "...".
  void add_raw(std::string line);
  size_t rows() const { return rows_.size(); }
  // Header, then rows; each line starts with `indent`; trailing spaces are trimmed.
  std::string render(const std::string& indent) const;

 private:
  struct Row {
    std::vector<std::string> cells;
    std::string raw;   // used when cells is empty
  };
  std::vector<std::string> header_;
  std::vector<Align> align_;
  std::vector<Row> rows_;
};

}  // namespace trainsim::reports
