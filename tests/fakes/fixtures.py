"""pytest fixtures for the fakes; each fails the test at teardown if the fake saw a violation.

from tests.fakes.fixtures import fake_sendgrid  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.ad_api import FakeAdApi, start_fake_ad_api
from tests.fakes.sendgrid import FakeSendGrid, start_fake_sendgrid
from tests.fakes.twilio import FakeTwilio, start_fake_twilio
from tests.fakes.webhook import FakeWebhookReceiver, start_fake_webhook


@pytest.fixture
def fake_sendgrid() -> Iterator[FakeSendGrid]:
    fake = start_fake_sendgrid()
    yield fake
    fake.stop()
    fake.assert_no_violations()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = start_fake_twilio()
    yield fake
    fake.stop()
    fake.assert_no_violations()


@pytest.fixture
def fake_webhook() -> Iterator[FakeWebhookReceiver]:
    fake = start_fake_webhook()
    yield fake
    fake.stop()
    fake.assert_no_violations()


@pytest.fixture
def fake_ad_api() -> Iterator[FakeAdApi]:
    fake = start_fake_ad_api()
    yield fake
    fake.stop()
    fake.assert_no_violations()
