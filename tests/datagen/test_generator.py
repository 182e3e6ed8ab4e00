"""Tests of the synthetic data generator (datagen).

The defect re-check below is written independently of the generator: it reads the landing
files back and applies the landing-zone rules of DESIGN.md / contract.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datagen import SOURCES, generate
from orchestration.ingestion.contract import SOURCES as CONTRACT

END = dt.date(2025, 12, 31)

TS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:?\d{2})?$"
)
DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"^[\d\s+().\-]+$")
BOOLS = {"true", "false", "t", "f", "yes", "no", "y", "n", "1", "0"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "demo"
    summary = generate(out, customers=10_000, days=365, seed=42, end_date=END)
    return summary


def _read(path: Path) -> pd.DataFrame:
    name = path.name
    if name.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if name.endswith(".parquet"):
        return pd.read_parquet(path).astype(object).where(lambda d: d.notna(), "")
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
    return pd.DataFrame(rows).astype(object).where(lambda d: d.notna(), "")


def _valid_dates(y: pd.Series, m: pd.Series, d: pd.Series) -> pd.Series:
    txt = y.fillna("0000") + "-" + m.fillna("00") + "-" + d.fillna("00")
    return pd.to_datetime(txt, format="%Y-%m-%d", errors="coerce").notna()


def _valid_ts(v: pd.Series) -> pd.Series:
    g = v.str.extract(TS_RE)
    ok = g[0].notna() & _valid_dates(g[0], g[1], g[2])
    hms = g[[3, 4, 5]].fillna("0").astype(int)
    return ok & (hms[3] < 24) & (hms[4] < 60) & (hms[5] < 60)


def _valid(kind: str, v: pd.Series) -> pd.Series:
    """Vectorised landing rules for one logical type (empty values are not checked here)."""
    t = v.str.strip()
    if kind == "timestamp":
        return _valid_ts(v)
    if kind == "date":
        g = v.str.extract(DATE_RE)
        return g[0].notna() & _valid_dates(g[0], g[1], g[2])
    if kind in ("money", "number"):
        return v.str.fullmatch(r"-?\d+(\.\d+)?")
    if kind == "integer":
        return v.str.fullmatch(r"-?\d+")
    if kind == "boolean":
        return t.str.lower().isin(BOOLS)
    if kind == "email":
        return t.str.match(EMAIL_RE)
    if kind == "phone":
        n = t.str.count(r"\d")
        return t.str.match(PHONE_RE) & (n >= 7) & (n <= 15)
    return pd.Series(True, index=v.index)


def _recheck(landing: Path) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Apply the landing rules to every file; {source: {reason: n}} and rows per source."""
    found: dict[str, dict[str, int]] = {}
    rows: dict[str, int] = {}
    for source in SOURCES:
        spec = CONTRACT[source]
        counts: dict[str, int] = {}
        frames = []
        for path in sorted((landing / source).glob("*/*")):
            f = _read(path)
            f["_part"] = path.parent.name
            frames.append(f)
        df = pd.concat(frames, ignore_index=True)
        n_rows = len(df)
        reason = pd.Series("", index=df.index)
        for col in spec.columns:
            if col.name not in df.columns:
                continue
            v = df[col.name].astype(str)
            if col.required:
                reason = reason.mask(
                    (reason == "") & (v == ""), f"missing_required_value:{col.name}"
                )
            if col.type != "text":
                ok = (v == "") | _valid(col.type, v).fillna(False).astype(bool)
                prefix = {
                    "timestamp": "invalid_timestamp",
                    "date": "invalid_date",
                    "money": "invalid_number",
                    "number": "invalid_number",
                    "integer": "invalid_integer",
                    "boolean": "invalid_boolean",
                    "email": "invalid_email",
                    "phone": "invalid_phone",
                }[col.type]
                reason = reason.mask((reason == "") & ~ok, f"{prefix}:{col.name}")
        if spec.one_of_required:
            none = np.logical_and.reduce(
                [df[c].astype(str).str.strip() == "" for c in spec.one_of_required]
            )
            reason = reason.mask((reason == "") & none, "missing_identifier")
        clean = reason == ""
        dup = df[clean].duplicated(subset=["_part", *spec.key], keep="first")
        reason.loc[dup[dup].index] = "duplicate_key"
        for r, k in reason[reason != ""].value_counts().items():
            counts[r] = int(k)
        found[source] = dict(sorted(counts.items()))
        rows[source] = n_rows
    return found, rows


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_deterministic_and_seed_sensitive(tmp_path):
    a = generate(tmp_path / "a", customers=1500, days=60, seed=7, end_date=END, horizon_days=30)
    b = generate(tmp_path / "b", customers=1500, days=60, seed=7, end_date=END, horizon_days=30)
    c = generate(tmp_path / "c", customers=1500, days=60, seed=8, end_date=END, horizon_days=30)
    assert _digest(a.landing_dir) == _digest(b.landing_dir)
    assert _digest(a.truth_dir) == _digest(b.truth_dir)
    assert _digest(a.landing_dir) != _digest(c.landing_dir)
    assert a.rows == b.rows and a.defects == b.defects


def test_layout_and_files(run):
    landing, truth = run.landing_dir, run.truth_dir
    assert not truth.is_relative_to(landing) and not landing.is_relative_to(truth)
    for s in SOURCES:
        parts = sorted(p.name for p in (landing / s).iterdir())
        assert parts, s
        for d in parts:
            dt.date.fromisoformat(d)
            assert run.start_date <= dt.date.fromisoformat(d) <= run.end_date, (s, d)
    exts = {p.name.split(".", 1)[1] for p in landing.rglob("*.*") if p.is_file()}
    assert {"csv", "csv.gz", "parquet", "jsonl"} <= exts
    for f in (
        "persons.parquet",
        "identifiers.parquet",
        "records.parquet",
        "future.parquet",
        "injected_defects.json",
        "manifest.json",
    ):
        assert (truth / f).is_file(), f
    manifest = json.loads((truth / "manifest.json").read_text())
    assert manifest["default_region"] == "CN" and manifest["rows"] == run.rows
    assert len(pd.read_parquet(truth / "persons.parquet")) == 10_000
    # the products file keeps every column as text
    prod = next((landing / "products").glob("*/*.parquet"))
    assert set(pd.read_parquet(prod).dtypes.astype(str)) <= {"object", "str", "string"}
    # date folders hold the rows of that (local or UTC, as written) day
    for s, col in (("online_orders", "ordered_at"), ("pos_transactions", "transacted_at")):
        for p in sorted((landing / s).glob("*/*"))[:20]:
            df = _read(p)
            ok = _valid_ts(df[col])
            assert (df.loc[ok, col].str[:10] == p.parent.name).all()


def test_injected_defects_match_recheck(run):
    found, rows = _recheck(run.landing_dir)
    injected = json.loads((run.truth_dir / "injected_defects.json").read_text())
    assert rows == run.rows
    assert found == injected
    for s in (
        "online_orders",
        "online_order_lines",
        "pos_transactions",
        "pos_lines",
        "accounts",
        "members",
        "web_events",
    ):
        spec = CONTRACT[s]
        expected = {f"missing_required_value:{c}" for c in spec.required} | {"duplicate_key"}
        assert expected <= set(injected[s]), (s, expected - set(injected[s]))
        assert 0.001 < sum(injected[s].values()) / run.rows[s] < 0.01
    assert "missing_identifier" in injected["online_orders"]
    assert {"invalid_email:email", "invalid_phone:phone", "invalid_timestamp:ordered_at"} <= set(
        injected["online_orders"]
    )
    assert "invalid_date:birth_date" in injected["accounts"]
    assert "invalid_boolean:is_return" in injected["pos_transactions"]
    assert "invalid_integer:quantity" in injected["pos_lines"]
    for s in ("products", "stores"):
        assert 1 <= sum(injected[s].values()) <= 2


def test_order_totals_reconcile(run):
    landing = run.landing_dir
    for head, lines, key, total in (
        ("online_orders", "online_order_lines", "order_id", "order_total"),
        ("pos_transactions", "pos_lines", "transaction_id", "total"),
    ):
        h = pd.concat([_read(p) for p in sorted((landing / head).glob("*/*"))]).drop_duplicates()
        li = pd.concat([_read(p) for p in sorted((landing / lines).glob("*/*"))]).drop_duplicates()
        li["amount"] = pd.to_numeric(li["quantity"], errors="coerce") * pd.to_numeric(
            li["unit_price"], errors="coerce"
        )
        sums = li.groupby(key)["amount"].sum(min_count=1)
        h = h[h[key] != ""].set_index(key)
        expect = pd.to_numeric(h[total], errors="coerce") + pd.to_numeric(
            h["discount_total"], errors="coerce"
        )
        diff = (expect - sums.reindex(h.index)).abs()
        ok = (diff < 0.005).mean()
        assert ok > 0.98, (head, ok)
        if head == "pos_transactions":
            ret = h["is_return"] == "true"
            assert ret.sum() > 0
            assert (pd.to_numeric(h.loc[ret, total], errors="coerce").dropna() < 0).all()


def test_identity_structure(run):
    ids = pd.read_parquet(run.truth_dir / "identifiers.parquet")
    persons = pd.read_parquet(run.truth_dir / "persons.parquet").set_index("person_id")
    phones = ids[ids.identifier_type == "phone"].copy()
    phones["digits"] = phones["value"].str.replace(r"\D", "", regex=True).str[-11:]
    # one person, one number, several spellings
    spellings = phones.groupby(["person_id", "digits"])["value"].nunique()
    assert (spellings >= 2).sum() > 300
    omni = persons.index[persons.channel_type == "omni"]
    assert spellings.loc[spellings.index.get_level_values(0).isin(omni)].gt(1).sum() > 200
    # a store placeholder phone typed for many unrelated people
    per_value = phones.groupby("value")["person_id"].nunique()
    assert per_value.max() > 50
    assert "00000000000" in per_value.index or per_value.idxmax().startswith("0")
    # household phones: a few numbers shared by 2-3 persons
    assert ((per_value >= 2) & (per_value <= 4)).sum() > 50
    # emails: case/whitespace variants and typos
    emails = ids[ids.identifier_type == "email"].copy()
    emails["norm"] = emails["value"].str.strip().str.lower()
    assert (emails.groupby(["person_id", "norm"])["value"].nunique() > 1).sum() > 100
    assert (emails.groupby("person_id")["norm"].nunique() > 1).sum() > 20
    # some omni persons share no identifier between their account and member records
    ns = persons.index[persons.shares_no_identifier]
    assert len(ns) > 100
    assert (persons.loc[ns, "channel_type"] == "omni").all()
    recs = pd.read_parquet(run.truth_dir / "records.parquet")
    assert set(recs.source) == {
        "accounts",
        "members",
        "online_orders",
        "pos_transactions",
        "web_events",
    }
    assert recs.loc[recs.source == "web_events", "person_id"].isna().mean() > 0.05


def test_heavy_tail_and_churn_signal(run):
    recs = pd.read_parquet(run.truth_dir / "records.parquet")
    orders = recs[recs.source.isin(["online_orders", "pos_transactions"])]
    per = orders.groupby("person_id").size().sort_values(ascending=False)
    top = per.iloc[: max(1, len(per) // 10)].sum() / per.sum()
    assert top > 0.35, top
    assert (per == 1).mean() > 0.15  # many one-time buyers
    persons = pd.read_parquet(run.truth_dir / "persons.parquet").set_index("person_id")
    fut = pd.read_parquet(run.truth_dir / "future.parquet").set_index("person_id")
    buyers = per.index
    defected = persons.loc[buyers, "defect_day"].notna() & (
        persons.loc[buyers, "defect_day"] <= pd.Timestamp(END).date()
    )
    defected &= ~persons.loc[buyers, "reactivated"]
    p_def = fut.loc[buyers[defected.to_numpy()], "purchased_in_horizon"].mean()
    p_ok = fut.loc[buyers[~defected.to_numpy()], "purchased_in_horizon"].mean()
    assert p_def < 0.6 * p_ok, (p_def, p_ok)
    assert 0.2 < fut.purchased_in_horizon.mean() < 0.8


def test_seasonality_promotions(run):
    counts = {
        p.name: len(_read(next(p.iterdir()))) for p in (run.landing_dir / "online_orders").iterdir()
    }
    s = pd.Series(counts).sort_index()
    assert s["2025-11-11"] > 3 * s.median()
    assert s["2025-06-18"] > 2 * s.median()


def test_no_day_collects_the_future_horizons_web_sessions(run):
    # Browse and anonymous sessions are drawn over the calendar plus the future horizon; the
    # ones after the last landed day must be dropped, not piled onto it.
    counts = pd.Series(
        {
            p.name: sum(len(_read(f)) for f in p.iterdir())
            for p in (run.landing_dir / "web_events").iterdir()
        }
    ).sort_index()
    assert counts.index[-1] == END.isoformat()
    # Promotion days legitimately peak (11.11 is 7x the median); the last day is an ordinary one.
    assert counts.iloc[-1] < 1.5 * counts.iloc[-8:-1].mean(), counts.tail(8)
