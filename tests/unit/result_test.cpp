// result<T> and result<void>: the value-or-error_code type every async op yields.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <system_error>

#include "unio/result.hpp"

namespace {

TEST(unit_result, value) {
  unio::result<int> r = 42;
  EXPECT_TRUE(r);
  EXPECT_TRUE(r.has_value());
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(*r, 42);
  EXPECT_FALSE(r.error());
  EXPECT_EQ(r.value_or(7), 42);
  *r = 43;
  EXPECT_EQ(r.value(), 43);
}

TEST(unit_result, error) {
  unio::result<int> r = unio::errno_code(ENOENT);
  EXPECT_FALSE(r);
  EXPECT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), std::errc::no_such_file_or_directory);
  EXPECT_EQ(r.error().category(), std::generic_category());
  EXPECT_EQ(r.value_or(7), 7);
  try {
    (void)r.value();
    FAIL() << "value() of an error did not throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
  }
  EXPECT_THROW((void)*r, std::system_error);
}

TEST(unit_result, arrow_and_move_only_values) {
  unio::result<std::string> s = std::string("hello");
  EXPECT_EQ(s->size(), 5u);
  unio::result<std::unique_ptr<int>> p = std::make_unique<int>(5);
  std::unique_ptr<int> taken = std::move(p).value();
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(*taken, 5);
}

TEST(unit_result, const_access) {
  const unio::result<int> r = 9;
  EXPECT_EQ(r.value(), 9);
  const unio::result<int> e = unio::errno_code(EIO);
  EXPECT_THROW((void)e.value(), std::system_error);
  EXPECT_EQ(e.error(), std::errc::io_error);
}

TEST(unit_result, void_ok_and_error) {
  unio::result<void> ok;
  EXPECT_TRUE(ok);
  EXPECT_FALSE(ok.error());
  EXPECT_NO_THROW(ok.value());
  unio::result<void> bad = unio::errno_code(ENOSPC);
  EXPECT_FALSE(bad);
  EXPECT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error(), std::errc::no_space_on_device);
  EXPECT_THROW(bad.value(), std::system_error);
}

TEST(unit_result, errno_code) {
  auto ec = unio::errno_code(EMFILE);
  EXPECT_EQ(ec.value(), EMFILE);
  EXPECT_EQ(ec, std::errc::too_many_files_open);
  EXPECT_EQ(ec.category(), std::generic_category());
}

}  // namespace
