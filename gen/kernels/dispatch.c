/* Run-time choice of the SIMD path and enum names for the kernel API.
 *
 * Invariant: no state; __builtin_cpu_supports reads the CPU model that
 * libgcc fills in once at start-up, so calling it per kernel call is cheap
 * and needs no global of our own. */
#include <string.h>

#include "kern_internal.h"

int ms__isa_supported(ms_kernel_isa isa) {
  switch (isa) {
    case MS_KERNEL_ISA_GENERIC:
      return 1;
    case MS_KERNEL_ISA_AVX2:
#if defined(__x86_64__) || defined(__i386__)
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
      return 0;
#endif
    case MS_KERNEL_ISA_AVX512:
#if defined(__x86_64__) || defined(__i386__)
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#else
      return 0;
#endif
    default:
      return 0;
  }
}

ms_kernel_isa ms_kernel_isa_detect(void) {
  if (ms__isa_supported(MS_KERNEL_ISA_AVX512)) return MS_KERNEL_ISA_AVX512;
  if (ms__isa_supported(MS_KERNEL_ISA_AVX2)) return MS_KERNEL_ISA_AVX2;
  return MS_KERNEL_ISA_GENERIC;
}

const char *ms_kernel_isa_name(ms_kernel_isa isa) {
  switch (isa) {
    case MS_KERNEL_ISA_GENERIC: return "generic";
    case MS_KERNEL_ISA_AVX2: return "avx2";
    case MS_KERNEL_ISA_AVX512: return "avx512";
    default: return "unknown";
  }
}

const char *ms_trans_name(ms_trans t) {
  switch (t) {
    case MS_TRANS_NO: return "no";
    case MS_TRANS_YES: return "yes";
    default: return "unknown";
  }
}

const char *ms_attn_layout_name(ms_attn_layout l) {
  switch (l) {
    case MS_ATTN_NCT: return "nct";
    case MS_ATTN_NTC: return "ntc";
    default: return "unknown";
  }
}

ms_trans ms_trans_from_name(const char *name) {
  for (int i = 0; i < MS_TRANS_COUNT; i++)
    if (name && strcmp(name, ms_trans_name((ms_trans)i)) == 0) return (ms_trans)i;
  return MS_TRANS_COUNT;
}

ms_attn_layout ms_attn_layout_from_name(const char *name) {
  for (int i = 0; i < MS_ATTN_LAYOUT_COUNT; i++)
    if (name && strcmp(name, ms_attn_layout_name((ms_attn_layout)i)) == 0) return (ms_attn_layout)i;
  return MS_ATTN_LAYOUT_COUNT;
}

ms_kernel_isa ms_kernel_isa_from_name(const char *name) {
  for (int i = 0; i < MS_KERNEL_ISA_COUNT; i++)
    if (name && strcmp(name, ms_kernel_isa_name((ms_kernel_isa)i)) == 0) return (ms_kernel_isa)i;
  return MS_KERNEL_ISA_COUNT;
}
