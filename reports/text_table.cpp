#include "reports/text_table.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdarg>
#include <cstdio>

#include "sim/check.h"

namespace trainsim::reports {

std::string unsigned_pct(double fraction) { return strf("%.1f%%", fraction * 100.0); }
std::string signed_pct(double fraction) { return strf("%+.1f%%", fraction * 100.0); }
std::string ms(Time t) { return strf("%.3f ms", t.seconds() * 1e3); }

std::string strf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  const int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  std::string s;
  if (n > 0) {
    s.resize(static_cast<size_t>(n) + 1);
    std::vsnprintf(s.data(), s.size(), fmt, ap2);
    s.resize(static_cast<size_t>(n));
  }
  va_end(ap2);
  return s;
}

std::string share(Time part, Time whole) {
  if (whole.count_ps() <= 0) return "-";
  return unsigned_pct(static_cast<double>(part.count_ps()) / static_cast<double>(whole.count_ps()));
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string csv_number(double v) {
  if (std::isnan(v)) return "";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

std::string group_digits(double v) {
  std::string digits = strf("%.0f", std::fabs(v));
  std::string out;
  const size_t n = digits.size();
  for (size_t i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  if (v < 0 && out != "0") out = "-" + out;
  return out;
}

std::string gib2(int64_t bytes) {
  return strf("%.2f", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
}

TextTable::TextTable(std::vector<std::string> header, std::vector<Align> align)
    : header_(std::move(header)), align_(std::move(align)) {
  SIM_CHECK(header_.size() == align_.size(), "TextTable: %zu headers, %zu alignments",
            header_.size(), align_.size());
}

void TextTable::add(std::vector<std::string> row) {
  SIM_CHECK(row.size() == header_.size(), "TextTable: row of %zu cells, table of %zu columns",
            row.size(), header_.size());
  rows_.push_back(Row{std::move(row), {}});
}

void TextTable::add_raw(std::string line) { rows_.push_back(Row{{}, std::move(line)}); }

std::string TextTable::render(const std::string& indent) const {
  std::vector<size_t> width(header_.size(), 0);
  for (size_t c = 0; c < header_.size(); ++c) width[c] = header_[c].size();
  for (const Row& r : rows_) {
    for (size_t c = 0; c < r.cells.size(); ++c) width[c] = std::max(width[c], r.cells[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s = indent;
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c > 0) s += "  ";
      const size_t pad = width[c] - cells[c].size();
      if (align_[c] == Align::kRight) s.append(pad, ' ');
      s += cells[c];
      if (align_[c] == Align::kLeft && c + 1 < cells.size()) s.append(pad, ' ');
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    s += '\n';
    return s;
  };
  std::string out = line(header_);
  for (const Row& r : rows_) {
    if (r.cells.empty()) out += indent + r.raw + "\n";
    else out += line(r.cells);
  }
  return out;
}

}  // namespace trainsim::reports
