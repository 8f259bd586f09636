/* Acquisition physics throughput (docs/performance.md, "Acquisition
 * physics"): 256 x 256 chest CT slices through a 360-view parallel-beam
 * projection, Poisson + electronic noise at two doses and two FBPs
 * (ms_ct_acquire); 256 x 256 head T2 slices through 8-coil k-space, a
 * 4x mask, RSS and zero-filled reconstructions (ms_mr_acquire). The phantom
 * render of the truth is included; writing is not (the command's HDF5
 * writer is measured by bench_phantom). Also the time of each CT stage on
 * one slice, and the peak RSS after N and 4N rows (flat: one batch held).
 * "CT one dose" is the goal's workload: render, projection, noise at one
 * dose and one FBP per slice (ms_ct_project, ms_ct_noise, ms_ct_fbp).
 * "MR stages" times one head slice's render and its acquisition with and
 * without noise.
 *
 * "bench_physics N mr" runs only the MR rows, at N and 4N rows, with the
 * peak RSS after each (the wall-clock rates need more rows than the CT
 * runs allow on a shared machine).
 *
 * Usage: bench_physics [N=64] [mr] */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "medsynth/parallel.h"
#include "medsynth/phantom.h"
#include "medsynth/physics.h"
#include "medsynth/rng.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process: on a machine shared with other jobs,
 * CPU time per slice says what the code costs; wall time says what the
 * machine gave. */
static double cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double g_cpu_per_row; /* of the last run() */

typedef struct {
  ms_phantom_image *slots;
  const ms_phantom_params *p;
  const ms_ct_system *ct;
  const ms_mr_system *mr;
  uint64_t first;
  size_t npix, nout;
  float *a, *b, *c;
  uint8_t *m;
  atomic_int fails;
  int one_dose;
} job;

static void one(void *ctx, size_t i, size_t worker) {
  job *j = ctx;
  ms_phantom_image *img = &j->slots[worker];
  uint64_t idx = j->first + i;
  int bad = ms_phantom_generate(img, j->p, NULL, 1, idx, NULL) != MS_OK;
  if (!bad && j->ct && j->one_dose) {
    const ms_ct_params *c = ms_ct_system_params(j->ct);
    size_t n = (size_t)c->width * c->height;
    float *sino = j->c + i * j->nout, *mu = j->a + i * j->npix;
    ms_ct_hu_to_mu(c, mu, img->image, n);
    ms_ct_project(j->ct, sino, mu);
    ms_ct_noise(j->ct, sino, sino, c->photons_per_mas * c->dose_mas, 1, ms_rng_stream("ct/counts/low"), idx);
    bad = ms_ct_fbp(j->ct, j->b + i * j->npix, sino, NULL) != MS_OK;
  } else if (!bad && j->ct) {
    bad = ms_ct_acquire(j->ct, j->c + i * j->nout, j->a + i * j->npix, j->b + i * j->npix, img->image, 1, idx, NULL) !=
          MS_OK;
  } else if (!bad) {
    ms_mr_output o = {j->c + i * j->nout, j->m + i * (size_t)j->p->width, j->a + i * j->npix, j->b + i * j->npix, NULL};
    bad = ms_mr_acquire(j->mr, &o, img->image, 1, idx, NULL) != MS_OK;
  }
  if (bad) atomic_fetch_add(&j->fails, 1);
}

static double run(const ms_phantom_params *p, const ms_ct_system *ct, const ms_mr_system *mr, size_t nout, uint64_t n,
                  int T, int one_dose) {
  size_t npix = (size_t)p->width * p->height, batch = (size_t)T * 4;
  ms_phantom_image *slots = calloc((size_t)T, sizeof *slots);
  for (int t = 0; t < T; t++)
    if (ms_phantom_image_init(&slots[t], p, NULL)) return -1;
  float *a = malloc(batch * npix * 4), *b = malloc(batch * npix * 4), *c = malloc(batch * nout * 4);
  uint8_t *m = malloc(batch * (size_t)p->width);
  double t0 = now(), c0 = cpu();
  int fails = 0;
  for (uint64_t first = 0; first < n; first += batch) {
    size_t nb = n - first < batch ? (size_t)(n - first) : batch;
    job j = {slots, p, ct, mr, first, npix, nout, a, b, c, m, 0, one_dose};
    ms_parallel_for(nb, T, one, &j);
    fails += atomic_load(&j.fails);
  }
  double el = now() - t0;
  g_cpu_per_row = (cpu() - c0) / (double)n;
  for (int t = 0; t < T; t++) ms_phantom_image_deinit(&slots[t]);
  free(slots);
  free(a);
  free(b);
  free(c);
  free(m);
  return fails ? -1 : (double)n / el;
}

static double peak_mib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

int main(int argc, char **argv) {
  uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 64;
  int mr_only = argc > 2 && !strcmp(argv[2], "mr");
  int N = 256;
  ms_phantom_params pc, pm;
  ms_phantom_params_init(&pc, MS_PHANTOM_CHEST);
  pc.width = pc.height = N;
  pc.noise = 0;
  ms_phantom_params_init(&pm, MS_PHANTOM_HEAD);
  pm.modality = MS_MODALITY_T2;
  pm.width = pm.height = N;
  pm.noise = 0;
  ms_ct_params c;
  ms_ct_params_init(&c, N, N, pc.fov_mm / N);
  c.views = 360;
  ms_mr_params m;
  ms_mr_params_init(&m, N, N, pm.fov_mm / N);
  m.coils = 8;
  m.acceleration = 4;
  m.noise_sd = 5;
  ms_ct_system *cs = NULL;
  ms_mr_system *mr = NULL;
  if (ms_ct_system_new(&cs, &c, NULL) || ms_mr_system_new(&mr, &m, NULL)) return 1;
  size_t ns = ms_ct_sinogram_len(cs), nk = (size_t)m.coils * N * N * 2;

  /* CT stages on one slice, one thread, best of 5. */
  float *mu = malloc((size_t)N * N * 4), *sino = malloc(ns * 4), *noisy = malloc(ns * 4);
  for (int i = 0; i < N * N; i++) mu[i] = (float)MS_CT_MU_WATER * ((i % N - N / 2) * (i % N - N / 2) + (i / N - N / 2) * (i / N - N / 2) < N * N / 5);
  double tp = 1e9, tn = 1e9, tf = 1e9;
  for (int r = 0; r < 5; r++) {
    double t0 = cpu();
    ms_ct_project(cs, sino, mu);
    double t1 = cpu();
    ms_ct_noise(cs, noisy, sino, 5e4, 1, ms_rng_stream("bench"), (uint64_t)r);
    double t2 = cpu();
    ms_ct_fbp(cs, mu, noisy, NULL);
    double t3 = cpu();
    tp = t1 - t0 < tp ? t1 - t0 : tp;
    tn = t2 - t1 < tn ? t2 - t1 : tn;
    tf = t3 - t2 < tf ? t3 - t2 : tf;
  }
  printf("CT stages, 256^2, 360 views x %d bins, CPU time (best of 5): project %.1f ms, noise %.1f ms, FBP %.1f ms\n",
         ms_ct_system_params(cs)->detectors, tp * 1e3, tn * 1e3, tf * 1e3);
  /* MR stages on one slice, one thread, best of 5: the head render, and
   * the acquisition without and with noise (the difference is the cost of
   * the 2 x 8 x 256^2 normals). */
  ms_mr_params m0 = m;
  m0.noise_sd = 0;
  ms_mr_system *mr0 = NULL;
  if (ms_mr_system_new(&mr0, &m0, NULL)) return 1;
  ms_phantom_image hi;
  if (ms_phantom_image_init(&hi, &pm, NULL)) return 1;
  float *kb = malloc(nk * 4), *ra = malloc((size_t)N * N * 4), *rb = malloc((size_t)N * N * 4);
  uint8_t *mb = malloc((size_t)N);
  double tr = 1e9, t0n = 1e9, t1n = 1e9;
  for (int r = 0; r < 5; r++) {
    ms_mr_output o = {kb, mb, ra, rb, NULL};
    double t0 = cpu();
    if (ms_phantom_generate(&hi, &pm, NULL, 1, (uint64_t)r, NULL)) return 1;
    double t1 = cpu();
    if (ms_mr_acquire(mr0, &o, hi.image, 1, (uint64_t)r, NULL)) return 1;
    double t2 = cpu();
    if (ms_mr_acquire(mr, &o, hi.image, 1, (uint64_t)r, NULL)) return 1;
    double t3 = cpu();
    tr = t1 - t0 < tr ? t1 - t0 : tr;
    t0n = t2 - t1 < t0n ? t2 - t1 : t0n;
    t1n = t3 - t2 < t1n ? t3 - t2 : t1n;
  }
  printf("MR stages, 256^2, 8 coils, CPU time (best of 5): render %.1f ms, acquire without noise %.1f ms, with noise "
         "%.1f ms\n",
         tr * 1e3, t0n * 1e3, t1n * 1e3);
  ms_phantom_image_deinit(&hi);
  ms_mr_system_free(mr0);
  free(kb);
  free(ra);
  free(rb);
  free(mb);
  for (int T = 1; mr_only && T <= 2; T++) {
    double mrr = run(&pm, NULL, mr, nk, n, T, 0), mr_cpu = g_cpu_per_row, rss1 = peak_mib();
    double mr4 = run(&pm, NULL, mr, nk, 4 * n, T, 0), mr4_cpu = g_cpu_per_row;
    printf("threads %d: MR 8 coils %.1f slices/s (N %llu; %.2f CPU ms per slice), %.1f slices/s (N %llu; %.2f CPU ms "
           "per slice), peak RSS %.1f / %.1f MiB\n",
           T, mrr, (unsigned long long)n, mr_cpu * 1e3, mr4, (unsigned long long)(4 * n), mr4_cpu * 1e3, rss1,
           peak_mib());
  }
  for (int T = 1; !mr_only && T <= 2; T++) {
    double one = run(&pc, cs, NULL, ns, n, T, 1), one_cpu = g_cpu_per_row;
    double ct = run(&pc, cs, NULL, ns, n, T, 0), ct_cpu = g_cpu_per_row;
    double rss1 = peak_mib();
    double ct4 = run(&pc, cs, NULL, ns, 4 * n, T, 0);
    double rss4 = peak_mib();
    double mrr = run(&pm, NULL, mr, nk, n, T, 0), mr_cpu = g_cpu_per_row;
    printf("threads %d: CT one dose (render + projection + noise + FBP) %.1f slices/s (N %llu; %.1f CPU ms per slice)\n",
           T, one, (unsigned long long)n, one_cpu * 1e3);
    printf("threads %d: CT %.1f slices/s (N %llu; %.1f CPU ms per slice), %.1f (N %llu), peak RSS %.1f / %.1f MiB; "
           "MR 8 coils %.1f slices/s (N %llu; %.1f CPU ms per slice), peak RSS %.1f MiB\n",
           T, ct, (unsigned long long)n, ct_cpu * 1e3, ct4, (unsigned long long)(4 * n), rss1, rss4, mrr,
           (unsigned long long)n, mr_cpu * 1e3, peak_mib());
  }
  ms_ct_system_free(cs);
  ms_mr_system_free(mr);
  free(mu);
  free(sino);
  free(noisy);
  return 0;
}
