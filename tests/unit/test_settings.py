"""The settings model reads the functions' environment the way pydantic-settings did, without importing it."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError, create_model
from relaydesk.config import Settings, get_settings

DEPLOYED = {  # what template.yaml's Globals give every function (values as Lambda passes them: text)
    "RELAYDESK_ENVIRONMENT": "production", "RELAYDESK_MAIL_DOMAIN": "mail.relaydesk.test",
    "RELAYDESK_TICKETS_TABLE": "tickets", "RELAYDESK_DIRECTORY_TABLE": "directory",
    "RELAYDESK_IDEMPOTENCY_TABLE": "idem", "RELAYDESK_COUNTERS_TABLE": "counters",
    "RELAYDESK_RAW_MAIL_BUCKET": "raw", "RELAYDESK_NOTIFICATIONS_QUEUE_URL": "https://sqs.test/q",
    "RELAYDESK_MAX_DELIVERY_ATTEMPTS": "5", "RELAYDESK_CREDENTIALS_CACHE_SECONDS": "300",
    "RELAYDESK_SMTP_DATA_TIMEOUT": "12.5", "RELAYDESK_DEFAULT_FROM_DOMAIN": "",
    "POWERTOOLS_SERVICE_NAME": "relaydesk", "RELAYDESK_NOT_A_SETTING": "ignored",
}


def test_deployed_environment_is_read_converted_and_validated():
    settings = Settings.from_environment(DEPLOYED)

    assert settings.environment == "production"
    assert settings.tickets_table == "tickets"
    assert settings.max_delivery_attempts == 5 and settings.credentials_cache_seconds == 300
    assert settings.smtp_data_timeout == 12.5
    assert settings.outbound_default_domain == "mail.relaydesk.test"  # an empty variable is read as empty
    assert settings.secret_prefix == "relaydesk/connector/"  # unset: the default


def test_reads_the_same_values_pydantic_settings_read(monkeypatch):
    pydantic_settings = pytest.importorskip("pydantic_settings")

    class Reading(pydantic_settings.BaseSettings):  # the previous definition's reading rules, as the oracle
        model_config = pydantic_settings.SettingsConfigDict(env_prefix="RELAYDESK_", extra="ignore")

    fields = {name: (field.annotation, field) for name, field in Settings.model_fields.items()}
    reference_model = create_model("Reference", __base__=Reading, **fields)
    environment = {**DEPLOYED, "relaydesk_secret_prefix": "lower/case/name/"}  # pydantic-settings ignored case
    for key in [key for key in os.environ if key.upper().startswith("RELAYDESK_")]:
        monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)

    mine = Settings.from_environment(environment)

    assert mine.model_dump() == reference_model().model_dump()
    assert mine.secret_prefix == "lower/case/name/"


def test_missing_variable_fails_with_its_name():
    environment = {key: value for key, value in DEPLOYED.items() if key != "RELAYDESK_MAIL_DOMAIN"}

    with pytest.raises(ValidationError, match="mail_domain"):
        Settings.from_environment(environment)


def test_invalid_value_fails_instead_of_defaulting():
    with pytest.raises(ValidationError, match="max_delivery_attempts"):
        Settings.from_environment({**DEPLOYED, "RELAYDESK_MAX_DELIVERY_ATTEMPTS": "0"})
    with pytest.raises(ValidationError, match="environment"):
        Settings.from_environment({**DEPLOYED, "RELAYDESK_ENVIRONMENT": "staging"})


def test_get_settings_reads_the_process_environment_once(monkeypatch):
    for key, value in DEPLOYED.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        settings = get_settings()
        monkeypatch.setenv("RELAYDESK_TICKETS_TABLE", "changed")
        assert get_settings() is settings and settings.tickets_table == "tickets"
        with pytest.raises(ValidationError):
            settings.tickets_table = "x"  # frozen, as before
    finally:
        get_settings.cache_clear()
