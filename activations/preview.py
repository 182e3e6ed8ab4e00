"""Dry-run previews: what a campaign would send, for a marketer to review before it goes live.

For each campaign, `write_previews` writes into `<out_dir>/<campaign>/`:

- `index.html`: the spec in words (channel, trigger, window, holdout, caps, budget, coupon), the
  planning funnel (audience → each exclusion reason → holdout → planned), counts by variant and
  group, the guardrail's verdict against the last successful send, and the sample messages;
- `<variant>/<customer_id>.html` (the email exactly as rendered) and `.txt` (subject, masked
  recipient and the text alternative); `.txt` for SMS; `.json` for webhook payloads;
- `summary.json`: the counts, read back to build the top-level `<out_dir>/index.html` across
  every campaign previewed into the same folder.

Nothing external is called. File names carry only opaque customer ids; addresses are masked.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path
from typing import Any

import duckdb

from activations import ledger
from activations.guardrail import evaluate_guardrail
from activations.messages import EmailMessage, SmsMessage, WebhookMessage
from activations.plan import PlanReport, _as_send_row
from activations.render import Renderer
from activations.spec import ActivationSettings, Campaign

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")
FUNNEL = (
    ("audience_rows", "audience rows"),
    ("stale_events", "trigger too old"),
    ("no_address", "no address"),
    ("no_consent", "no consent"),
    ("suppressed", "suppressed (unsubscribe, bounce, spam report, STOP)"),
    ("capped", "frequency cap reached"),
    ("over_budget", "over budget"),
    ("holdout", "holdout (recorded, never contacted)"),
    ("planned", "planned to send"),
)

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1f2328;max-width:1100px}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}.muted{color:#656d76}
pre{background:#f6f8fa;padding:.6rem;white-space:pre-wrap}code{background:#f6f8fa;padding:0 .2rem}
"""


def mask_address(address: str | None) -> str:
    """`a***@example.com` / `+86*******0001`: enough to recognise a test inbox, no more."""
    if not address:
        return "—"
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    return address[:3] + "*" * max(len(address) - 7, 0) + address[-4:]


def _safe(name: str) -> str:
    return _SAFE_NAME.sub("_", name)[:64] or "_"


def _describe(campaign: Campaign) -> list[tuple[str, str]]:
    spec = campaign.spec
    window = spec.send_window
    rows = [
        ("channel", spec.channel),
        ("template", spec.template or "—"),
        (
            "trigger",
            f"schedule {spec.schedule!r}"
            if spec.schedule
            else f"event {spec.event} (triggers up to {spec.event_max_age_hours} h old)",
        ),
        (
            "send window",
            f"{window.start:%H:%M} to {window.end:%H:%M} {window.timezone}",
        ),
        ("consent required", spec.consent),
        ("holdout share", f"{spec.holdout_share:.0%}"),
        (
            "frequency cap",
            f"{spec.frequency_cap.max_messages} per {spec.frequency_cap.per_days} day(s) "
            f"on {spec.channel}",
        ),
        (
            "variants",
            ", ".join(f"{v.name} ({v.weight:.0%})" for v in spec.variants),
        ),
        (
            "guardrail",
            (
                f"±{spec.guardrail.max_change_share:.0%} vs last successful send"
                if spec.guardrail.max_change_share is not None
                else "no relative limit"
            )
            + (
                f", at most {spec.guardrail.max_audience:,} people"
                if spec.guardrail.max_audience
                else ""
            ),
        ),
    ]
    if spec.budget is not None:
        rows.append(
            (
                "budget",
                f"{spec.budget:g} at {spec.cost_per_message:g} per message "
                f"= at most {spec.max_messages_by_budget:,} messages",
            )
        )
    if spec.coupon is not None:
        rows.append(
            (
                "coupon",
                f"{spec.coupon.value}, unique code per person ({spec.coupon.prefix}-…), "
                f"valid {spec.coupon.valid_days} days",
            )
        )
    return rows


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{value:,}</td>'
            if isinstance(value, int) and not isinstance(value, bool)
            else f"<td>{value}</td>"
            for value in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


def write_previews(
    con: duckdb.DuckDBPyConnection,
    campaign: Campaign,
    plan_report: PlanReport,
    out_dir: Path,
    sample: int = 5,
    *,
    settings: ActivationSettings | None = None,
) -> Path:
    """Render up to `sample` messages per variant from the plan's samples, write the campaign's
    preview folder and refresh the top-level index; returns the campaign's index.html."""
    settings = settings or ActivationSettings()
    renderer = Renderer(settings)
    out_dir = Path(out_dir)
    folder = out_dir / _safe(campaign.name)
    folder.mkdir(parents=True, exist_ok=True)

    last_run = ledger.last_successful_run(con, campaign.name)
    guard = evaluate_guardrail(plan_report.planned, last_run, campaign.spec, override=False)

    sample_rows: list[list[Any]] = []
    per_variant: dict[str, int] = {}
    for planned in plan_report.samples:
        if planned.is_holdout or per_variant.get(planned.variant, 0) >= sample:
            continue
        per_variant[planned.variant] = per_variant.get(planned.variant, 0) + 1
        sample_rows.append(_write_sample(renderer, campaign, planned, folder))

    body = [
        f"<h1>{html.escape(campaign.name)}</h1>",
        f'<p class="muted">{html.escape(campaign.description)}</p>' if campaign.description else "",
        f"<p><b>{'DRY RUN' if not settings.is_live else 'LIVE MODE'}</b>: "
        f"{'nothing was sent; this is what would go out.' if not settings.is_live else 'previews of a live run.'} "
        f"Occasion <code>{html.escape(plan_report.occasion)}</code>, planned at "
        f"{plan_report.planned_at:%Y-%m-%d %H:%M %Z}, audience "
        f"<code>{html.escape(plan_report.relation)}</code>.</p>",
        "<h2>Campaign</h2>",
        _table(["setting", "value"], [[k, html.escape(v)] for k, v in _describe(campaign)]),
        "<h2>Who gets it</h2>",
        _table(
            ["step", "people"],
            [[html.escape(label), getattr(plan_report, name)] for name, label in FUNNEL],
        ),
        "<h2>By variant</h2>",
        _table(
            ["variant", "treatment (planned)", "holdout"],
            [
                [html.escape(name), counts["treatment"], counts["holdout"]]
                for name, counts in plan_report.by_variant.items()
            ],
        ),
        "<h2>Guardrail</h2>",
        f'<p class="{"ok" if guard.passed else "bad"}">{html.escape(guard.reason)}</p>',
    ]
    if plan_report.budget_ranking:
        body.append(
            f"<p>Under the budget, people were chosen by <b>"
            f"{html.escape(plan_report.budget_ranking.replace('_', ' '))}</b>.</p>"
        )
    body.append(f"<h2>Samples ({len(sample_rows)})</h2>")
    if sample_rows:
        headers = {
            "email": ["variant", "customer", "to", "subject", "files"],
            "sms": ["variant", "customer", "to", "message", "files"],
            "webhook": ["variant", "customer", "to", "payload", "files"],
        }[campaign.spec.channel]
        body.append(_table(headers, sample_rows))
    elif campaign.spec.channel == "ad_list":
        body.append("<p>Ad-platform lists upload hashed identifiers only; nothing to render.</p>")
    else:
        body.append("<p>Nobody is planned, so there is nothing to preview.</p>")
    index = folder / "index.html"
    index.write_text(_page(f"{campaign.name} preview", "\n".join(body)), encoding="utf-8")

    summary = {
        "campaign": campaign.name,
        "channel": campaign.spec.channel,
        "trigger": campaign.spec.schedule or f"event: {campaign.spec.event}",
        "occasion": plan_report.occasion,
        "mode": settings.mode,
        "counts": {name: getattr(plan_report, name) for name, _ in FUNNEL},
        "by_variant": plan_report.by_variant,
        "samples": len(sample_rows),
        "guardrail": {"passed": guard.passed, "reason": guard.reason},
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    write_index(out_dir)
    return index


def _write_sample(renderer: Renderer, campaign: Campaign, planned: Any, folder: Path) -> list[Any]:
    message = renderer.render(campaign, _as_send_row(planned))
    variant_dir = folder / _safe(planned.variant)
    variant_dir.mkdir(exist_ok=True)
    stem = _safe(planned.customer_id)
    link = f"{_safe(planned.variant)}/{stem}"
    customer = html.escape(planned.customer_id)
    if isinstance(message, EmailMessage):
        (variant_dir / f"{stem}.html").write_text(message.html, encoding="utf-8")
        (variant_dir / f"{stem}.txt").write_text(
            f"Subject: {message.subject}\nTo: {mask_address(message.to_email)}\n"
            f"Variant: {message.variant}\n\n{message.text}",
            encoding="utf-8",
        )
        return [
            html.escape(planned.variant),
            customer,
            html.escape(mask_address(message.to_email)),
            html.escape(message.subject),
            f'<a href="{link}.html">HTML</a> · <a href="{link}.txt">text</a>',
        ]
    if isinstance(message, SmsMessage):
        (variant_dir / f"{stem}.txt").write_text(message.body + "\n", encoding="utf-8")
        return [
            html.escape(planned.variant),
            customer,
            html.escape(mask_address(message.to_phone)),
            f"<pre>{html.escape(message.body)}</pre>{len(message.body)} characters",
            f'<a href="{link}.txt">text</a>',
        ]
    assert isinstance(message, WebhookMessage)
    (variant_dir / f"{stem}.json").write_text(
        json.dumps(message.payload, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )
    return [
        html.escape(planned.variant),
        customer,
        "—",
        f"{len(message.payload.get('data', {}))} fields",
        f'<a href="{link}.json">JSON</a>',
    ]


def write_index(out_dir: Path) -> Path:
    """The top-level index across every campaign previewed into `out_dir`."""
    out_dir = Path(out_dir)
    summaries = []
    for path in sorted(out_dir.glob("*/summary.json")):
        try:
            summaries.append((path.parent.name, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            continue
    rows = []
    live = any(summary.get("mode") == "live" for _, summary in summaries)
    for folder, summary in summaries:
        counts = summary.get("counts", {})
        guard = summary.get("guardrail", {})
        excluded = sum(
            counts.get(k, 0)
            for k in (
                "stale_events",
                "no_address",
                "no_consent",
                "suppressed",
                "capped",
                "over_budget",
            )
        )
        rows.append(
            [
                f'<a href="{html.escape(folder)}/index.html">{html.escape(summary["campaign"])}</a>',
                html.escape(summary.get("channel", "")),
                html.escape(summary.get("trigger", "")),
                int(counts.get("audience_rows", 0)),
                excluded,
                int(counts.get("holdout", 0)),
                int(counts.get("planned", 0)),
                int(summary.get("samples", 0)),
                '<span class="ok">passes</span>'
                if guard.get("passed")
                else '<span class="bad">blocked</span>',
            ]
        )
    body = (
        "<h1>Campaign previews</h1>"
        + (
            "<p>Previews of live runs: rendered samples and counts per campaign.</p>"
            if live
            else "<p>Dry run: rendered samples and counts per campaign. Nothing was sent.</p>"
        )
        + _table(
            [
                "campaign",
                "channel",
                "trigger",
                "audience",
                "excluded",
                "holdout",
                "planned",
                "samples",
                "guardrail",
            ],
            rows,
        )
    )
    index = out_dir / "index.html"
    index.write_text(_page("Campaign previews", body), encoding="utf-8")
    return index


__all__ = ["mask_address", "write_index", "write_previews"]
