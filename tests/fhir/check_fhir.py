#!/usr/bin/python3
"""Checks a medsynth FHIR output directory (bundles or NDJSON):

  * every resource validates against the official HL7 FHIR R4 JSON schema
    (tests/data/fhir/fhir.schema.json.gz, see its README) with
    python3-jsonschema, and every Bundle against the Bundle definition;
  * reference integrity: every "reference" resolves inside its bundle
    (urn:uuid fullUrls) or inside the export ("Type/id");
  * fullUrls / ids are unique, request.url names the resource type;
  * code systems are known URIs, every Quantity carries UCUM
    (system http://unitsofmeasure.org, code == unit);
  * every resource other than Patient has a subject.

usage: check_fhir.py DIR [--max N]   (exit 0 when every check passes)
Prints a one-line summary: resources per type."""
import gzip, json, os, sys
from collections import Counter

import jsonschema

SYSTEMS = {"http://loinc.org", "http://hl7.org/fhir/sid/icd-10-cm", "http://snomed.info/sct",
           "http://www.whocc.no/atc", "http://unitsofmeasure.org", "http://dicom.nema.org/resources/ontology/DCM"}
SYSTEM_PREFIXES = ("http://terminology.hl7.org/CodeSystem/", "urn:medsynth:", "urn:dicom:uid",
                   "urn:ietf:rfc:3986")

here = os.path.dirname(os.path.abspath(__file__))
schema_path = os.path.join(here, "..", "data", "fhir", "fhir.schema.json.gz")
with gzip.open(schema_path, "rt", encoding="utf-8") as f:
    SCHEMA = json.load(f)
DEFS = SCHEMA["definitions"]
_validators = {}


def validator(rtype):
    v = _validators.get(rtype)
    if v is None:
        if rtype not in DEFS:
            raise SystemExit(f"FAIL: unknown resourceType {rtype!r}")
        v = jsonschema.Draft6Validator({"$ref": f"#/definitions/{rtype}", "definitions": DEFS})
        _validators[rtype] = v
    return v


errors = []


def fail(where, msg):
    errors.append(f"{where}: {msg}")


def walk(o, path=""):
    if isinstance(o, dict):
        yield path, o
        for k, v in o.items():
            yield from walk(v, f"{path}/{k}")
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from walk(v, f"{path}/{i}")


def check_resource(where, res):
    rtype = res.get("resourceType")
    for e in validator(rtype).iter_errors(res):
        fail(where, f"schema: {e.message[:200]} at {'/'.join(map(str, e.absolute_path))}")
        break
    refs = []
    for p, o in walk(res):
        if "reference" in o and isinstance(o["reference"], str):
            refs.append((p, o["reference"]))
        if "system" in o and "code" in o and isinstance(o.get("system"), str):
            s = o["system"]
            if s not in SYSTEMS and not s.startswith(SYSTEM_PREFIXES):
                fail(where, f"{p}: unknown code system {s}")
        if "value" in o and "unit" in o:  # a Quantity
            if o.get("system") != "http://unitsofmeasure.org" or o.get("code") != o.get("unit"):
                fail(where, f"{p}: Quantity without UCUM system/code")
    if rtype != "Patient" and "subject" not in res:
        fail(where, "no subject")
    return refs


def main():
    d = sys.argv[1]
    mx = int(sys.argv[sys.argv.index("--max") + 1]) if "--max" in sys.argv else None
    counts = Counter()
    manifest = json.load(open(os.path.join(d, "manifest.json")))
    files = sorted(os.listdir(d))
    if manifest["layout"] == "bundles":
        bundles = [f for f in files if f.endswith(".json") and f != "manifest.json"]
        assert len(bundles) == manifest["bundles"], (len(bundles), manifest["bundles"])
        bv = validator("Bundle")
        for f in bundles[:mx]:
            b = json.load(open(os.path.join(d, f)))
            shell = dict(b, entry=[{k: v for k, v in e.items() if k != "resource"} for e in b["entry"]])
            for e in bv.iter_errors(shell):
                fail(f, f"Bundle schema: {e.message[:200]}")
            if b.get("type") != "transaction":
                fail(f, "not a transaction bundle")
            urls = [e["fullUrl"] for e in b["entry"]]
            if len(set(urls)) != len(urls):
                fail(f, "duplicate fullUrl")
            pats = [e for e in b["entry"] if e["resource"]["resourceType"] == "Patient"]
            if len(pats) != 1:
                fail(f, f"{len(pats)} Patient resources (want 1)")
            for i, e in enumerate(b["entry"]):
                r = e["resource"]
                counts[r["resourceType"]] += 1
                if not e["fullUrl"].startswith("urn:uuid:"):
                    fail(f, "fullUrl is not urn:uuid")
                if e["request"] != {"method": "POST", "url": r["resourceType"]}:
                    fail(f, f"entry {i}: bad request {e['request']}")
                for p, ref in check_resource(f"{f}#entry/{i}", r):
                    if ref not in urls:
                        fail(f, f"entry {i}{p}: reference {ref} does not resolve in the bundle")
                if r["resourceType"] != "Patient" and r["subject"]["reference"] != pats[0]["fullUrl"]:
                    fail(f, f"entry {i}: subject is not the bundle's patient")
    else:
        ids, refs = set(), []
        for f in files:
            if not f.endswith(".ndjson"):
                continue
            rtype = f[:-len(".ndjson")]
            for ln, line in enumerate(open(os.path.join(d, f)), 1):
                if mx and ln > mx * 20:
                    break
                r = json.loads(line)
                if r["resourceType"] != rtype:
                    fail(f"{f}:{ln}", "resource type differs from the file name")
                key = f"{rtype}/{r['id']}"
                if key in ids:
                    fail(f"{f}:{ln}", "duplicate id")
                ids.add(key)
                counts[rtype] += 1
                refs += [(f"{f}:{ln}{p}", ref) for p, ref in check_resource(f"{f}:{ln}", r)]
        listed = {o["type"]: o["count"] for o in manifest["output"]}
        if not mx and listed != dict(counts):
            fail("manifest.json", f"output counts {listed} != {dict(counts)}")
        for where, ref in refs:
            if ref not in ids and not mx:
                fail(where, f"reference {ref} does not resolve in the export")
    if errors:
        for e in errors[:20]:
            print("FAIL:", e)
        print(f"{len(errors)} problems", file=sys.stderr)
        sys.exit(1)
    print("fhir ok:", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


main()
