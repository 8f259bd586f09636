#!/usr/bin/python3
"""Derives the small real-data fixtures used by the fit/evaluate tests and docs.

Sources (shipped with Debian's python3-sklearn, BSD-3-Clause):
  breast_cancer.csv  -- Wisconsin Diagnostic Breast Cancer (569 x 30 + target);
                        first line holds counts and class names, not a header.
  diabetes_data_raw.csv.gz + diabetes_target.csv.gz -- Efron et al. (2004)
                        diabetes study (442 x 10, space separated) + progression.
Each table is split deterministically: rows whose index i satisfies
i % 5 == 4 go to the holdout, the rest to train (80/20).
coarse_groups.csv is made here too (not real data): three groups of 40 rows
whose four one-decimal columns differ by group, the shape on which a
fitted mixture would repeat real rows (docs/fit.md, Clusters). Run:
  /usr/bin/python3 tests/data/make_fixtures.py tests/data
"""
import csv, gzip, os, random, sys

SRC = "/usr/lib/python3/dist-packages/sklearn/datasets/data"
BC_COLS = ["mean_radius", "mean_texture", "mean_perimeter", "mean_area", "mean_smoothness",
           "mean_compactness", "mean_concavity", "mean_concave_points", "mean_symmetry",
           "mean_fractal_dimension", "radius_error", "texture_error", "perimeter_error",
           "area_error", "smoothness_error", "compactness_error", "concavity_error",
           "concave_points_error", "symmetry_error", "fractal_dimension_error",
           "worst_radius", "worst_texture", "worst_perimeter", "worst_area",
           "worst_smoothness", "worst_compactness", "worst_concavity", "worst_concave_points",
           "worst_symmetry", "worst_fractal_dimension"]


def write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def split(out, stem, header, rows):
    write(os.path.join(out, stem + "_train.csv"), header, [r for i, r in enumerate(rows) if i % 5 != 4])
    write(os.path.join(out, stem + "_holdout.csv"), header, [r for i, r in enumerate(rows) if i % 5 == 4])


def main(out):
    with open(os.path.join(SRC, "breast_cancer.csv")) as f:
        lines = list(csv.reader(f))
    names = lines[0][2:]  # ["malignant", "benign"]; target 0 = malignant
    rows = [r[:30] + [names[int(r[30])]] for r in lines[1:]]
    split(out, "breast_cancer", BC_COLS + ["diagnosis"], rows)

    with gzip.open(os.path.join(SRC, "diabetes_data_raw.csv.gz"), "rt") as f:
        x = [l.split() for l in f if l.strip()]
    with gzip.open(os.path.join(SRC, "diabetes_target.csv.gz"), "rt") as f:
        y = [int(round(float(l))) for l in f if l.strip()]
    header = ["age", "sex", "bmi", "bp", "tc", "ldl", "hdl", "tch", "ltg", "glu", "progression"]
    rows = [r + [str(t)] for r, t in zip(x, y)]
    split(out, "diabetes", header, rows)

    r = random.Random(3)
    rows = []
    for i in range(120):
        g = i % 3
        rows.append(["%.1f" % (5 * g + r.gauss(0, 0.3)), "%.1f" % (3 - g + r.gauss(0, 0.3)),
                     "%.1f" % (2 * g + r.gauss(0, 0.3)), "%.1f" % (1 + g + r.gauss(0, 0.3))])
    write(os.path.join(out, "coarse_groups.csv"), ["a", "b", "c", "d"], rows)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
