/* cpu_features() of x86_64 for dispatch.c: one F_<feature> bit (cpu-dispatch-table.h) per feature the
 * running CPU has and the OS saves the state of. Intel SDM / AMD APM CPUID leaves 1 and 7; XCR0 bits
 * 1-2 (XMM/YMM), 5-7 (opmask/ZMM) and 17-18 (AMX tiles) say whether the OS saves that state.
 * GCC/Clang's <cpuid.h>: Linux, FreeBSD, MinGW-w64. */
#include <cpuid.h>

static unsigned cpu_features(void) {
    unsigned a, b, c, d, f = 0, c1, b7 = 0, c7 = 0, d7 = 0, a71 = 0;
    unsigned long long xcr0 = 0;
    unsigned max = __get_cpuid_max(0, 0);
    if (max < 1) return 0;
    __cpuid(1, a, b, c1, d);
    if (max >= 7) {
        __cpuid_count(7, 0, a, b7, c7, d7);
        __cpuid_count(7, 1, a71, b, c, d);
    }
    if (c1 & (1u << 27)) { /* OSXSAVE: XGETBV is usable */
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((unsigned long long)hi << 32) | lo;
    }
    const int ymm = (xcr0 & 0x6) == 0x6, zmm = ymm && (xcr0 & 0xe0) == 0xe0, tmm = (xcr0 & 0x60000) == 0x60000;
    const unsigned sse42 = (1u << 0) | (1u << 9) | (1u << 19) | (1u << 20) | (1u << 23); /* SSE3 SSSE3 SSE4.1/4.2 POPCNT */
    const unsigned avx512 = (1u << 16) | (1u << 17) | (1u << 28) | (1u << 30) | (1u << 31); /* F DQ CD BW VL */
    if ((c1 & sse42) == sse42) f |= F_SSE42;
    if (ymm && (c1 & (1u << 28))) f |= F_AVX;
    if ((f & F_AVX) && (c1 & (1u << 29))) f |= F_F16C;
    if ((f & F_AVX) && (c1 & (1u << 12))) f |= F_FMA;
    if (b7 & (1u << 8)) f |= F_BMI2;
    if ((f & F_AVX) && (b7 & (1u << 5))) f |= F_AVX2;
    if ((f & F_AVX) && (a71 & (1u << 4))) f |= F_AVX_VNNI;
    if (zmm && (b7 & avx512) == avx512) f |= F_AVX512;
    if ((f & F_AVX512) && (c7 & (1u << 1))) f |= F_AVX512_VBMI;
    if ((f & F_AVX512) && (c7 & (1u << 11))) f |= F_AVX512_VNNI;
    if ((f & F_AVX512) && (a71 & (1u << 5))) f |= F_AVX512_BF16;
    if (tmm && (d7 & (1u << 24))) f |= F_AMX_TILE;
    if (tmm && (d7 & (1u << 25))) f |= F_AMX_INT8;
    if (tmm && (d7 & (1u << 22))) f |= F_AMX_BF16;
    return f;
}
