// File: calibrate/cuda/json_lite.h
// A small JSON reader for the calibrator's job list (calibrate/FORMAT.md section 1). The
// calibrator is carried alone to GPU machines that have only CUDA libraries, so it cannot use
// nlohmann-json; this reader covers what a job list needs: objects (key order kept), arrays,
// strings (with \uXXXX escapes for the BMP), numbers, true/false/null.
// Errors name line and column. Header-only so that tests can include it without CUDA.
// Thread-safety: values are plain data; parse() is reentrant.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace tscal {

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool b = false;
  double num = 0;
  bool is_integer = false;  // the literal had no fraction or exponent and fits int64
  int64_t integer = 0;
  std::string str;
  std::vector<JsonValue> arr;
  std::vector<std::pair<std::string, JsonValue>> obj;
  int line = 0;             // where the value starts (1-based)

  const JsonValue* find(const std::string& key) const {
    for (const auto& [k, v] : obj)
      if (k == key) return &v;
    return nullptr;
  }
  const char* type_name() const {
    switch (type) {
      case Type::kNull: return "null";
      case Type::kBool: return "a boolean";
      case Type::kNumber: return "a number";
      case Type::kString: return "a string";
      case Type::kArray: return "an array";
      case Type::kObject: return "an object";
    }
    return "?";
  }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : s_(text) {}

  // Returns false and sets *error ("line L, column C: what") on malformed input.
  bool parse(JsonValue* out, std::string* error) {
    ok_ = true;
    i_ = 0;
    line_ = 1;
    skip_ws();
    value(out, 0);
    if (ok_) {
      skip_ws();
      if (i_ != s_.size()) fail("unexpected text after the top-level value");
    }
    if (!ok_) *error = err_;
    return ok_;
  }

 private:
  void fail(const std::string& what) {
    if (!ok_) return;
    ok_ = false;
    int line = 1, col = 1;
    for (size_t j = 0; j < i_ && j < s_.size(); ++j) {
      if (s_[j] == '\n') { ++line; col = 1; } else { ++col; }
    }
    err_ = "line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + what;
  }
  // Newlines occur only in whitespace (strings reject raw control characters), so skip_ws()
  // keeps the line count: a value's line is O(1), not a scan from the start (plan exports
  // hold hundreds of thousands of values).
  int cur_line() const { return line_; }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
      line_ += s_[i_] == '\n';
      ++i_;
    }
  }
  bool lit(const char* w) {
    size_t n = std::char_traits<char>::length(w);
    if (s_.compare(i_, n, w) == 0) { i_ += n; return true; }
    return false;
  }
  void value(JsonValue* v, int depth) {
    if (!ok_) return;
    if (depth > 64) return fail("nesting deeper than 64");
    if (i_ >= s_.size()) return fail("unexpected end of input");
    v->line = cur_line();
    char c = s_[i_];
    if (c == '{') return object(v, depth);
    if (c == '[') return array(v, depth);
    if (c == '"') { v->type = JsonValue::Type::kString; return string(&v->str); }
    if (lit("true")) { v->type = JsonValue::Type::kBool; v->b = true; return; }
    if (lit("false")) { v->type = JsonValue::Type::kBool; v->b = false; return; }
    if (lit("null")) { v->type = JsonValue::Type::kNull; return; }
    if (c == '-' || (c >= '0' && c <= '9')) return number(v);
    fail(std::string("unexpected character '") + c + "'");
  }
  void object(JsonValue* v, int depth) {
    v->type = JsonValue::Type::kObject;
    ++i_;
    skip_ws();
    if (i_ < s_.size() && s_[i_] == '}') { ++i_; return; }
    while (ok_) {
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != '"') return fail("expected a quoted key");
      std::string key;
      string(&key);
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != ':') return fail("expected ':' after key \"" + key + "\"");
      ++i_;
      skip_ws();
      for (const auto& kv : v->obj)
        if (kv.first == key) return fail("duplicate key \"" + key + "\"");
      v->obj.emplace_back(key, JsonValue{});
      value(&v->obj.back().second, depth + 1);
      skip_ws();
      if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
      if (i_ < s_.size() && s_[i_] == '}') { ++i_; return; }
      return fail("expected ',' or '}' in object");
    }
  }
  void array(JsonValue* v, int depth) {
    v->type = JsonValue::Type::kArray;
    ++i_;
    skip_ws();
    if (i_ < s_.size() && s_[i_] == ']') { ++i_; return; }
    while (ok_) {
      skip_ws();
      v->arr.emplace_back();
      value(&v->arr.back(), depth + 1);
      skip_ws();
      if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
      if (i_ < s_.size() && s_[i_] == ']') { ++i_; return; }
      return fail("expected ',' or ']' in array");
    }
  }
  void string(std::string* out) {
    ++i_;  // opening quote
    while (ok_) {
      if (i_ >= s_.size()) return fail("unterminated string");
      char c = s_[i_++];
      if (c == '"') return;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
      if (c != '\\') { out->push_back(c); continue; }
      if (i_ >= s_.size()) return fail("unterminated escape");
      char e = s_[i_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          if (i_ + 4 > s_.size()) return fail("short \\u escape");
          unsigned cp = static_cast<unsigned>(std::strtoul(s_.substr(i_, 4).c_str(), nullptr, 16));
          i_ += 4;
          if (cp < 0x80) {
            out->push_back(static_cast<char>(cp));
          } else if (cp < 0x800) {
            out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          } else {
            out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          }
          break;
        }
        default: return fail(std::string("bad escape '\\") + e + "'");
      }
    }
  }
  void number(JsonValue* v) {
    v->type = JsonValue::Type::kNumber;
    size_t start = i_;
    bool integral = true;
    if (s_[i_] == '-') ++i_;
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c >= '0' && c <= '9') { ++i_; continue; }
      if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') { integral = false; ++i_; continue; }
      break;
    }
    std::string t = s_.substr(start, i_ - start);
    char* end = nullptr;
    v->num = std::strtod(t.c_str(), &end);
    if (end == t.c_str() || *end != '\0') return fail("malformed number '" + t + "'");
    if (integral && t.size() <= 19) {
      v->is_integer = true;
      v->integer = std::strtoll(t.c_str(), nullptr, 10);
    }
  }

  const std::string& s_;
  size_t i_ = 0;
  int line_ = 1;
  bool ok_ = true;
  std::string err_;
};

}  // namespace tscal
