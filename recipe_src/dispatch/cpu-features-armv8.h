/* cpu_features() of armv8 for dispatch.c: one F_<feature> bit (cpu-dispatch-table.h) per feature the
 * kernel reports in AT_HWCAP/AT_HWCAP2 (Linux arch/arm64/include/uapi/asm/hwcap.h; FreeBSD uses the
 * same values), which also means the kernel enabled it (SVE state included). */
#include <sys/auxv.h>

static unsigned cpu_features(void) {
    unsigned long hwcap = 0, hwcap2 = 0;
    unsigned f = 0;
#if defined(__linux__)
    hwcap = getauxval(AT_HWCAP);
    hwcap2 = getauxval(AT_HWCAP2);
#elif defined(__FreeBSD__)
    elf_aux_info(AT_HWCAP, &hwcap, sizeof hwcap);
    elf_aux_info(AT_HWCAP2, &hwcap2, sizeof hwcap2);
#endif
    if (hwcap & (1ul << 8)) f |= F_LSE;                           /* HWCAP_ATOMICS */
    if (hwcap & (1ul << 20)) f |= F_DOTPROD;                      /* HWCAP_ASIMDDP */
    if ((hwcap & (1ul << 9)) && (hwcap & (1ul << 10))) f |= F_FP16; /* HWCAP_FPHP, HWCAP_ASIMDHP */
    if (hwcap & (1ul << 22)) f |= F_SVE;                          /* HWCAP_SVE */
    if (hwcap2 & (1ul << 13)) f |= F_I8MM;                        /* HWCAP2_I8MM */
    if (hwcap2 & (1ul << 14)) f |= F_BF16;                        /* HWCAP2_BF16 */
    return f;
}
