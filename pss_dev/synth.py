"""Synthetic SUS-like activity: admitted and outpatient records, deterministic for a seed.

In: a row count, a seed and a share of malformed rows. Out: CSV text (header `rows.COLUMNS`)
written to a file or stream; the same (rows, seed, bad_share) always gives the same bytes.

The mix is plausible, not measured: most activity is routine (hips, cataracts, colonoscopies,
pneumonia, outpatient follow-ups with no procedure), a minority hits specialised service lines
(TAVI and other valves, PPCI, transplants, congenital heart disease, cancer drugs and
radiotherapy, secure and eating-disorder mental health, rare diseases), and a few rows are
malformed the ways real extracts are (impossible dates, bad codes, short rows...). Codes are
real OPCS-4 / ICD-10 codes as the pack cites them (policies/SOURCES.md); the fact names
are the national pack's (pack.pss: part of the API contract).
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from chalicelib.batch.rows import COLUMNS

# (ICB ODS code, NHS England region): a sample of the 42 ICBs across the seven regions.
ICBS = (
    ("QE1", "North West"), ("QOP", "North West"), ("QYG", "North West"),
    ("QHM", "North East and Yorkshire"), ("QWO", "North East and Yorkshire"),
    ("QF7", "North East and Yorkshire"), ("QOQ", "North East and Yorkshire"),
    ("QJ2", "Midlands"), ("QT1", "Midlands"), ("QHL", "Midlands"), ("QUA", "Midlands"),
    ("QK1", "Midlands"), ("QUE", "East of England"), ("QMM", "East of England"),
    ("QH8", "East of England"), ("QMF", "London"), ("QMJ", "London"), ("QKK", "London"),
    ("QRV", "London"), ("QWE", "London"), ("QKS", "South East"), ("QNQ", "South East"),
    ("QU9", "South East"), ("QRL", "South East"), ("QXU", "South East"),
    ("QUY", "South West"), ("QR1", "South West"), ("QJK", "South West"), ("QT6", "South West"),
)  # fmt: skip
# Acute trusts (some tertiary centres), and the three high secure hospitals' trusts.
PROVIDERS = (
    "RRK", "RJ1", "RAL", "RBQ", "RGM", "RX1", "RTH", "RA7", "RR8", "RTD",
    "RW3", "RH8", "RWE", "RBV", "RWH", "RYJ", "RJZ", "RQM", "RM1", "RVJ",
)  # fmt: skip
HIGH_SECURE = ("RKL", "RHA", "RW4")
FIRST_DAY = dt.date(2019, 4, 1)
LAST_DAY = dt.date(2026, 3, 31)
_DAYS = [
    (FIRST_DAY + dt.timedelta(days=n)).isoformat() for n in range((LAST_DAY - FIRST_DAY).days + 1)
]
_OUTPATIENT_TF = ("100", "101", "110", "120", "130", "300", "301", "320", "330", "340", "502")

Facts = Callable[[random.Random, int], tuple[str, str]]  # (rng, day) -> (facts, attestations)


def _no_facts(rng: random.Random, day: int) -> tuple[str, str]:
    return "", ""


def _cetuximab_facts(rng: random.Random, day: int) -> tuple[str, str]:
    ras = rng.choice(("wild_type", "wild_type", "wild_type", "mutant", "unknown"))
    facts = [f"ras_status={ras}", f"line_of_therapy={rng.choice((1, 1, 1, 2))}"]
    if rng.random() < 0.8:
        facts.append(f"metastatic_or_locally_advanced_inoperable={rng.random() < 0.9}".lower())
        facts.append("prior_chemotherapy_for_metastatic_disease=false")
        facts.append("prior_anti_egfr_therapy=false")
    attest = "prescriber_consultant_or_accredited_trainee" if rng.random() < 0.85 else ""
    return ";".join(facts), attest


def _break_facts(rng: random.Random, day: int) -> tuple[str, str]:
    if rng.random() < 0.6:
        return "", ""
    cycle = rng.choice((14, 21, 28))
    last = (FIRST_DAY + dt.timedelta(days=day - rng.randrange(cycle, 120))).isoformat()
    return f"last_dose_date={last};expected_cycle_length_days={cycle}", ""


def _sabr_facts(rng: random.Random, day: int) -> tuple[str, str]:
    facts = (
        f"metastases_count={rng.randrange(1, 6)}",
        f"disease_free_interval_months={rng.randrange(0, 48)}",
        f"who_performance_status={rng.randrange(0, 4)}",
        f"largest_metastasis_cm={rng.randrange(10, 80) / 10}",
        "haematological_malignancy=false",
    )
    return ";".join(facts), ""


@dataclass(frozen=True)
class Profile:
    """One kind of activity and how often it occurs (weight per 10,000 rows)."""

    weight: float
    setting: str
    tf: tuple[str, ...]
    ages: tuple[int, int]
    dominant: tuple[str, ...] = ("",)
    others: tuple[str, ...] = ("",)
    primary: tuple[str, ...] = ("",)
    secondary: tuple[str, ...] = ("",)
    drugs: tuple[str, ...] = ("",)
    sex: str = ""  # "" any, else a fixed code
    providers: tuple[str, ...] = PROVIDERS
    facts: Facts = _no_facts


_COMMON_SECONDARY = ("", "", "I10", "E11.9", "J44.9", "Z86.7|I10", "N18.3", "F32.9", "E78.0")
PROFILES = (
    # Routine activity, commissioned by ICBs (about 86%).
    Profile(
        900,
        "APC",
        ("110",),
        (45, 92),
        ("W37.1", "W38.1", "W39.1"),
        ("", "Y53.9"),
        ("M16.1", "M16.9"),
        _COMMON_SECONDARY,
    ),
    Profile(
        800,
        "APC",
        ("110",),
        (45, 92),
        ("W40.1", "W41.1", "W42.1"),
        ("",),
        ("M17.1", "M17.9"),
        _COMMON_SECONDARY,
    ),
    Profile(
        900,
        "APC",
        ("130",),
        (50, 95),
        ("C71.2", "C75.1"),
        ("",),
        ("H25.9", "H26.9"),
        _COMMON_SECONDARY,
    ),
    Profile(
        800,
        "APC",
        ("301",),
        (30, 85),
        ("H22.9", "H20.1", "H25.2"),
        ("",),
        ("K57.3", "K62.1", "Z12.1", "K51.9"),
        _COMMON_SECONDARY,
    ),
    Profile(
        500,
        "APC",
        ("100",),
        (25, 85),
        ("J18.3", "T20.1"),
        ("",),
        ("K80.2", "K40.9"),
        _COMMON_SECONDARY,
    ),
    Profile(
        700,
        "APC",
        ("300",),
        (55, 99),
        ("",),
        ("",),
        ("J18.9", "J44.1", "N39.0", "A41.9"),
        _COMMON_SECONDARY,
    ),
    Profile(
        500,
        "APC",
        ("320",),
        (40, 95),
        ("", "K63.1", "U19.2"),
        ("",),
        ("R07.4", "I20.9", "I48.9", "I50.0"),
        _COMMON_SECONDARY,
    ),
    Profile(
        500,
        "APC",
        ("501",),
        (18, 44),
        ("R17.9", "R18.8", ""),
        ("",),
        ("O80.9", "O82.0", "O70.0"),
        ("",),
        sex="2",
    ),
    Profile(300, "APC", ("420",), (0, 15), ("",), ("",), ("J21.9", "J06.9", "R50.9"), ("",)),
    Profile(200, "APC", ("710",), (18, 80), ("",), ("",), ("F32.9", "F20.0", "F31.6"), ("",)),
    Profile(2500, "OP", _OUTPATIENT_TF, (0, 95)),
    Profile(
        1000,
        "OP",
        _OUTPATIENT_TF,
        (18, 95),
        ("",),
        ("",),
        ("M54.5", "R10.4", "H35.3", "L40.0", "E11.9"),
    ),
    # Specialised activity (about 13.5%).
    Profile(
        100,
        "APC",
        ("320",),
        (70, 93),
        ("K26.2",),
        ("Y53.1", "Y79.1", "Y49.4", "Y79.8"),
        ("I35.0",),
        _COMMON_SECONDARY,
    ),
    Profile(
        60,
        "APC",
        ("170",),
        (50, 85),
        ("K26.1", "K26.4", "K26.8"),
        ("",),
        ("I35.0", "I35.2"),
        _COMMON_SECONDARY,
    ),
    Profile(
        40, "APC", ("170",), (40, 85), ("K34.1", "K35.8", "K25.2"), ("",), ("I34.0", "I08.1"), ("",)
    ),
    Profile(
        120,
        "APC",
        ("320",),
        (35, 90),
        ("K75.1", "K75.3"),
        ("Y14.1",),
        ("I21.0", "I21.1", "I21.2"),
        _COMMON_SECONDARY,
    ),
    Profile(40, "APC", ("320",), (30, 85), ("K59.1", "K59.6"), ("",), ("I47.2", "I42.0"), ("",)),
    Profile(2, "APC", ("170",), (18, 65), ("K02.1", "K01.1"), ("",), ("I42.0",), ("",)),
    Profile(2, "APC", ("170",), (18, 65), ("E53.1", "E53.2"), ("",), ("J84.1", "E84.0"), ("",)),
    Profile(30, "APC", ("320", "321"), (16, 60), ("",), ("",), ("Q21.1", "Q21.0", "Q25.1"), ("",)),
    Profile(20, "APC", ("321",), (0, 15), ("", "K24.6"), ("",), ("Q21.1", "Q21.3"), ("",)),
    Profile(
        30,
        "APC",
        ("370",),
        (25, 85),
        ("X72.1",),
        ("",),
        ("C18.7", "C20.X", "C18.2"),
        ("C78.7",),
        ("cetuximab",),
        facts=_cetuximab_facts,
    ),
    Profile(
        80,
        "OP",
        ("370",),
        (30, 88),
        ("X72.1",),
        ("",),
        ("C34.1", "C43.5", "C64.X"),
        ("",),
        ("pembrolizumab", "nivolumab", "atezolizumab"),
        facts=_break_facts,
    ),
    Profile(
        200,
        "OP",
        ("370", "303"),
        (18, 88),
        ("X72.3", "X73.1"),
        ("",),
        ("C50.9", "C18.7", "C61.X", "C90.0"),
        ("",),
        ("oxaliplatin", "capecitabine", "bendamustine"),
        facts=_break_facts,
    ),
    Profile(
        150, "OP", ("800",), (30, 90), ("X65.4", "X65.3"), ("",), ("C50.9", "C61.X", "C34.1"), ("",)
    ),
    Profile(
        30,
        "OP",
        ("800",),
        (30, 90),
        ("X65.4",),
        ("",),
        ("C34.1", "C18.7"),
        ("C78.0", "C78.7"),
        providers=("RBV", "RR8", "RA7", "RJ1"),
        facts=_sabr_facts,
    ),
    Profile(
        30,
        "APC",
        ("712",),
        (18, 65),
        ("",),
        ("",),
        ("F20.0", "F60.2"),
        ("",),
        providers=HIGH_SECURE + PROVIDERS[:3],
    ),
    Profile(20, "APC", ("720",), (18, 45), ("",), ("",), ("F50.0", "F50.2"), ("",)),
    Profile(15, "APC", ("724",), (18, 44), ("",), ("",), ("F53.0", "F53.1"), ("",), sex="2"),
    Profile(15, "APC", ("711",), (12, 17), ("",), ("",), ("F50.0", "F32.2"), ("",)),
    Profile(3, "APC", ("100",), (18, 70), ("J01.1",), ("",), ("K74.6",), ("",)),
    Profile(10, "APC", ("361",), (18, 75), ("M01.2",), ("",), ("N18.5",), ("",)),
    Profile(10, "APC", ("303",), (18, 70), ("W34.2",), ("",), ("C92.0", "C90.0"), ("",)),
    Profile(2, "APC", ("192",), (18, 70), ("X58.1",), ("",), ("J80.X", "J96.0"), ("",)),
    Profile(5, "APC", ("120",), (1, 80), ("D24.1",), ("",), ("H90.3",), ("",)),
    Profile(30, "OP", ("340",), (5, 50), ("",), ("",), ("E84.0", "E84.1"), ("",)),
    Profile(15, "OP", ("303",), (5, 70), ("",), ("",), ("D66.X", "D67.X"), ("",)),
    Profile(30, "OP", ("350",), (18, 80), ("",), ("",), ("B20.0", "B24.X"), ("",)),
    Profile(10, "OP", ("340",), (18, 80), ("",), ("",), ("I27.0",), ("",)),
)
_CUMULATIVE = [sum(p.weight for p in PROFILES[: i + 1]) for i in range(len(PROFILES))]
_TOTAL = _CUMULATIVE[-1]


# How real extracts go wrong: (column, bad value) pairs, plus a short row (kind "short").
_SPOILERS: tuple[tuple[str, str], ...] = (
    ("activity_date", "2024-02-30"),
    ("activity_date", "01/06/2024"),
    ("activity_date", "2012-06-01"),  # before the national pack covers
    ("age", "abc"),
    ("age", ""),
    ("age", "150"),
    ("primary_diagnosis", "XYZ"),
    ("dominant_procedure", "K2X.2"),
    ("region", "Narnia"),
    ("sex", "7"),
    ("icb", "qwe"),
    ("facts", "ras_status"),
    ("facts", "favourite_colour=blue"),
    ("primary_diagnosis", ""),  # with a secondary diagnosis: no primary to classify on
    ("short", ""),
)


def _bad_row(fields: list[str], rng: random.Random) -> list[str]:
    """Spoil one row the way real extracts go wrong."""
    column, value = _SPOILERS[rng.randrange(len(_SPOILERS))]
    if column == "short":
        return fields[:-3]
    fields[COLUMNS.index(column)] = value
    if column == "primary_diagnosis" and not value:
        fields[COLUMNS.index("secondary_diagnoses")] = "I10"
    return fields


def generate(rows: int, seed: int, bad_share: float = 0.005) -> Iterator[list[str]]:
    """Yield `rows` data rows (header not included), deterministic for `seed`."""
    rng = random.Random(seed)
    rand, randrange, choice = rng.random, rng.randrange, rng.choice
    n_days, n_icbs = len(_DAYS), len(ICBS)
    for n in range(rows):
        p = PROFILES[bisect.bisect(_CUMULATIVE, rand() * _TOTAL)]
        icb, region = ICBS[randrange(n_icbs)]
        sex = p.sex or ("1" if rand() < 0.48 else "2")
        day = randrange(n_days)
        facts, attestations = p.facts(rng, day)
        fields = [
            f"S{seed}-{n:09d}",
            p.setting,
            _DAYS[day],
            choice(p.providers),
            str(randrange(p.ages[0], p.ages[1] + 1)),
            sex,
            region if rand() > 0.02 else "",
            icb,
            choice(p.tf),
            choice(p.primary),
            choice(p.secondary),
            choice(p.dominant),
            choice(p.others),
            choice(p.drugs),
            facts,
            attestations,
        ]
        if rand() < bad_share:
            fields = _bad_row(fields, rng)
        yield fields


def write_csv(out: TextIO, rows: int, seed: int, bad_share: float = 0.005,
              profile: str | None = None) -> None:
    """Write the header and `rows` rows to `out` (opened with newline="")."""
    writer = csv.writer(out, lineterminator="\n")
    header, shaped = shape(generate(rows, seed, bad_share), profile)
    writer.writerow(header)
    writer.writerows(shaped)


# SUS-shaped extracts (`--profile`): the columns `batch.profiles` reads first, in this order.
SUS_COLUMNS = {
    "sus-apc": ("APCS_Ident", "Provider_Code", "Discharge_Date", "Age_At_Start_of_Spell_SUS",
                "Sex", "Region", "ICB_Code", "Treatment_Function_Code",
                "Spell_Dominant_Procedure", "Der_Procedure_All", "Der_Diagnosis_All"),
    "sus-op": ("OPA_Ident", "Provider_Code", "Appointment_Date", "Age_At_Appointment", "Sex",
               "Region", "ICB_Code", "Treatment_Function_Code", "Der_Procedure_All",
               "Der_Diagnosis_All"),
}


def sus_row(fields: list[str], profile: str) -> list[str]:
    """One activity row as SUS writes it: codes without dots, lists `||`-delimited.

    A short (spoiled) row stays short. Drugs, facts and attestations have no SUS column here.
    """
    if len(fields) != len(COLUMNS):
        return fields[: len(SUS_COLUMNS[profile]) - 3]
    cell = dict(zip(COLUMNS, fields, strict=True))

    def codes(first: str, rest: str) -> list[str]:
        return [c.replace(".", "") for c in [cell[first], *cell[rest].split("|")] if c]

    procedures = "||".join(codes("dominant_procedure", "other_procedures"))
    diagnoses = "||".join(codes("primary_diagnosis", "secondary_diagnoses"))
    if cell["secondary_diagnoses"] and not cell["primary_diagnosis"]:
        diagnoses = "||" + diagnoses  # SUS has no empty primary: the list just starts later
    common = [cell["provider_code"], cell["activity_date"], cell["age"], cell["sex"],
              cell["region"], cell["icb"], cell["treatment_function"]]
    if profile == "sus-apc":
        dominant = cell["dominant_procedure"].replace(".", "")
        return [cell["record_id"], *common, dominant, procedures, diagnoses]
    return [cell["record_id"], *common, procedures, diagnoses]


def shape(rows: Iterator[list[str]], profile: str | None) -> tuple[tuple[str, ...],
                                                                    Iterator[list[str]]]:
    """The header and rows of pss's own layout, or of a SUS profile."""
    if profile is None:
        return COLUMNS, rows
    return SUS_COLUMNS[profile], (sus_row(r, profile) for r in rows)


def write_parquet(path: str, rows: int, seed: int, bad_share: float = 0.005,
                  profile: str | None = None, group: int = 1 << 16) -> None:
    """The same rows as `write_csv`, as Parquet text columns (needs the `arrow` extra).

    A short (spoiled) row has no Parquet form: it is written with its missing cells empty.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    header, shaped = shape(generate(rows, seed, bad_share), profile)
    schema = pa.schema([pa.field(name, pa.string()) for name in header])
    with pq.ParquetWriter(path, schema) as writer:
        chunk: list[list[str]] = []
        for row in shaped:
            chunk.append(row + [""] * (len(header) - len(row)))
            if len(chunk) == group:
                writer.write_batch(_batch(pa, chunk, schema))
                chunk = []
        if chunk or not rows:
            writer.write_batch(_batch(pa, chunk, schema))


def _batch(pa: Any, chunk: list[list[str]], schema: Any) -> Any:
    columns = [pa.array([r[i] for r in chunk], pa.string()) for i in range(len(schema))]
    return pa.RecordBatch.from_arrays(columns, schema=schema)
