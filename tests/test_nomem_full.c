/* The exhaustive variant of test_nomem.c: every allocation of every
 * operation is failed once, and from there on, with no stride (the counts
 * are printed per operation). Long under the sanitizers, hence its label.
 * ctest-labels: slow
 */
#define NOMEM_STRIDE_BUDGET 0
#include "test_nomem.c"
