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
Status write_text_file(const std::string& path, const std::string& text);

}  // namespace trainsim
