/* Run-time choice of the SIMD path and enum names for the kernel API.
 *
 * Invariant: no state; __builtin_cpu_supports reads the CPU model that
 * libgcc fills in once at start-up, so calling it per kernel call is cheap
 * and needs no global of our own. */
#include "core/names.h"
#include "kern_internal.h"

int ms__isa_supported(ms_kernel_isa isa) {
  switch (isa) {
    case MS_KERNEL_ISA_GENERIC:
      return 1;
#if defined(__x86_64__) || defined(__i386__)
    case MS_KERNEL_ISA_AVX2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case MS_KERNEL_ISA_AVX512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
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

static const char *const isa_names[] = {"generic", "avx2", "avx512"};
static const char *const trans_names[] = {"no", "yes"};
static const char *const layout_names[] = {"nct", "ntc"};

MS__NAME_FNS(ms_kernel_isa_name, ms_kernel_isa_from_name, ms_kernel_isa, isa_names,
             MS_KERNEL_ISA_COUNT, "unknown")
MS__NAME_FNS(ms_trans_name, ms_trans_from_name, ms_trans, trans_names, MS_TRANS_COUNT, "unknown")
MS__NAME_FNS(ms_attn_layout_name, ms_attn_layout_from_name, ms_attn_layout, layout_names,
             MS_ATTN_LAYOUT_COUNT, "unknown")
