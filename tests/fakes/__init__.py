"""Fake providers on 127.0.0.1 that speak the real HTTP APIs (PROVIDERS.md §1), for tests and
benchmarks: the official clients are pointed at them and cannot tell the difference.

    fake = start_fake_sendgrid()          # .url, .script(...), .received_send_ids(), .stop()
    fake = start_fake_twilio()            # Messages API, basic auth, 21610, 20429
    fake = start_fake_webhook(secret)     # verifies the HMAC signature and timestamp
    fake = start_fake_ad_api(token)       # every identifier must be 64-hex, <= 10k per call

Every fake records each request, can be scripted with faults (`ok`, `status`, `rate_limit`,
`timeout`, `reset`) or seeded random faults, and collects `violations` (a request inside a
rate-limit window it announced, a `bypass_*` setting, raw PII to the ad API, any request while
`refuse_all` is set); `assert_no_violations()` fails the test. The pytest fixtures in
`tests.fakes.fixtures` call it at teardown.
"""

from tests.fakes.ad_api import FakeAdApi, start_fake_ad_api
from tests.fakes.sendgrid import FakeSendGrid, start_fake_sendgrid
from tests.fakes.server import FakeServer, Fault, ok, rate_limit, reset, status, timeout
from tests.fakes.twilio import FakeTwilio, start_fake_twilio
from tests.fakes.webhook import FakeWebhookReceiver, start_fake_webhook

__all__ = [
    "FakeAdApi",
    "FakeSendGrid",
    "FakeServer",
    "FakeTwilio",
    "FakeWebhookReceiver",
    "Fault",
    "ok",
    "rate_limit",
    "reset",
    "start_fake_ad_api",
    "start_fake_sendgrid",
    "start_fake_twilio",
    "start_fake_webhook",
    "status",
    "timeout",
]
