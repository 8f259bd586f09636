/* `medsynth version`: prints the version and the linked library versions. */
#include <H5public.h>
#include <cjson/cJSON.h>
#include <gsl/gsl_version.h>
#include <png.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>
#include <zlib.h>

#include "cli.h"
#include "medsynth/version.h"

static int cmd_version(int argc, char **argv) {
  int verbose = argc > 1 && (!strcmp(argv[1], "-v") || !strcmp(argv[1], "--verbose"));
  if (argc > 1 && !verbose) {
    fprintf(stderr, "usage: medsynth version [-v]\n");
    return MS_EXIT_USAGE;
  }
  printf("medsynth %s\n", MS_VERSION_STRING);
  if (verbose) {
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    printf("hdf5 %u.%u.%u\ngsl %s\ncjson %s\nxxhash %u\nlibpng %s\nzlib %s\n", maj, min, rel,
           gsl_version, cJSON_Version(), XXH_versionNumber(), png_libpng_ver, zlibVersion());
  }
  return MS_EXIT_OK;
}

MS_CLI_COMMAND(version, "print the version (-v: and library versions)", cmd_version);
