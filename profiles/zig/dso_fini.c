/* Linked into every shared object the Zig profiles build (see zig-tool): the unload half of
 * crtbegin that zig 0.17's -shared output lacks. When the object is dlclose()d (or the process
 * exits), run and forget the destructors its C++ statics registered with __cxa_atexit under this
 * object's handle, so none is left pointing into unmapped code. glibc and musl both define
 * __cxa_finalize (musl's does nothing: it never unmaps a library). */
#ifdef __cplusplus
extern "C" {
#endif
extern void *__dso_handle;
extern void __cxa_finalize(void *) __attribute__((weak));

__attribute__((destructor, visibility("hidden"))) void llama_cpp_zig_dso_fini(void) {
    if (__cxa_finalize)
        __cxa_finalize(&__dso_handle);
}
#ifdef __cplusplus
}
#endif
