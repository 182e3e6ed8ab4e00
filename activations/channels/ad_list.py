"""Hashed customer lists for ad platforms (Google Customer Match, Meta, X custom audiences).

Only SHA-256 digests of normalised identifiers leave the warehouse (`activations.hashing`):
each batch is written to a CSV part file (`email_sha256,phone_sha256`, no send_id, no
customer id) and, when an ad API URL is configured, POSTed in batches of at most 10,000
records (Meta's per-call limit) as `{"audience": ..., "users": [{"email_sha256": ...,
"phone_sha256": ...}]}` with a bearer token.

Part files are named by a hash of their send_ids and written atomically, so a rerun after a
crash rewrites the same file instead of appending duplicates. Platforms treat a list as a set
of hashes, so an `unknown` batch can be sent again safely: the channel is `idempotent`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from activations.channels.base import (
    ACCEPTED,
    NOT_SENT,
    REJECTED,
    UNKNOWN,
    Outcome,
    SendResult,
)
from activations.channels.webhook import classify_exception
from activations.hashing import PhoneFormat, hash_email, hash_phone
from activations.messages import SendRow
from activations.ratelimit import Attempt, Clock, Destination, RetryPolicy, Sleep

MAX_RECORDS_PER_CALL = 10_000
PHONE_FORMATS: dict[str, PhoneFormat] = {"google": "e164", "meta": "digits", "x": "digits"}


@dataclass(frozen=True)
class AdListMember:
    """One person of an ad audience: identifiers as planned (raw or already hashed)."""

    send_id: str
    campaign: str
    variant: str
    email: str | None
    phone: str | None


def member_from_row(row: SendRow) -> AdListMember:
    """The renderer of ad_list rows: the audience row's `email` and `phone` columns."""
    email = row.context.get("email") or None
    phone = row.context.get("phone") or None
    return AdListMember(
        send_id=row.send_id,
        campaign=row.campaign,
        variant=row.variant,
        email=str(email) if email else None,
        phone=str(phone) if phone else None,
    )


class AdListChannel:
    channel = "ad_list"
    idempotent = True

    def __init__(
        self,
        *,
        out_dir: str | Path,
        platform: str = "google",
        audience: str | None = None,
        api_url: str | None = None,
        api_token: str | None = None,
        gmail_dot_rule: bool = False,
        max_batch_size: int = MAX_RECORDS_PER_CALL,
        timeout_s: float = 60.0,
        max_requests_per_s: float | None = None,
        retry_policy: RetryPolicy | None = None,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
    ) -> None:
        if platform not in PHONE_FORMATS:
            raise ValueError(f"ad platform {platform!r} is not one of {sorted(PHONE_FORMATS)}")
        if not 1 <= max_batch_size <= MAX_RECORDS_PER_CALL:
            raise ValueError(f"max_batch_size must be in 1..{MAX_RECORDS_PER_CALL}")
        if api_url and not api_token:
            raise ValueError("an ad API URL needs an API token")
        self.out_dir = Path(out_dir)
        self.platform = platform
        self.audience = audience
        self.api_url = api_url
        self._token = api_token
        self.gmail_dot_rule = gmail_dot_rule
        self.max_batch_size = max_batch_size
        self.timeout_s = timeout_s
        self.destination = f"ad_api_{platform}" if api_url else f"ad_list_file_{platform}"
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.limiter = Destination(
            self.destination,
            max_requests_per_s=max_requests_per_s,
            policy=retry_policy,
            clock=clock,
            sleep=sleep,
        )
        self.files: list[Path] = []

    def batches(self, messages: Sequence[AdListMember]) -> Iterator[list[AdListMember]]:
        for start in range(0, len(messages), self.max_batch_size):
            yield list(messages[start : start + self.max_batch_size])

    def hashed(self, member: AdListMember) -> dict[str, str]:
        record: dict[str, str] = {}
        if member.email:
            record["email_sha256"] = hash_email(member.email, gmail_dot_rule=self.gmail_dot_rule)
        if member.phone:
            record["phone_sha256"] = hash_phone(
                member.phone, phone_format=PHONE_FORMATS[self.platform]
            )
        return record

    def _write_part(
        self, campaign: str, records: list[dict[str, str]], send_ids: list[str]
    ) -> Path:
        folder = self.out_dir / campaign
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256("\n".join(sorted(send_ids)).encode()).hexdigest()[:16]
        path = folder / f"part-{digest}.csv"
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, fieldnames=["email_sha256", "phone_sha256"], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(records)
        temporary = path.with_suffix(".csv.tmp")
        temporary.write_text(buffer.getvalue(), encoding="utf-8")
        os.replace(temporary, path)
        return path

    def _post(self, audience: str, records: list[dict[str, str]]) -> Attempt:
        assert self.api_url is not None
        body = json.dumps({"audience": audience, "users": records}).encode()
        request = urllib.request.Request(
            self.api_url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._token}"},
        )
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                return Attempt("ok", status=response.status)
        except urllib.error.HTTPError as error:
            headers: dict[str, Any] = dict(error.headers.items()) if error.headers else {}
            if error.code == 429:
                return Attempt("rate_limited", status=429, headers=headers)
            # A third-party error body may echo the payload (names, ids); keep the status only.
            described = f"{self.destination} HTTP {error.code}"
            if error.code in (401, 403, 404):
                return Attempt("account_error", status=error.code, error=described)
            if error.code >= 500:
                return Attempt("unknown", status=error.code, error=described)
            return Attempt("rejected", status=error.code, error=described)
        except Exception as error:
            return classify_exception(error)

    def send(self, batch: Sequence[AdListMember]) -> SendResult:
        result = SendResult(outcomes=[])
        records: list[dict[str, str]] = []
        members: list[AdListMember] = []
        for member in batch:
            try:
                record = self.hashed(member)
            except ValueError:
                result.outcomes.append(
                    Outcome(member.send_id, REJECTED, error="identifier could not be normalised")
                )
                continue
            if not record:
                result.outcomes.append(
                    Outcome(member.send_id, REJECTED, error="no email or phone to match on")
                )
                continue
            records.append(record)
            members.append(member)
        if not members:
            return result
        campaign = members[0].campaign
        self.files.append(self._write_part(campaign, records, [m.send_id for m in members]))
        if not self.api_url:
            result.outcomes.extend(Outcome(m.send_id, ACCEPTED) for m in members)
            return result
        call = self.limiter.call(lambda: self._post(self.audience or campaign, records))
        result.requests += 1 + call.retries
        attempt = call.attempt
        if attempt.kind == "ok":
            result.outcomes.extend(Outcome(m.send_id, ACCEPTED) for m in members)
        elif call.gave_up or attempt.kind == "account_error":
            result.halt = f"{self.destination}: {call.gave_up or attempt.error}"
            result.fatal = attempt.kind == "account_error"
            result.outcomes.extend(Outcome(m.send_id, NOT_SENT, error=result.halt) for m in members)
        elif attempt.kind == "rejected":
            result.outcomes.extend(
                Outcome(m.send_id, REJECTED, error=attempt.error) for m in members
            )
        else:
            result.outcomes.extend(
                Outcome(m.send_id, UNKNOWN, error=attempt.error) for m in members
            )
        return result
