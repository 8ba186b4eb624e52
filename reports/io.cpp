#include "reports/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace trainsim {
namespace {

Status fail(const std::string& path, const std::string& what, int err) {
  return Status::error(Error{path, "", "", what + ": " + std::strerror(err)});
}

// Writes all of `text` to `fd`; 0, or the errno of the write that failed.
int write_all(int fd, const std::string& text) {
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return 0;
}

// Writes `text` into an existing file that is not a regular one (a terminal, a pipe, a device
// such as /dev/stdout or /dev/null): opened as it is, never replaced.
Status write_in_place(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC);
  if (fd < 0) return fail(path, "cannot open it for writing", errno);
  if (const int err = write_all(fd, text); err != 0) {
    ::close(fd);
    return fail(path, "cannot write", err);
  }
  if (::close(fd) != 0) return fail(path, "cannot close it", errno);
  return Status();
}

int report_fd = 1;

}  // namespace

void set_report_stream(int fd) { report_fd = fd; }

Status check_output_path(const std::string& path) {
  if (path == "-") return Status();
  if (path.empty()) return Status::error("cannot write a file with an empty path");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return fail(path, "cannot write a report over a directory", EISDIR);
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  if (::stat(dir.c_str(), &st) != 0) return fail(path, "its directory " + dir + " does not exist", errno);
  if (!S_ISDIR(st.st_mode)) return fail(path, dir + " is not a directory", ENOTDIR);
  if (::access(dir.c_str(), W_OK) != 0) return fail(path, "its directory " + dir + " is not writable", errno);
  return Status();
}

Status write_text_file(const std::string& path_in, const std::string& text) {
  if (path_in.empty()) return Status::error("cannot write a file with an empty path");
  if (path_in == "-") {
    if (const int err = write_all(report_fd, text); err != 0) return fail("-", "cannot write to the report stream", err);
    return Status();
  }
  // A symbolic link is written through (the file it names is replaced, the link stays); an
  // existing file that is not a regular one is written in place, never replaced by a regular
  // file; a directory is an error.
  std::string path = path_in;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    if (char* real = ::realpath(path.c_str(), nullptr)) {
      path = real;
      std::free(real);
    }
  }
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return fail(path_in, "cannot write a report over a directory", EISDIR);
    if (!S_ISREG(st.st_mode)) return write_in_place(path, text);
  }
  std::string tmpl = path + ".tmp.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  const int fd = ::mkstemp(buf.data());
  if (fd < 0) return fail(path, "cannot create a temporary file next to it", errno);
  const std::string tmp(buf.data());

  auto abandon = [&](const std::string& what, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return fail(path, what + " (temporary file " + tmp + ")", err);
  };

  // mkstemp creates 0600; reports are meant to be shared: rw-r--r--. (Reading the umask
  // would need umask(), which changes process state and is not thread-safe.)
  if (::fchmod(fd, 0644) != 0) return abandon("cannot set permissions", errno);

  if (const int err = write_all(fd, text); err != 0) return abandon("cannot write", err);
  if (::fsync(fd) != 0) return abandon("cannot flush to disk", errno);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return fail(path, "cannot close the temporary file " + tmp, err);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return fail(path, "cannot replace it with the temporary file " + tmp, err);
  }
  return Status();
}

}  // namespace trainsim
