"""What the landing sensor should launch, as a pure function of the directory and a cursor."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from orchestration.ingestion.contract import SOURCES
from orchestration.ingestion.loader import partition_dates, partition_files, sha256_of


@dataclass(frozen=True)
class PendingLoad:
    source: str
    first_date: str
    last_date: str
    files: tuple[str, ...]
    run_key: str


def scan(root: Path, cursor: dict[str, list]) -> tuple[dict[str, list], list[PendingLoad]]:
    """Compare the landing directory with ``cursor`` ({relative path: [mtime_ns, size, sha256]}).

    Only files whose mtime or size changed are hashed, so a tick over a year of history is
    cheap. A file counts as new when its *content* has not been seen for that source, so the
    same export dropped twice (renamed, re-copied, touched) launches nothing the second time;
    the run key is derived from content hashes, so even a reset cursor cannot launch it twice.
    """
    next_cursor: dict[str, list] = {}
    known: dict[str, set[str]] = {}
    for rel, (_, _, digest) in cursor.items():
        known.setdefault(rel.split("/", 1)[0], set()).add(digest)
    fresh: dict[str, list[tuple[str, str, str]]] = {}
    for source in SOURCES:
        # The same folders and files the loader reads (hidden and temporary files skipped).
        for partition_date in partition_dates(root, source):
            for path in partition_files(root, source, partition_date):
                rel = path.relative_to(root).as_posix()
                stat = path.stat()
                previous = cursor.get(rel)
                if previous and previous[0] == stat.st_mtime_ns and previous[1] == stat.st_size:
                    next_cursor[rel] = previous
                    continue
                digest = sha256_of(path)
                next_cursor[rel] = [stat.st_mtime_ns, stat.st_size, digest]
                if digest in known.get(source, set()):
                    continue
                known.setdefault(source, set()).add(digest)
                fresh.setdefault(source, []).append((partition_date.isoformat(), rel, digest))
    pending = []
    for source, items in sorted(fresh.items()):
        dates = sorted({d for d, _, _ in items})
        content = hashlib.sha256("\n".join(sorted(d for _, _, d in items)).encode()).hexdigest()[
            :24
        ]
        pending.append(
            PendingLoad(
                source=source,
                first_date=dates[0],
                last_date=dates[-1],
                files=tuple(rel for _, rel, _ in items),
                run_key=f"{source}:{content}",
            )
        )
    return next_cursor, pending
