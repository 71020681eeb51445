"""Publicly known keys: the list is what the Hardhat/Anvil mnemonic derives, a repo-spec naming
one as an admin is refused outside a declared throw-away environment, and the declaration must be
said in so many words."""

from __future__ import annotations

import pytest
import yaml

from govfleet.domain.eth import Account
from govfleet.domain.public_keys import (
    HARDHAT_ACCOUNTS,
    HARDHAT_DERIVATION,
    HARDHAT_MNEMONIC,
    public_admins,
    public_key_name,
)
from govfleet.repo_spec import parse_repo_spec
from govfleet.settings import THROWAWAY_VARIABLE, THROWAWAY_WORDS, Config, ConfigError, load_settings
from govfleet.startup_guard import PublicKeyAdmin, public_admins_of, refuse_public_admins
from tests.conftest import EXAMPLE_SPEC

OWN_ADMIN = Account.from_key(b"\x11" * 32).address  # a key nobody published


def test_the_list_is_the_twenty_accounts_of_the_hardhat_anvil_mnemonic():
    Account.enable_unaudited_hdwallet_features()
    derived = tuple(
        Account.from_mnemonic(HARDHAT_MNEMONIC, account_path=HARDHAT_DERIVATION.format(index=i)).address
        for i in range(20)
    )
    assert derived == HARDHAT_ACCOUNTS
    assert len(set(a.lower() for a in HARDHAT_ACCOUNTS)) == 20


def test_any_case_of_a_public_address_is_recognised_and_others_are_not():
    assert public_key_name(HARDHAT_ACCOUNTS[0].lower()) == "Hardhat/Anvil test account #0"
    assert public_key_name(HARDHAT_ACCOUNTS[19].upper().replace("0X", "0x")) == "Hardhat/Anvil test account #19"
    assert public_key_name(OWN_ADMIN) is None
    found = public_admins([("g-a", [OWN_ADMIN, HARDHAT_ACCOUNTS[3]]), ("g-b", [HARDHAT_ACCOUNTS[7]])])
    assert [(a.guardian_id, a.known_as) for a in found] == [
        ("g-a", "Hardhat/Anvil test account #3"),
        ("g-b", "Hardhat/Anvil test account #7"),
    ]


def spec_with(admins: list[str], other: list[str] | None = None):
    data = yaml.safe_load(EXAMPLE_SPEC.read_text())
    data["guardian"]["admins"] = admins
    if other is not None:
        data["guardians"] = [{"name": "second", "admins": other}]
    return parse_repo_spec(yaml.safe_dump(data))


def test_the_example_repo_spec_is_refused_naming_the_address():
    config = Config(settings=load_settings({}), spec=parse_repo_spec(EXAMPLE_SPEC.read_text()))
    with pytest.raises(PublicKeyAdmin) as info:
        refuse_public_admins(config, "worker")
    message = str(info.value)
    assert "\n" not in message
    assert HARDHAT_ACCOUNTS[0].lower() in message and "Hardhat/Anvil test account #0" in message
    assert "(and 1 more)" in message and f"{THROWAWAY_VARIABLE}={THROWAWAY_WORDS}" in message
    assert message.startswith("`govfleet worker` refuses to start: guardian governance-guardian admin")


def test_a_public_key_in_any_guardian_is_refused_and_own_keys_pass():
    own = Config(settings=load_settings({}), spec=spec_with([OWN_ADMIN], other=[]))
    assert refuse_public_admins(own, "api") == []
    second = Config(settings=load_settings({}), spec=spec_with([OWN_ADMIN], other=[HARDHAT_ACCOUNTS[5]]))
    with pytest.raises(PublicKeyAdmin) as info:
        refuse_public_admins(second, "api")
    assert "guardian governance-guardian-second admin" in str(info.value)
    assert [a.guardian_id for a in public_admins_of(second.spec)] == ["governance-guardian-second"]


def test_a_declared_throw_away_environment_accepts_them():
    settings = load_settings({THROWAWAY_VARIABLE: THROWAWAY_WORDS})
    assert settings.throwaway_environment
    accepted = refuse_public_admins(Config(settings=settings, spec=spec_with([HARDHAT_ACCOUNTS[0]])), "migrate")
    assert [a.address.lower() for a in accepted] == [HARDHAT_ACCOUNTS[0].lower()]


@pytest.mark.parametrize("value", ["1", "true", "yes", "YES-PUBLIC-KEYS-ARE-FINE", "yes public keys are fine"])
def test_the_declaration_must_be_said_in_so_many_words(value):
    with pytest.raises(ConfigError) as info:
        load_settings({THROWAWAY_VARIABLE: value})
    assert THROWAWAY_VARIABLE in str(info.value) and THROWAWAY_WORDS in str(info.value)


def test_an_empty_declaration_is_no_declaration():
    assert not load_settings({THROWAWAY_VARIABLE: ""}).throwaway_environment
