// Must not compile: a task is awaited once, as an rvalue. The compiler's message must say to write
// `co_await std::move(t)`. Built with -DUNIO_CONTROL (the correct spelling) it must compile.
#include "unio/task.hpp"

unio::task<int> make() { co_return 1; }

unio::task<int> await_lvalue() {
  auto t = make();
#ifdef UNIO_CONTROL
  co_return co_await std::move(t);
#else
  co_return co_await t;
#endif
}
