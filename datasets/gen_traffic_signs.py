#!/usr/bin/env python3
r"""Generates a synthetic traffic-signs CSV with the schema of the City of Champaign export that the
stream-engine apps use (../shared/datasets/traffic-signs-champaign/Traffic_Signs.csv), so demos and
tests run without ../shared.

The columns, their order, the UTF-8 BOM before the header, and the kinds of values are those of the
real export. That includes quoted fields holding commas and doubled quotes (a size of 16" X 42" is written
with doubled quotes, and a note such as: faded, replace is quoted). The values themselves are drawn at random from
small vocabularies, weighted roughly like the real data. The output is deterministic for a given
--seed.

    datasets/gen_traffic_signs.py --rows 1000 --seed 1 > signs.csv
    datasets/gen_traffic_signs.py --rows 1000 --no-header > signs-noheader.csv
"""
import argparse
import csv
import random
import sys

HEADER = ["X", "Y", "OBJECTID", "Sign_Type", "Size_", "Supplement", "Sign_Post", "Year_Insta",
          "Category", "Notes", "MUTCD", "Ownership", "FACILITYID", "Schools", "Location_Adjusted",
          "Replacement_Zone", "Sign_Text", "Set_ID", "FieldVerifiedDate", "GlobalID"]

# (Sign_Type, Category, MUTCD, weight): the most frequent combinations of the real export.
SIGNS = [("Streetname", "Streetname", "D3-1", 34), ("No Parking", "Parking", "R7-1", 21),
         ("Stop", "Regulatory", "R1-1", 20), ("No Parking to Corner", "Parking", "R7-1", 7),
         ("Push Button to Cross", "Regulatory", "R10-3", 5), ("One Way Right", "Regulatory", "R6-1R", 3),
         ("Speed Limit", "Regulatory", "R2-1", 3), ("School Crossing", "School", "S1-1", 3),
         ("Deer Crossing", "Warning", "W11-3", 2), ("Parking Deck Entrance", "Parking Deck", "D4-2", 2)]
POSTS = [("Punched Telespar", 52), ("Streetlight", 15), ("Unpunched Telespar", 12),
         ("Traffic Signal Mast Arm", 4), ("Traffic Signal Standard", 3), ("Wood Post", 2), (" ", 3)]
SIZES = ['12" X 18"', '30"', '6" X 30"', '24" X 30"', '18" X 24"', '16" X 42"']
OWNERS = [("Champaign", 93), ("IDOT", 4), ("MTD", 1), ("Private", 1), ("", 1)]
STREETS = ["Mercury Dr", "N Market St", "W Church St", "S Neil St", "E Green St", "Kirby Ave",
           "Prospect Ave", "Mattis Ave", "Windsor Rd", "Bradley Ave"]
NOTES = ["", " ", "faded, replace", 'bent "post"', "near school, check annually"]


def weighted(rng, items):
    total = sum(w for *_, w in items)
    x = rng.uniform(0, total)
    for item in items:
        x -= item[-1]
        if x <= 0:
            return item
    return items[-1]


def row(rng, objectid):
    sign_type, category, mutcd, _ = weighted(rng, SIGNS)
    return [f"{rng.uniform(-9830000, -9815000):.8f}", f"{rng.uniform(4875000, 4895000):.8f}",
            str(objectid), sign_type, rng.choice(SIZES), rng.choice(["", " ", "Arrow"]),
            weighted(rng, POSTS)[0], rng.choice([" ", str(rng.randint(1995, 2024))]), category,
            rng.choice(NOTES), mutcd, weighted(rng, OWNERS)[0], str(objectid), "",
            rng.choice(["AERIAL", "GPS"]), rng.choice(["E", "L", "N"]),
            rng.choice(STREETS) if category == "Streetname" else "", str(rng.randint(1, 5000)),
            "", "{%08X-%04X-%04X-%04X-%012X}" % (rng.getrandbits(32), rng.getrandbits(16),
                                                 rng.getrandbits(16), rng.getrandbits(16),
                                                 rng.getrandbits(48))]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-header", action="store_true", help="omit the header row (and the BOM)")
    a = p.parse_args()
    if a.rows < 0:
        p.error("--rows must be >= 0")
    rng = random.Random(a.seed)
    out = csv.writer(sys.stdout, lineterminator="\n")
    if not a.no_header:
        sys.stdout.write("\ufeff")
        out.writerow(HEADER)
    for i in range(1, a.rows + 1):
        out.writerow(row(rng, i))


if __name__ == "__main__":
    main()
