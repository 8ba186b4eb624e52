// File: sim/check.h
// SIM_CHECK: for bugs, not input errors (STYLE.md 5). Aborts with the values in the message.
// Input errors are returned as Status (sim/status.h), never checked with this.
#pragma once
#include <cstdio>
#include <cstdlib>

#define SIM_CHECK(cond, ...)                                                   \
  do {                                                                         \
    if (!(cond)) [[unlikely]] {                                                \
      std::fprintf(stderr, "trainsim internal error at %s:%d: check `%s` failed: ", \
                   __FILE__, __LINE__, #cond);                                 \
      std::fprintf(stderr, __VA_ARGS__);                                       \
      std::fputc('\n', stderr);                                                \
      std::abort();                                                            \
    }                                                                          \
  } while (0)
