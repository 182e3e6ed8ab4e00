"""How dbt nodes appear in Dagster: keyed by schema, grouped by layer."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings


class CdpDbtTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # Sources carry meta.dagster.asset_key (["raw", <source>]) pointing at the ingestion assets.
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        # Models are keyed like their tables (marts/dim_customers), so keys read as in SQL.
        return dg.AssetKey(
            [dbt_resource_props["config"].get("schema") or "main", dbt_resource_props["name"]]
        )

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        # models/<layer>/... → group <layer> (staging, intermediate, marts, audiences).
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"
