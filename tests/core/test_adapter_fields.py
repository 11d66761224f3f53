"""Adapters own their configuration: declared fields validate, and `integrations enable`
offers exactly those fields as options."""

from __future__ import annotations

import base64
import secrets
from typing import Annotated, ClassVar

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app
from cli.options import adapter_options
from partner_signals.adapters import ADAPTERS, Adapter, CredentialError
from partner_signals.adapters.config import AdapterConfig, AdapterSecrets, Cli
from partner_signals.crypto import decrypt_json
from partner_signals.registry import RegistryError, enable_adapter, integration_context
from partner_signals.settings import Settings

runner = CliRunner()
API_KEY = "nory-api-key-4b8c9d0e1f2a3b4c"
AUTH_TOKEN = "twilio-auth-token-7f3e9a1c55d2"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2


def whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def company(cli_env: None, ids: str) -> str:
    name = f"fields-{ids}"
    run("restaurants", "add", "--company", name, "--restaurant", f"{name}-r", "--timezone", "UTC")
    return name


def run(*args: str, input: str | None = None, code: int = 0) -> str:
    result = runner.invoke(app, list(args), input=input)
    assert result.exit_code == code, result.output
    return result.output


def stored(engine: sa.Engine, settings: Settings, company: str, adapter: str) -> tuple[dict, dict]:
    with engine.connect() as conn:
        config, blob = conn.execute(
            sa.text(
                "select config, secret_ciphertext from ops.integrations "
                "where company_id = :c and provider = :p"
            ),
            {"c": company, "p": adapter},
        ).one()
    context = integration_context(company, adapter, None)
    return config, decrypt_json(settings.master_key(), bytes(blob), context=context)


def test_every_declared_field_is_an_option_of_enable() -> None:
    help_text = run("integrations", "enable", "--help")
    flags = {spec.flag for adapter in ADAPTERS.values() for spec in adapter.fields()}
    assert flags >= {"--url", "--secret", "--api-key", "--account-sid", "--auth-token"}
    assert {"--from-number", "--events", "--signals", "--location-id", "--receipt-to"} <= flags
    assert {"--nudge-to", "--nudge-after-minutes"} <= flags
    for flag in flags:
        assert flag[:18] in help_text  # rich may cut a long flag with an ellipsis


def test_adapters_lists_each_adapter_its_plans_and_fields() -> None:
    listing = run("integrations", "adapters")
    for name, adapter in ADAPTERS.items():
        assert f"{name}: {adapter.description}" in listing.replace("\n", " ")
        for spec in adapter.fields():
            assert spec.name in listing
    assert "plans: enterprise" in listing  # messaging


def test_workforce_from_options_stdin_and_env(
    company: str, engine: sa.Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = run("integrations", "enable", "workforce", "--company", company,
              "--url", "https://nory.example/push", "--api-key", "-", "--location-id", "loc-9",
              "--events", "table.seated, order.created,table.seated", input=API_KEY + "\n")  # fmt: skip
    assert "workforce enabled" in out and API_KEY not in out
    config, sealed = stored(engine, settings, company, "workforce")
    assert config == {
        "url": "https://nory.example/push",
        "location_id": "loc-9",
        "events": ["order.created", "table.seated"],
    }
    assert sealed == {"api_key": API_KEY}
    other = API_KEY[::-1]
    monkeypatch.setenv("PARTNER_SIGNALS_ADAPTER_API_KEY", other)
    run("integrations", "enable", "crm", "--company", company, "--url", "https://crm.example")
    assert stored(engine, settings, company, "crm")[1] == {"api_key": other}


def test_a_rotation_keeps_at_most_two_previous_secrets(
    company: str, engine: sa.Engine, settings: Settings
) -> None:
    given = [whsec() for _ in range(4)]
    run("integrations", "enable", "webhook", "--company", company,
        "--url", "https://partner.example/hook", "--secret", given[0])  # fmt: skip
    for secret in given[1:]:
        out = run("integrations", "enable", "webhook", "--company", company,
                  "--url", "https://partner.example/hook", "--secret", secret, "--keep-previous")  # fmt: skip
    assert "(3 signing secrets" in out
    assert stored(engine, settings, company, "webhook")[1] == {"secrets": given[:0:-1]}


def test_an_option_for_a_missing_secret_names_the_field(company: str) -> None:
    out = run("integrations", "enable", "crm", "--company", company,
              "--url", "https://crm.example", code=1)  # fmt: skip
    assert "crm needs api_key" in out


def test_a_config_key_the_adapter_does_not_declare_is_refused(
    engine: sa.Engine, settings: Settings, company: str
) -> None:
    with engine.begin() as conn, pytest.raises(RegistryError, match="no config field colour"):
        enable_adapter(
            conn,
            key=settings.master_key(),
            company_id=company,
            adapter="workforce",
            config={"url": "https://nory.example", "colour": "red"},
            secrets={"api_key": API_KEY},
        )


def test_a_refusal_never_carries_the_secret() -> None:
    token = "tok-" + secrets.token_hex(4)  # too short, so refused
    with pytest.raises(CredentialError) as refused:
        ADAPTERS["messaging"].validate(
            {"from": "+97140000000", "nudge_after_minutes": 0},
            {"account_sid": ACCOUNT_SID, "auth_token": token},
        )
    message = str(refused.value)
    assert "auth_token is too short" in message and "nudge_after_minutes" in message
    assert token not in message and ACCOUNT_SID not in message


def test_two_adapters_may_not_declare_one_flag_two_ways() -> None:
    class TextKey(AdapterSecrets):
        api_key: Annotated[str, Cli(stdin=True)]

    class NumberKey(AdapterConfig):
        key: Annotated[float | None, Cli(flag="--api-key")] = None

    class One(Adapter):
        name: ClassVar[str] = "one"
        secrets_model = TextKey

    class Two(Adapter):
        name: ClassVar[str] = "two"
        config_model = NumberKey

    assert [o.flag for o in adapter_options({"one": One()})] == [
        "--events",
        "--signals",
        "--api-key",
    ]
    with pytest.raises(TypeError, match="two declares --api-key unlike one"):
        adapter_options({"one": One(), "two": Two()})
