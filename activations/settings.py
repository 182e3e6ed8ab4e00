"""Provider settings and channel construction; the caller passes every value in.

Dagster resources resolve the variables below with `dg.EnvVar` and hand them over as a mapping
(`ProviderSettings.from_env(values)`); this package never reads `os.environ`, so a secret is
never captured at import time or shown in the UI.

`ACTIVATION_MODE` is `dry_run` unless it is explicitly `live`. In dry-run `build_channel`
returns a `DryRunChannel`, which has no HTTP client at all. In live mode every variable the
channel needs must be set, or `MissingSettingError` names the missing ones before any client
is built, let alone called. Base URLs are configurable so tests and staging point at local
fakes; outside loopback they must be https, so a key never travels in clear text.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from activations.channels.base import Channel, DryRunChannel

DRY_RUN = "dry_run"
LIVE = "live"
MODES = (DRY_RUN, LIVE)

DEFAULT_SENDGRID_HOST = "https://api.sendgrid.com"
DEFAULT_TWILIO_BASE_URL = "https://api.twilio.com"

ENV_VARS = (
    "ACTIVATION_MODE",
    "SENDGRID_API_KEY",
    "SENDGRID_API_HOST",
    "SENDGRID_FROM_EMAIL",
    "SENDGRID_FROM_NAME",
    "SENDGRID_SANDBOX_MODE",
    "SENDGRID_ASM_GROUP_ID",
    "SENDGRID_WEBHOOK_PUBLIC_KEY",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_BASE_URL",
    "TWILIO_FROM_NUMBER",
    "TWILIO_MESSAGING_SERVICE_SID",
    "TWILIO_STATUS_CALLBACK_URL",
    "AD_LIST_DIR",
    "AD_API_URL",
    "AD_API_TOKEN",
)


class MissingSettingError(ValueError):
    """A live run lacks a setting; raised before any provider call. Names, never values."""

    def __init__(self, channel: str, names: list[str]) -> None:
        self.names = names
        super().__init__(
            f"ACTIVATION_MODE=live: the {channel} channel needs {', '.join(names)} "
            f"(not set); nothing was sent. Set {'it' if len(names) == 1 else 'them'}, "
            "or run with ACTIVATION_MODE=dry_run."
        )


def parse_mode(value: str | None) -> str:
    if value is None or not value.strip():
        return DRY_RUN
    mode = value.strip().lower()
    if mode not in MODES:
        raise ValueError(f"ACTIVATION_MODE must be 'dry_run' or 'live', not {value!r}")
    return mode


def _flag(name: str, value: str | None) -> bool:
    if value is None or not value.strip():
        return False
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


def check_base_url(name: str, url: str) -> str:
    """An http(s) URL without credentials; plain http only for loopback (local fakes)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an http(s) URL, got {url!r}")
    if parts.username or parts.password:
        raise ValueError(f"{name} must not embed credentials")
    if parts.scheme == "http":
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ValueError(f"{name} must use https outside loopback, got {url!r}")
    return url.rstrip("/")


@dataclass(frozen=True)
class SendGridSettings:
    api_key: str | None = field(default=None, repr=False)
    api_host: str = DEFAULT_SENDGRID_HOST
    from_email: str | None = None
    from_name: str | None = None
    sandbox_mode: bool = False
    asm_group_id: int | None = None
    webhook_public_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str | None = None
    auth_token: str | None = field(default=None, repr=False)
    api_base_url: str = DEFAULT_TWILIO_BASE_URL
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback_url: str | None = None


@dataclass(frozen=True)
class WebhookSettings:
    """One webhook destination; the audience config names the variables holding its URL and
    secret (`url_env`, `secret_env`), so errors can name them."""

    url: str | None
    secret: str | None = field(repr=False)
    url_env: str
    secret_env: str
    destination: str = "webhook"


@dataclass(frozen=True)
class AdListSettings:
    out_dir: str | None = None
    api_url: str | None = None
    api_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ProviderSettings:
    mode: str = DRY_RUN
    sendgrid: SendGridSettings = field(default_factory=SendGridSettings)
    twilio: TwilioSettings = field(default_factory=TwilioSettings)
    ad_list: AdListSettings = field(default_factory=AdListSettings)

    @property
    def is_live(self) -> bool:
        return self.mode == LIVE

    @classmethod
    def from_env(cls, env: Mapping[str, str | None]) -> ProviderSettings:
        """From a mapping of the names in `ENV_VARS` to values (missing or empty = unset)."""
        values = {name: (env.get(name) or "").strip() or None for name in ENV_VARS}
        group = values["SENDGRID_ASM_GROUP_ID"]
        if group is not None and not group.isdigit():
            raise ValueError(f"SENDGRID_ASM_GROUP_ID must be a whole number, not {group!r}")
        return cls(
            mode=parse_mode(values["ACTIVATION_MODE"]),
            sendgrid=SendGridSettings(
                api_key=values["SENDGRID_API_KEY"],
                api_host=check_base_url(
                    "SENDGRID_API_HOST", values["SENDGRID_API_HOST"] or DEFAULT_SENDGRID_HOST
                ),
                from_email=values["SENDGRID_FROM_EMAIL"],
                from_name=values["SENDGRID_FROM_NAME"],
                sandbox_mode=_flag("SENDGRID_SANDBOX_MODE", values["SENDGRID_SANDBOX_MODE"]),
                asm_group_id=int(group) if group else None,
                webhook_public_key=values["SENDGRID_WEBHOOK_PUBLIC_KEY"],
            ),
            twilio=TwilioSettings(
                account_sid=values["TWILIO_ACCOUNT_SID"],
                auth_token=values["TWILIO_AUTH_TOKEN"],
                api_base_url=check_base_url(
                    "TWILIO_API_BASE_URL", values["TWILIO_API_BASE_URL"] or DEFAULT_TWILIO_BASE_URL
                ),
                from_number=values["TWILIO_FROM_NUMBER"],
                messaging_service_sid=values["TWILIO_MESSAGING_SERVICE_SID"],
                status_callback_url=values["TWILIO_STATUS_CALLBACK_URL"],
            ),
            ad_list=AdListSettings(
                out_dir=values["AD_LIST_DIR"],
                api_url=check_base_url("AD_API_URL", values["AD_API_URL"])
                if values["AD_API_URL"]
                else None,
                api_token=values["AD_API_TOKEN"],
            ),
        )


def webhook_settings(
    env: Mapping[str, str | None], *, url_env: str, secret_env: str, destination: str = "webhook"
) -> WebhookSettings:
    """A webhook destination from the variables its audience config names."""
    url = (env.get(url_env) or "").strip() or None
    return WebhookSettings(
        url=check_base_url(url_env, url) if url else None,
        secret=(env.get(secret_env) or "").strip() or None,
        url_env=url_env,
        secret_env=secret_env,
        destination=destination,
    )


_DRY_RUN_DESTINATIONS = {
    "email": ("sendgrid", 1000),
    "sms": ("twilio", 20),
    "webhook": ("webhook", 20),
    "ad_list": ("ad_list", 10_000),
}


def build_channel(
    channel: str,
    settings: ProviderSettings,
    *,
    webhook: WebhookSettings | None = None,
    ad_platform: str = "google",
    **options: Any,
) -> Channel:
    """The channel to dispatch with: a `DryRunChannel` unless `settings.mode` is `live`.
    `options` go to the live channel's constructor (timeouts, rate caps, batch sizes)."""
    if channel not in _DRY_RUN_DESTINATIONS:
        raise ValueError(
            f"unknown channel {channel!r}; channels are {sorted(_DRY_RUN_DESTINATIONS)}"
        )
    if not settings.is_live:
        destination, batch = _DRY_RUN_DESTINATIONS[channel]
        if channel == "webhook" and webhook is not None:
            destination = webhook.destination
        return DryRunChannel(channel=channel, destination=destination, max_batch_size=batch)

    # Live channels are imported here, not at module level: a dry-run never loads an HTTP client.
    if channel == "email":
        sendgrid = settings.sendgrid
        missing = [
            name
            for name, value in (
                ("SENDGRID_API_KEY", sendgrid.api_key),
                ("SENDGRID_FROM_EMAIL", sendgrid.from_email),
            )
            if not value
        ]
        if missing:
            raise MissingSettingError(channel, missing)
        from activations.channels.sendgrid_email import SendGridEmailChannel

        return SendGridEmailChannel(
            api_key=sendgrid.api_key or "",
            from_email=sendgrid.from_email or "",
            from_name=sendgrid.from_name,
            host=sendgrid.api_host,
            sandbox_mode=sendgrid.sandbox_mode,
            asm_group_id=sendgrid.asm_group_id,
            **options,
        )
    if channel == "sms":
        twilio = settings.twilio
        missing = [
            name
            for name, value in (
                ("TWILIO_ACCOUNT_SID", twilio.account_sid),
                ("TWILIO_AUTH_TOKEN", twilio.auth_token),
            )
            if not value
        ]
        if not twilio.from_number and not twilio.messaging_service_sid:
            missing.append("TWILIO_FROM_NUMBER (or TWILIO_MESSAGING_SERVICE_SID)")
        if missing:
            raise MissingSettingError(channel, missing)
        from activations.channels.twilio_sms import TwilioSmsChannel

        return TwilioSmsChannel(
            account_sid=twilio.account_sid or "",
            auth_token=twilio.auth_token or "",
            from_number=twilio.from_number,
            messaging_service_sid=twilio.messaging_service_sid,
            api_base_url=twilio.api_base_url,
            status_callback_url=twilio.status_callback_url,
            **options,
        )
    if channel == "webhook":
        if webhook is None:
            raise ValueError(
                "a webhook channel needs its WebhookSettings (from the audience config)"
            )
        missing = [
            name
            for name, value in (
                (webhook.url_env, webhook.url),
                (webhook.secret_env, webhook.secret),
            )
            if not value
        ]
        if missing:
            raise MissingSettingError(channel, missing)
        from activations.channels.webhook import WebhookChannel

        return WebhookChannel(
            url=webhook.url or "",
            secret=webhook.secret or "",
            destination=webhook.destination,
            **options,
        )
    ad = settings.ad_list
    missing = [] if ad.out_dir else ["AD_LIST_DIR"]
    if ad.api_url and not ad.api_token:
        missing.append("AD_API_TOKEN")
    if missing:
        raise MissingSettingError(channel, missing)
    from activations.channels.ad_list import AdListChannel

    return AdListChannel(
        out_dir=Path(ad.out_dir or ""),
        platform=ad_platform,
        api_url=ad.api_url,
        api_token=ad.api_token,
        **options,
    )
