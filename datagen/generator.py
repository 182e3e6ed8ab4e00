"""Synthetic omni-channel retail data: landing files plus the ground truth behind them.

The model, in short (all vectorised with numpy; loops only over channels, days, years,
sources and small tables):

* ``N`` persons with names, birth dates, cities, a Dirichlet category preference, a price
  band and a channel type (online only / store only / omni-channel).  Omni-channel persons
  appear in the e-commerce system and in the loyalty system under *different* identifiers.
* Purchases are a thinned Poisson process per person: a heavy-tailed (lognormal) base rate,
  times weekly/yearly seasonality and promotion spikes (6-18, 11-11, Black Friday,
  Christmas), times a defection factor (exponential decay or a full stop from a random day,
  sometimes a reactivation).  Birthdays add extra purchases.  The same process runs for
  ``horizon_days`` after the last landed day; those purchases only go to ``truth/future``.
* Web/app sessions precede part of the online orders; browse sessions (with cart
  abandonment) and anonymous visitors add behaviour without purchases.
* A share ``error_rate`` of rows gets exactly one injected defect, counted per reason.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import _vocab as V

GENERATOR_VERSION = "1.0.0"
DEFAULT_REGION = "CN"
COUNTRY_CODE = "+86"
CURRENCY = "CNY"
TZ_OFFSET_S = 8 * 3600  # the shop's local time is UTC+08:00
CHUNK = 50_000  # persons simulated at a time (bounds memory)

# landing file name and format per source
FILES = {
    "online_orders": "orders.csv.gz",
    "online_order_lines": "order_lines.csv.gz",
    "pos_transactions": "pos_transactions.csv",
    "pos_lines": "pos_lines.csv",
    "accounts": "accounts.csv",
    "members": "members.csv",
    "web_events": "events.jsonl",
    "products": "products.parquet",
    "stores": "stores.csv",
}
SOURCES = tuple(FILES)

_STR = pa.string()
_NULL = pa.scalar(None, _STR)


@dataclass(frozen=True)
class GenerationSummary:
    out_dir: Path
    landing_dir: Path
    truth_dir: Path
    start_date: dt.date
    end_date: dt.date
    customers: int
    days: int
    seed: int
    rows: dict[str, int] = field(default_factory=dict)
    defects: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    files: int = 0


# ----------------------------------------------------------------------------- helpers


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *key])))


def _s(values) -> pa.Array:
    """numpy/pyarrow → pyarrow string array."""
    a = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    return a if a.type == _STR else a.cast(_STR)


def _j(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _null_where(arr: pa.Array, mask: np.ndarray) -> pa.Array:
    if not mask.any():
        return arr
    return pc.if_else(pa.array(mask), _NULL, arr)


def _pick(codes: np.ndarray, *variants: pa.Array) -> pa.Array:
    return pc.choose(pa.array(codes.astype(np.int8)), *variants)


def _lut(strings, idx: np.ndarray) -> pa.Array:
    return pa.array(list(strings), _STR).take(pa.array(np.asarray(idx, dtype=np.int64)))


def _money(cents: np.ndarray) -> pa.Array:
    cents = np.asarray(cents, dtype=np.int64)
    a = np.abs(cents)
    whole = _s(a // 100)
    frac = pc.utf8_lpad(_s(a % 100), 2, "0")
    sign = pc.if_else(pa.array(cents < 0), "-", "")
    return _j(sign, whole, ".", frac)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a deterministic, well spread 64-bit hash."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex(x: np.ndarray, width: int = 16) -> pa.Array:
    x = x.astype(np.uint64)
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    nib = ((x[:, None] >> shifts[None, :]) & np.uint64(15)).astype(np.int64)
    chars = np.ascontiguousarray(_HEX[nib])
    return pa.array(chars.view(f"S{width}").ravel()).cast(_STR)


def _scramble(
    idx: np.ndarray, modulus: int, mult: int = 7_654_321, add: int = 1_234_567
) -> np.ndarray:
    """A bijection on [0, modulus) (modulus a power of ten, mult coprime to 10)."""
    return (idx.astype(np.int64) * mult + add) % modulus


def _ascii(name: str) -> str:
    s = unicodedata.normalize("NFKD", name)
    s = "".join(c for c in s if not unicodedata.combining(c))
    return s.replace("ø", "o").replace("Ø", "O").replace("'", "").lower()


# ----------------------------------------------------------------------------- calendar

_EPOCH = dt.date(1970, 1, 1)
_TOD = None


def _tod_lut() -> pa.Array:
    global _TOD
    if _TOD is None:
        s = np.arange(86400)
        _TOD = pa.array(
            [
                f"{h:02d}:{m:02d}:{x:02d}"
                for h, m, x in zip(s // 3600, s // 60 % 60, s % 60, strict=True)
            ],
            _STR,
        )
    return _TOD


class Calendar:
    def __init__(self, start: dt.date, days: int, horizon: int):
        self.start, self.days, self.horizon = start, days, horizon
        self.T = days + horizon
        self.start_epoch = (start - _EPOCH).days
        first = start - dt.timedelta(days=400 * 6)  # date labels for created_at etc.
        self.lut_base = (first - _EPOCH).days
        n = (start - first).days + self.T + 2
        self.lut = pa.array([(first + dt.timedelta(days=i)).isoformat() for i in range(n)], _STR)
        dates = [start + dt.timedelta(days=i) for i in range(self.T)]
        wd = np.array([d.weekday() for d in dates])
        doy = np.array([d.timetuple().tm_yday for d in dates])
        yearly = 1 + 0.12 * np.cos(2 * np.pi * (doy - 355) / 365.25)
        on = np.array([1.0, 0.95, 0.95, 1.0, 1.05, 1.1, 1.15])[wd] * yearly
        st = np.array([0.85, 0.8, 0.85, 0.9, 1.1, 1.45, 1.3])[wd] * yearly
        promo_on, promo_st = np.ones(self.T), np.ones(self.T)
        for i, d in enumerate(dates):
            md = (d.month, d.day)
            if md == (11, 11):
                promo_on[i], promo_st[i] = 7.0, 2.5
            elif md in ((11, 10), (11, 12)):
                promo_on[i], promo_st[i] = 2.0, 1.3
            elif d.month == 11 and d.day < 10:
                promo_on[i] = 1.3
            elif md == (6, 18):
                promo_on[i], promo_st[i] = 4.0, 1.8
            elif d.month == 6 and 15 <= d.day <= 20:
                promo_on[i], promo_st[i] = 1.6, 1.2
            elif d.month == 11 and d.weekday() == 4 and 23 <= d.day <= 29:  # Black Friday
                promo_on[i], promo_st[i] = 3.0, 2.5
            elif d.month == 11 and d.weekday() == 0 and 26 <= d.day <= 30:  # Cyber Monday
                promo_on[i] = 2.0
            elif d.month == 12 and 18 <= d.day <= 24:
                promo_on[i], promo_st[i] = 1.6, 1.6
            elif md == (12, 25):
                promo_st[i] = 0.7
        self.promo = np.maximum(promo_on, promo_st) >= 1.5
        self.is_1111 = np.array([(d.month, d.day) == (11, 11) for d in dates])
        on, st = on * promo_on, st * promo_st
        self.season = [on / on.mean(), st / st.mean()]
        self.cum = [np.cumsum(s) for s in self.season]

    def sample_days(self, rng, ch: int, n: int) -> np.ndarray:
        c = self.cum[ch]
        return np.minimum(np.searchsorted(c, rng.random(n) * c[-1], side="right"), self.T - 1)

    def date_str(self, day_rel: np.ndarray) -> pa.Array:
        return self.lut.take(
            pa.array(np.asarray(day_rel, np.int64) + (self.start_epoch - self.lut_base))
        )

    def ts(self, day_rel: np.ndarray, sec: np.ndarray, style: str) -> pa.Array:
        """Format local (UTC+8) day/second-of-day in a source's timestamp style."""
        day_rel = np.asarray(day_rel, np.int64)
        sec = np.asarray(sec, np.int64)
        if style == "utc_naive":  # 'YYYY-MM-DD HH:MM:SS' in UTC
            t = day_rel * 86400 + sec - TZ_OFFSET_S
            d, s = np.divmod(t, 86400)
            return _j(self.date_str(d), " ", _tod_lut().take(pa.array(s)))
        base = _j(self.date_str(day_rel), "T", _tod_lut().take(pa.array(sec)))
        if style == "local_ms":
            ms = (_mix64(day_rel * 86400 + sec) % np.uint64(1000)).astype(np.int64)
            return _j(base, ".", pc.utf8_lpad(_s(ms), 3, "0"), "+08:00")
        return _j(base, "+08:00")


# ----------------------------------------------------------------------------- catalogue


def _catalogue(rng, n_customers: int, cal: Calendar):
    C = len(V.CATEGORIES)
    P = int(np.clip(round(500 * (n_customers / 10_000) ** 0.65), 3 * C * 2, 12_000))
    n_groups = C * 3
    grp = np.concatenate([np.arange(n_groups), rng.integers(0, n_groups, P - n_groups)])
    cat_w = rng.uniform(0.5, 1.5, C)
    # second half drawn by category weight
    extra = P - n_groups
    cat_extra = rng.choice(C, extra, p=cat_w / cat_w.sum())
    band_extra = rng.choice(3, extra, p=[0.45, 0.40, 0.15])
    grp[n_groups:] = cat_extra * 3 + band_extra
    active = rng.random(P) < 0.95
    active[:n_groups] = True
    order = np.lexsort((rng.random(P), ~active, grp))
    grp, active = grp[order], active[order]
    cat, band = grp // 3, grp % 3
    base = np.array([c[1] for c in V.CATEGORIES], float)[cat]
    price = base * np.array([0.45, 1.0, 2.8])[band] * rng.lognormal(0, 0.35, P)
    cents = np.maximum(np.ceil(price) * 100 - 10, 190).astype(np.int64)
    lo = np.array([c[2] for c in V.CATEGORIES])[cat]
    hi = np.array([c[3] for c in V.CATEGORIES])[cat]
    margin = np.round(rng.uniform(lo, hi), 3)
    counts = np.bincount(grp, minlength=n_groups)
    gstart = np.concatenate([[0], np.cumsum(counts)[:-1]])
    gactive = np.bincount(grp, weights=active, minlength=n_groups).astype(np.int64)
    # a few price changes later in the window
    change_day = np.full(P, 1 << 30)
    if cal.days > 31:
        ch = rng.random(P) < 0.03
        change_day[ch] = rng.integers(30, cal.days, ch.sum())
    new_cents = np.maximum(np.ceil(cents / 100 * rng.uniform(0.8, 1.15, P)) * 100 - 10, 190).astype(
        np.int64
    )
    sku_num = _scramble(np.arange(P), 1_000_000, 7_919, 104_729)
    brand = np.array([rng.integers(0, len(V.BRANDS))] * 0 + list(rng.integers(0, len(V.BRANDS), P)))
    # brands lean to a band: shift brand index by band so premium brands differ
    brand = (brand // 3) * 3 + band
    brand = np.minimum(brand, len(V.BRANDS) - 1)
    noun = np.array(
        [rng.integers(0, len(V.CATEGORIES[c][4])) for c in range(C)]
    )  # per category seed
    noun_idx = (noun[cat] + rng.integers(0, 7, P)) % np.array(
        [len(V.CATEGORIES[c][4]) for c in range(C)]
    )[cat]
    model = rng.integers(10, 990, P)
    names = [
        f"{V.BRANDS[b]} {V.CATEGORIES[c][4][k]} {chr(65 + m % 26)}{m}"
        for b, c, k, m in zip(
            brand.tolist(), cat.tolist(), noun_idx.tolist(), model.tolist(), strict=True
        )
    ]  # P ≤ 12k: a small table
    return SimpleNamespace(
        n=P,
        cat=cat,
        band=band,
        grp=grp,
        cents=cents,
        new_cents=new_cents,
        change_day=change_day,
        margin=margin,
        active=active,
        gstart=gstart,
        gactive=gactive,
        sku=_j("SKU", pc.utf8_lpad(_s(sku_num), 6, "0")),
        brand=brand,
        name=pa.array(names, _STR),
        cat_w=np.bincount(cat, minlength=C) / P,
    )


def _stores(rng, n_customers: int):
    S = int(np.clip(round(20 * (n_customers / 10_000) ** 0.5), 8, 400))
    w = np.array([c[2] for c in V.CITIES], float)
    city = np.concatenate(
        [
            np.arange(min(S, len(V.CITIES))),
            rng.choice(len(V.CITIES), max(S - len(V.CITIES), 0), p=w / w.sum()),
        ]
    )
    city = np.sort(city[:S], kind="stable")
    mall = rng.integers(0, len(V.MALLS), S)
    street = rng.integers(0, len(V.STREETS), S)
    names = [
        f"{V.CITIES[c][0]} {V.STREETS[s]} {V.MALLS[m]}"
        for c, s, m in zip(city.tolist(), street.tolist(), mall.tolist(), strict=True)
    ]
    landline = [
        f"0{V.CITIES[c][4]}-{6000_0000 + int(x):08d}"
        for c, x in zip(city.tolist(), rng.integers(0, 3999_9999, S).tolist(), strict=True)
    ]
    placeholder = np.where(rng.random(S) < 0.5, "00000000000", np.array(landline, dtype=object))
    return SimpleNamespace(n=S, city=city, names=names, placeholder=placeholder.astype(object))


# ----------------------------------------------------------------------------- persons


def _persons(rng, N: int, cal: Calendar, stores, end_date: dt.date):
    C = len(V.CATEGORIES)
    idx = np.arange(N, dtype=np.int64)
    kind = rng.choice(3, N, p=[0.33, 0.30, 0.37])  # 0 online only, 1 store only, 2 omni
    guest = (kind == 0) & (rng.random(N) < 0.12)
    has_account = (kind != 1) & ~guest
    is_member = (kind == 2) | ((kind == 1) & (rng.random(N) < 0.75))
    no_shared = (kind == 2) & (rng.random(N) < 0.12)
    first = rng.integers(0, len(V.FIRST_NAMES), N)
    last = rng.integers(0, len(V.LAST_NAMES), N)
    age_days = ((18 + 62 * rng.beta(2.0, 3.0, N)) * 365.25).astype(np.int64)
    birth = (end_date - _EPOCH).days - age_days  # epoch days
    cw = np.array([c[2] for c in V.CITIES], float)
    city = rng.choice(len(V.CITIES), N, p=cw / cw.sum())
    pc_suffix = rng.integers(0, 80, N) * 10 + rng.integers(0, 2, N)
    street = rng.integers(0, len(V.STREETS), N)
    street_no = rng.integers(1, 999, N)
    suffix = rng.integers(0, len(V.STREET_SUFFIX), N)
    room = rng.integers(1, 33, N) * 100 + rng.integers(1, 12, N)
    band = rng.choice(3, N, p=[0.45, 0.40, 0.15])
    pref = rng.dirichlet(np.full(C, 0.35), N).astype(np.float32)
    cumpref = np.cumsum(pref, axis=1)
    cumpref[:, -1] = 1.0
    # heavy-tailed purchase rate (per day, before seasonality and defection)
    prospect = rng.random(N) < 0.08
    rate = rng.lognormal(np.log(3.1), 1.15, N) / 365.0
    rate[prospect] = 0.0
    online_share = np.where(kind == 0, 1.0, np.where(kind == 1, 0.0, rng.beta(2.0, 2.0, N)))
    pre = rng.random(N) < 0.55
    acq = np.where(pre, -rng.integers(1, 5 * 365, N), rng.integers(0, max(cal.days - 1, 1), N))
    # defection: exponential decay (or a stop) from a random day, sometimes a comeback
    defects = rng.random(N) < 0.32
    ddays = rng.integers(-60, cal.days + cal.horizon // 2, N)
    ddays = np.maximum(ddays, acq + 30)
    defect_day = np.where(defects, ddays, 1 << 30)
    tau = rng.uniform(10, 60, N)
    stop = defects & (rng.random(N) < 0.4)
    stop_lag = rng.exponential(15, N)
    react = defects & (rng.random(N) < 0.15)
    react_day = np.where(react, defect_day + rng.integers(45, 200, N), 1 << 30)
    # household: a few persons share the phone (and address) of the previous person
    household = (rng.random(N) < 0.03) & (idx > 0)
    leader = np.maximum.accumulate(np.where(household, 0, idx))
    last = np.where(household & (rng.random(N) < 0.7), last[leader], last)
    city, pc_suffix, street, street_no, suffix, room = (
        a[leader] for a in (city, pc_suffix, street, street_no, suffix, room)
    )
    prefix = np.array(V.MOBILE_PREFIXES)[rng.integers(0, len(V.MOBILE_PREFIXES), N)]
    phone = prefix * 100_000_000 + _scramble(idx, 100_000_000)
    phone = phone[leader]
    phone2 = np.array(V.MOBILE_PREFIXES)[
        rng.integers(0, len(V.MOBILE_PREFIXES), N)
    ] * 100_000_000 + _scramble(idx + N, 100_000_000, 3_333_331, 77)
    has_phone_acct = has_account & ~no_shared & (rng.random(N) < 0.6)
    # names and emails
    first_s = _lut(V.FIRST_NAMES, first)
    last_s = _lut(V.LAST_NAMES, last)
    fa = _lut([_ascii(x) for x in V.FIRST_NAMES], first)
    la = _lut([_ascii(x) for x in V.LAST_NAMES], last)
    yy = _s((birth // 365 + 1970) % 100)
    yyyy = _s(birth // 365 + 1970)
    nn = _s(rng.integers(1, 99, N))
    fi = pc.utf8_slice_codeunits(fa, 0, 1)
    variants = [
        _j(fa, ".", la),
        _j(fa, la, nn),
        _j(fi, la),
        _j(la, ".", fa, yy),
        _j(fa, "_", la),
        _j(fa, yyyy),
        _j(la, fa, nn),
    ]
    local = _pick(
        rng.choice(len(variants), N, p=[0.25, 0.2, 0.12, 0.12, 0.1, 0.11, 0.1]), *variants
    )
    dom_p = np.array([d[1] for d in V.EMAIL_DOMAINS])
    dom_i = rng.choice(len(V.EMAIL_DOMAINS), N, p=dom_p / dom_p.sum())
    domain = _lut([d[0] for d in V.EMAIL_DOMAINS], dom_i)
    email = _j(local, "@", domain)
    for rnd in range(4):  # make emails unique
        dup = pa.table({"e": email}).to_pandas()["e"].duplicated().to_numpy()
        if not dup.any():
            break
        tag = _s(_scramble(idx, 10 ** (3 + rnd)) if rnd < 3 else idx)
        local = pc.if_else(pa.array(dup), _j(local, tag), local)
        email = _j(local, "@", domain)
    # ~1% have a typo'd second email (swapped letters or a misspelt domain)
    typo = rng.random(N) < 0.01
    swapped = _j(
        pc.utf8_slice_codeunits(local, 1, 2),
        pc.utf8_slice_codeunits(local, 0, 1),
        pc.utf8_slice_codeunits(local, 2, 64),
    )
    dom_typo = pc.replace_substring(
        pc.replace_substring(domain, "gmail", "gmial"), "hotmail", "hotmial"
    )
    use_dom = np.isin(dom_i, [0, 6])
    email2 = pc.if_else(pa.array(use_dom), _j(local, "@", dom_typo), _j(swapped, "@", domain))
    same = pc.equal(email2, email).to_numpy(zero_copy_only=False)
    email2 = pc.if_else(pa.array(same), _j(local, "@", domain, ".cn"), email2)
    email2 = _null_where(email2, ~typo)
    # small name variations for the member record of no-shared-identifier persons
    nv = rng.integers(0, 3, N)
    f_strip = pc.replace_substring_regex(pc.utf8_normalize(first_s, "NFKD"), r"\p{Mn}", "")
    l_strip = pc.replace_substring_regex(pc.utf8_normalize(last_s, "NFKD"), r"\p{Mn}", "")
    f_short = pc.if_else(
        pc.greater(pc.utf8_length(first_s), 4),
        pc.utf8_slice_codeunits(first_s, 0, -1),
        pc.utf8_upper(first_s),
    )
    m_first = _pick(nv, f_strip, first_s, f_short)
    m_last = _pick(nv, l_strip, pc.utf8_upper(last_s), last_s)
    m_first = pc.if_else(pa.array(no_shared), m_first, first_s)
    m_last = pc.if_else(pa.array(no_shared), m_last, last_s)
    # home store: a store in the person's city when there is one
    store_by_city = {c: np.flatnonzero(stores.city == c) for c in range(len(V.CITIES))}
    home = rng.integers(0, stores.n, N)
    r = rng.random(N)
    for c, ss in store_by_city.items():
        if len(ss):
            m = city == c
            home[m] = ss[(r[m] * len(ss)).astype(np.int64)]
    ch_pref = rng.dirichlet([2.0, 2.5, 1.5, 1.0], N)
    return SimpleNamespace(
        N=N,
        idx=idx,
        kind=kind,
        guest=guest,
        has_account=has_account,
        is_member=is_member,
        no_shared=no_shared,
        first=first,
        last=last,
        first_s=first_s,
        last_s=last_s,
        m_first=m_first,
        m_last=m_last,
        birth=birth,
        city=city,
        pc_suffix=pc_suffix,
        street=street,
        street_no=street_no,
        suffix=suffix,
        room=room,
        band=band,
        pref=pref,
        cumpref=cumpref,
        prospect=prospect,
        rate=rate,
        online_share=online_share,
        acq=acq,
        defect_day=defect_day,
        tau=tau,
        stop=stop,
        stop_lag=stop_lag,
        react_day=react_day,
        household=household,
        leader=leader,
        phone=phone,
        phone2=phone2,
        has_phone_acct=has_phone_acct,
        email=email,
        email2=email2,
        typo=typo,
        home=home,
        ch_cum=np.cumsum(ch_pref, axis=1),
        account_id=_j("U", pc.utf8_lpad(_s(_scramble(idx, 1_000_000_000, 48_271, 12_345)), 9, "0")),
        card_id=_j(
            "88", pc.utf8_lpad(_s(_scramble(idx, 10_000_000_000, 69_621, 424_242)), 10, "0")
        ),
    )


def _activity(P, gp: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Purchase propensity multiplier in [0, 1] for person gp on day (defection + acquisition)."""
    d0 = P.defect_day[gp]
    dtd = day - d0
    f = np.where(dtd >= 0, np.exp(-np.maximum(dtd, 0) / P.tau[gp]), 1.0)
    f = np.where(P.stop[gp] & (dtd >= P.stop_lag[gp]), 0.0, f)
    f = np.where(day >= P.react_day[gp], 0.8, f)
    return f * (day >= P.acq[gp])


# ----------------------------------------------------------------------------- simulation

_ONLINE_HOURS = np.array(
    [
        3,
        1.5,
        0.8,
        0.4,
        0.3,
        0.3,
        0.5,
        1,
        1.6,
        2.2,
        3,
        3.4,
        4,
        3.6,
        3.2,
        3.2,
        3.4,
        3.6,
        4,
        4.8,
        6,
        7,
        6.5,
        5,
    ]
)
_STORE_HOURS = np.array([0] * 9 + [2, 4, 5, 7, 6, 5, 5, 6, 7, 8, 7, 5, 3] + [0] * 2, float)


def _seconds(rng, n: int, hours: np.ndarray) -> np.ndarray:
    h = rng.choice(24, n, p=hours / hours.sum())
    return h * 3600 + rng.integers(0, 3600, n)


def _lines_for(rng, P, K, cal, gp_order: np.ndarray, day_order: np.ndarray, mean_extra: float):
    """Order lines: category from the person's preference, product from (category, band)."""
    n_lines = 1 + rng.poisson(mean_extra, len(gp_order))
    line_order = np.repeat(np.arange(len(gp_order)), n_lines)
    gp = gp_order[line_order]
    cats = np.empty(len(line_order), dtype=np.int64)
    u = rng.random(len(line_order)).astype(np.float32)
    step = 200_000
    for a in range(0, len(line_order), step):  # bounded memory for the (lines x categories) compare
        cats[a : a + step] = (P.cumpref[gp[a : a + step]] < u[a : a + step, None]).sum(axis=1)
    cats = np.minimum(cats, len(V.CATEGORIES) - 1)
    band = np.where(rng.random(len(gp)) < 0.75, P.band[gp], rng.integers(0, 3, len(gp)))
    g = cats * 3 + band
    sku = K.gstart[g] + np.minimum(
        (K.gactive[g] * rng.random(len(gp)) ** 2.2).astype(np.int64), K.gactive[g] - 1
    )
    qty = rng.choice([1, 2, 3, 4], len(gp), p=[0.8, 0.13, 0.05, 0.02])
    d = day_order[line_order]
    price = np.where(d >= K.change_day[sku], K.new_cents[sku], K.cents[sku])
    starts = np.concatenate([[0], np.cumsum(n_lines)[:-1]])
    line_no = np.arange(len(line_order)) - starts[line_order] + 1
    sub = (
        np.bincount(line_order, weights=qty * price, minlength=len(gp_order))
        .round()
        .astype(np.int64)
    )
    return SimpleNamespace(
        order=line_order, sku=sku, qty=qty, price=price, line_no=line_no, n=n_lines, start=starts
    ), sub


def _discounts(rng, cal, day, sub):
    p = np.where(cal.promo[day], 0.45, 0.12)
    has = rng.random(len(day)) < p
    pct = rng.choice([5, 10, 15, 20], len(day))
    fixed = rng.choice([1000, 2000, 3000, 5000], len(day))
    disc = np.where(
        rng.random(len(day)) < 0.6, np.round(sub * pct / 100), np.minimum(fixed, sub * 0.3)
    ).astype(np.int64)
    disc = np.where(has, disc, 0)
    code = np.where(has, rng.integers(0, len(V.COUPONS), len(day)), -1)
    return disc, code


def _simulate_chunk(seed, ci, P, K, ST, cal, lo, hi):
    rng = _rng(seed, 1, ci)
    n = hi - lo
    gp_all = np.arange(lo, hi)
    out = {}
    future = np.zeros((n, 3))  # online purchases, store purchases, revenue cents
    # birthdays in the window: extra purchases for some
    bd = np.array(P.birth[lo:hi], dtype="datetime64[D]")
    bm = bd.astype("datetime64[M]")
    mon = (bm - bd.astype("datetime64[Y]").astype("datetime64[M]")).astype(np.int64)
    dom = (bd - bm.astype("datetime64[D]")).astype(np.int64)
    b_days, b_gp = [], []
    end_h = cal.start + dt.timedelta(days=cal.T)
    for y in range(cal.start.year, end_h.year + 1):
        when = (np.datetime64(f"{y}-01", "M") + mon).astype("datetime64[D]") + dom
        rel = (when - np.datetime64(cal.start, "D")).astype(np.int64)
        m = (rel >= -3) & (rel < cal.T) & (P.rate[lo:hi] > 0) & (rng.random(n) < 0.22)
        b_days.append(rel[m] + rng.integers(-7, 3, m.sum()))
        b_gp.append(gp_all[m])
    b_days, b_gp = np.concatenate(b_days), np.concatenate(b_gp)
    b_online = rng.random(len(b_gp)) < P.online_share[b_gp]
    for ch in (0, 1):
        w = P.online_share[lo:hi] if ch == 0 else 1 - P.online_share[lo:hi]
        k = rng.poisson(P.rate[lo:hi] * w * cal.T)
        gp = np.repeat(gp_all, k)
        day = cal.sample_days(rng, ch, len(gp))
        sel = b_online if ch == 0 else ~b_online
        bdd = np.clip(b_days[sel], 0, cal.T - 1)
        gp, day = np.concatenate([gp, b_gp[sel]]), np.concatenate([day, bdd])
        keep = rng.random(len(gp)) < _activity(P, gp, day)
        gp, day = gp[keep], day[keep]
        o = np.lexsort((gp, day))
        gp, day = gp[o], day[o]
        hours = _ONLINE_HOURS if ch == 0 else _STORE_HOURS
        sec = _seconds(rng, len(gp), hours)
        if ch == 0:  # the midnight rush of Singles' Day
            rush = cal.is_1111[day] & (rng.random(len(day)) < 0.25)
            sec = np.where(rush, rng.integers(0, 3600, len(day)), sec)
        lines, sub = _lines_for(rng, P, K, cal, gp, day, 1.45 if ch == 0 else 1.55)
        disc, code = _discounts(rng, cal, day, sub)
        total = sub - disc
        land = day < cal.days
        if ch == 0:
            status = rng.choice(3, len(gp), p=[0.9, 0.05, 0.05])  # completed, cancelled, returned
            counted = status != 1
        else:
            counted = np.ones(len(gp), bool)
        fut = ~land & counted
        np.add.at(future[:, ch], gp[fut] - lo, 1)
        np.add.at(future[:, 2], gp[fut] - lo, total[fut])
        # keep only landed orders (+ their lines)
        li_keep = land[lines.order]
        remap = np.cumsum(land) - 1
        L = SimpleNamespace(
            order=remap[lines.order[li_keep]],
            sku=lines.sku[li_keep],
            qty=lines.qty[li_keep],
            price=lines.price[li_keep],
            line_no=lines.line_no[li_keep],
        )
        gp, day, sec, sub, disc, code, total = (
            a[land] for a in (gp, day, sec, sub, disc, code, total)
        )
        m = len(gp)
        if ch == 0:
            status = status[land]
            u = rng.random(m)
            chn = (P.ch_cum[gp] < u[:, None]).sum(axis=1).clip(0, 3)
            acct = P.has_account[gp]
            email_p = np.where(acct, 0.35, 1.0)
            has_email = rng.random(m) < email_p
            use_typo = P.typo[gp] & (rng.random(m) < 0.5)
            phone_ok = ~P.no_shared[gp] & (P.has_phone_acct[gp] | ~acct)
            has_phone = phone_ok & (rng.random(m) < np.where(acct, 0.2, 0.3))
            dev = np.where(chn == 3, -1, gp * 2 + (rng.random(m) < 0.3))
            out["online"] = SimpleNamespace(
                gp=gp,
                day=day,
                sec=sec,
                sub=sub,
                disc=disc,
                code=code,
                total=total,
                status=status,
                chn=chn,
                acct=acct,
                has_email=has_email,
                use_typo=use_typo,
                has_phone=has_phone,
                dev=dev,
                email_fmt=rng.choice(5, m, p=[0.6, 0.15, 0.05, 0.1, 0.1]),
                phone_fmt=rng.choice([1, 2, 4, 0, 6], m, p=[0.3, 0.25, 0.15, 0.2, 0.1]),
                lines=L,
            )
        else:
            store = np.where(rng.random(m) < 0.85, P.home[gp], rng.integers(0, ST.n, m))
            member = P.is_member[gp]
            card = member & (rng.random(m) < 0.8)
            ph = rng.random(m) < np.where(card, 0.35, np.where(member, 0.5, 0.25))
            placeholder = ~ph & ~card & (rng.random(m) < 0.35)
            phone_kind = np.where(ph, 1, np.where(placeholder, 2, 0))
            is_ret = np.zeros(m, bool)
            # returns: a later receipt in the same store for the first line, negated
            r = (rng.random(m) < 0.03) & (total > 0)
            rdays = day[r] + rng.integers(1, 31, r.sum())
            rk = rdays < cal.days
            ro = np.flatnonzero(r)[rk]
            rdays = rdays[rk]
            first_line = np.searchsorted(L.order, ro)
            nr = len(ro)
            rq = -L.qty[first_line]
            rtot = rq * L.price[first_line]
            base = np.arange(m)
            R = SimpleNamespace(
                order=np.arange(m, m + nr),
                sku=L.sku[first_line],
                qty=rq,
                price=L.price[first_line],
                line_no=np.ones(nr, np.int64),
            )
            cat_ = lambda a, b: np.concatenate([a, b])  # noqa: E731
            src = np.concatenate([base, ro])
            out["store"] = SimpleNamespace(
                gp=gp[src],
                day=cat_(day, rdays),
                sec=cat_(sec, _seconds(rng, nr, _STORE_HOURS)),
                sub=cat_(sub, rtot),
                disc=cat_(disc, np.zeros(nr, np.int64)),
                code=cat_(code, np.full(nr, -1)),
                total=cat_(total, rtot),
                store=store[src],
                card=card[src],
                phone_kind=phone_kind[src],
                is_ret=cat_(is_ret, np.ones(nr, bool)),
                phone_fmt=rng.choice([0, 5, 3, 1], m + nr, p=[0.6, 0.15, 0.15, 0.1]),
                lines=SimpleNamespace(
                    **{
                        k: cat_(getattr(L, k), getattr(R, k))
                        for k in ("order", "sku", "qty", "price", "line_no")
                    }
                ),
            )
    out["events"] = _events_chunk(rng, P, K, cal, lo, hi, out["online"])
    out["future"] = future
    return out


def _events_chunk(rng, P, K, cal, lo, hi, on):
    n = hi - lo
    gp_all = np.arange(lo, hi)
    # 1) sessions before part of the online orders (not marketplace)
    ps = np.flatnonzero((on.chn != 3) & (rng.random(len(on.gp)) < 0.4))
    lines = on.lines
    n_lines = np.bincount(lines.order, minlength=len(on.gp))
    lstart = np.concatenate([[0], np.cumsum(n_lines)[:-1]])
    m2 = np.minimum(n_lines[ps], 2)
    cnt = 1 + m2 + (m2 == 2)  # landing, (view, cart) for line 1, cart for line 2
    # 2) browse sessions without purchase (with cart abandonment), also for prospects
    online_person = P.kind[lo:hi] != 1
    brate = (0.3 * P.rate[lo:hi] * P.online_share[lo:hi] + 0.35 / 365) * online_person
    # Days are drawn over the calendar including the future horizon (cal.T days), so sessions
    # are drawn for all of it and those after the last landed day, which did not happen yet,
    # are dropped. (Clamping them onto the last day instead piled the horizon's browsing onto
    # it: 57x a usual day's web events at 1M.)
    k = rng.poisson(brate * cal.T)
    bgp = np.repeat(gp_all, k)
    bday = cal.sample_days(rng, 0, len(bgp))
    keep = (bday < cal.days) & (
        rng.random(len(bgp)) < np.maximum(_activity(P, bgp, bday), 0.15 * (bday >= P.acq[bgp]))
    )
    bgp, bday = bgp[keep], bday[keep]
    # 3) anonymous visitors
    aday = cal.sample_days(rng, 0, int(rng.binomial(max(len(bgp), 1), 0.25)))
    aday = aday[aday < cal.days]
    na = len(aday)
    agp = np.full(na, -1)
    adev = 2 * P.N + 3 * lo + rng.integers(0, 3 * n, na)
    nb = len(bgp) + na
    views = 1 + rng.poisson(0.7, nb)
    cart = rng.random(nb) < 0.3
    search = rng.random(nb) < 0.2
    bcnt = 1 + search + views + cart
    # sessions table
    s_gp = np.concatenate([on.gp[ps], bgp, agp])
    s_day = np.concatenate([on.day[ps], bday, aday])
    s_cnt = np.concatenate([cnt, bcnt])
    ns = len(s_gp)
    s_purchase = np.zeros(ns, bool)
    s_purchase[: len(ps)] = True
    pref_ch = (
        P.ch_cum[np.maximum(bgp, 0)][:, :3]
        < (rng.random(len(bgp)) * P.ch_cum[np.maximum(bgp, 0)][:, 2])[:, None]
    ).sum(axis=1)
    s_chn = np.concatenate([on.chn[ps], pref_ch.clip(0, 2), rng.choice(3, na, p=[0.6, 0.25, 0.15])])
    s_dev = np.concatenate([on.dev[ps], bgp * 2 + (rng.random(len(bgp)) < 0.3), adev])
    s_dev = np.where(s_dev < 0, np.maximum(s_gp, 0) * 2, s_dev)
    acct = np.where(s_gp >= 0, P.has_account[np.maximum(s_gp, 0)], False)
    s_login = acct & np.where(s_purchase, True, rng.random(ns) < 0.6)
    dur = s_cnt * 45 + 30
    s_start = np.concatenate(
        [
            np.maximum(on.sec[ps] - dur[: len(ps)], 0),
            np.minimum(_seconds(rng, nb, _ONLINE_HOURS), 86400 - 1 - dur[len(ps) :]),
        ]
    )
    s_start = np.maximum(s_start, 0)
    # events
    E = int(s_cnt.sum())
    sess = np.repeat(np.arange(ns), s_cnt)
    starts = np.concatenate([[0], np.cumsum(s_cnt)[:-1]])
    pos = np.arange(E) - starts[sess]
    inc = rng.integers(3, 45, E)
    inc[starts] = 0
    csum = np.cumsum(inc)
    off = csum - csum[starts][sess]
    sec = np.minimum(s_start[sess] + off, 86399)
    # types: 0 page_view 1 product_view 2 cart_add 3 search 4 app_open
    landing = np.where(s_chn[sess] == 1, 4, 0)
    is_p = s_purchase[sess]
    etype = np.where(pos == 0, landing, 0)
    sku = np.full(E, -1, dtype=np.int64)
    # purchase sessions: 1=view line1, 2=cart line1, 3=cart line2
    pi = np.flatnonzero(is_p & (pos > 0))
    o = ps[sess[pi]]
    etype[pi] = np.where(pos[pi] == 1, 1, 2)
    sku[pi] = lines.sku[lstart[o] + (pos[pi] == 3)]
    # browse sessions
    bi = np.flatnonzero(~is_p & (pos > 0))
    bs = sess[bi] - len(ps)
    bpos = pos[bi]
    is_search = search[bs] & (bpos == 1)
    is_cart = cart[bs] & (bpos == bcnt[bs] - 1)
    etype[bi] = np.where(is_search, 3, np.where(is_cart, 2, 1))
    vg = s_gp[sess[bi]]
    # product for views: person's preference, anonymous: catalogue mix
    u = rng.random(len(bi)).astype(np.float32)
    cats = np.empty(len(bi), np.int64)
    known = vg >= 0
    kk = np.flatnonzero(known)
    step = 200_000
    for a in range(0, len(kk), step):
        sl = kk[a : a + step]
        cats[sl] = (P.cumpref[vg[sl]] < u[sl, None]).sum(axis=1)
    cats[~known] = np.searchsorted(np.cumsum(K.cat_w), u[~known] * np.cumsum(K.cat_w)[-1])
    cats = np.minimum(cats, len(V.CATEGORIES) - 1)
    band = np.where(
        known & (rng.random(len(bi)) < 0.7), P.band[np.maximum(vg, 0)], rng.integers(0, 3, len(bi))
    )
    g = cats * 3 + band
    vsku = K.gstart[g] + np.minimum(
        (K.gactive[g] * rng.random(len(bi)) ** 1.8).astype(np.int64), K.gactive[g] - 1
    )
    vsku = np.where(is_search, -1, vsku)
    sku[bi] = vsku
    # a cart add is for the product viewed just before
    ci = bi[is_cart]
    sku[ci] = sku[ci - 1]
    fix = ci[sku[ci] < 0]
    sku[fix] = vsku[np.searchsorted(bi, fix)] if len(fix) else sku[fix]
    return SimpleNamespace(
        gp=s_gp[sess],
        day=s_day[sess],
        sec=sec,
        etype=etype,
        sku=sku,
        dev=s_dev[sess],
        login=s_login[sess],
        chn=s_chn[sess],
        sess=sess,
        lo=lo,
    )


# ----------------------------------------------------------------------------- rendering


def _phone_variants(num: np.ndarray) -> list[pa.Array]:
    s = _s(num)
    a, b, c = (pc.utf8_slice_codeunits(s, i, j) for i, j in ((0, 3), (3, 7), (7, 11)))
    return [
        s,  # 0 13800138000
        _j("+86 ", a, " ", b, " ", c),  # 1 +86 138 0013 8000
        _j("+86", s),  # 2 +8613800138000
        _j(a, "-", b, "-", c),  # 3 138-0013-8000
        _j("(", a, ") ", b, "-", c),  # 4 (138) 0013-8000
        _j(a, " ", b, " ", c),  # 5 138 0013 8000
        _j("+86-", a, "-", b, "-", c),  # 6 +86-138-0013-8000
    ]


def _phone_fmt(num: np.ndarray, fmt: np.ndarray) -> pa.Array:
    return _pick(fmt, *_phone_variants(num))


def _email_fmt(email: pa.Array, fmt: np.ndarray) -> pa.Array:
    # 0 as is, 1 Capitalised, 2 UPPER, 3 surrounding spaces, 4 Title.Case
    return _pick(
        fmt,
        email,
        pc.utf8_capitalize(email),
        pc.utf8_upper(email),
        _j(" ", email, " "),
        pc.utf8_title(email),
    )


def _bool_str(b: np.ndarray, t: str, f: str) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(b, bool)), t, f)


# ----------------------------------------------------------------------------- defects

_BAD = {
    "invalid_timestamp": [
        "2026-13-45 25:00",
        "yesterday",
        "2025-12-31 25:61",
        "2025-02-30T10:00:00",
        "soon",
    ],
    "invalid_date": ["31/31/1990", "1990-02-30", "someday", "1985-13-01"],
    "invalid_integer": ["two", "1.5", "3x"],
    "invalid_boolean": ["maybe", "perhaps", "2"],
    "invalid_phone": ["call me", "12-34", "ask at desk", "555"],
}


def _defect_types(source: str, table: pa.Table) -> list[tuple[str, str]]:
    from orchestration.ingestion.contract import SOURCES as CONTRACT

    src = CONTRACT[source]
    out: list[tuple[str, str]] = []
    rule = {
        "timestamp": "invalid_timestamp",
        "date": "invalid_date",
        "money": "invalid_number",
        "number": "invalid_number",
        "integer": "invalid_integer",
        "boolean": "invalid_boolean",
        "email": "invalid_email",
        "phone": "invalid_phone",
    }
    for c in src.columns:
        if c.name not in table.column_names:
            continue
        if c.required:
            out.append((f"missing_required_value:{c.name}", c.name))
        if c.type in rule:
            out.append((f"{rule[c.type]}:{c.name}", c.name))
    if src.one_of_required:
        out.append(("missing_identifier", ""))
    out.append(("duplicate_key", ""))
    return out


def _corrupt(rng, reason: str, vals: pa.Array) -> pa.Array:
    n = len(vals)
    kind = reason.split(":")[0]
    if kind == "invalid_number":
        alt = pa.array(np.array(["abc", "1.2.3", "12 50", "n-a"])[rng.integers(0, 4, n)])
        return pc.if_else(pa.array(rng.random(n) < 0.6), pc.replace_substring(vals, ".", ","), alt)
    if kind == "invalid_email":
        t = pc.utf8_trim_whitespace(vals)
        v = [
            pc.replace_substring(t, "@", "."),
            pc.replace_substring(t, "@", "@@"),
            pc.replace_substring_regex(t, r"@([^.@]+)\..*$", "@\\1"),
            _j(t, " x"),
        ]
        return _pick(rng.integers(0, 4, n), *v)
    bad = _BAD[kind]
    return pa.array(np.array(bad)[rng.integers(0, len(bad), n)])


def _inject(
    rng, source: str, table: pa.Table, day: np.ndarray, error_rate: float, small: bool = False
):
    """Give rows exactly one defect each. Returns (table, day, defect_mask, counts, src_index)."""
    n = table.num_rows
    counts: dict[str, int] = {}
    mask = np.zeros(n, bool)
    src_index = np.arange(n)
    if error_rate <= 0 or n == 0:
        return table, day, mask, counts, src_index
    types = _defect_types(source, table)
    if (
        small
    ):  # products/stores: at most two rows: the caller's last row gets `small`, row 0 is copied
        reason, col = small
        cols = {name: table.column(name).combine_chunks() for name in table.column_names}
        m = np.zeros(n, bool)
        m[n - 1] = True
        if reason.startswith("missing_required_value"):
            cols[col] = pc.if_else(pa.array(m), _NULL, cols[col])
        else:
            cols[col] = pc.replace_with_mask(
                cols[col], pa.array(m), _corrupt(rng, reason, cols[col].slice(n - 1, 1))
            )
        src_index = np.insert(np.arange(n), 1, 0)
        table = pa.table(cols).take(pa.array(src_index))
        mask = np.zeros(n + 1, bool)
        mask[[1, n]] = True
        return table, day[src_index], mask, {reason: 1, "duplicate_key": 1}, src_index
    total = round(error_rate * n)
    total = max(total, len(types) if n >= 1000 else 1)
    total = min(total, n // 4)
    alloc = np.zeros(len(types), np.int64)
    if total >= len(types):
        alloc += 1
        alloc += rng.multinomial(total - len(types), np.full(len(types), 1 / len(types)))
    else:
        alloc[rng.choice(len(types), total, replace=False)] = 1
    cols = {name: table.column(name).combine_chunks() for name in table.column_names}
    nonnull = {
        name: ~np.asarray(pc.is_null(c).to_numpy(zero_copy_only=False)) for name, c in cols.items()
    }
    used = np.zeros(n, bool)
    dup_src = None
    for (reason, col), k in zip(types, alloc.tolist(), strict=True):
        if k == 0:
            continue
        if reason == "duplicate_key":
            cand = np.flatnonzero(~used)
            pick = np.sort(rng.choice(cand, min(k, len(cand)), replace=False))
            used[pick] = True
            dup_src = pick
            counts[reason] = len(pick)
            continue
        cand = ~used if not col else ~used & nonnull[col]
        if reason == "missing_identifier":
            cand = ~used
        cand = np.flatnonzero(cand)
        if len(cand) == 0:
            continue
        pick = np.sort(rng.choice(cand, min(k, len(cand)), replace=False))
        used[pick] = True
        m = np.zeros(n, bool)
        m[pick] = True
        pm = pa.array(m)
        if reason == "missing_identifier":
            for c in ("account_id", "email", "phone"):
                cols[c] = pc.if_else(pm, _NULL, cols[c])
        elif reason.startswith("missing_required_value"):
            cols[col] = pc.if_else(pm, _NULL, cols[col])
        else:
            vals = _corrupt(rng, reason, cols[col].take(pa.array(pick)))
            cols[col] = pc.replace_with_mask(cols[col], pm, vals)
        counts[reason] = len(pick)
    mask = used.copy()
    table = pa.table(cols)
    if dup_src is not None and len(dup_src):
        mask[dup_src] = False  # the first occurrence is valid
        src_index = np.insert(np.arange(n), dup_src + 1, dup_src)
        table = table.take(pa.array(src_index))
        day = day[src_index]
        newmask = mask[src_index]
        dpos = dup_src + 1 + np.arange(len(dup_src))  # positions of the inserted copies
        newmask[dpos] = True
        mask = newmask
    return table, day, mask, counts, src_index


# ----------------------------------------------------------------------------- writing


class _Writer:
    def __init__(self, landing: Path, cal: Calendar):
        self.landing, self.cal, self.files = landing, cal, 0

    def write(self, source: str, table: pa.Table, day: np.ndarray):
        name = FILES[source]
        order = np.argsort(day, kind="stable")
        if not np.all(order == np.arange(len(day))):
            table, day = table.take(pa.array(order)), day[order]
        uniq, first = np.unique(day, return_index=True)
        bounds = [*first.tolist(), len(day)]
        dates = self.cal.date_str(uniq).to_pylist()
        for i, d in enumerate(dates):
            part = table.slice(bounds[i], bounds[i + 1] - bounds[i])
            folder = self.landing / source / d
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            if name.endswith(".parquet"):
                pq.write_table(part, path, compression="zstd")
            elif name.endswith(".jsonl"):
                path.write_bytes(_jsonl(part))
            else:
                buf = io.BytesIO()
                pacsv.write_csv(part, buf, pacsv.WriteOptions(quoting_style="needed"))
                data = buf.getvalue()
                if name.endswith(".gz"):
                    data = gzip.compress(data, compresslevel=3, mtime=0)
                path.write_bytes(data)
            self.files += 1


def _jsonl(t: pa.Table) -> bytes:
    parts: list = []
    for i, name in enumerate(t.column_names):
        c = t.column(name).combine_chunks()
        v = pc.if_else(pc.is_null(c), "null", _j('"', pc.fill_null(c, ""), '"'))
        parts += [("{" if i == 0 else ",") + f'"{name}":', v]
    parts.append("}\n")
    lines = _j(*parts)
    offs = np.frombuffer(lines.buffers()[1], dtype=np.int32)[
        lines.offset : lines.offset + len(lines) + 1
    ]
    return lines.buffers()[2].to_pybytes()[offs[0] : offs[-1]]


# ----------------------------------------------------------------------------- main


def generate(
    out_dir: str | Path,
    customers: int = 10_000,
    days: int = 365,
    seed: int = 42,
    end_date: dt.date | None = None,
    error_rate: float = 0.002,
    horizon_days: int = 90,
    progress: Callable[[str], None] | None = None,
) -> GenerationSummary:
    """Write ``<out>/landing`` (the nine landing sources) and ``<out>/truth`` (ground truth)."""
    t0 = time.perf_counter()
    say = progress or (lambda _m: None)
    if customers < 1 or days < 1 or horizon_days < 0 or not 0 <= error_rate < 0.5:
        raise ValueError(
            "customers and days must be >= 1, horizon_days >= 0, 0 <= error_rate < 0.5"
        )
    end_date = end_date or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    start_date = end_date - dt.timedelta(days=days - 1)
    out = Path(out_dir)
    landing, truth = out / "landing", out / "truth"
    for d in (landing, truth):
        if d.exists():
            import shutil

            shutil.rmtree(d)
        d.mkdir(parents=True)
    cal = Calendar(start_date, days, horizon_days)
    K = _catalogue(_rng(seed, 0, 1), customers, cal)
    ST = _stores(_rng(seed, 0, 2), customers)
    P = _persons(_rng(seed, 0, 3), customers, cal, ST, end_date)
    P.seed = seed
    say(f"persons: {customers:,}, products: {K.n:,}, stores: {ST.n}")
    chunks = []
    for ci, lo in enumerate(range(0, customers, CHUNK)):
        hi = min(lo + CHUNK, customers)
        chunks.append(_simulate_chunk(seed, ci, P, K, ST, cal, lo, hi))
        say(f"simulated persons {hi:,}/{customers:,}")
    W = _Writer(landing, cal)
    rows: dict[str, int] = {}
    defects: dict[str, dict[str, int]] = {}
    ident: list[pa.Table] = []
    records: list[pa.Table] = []
    drng = _rng(seed, 9, 0)

    def emit(source, table, day, person=None, small=False, id_cols=(), record_col=None):
        table2, day2, bad, counts, src_idx = _inject(drng, source, table, day, error_rate, small)
        W.write(source, table2, day2)
        rows[source] = table2.num_rows
        defects[source] = dict(sorted(counts.items()))
        if person is not None:
            good = ~bad
            pg = person[src_idx][good]
            for typ, col in id_cols:
                v = table2.column(col).combine_chunks().filter(pa.array(good))
                ok = ~np.asarray(pc.is_null(v).to_numpy(zero_copy_only=False)) & (pg >= 0)
                it = pa.table(
                    {
                        "identifier_type": pa.array(np.full(ok.sum(), typ)).cast(_STR),
                        "value": v.filter(pa.array(ok)),
                        "person": pa.array(pg[ok]),
                    }
                )
                ident.append(
                    it.group_by(
                        ["identifier_type", "value", "person"], use_threads=False
                    ).aggregate([])
                )
            if record_col:
                rt = pa.table({"record_id": table[record_col], "person": pa.array(person)})
                if source in ("accounts", "members"):  # several versions of one record
                    rt = rt.group_by(["record_id", "person"], use_threads=False).aggregate([])
                records.append((source, rt))
        say(f"wrote {source}: {table2.num_rows:,} rows")

    _emit_products(emit, K, cal, drng, error_rate)
    _emit_stores(emit, ST, error_rate)
    _emit_people(emit, P, ST, cal, _rng(seed, 3, 0))
    _emit_online(emit, chunks, P, K, cal)
    _emit_store(emit, chunks, P, K, ST, cal)
    _emit_events(emit, chunks, P, K, cal, seed)
    future = np.concatenate([c["future"] for c in chunks])
    del chunks
    _write_truth(truth, P, K, cal, future, ident, records, seed)
    summary_rows = dict(sorted(rows.items()))
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "arguments": {
            "customers": customers,
            "days": days,
            "seed": seed,
            "end_date": end_date.isoformat(),
            "error_rate": error_rate,
            "horizon_days": horizon_days,
        },
        "start_date": start_date.isoformat(),
        "end_date": end_date.isoformat(),
        "horizon_end_date": (end_date + dt.timedelta(days=horizon_days)).isoformat(),
        "timezone": "+08:00",
        "default_region": DEFAULT_REGION,
        "country_code": COUNTRY_CODE,
        "currency": CURRENCY,
        "rows": summary_rows,
        "files": FILES,
        "products": K.n,
        "stores": ST.n,
    }
    (truth / "injected_defects.json").write_text(
        json.dumps(defects, indent=2, sort_keys=True) + "\n"
    )
    (truth / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    secs = time.perf_counter() - t0
    say(f"done in {secs:.1f}s")
    return GenerationSummary(
        out_dir=out,
        landing_dir=landing,
        truth_dir=truth,
        start_date=start_date,
        end_date=end_date,
        customers=customers,
        days=days,
        seed=seed,
        rows=summary_rows,
        defects=defects,
        seconds=secs,
        files=W.files,
    )


# ----------------------------------------------------------------------------- sources


def _pid(person: np.ndarray) -> pa.Array:
    p = np.asarray(person, np.int64)
    s = _j("P", pc.utf8_lpad(_s(np.maximum(p, 0)), 8, "0"))
    return _null_where(s, p < 0)


def _device(dev: np.ndarray, seed: int) -> pa.Array:
    dev = np.asarray(dev, np.int64)
    h = _hex(_mix64(dev.astype(np.uint64) ^ np.uint64(seed * 0x9E37 + 0x51)), 16)
    return _null_where(h, dev < 0)


def _store_id(store: np.ndarray) -> pa.Array:
    return _j("ST", pc.utf8_lpad(_s(np.asarray(store, np.int64) + 1), 4, "0"))


def _emit_products(emit, K, cal, rng, error_rate):
    base_day = np.zeros(K.n, np.int64)
    ch = np.flatnonzero(K.change_day < cal.days)
    idx = np.concatenate([np.arange(K.n), ch])
    day = np.concatenate([base_day, K.change_day[ch]])
    cents = np.concatenate([K.cents, K.new_cents[ch]])
    sec = np.where(day == 0, 6 * 3600, 3 * 3600 + (_mix64(idx) % np.uint64(3600)).astype(np.int64))
    t = pa.table(
        {
            "sku": K.sku.take(pa.array(idx)),
            "name": K.name.take(pa.array(idx)),
            "category": _lut([c[0] for c in V.CATEGORIES], K.cat[idx]),
            "price": _money(cents),
            "brand": _lut(V.BRANDS, K.brand[idx]),
            "is_active": _bool_str(K.active[idx], "true", "false"),
            "updated_at": cal.ts(day, sec, "local"),
            "margin_rate": _s(pa.array(K.margin[idx]).cast(pa.decimal128(6, 3))),
            "price_band": _lut(["budget", "mid", "premium"], K.band[idx]),
        }
    )
    o = np.argsort(day, kind="stable")
    t, day = t.take(pa.array(o)), day[o]
    small = (
        ("invalid_number:price", "price")
        if len(ch)
        else ("invalid_number:margin_rate", "margin_rate")
    )
    emit("products", t, day, small=small if error_rate > 0 else False)


def _emit_stores(emit, ST, error_rate):
    n = ST.n + 1  # the last row is a closed store nobody shops in (its row gets the defect)
    city = np.concatenate([ST.city, ST.city[:1]])
    names = [*ST.names, f"{V.CITIES[int(ST.city[0])][0]} Old Town Outlet (closed)"]
    t = pa.table(
        {
            "store_id": _store_id(np.arange(n)),
            "name": pa.array(names, _STR),
            "city": _lut([c[0] for c in V.CITIES], city),
            "region": _lut([c[1] for c in V.CITIES], city),
        }
    )
    emit(
        "stores",
        t,
        np.zeros(n, np.int64),
        small=("missing_required_value:store_id", "store_id") if error_rate > 0 else False,
    )


def _person_fields(P, gp, rng, cal, p_birth, p_addr, p_pc, p_city, first, last, bool_t, bool_f):
    m = len(gp)
    addr = _j(
        "Room ",
        _s(P.room[gp]),
        ", ",
        _s(P.street_no[gp]),
        " ",
        _lut(V.STREETS, P.street[gp]),
        " ",
        _lut(V.STREET_SUFFIX, P.suffix[gp]),
    )
    postcode = _j(
        _lut([c[3] for c in V.CITIES], P.city[gp]), pc.utf8_lpad(_s(P.pc_suffix[gp]), 3, "0")
    )
    return {
        "first_name": first,
        "last_name": last,
        "birth_date": _null_where(
            pc.strftime(pa.array(P.birth[gp].astype(np.int32), pa.date32()), format="%Y-%m-%d"),
            rng.random(m) >= p_birth,
        ),
        "address_line": _null_where(addr, rng.random(m) >= p_addr),
        "postcode": _null_where(postcode, rng.random(m) >= p_pc),
        "city": _null_where(_lut([c[0] for c in V.CITIES], P.city[gp]), rng.random(m) >= p_city),
        "consent_email": _bool_str(rng.random(m) < 0.7, bool_t, bool_f),
        "consent_sms": _bool_str(rng.random(m) < 0.5, bool_t, bool_f),
        "consent_push": _bool_str(rng.random(m) < 0.4, bool_t, bool_f),
    }


def _emit_people(emit, P, ST, cal, rng):
    # accounts
    gp = np.flatnonzero(P.has_account)
    m = len(gp)
    created = P.acq[gp]
    day = np.maximum(created, 0)
    csec = rng.integers(0, 86400, m)
    usec = np.where(created < 0, rng.integers(0, 86400, m), csec)
    email = _email_fmt(
        P.email.take(pa.array(gp)), rng.choice(5, m, p=[0.8, 0.08, 0.02, 0.06, 0.04])
    )
    phone = _null_where(
        _phone_fmt(P.phone[gp], rng.choice([2, 0, 1], m, p=[0.4, 0.4, 0.2])), ~P.has_phone_acct[gp]
    )
    f = _person_fields(
        P,
        gp,
        rng,
        cal,
        np.where(P.no_shared[gp], 1.0, 0.85),
        0.7,
        np.where(P.no_shared[gp], 1.0, 0.8),
        0.9,
        P.first_s.take(pa.array(gp)),
        P.last_s.take(pa.array(gp)),
        "true",
        "false",
    )
    t = pa.table(
        {
            "account_id": P.account_id.take(pa.array(gp)),
            "updated_at": cal.ts(day, usec, "local"),
            "email": email,
            "phone": phone,
            **f,
            "device_id": _null_where(_device(gp * 2, P.seed), rng.random(m) >= 0.7),
            "created_at": cal.ts(created, csec, "local"),
        }
    )
    can = ~P.no_shared[gp]
    upd = np.flatnonzero((rng.random(m) < 0.08) & (day < cal.days - 1))
    uday = rng.integers(day[upd] + 1, cal.days)
    newp = can[upd] & (rng.random(len(upd)) < 0.5)
    u = _update_rows(
        t, upd, newp, _phone_fmt(P.phone2[gp[upd]], np.full(len(upd), 2)), "true", "false"
    )
    u = u.set_column(
        u.column_names.index("updated_at"),
        "updated_at",
        cal.ts(uday, rng.integers(0, 86400, len(upd)), "local"),
    )
    P.acct_phone2 = gp[upd][newp]
    tt = pa.concat_tables([t, u])
    dd = np.concatenate([day, uday])
    pp = np.concatenate([gp, gp[upd]])
    o = np.argsort(dd, kind="stable")
    emit(
        "accounts",
        tt.take(pa.array(o)),
        dd[o],
        person=pp[o],
        id_cols=(
            ("account_id", "account_id"),
            ("email", "email"),
            ("phone", "phone"),
            ("device_id", "device_id"),
        ),
        record_col="account_id",
    )
    # members
    gp = np.flatnonzero(P.is_member)
    m = len(gp)
    joined = np.where(
        P.acq[gp] < 0,
        P.acq[gp] - rng.integers(0, 300, m),
        np.minimum(P.acq[gp] + rng.integers(0, 60, m), cal.days - 1),
    )
    day = np.maximum(joined, 0)
    jsec = _seconds(rng, m, _STORE_HOURS)
    usec = np.where(joined < 0, _seconds(rng, m, _STORE_HOURS), jsec)
    ns = P.no_shared[gp]
    has_email = ~ns & (rng.random(m) < np.where(P.kind[gp] == 2, 0.5, 0.25))
    em = pc.if_else(pa.array(P.typo[gp]), P.email2.take(pa.array(gp)), P.email.take(pa.array(gp)))
    email = _null_where(_email_fmt(em, rng.choice(5, m, p=[0.5, 0.15, 0.1, 0.15, 0.1])), ~has_email)
    phone = _null_where(
        _phone_fmt(P.phone[gp], rng.choice([0, 5, 3, 1], m, p=[0.5, 0.2, 0.2, 0.1])),
        ~ns & (rng.random(m) >= 0.92),
    )
    f = _person_fields(
        P,
        gp,
        rng,
        cal,
        np.where(ns, 1.0, 0.8),
        0.5,
        np.where(ns, 1.0, 0.9),
        0.95,
        P.m_first.take(pa.array(gp)),
        P.m_last.take(pa.array(gp)),
        "Y",
        "N",
    )
    rq = np.quantile(P.rate[P.rate > 0], [0.6, 0.9]) if (P.rate > 0).any() else np.array([1.0, 2.0])
    tier = np.digitize(P.rate[gp], rq)
    t = pa.table(
        {
            "member_card_id": P.card_id.take(pa.array(gp)),
            "updated_at": cal.ts(day, usec, "utc_naive"),
            "email": email,
            "phone": phone,
            **f,
            "device_id": _null_where(_device(gp * 2 + 1, P.seed), ns | (rng.random(m) >= 0.1)),
            "joined_at": cal.ts(joined, jsec, "utc_naive"),
            "home_store_id": _store_id(P.home[gp]),
            "tier": _lut(["Bronze", "Silver", "Gold"], tier),
        }
    )
    upd = np.flatnonzero((rng.random(m) < 0.06) & (day < cal.days - 1))
    uday = rng.integers(day[upd] + 1, cal.days)
    newp = ~ns[upd] & (rng.random(len(upd)) < 0.5)
    u = _update_rows(t, upd, newp, _phone_fmt(P.phone2[gp[upd]], np.full(len(upd), 0)), "Y", "N")
    u = u.set_column(
        u.column_names.index("updated_at"),
        "updated_at",
        cal.ts(uday, _seconds(rng, len(upd), _STORE_HOURS), "utc_naive"),
    )
    P.member_phone2 = gp[upd][newp]
    tt = pa.concat_tables([t, u])
    dd = np.concatenate([day, uday])
    pp = np.concatenate([gp, gp[upd]])
    o = np.argsort(dd, kind="stable")
    emit(
        "members",
        tt.take(pa.array(o)),
        dd[o],
        person=pp[o],
        id_cols=(
            ("member_card_id", "member_card_id"),
            ("email", "email"),
            ("phone", "phone"),
            ("device_id", "device_id"),
        ),
        record_col="member_card_id",
    )


def _update_rows(
    t: pa.Table, upd: np.ndarray, new_phone: np.ndarray, phone2: pa.Array, bool_t: str, bool_f: str
) -> pa.Table:
    u = t.take(pa.array(upd))
    cols = {c: u.column(c).combine_chunks() for c in u.column_names}
    cols["phone"] = pc.if_else(pa.array(new_phone), phone2, cols["phone"])
    flip = pa.array(~new_phone)
    for c in ("consent_email", "consent_sms"):
        cols[c] = pc.if_else(flip, pc.if_else(pc.equal(cols[c], bool_t), bool_f, bool_t), cols[c])
    return pa.table(cols)


def _concat(chunks, key: str, attrs) -> SimpleNamespace:
    """Concatenate per-chunk order tables; lines' order index made global."""
    parts = [c[key] for c in chunks]
    out = SimpleNamespace(**{a: np.concatenate([getattr(p, a) for p in parts]) for a in attrs})
    offs = np.concatenate([[0], np.cumsum([len(p.gp) for p in parts])[:-1]])
    out.lines = SimpleNamespace(
        order=np.concatenate([p.lines.order + o for p, o in zip(parts, offs, strict=True)]),
        **{
            a: np.concatenate([getattr(p.lines, a) for p in parts])
            for a in ("sku", "qty", "price", "line_no")
        },
    )
    return out


def _sorted_orders(od):
    """Sort orders by time; return the order permutation and lines sorted to follow it."""
    o = np.lexsort((od.gp, od.sec, od.day))
    rank = np.empty(len(o), np.int64)
    rank[o] = np.arange(len(o))
    L = od.lines
    lr = rank[L.order]
    lo = np.lexsort((L.line_no, lr))
    return o, lr[lo], lo


def _emit_online(emit, chunks, P, K, cal):
    od = _concat(
        chunks,
        "online",
        (
            "gp",
            "day",
            "sec",
            "sub",
            "disc",
            "code",
            "total",
            "status",
            "chn",
            "acct",
            "has_email",
            "use_typo",
            "has_phone",
            "dev",
            "email_fmt",
            "phone_fmt",
        ),
    )
    o, lord, lo = _sorted_orders(od)
    for a in list(vars(od)):
        if a != "lines":
            setattr(od, a, getattr(od, a)[o])
    n = len(od.gp)
    ids = _j("SO", pc.utf8_lpad(_s(np.arange(1, n + 1)), 9, "0"))
    gpa = pa.array(od.gp)
    em = pc.if_else(pa.array(od.use_typo & P.typo[od.gp]), P.email2.take(gpa), P.email.take(gpa))
    t = pa.table(
        {
            "order_id": ids,
            "ordered_at": cal.ts(od.day, od.sec, "local"),
            "order_total": _money(od.total),
            "account_id": _null_where(P.account_id.take(gpa), ~od.acct),
            "email": _null_where(_email_fmt(em, od.email_fmt), ~od.has_email),
            "phone": _null_where(_phone_fmt(P.phone[od.gp], od.phone_fmt), ~od.has_phone),
            "status": _lut(["completed", "cancelled", "returned"], od.status),
            "channel": _lut(V.ONLINE_CHANNELS, od.chn),
            "discount_total": _money(od.disc),
            "coupon_code": _null_where(_lut(V.COUPONS, np.maximum(od.code, 0)), od.code < 0),
            "currency": pa.array(np.full(n, CURRENCY)).cast(_STR),
            "region": _lut([c[1] for c in V.CITIES], P.city[od.gp]),
            "device_id": _device(od.dev, P.seed),
        }
    )
    emit(
        "online_orders",
        t,
        od.day,
        person=od.gp,
        id_cols=(
            ("account_id", "account_id"),
            ("email", "email"),
            ("phone", "phone"),
            ("device_id", "device_id"),
        ),
        record_col="order_id",
    )
    L = od.lines
    lt = pa.table(
        {
            "order_id": ids.take(pa.array(lord)),
            "sku": K.sku.take(pa.array(L.sku[lo])),
            "quantity": _s(L.qty[lo]),
            "unit_price": _money(L.price[lo]),
            "line_no": _s(L.line_no[lo]),
        }
    )
    emit("online_order_lines", lt, od.day[lord])


def _emit_store(emit, chunks, P, K, ST, cal):
    od = _concat(
        chunks,
        "store",
        (
            "gp",
            "day",
            "sec",
            "sub",
            "disc",
            "code",
            "total",
            "store",
            "card",
            "phone_kind",
            "is_ret",
            "phone_fmt",
        ),
    )
    o, lord, lo = _sorted_orders(od)
    for a in list(vars(od)):
        if a != "lines":
            setattr(od, a, getattr(od, a)[o])
    n = len(od.gp)
    ids = _j("T", pc.utf8_lpad(_s(np.arange(1, n + 1)), 10, "0"))
    gpa = pa.array(od.gp)
    ph = _phone_fmt(P.phone[od.gp], od.phone_fmt)
    ph = pc.if_else(pa.array(od.phone_kind == 2), pa.array(ST.placeholder[od.store], _STR), ph)
    t = pa.table(
        {
            "transaction_id": ids,
            "store_id": _store_id(od.store),
            "transacted_at": cal.ts(od.day, od.sec, "utc_naive"),
            "total": _money(od.total),
            "member_card_id": _null_where(P.card_id.take(gpa), ~od.card),
            "phone": _null_where(ph, od.phone_kind == 0),
            "discount_total": _money(od.disc),
            "coupon_code": _null_where(_lut(V.COUPONS, np.maximum(od.code, 0)), od.code < 0),
            "is_return": _bool_str(od.is_ret, "true", "false"),
        }
    )
    emit(
        "pos_transactions",
        t,
        od.day,
        person=od.gp,
        id_cols=(("member_card_id", "member_card_id"), ("phone", "phone")),
        record_col="transaction_id",
    )
    L = od.lines
    lt = pa.table(
        {
            "transaction_id": ids.take(pa.array(lord)),
            "sku": K.sku.take(pa.array(L.sku[lo])),
            "quantity": _s(L.qty[lo]),
            "unit_price": _money(L.price[lo]),
            "line_no": _s(L.line_no[lo]),
        }
    )
    emit("pos_lines", lt, od.day[lord])


def _emit_events(emit, chunks, P, K, cal, seed):
    parts = [c["events"] for c in chunks]
    E = SimpleNamespace(
        **{
            a: np.concatenate([getattr(p, a) for p in parts])
            for a in ("gp", "day", "sec", "etype", "sku", "dev", "login", "chn")
        }
    )
    E.skey = np.concatenate([p.sess.astype(np.int64) + (np.int64(p.lo) << 26) for p in parts])
    for p in parts:
        del p.sess
    o = np.lexsort((E.skey, E.sec, E.day))
    for a in list(vars(E)):
        setattr(E, a, getattr(E, a)[o])
    n = len(E.gp)
    gp0 = np.maximum(E.gp, 0)
    t = pa.table(
        {
            "event_id": _j("E", pc.utf8_lpad(_s(np.arange(1, n + 1)), 11, "0")),
            "occurred_at": cal.ts(E.day, E.sec, "local_ms"),
            "event_type": _lut(V.EVENT_TYPES, E.etype),
            "device_id": _device(E.dev, seed),
            "account_id": _null_where(P.account_id.take(pa.array(gp0)), ~E.login),
            "sku": _null_where(K.sku.take(pa.array(np.maximum(E.sku, 0))), E.sku < 0),
            "session_id": _j("s", _hex(_mix64(E.skey.astype(np.uint64) ^ np.uint64(seed)), 12)),
            "channel": _lut(V.ONLINE_CHANNELS, E.chn),
        }
    )
    emit(
        "web_events",
        t,
        E.day,
        person=E.gp,
        id_cols=(("device_id", "device_id"), ("account_id", "account_id")),
        record_col="event_id",
    )


# ----------------------------------------------------------------------------- truth


def _write_truth(truth: Path, P, K, cal, future, ident, records, seed):
    N = P.N
    pid = _pid(P.idx)
    kinds = np.array(["online_only", "store_only", "omni"])
    ddate = pa.array(
        (np.where(P.defect_day < (1 << 29), P.defect_day, 0) + cal.start_epoch).astype(np.int32),
        pa.date32(),
    )
    react = P.react_day < cal.T
    rate_year = P.rate * 365
    q = (
        np.quantile(rate_year[rate_year > 0], [0.5, 0.9])
        if (rate_year > 0).any()
        else np.array([1.0, 2.0])
    )
    segment = np.where(
        rate_year == 0,
        "prospect",
        np.where(rate_year >= q[1], "vip", np.where(rate_year >= q[0], "regular", "occasional")),
    )
    phone_changed = np.zeros(N, bool)
    phone_changed[np.concatenate([P.acct_phone2, P.member_phone2])] = True
    persons = pa.table(
        {
            "person_id": pid,
            "first_name": P.first_s,
            "last_name": P.last_s,
            "birth_date": pa.array(P.birth.astype(np.int32), pa.date32()),
            "city": _lut([c[0] for c in V.CITIES], P.city),
            "postcode": _j(
                _lut([c[3] for c in V.CITIES], P.city), pc.utf8_lpad(_s(P.pc_suffix), 3, "0")
            ),
            "email": P.email,
            "email_typo_variant": P.email2,
            "phone_e164": _j("+86", _s(P.phone)),
            "second_phone_e164": _null_where(_j("+86", _s(P.phone2)), ~phone_changed),
            "channel_type": pa.array(kinds[P.kind]),
            "online_share": pa.array(P.online_share),
            "has_account": pa.array(P.has_account),
            "is_member": pa.array(P.is_member),
            "is_guest": pa.array(P.guest),
            "shares_no_identifier": pa.array(P.no_shared),
            "household_id": _pid(
                np.where(P.household | np.isin(P.idx, P.leader[P.household]), P.leader, -1)
            ),
            "price_band": _lut(["budget", "mid", "premium"], P.band),
            "top_category": _lut([c[0] for c in V.CATEGORIES], P.pref.argmax(axis=1)),
            "segment": pa.array(segment),
            "base_purchases_per_year": pa.array(np.round(rate_year, 3)),
            "acquired_date": pa.array((P.acq + cal.start_epoch).astype(np.int32), pa.date32()),
            "defect_day": pc.if_else(
                pa.array(P.defect_day < (1 << 29)), ddate, pa.scalar(None, pa.date32())
            ),
            "defect_mode": _null_where(
                pa.array(np.where(P.stop, "stop", "decay")), P.defect_day >= (1 << 29)
            ),
            "reactivated": pa.array(react),
            "reactivation_day": pc.if_else(
                pa.array(react),
                pa.array(
                    (np.where(react, P.react_day, 0) + cal.start_epoch).astype(np.int32),
                    pa.date32(),
                ),
                pa.scalar(None, pa.date32()),
            ),
        }
    )
    pq.write_table(persons, truth / "persons.parquet", compression="zstd")
    it = pa.concat_tables(ident)
    it = it.group_by(["identifier_type", "value", "person"], use_threads=False).aggregate([])
    o = pc.sort_indices(
        it, [("identifier_type", "ascending"), ("value", "ascending"), ("person", "ascending")]
    )
    it = it.take(o)
    pq.write_table(
        pa.table(
            {
                "identifier_type": it["identifier_type"],
                "value": it["value"],
                "person_id": _pid(it["person"].to_numpy()),
            }
        ),
        truth / "identifiers.parquet",
        compression="zstd",
    )
    srcs = sorted(records, key=lambda r: r[0])
    with pq.ParquetWriter(
        truth / "records.parquet",
        pa.schema([("source", _STR), ("record_id", _STR), ("person_id", _STR)]),
        compression="zstd",
    ) as w:
        for source, rt in srcs:
            rt = rt.take(pc.sort_indices(rt, [("record_id", "ascending")]))
            w.write_table(
                pa.table(
                    {
                        "source": pa.array(np.full(rt.num_rows, source)).cast(_STR),
                        "record_id": rt["record_id"],
                        "person_id": _pid(rt["person"].to_numpy()),
                    }
                )
            )
    fut = pa.table(
        {
            "person_id": pid,
            "online_purchases": pa.array(future[:, 0].astype(np.int64)),
            "store_purchases": pa.array(future[:, 1].astype(np.int64)),
            "purchases": pa.array((future[:, 0] + future[:, 1]).astype(np.int64)),
            "revenue": pa.array(np.round(future[:, 2] / 100, 2)),
            "purchased_in_horizon": pa.array(future[:, 0] + future[:, 1] > 0),
        }
    )
    pq.write_table(fut, truth / "future.parquet", compression="zstd")
