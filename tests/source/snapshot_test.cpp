// Tests of source/snapshot.hpp: atomic replacement and whole-file reads.
#include "source/snapshot.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "support.hpp"

namespace fabdns::source_detail {
namespace {

using namespace fabdns::testing;
namespace fs = std::filesystem;

TEST(SnapshotTest, WritesCreatesDirectoryAndReplaces) {
    TempDir dir;
    std::string path = dir / "a/b/snap.json";
    ASSERT_EQ(write_file_atomically(path, "[1]"), "");
    EXPECT_EQ(read_file(path), "[1]");
    ASSERT_EQ(write_file_atomically(path, "[2, 3]"), "");
    EXPECT_EQ(read_file(path), "[2, 3]");
    EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                  fs::perms::others_read);
    // No temporary file is left behind.
    size_t entries = 0;
    for ([[maybe_unused]] const auto &e : fs::directory_iterator(dir / "a/b")) ++entries;
    EXPECT_EQ(entries, 1u);
}

TEST(SnapshotTest, WriteFailureIsReported) {
    TempDir dir;
    write_file(dir / "file", "x");
    // The "directory" is a regular file: nothing can be created under it.
    EXPECT_NE(write_file_atomically(dir / "file/snap.json", "[]"), "");
}

// The hub frees an answer between the two steps: until commit() the old content stays, and a
// file staged but never committed leaves nothing behind.
TEST(SnapshotTest, StagedFileReplacesOnlyAtCommit) {
    TempDir dir;
    const std::string path = dir / "snap.json";
    ASSERT_EQ(write_file_atomically(path, "[1]"), "");
    auto entries = [&] {
        size_t n = 0;
        for ([[maybe_unused]] const auto &e : fs::directory_iterator(dir.path())) ++n;
        return n;
    };
    {
        StagedFile file;
        std::string data = "[1, 2]";
        ASSERT_EQ(file.stage(path, data), "");
        EXPECT_TRUE(file.staged());
        data.assign("freed");
        EXPECT_EQ(read_file(path), "[1]");
        EXPECT_EQ(entries(), 2u);
        EXPECT_EQ(file.commit(), "");
        EXPECT_EQ(read_file(path), "[1, 2]");
        EXPECT_EQ(entries(), 1u);
        EXPECT_FALSE(file.staged());
        EXPECT_NE(file.commit(), "");  // once
    }
    {
        // A stage that fails leaves nothing to commit.
        StagedFile file;
        EXPECT_NE(file.stage(dir / "snap.json/under-a-file", "[4]"), "");
        EXPECT_FALSE(file.staged());
        EXPECT_NE(file.commit(), "");
    }
    {
        StagedFile file;
        ASSERT_EQ(file.stage(path, "[3]"), "");
        EXPECT_EQ(entries(), 2u);
    }
    EXPECT_EQ(read_file(path), "[1, 2]");
    EXPECT_EQ(entries(), 1u);
}

TEST(SnapshotTest, ReadWholeFile) {
    TempDir dir;
    std::string why;
    EXPECT_FALSE(read_whole_file(dir / "missing", why));
    EXPECT_EQ(why, "");  // missing is not an error, just nothing
    EXPECT_FALSE(read_whole_file(dir.path(), why));
    EXPECT_NE(why, "");  // a directory is
    std::string big(300000, 'x');
    write_file(dir / "big", big);
    auto got = read_whole_file(dir / "big", why);
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, big);
}

}  // namespace
}  // namespace fabdns::source_detail
