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


def describe_files(landing_dir: Path | str, source: str, partition_date: dt.date) -> list[LandedFile]:
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


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path, target: str) -> None:
    if path.name.lower().endswith(".gz"):
        _check_gzip(path)
    rejects = f"_rejects_{uuid.uuid4().hex[:8]}"
    try:
        con.execute(
            f"""
            create temp table {target} as
            select *, row_number() over () as _record_number
            from read_csv(?, header = true, delim = ',', quote = '"', escape = '"',
                          all_varchar = true, store_rejects = true,
                          rejects_table = '{rejects}', rejects_scan = '{rejects}_scan',
                          max_line_size = {MAX_LINE_BYTES}, encoding = 'utf-8')
            """,
            [str(path)],
        )
    except duckdb.Error as exc:
        raise UnreadableFileError(path, _short_error(exc)) from exc
    headers = [c for c in _table_columns(con, "temp", target) if c != "_record_number"]
    if headers == ["column0"] and con.execute(f"select count(*) from {target}").fetchone()[0] == 0:
        _drop(con, rejects, f"{rejects}_scan")
        raise UnreadableFileError(path, "file is empty (no header row)")
    # DuckDB can log several errors for one line (a line short by three columns gives three
    # MISSING COLUMNS entries); one line is one quarantined row, with its first error.
    rejected = con.execute(
        f"select distinct on (line) line, error_type, error_message, csv_line from {rejects} "
        "order by line, byte_position"
    ).fetchall()
    _drop(con, rejects, f"{rejects}_scan")
    _rename_headers(con, path, target, headers)
    valid_rows = con.execute(f"select count(*) from {target}").fetchone()[0]
    # Physical line of each record: header is line 1 and rejected lines are skipped by
    # the reader, so the k-th kept record sits on the k-th line that was not rejected.
    # (Exact unless a quoted field spans lines; then it is the record's ordinal + 1.)
    con.execute(f"alter table {target} add column _line_number bigint")
    if rejected:
        reject_lines = [r[0] for r in rejected]
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
        con.execute(
            f"create temp table {target}_malformed as "
            "select * from (values " + ", ".join(["(?, ?, ?, ?)"] * len(rejected)) + ") "
            "as t(_line_number, reason, detail, record)",
            [
                v
                for line, etype, message, raw in rejected
                for v in (line, "malformed_row:" + re.sub(r"\W+", "_", str(etype).lower()), message, _truncate(raw))
            ],
        )
    else:
        con.execute(f"update {target} set _line_number = _record_number + 1")


def _read_jsonl(con: duckdb.DuckDBPyConnection, path: Path, target: str) -> None:
    if path.name.lower().endswith(".gz"):
        _check_gzip(path)
    lines = f"{target}_lines"
    try:
        con.execute(
            f"""
            create temp table {lines} as
            select line, row_number() over () as _line_number
            from read_csv(?, columns = {{'line': 'VARCHAR'}}, header = false, delim = '\x1f',
                          quote = '', escape = '', auto_detect = false,
                          max_line_size = {MAX_LINE_BYTES}, encoding = 'utf-8')
            """,
            [str(path)],
        )
    except duckdb.Error as exc:
        raise UnreadableFileError(path, _short_error(exc)) from exc
    is_object = "coalesce(case when json_valid(line) then json_type(line) = 'OBJECT' end, false)"
    total, parsed = con.execute(
        f"""select count(*) filter (where line is not null),
                   count(*) filter (where {is_object})
            from {lines}"""
    ).fetchone()
    if total == 0:
        raise UnreadableFileError(path, "file is empty (no JSON lines)")
    if parsed == 0:
        raise UnreadableFileError(path, "no line is a JSON object; is this a JSON Lines file?")
    keys = [
        r[0]
        for r in con.execute(
            f"""select distinct unnest(case when {is_object} then json_keys(line) end) as k from {lines}
                where {is_object} order by k"""
        ).fetchall()
    ]
    select = ", ".join(
        f"json_extract_string(line, {_sql_string('$.' + _json_path_key(k))}) as {_quote(k)}" for k in keys
    )
    con.execute(
        f"""
        create temp table {target} as
        select {select}, row_number() over (order by _line_number) as _record_number, _line_number
        from {lines}
        where {is_object}
        """
    )
    con.execute(
        f"""
        create temp table {target}_malformed as
        select _line_number, 'malformed_row:not_a_json_object' as reason,
               'line is not a JSON object' as detail, left(line, {QUARANTINE_VALUE_CHARS}) as record
        from {lines}
        where line is not null and trim(line) <> ''
          and not {is_object}
        """
    )
    _drop(con, lines)
    _rename_headers(con, path, target, keys)


def _read_parquet(con: duckdb.DuckDBPyConnection, path: Path, target: str) -> None:
    try:
        names = [
            r[0] for r in con.execute("select name from parquet_schema(?) where num_children is null", [str(path)]).fetchall()
        ]
        casts = ", ".join(f"cast({_quote(n)} as varchar) as {_quote(n)}" for n in names)
        con.execute(
            f"""
            create temp table {target} as
            select {casts}, row_number() over () as _record_number
            from read_parquet(?)
            """,
            [str(path)],
        )
    except duckdb.Error as exc:
        raise UnreadableFileError(path, _short_error(exc)) from exc
    con.execute(f"alter table {target} add column _line_number bigint")
    # Parquet has no lines; the row's position in the file (1-based) is the closest thing.
    con.execute(f"update {target} set _line_number = _record_number")
    _rename_headers(con, path, target, names)


def _rename_headers(con: duckdb.DuckDBPyConnection, path: Path, target: str, headers: Sequence[str]) -> None:
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
            raise UnreadableFileError(path, f"duplicate column {cleaned!r} (headers {seen[cleaned]!r} and {header!r})")
        seen[cleaned] = header
        if cleaned.startswith("_"):
            cleaned = "x" + cleaned
        if cleaned != header:
            con.execute(f"alter table {target} rename column {_quote(header)} to {_quote(cleaned)}")


def read_file(con: duckdb.DuckDBPyConnection, source: Source, path: Path, target: str) -> list[str]:
    """Read one landing file into temp table ``target`` (all values as text) and a
    ``<target>_malformed`` table of structurally broken lines. Returns its columns."""
    if path.stat().st_size == 0:
        raise UnreadableFileError(path, "file is empty (0 bytes)")
    fmt = file_format(path.name)
    con.execute(f"create temp table {target}_malformed (_line_number bigint, reason varchar, detail varchar, record varchar)")
    if fmt == "csv":
        con.execute(f"drop table {target}_malformed")
        _read_csv(con, path, target)
        if not _table_exists(con, f"{target}_malformed"):
            con.execute(f"create temp table {target}_malformed (_line_number bigint, reason varchar, detail varchar, record varchar)")
    elif fmt == "jsonl":
        con.execute(f"drop table {target}_malformed")
        _read_jsonl(con, path, target)
    elif fmt == "parquet":
        _read_parquet(con, path, target)
    else:
        raise UnreadableFileError(path, "unsupported file type (expected .csv, .csv.gz, .parquet or .jsonl)")
    columns = [c for c in _table_columns(con, "temp", target) if c not in ("_record_number", "_line_number")]
    missing = [name for name in source.required if name not in columns]
    if missing:
        raise UnreadableFileError(
            path,
            f"missing required column(s) {', '.join(missing)} for source {source.name} "
            f"(found: {', '.join(columns) or 'none'})",
        )
    data_rows = con.execute(f"select count(*) from {target}").fetchone()[0]
    malformed_rows = con.execute(f"select count(*) from {target}_malformed").fetchone()[0]
    if malformed_rows and data_rows == 0:
        raise UnreadableFileError(
            path, f"no line could be parsed ({malformed_rows} malformed); wrong delimiter, encoding or binary content?"
        )
    return columns


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = 'main' "
            "and table_catalog = 'temp' and table_name = ?",
            [name],
        ).fetchone()[0]
    )


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
            return f"coalesce(try_cast({value} as date), cast(try_cast({value} as timestamp) as date))"
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
            checks.append(f"case when {_blank_to_null(column.name)} is null then 'missing_required_value:{column.name}' end")
        condition = _invalid_condition(column)
        if condition:
            checks.append(f"case when {condition} then '{_INVALID_LABEL[column.type]}:{column.name}' end")
    identifiers = [c for c in source.one_of_required if c in present]
    if source.one_of_required:
        if identifiers:
            all_blank = " and ".join(f"{_blank_to_null(c)} is null" for c in identifiers)
            checks.append(f"case when {all_blank} then 'missing_identifier' end")
        else:
            checks.append("'missing_identifier'")
    return checks


# ---------------------------------------------------------------- loading


def load_partitions(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path | str,
    source_name: str,
    dates: Iterable[dt.date],
    run_id: str = "",
) -> list[PartitionResult]:
    """Load every given date partition of one source; see the module docstring.

    Unreadable files do not stop the other partitions: their partition is left as it was
    and reported with status ``failed``. Callers decide whether that fails the run.
    """
    source = SOURCES[source_name]
    con.execute("set TimeZone = 'UTC'")
    ensure_tables(con, source)
    results = []
    for partition_date in dates:
        results.append(_load_partition(con, Path(landing_dir), source, partition_date, run_id))
    return results


def _load_partition(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, source: Source, partition_date: dt.date, run_id: str
) -> PartitionResult:
    files = describe_files(landing_dir, source.name, partition_date)
    result = PartitionResult(source.name, partition_date, status="unchanged")
    ledger = {
        (path, digest)
        for path, digest in con.execute(
            f"select file_path, file_sha256 from {LEDGER_TABLE} where source = ? and partition_date = ?",
            [source.name, partition_date],
        ).fetchall()
    }
    if not files and not ledger:
        result.status = "empty"
        return result

    # Content already loaded under another name or date is not loaded again: exporters resend.
    elsewhere = {
        digest
        for (digest,) in con.execute(
            f"select file_sha256 from {LEDGER_TABLE} where source = ? and partition_date <> ?",
            [source.name, partition_date],
        ).fetchall()
    }
    to_load: list[LandedFile] = []
    skipped: list[str] = []
    seen_here: set[str] = set()
    for f in files:
        if f.sha256 in elsewhere or f.sha256 in seen_here:
            skipped.append(f.relative_path)
            continue
        seen_here.add(f.sha256)
        to_load.append(f)
    # Unchanged means: the files that would load now are exactly those the ledger holds
    # (resent copies are never in the ledger, so they must not count as a change).
    if ledger and {(f.relative_path, f.sha256) for f in to_load} == ledger:
        return result
    result.files_skipped_duplicate = skipped

    batch = f"_batch_{uuid.uuid4().hex[:10]}"
    temp_tables: list[str] = []
    try:
        parts: list[tuple[LandedFile, str, list[str]]] = []
        for index, f in enumerate(to_load):
            target = f"{batch}_{index}"
            temp_tables += [target, f"{target}_malformed"]
            try:
                columns = read_file(con, source, f.path, target)
            except duckdb.Error as exc:
                # e.g. a header of NUL bytes that DuckDB cannot rename: still this file's fault,
                # so its partition fails instead of the error escaping and stopping the run.
                raise UnreadableFileError(f.path, _short_error(exc)) from exc
            parts.append((f, target, columns))
        con.execute("begin transaction")
        try:
            _replace_partition(con, source, partition_date, parts, run_id, result)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    except UnreadableFileError as exc:
        result.status = "failed"
        result.error = str(exc)
        return result
    finally:
        _drop(con, *temp_tables, f"{batch}_all")
    result.status = "loaded"
    result.files_loaded = len(parts)
    return result


def _replace_partition(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    partition_date: dt.date,
    parts: list[tuple[LandedFile, str, list[str]]],
    run_id: str,
    result: PartitionResult,
) -> None:
    con.execute(f"delete from raw.{source.name} where _partition_date = ?", [partition_date])
    con.execute(
        f"delete from {QUARANTINE_TABLE} where source = ? and partition_date = ?", [source.name, partition_date]
    )
    con.execute(f"delete from {LEDGER_TABLE} where source = ? and partition_date = ?", [source.name, partition_date])
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    raw_columns = set(_table_columns(con, "raw", source.name))
    for landed, target, columns in parts:
        for extra in columns:
            if extra not in raw_columns and source.column(extra) is None:
                con.execute(f"alter table raw.{source.name} add column {_quote(extra)} varchar")
                raw_columns.add(extra)
        counts = _load_one_file(con, source, partition_date, landed, target, columns, run_id, loaded_at)
        result.rows_loaded += counts[0]
        result.rows_quarantined += counts[1]
        result.quarantine_reasons.update(counts[2])
        con.execute(
            f"insert into {LEDGER_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                source.name,
                partition_date,
                landed.relative_path,
                landed.sha256,
                landed.size_bytes,
                counts[0],
                counts[1],
                loaded_at,
                run_id,
            ],
        )
    _quarantine_cross_file_duplicates(con, source, partition_date, result)


def _load_one_file(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    partition_date: dt.date,
    landed: LandedFile,
    target: str,
    columns: list[str],
    run_id: str,
    loaded_at: dt.datetime,
) -> tuple[int, int, Counter[str]]:
    checks = reason_expressions(source, columns)
    key = [k for k in source.key if k in columns]
    has_key = len(key) == len(source.key)
    key_not_null = " and ".join(f"{_blank_to_null(k)} is not null" for k in key) if has_key else "false"
    key_partition = ", ".join(_blank_to_null(k) for k in key) if has_key else "1"
    typed = [
        f"{parse_expression(c)} as {_quote(c.name)}" for c in source.columns if c.name in columns
    ]
    extras = [_quote(c) for c in columns if source.column(c) is None]
    record_json = "json_object(" + ", ".join(
        f"{_sql_string(c)}, left({_quote(c)}, {QUARANTINE_VALUE_CHARS})" for c in columns
    ) + ")"
    checked = f"{target}_checked"
    con.execute(
        f"""
        create temp table {checked} as
        with reasons as (
            select *, list_filter([{', '.join(checks) or 'null'}], r -> r is not null) as _reasons
            from {target}
        ),
        ranked as (
            select *,
                case when len(_reasons) = 0 and {key_not_null}
                     then row_number() over (partition by (len(_reasons) = 0 and {key_not_null}), {key_partition}
                                             order by _record_number)
                end as _key_rank
            from reasons
        )
        select *,
            case when _key_rank > 1 then ['duplicate_key'] else _reasons end as _final_reasons
        from ranked
        """
    )
    try:
        metadata_values = [partition_date, landed.relative_path, landed.sha256, loaded_at, run_id]
        con.execute(
            f"""
            insert into raw.{source.name} by name
            select {', '.join(typed + extras)},
                   ?::date as _partition_date, ? as _source_file, ? as _file_sha256,
                   _record_number, _line_number, ?::timestamp as _loaded_at, ? as _run_id
            from {checked}
            where len(_final_reasons) = 0
            """,
            metadata_values,
        )
        quarantine_values = [source.name, partition_date, landed.relative_path, landed.sha256]
        con.execute(
            f"""
            insert into {QUARANTINE_TABLE}
            select ?, ?::date, ?, ?, _line_number, _record_number,
                   array_to_string(_final_reasons, '; '), null, {record_json}::varchar, ?::timestamp, ?
            from {checked}
            where len(_final_reasons) > 0
            """,
            [*quarantine_values, loaded_at, run_id],
        )
        con.execute(
            f"""
            insert into {QUARANTINE_TABLE}
            select ?, ?::date, ?, ?, _line_number, null, reason, detail, record, ?::timestamp, ?
            from {target}_malformed
            """,
            [*quarantine_values, loaded_at, run_id],
        )
        reasons = Counter(
            dict(
                con.execute(
                    f"""
                    select reason, count(*) from (
                        select unnest(_final_reasons) as reason from {checked}
                        union all
                        select reason from {target}_malformed
                    ) group by reason
                    """
                ).fetchall()
            )
        )
        valid, bad = con.execute(
            f"select count(*) filter (where len(_final_reasons) = 0), count(*) filter (where len(_final_reasons) > 0) "
            f"from {checked}"
        ).fetchone()
        bad += con.execute(f"select count(*) from {target}_malformed").fetchone()[0]
    finally:
        _drop(con, checked)
    return valid, bad, reasons


def _quarantine_cross_file_duplicates(
    con: duckdb.DuckDBPyConnection, source: Source, partition_date: dt.date, result: PartitionResult
) -> None:
    """Two files of one date may carry the same key (an export split and re-sent with
    overlap). The first file in name order wins; later copies move to quarantine."""
    if not source.key:
        return
    key_columns = ", ".join(_quote(k) for k in source.key)
    key_not_null = " and ".join(f"{_quote(k)} is not null" for k in source.key)
    duplicates = con.execute(
        f"""
        select rowid from (
            select rowid, row_number() over (partition by {key_columns} order by _source_file, _record_number) as rank
            from raw.{source.name}
            where _partition_date = ? and {key_not_null}
        ) where rank > 1
        """,
        [partition_date],
    ).fetchall()
    if not duplicates:
        return
    rowids = [r[0] for r in duplicates]
    con.execute(
        f"""
        insert into {QUARANTINE_TABLE}
        select ?, _partition_date, _source_file, _file_sha256, _line_number, _record_number,
               'duplicate_key', 'same key in an earlier file of this date', to_json(r)::varchar, _loaded_at, _run_id
        from raw.{source.name} as r
        where rowid in (select unnest(?::bigint[]))
        """,
        [source.name, rowids],
    )
    con.execute(f"delete from raw.{source.name} where rowid in (select unnest(?::bigint[]))", [rowids])
    result.rows_loaded -= len(rowids)
    result.rows_quarantined += len(rowids)
    result.quarantine_reasons["duplicate_key"] += len(rowids)
