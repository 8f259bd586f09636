/* Tests of the keyed counter-based generator (gen/core/rng.c).
 * ctest-labels: unit golden
 *
 * The golden values pin the exact Philox4x32-10 mapping: changing them breaks
 * the reproducibility contract and needs a major version. The Philox known
 * answer comes from the Random123 distribution's kat_vectors
 * (philox4x32_10, counter 0, key 0 -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <gsl/gsl_randist.h>

#include "medsynth/rng.h"
#include "medsynth/rng_gsl.h"

static void test_rng_philox_known_answer(void **state) {
  (void)state;
  ms_rng_key k = {0, 0};
  ms_rng_block b = ms_rng_philox(k, 0, 0);
  assert_int_equal(b.v[0], 0x6627e8d5u);
  assert_int_equal(b.v[1], 0xe169c58du);
  assert_int_equal(b.v[2], 0xbc57ac4cu);
  assert_int_equal(b.v[3], 0x9b00dbd8u);
  /* Second Random123 vector: counter all ones, key all ones. */
  ms_rng_key k2 = {0xffffffffu, 0xffffffffu};
  ms_rng_block b2 = ms_rng_philox(k2, UINT64_MAX, UINT64_MAX);
  assert_int_equal(b2.v[0], 0x408f276du);
  assert_int_equal(b2.v[1], 0x41c83b0eu);
  assert_int_equal(b2.v[2], 0xa20bc7c6u);
  assert_int_equal(b2.v[3], 0x6d5451fdu);
}

static void test_rng_is_pure_function_of_key_and_counter(void **state) {
  (void)state;
  ms_rng_key k = ms_rng_key_make(42, ms_rng_stream("/tables/0/fields/1"));
  double a = ms_rng_uniform(k, 12345, 3);
  /* Interleave unrelated draws: no hidden state. */
  for (int i = 0; i < 100; i++) (void)ms_rng_uniform(k, (uint64_t)i, 0);
  assert_true(ms_rng_uniform(k, 12345, 3) == a);
  ms_rng_key k_other_seed = ms_rng_key_make(43, ms_rng_stream("/tables/0/fields/1"));
  ms_rng_key k_other_stream = ms_rng_key_make(42, ms_rng_stream("/tables/0/fields/2"));
  assert_true(ms_rng_uniform(k_other_seed, 12345, 3) != a);
  assert_true(ms_rng_uniform(k_other_stream, 12345, 3) != a);
  assert_true(ms_rng_uniform(k, 12345, 4) != a);
  assert_true(ms_rng_uniform(k, 12346, 3) != a);
}

static void test_rng_uniform_moments(void **state) {
  (void)state;
  const int n = 200000;
  ms_rng_key k = ms_rng_key_make(7, ms_rng_stream("moments"));
  double s = 0, s2 = 0, mn = 1, mx = 0;
  for (int i = 0; i < n; i++) {
    double u = ms_rng_uniform(k, (uint64_t)i, 0);
    s += u;
    s2 += u * u;
    if (u < mn) mn = u;
    if (u > mx) mx = u;
  }
  double mean = s / n, var = s2 / n - mean * mean;
  /* 5 standard errors: sd(U) = 0.2887, sd of the variance estimate ~ 0.0745/sqrt(n). */
  assert_true(fabs(mean - 0.5) < 5 * 0.2887 / sqrt(n));
  assert_true(fabs(var - 1.0 / 12) < 5 * 0.0745 / sqrt(n));
  assert_true(mn > 0 && mx < 1);
}

static void test_rng_normal_moments(void **state) {
  (void)state;
  const int n = 200000;
  ms_rng_key k = ms_rng_key_make(11, ms_rng_stream("normal"));
  double s = 0, s2 = 0, s4 = 0;
  for (int i = 0; i < n; i++) {
    double z = ms_rng_normal(k, (uint64_t)i, 0);
    s += z;
    s2 += z * z;
    s4 += z * z * z * z;
  }
  double mean = s / n, var = s2 / n - mean * mean;
  assert_true(fabs(mean) < 5 / sqrt(n));
  assert_true(fabs(var - 1) < 5 * sqrt(2.0 / n));
  assert_true(fabs(s4 / n - 3) < 5 * sqrt(96.0 / n));
}

static void test_rng_below_is_unbiased_and_in_range(void **state) {
  (void)state;
  const int n = 70000, m = 7;
  int counts[7] = {0};
  ms_rng_key k = ms_rng_key_make(5, ms_rng_stream("below"));
  for (int i = 0; i < n; i++) {
    uint64_t v = ms_rng_below(k, (uint64_t)i, 0, m);
    assert_true(v < (uint64_t)m);
    counts[v]++;
  }
  double e = (double)n / m, chi2 = 0;
  for (int i = 0; i < m; i++) chi2 += (counts[i] - e) * (counts[i] - e) / e;
  /* chi-square with 6 d.o.f.: P(X > 22.46) = 0.001. */
  assert_true(chi2 < 22.46);
}

static void test_rng_gsl_adapter_is_keyed(void **state) {
  (void)state;
  gsl_rng *r = ms_rng_gsl_new();
  assert_non_null(r);
  ms_rng_key k = ms_rng_key_make(99, ms_rng_stream("gamma"));
  ms_rng_gsl_reset(r, k, 500, 0);
  double g1 = gsl_ran_gamma(r, 2.5, 3.0);
  ms_rng_gsl_reset(r, k, 501, 0);
  (void)gsl_ran_gamma(r, 2.5, 3.0);
  ms_rng_gsl_reset(r, k, 500, 0);
  assert_true(gsl_ran_gamma(r, 2.5, 3.0) == g1);
  /* The first word of (index, lane) is word 0 of that Philox block. */
  ms_rng_gsl_reset(r, k, 77, 2);
  assert_int_equal(gsl_rng_get(r), ms_rng_philox(k, 77, 2).v[0]);
  for (int i = 0; i < 3; i++) (void)gsl_rng_get(r);
  assert_int_equal(gsl_rng_get(r), ms_rng_philox(k, 77, 3).v[0]);
  gsl_rng_free(r);
}

static void test_rng_normal_fill_is_indexed(void **state) {
  (void)state;
  ms_rng_key k = ms_rng_key_make(3, ms_rng_stream("ddpm/noise"));
  float a[9], b[4];
  ms_rng_normal_fill(k, 100, 0, a, 9);
  ms_rng_normal_fill(k, 102, 0, b, 4); /* pairs 2,3 of the first call */
  for (int i = 0; i < 4; i++) assert_true(a[4 + i] == b[i]);
}

/* The batched uniforms, normals and words (SIMD Philox where the CPU has
 * AVX2 or AVX-512) equal the scalar ones bit for bit: every length around
 * the 8- and 16-row SIMD steps and the 256-row staging buffer, arbitrary (non-contiguous, 64-bit) row indices,
 * and lanes with high bits set. */
static void test_rng_batched_draws_match_scalar(void **state) {
  (void)state;
  enum { N = 600 };
  uint64_t idx[N];
  double out[N + 1];
  uint64_t w64[N + 1];
  for (size_t i = 0; i < N; i++) idx[i] = i * 0x9E3779B97F4A7C15ull + (i & 7);
  ms_rng_key k = ms_rng_key_make(12345, ms_rng_stream("/tables/0/fields/3"));
  const uint64_t lanes[] = {0, 1, 0x51, 0xFFFFFFFFull, 0x100000003ull};
  const size_t lens[] = {0, 1, 7, 8, 9, 15, 16, 17, 255, 256, 257, 263, 512, 599, 600};
  for (size_t li = 0; li < sizeof lanes / sizeof *lanes; li++)
    for (size_t ni = 0; ni < sizeof lens / sizeof *lens; ni++) {
      size_t n = lens[ni];
      out[n] = -1.0; /* guard */
      ms_rng_uniform_n(k, idx, lanes[li], out, n);
      for (size_t i = 0; i < n; i++) {
        double want = ms_rng_uniform(k, idx[i], lanes[li]);
        if (memcmp(&want, &out[i], sizeof want) != 0)
          fail_msg("lane %#llx n %zu row %zu: %.17g != %.17g", (unsigned long long)lanes[li], n,
                   i, out[i], want);
      }
      assert_true(out[n] == -1.0);
      ms_rng_normal_n(k, idx, lanes[li], out, n);
      for (size_t i = 0; i < n; i++) {
        double want = ms_rng_normal(k, idx[i], lanes[li]);
        if (memcmp(&want, &out[i], sizeof want) != 0)
          fail_msg("normal lane %#llx n %zu row %zu: %.17g != %.17g",
                   (unsigned long long)lanes[li], n, i, out[i], want);
      }
      assert_true(out[n] == -1.0);
      w64[n] = 7; /* guard */
      ms_rng_u64_n(k, idx, lanes[li], w64, n);
      for (size_t i = 0; i < n; i++)
        if (w64[i] != ms_rng_u64(k, idx[i], lanes[li]))
          fail_msg("u64 lane %#llx n %zu row %zu differs", (unsigned long long)lanes[li], n, i);
      assert_true(w64[n] == 7);
    }
}

/* ms_rng_normal2: its first normal is ms_rng_normal's, its second the
 * sine partner of the same block's Box-Muller pair (computed here from the
 * block's words with libm); the batched form equals the single calls bit
 * for bit (lengths around the SIMD steps and the 256-row stage, arbitrary
 * row indices, guards after both ends); and over 2^20 rows the two normals
 * of a block are uncorrelated, with the sine partner's mean and variance
 * those of a standard normal (5 standard errors). */
static void test_rng_normal2_pairs(void **state) {
  (void)state;
  enum { N = 600 };
  uint64_t idx[N];
  static double z0[N + 1], z1[N + 1];
  for (size_t i = 0; i < N; i++) idx[i] = i * 0xD1B54A32D192ED03ull + 3;
  ms_rng_key k = ms_rng_key_make(99, ms_rng_stream("t/#copula/0"));
  for (uint64_t q = 0; q < 1000; q++) {
    double a, b;
    ms_rng_normal2(k, q, 5, &a, &b);
    double want = ms_rng_normal(k, q, 5);
    assert_memory_equal(&a, &want, sizeof a);
    ms_rng_block blk = ms_rng_philox(k, q, 5);
    uint64_t w0 = (uint64_t)blk.v[0] | ((uint64_t)blk.v[1] << 32), w1 = (uint64_t)blk.v[2] | ((uint64_t)blk.v[3] << 32);
    double u1 = ((double)(w0 >> 11) + 0.5) / 9007199254740992.0, u2 = ((double)(w1 >> 11) + 0.5) / 9007199254740992.0;
    double s = sqrt(-2.0 * log(u1)) * sin(2.0 * M_PI * u2);
    assert_true(fabs(b - s) <= 1e-12 * (1 + fabs(s)));
  }
  const size_t lens[] = {0, 1, 7, 8, 9, 15, 16, 17, 255, 256, 257, 263, 599, 600};
  for (size_t ni = 0; ni < sizeof lens / sizeof *lens; ni++) {
    size_t n = lens[ni];
    z0[n] = z1[n] = -7.0;
    ms_rng_normal2_n(k, idx, 0x100000002ull, z0, z1, n);
    for (size_t i = 0; i < n; i++) {
      double a, b;
      ms_rng_normal2(k, idx[i], 0x100000002ull, &a, &b);
      if (memcmp(&a, &z0[i], sizeof a) || memcmp(&b, &z1[i], sizeof b))
        fail_msg("n %zu row %zu: (%.17g, %.17g) != (%.17g, %.17g)", n, i, z0[i], z1[i], a, b);
    }
    assert_true(z0[n] == -7.0 && z1[n] == -7.0);
  }
  double sx = 0, sy = 0, syy = 0, sxy = 0;
  const double M = 1 << 20;
  for (uint64_t q = 0; q < (1u << 20); q++) {
    double a, b;
    ms_rng_normal2(k, q, 1, &a, &b);
    sx += a, sy += b, syy += b * b, sxy += a * b;
  }
  double se = 5 / sqrt(M);
  assert_true(fabs(sy / M) < se);
  assert_true(fabs(syy / M - 1) < 5 * sqrt(2 / M));
  assert_true(fabs(sxy / M - (sx / M) * (sy / M)) < se);
}

/* ms_rng_normal4_fill (AVX2 lanes where the CPU has them) equals
 * ms_rng_normal4 block by block, bit for bit: lengths around the 8- and
 * 16-block SIMD steps, the 256-block stage and partial final blocks, base
 * indices with high bits set, and a guard after the end. A fill that starts
 * later gives the same values for the same blocks (no state across calls). */
static void test_rng_normal4_fill_matches_scalar(void **state) {
  (void)state;
  enum { N = 4 * 600 + 3 };
  static float out[N + 1], part[N];
  ms_rng_key k = ms_rng_key_make(2024, ms_rng_stream("mr/noise"));
  const uint64_t bases[] = {0, 5, 0xFFFFFFF0ull, 0x1234567890ull};
  const uint64_t lanes[] = {0, 3, 0x100000001ull};
  const size_t lens[] = {0, 1, 3, 4, 5, 31, 32, 33, 63, 64, 65, 1023, 1024, 1025, 1029, N};
  for (size_t bi = 0; bi < sizeof bases / sizeof *bases; bi++)
    for (size_t li = 0; li < sizeof lanes / sizeof *lanes; li++)
      for (size_t ni = 0; ni < sizeof lens / sizeof *lens; ni++) {
        size_t n = lens[ni];
        out[n] = 1234.5f;
        ms_rng_normal4_fill(k, bases[bi], lanes[li], out, n);
        for (size_t i = 0; i < n; i++) {
          float z[4];
          ms_rng_normal4(k, bases[bi] + i / 4, lanes[li], z);
          if (memcmp(&z[i % 4], &out[i], sizeof(float)) != 0)
            fail_msg("base %#llx lane %#llx n %zu element %zu: %.9g != %.9g", (unsigned long long)bases[bi],
                     (unsigned long long)lanes[li], n, i, out[i], z[i % 4]);
        }
        assert_true(out[n] == 1234.5f);
      }
  ms_rng_normal4_fill(k, 7, 1, out, N);
  ms_rng_normal4_fill(k, 7 + 9, 1, part, N - 36);
  assert_memory_equal(part, out + 36, (N - 36) * sizeof(float));
}

/* Each value is the exact Box-Muller value of its words (computed here in
 * double with libm) to float accuracy: the polynomials and the octant map
 * are right, not only the moments. */
static void test_rng_normal4_is_box_muller_of_its_words(void **state) {
  (void)state;
  ms_rng_key k = ms_rng_key_make(17, ms_rng_stream("normal4"));
  double worst = 0;
  for (uint64_t q = 0; q < 200000; q++) {
    ms_rng_block b = ms_rng_philox(k, q, 2);
    float z[4];
    ms_rng_normal4(k, q, 2, z);
    for (int h = 0; h < 2; h++) {
      uint32_t a = b.v[2 * h], w = b.v[2 * h + 1];
      double u = (2.0 * (a >> 9) + 1) / 16777216.0, r = sqrt(-2 * log(u));
      double ph = ((w >> 9) + 0.5) / 8388608.0 * M_PI / 4, x = cos(ph), y = sin(ph);
      if (w & 1) {
        double t = x;
        x = y;
        y = t;
      }
      if (w & 2) x = -x;
      if (w & 4) y = -y;
      worst = fmax(worst, fabs(z[2 * h] - r * x) / (1 + r));
      worst = fmax(worst, fabs(z[2 * h + 1] - r * y) / (1 + r));
    }
  }
  print_message("normal4: worst error %.3g x (1 + r)\n", worst);
  assert_true(worst < 1e-6);
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* The distribution of ms_rng_normal4_fill over 2^21 values of one fill:
 * mean, variance, fourth moment and the fractions beyond 2, 3 and 4 within
 * 5 standard errors of the standard normal's; the Kolmogorov-Smirnov
 * distance below the 0.001 critical value 1.95 / sqrt(n); the correlation
 * of the two values of a pair and of neighbouring pairs within 5 / sqrt(n). */
static void test_rng_normal4_distribution(void **state) {
  (void)state;
  const size_t n = (size_t)1 << 21;
  float *z = malloc(n * sizeof(float));
  assert_non_null(z);
  ms_rng_normal4_fill(ms_rng_key_make(99, ms_rng_stream("normal4/ks")), 1000, 4, z, n);
  double s = 0, s2 = 0, s4 = 0, pair = 0, next = 0, mx = 0;
  size_t beyond[3] = {0, 0, 0};
  for (size_t i = 0; i < n; i++) {
    double v = z[i];
    s += v;
    s2 += v * v;
    s4 += v * v * v * v;
    mx = fmax(mx, fabs(v));
    for (int t = 0; t < 3; t++) beyond[t] += fabs(v) > 2 + t;
    if (i % 2 == 0) pair += v * z[i + 1];
    if (i % 4 == 0) next += v * z[i + 2];
  }
  double mean = s / n, var = s2 / n - mean * mean;
  assert_true(fabs(mean) < 5 / sqrt((double)n));
  assert_true(fabs(var - 1) < 5 * sqrt(2.0 / n));
  assert_true(fabs(s4 / n - 3) < 5 * sqrt(96.0 / n));
  assert_true(fabs(pair / (n / 2)) < 5 / sqrt(n / 2.0));
  assert_true(fabs(next / (n / 4)) < 5 / sqrt(n / 4.0));
  assert_true(mx <= 5.77);
  for (int t = 0; t < 3; t++) {
    double p = erfc((2 + t) / M_SQRT2), f = (double)beyond[t] / n;
    assert_true(fabs(f - p) < 5 * sqrt(p * (1 - p) / n));
  }
  qsort(z, n, sizeof(float), cmp_float);
  double d = 0;
  for (size_t i = 0; i < n; i++) {
    double F = 0.5 * erfc(-z[i] / M_SQRT2);
    d = fmax(d, fmax(fabs(F - (double)i / n), fabs(F - (double)(i + 1) / n)));
  }
  print_message("normal4: KS distance %.3g (n %zu, critical %.3g)\n", d, n, 1.95 / sqrt((double)n));
  assert_true(d < 1.95 / sqrt((double)n));
  free(z);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rng_philox_known_answer),
      cmocka_unit_test(test_rng_is_pure_function_of_key_and_counter),
      cmocka_unit_test(test_rng_uniform_moments),
      cmocka_unit_test(test_rng_normal_moments),
      cmocka_unit_test(test_rng_below_is_unbiased_and_in_range),
      cmocka_unit_test(test_rng_gsl_adapter_is_keyed),
      cmocka_unit_test(test_rng_normal_fill_is_indexed),
      cmocka_unit_test(test_rng_batched_draws_match_scalar),
      cmocka_unit_test(test_rng_normal2_pairs),
      cmocka_unit_test(test_rng_normal4_fill_matches_scalar),
      cmocka_unit_test(test_rng_normal4_is_box_muller_of_its_words),
      cmocka_unit_test(test_rng_normal4_distribution),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
