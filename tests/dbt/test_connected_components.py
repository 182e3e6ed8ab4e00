"""The label-propagation macro (identity_connected_components) on graphs built to be hard for it.

A throwaway dbt project holds a copy of the real macro file and one model that calls it on
tables written here: long chains (many rounds, pointer jumping), chains numbered against the
grain of the labels, stars, cycles, isolated nodes and edges to nodes outside the node set.
Components are checked against a union-find in Python, and the work tables must be gone.
"""

from __future__ import annotations

import itertools
import random
import shutil
import subprocess
from pathlib import Path

import duckdb

from orchestration.defs.transform.project import DBT_EXECUTABLE, DBT_PROJECT_DIR

MODEL = """
{{ config(materialized='table', post_hook="{{ identity_drop_component_work_tables() }}") }}
{%- set labels = identity_connected_components(
    "select node_key from main.graph_nodes",
    "select left_node_key, right_node_key from main.graph_edges",
    40) %}
select node_key, label from {{ labels }}
"""


def _graph(seed: int) -> tuple[list[str], list[tuple[str, str]]]:
    rng = random.Random(seed)
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []

    def node(name: str) -> str:
        nodes.append(name)
        return name

    # a chain whose smallest key sits at one end, and one numbered from the middle outwards
    chain = [node(f"a{i:04d}") for i in range(300)]
    edges += list(itertools.pairwise(chain))
    middle = [node(f"b{abs(150 - i):04d}{'x' if i > 150 else ''}") for i in range(301)]
    edges += list(itertools.pairwise(middle))
    # a shuffled chain: keys in random order along the path
    shuffled = [node(f"c{i:04d}") for i in range(200)]
    rng.shuffle(shuffled)
    edges += list(itertools.pairwise(shuffled))
    # a star, a cycle, pairs, isolated nodes, an edge to a node outside the node set
    hub = node("d_hub")
    edges += [(hub, node(f"d{i:03d}")) for i in range(50)]
    cycle = [node(f"e{i:03d}") for i in range(40)]
    edges += list(zip(cycle, cycle[1:] + cycle[:1], strict=True))
    for i in range(100):
        edges.append((node(f"f{i:03d}l"), node(f"f{i:03d}r")))
    nodes += [f"g{i:03d}" for i in range(30)]
    edges.append(("g000", "zz_not_a_node"))
    # random sparse graph with duplicate and reversed edges
    sparse = [node(f"h{i:04d}") for i in range(500)]
    for _ in range(400):
        left, right = rng.sample(sparse, 2)
        edges.append((left, right))
        if rng.random() < 0.1:
            edges.append((right, left))
    return nodes, edges


def _expected(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, str]:
    parent = {n: n for n in nodes}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for left, right in edges:
        if left in parent and right in parent:
            a, b = find(left), find(right)
            if a != b:
                parent[max(a, b)] = min(a, b)
    smallest: dict[str, str] = {}
    for n in nodes:
        root = find(n)
        smallest[root] = min(smallest.get(root, n), n)
    return {n: smallest[find(n)] for n in nodes}


def test_connected_components_macro_labels_each_node_with_its_components_smallest_key(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "macros").mkdir()
    shutil.copy(
        DBT_PROJECT_DIR / "macros" / "identity_connected_components.sql", project / "macros"
    )
    (project / "models" / "components.sql").write_text(MODEL)
    (project / "dbt_project.yml").write_text(
        "name: components_test\nversion: '1.0'\nprofile: components_test\n"
        "model-paths: [models]\nmacro-paths: [macros]\n"
    )
    warehouse = tmp_path / "graph.duckdb"
    (project / "profiles.yml").write_text(
        "components_test:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: '{warehouse}'\n      threads: 1\n"
    )
    nodes, edges = _graph(seed=5)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table main.graph_nodes (node_key varchar)")
        con.executemany("insert into main.graph_nodes values (?)", [(n,) for n in nodes])
        con.execute("create table main.graph_edges (left_node_key varchar, right_node_key varchar)")
        con.executemany("insert into main.graph_edges values (?, ?)", edges)

    result = subprocess.run(
        [DBT_EXECUTABLE, "run", "--profiles-dir", str(project)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "converged in" in result.stdout

    with duckdb.connect(str(warehouse), read_only=True) as con:
        labels = dict(con.execute("select node_key, label from main.components").fetchall())
        leftovers = con.execute(
            "select table_name from information_schema.tables where table_name like '%__cc_%'"
        ).fetchall()
    assert labels == _expected(nodes, edges)
    assert leftovers == []
