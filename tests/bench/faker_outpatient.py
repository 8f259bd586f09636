#!/usr/bin/python3
"""Reference for bench_outpatient: the outpatient table of
schemas/examples/outpatient.json written the way a fixture author would
without medsynth, with Faker (Debian python3-fake-factory) and the standard
random module, one row at a time, to CSV.

Same 23 columns, the same marginal laws and the same conditional rules
(sex- and age-dependent means, prevalences, `when` rules, missing rates,
truncation by rejection). The two Gaussian-copula correlations of the spec
are left out, which makes this reference a little cheaper than the spec.

Usage: /usr/bin/python3 tests/bench/faker_outpatient.py ROWS OUT.csv [SEED]
Prints "faker_outpatient: ROWS rows in S s = R rows/s" on stdout.
"""
import csv
import datetime
import math
import random
import sys
import time

from faker import Faker

AGE_P = [0, 0.12, 0.295, 0.46, 0.615, 0.78, 0.905, 0.97, 1]
AGE_V = [18, 25, 35, 45, 55, 65, 75, 85, 90]
DX = {"Z00.00": 2.0, "Z23": 1.6, "K21.9": 1.1, "E03.9": 1.2, "E55.9": 1.0,
      "J06.9": 0.8, "M54.50": 0.8, "R73.03": 0.7, "F41.1": 0.6, "F32.A": 0.6,
      "J45.909": 0.5, "R53.83": 0.4, "J02.9": 0.4, "N39.0": 0.4, "M25.561": 0.3}
DX_DM = {"E11.9": 1.6, "E11.65": 0.8, "E11.22": 0.3, "E11.42": 0.2, "I10": 1.0, "E78.5": 0.5}
DX_HTN = {"I10": 5.5, "E78.5": 1.0, "E78.2": 0.5, "Z00.00": 1.0, "K21.9": 0.3}
DX_LIP = {"E78.5": 2.4, "E78.2": 1.3, "E78.00": 0.6, "Z00.00": 1.0}
REF = datetime.date(2025, 1, 1)


def band(age, a, b, c):
    return a if age < 40 else b if age < 60 else c


def age_draw(u):
    for i in range(1, len(AGE_P)):
        if u <= AGE_P[i]:
            w = (u - AGE_P[i - 1]) / (AGE_P[i] - AGE_P[i - 1])
            return AGE_V[i - 1] + w * (AGE_V[i] - AGE_V[i - 1])
    return AGE_V[-1]


def tnorm(mu, sd, lo, hi):
    while True:
        x = random.gauss(mu, sd)
        if lo <= x <= hi:
            return x


def tlnorm(ml, sl, lo, hi):
    while True:
        x = random.lognormvariate(ml, sl)
        if lo <= x <= hi:
            return x


def pick(fake, weights):
    return fake.random_element(elements=weights)


def row(fake, i):
    sex = "M" if random.random() < 0.492 else "F"
    m = sex == "M"
    age = min(90, max(18, round(age_draw(random.random()))))
    birth = REF.replace(year=REF.year - age) - datetime.timedelta(days=random.randint(0, 364))
    height = tnorm(band(age, 176.5, 176.0, 174.0) if m else band(age, 163.0, 162.0, 159.5),
                   7.5 if m else 7.0, 150 if m else 138, 205 if m else 190)
    h2 = (height / 100) ** 2
    ml = band(age, 4.4651, 4.4861, 4.4581) if m else band(age, 4.2905, 4.3456, 4.2934)
    sl = band(age, 0.2320, 0.2275, 0.2127) if m else band(age, 0.2837, 0.2700, 0.2478)
    weight = tlnorm(ml, sl, max(38, 15 * h2), min(230, 65 * h2))
    bmi = weight / h2
    p_htn = band(age, 0.234, 0.525, 0.716) * (1.065 if m else 0.935)
    htn = random.random() < p_htn
    htn_dx = htn and random.random() < 0.59
    sv = band(age, 144, 225, 361) if m else band(age, 121, 256, 400)
    sbp = round(tnorm((band(age, 119, 125, 133) if m else band(age, 110, 122, 137))
                      + 15 * (htn - p_htn), math.sqrt(max(sv - 225 * p_htn * (1 - p_htn), 64)),
                      79.5, 230.5))
    dv = band(age, 81, 100, 121) if m else band(age, 64, 100, 121)
    dbp = round(tnorm((band(age, 71, 77, 70) if m else band(age, 68, 74, 67))
                      + 7 * (htn - p_htn), math.sqrt(max(dv - 49 * p_htn * (1 - p_htn), 25)),
                      39.5, 130.5))
    pulse = round(tnorm(71 if m else 74, 11, 39.5, 140.5))
    temp = None if random.random() < 0.05 else round(
        tnorm(36.41 if age >= 60 else 36.64, 0.42, 35.0, 40.5), 1)
    resp = None if random.random() < 0.15 else round(tnorm(16, 2.5, 9.5, 30.5))
    if random.random() < 0.03:
        smoking = None
    elif age >= 60:
        smoking = pick(fake, {"never": 0.56, "former": 0.35, "current": 0.09})
    elif age >= 40:
        smoking = pick(fake, {"never": 0.66, "former": 0.20, "current": 0.14})
    else:
        smoking = pick(fake, {"never": 0.78, "former": 0.10, "current": 0.12})
    spo2 = None if random.random() < 0.10 else round(tnorm(
        97.8 - (0.6 if age >= 60 else 0) - (0.5 if bmi >= 35 else 0), 1.2, 87.5, 100.5))
    p_dm = band(age, 0.035, 0.177, 0.273) * (1.139 if m else 0.867)
    dm = random.random() < p_dm
    dm_dx = dm and random.random() < 0.715
    miss = 0.10 if dm_dx else 0.45 if age >= 45 else 0.65
    hba1c = None if random.random() < miss else round(
        tlnorm(1.96, 0.18, 5.5, 14.0) if dm else tlnorm(math.log(5.22 + 0.006 * age), 0.065, 4.0, 6.4), 1)
    miss = 0.15 if dm_dx else 0.55
    glucose = None if random.random() < miss else round(
        tlnorm(4.9912, 0.28, 70, 450) if dm else tlnorm(math.log(88 + 0.15 * age), 0.085, 60, 125))
    chol = None if random.random() < 0.30 else round(
        tnorm(174 + 0.35 * age + (4 if not m else 0), 38, 89.5, 400.5))
    p_lip = 0.85 if (chol or 0) >= 240 else band(age, 0.05, 0.22, 0.35)
    lip = random.random() < p_lip
    dx = pick(fake, DX_DM if dm_dx else DX_HTN if htn_dx else DX_LIP if lip else DX)
    return [fake.hexify("P^^^^^^^^^^", upper=True), "MRN-%08d" % (i + 1), sex, age,
            birth.isoformat(), round(height, 1), round(weight, 1), round(bmi, 1),
            str(htn).lower(), sbp, dbp, pulse, temp, resp, smoking, spo2, str(dm).lower(),
            str(dm_dx).lower(), hba1c, glucose, chol, str(lip).lower(), dx]


COLUMNS = ["patient_id", "mrn", "sex", "age", "birth_date", "height_cm", "weight_kg", "bmi",
           "hypertension", "sbp", "dbp", "pulse", "temp_c", "resp_rate", "smoking_status", "spo2",
           "diabetes", "dm_diagnosed", "hba1c", "glucose_fasting", "total_chol",
           "hyperlipidemia", "dx_primary"]


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 64
    n, out = int(sys.argv[1]), sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 20250101
    fake = Faker()
    fake.seed_instance(seed)
    random.seed(seed)
    t0 = time.perf_counter()
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i in range(n):
            w.writerow(["" if v is None else v for v in row(fake, i)])
    dt = time.perf_counter() - t0
    print("faker_outpatient: %d rows in %.3f s = %.0f rows/s" % (n, dt, n / dt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
