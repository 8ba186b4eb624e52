#include "reports/io.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace trainsim {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path fresh_dir() {
  std::string tmpl = (fs::temp_directory_path() / "trainsim_io_test_XXXXXX").string();
  char* d = ::mkdtemp(tmpl.data());
  EXPECT_NE(d, nullptr);
  return fs::path(tmpl);
}

TEST(WriteTextFile, WritesAndReplaces) {
  const fs::path dir = fresh_dir();
  const fs::path f = dir / "summary.txt";
  ASSERT_TRUE(write_text_file(f.string(), "first\n").ok());
  EXPECT_EQ(slurp(f), "first\n");
  ASSERT_TRUE(write_text_file(f.string(), std::string("second\0binary", 13)).ok());
  EXPECT_EQ(slurp(f), std::string("second\0binary", 13));
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);   // no temporary file left behind
  fs::remove_all(dir);
}

TEST(WriteTextFile, ErrorNamesThePath) {
  const fs::path dir = fresh_dir();
  const std::string bad = (dir / "no-such-dir" / "out.json").string();
  const Status st = write_text_file(bad, "x");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.to_string().find(bad), std::string::npos) << st.to_string();
  EXPECT_NE(st.to_string().find("No such file or directory"), std::string::npos)
      << st.to_string();
  fs::remove_all(dir);
}

TEST(WriteTextFile, FailureKeepsTheOldFile) {
  const fs::path dir = fresh_dir();
  const fs::path f = dir / "report.json";
  ASSERT_TRUE(write_text_file(f.string(), "old").ok());
  // A directory in the way of the rename: the write fails and "old" content elsewhere stays.
  const fs::path blocker = dir / "blocker";
  fs::create_directory(blocker);
  fs::create_directory(blocker / "child");   // rename over a non-empty directory fails
  const Status st = write_text_file(blocker.string(), "new");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.to_string().find(blocker.string()), std::string::npos);
  EXPECT_TRUE(fs::is_directory(blocker / "child"));
  EXPECT_EQ(slurp(f), "old");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 2);   // report.json and blocker; the temporary file was removed
  fs::remove_all(dir);
}

// A device is written in place, never replaced by a regular file (as root a rename onto
// /dev/null would succeed and break the machine); a full device is an error naming it.
TEST(WriteTextFile, DevicesAreWrittenInPlace) {
  ASSERT_TRUE(fs::is_character_file("/dev/null"));
  const Status st = write_text_file("/dev/null", "report\n");
  EXPECT_TRUE(st.ok()) << st.to_string();
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
  if (fs::is_character_file("/dev/full")) {
    const Status full = write_text_file("/dev/full", "report\n");
    ASSERT_FALSE(full.ok());
    EXPECT_NE(full.to_string().find("/dev/full"), std::string::npos) << full.to_string();
    EXPECT_TRUE(fs::is_character_file("/dev/full"));
  }
}

// A symbolic link is written through: the file it names gets the text, the link stays a link.
TEST(WriteTextFile, SymlinksAreWrittenThrough) {
  const fs::path dir = fresh_dir();
  const fs::path target = dir / "real.json";
  const fs::path link = dir / "link.json";
  ASSERT_TRUE(write_text_file(target.string(), "old").ok());
  fs::create_symlink(target, link);
  ASSERT_TRUE(write_text_file(link.string(), "new").ok());
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(slurp(target), "new");
  EXPECT_FALSE(write_text_file(dir.string(), "x").ok());   // a directory is an error
  EXPECT_TRUE(fs::is_directory(dir));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace trainsim
