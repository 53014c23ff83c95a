// Counts every heap allocation of the process at the C level: malloc, calloc, realloc and the aligned
// forms. Counting operator new alone misses Asio's coroutine frames, which come from aligned_alloc.
// Include in exactly one translation unit of a benchmark program (it defines the C allocator entry
// points, forwarding to glibc's own).
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

namespace bench {
inline std::atomic<std::uint64_t> heap_allocations{0};
}

// Built with CQLCORO_NO_MALLOC_COUNT (the *_profile programs), the C allocator is left alone so that
// heaptrack can see the allocations; heap_allocations then stays 0.
#ifndef CQLCORO_NO_MALLOC_COUNT
extern "C" {
void* malloc(std::size_t n) noexcept {
    bench::heap_allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t m) noexcept {
    bench::heap_allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_calloc(n, m);
}
void* realloc(void* p, std::size_t n) noexcept {
    bench::heap_allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_realloc(p, n);
}
void* memalign(std::size_t a, std::size_t n) noexcept {
    bench::heap_allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_memalign(a, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) noexcept { return memalign(a, n); }
int posix_memalign(void** out, std::size_t a, std::size_t n) noexcept {
    void* p = memalign(a, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
void free(void* p) noexcept { __libc_free(p); }
}
#endif
