"""The project's dbt resource: one process per dbt invocation, nothing else spawned first, and
old per-invocation target folders pruned."""

import os
import re
import subprocess
import sys
import time

import pytest

from orchestration.defs.transform.project import (
    DBT_EXECUTABLE,
    DEFAULT_KEEP_TARGETS,
    KEEP_TARGETS_VARIABLE,
    CdpDbtCliResource,
    dbt_resource,
    kept_target_invocations,
    prune_invocation_targets,
)

_spawned: list[list[str]] | None = None


def _record_spawns(event: str, args: tuple) -> None:
    if event == "subprocess.Popen" and _spawned is not None:
        _spawned.append([str(a) for a in args[1]])


sys.addaudithook(_record_spawns)


def test_version_is_the_one_the_dbt_executable_reports():
    resource = dbt_resource()
    assert isinstance(resource, CdpDbtCliResource)
    reported = subprocess.run(
        [DBT_EXECUTABLE, "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert f"installed: {resource._cli_version}" in reported


def test_an_invocation_spawns_only_dbt_itself_and_loads_no_adapter(tmp_path):
    global _spawned
    _spawned = []
    try:
        invocation = dbt_resource().cli(["parse", "--quiet"], target_path=tmp_path / "target")
        invocation.wait()
    finally:
        spawned, _spawned = _spawned, None
    assert invocation.is_successful()
    assert (tmp_path / "target" / "manifest.json").exists()
    # dagster-dbt would otherwise run `dbt --version` first and build an adapter in-process.
    assert [command[1:3] for command in spawned] == [["parse", "--quiet"]], spawned
    assert invocation.adapter is None


def _invocation_folders(directory):
    return sorted(p.name for p in directory.iterdir() if p.is_dir())


def _age(folder, seconds_ago):
    stamp = time.time() - seconds_ago
    for path in [*folder.iterdir(), folder]:
        os.utime(path, (stamp, stamp))


def test_old_invocation_folders_are_pruned_before_each_invocation(tmp_path, monkeypatch):
    target = tmp_path / "target"
    target.mkdir()
    # Seven earlier invocations, one a day; the newest is from one hour ago.
    for day in range(7):
        folder = target / f"dbt_models-{day:07x}-abcdef{day}"
        folder.mkdir()
        (folder / "dbt.log").write_text("{}")
        _age(folder, 3600 * (1 + 24 * day))
    # Not invocation folders: the parse state, the manifest, a parse's scratch folder.
    (target / "partial_parse.msgpack").write_bytes(b"x")
    (target / ".parse-abc123").mkdir()
    _age(target / ".parse-abc123", 10 * 86400)
    monkeypatch.setenv("DBT_TARGET_PATH", str(target))
    monkeypatch.setenv(KEEP_TARGETS_VARIABLE, "3")

    invocation = dbt_resource().cli(["parse", "--quiet"])
    invocation.wait()

    assert invocation.is_successful()
    # The new folder and the two most recent earlier ones.
    assert _invocation_folders(target) == sorted(
        [
            ".parse-abc123",
            invocation.target_path.name,
            "dbt_models-0000000-abcdef0",
            "dbt_models-0000001-abcdef1",
        ]
    )
    assert (target / "partial_parse.msgpack").exists()
    assert (invocation.target_path / "manifest.json").exists()


def test_recently_written_folders_stay_whatever_their_rank(tmp_path):
    for name, seconds_ago in [
        ("a-0000000-0000000", 60),
        ("b-0000000-0000000", 120),
        ("c-0000000-0000000", 7200),
        ("0123abc", 9000),
    ]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "dbt.log").write_text("{}")
        _age(folder, seconds_ago)
    # dbt still appending to an old folder's log keeps it.
    os.utime(tmp_path / "c-0000000-0000000" / "dbt.log")

    deleted = prune_invocation_targets(tmp_path, keep=1)

    assert [p.name for p in deleted] == ["0123abc"]
    assert _invocation_folders(tmp_path) == [
        "a-0000000-0000000",
        "b-0000000-0000000",
        "c-0000000-0000000",
    ]


def test_a_bad_keep_setting_names_the_variable(monkeypatch):
    for bad in ("0", "-2", "ten", "2.5"):
        monkeypatch.setenv(KEEP_TARGETS_VARIABLE, bad)
        with pytest.raises(ValueError, match=rf"DBT_TARGET_KEEP_INVOCATIONS='{re.escape(bad)}'"):
            kept_target_invocations()
    monkeypatch.delenv(KEEP_TARGETS_VARIABLE)
    assert kept_target_invocations() == DEFAULT_KEEP_TARGETS


def test_a_bad_keep_setting_fails_the_code_location(monkeypatch):
    from orchestration.defs.transform.assets import defs

    monkeypatch.setenv(KEEP_TARGETS_VARIABLE, "none")
    with pytest.raises(ValueError, match="DBT_TARGET_KEEP_INVOCATIONS='none'"):
        defs()
