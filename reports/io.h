// File: reports/io.h
// Writing report files safely. write_text_file() writes to a temporary file in the same
// directory and renames it over the target, so a failure (disk full, killed process) never
// leaves a half-written report and never destroys a report that was already there.
// Errors are returned, never printed; they name the path and the system's reason.
// Thread-safety: reentrant; concurrent writers of the same path each publish a whole file
// (the last rename wins).
#pragma once
#include <string>

#include "sim/status.h"

namespace trainsim {

// Writes `text` to `path` atomically (POSIX rename within one directory). The directory must
// exist. The file gets mode 0644. A symbolic link is written through (its target is replaced,
// the link kept); an existing non-regular file (/dev/stdout, a pipe, a device) is written in
// place, not replaced; a directory is an error. On error: Status naming `path`, e.g.
//   error: out/summary.txt: cannot create a temporary file next to it: No such file or directory
// The path "-" means the report stream (set_report_stream; standard output unless changed).
Status write_text_file(const std::string& path, const std::string& text);

// Where write_text_file("-") writes: a file descriptor the caller owns (the CLI points it at
// its real standard output after moving the human-readable text to standard error, so that
// `--json -` pipes the JSON alone). Not thread-safe: set it once, before any report is written.
void set_report_stream(int fd);

// Whether a report could be written to `path` later: "-", or a path whose directory exists and
// is writable and that is not itself a directory. Checked before a long run, so that a typo in
// an output path does not cost the run; the error names the path and the reason.
Status check_output_path(const std::string& path);

}  // namespace trainsim
