"""Render a planned send into a message: Jinja templates per campaign, one audience row per person.

Templates live in `activations/templates/<template>/`: `subject.txt`, `body.html` and
`body.txt` for email (every HTML email has a text alternative), `sms.txt` for SMS. They read the
audience row's columns by name (the `context` stored at plan time) plus the variables in
`RENDERER_VARIABLES` (send_id, campaign, variant, variant_params, occasion, unsubscribe_url,
subject) and, for campaigns with a coupon, coupon_code / coupon_value / coupon_valid_from /
coupon_valid_until.

The environment is sandboxed (templates are content, not code), HTML is autoescaped (a first
name is data, never markup), and undefined variables raise: a template that reads a column the
audience does not have fails at plan or preview time, naming the template and the variable,
instead of sending "Hello ," to a million people.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import jinja2.nodes
from jinja2.sandbox import SandboxedEnvironment

from activations.messages import EmailMessage, Message, SendRow, SmsMessage, WebhookMessage
from activations.spec import TEMPLATES_DIR, ActivationSettings, Campaign

# Twilio refuses bodies over 1,600 characters.
MAX_SMS_CHARS = 1600
MAX_SUBJECT_CHARS = 200
_TOKEN = re.compile(r"^([0-9a-f]{32})\.([0-9a-f]{32})$")


class TemplateRenderError(ValueError):
    """A template failed for a campaign: names the campaign, template file and the cause."""


def unsubscribe_token(send_id: str, secret: str) -> str:
    """Opaque, unforgeable token: the send_id (itself opaque) and its HMAC. The unsubscribe
    endpoint recovers the send (hence customer and channel) with `verify_unsubscribe_token`."""
    signature = hmac.new(secret.encode(), send_id.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{send_id}.{signature}"


def verify_unsubscribe_token(token: str, secret: str) -> str | None:
    """The send_id a token was issued for, or None when it is malformed or forged."""
    match = _TOKEN.match(token or "")
    if not match:
        return None
    send_id = match.group(1)
    expected = unsubscribe_token(send_id, secret)
    return send_id if hmac.compare_digest(expected, token) else None


def unsubscribe_url(base_url: str, send_id: str, secret: str) -> str:
    return f"{base_url.rstrip('/')}/{unsubscribe_token(send_id, secret)}"


def _money(value: Any, symbol: str = "") -> str:
    if value is None or value == "":
        return ""
    try:
        return f"{symbol}{float(value):,.2f}"
    except (TypeError, ValueError) as error:
        raise TemplateRenderError(f"money filter got {value!r}, which is not a number") from error


@functools.cache
def _environment(templates_dir: Path, currency_symbol: str = "") -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        # HTML files (bodies and layouts) escape every value; text and SMS bodies do not.
        autoescape=lambda name: bool(name and name.endswith(".html")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["money"] = functools.partial(_money, symbol=currency_symbol)
    return env


def _undeclared(env: SandboxedEnvironment, ast: jinja2.nodes.Template) -> set[str]:
    # Names imported from macro files at the top of a child template are visible inside its
    # blocks at run time, but the static analysis reports them as undeclared.
    imported: set[str] = set()
    for node in ast.find_all(jinja2.nodes.FromImport):
        imported |= {name if isinstance(name, str) else name[1] for name in node.names}
    for node in ast.find_all(jinja2.nodes.Import):
        imported.add(node.target)
    return set(jinja2.meta.find_undeclared_variables(ast)) - set(env.globals) - imported


def _variables(env: SandboxedEnvironment, source: str) -> set[str]:
    return _undeclared(env, env.parse(source))


def string_variables(source: str, templates_dir: Path = TEMPLATES_DIR) -> set[str]:
    """Top-level variables a template string reads (e.g. a variant's subject override)."""
    return _variables(_environment(templates_dir), source)


def template_variables(templates_dir: Path, template: str) -> dict[str, set[str]]:
    """file name → top-level variables each file of a template folder reads, including those
    read by the layouts and macro files it extends, includes or imports."""
    env = _environment(templates_dir)
    folder = templates_dir / template
    result: dict[str, set[str]] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        seen: set[str] = set()
        pending = [f"{template}/{path.name}"]
        variables: set[str] = set()
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            source = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
            ast = env.parse(source)
            variables |= _undeclared(env, ast)
            pending.extend(ref for ref in jinja2.meta.find_referenced_templates(ast) if ref)
        result[path.name] = variables
    return result


class Renderer:
    """Turns ledger rows (`SendRow`) into channel messages. Deterministic: the same row always
    renders the same message, which is why the ledger stores context, not HTML."""

    def __init__(
        self,
        settings: ActivationSettings | None = None,
        templates_dir: Path | None = None,
    ) -> None:
        """`templates_dir` overrides the folder each campaign was validated against."""
        self.settings = settings or ActivationSettings()
        self.templates_dir = Path(templates_dir) if templates_dir is not None else None

    def _env_for(self, campaign: Campaign) -> SandboxedEnvironment:
        folder = self.templates_dir or campaign.templates_dir
        return _environment(Path(folder), self.settings.currency_symbol)

    def context(self, campaign: Campaign, row: SendRow) -> dict[str, Any]:
        variant = campaign.spec.variant(row.variant)
        return {
            **row.context,
            "customer_id": row.customer_id,
            "send_id": row.send_id,
            "campaign": campaign.name,
            "variant": row.variant,
            "variant_params": variant.params_dict,
            "occasion": row.occasion,
            "unsubscribe_url": unsubscribe_url(
                self.settings.unsubscribe_base_url, row.send_id, self.settings.unsubscribe_secret
            ),
        }

    def render(self, campaign: Campaign, row: SendRow) -> Message:
        channel = campaign.spec.channel
        if row.channel != channel:
            raise TemplateRenderError(
                f"campaign {campaign.name} sends {channel}, but row {row.send_id} is {row.channel}"
            )
        context = self.context(campaign, row)
        if channel == "webhook":
            return WebhookMessage(
                send_id=row.send_id,
                campaign=campaign.name,
                variant=row.variant,
                payload={
                    "send_id": row.send_id,
                    "campaign": campaign.name,
                    "variant": row.variant,
                    "occasion": row.occasion,
                    "customer_id": row.customer_id,
                    "data": dict(row.context),
                },
            )
        if channel == "ad_list":
            raise TemplateRenderError(
                f"campaign {campaign.name} is an ad_list: it is exported as hashed identifiers, "
                "not rendered"
            )
        if not row.address:
            raise TemplateRenderError(
                f"campaign {campaign.name}: send {row.send_id} has no {channel} address"
            )
        variant = campaign.spec.variant(row.variant)
        template = variant.template or campaign.spec.template
        assert template is not None
        if channel == "sms":
            body = self._render_file(campaign, template, "sms.txt", context).strip()
            if not body:
                raise TemplateRenderError(
                    f"campaign {campaign.name}, template {template}/sms.txt rendered an empty SMS"
                )
            if len(body) > MAX_SMS_CHARS:
                raise TemplateRenderError(
                    f"campaign {campaign.name}, template {template}/sms.txt rendered "
                    f"{len(body)} characters; SMS bodies are limited to {MAX_SMS_CHARS}"
                )
            return SmsMessage(
                send_id=row.send_id,
                campaign=campaign.name,
                variant=row.variant,
                to_phone=row.address,
                body=body,
            )
        if variant.subject_file is not None:
            subject = self._render_file(campaign, template, variant.subject_file, context)
        elif variant.subject is not None:
            subject = self._render_string(
                campaign, f"variants[{variant.name}].subject", variant.subject, context
            )
        else:
            subject = self._render_file(campaign, template, "subject.txt", context)
        # One line: a newline in a subject is header injection.
        subject = " ".join(subject.split())
        if not subject:
            raise TemplateRenderError(
                f"campaign {campaign.name}, variant {variant.name}: the subject rendered empty"
            )
        subject = subject[:MAX_SUBJECT_CHARS]
        context["subject"] = subject
        html = self._render_file(campaign, template, "body.html", context)
        text = self._render_file(campaign, template, "body.txt", context).strip() + "\n"
        first, last = row.context.get("first_name"), row.context.get("last_name")
        to_name = " ".join(str(part) for part in (first, last) if part) or None
        return EmailMessage(
            send_id=row.send_id,
            campaign=campaign.name,
            variant=row.variant,
            to_email=row.address,
            to_name=to_name,
            subject=subject,
            html=html,
            text=text,
        )

    def _render_file(
        self, campaign: Campaign, template: str, file_name: str, context: Mapping[str, Any]
    ) -> str:
        where = f"{template}/{file_name}"
        try:
            compiled = self._env_for(campaign).get_template(where)
        except jinja2.TemplateNotFound as error:
            raise TemplateRenderError(
                f"campaign {campaign.name}: template file {error.name} does not exist "
                f"under {self.templates_dir or campaign.templates_dir}"
            ) from error
        except jinja2.TemplateSyntaxError as error:
            raise TemplateRenderError(
                f"campaign {campaign.name}, template {error.name or where} line {error.lineno}: "
                f"syntax error: {error.message}"
            ) from error
        return self._run(campaign, where, compiled, context)

    def _render_string(
        self, campaign: Campaign, where: str, source: str, context: Mapping[str, Any]
    ) -> str:
        try:
            compiled = self._env_for(campaign).from_string(source)
        except jinja2.TemplateSyntaxError as error:
            raise TemplateRenderError(
                f"campaign {campaign.name}, {where}: syntax error: {error.message}"
            ) from error
        return self._run(campaign, where, compiled, context)

    def _run(
        self,
        campaign: Campaign,
        where: str,
        compiled: jinja2.Template,
        context: Mapping[str, Any],
    ) -> str:
        try:
            return compiled.render(context)
        except jinja2.UndefinedError as error:
            columns = ", ".join(sorted(k for k in context if not k.startswith("_")))
            raise TemplateRenderError(
                f"campaign {campaign.name}, template {where}: {error.message}. "
                f"Add the column to the audience model or fix the template; "
                f"available variables: {columns}"
            ) from error
        except jinja2.exceptions.SecurityError as error:
            raise TemplateRenderError(
                f"campaign {campaign.name}, template {where}: not allowed in templates: {error}"
            ) from error
        except TemplateRenderError as error:
            raise TemplateRenderError(
                f"campaign {campaign.name}, template {where}: {error}"
            ) from error


def render_message(
    campaign: Campaign, row: SendRow, settings: ActivationSettings | None = None
) -> Message:
    """One-off convenience over `Renderer(settings).render(campaign, row)`."""
    return Renderer(settings).render(campaign, row)
