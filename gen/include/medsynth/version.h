/* medsynth version: the single place the version number lives.
 *
 * Every output file records MS_VERSION_STRING together with the spec hash and
 * seed; the reproducibility contract is "same spec + seed + version". */
#ifndef MEDSYNTH_VERSION_H
#define MEDSYNTH_VERSION_H

#define MS_VERSION_MAJOR 0
#define MS_VERSION_MINOR 1
#define MS_VERSION_PATCH 0

#define MS__STR2(x) #x
#define MS__STR(x) MS__STR2(x)
#define MS_VERSION_STRING \
  MS__STR(MS_VERSION_MAJOR) "." MS__STR(MS_VERSION_MINOR) "." MS__STR(MS_VERSION_PATCH)

#endif
