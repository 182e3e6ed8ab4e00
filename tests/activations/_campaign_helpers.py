"""Builders shared by the campaign tests: manifest nodes, small template folders, and audience
and customer tables in a real DuckDB file."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb

from activations.spec import Campaign, load_campaigns

EMAIL_COLUMNS = ("customer_id", "email", "first_name", "has_email_consent")

BASE_ACTIVATION: dict[str, Any] = {
    "channel": "email",
    "template": "plain",
    "trigger": {"schedule": "0 6 * * *"},
    "holdout_share": 0.1,
    "frequency_cap": {"max_messages": 2, "per_days": 7},
    "send_window": {"start": "08:00", "end": "21:00", "timezone": "Asia/Shanghai"},
}

# Template folders for tests: small, but shaped like the shipped ones (layout, autoescape).
TEMPLATES: dict[str, str] = {
    "_layout/base.html": (
        "<html><body>{% block content %}{% endblock %}"
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>'
    ),
    "plain/subject.txt": "Hello {{ first_name }}\n",
    "plain/subject_b.txt": "B for {{ first_name }}",
    "plain/body.html": (
        '{% extends "_layout/base.html" %}'
        "{% block content %}<p>Hi {{ first_name }}</p>{% endblock %}"
    ),
    "plain/body.txt": "Hi {{ first_name }}\nUnsubscribe: {{ unsubscribe_url }}",
    "coupon/subject.txt": "{{ coupon_value }} for you",
    "coupon/body.html": "<p>{{ coupon_code }} until {{ coupon_valid_until }}</p>",
    "coupon/body.txt": "{{ coupon_code }}",
    "broken/subject.txt": "Hi {{ first_name }}",
    "broken/body.html": "<p>{{ favourite_colour }}</p>",
    "broken/body.txt": "x",
    "text/sms.txt": "Hi {{ first_name }}, news for you. Reply STOP to opt out",
}


def write_templates(root: Path, files: Mapping[str, str] = TEMPLATES) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def activation(**overrides: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE_ACTIVATION)
    for key, value in overrides.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return spec


def node(
    name: str,
    activation_block: Any,
    columns: Iterable[str] = EMAIL_COLUMNS,
    *,
    folder: str = "audiences",
    meta_in_config: bool = True,
) -> dict[str, Any]:
    meta = {"activation": activation_block}
    return {
        "resource_type": "model",
        "name": name,
        "unique_id": f"model.omnicdp.{name}",
        "schema": "audiences" if folder == "audiences" else folder,
        "fqn": ["omnicdp", folder, name],
        "relation_name": f'"wh"."audiences"."{name}"',
        "original_file_path": f"models/{folder}/{name}.sql",
        "patch_path": f"omnicdp://models/{folder}/_{folder}__models.yml",
        "description": f"Test audience {name}.",
        "columns": {c: {"name": c} for c in columns},
        "config": {"meta": meta if meta_in_config else {}},
        "meta": {} if meta_in_config else meta,
    }


def manifest(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"nodes": {n["unique_id"]: n for n in nodes}}


def campaign(
    templates_dir: Path,
    name: str = "aud_test",
    columns: Iterable[str] = EMAIL_COLUMNS,
    **overrides: Any,
) -> Campaign:
    [loaded] = load_campaigns(
        manifest(node(name, activation(**overrides), columns)), templates_dir=templates_dir
    )
    return loaded


def create_customers(
    con: duckdb.DuckDBPyConnection,
    count: int,
    *,
    consent_every: int = 1,
    prefix: str = "C",
) -> None:
    """`marts.dim_customers` with the consent flags planning reads: every `consent_every`-th
    customer (by number) has email, SMS and push consent."""
    con.execute("create schema if not exists marts")
    con.execute(
        f"""
        create or replace table marts.dim_customers as
        select
            '{prefix}' || lpad(cast(i as varchar), 6, '0') as customer_id,
            i % {consent_every} = 0 as has_email_consent,
            i % {consent_every} = 0 as has_sms_consent,
            i % {consent_every} = 0 as has_push_consent
        from range({count}) as t(i)
        """
    )


def create_audience(
    con: duckdb.DuckDBPyConnection,
    name: str,
    count: int,
    *,
    prefix: str = "C",
    extra: str = "",
) -> str:
    """`audiences.<name>` with one row per customer C000000.. and an email each; `extra` adds
    select expressions over `i` (the row number)."""
    con.execute("create schema if not exists audiences")
    con.execute(
        f"""
        create or replace table audiences.{name} as
        select
            '{prefix}' || lpad(cast(i as varchar), 6, '0') as customer_id,
            'Person' || cast(i as varchar) || '@Example.com' as email,
            'Person' || cast(i as varchar) as first_name
            {"," + extra if extra else ""}
        from range({count}) as t(i)
        """
    )
    return f"audiences.{name}"
