// Symbol visibility for the unio library.
//
// unio is built with hidden visibility; only declarations marked UNIO_API are exported from the
// shared library. A static build exports nothing special.
#pragma once

#if defined(UNIO_SHARED) && defined(UNIO_BUILDING)
#define UNIO_API __attribute__((visibility("default")))
#else
#define UNIO_API
#endif
