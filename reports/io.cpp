#include "reports/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace trainsim {
namespace {

Status fail(const std::string& path, const std::string& what, int err) {
  return Status::error(Error{path, "", "", what + ": " + std::strerror(err)});
}

}  // namespace

Status write_text_file(const std::string& path, const std::string& text) {
  if (path.empty()) return Status::error("cannot write a file with an empty path");
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

  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return abandon("cannot write", errno);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
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
