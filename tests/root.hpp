// Test helper: tests that need root (BPF, namespaces) skip with a clear message otherwise.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#define FABDNS_REQUIRE_ROOT()                                                          \
    do {                                                                               \
        if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF and network namespaces)"; \
    } while (0)
