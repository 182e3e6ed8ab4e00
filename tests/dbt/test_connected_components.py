"""The label-propagation macro (identity_connected_components) on graphs built to be hard for it.

A throwaway dbt project holds a copy of the real macro file and one model that calls it on
tables written here: long chains (many rounds, pointer jumping), chains numbered against the
grain of the labels, stars, cycles, isolated nodes and edges to nodes outside the node set.
Components are checked against a union-find in Python, and the work tables must be gone. The
warm-start test builds two models per run: one compares the whole graph with the kept one, the
other is given the delta (what the identity change logs give the real model).
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
    40, portable=var('portable', false)) %}
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


WARM_MODEL = """
{{ config(materialized='table', post_hook="{{ identity_keep_component_state() }}") }}
{%- set labels = identity_connected_components(
    "select node_key from main.graph_nodes",
    "select left_node_key, right_node_key from main.graph_edges",
    100, warm_start=true) %}
select node_key, label from {{ labels }}
"""


def _project(tmp_path: Path, model: str, **other_models: str) -> tuple[Path, Path]:
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "macros").mkdir()
    for macros in ("identity_connected_components.sql", "incremental_identity.sql"):
        shutil.copy(DBT_PROJECT_DIR / "macros" / macros, project / "macros")
    (project / "models" / "components.sql").write_text(model)
    for name, sql in other_models.items():
        (project / "models" / f"{name}.sql").write_text(sql)
    (project / "dbt_project.yml").write_text(
        "name: components_test\nversion: '1.0'\nprofile: components_test\n"
        "model-paths: [models]\nmacro-paths: [macros]\n"
    )
    warehouse = tmp_path / "graph.duckdb"
    (project / "profiles.yml").write_text(
        "components_test:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: '{warehouse}'\n      threads: 1\n"
    )
    return project, warehouse


def _write_graph(
    warehouse: Path, tables: tuple[str, str], nodes: list[str], edges: list[tuple[str, str]]
) -> None:
    """Tables main.<nodes table> (node_key) and main.<pairs table> (left, right node keys)."""
    nodes_table, pairs_table = tables
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"create or replace table main.{nodes_table} (node_key varchar)")
        con.executemany(f"insert into main.{nodes_table} values (?)", [(n,) for n in nodes])
        con.execute(
            f"create or replace table main.{pairs_table} "
            "(left_node_key varchar, right_node_key varchar)"
        )
        con.executemany(f"insert into main.{pairs_table} values (?, ?)", edges)


def _load_graph(warehouse: Path, nodes: list[str], edges: list[tuple[str, str]]) -> None:
    _write_graph(warehouse, ("graph_nodes", "graph_edges"), nodes, edges)


def _run(project: Path, *args: str) -> str:
    result = subprocess.run(
        [DBT_EXECUTABLE, "run", "--profiles-dir", str(project), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "converged in" in result.stdout
    return result.stdout


def _labels(warehouse: Path, model: str = "components") -> tuple[dict[str, str], list[str]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        labels = dict(con.execute(f"select node_key, label from main.{model}").fetchall())
        leftovers = con.execute(
            "select table_name from information_schema.tables where table_name like '%__cc_%' "
            "order by table_name"
        ).fetchall()
    return labels, [name for (name,) in leftovers]


def test_connected_components_macro_labels_each_node_with_its_components_smallest_key(
    tmp_path: Path,
) -> None:
    project, warehouse = _project(tmp_path, MODEL)
    nodes, edges = _graph(seed=5)
    _load_graph(warehouse, nodes, edges)

    # DuckDB updates lowered labels in place; the portable path (Spark's) rewrites the table.
    for portable in ("false", "true"):
        _run(project, "--vars", f"{{portable: {portable}}}")

        labels, leftovers = _labels(warehouse)
        assert labels == _expected(nodes, edges)
        assert leftovers == []


CHAIN_MODEL = """
{{ config(materialized='table', post_hook="{{ identity_drop_component_work_tables() }}") }}
{%- set labels = identity_connected_components(
    "select node_key from main.graph_nodes",
    "select left_node_key, right_node_key from main.graph_edges",
    30) %}
select node_key, label from {{ labels }}
"""


def test_a_long_chain_with_keys_in_random_order_resolves_within_the_default_30_rounds(
    tmp_path: Path,
) -> None:
    """5,000 identifiers linked in a line, keys shuffled along it (the worst case for pointer
    jumping alone, which needed thousands of rounds), beside a few hundred short chains: one
    dbt run at the project's default round limit labels every node as union-find does."""
    project, warehouse = _project(tmp_path, CHAIN_MODEL)
    rng = random.Random(23)
    chain = [f"n{i:05d}" for i in range(5000)]
    rng.shuffle(chain)
    nodes = list(chain)
    edges = list(itertools.pairwise(chain))
    for group in range(300):
        short = [f"s{group:03d}_{i}" for i in range(rng.randint(2, 12))]
        rng.shuffle(short)
        nodes += short
        edges += list(itertools.pairwise(short))
    _load_graph(warehouse, nodes, edges)

    _run(project)  # asserts "converged in"

    labels, leftovers = _labels(warehouse)
    assert labels == _expected(nodes, edges)
    assert {labels[n] for n in chain} == {"n00000"}
    assert leftovers == []


def _grow(nodes: list[str], edges: list[tuple[str, str]], seed: int):
    """A night of new data: new nodes (some smaller than every old key, so a merged
    component's label must move to a newcomer), edges joining old components to each other and
    to new nodes, and a new chain hung off an old one."""
    rng = random.Random(seed)
    grown_nodes = list(nodes)
    grown_edges = list(edges)
    newcomers = [f"{prefix}{i:03d}_new" for prefix in ("0", "b", "h") for i in range(20)]
    grown_nodes += newcomers
    for newcomer in newcomers:
        grown_edges.append((newcomer, rng.choice(nodes)))
    for _ in range(60):
        grown_edges.append(tuple(rng.sample(nodes, 2)))
    tail = [f"i{i:03d}_new" for i in range(80)]
    grown_nodes += tail
    grown_edges += list(itertools.pairwise(tail))
    grown_edges.append((tail[-1], "a0299"))
    return grown_nodes, grown_edges


DELTA_MODEL = """
{{ config(materialized='table', post_hook="{{ identity_keep_component_state() }}") }}
{%- set labels = identity_connected_components(
    "select node_key from main.graph_nodes",
    "select left_node_key, right_node_key from main.graph_edges",
    100, warm_start=true,
    delta={'nodes': 'select node_key from main.delta_nodes',
           'pairs': 'select left_node_key, right_node_key from main.delta_pairs'}) %}
select node_key, label from {{ labels }}
"""


def _load_delta(
    warehouse: Path,
    before: tuple[list[str], list[tuple[str, str]]],
    after: tuple[list[str], list[tuple[str, str]]],
    rng: random.Random,
) -> None:
    """What the identity models' change logs give: every node and pair whose presence changed
    (pairs in either order), plus unchanged ones that were rewritten to the same thing."""
    changed_nodes = set(before[0]) ^ set(after[0])
    key = lambda edge: tuple(sorted(edge))  # noqa: E731
    changed_pairs = {key(e) for e in before[1]} ^ {key(e) for e in after[1]}
    nodes = sorted(changed_nodes) + rng.sample(after[0], 5)
    pairs = [p[::-1] if rng.random() < 0.5 else p for p in sorted(changed_pairs)]
    pairs += rng.sample(after[1], min(5, len(after[1])))
    _write_graph(warehouse, ("delta_nodes", "delta_pairs"), nodes, pairs)


STATE = ["components__cc_state_edges", "components__cc_state_labels"]
DELTA_STATE = ["components_delta__cc_state_edges", "components_delta__cc_state_labels"]


def test_warm_start_from_the_last_runs_labels_equals_union_find_as_the_graph_grows_and_shrinks(
    tmp_path: Path,
) -> None:
    """Two models in each dbt run: `components` compares the whole graph with the kept one,
    `components_delta` is told what changed (as the identity change logs tell it)."""
    project, warehouse = _project(tmp_path, WARM_MODEL, components_delta=DELTA_MODEL)
    delta_rng = random.Random(11)
    previous: tuple[list[str], list[tuple[str, str]]] = ([], [])

    def night(nodes: list[str], edges: list[tuple[str, str]], *args: str) -> str:
        nonlocal previous
        _load_graph(warehouse, nodes, edges)
        _load_delta(warehouse, previous, (nodes, edges), delta_rng)
        log = _run(project, *args)
        expected = _expected(nodes, edges)
        assert _labels(warehouse)[0] == expected
        assert _labels(warehouse, "components_delta")[0] == expected
        # Only the state for the next run is left behind.
        assert _labels(warehouse)[1] == STATE + DELTA_STATE
        previous = (nodes, edges)
        return log

    nodes, edges = _graph(seed=5)
    first = night(nodes, edges)
    assert "components cold start (no state kept by an earlier run)" in first
    assert "components_delta cold start (no state kept by an earlier run)" in first

    # The graph only grew: warm start, same components as union-find on the whole graph.
    grown_nodes, grown_edges = _grow(nodes, edges, seed=8)
    second = night(grown_nodes, grown_edges)
    assert "components warm start, " in second and "cold start" not in second
    assert "components_delta warm start from the delta" in second
    # the new edges did merge components
    assert _labels(warehouse)[0] != _expected(grown_nodes, edges)

    # Nothing new: warm, one round, unchanged.
    unchanged = night(grown_nodes, grown_edges)
    assert "components warm start, 0 new edges" in unchanged
    assert "components converged in 1 rounds" in unchanged
    assert "components_delta warm start from the delta, 0 new edges, 0 lost edges" in unchanged

    # An edge is gone (a chain cut in two): that component may have split, so its nodes
    # restart from their own keys; the other components keep their labels.
    cut = [edge for edge in grown_edges if edge != ("a0149", "a0150")]
    third = night(grown_nodes, cut)
    assert "components warm start, 0 new edges, 1 components that lost a node or edge" in third
    assert "0 new edges, 1 lost edges, 0 new nodes, 0 lost nodes, 1 components restarted" in third

    # The same night loses a node and an edge elsewhere and gains edges: all at once.
    rng = random.Random(9)
    fewer = [node for node in grown_nodes if node != "c0007"]
    mixed = [e for e in cut if "c0007" not in e and e != ("e010", "e011")]
    mixed += [tuple(rng.sample(fewer, 2)) for _ in range(25)]
    fourth = night(fewer, mixed)
    assert "components warm start, " in fourth and "cold start" not in fourth
    assert "components_delta warm start from the delta" in fourth

    # A shattered graph (every chain edge gone) restarts nearly everything and still agrees.
    sparse = [e for e in mixed if rng.random() < 0.3]
    assert "components warm start, 0 new edges" in night(fewer, sparse)

    # --full-refresh always starts cold.
    fifth = night(fewer, sparse, "--full-refresh")
    assert "components cold start (--full-refresh)" in fifth
    assert "components_delta cold start (--full-refresh)" in fifth
