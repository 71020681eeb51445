"""Addresses whose private keys are public: an admin holding one is no admin at all, since
anyone can sign a pause or a resume with it (docs/security.md, "Publicly known keys").

The list: the 20 accounts of the standard Hardhat / Anvil development mnemonic
`test test test test test test test test test test test junk`, derivation path
`m/44'/60'/0'/0/i` for i = 0..19 — the accounts every local chain, tutorial and test suite
starts with. They were derived once with eth-account
(`Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")`) and are written here as
literals, so that checking a repo-spec needs no key derivation;
tests/unit/test_public_keys.py derives them again and compares.

Pure: no I/O. Addresses are compared in lower case.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

HARDHAT_MNEMONIC = "test test test test test test test test test test test junk"
HARDHAT_DERIVATION = "m/44'/60'/0'/0/{index}"

# Index i is the account at m/44'/60'/0'/0/i of HARDHAT_MNEMONIC (EIP-55 checksummed).
HARDHAT_ACCOUNTS: tuple[str, ...] = (
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
    "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
    "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
    "0xBcd4042DE499D14e55001CcbB24a551F3b954096",
    "0x71bE63f3384f5fb98995898A86B02Fb2426c5788",
    "0xFABB0ac9d68B0B445fB7357272Ff202C5651694a",
    "0x1CBd3b2770909D4e10f157cABC84C7264073C9Ec",
    "0xdF3e18d64BC6A983f673Ab319CCaE4f1a57C7097",
    "0xcd3B766CCDd6AE721141F452C550Ca635964ce71",
    "0x2546BcD3c84621e976D8185a91A922aE77ECEc30",
    "0xbDA5747bFD65F08deb54cb465eB87D40e51B197E",
    "0xdD2FD4581271e230360230F9337D5c0430Bf44C0",
    "0x8626f6940E2eb28930eFb4CeF49B2d1F2C9C1199",
)

_KNOWN: dict[str, str] = {
    address.lower(): f"Hardhat/Anvil test account #{index}" for index, address in enumerate(HARDHAT_ACCOUNTS)
}


def public_key_name(address: str) -> str | None:
    """What the address is known as when its private key is public; None for any other."""
    return _KNOWN.get(address.lower())


@dataclass(frozen=True)
class PublicAdmin:
    """An admin address of a guardian whose private key is public."""

    guardian_id: str
    address: str
    known_as: str

    def describe(self) -> str:
        return f"guardian {self.guardian_id} admin {self.address} ({self.known_as}, whose private key is public)"


def public_admins(admins_by_guardian: Iterable[tuple[str, Iterable[str]]]) -> list[PublicAdmin]:
    """Every (guardian id, admin address) pair whose key is public, in the order given."""
    found: list[PublicAdmin] = []
    for guardian_id, admins in admins_by_guardian:
        for address in admins:
            name = public_key_name(address)
            if name is not None:
                found.append(PublicAdmin(guardian_id=guardian_id, address=address, known_as=name))
    return found
