// Process-wide heap allocation counters, for tests that prove a hot path allocates nothing.
//
// Linking this target into an executable replaces malloc, calloc, realloc, the aligned allocators and free
// with thin wrappers that bump atomic counters and forward to glibc's own implementations (__libc_malloc
// and friends). Under a sanitizer, which brings its own allocator, nothing is replaced and the counters
// stay inactive.
#ifndef CALLOCATIONCOUNTER_H
#define CALLOCATIONCOUNTER_H

#include <stdint.h>

/// 1 when the allocator functions are replaced and the counters count; 0 under a sanitizer.
int allocation_counter_is_active(void);

/// Allocations (malloc, calloc, realloc, aligned allocations) since the process started.
int64_t allocation_counter_allocations(void);

/// Calls to free with a non-null pointer since the process started.
int64_t allocation_counter_frees(void);

#endif
