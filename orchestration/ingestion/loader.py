"""Exactly-once loading of landing files into ``raw.*`` with row-level quarantine.

Pure Python over a DuckDB connection: no Dagster here, so every rule is testable
on a temp database. The ingestion assets are thin wrappers around
:func:`load_partitions`.

Guarantees (DESIGN.md, landing-zone contract):

- A date partition of a source is replaced as a whole, inside one transaction:
  reloading a date never appends twice, and a crash leaves the previous state.
- A file is loaded once: the ledger ``raw._loaded_files`` keys every file by its
  SHA-256; a partition whose files are unchanged is skipped, and a file whose
  content was already loaded (under any name or date) is not loaded again.
- A bad row is never dropped: it lands in ``quarantine.rejected_rows`` with the
  file, line and reason. A file that cannot be parsed at all raises
  :class:`UnreadableFileError` naming it, and nothing of its partition changes.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orchestration.ingestion.contract import MAX_VALUE_CHARS, SOURCES, Column, Source, file_format

LEDGER_TABLE = "raw._loaded_files"
QUARANTINE_TABLE = "quarantine.rejected_rows"
# A 10 MB line must be readable so that its row can be quarantined with a reason rather than
# failing the whole file; beyond this a file is not a sane export.
MAX_LINE_BYTES = 64 * 1024 * 1024
# Kept per value in the quarantined record, so one absurd field does not bloat the table;
# the landing file itself is never touched and the file + line point at the full row.
QUARANTINE_VALUE_CHARS = 1_000
METADATA_COLUMNS = {
    "_partition_date": "DATE",
    "_source_file": "VARCHAR",
    "_file_sha256": "VARCHAR",
    "_record_number": "BIGINT",
    "_line_number": "BIGINT",
    "_loaded_at": "TIMESTAMP",
    "_run_id": "VARCHAR",
}
STORAGE_TYPES = {
    "text": "VARCHAR",
    "email": "VARCHAR",
    "phone": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "money": "DECIMAL(18, 4)",
    "number": "DECIMAL(18, 4)",
    "integer": "BIGINT",
    "boolean": "BOOLEAN",
}
EMAIL_PATTERN = r"[^@\s]+@[^@\s]+\.[^@\s]+"
PHONE_PATTERN = r"[0-9+().\s-]+"
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class UnreadableFileError(Exception):
    """A landing file that cannot be parsed at all; nothing of its partition is loaded."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class LandedFile:
    source: str
    partition_date: dt.date
    path: Path
    relative_path: str
    sha256: str
    size_bytes: int


@dataclass
class PartitionResult:
    """What happened to one (source, date) partition; becomes asset metadata."""

    source: str
    partition_date: dt.date
    status: str  # loaded | unchanged | failed | empty
    files_loaded: int = 0
    files_skipped_duplicate: list[str] = field(default_factory=list)
    rows_loaded: int = 0
    rows_quarantined: int = 0
    quarantine_reasons: Counter[str] = field(default_factory=Counter)
    error: str | None = None


# ---------------------------------------------------------------- discovery


def sha256_of(path: Path, chunk_bytes: int = 4 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def partition_dates(landing_dir: Path | str, source: str | None = None) -> list[dt.date]:
    """Every ``YYYY-MM-DD`` folder under one source (or any source), sorted."""
    root = Path(landing_dir)
    sources = [source] if source else list(SOURCES)
    dates: set[dt.date] = set()
    for name in sources:
        source_dir = root / name
        if not source_dir.is_dir():
            continue
        for child in source_dir.iterdir():
            if child.is_dir() and _DATE_DIR.match(child.name):
                try:
                    dates.add(dt.date.fromisoformat(child.name))
                except ValueError:
                    continue
    return sorted(dates)


def partition_files(landing_dir: Path | str, source: str, partition_date: dt.date) -> list[Path]:
    """Data files of one partition, in name order; hidden and temporary files are ignored
    because exporters write ``.part``/``.tmp`` files and rename them when complete."""
    folder = Path(landing_dir) / source / partition_date.isoformat()
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith((".", "_")) and file_format(p.name) is not None
    )


def describe_files(
    landing_dir: Path | str, source: str, partition_date: dt.date
) -> list[LandedFile]:
    root = Path(landing_dir)
    return [
        LandedFile(
            source=source,
            partition_date=partition_date,
            path=p,
            relative_path=p.relative_to(root).as_posix(),
            sha256=sha256_of(p),
            size_bytes=p.stat().st_size,
        )
        for p in partition_files(root, source, partition_date)
    ]


# ---------------------------------------------------------------- warehouse objects


def ensure_tables(con: duckdb.DuckDBPyConnection, source: Source) -> None:
    con.execute("create schema if not exists raw")
    con.execute("create schema if not exists quarantine")
    con.execute(
        f"""
        create table if not exists {LEDGER_TABLE} (
            source varchar not null,
            partition_date date not null,
            file_path varchar not null,
            file_sha256 varchar not null,
            size_bytes bigint,
            rows_loaded bigint,
            rows_quarantined bigint,
            loaded_at timestamp,
            run_id varchar,
            -- the same content is loaded once per source, whatever its name or date folder
            primary key (source, file_sha256)
        )
        """
    )
    con.execute(
        f"""
        create table if not exists {QUARANTINE_TABLE} (
            source varchar not null,
            partition_date date not null,
            source_file varchar not null,
            file_sha256 varchar,
            line_number bigint,
            record_number bigint,
            reason varchar not null,
            detail varchar,
            record varchar,
            loaded_at timestamp,
            run_id varchar
        )
        """
    )
    columns = [f'"{c.name}" {STORAGE_TYPES[c.type]}' for c in source.columns]
    columns += [f"{name} {sql_type}" for name, sql_type in METADATA_COLUMNS.items()]
    con.execute(f"create table if not exists raw.{source.name} ({', '.join(columns)})")


def _table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    # Temp tables live in the "temp" database; persistent ones in the current one.
    database = "temp" if schema == "temp" else None
    rows = con.execute(
        "select column_name from duckdb_columns() "
        "where table_name = ? and (database_name = ? or (? is null and schema_name = ? "
        "and database_name = current_database())) order by column_index",
        [table, database, database, schema],
    ).fetchall()
    return [r[0] for r in rows]


# ---------------------------------------------------------------- reading one file


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _clean_header(name: str) -> str:
    """Header names are matched case-insensitively and unknown ones kept as snake_case."""
    cleaned = re.sub(r"[^0-9a-zA-Z_]+", "_", name.strip().lstrip("\ufeff")).strip("_").lower()
    return cleaned or "unnamed"


def _check_gzip(path: Path) -> None:
    # DuckDB reports a truncated gzip stream only sometimes; reading it through is cheap
    # next to the load and turns a half-loaded file into a clear file-level error.
    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(8 * 1024 * 1024):
                pass
    except (OSError, EOFError) as exc:
        raise UnreadableFileError(path, f"corrupt or truncated gzip stream ({exc})") from exc


Malformed = list[tuple[int, str, str, str | None]]  # (line, reason, detail, record)


def _columns_of(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [d[0] for d in con.execute(f"select * from {table} limit 0").description]


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path, target: str) -> Malformed:
    if path.name.lower().endswith(".gz"):
        _check_gzip(path)
    rejects = f"_rejects_{uuid.uuid4().hex[:8]}"
    try:
        con.execute(
            f"""
            create temp table {target} as
            select *, row_number() over () as _record_number, row_number() over () + 1 as _line_number
            from read_csv(?, header = true, delim = ',', quote = '"', escape = '"',
                          all_varchar = true, store_rejects = true,
                          rejects_table = '{rejects}', rejects_scan = '{rejects}_scan',
                          max_line_size = {MAX_LINE_BYTES}, encoding = 'utf-8')
            """,
            [str(path)],
        )
        # DuckDB can log several errors for one line (a line short by three columns gives three
        # MISSING COLUMNS entries); one line is one quarantined row, with its first error.
        rejected = con.execute(
            f"select distinct on (line) line, error_type, error_message, csv_line from {rejects} "
            "order by line, byte_position"
        ).fetchall()
        con.execute(f"drop table if exists {rejects}; drop table if exists {rejects}_scan")
    except duckdb.Error as exc:
        raise UnreadableFileError(path, _short_error(exc)) from exc
    headers = [c for c in _columns_of(con, target) if c not in ("_record_number", "_line_number")]
    if headers == ["column0"] and con.execute(f"select count(*) from {target}").fetchone()[0] == 0:
        raise UnreadableFileError(path, "file is empty (no header row)")
    _rename_headers(con, path, target, headers)
    if not rejected:
        return []
    # Physical line of each record: header is line 1 and rejected lines are skipped by
    # the reader, so the k-th kept record sits on the k-th line that was not rejected.
    # (Exact unless a quoted field spans lines or blank lines are skipped.)
    reject_lines = [r[0] for r in rejected]
    valid_rows = con.execute(f"select count(*) from {target}").fetchone()[0]
    con.execute(
        f"""
        update {target} set _line_number = kept.line
        from (
            select line, row_number() over (order by line) as k
            from range(2, {valid_rows + len(reject_lines) + 2}) as r(line)
            where line not in (select unnest(?::bigint[]))
        ) as kept
        where {target}._record_number = kept.k
        """,
        [reject_lines],
    )
    return [
        (line, "malformed_row:" + re.sub(r"\W+", "_", str(etype).lower()), message, _truncate(raw))
        for line, etype, message, raw in rejected
    ]


def _read_jsonl(con: duckdb.DuckDBPyConnection, path: Path, target: str) -> Malformed:
    if path.name.lower().endswith(".gz"):
        _check_gzip(path)
    lines = f"{target}_lines"
    try:
        con.execute(
            f"""
            create temp table {lines} as
            select line, row_number() over () as _line_number,
                   coalesce(case when json_valid(line) then json_type(line) = 'OBJECT' end, false) as is_object
            from read_csv(?, columns = {{'line': 'VARCHAR'}}, header = false, delim = '\x1f',
                          quote = '', escape = '', auto_detect = false,
                          max_line_size = {MAX_LINE_BYTES}, encoding = 'utf-8')
            """,
            [str(path)],
        )
    except duckdb.Error as exc:
        raise UnreadableFileError(path, _short_error(exc)) from exc
    try:
        total, parsed = con.execute(
            f"select count(*) filter (where line is not null), count(*) filter (where is_object) from {lines}"
        ).fetchone()
        if total == 0:
            raise UnreadableFileError(path, "file is empty (no JSON lines)")
        if parsed == 0:
            raise UnreadableFileError(path, "no line is a JSON object; is this a JSON Lines file?")
        keys = [
            r[0]
            for r in con.execute(
                f"""select distinct unnest(case when is_object then json_keys(line) end) as k from {lines}
                    where is_object order by k"""
            ).fetchall()
        ]
        select = ", ".join(
            f"json_extract_string(line, {_sql_string('$.' + _json_path_key(k))}) as {_quote(k)}"
            for k in keys
        )
        con.execute(
            f"""
            create temp table {target} as
            select {select}, row_number() over (order by _line_number) as _record_number, _line_number
            from {lines}
            where is_object
            """
        )
        malformed = con.execute(
            f"""
            select _line_number, 'malformed_row:not_a_json_object', 'line is not a JSON object',
                   left(line, {QUARANTINE_VALUE_CHARS})
            from {lines}
            where line is not null and trim(line) <> '' and not is_object
            order by _line_number
            """
        ).fetchall()
    finally:
        _drop(con, lines)
    _rename_headers(con, path, target, keys)
    return malformed


def _read_parquet(con: duckdb.DuckDBPyConnection, path: Path, target: str) -> Malformed:
    try:
        names = [
            r[0]
            for r in con.execute(
                "select name from parquet_schema(?) where num_children is null", [str(path)]
            ).fetchall()
        ]
        casts = ", ".join(f"cast({_quote(n)} as varchar) as {_quote(n)}" for n in names)
        # Parquet has no lines; the row's position in the file (1-based) is the closest thing.
        con.execute(
            f"""
            create temp table {target} as
            select {casts}, row_number() over () as _record_number, row_number() over () as _line_number
            from read_parquet(?)
            """,
            [str(path)],
        )
    except duckdb.Error as exc:
        raise UnreadableFileError(path, _short_error(exc)) from exc
    _rename_headers(con, path, target, names)
    return []


def _rename_headers(
    con: duckdb.DuckDBPyConnection, path: Path, target: str, headers: Sequence[str]
) -> None:
    if len(headers) == 1 and any(sep in headers[0] for sep in (";", "\t", "|")):
        raise UnreadableFileError(
            path,
            f"the header was read as one column {headers[0][:80]!r}: files must be comma-delimited "
            "(found ';', tab or '|' instead)",
        )
    seen: dict[str, str] = {}
    for header in headers:
        cleaned = _clean_header(header)
        if cleaned in seen:
            raise UnreadableFileError(
                path, f"duplicate column {cleaned!r} (headers {seen[cleaned]!r} and {header!r})"
            )
        seen[cleaned] = header
        if cleaned.startswith("_"):
            cleaned = "x" + cleaned
        if cleaned != header:
            con.execute(f"alter table {target} rename column {_quote(header)} to {_quote(cleaned)}")


def read_file(
    con: duckdb.DuckDBPyConnection, source: Source, path: Path, target: str
) -> tuple[list[str], Malformed]:
    """Read one landing file into temp table ``target`` (all values as text, plus
    ``_record_number`` and ``_line_number``). Returns its columns and its structurally
    broken lines; raises :class:`UnreadableFileError` when nothing sensible can be read."""
    if path.stat().st_size == 0:
        raise UnreadableFileError(path, "file is empty (0 bytes)")
    fmt = file_format(path.name)
    try:
        if fmt == "csv":
            malformed = _read_csv(con, path, target)
        elif fmt == "jsonl":
            malformed = _read_jsonl(con, path, target)
        elif fmt == "parquet":
            malformed = _read_parquet(con, path, target)
        else:
            raise UnreadableFileError(
                path, "unsupported file type (expected .csv, .csv.gz, .parquet or .jsonl)"
            )
    except duckdb.Error as exc:
        # Anything DuckDB refuses while reading (a NUL header, say) is a file-level problem.
        raise UnreadableFileError(path, _short_error(exc)) from exc
    columns = [c for c in _columns_of(con, target) if c not in ("_record_number", "_line_number")]
    missing = [name for name in source.required if name not in columns]
    if missing:
        raise UnreadableFileError(
            path,
            f"missing required column(s) {', '.join(missing)} for source {source.name} "
            f"(found: {', '.join(columns) or 'none'})",
        )
    if malformed and con.execute(f"select count(*) from {target}").fetchone()[0] == 0:
        raise UnreadableFileError(
            path,
            f"no line could be parsed ({len(malformed)} malformed); wrong delimiter, encoding or binary content?",
        )
    return columns, malformed


def _drop(con: duckdb.DuckDBPyConnection, *tables: str) -> None:
    for table in tables:
        con.execute(f"drop table if exists {table}")


def _short_error(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:500]


def _truncate(value: str | None) -> str | None:
    return None if value is None else value[:QUARANTINE_VALUE_CHARS]


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _json_path_key(key: str) -> str:
    return '"' + key.replace('"', '\\"') + '"'


# ---------------------------------------------------------------- validation


def _blank_to_null(column: str) -> str:
    return f"nullif(trim({_quote(column)}), '')"


def parse_expression(column: Column) -> str:
    """SQL turning the landed text of ``column`` into its stored type (NULL when it does not parse)."""
    value = _blank_to_null(column.name)
    match column.type:
        case "timestamp":
            return f"(try_cast({value} as timestamptz) at time zone 'UTC')"
        case "date":
            return (
                f"coalesce(try_cast({value} as date), cast(try_cast({value} as timestamp) as date))"
            )
        case "money" | "number":
            return f"try_cast({value} as decimal(18, 4))"
        case "integer":
            return f"case when regexp_full_match({value}, '[+-]?[0-9]+') then try_cast({value} as bigint) end"
        case "boolean":
            return (
                f"case when lower({value}) in {_TRUE} then true "
                f"when lower({value}) in {_FALSE} then false end"
            )
        case _:
            # Text is kept as written; only a blank value becomes NULL. Normalisation is staging's job.
            return f"case when {value} is not null then {_quote(column.name)} end"


def _invalid_condition(column: Column) -> str | None:
    value = _blank_to_null(column.name)
    match column.type:
        case "timestamp" | "date" | "money" | "number" | "integer" | "boolean":
            return f"{value} is not null and ({parse_expression(column)}) is null"
        case "email":
            return f"{value} is not null and not regexp_full_match({value}, '{EMAIL_PATTERN}')"
        case "phone":
            return (
                f"{value} is not null and not (regexp_full_match({value}, '{PHONE_PATTERN}') "
                f"and length(regexp_replace({value}, '[^0-9]', '', 'g')) between 7 and 15)"
            )
        case _:
            return None


_INVALID_LABEL = {
    "timestamp": "invalid_timestamp",
    "date": "invalid_date",
    "money": "invalid_number",
    "number": "invalid_number",
    "integer": "invalid_integer",
    "boolean": "invalid_boolean",
    "email": "invalid_email",
    "phone": "invalid_phone",
}


def reason_expressions(source: Source, present: Sequence[str]) -> list[str]:
    """One SQL expression per rule, each yielding a reason string or NULL."""
    checks: list[str] = []
    for name in present:
        checks.append(
            f"case when length({_quote(name)}) > {MAX_VALUE_CHARS} then 'value_too_long:{name}' end"
        )
    for column in source.columns:
        if column.name not in present:
            continue
        if column.required:
            checks.append(
                f"case when {_blank_to_null(column.name)} is null then 'missing_required_value:{column.name}' end"
            )
        condition = _invalid_condition(column)
        if condition:
            checks.append(
                f"case when {condition} then '{_INVALID_LABEL[column.type]}:{column.name}' end"
            )
    identifiers = [c for c in source.one_of_required if c in present]
    if source.one_of_required:
        if identifiers:
            all_blank = " and ".join(f"{_blank_to_null(c)} is null" for c in identifiers)
            checks.append(f"case when {all_blank} then 'missing_identifier' end")
        else:
            checks.append("'missing_identifier'")
    return checks


# ---------------------------------------------------------------- loading


@dataclass
class _Planned:
    """A partition to (re)load, with the files that will be read."""

    partition_date: dt.date
    files: list[LandedFile]
    result: PartitionResult


def load_partitions(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path | str,
    source_name: str,
    dates: Iterable[dt.date],
    run_id: str = "",
    chunk_bytes: int = 256 * 1024 * 1024,
) -> list[PartitionResult]:
    """Load every given date partition of one source; see the module docstring.

    Partitions are processed in chunks of about ``chunk_bytes`` of files: each chunk is
    validated with one set-based query and committed in one transaction, so a year of daily
    folders costs a few queries per file rather than per row or per rule.

    Unreadable files do not stop the other partitions: their partition is left as it was
    and reported with status ``failed``. Callers decide whether that fails the run.
    """
    source = SOURCES[source_name]
    root = Path(landing_dir)
    con.execute("set TimeZone = 'UTC'")
    # DuckDB's progress bar writes to stderr for long queries: noise in asset logs.
    con.execute("set enable_progress_bar = false")
    ensure_tables(con, source)
    ledger_rows = con.execute(
        f"select partition_date, file_path, file_sha256 from {LEDGER_TABLE} where source = ?",
        [source.name],
    ).fetchall()
    ledger: dict[dt.date, set[tuple[str, str]]] = {}
    sha_dates: dict[str, set[dt.date]] = {}
    for partition_date, path, digest in ledger_rows:
        ledger.setdefault(partition_date, set()).add((path, digest))
        sha_dates.setdefault(digest, set()).add(partition_date)

    results: list[PartitionResult] = []
    planned: list[_Planned] = []
    claimed: set[str] = set()  # content read earlier in this call, under another date
    for partition_date in dates:
        result = PartitionResult(source.name, partition_date, status="unchanged")
        results.append(result)
        files = describe_files(root, source.name, partition_date)
        known = ledger.get(partition_date, set())
        if not files and not known:
            result.status = "empty"
            continue
        # Content already loaded under another name or date is not loaded again: exporters resend.
        to_load: list[LandedFile] = []
        skipped: list[str] = []
        seen_here: set[str] = set()
        for f in files:
            elsewhere = sha_dates.get(f.sha256, set()) - {partition_date}
            if elsewhere or f.sha256 in seen_here or f.sha256 in claimed:
                skipped.append(f.relative_path)
                continue
            seen_here.add(f.sha256)
            to_load.append(f)
        result.files_skipped_duplicate = skipped
        # Unchanged means: the files that would load now are exactly those the ledger holds
        # (resent copies are never in the ledger, so they must not count as a change).
        if known and {(f.relative_path, f.sha256) for f in to_load} == known:
            continue
        claimed |= seen_here
        planned.append(_Planned(partition_date, to_load, result))

    chunk: list[_Planned] = []
    size = 0
    for plan in planned:
        chunk.append(plan)
        size += sum(f.size_bytes for f in plan.files)
        if size >= chunk_bytes or len(chunk) >= 120:
            _load_chunk(con, source, chunk, run_id)
            chunk, size = [], 0
    if chunk:
        _load_chunk(con, source, chunk, run_id)
    return results


def _load_chunk(
    con: duckdb.DuckDBPyConnection, source: Source, chunk: list[_Planned], run_id: str
) -> None:
    batch = f"_batch_{uuid.uuid4().hex[:10]}"
    temp_tables: list[str] = []
    reads: list[tuple[_Planned, LandedFile, str, list[str], Malformed]] = []
    try:
        for plan in chunk:
            plan_reads = []
            try:
                for f in plan.files:
                    target = f"{batch}_{len(temp_tables)}"
                    temp_tables.append(target)
                    columns, malformed = read_file(con, source, f.path, target)
                    plan_reads.append((plan, f, target, columns, malformed))
            except UnreadableFileError as exc:
                plan.result.status = "failed"
                plan.result.error = str(exc)
                plan.result.files_skipped_duplicate = []
                continue
            reads.extend(plan_reads)
        loadable = [p for p in chunk if p.result.status != "failed"]
        if not loadable:
            return
        con.execute("begin transaction")
        try:
            _replace_partitions(con, source, loadable, reads, batch, run_id)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        for plan in loadable:
            plan.result.status = "loaded"
            plan.result.files_loaded = len(plan.files)
    finally:
        _drop(con, *temp_tables, f"{batch}_all", f"{batch}_checked", f"{batch}_malformed")


def _replace_partitions(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    plans: list[_Planned],
    reads: list[tuple[_Planned, LandedFile, str, list[str], Malformed]],
    batch: str,
    run_id: str,
) -> None:
    dates = [p.partition_date for p in plans]
    con.execute(
        f"delete from raw.{source.name} where _partition_date in (select unnest(?::date[]))",
        [dates],
    )
    con.execute(
        f"delete from {QUARANTINE_TABLE} where source = ? and partition_date in (select unnest(?::date[]))",
        [source.name, dates],
    )
    con.execute(
        f"delete from {LEDGER_TABLE} where source = ? and partition_date in (select unnest(?::date[]))",
        [source.name, dates],
    )
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if not reads:
        return
    files = {index: f for index, (_, f, _, _, _) in enumerate(reads)}
    # One table for the whole chunk; _file_index orders files of a date by name, so the first
    # file wins when two files of one date carry the same key.
    union = " union all by name ".join(
        f"select *, {index}::integer as _file_index, ?::date as _partition_date from {target}"
        for index, (_, _, target, _, _) in enumerate(reads)
    )
    con.execute(
        f"create temp table {batch}_all as {union}",
        [plan.partition_date for plan, _, _, _, _ in reads],
    )
    columns = sorted(
        {c for _, _, _, cols, _ in reads for c in cols}, key=lambda c: (source.column(c) is None, c)
    )
    raw_columns = set(_table_columns(con, "raw", source.name))
    for extra in columns:
        if extra not in raw_columns and source.column(extra) is None:
            con.execute(f"alter table raw.{source.name} add column {_quote(extra)} varchar")

    checks = reason_expressions(source, columns)
    key = [k for k in source.key if k in columns]
    has_key = len(key) == len(source.key)
    key_not_null = (
        " and ".join(f"{_blank_to_null(k)} is not null" for k in key) if has_key else "false"
    )
    key_partition = ", ".join(_blank_to_null(k) for k in key) if has_key else "1"
    con.execute(
        f"""
        create temp table {batch}_checked as
        with reasons as (
            select *, list_filter([{", ".join(checks) or "null"}], r -> r is not null) as _reasons
            from {batch}_all
        ),
        ranked as (
            select *,
                case when len(_reasons) = 0 and {key_not_null}
                     then row_number() over (
                        partition by (len(_reasons) = 0 and {key_not_null}), _partition_date, {key_partition}
                        order by _file_index, _record_number)
                end as _key_rank
            from reasons
        )
        select *, case when _key_rank > 1 then ['duplicate_key'] else _reasons end as _final_reasons
        from ranked
        """
    )
    file_table = (
        "(values "
        + ", ".join(f"({i}, ?, ?)" for i in files)
        + ") as f(_file_index, _source_file, _file_sha256)"
    )
    file_params = [v for f in files.values() for v in (f.relative_path, f.sha256)]
    typed = [
        f"{parse_expression(c)} as {_quote(c.name)}" for c in source.columns if c.name in columns
    ]
    extras = [_quote(c) for c in columns if source.column(c) is None]
    con.execute(
        f"""
        insert into raw.{source.name} by name
        select {", ".join(typed + extras)},
               c._partition_date, f._source_file, f._file_sha256, c._record_number, c._line_number,
               ?::timestamp as _loaded_at, ? as _run_id
        from {batch}_checked as c join {file_table} using (_file_index)
        where len(c._final_reasons) = 0
        """,
        [loaded_at, run_id, *file_params],
    )
    record_json = (
        "json_object("
        + ", ".join(
            f"{_sql_string(c)}, left(c.{_quote(c)}, {QUARANTINE_VALUE_CHARS})" for c in columns
        )
        + ")"
    )
    con.execute(
        f"""
        insert into {QUARANTINE_TABLE}
        select ?, c._partition_date, f._source_file, f._file_sha256, c._line_number, c._record_number,
               array_to_string(c._final_reasons, '; '),
               case when c._final_reasons = ['duplicate_key'] then 'same key earlier in this date' end,
               {record_json}::varchar, ?::timestamp, ?
        from {batch}_checked as c join {file_table} using (_file_index)
        where len(c._final_reasons) > 0
        """,
        # Placeholders bind in text order: the select list comes before the file table.
        [source.name, loaded_at, run_id, *file_params],
    )
    malformed_rows = [
        (index, *row) for index, (_, _, _, _, malformed) in enumerate(reads) for row in malformed
    ]
    if malformed_rows:
        con.execute(
            f"create temp table {batch}_malformed (_file_index integer, _line_number bigint, reason varchar, "
            "detail varchar, record varchar)"
        )
        con.executemany(f"insert into {batch}_malformed values (?, ?, ?, ?, ?)", malformed_rows)
        con.execute(
            f"""
            insert into {QUARANTINE_TABLE}
            select ?, d._partition_date, f._source_file, f._file_sha256, m._line_number, null,
                   m.reason, m.detail, m.record, ?::timestamp, ?
            from {batch}_malformed as m
            join {file_table} using (_file_index)
            join (values {", ".join(f"({i}, ?::date)" for i in files)}) as d(_file_index, _partition_date) using (_file_index)
            """,
            [
                source.name,
                loaded_at,
                run_id,
                *file_params,
                *[plan.partition_date for plan, _, _, _, _ in reads],
            ],
        )

    # Per-file and per-partition accounting, for the ledger and the asset metadata.
    per_file = dict.fromkeys(files, (0, 0))
    for index, valid, bad in con.execute(
        f"""select _file_index, count(*) filter (where len(_final_reasons) = 0),
                   count(*) filter (where len(_final_reasons) > 0)
            from {batch}_checked group by _file_index"""
    ).fetchall():
        per_file[index] = (valid, bad)
    for index, (_, _, _, _, malformed) in enumerate(reads):
        valid, bad = per_file[index]
        per_file[index] = (valid, bad + len(malformed))
    reasons_by_file: dict[int, Counter[str]] = {}
    for index, reason, n in con.execute(
        f"""select _file_index, reason, count(*) from (
                select _file_index, unnest(_final_reasons) as reason from {batch}_checked
            ) group by all"""
    ).fetchall():
        reasons_by_file.setdefault(index, Counter())[reason] += n
    for index, (_, _, _, _, malformed) in enumerate(reads):
        for _, reason, _, _ in malformed:
            reasons_by_file.setdefault(index, Counter())[reason] += 1
    for index, (plan, landed, _, _, _) in enumerate(reads):
        valid, bad = per_file[index]
        plan.result.rows_loaded += valid
        plan.result.rows_quarantined += bad
        plan.result.quarantine_reasons.update(reasons_by_file.get(index, Counter()))
        con.execute(
            f"insert into {LEDGER_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                source.name,
                plan.partition_date,
                landed.relative_path,
                landed.sha256,
                landed.size_bytes,
                valid,
                bad,
                loaded_at,
                run_id,
            ],
        )
