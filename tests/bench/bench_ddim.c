/* DDIM sampling throughput of the C UNet, next to PyTorch in the same run.
 *
 *   bench_ddim MODEL.h5 [--steps 50] [--images-b1 2] [--torch SCRIPT] [--cpu]
 *
 * --cpu times both sides with the process CPU clock instead of the wall
 * clock: on a loaded machine the one-thread rows then measure the work
 * rather than the share of the core the process got (with 2 threads it is
 * the sum over both threads, spinning included).
 * For each (batch, threads) in {1, 16} x {1, 2}: loads the model, samples
 * max(batch, images-b1) images with DDIM (eta 0) and reports images/s and
 * the peak RSS. Each configuration runs in its own child process so the
 * peak RSS is that configuration's own. With --torch, the PyTorch reference
 * (models/reference/bench_torch.py) is then run with the same model, steps
 * and configurations, so both sets of figures come from one run.
 * Model: e.g. models/reference/export_model.py (docs/performance.md). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "medsynth/model.h"
#include "medsynth/nn.h"
#include "medsynth/sample.h"

static int use_cpu_clock;

static double now(void) {
  struct timespec ts;
  clock_gettime(use_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int run_config(const char *path, int batch, int threads, int steps, int n_images) {
  ms_diag d;
  ms_diag_init(&d);
  ms_model *m;
  if (ms_model_load(&m, path, &d) != MS_OK) {
    char *t = ms_diag_format(&d);
    fprintf(stderr, "%s", t);
    free(t);
    return 1;
  }
  omp_set_num_threads(threads);
  ms_unet *u;
  if (ms_unet_new(&u, m, batch, &d) != MS_OK) return 1;
  const ms_model_config *c = ms_model_config_of(m);
  ms_denoiser dn = {.fn = ms_unet_denoise, .ctx = u, .prediction = c->prediction,
                    .num_classes = c->num_classes, .schedule = c->schedule,
                    .item_floats = (size_t)c->image_channels * c->image_size * c->image_size,
                    .max_batch = batch};
  ms_sample_params p;
  ms_sample_params_init(&p);
  p.sampler = MS_SAMPLER_DDIM;
  p.steps = steps;
  p.seed = 1;
  float *x = malloc((size_t)batch * dn.item_floats * sizeof(float));
  double t0 = now();
  int done = 0;
  while (done < n_images) {
    int nb = n_images - done < batch ? n_images - done : batch;
    if (ms_sample(&p, &dn, x, (uint64_t)done, NULL, nb, &d) != MS_OK) return 1;
    done += nb;
  }
  double el = now() - t0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("medsynth  DDIM-%d  batch %2d  threads %d  %3d images  %8.3f s%s  %8.4f images/s  peak RSS %6.1f MiB  (work %.1f MiB)\n",
         steps, batch, threads, n_images, el, use_cpu_clock ? " CPU" : "", n_images / el,
         ru.ru_maxrss / 1024.0, ms_unet_memory_bytes(u) / 1048576.0);
  fflush(stdout);
  free(x);
  ms_unet_free(u);
  ms_model_free(m);
  ms_diag_deinit(&d);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr,
            "usage: bench_ddim MODEL.h5 [--steps 50] [--images-b1 2] [--torch SCRIPT] [--cpu]\n");
    return 64;
  }
  const char *path = argv[1], *torch = NULL;
  int steps = 50, images_b1 = 2;
  for (int i = 2; i < argc; i += 2) {
    if (!strcmp(argv[i], "--cpu")) {
      use_cpu_clock = 1;
      i--;
      continue;
    }
    if (i + 1 >= argc) break;
    if (!strcmp(argv[i], "--steps"))
      steps = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--images-b1"))
      images_b1 = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--torch"))
      torch = argv[i + 1];
  }
  int batches[2] = {1, 16}, threads[2] = {1, 2};
  for (int b = 0; b < 2; b++)
    for (int t = 0; t < 2; t++) {
      int n = batches[b] > images_b1 ? batches[b] : images_b1;
      pid_t pid = fork();
      if (pid == 0) _exit(run_config(path, batches[b], threads[t], steps, n));
      int status;
      waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status)) return 1;
    }
  if (torch) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' --steps %d --images-b1 %d%s", torch, path,
             steps, images_b1, use_cpu_clock ? " --cpu" : "");
    fflush(stdout);
    if (system(cmd) != 0) return 1;
  }
  return 0;
}
