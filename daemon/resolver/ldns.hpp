// Includes ldns for C++. Without <stdbool.h> first, ldns's common.h defines `true` and
// `false` as macros, which breaks standard headers included after it.
#pragma once

// clang-format off
#include <stdbool.h>
#include <ldns/ldns.h>
// clang-format on
