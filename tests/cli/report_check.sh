#!/usr/bin/env bash
# Radiology reports never contradict the masks (docs/dicom.md, "Reports"):
# every statement of every report in /tables/<field>_info is checked against
# the lesion table measured on the mask: one numbered finding per lesion,
# largest first, with its size (equivalent diameter, whole mm), density
# class (from the lesion's HU), side and region (from its centroid); the
# impression's count, largest size and Lung-RADS-like category; "no
# nodules" exactly when the mask has none. The same reports reach the FHIR
# DiagnosticReports of the same spec and seed.
set -euo pipefail
ms=$1
src=$2
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ms" records --spec "$src/tests/specs/report_chest.json" -o "$tmp/r.h5" -q
"$ms" records --spec "$src/tests/specs/report_chest.json" --format fhir -o "$tmp/fhir" -q
"$py" "$src/tests/fhir/check_fhir.py" "$tmp/fhir" >/dev/null
"$py" - "$tmp" <<'PY'
import base64, json, math, re, sys
import h5py, numpy as np
tmp = sys.argv[1]
f = h5py.File(f"{tmp}/r.h5", "r")
info, les = f["tables/chest_ct_info"][:], f["tables/chest_ct_lesions"][:]
W = H = 160
def density(v):
    return "solid" if v >= -100 else "part-solid" if v >= -600 else "ground-glass"
def category(d, dens):
    if dens == "ground-glass":
        return "2" if d < 30 else "3"
    return "2" if d < 6 else "3" if d < 8 else "4A" if d < 15 else "4B"
checked = seen_zero = 0
for i, r in enumerate(info):
    text, imp, cat = r["report"].decode(), r["impression"].decode(), r["report_category"].decode()
    L = les[les["row"] == r["row"]]
    facts = []
    for l in L:
        d = 2 * math.sqrt(l["area_mm2"] / math.pi)
        facts.append(dict(d=d, mm=max(1, int(math.floor(d + 0.5))), dens=density(l["value"]),
                          side="right" if l["centroid_x"] < 0.5 * (W - 1) else "left",
                          ap="anterior" if l["centroid_y"] < 0.4 * H else "posterior" if l["centroid_y"] > 0.6 * H else "central"))
    facts.sort(key=lambda x: -x["d"])
    lines = [ln for ln in text.splitlines() if re.match(r"^\d+\. ", ln)]
    assert len(lines) == len(facts), (i, text, len(facts))
    for k, (ln, fa) in enumerate(zip(lines, facts)):
        assert ln.startswith(f"{k + 1}. ")
        sizes = [int(x) for x in re.findall(r"(\d+) mm", ln)]
        assert sizes == [fa["mm"]], (ln, fa)
        words = set(re.findall(r"[a-z-]+", ln.lower()))
        dens = {"solid", "part-solid", "ground-glass"} & words
        assert dens == {fa["dens"]}, (ln, fa)
        assert fa["side"] in words and ({"right", "left"} - {fa["side"]}).isdisjoint(words), (ln, fa)
        assert fa["ap"] in words, (ln, fa)
        assert "nodule" in words and "lung" in words
        checked += 1
    assert text.rstrip().endswith(imp) and ("Impression: " + imp) in text
    if not facts:
        seen_zero += 1
        assert cat == "1" and "no" in imp.lower() and "nodules" in imp.lower(), imp
        assert re.search(r"\d+ mm", text) is None
    else:
        big = facts[0]
        want = category(big["d"], big["dens"])
        assert cat == want, (cat, want, big)
        assert re.search(rf"\b{re.escape(cat)}\b", imp), imp
        assert f"{big['mm']} mm" in imp and big["side"] in imp and big["dens"] in imp, (imp, big)
        assert re.search(rf"\b{len(facts)} (pulmonary )?nodules?", imp), imp
# the FHIR DiagnosticReports carry the same text
pats = f["tables/patients"][:]
for i in range(len(info)):
    b = json.load(open(f"{tmp}/fhir/patients_{i:06d}.json"))
    res = [e["resource"] for e in b["entry"]]
    rep = [x for x in res if x["resourceType"] == "DiagnosticReport"]
    st = [e["fullUrl"] for e in b["entry"] if e["resource"]["resourceType"] == "ImagingStudy"]
    assert len(rep) == 1 and rep[0]["imagingStudy"][0]["reference"] == st[0]
    assert rep[0]["conclusion"] == info[i]["impression"].decode()
    assert base64.b64decode(rep[0]["presentedForm"][0]["data"]).decode() == info[i]["report"].decode()
assert checked >= 40 and seen_zero >= 2, (checked, seen_zero)
print(f"report_check: {checked} findings and {len(info)} impressions agree with the masks")
PY
echo "report_check: ok"
