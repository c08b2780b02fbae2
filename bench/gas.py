"""Gas per on-chain step of a channel, on anvil, next to go-nitro's and Raiden's published figures.

Runs against the chain `make bench` starts (ETH_RPC_URL, contracts from PARSEC_CONTRACTS_FILE):
fresh participants and channels each run, states signed with the project's EIP-712 code, the
transactions sent from anvil's unlocked dev account. Participants' accounts exist (they hold
ether) as they would in use, so a payout does not pay the 25,000 gas of creating an account.
Run: ``python -m bench.gas``.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address
from web3 import Web3

from bench.common import print_table, write_results
from channels_app.protocol import eip712, proposals
from channels_app.protocol.channel_state import Allocation, ChannelParams, ChannelState
from channels_app.protocol.state import SignedState
from channels_app.protocol.types import ETH, Version, Wei

REPO = Path(__file__).resolve().parent.parent

GO_NITRO = {"deposit": 46_496, "checkpoint": 73_936, "cooperative exit": 111_514, "dispute exit": 195_172}
RAIDEN = {"open": 113_248, "close": 118_503, "settle": 108_564}
CHALLENGE = 60


class Chain:
    def __init__(self) -> None:
        self.web3 = Web3(Web3.HTTPProvider(os.environ.get("ETH_RPC_URL", "http://127.0.0.1:8545")))
        record_path = os.environ.get("PARSEC_CONTRACTS_FILE", str(REPO / "var" / "contracts.json"))
        record = json.loads(Path(record_path).read_text())["contracts"]
        self.sender = self.web3.eth.accounts[0]
        self.contracts = {
            name: self.web3.eth.contract(
                address=to_checksum_address(record[name]["address"]),
                abi=json.loads((REPO / "contracts" / "build" / f"{name}.json").read_text())["abi"],
            )
            for name in ("Adjudicator", "AnchorRegistry", "DemoStableCoin")
        }
        self.chain_id = self.web3.eth.chain_id
        self.domain = eip712.Domain(self.chain_id, eip712.address(self.contracts["Adjudicator"].address))

    def send(self, call: Any, value: int = 0) -> int:
        tx_hash = call.transact({"from": self.sender, "value": value})
        receipt = self.web3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        if receipt["status"] != 1:
            raise SystemExit(f"a benchmark transaction reverted: {receipt}")
        return int(receipt["gasUsed"])

    def rpc(self, method: str, *params: Any) -> None:
        self.web3.provider.make_request(method, list(params))  # type: ignore[arg-type]


class Channel:
    """Two fresh participants with keys, a channel between them, states signed by both."""

    def __init__(self, chain: Chain, deposit: int) -> None:
        self.chain = chain
        self.keys = (secrets.token_bytes(32), secrets.token_bytes(32))
        participants = (eip712.address_of_key(self.keys[0]), eip712.address_of_key(self.keys[1]))
        for participant in participants:  # accounts that exist, as a participant's would
            chain.web3.eth.wait_for_transaction_receipt(
                chain.web3.eth.send_transaction(
                    {
                        "from": chain.sender,
                        "to": to_checksum_address(participant),
                        "value": Web3.to_wei(1, "wei"),
                    }
                )
            )
        self.params = ChannelParams(chain.chain_id, participants, secrets.randbits(63), CHALLENGE)
        self.opening = proposals.opening_state(self.params, {ETH: (deposit, deposit)})
        self.adjudicator = chain.contracts["Adjudicator"]

    def signed(self, version: int, a: int, b: int, *, final: bool = False) -> SignedState:
        state = ChannelState(
            self.params.channel_id, Version(version), (Allocation(ETH, Wei(a), Wei(b)),), is_final=final
        )
        sigs = tuple(eip712.sign_state(key, self.chain.domain, state) for key in self.keys)
        return SignedState(state, (sigs[0], sigs[1]))

    def args(self, signed: SignedState) -> tuple[Any, Any, Any]:
        return (
            eip712.params_as_abi_tuple(self.params),
            eip712.state_as_abi_tuple(signed.state),
            [eip712.signature_as_abi_tuple(s) for s in signed.signatures],
        )

    def deposit(self, amount: int) -> int:
        return self.chain.send(
            self.adjudicator.functions.deposit(self.params.channel_id, to_checksum_address(ETH), amount),
            amount,
        )


def measure_gas() -> dict[str, int]:
    chain = Chain()
    unit = 10**15
    gas: dict[str, int] = {}

    cooperative = Channel(chain, unit)
    gas["deposit"] = cooperative.deposit(unit)
    gas["deposit (second, same asset)"] = cooperative.deposit(unit)
    gas["checkpoint"] = chain.send(
        cooperative.adjudicator.functions.checkpoint(
            *cooperative.args(cooperative.signed(5, unit + 3, unit - 3))
        )
    )
    gas["cooperative exit"] = chain.send(
        cooperative.adjudicator.functions.conclude(
            *cooperative.args(cooperative.signed(6, unit + 7, unit - 7, final=True))
        )
    )

    disputed = Channel(chain, unit)
    disputed.deposit(unit)
    disputed.deposit(unit)
    stale, latest = disputed.signed(3, unit, unit), disputed.signed(4, unit + 5, unit - 5)
    register = chain.send(disputed.adjudicator.functions.register(*disputed.args(stale)))
    gas["refute (register a higher version)"] = chain.send(
        disputed.adjudicator.functions.register(*disputed.args(latest))
    )
    chain.rpc("evm_increaseTime", CHALLENGE + 1)
    chain.rpc("evm_mine")
    params, state, _ = disputed.args(latest)
    conclude = chain.send(disputed.adjudicator.functions.concludeRegistered(params, state))
    gas["dispute exit"] = register + conclude
    gas["  register"] = register
    gas["  concludeRegistered"] = conclude

    coin = chain.contracts["DemoStableCoin"]
    token_channel = Channel(chain, 0)
    chain.send(coin.functions.mint(chain.sender, 10**12))
    chain.send(coin.functions.approve(token_channel.adjudicator.address, 10**12))
    gas["deposit (first, ERC-20)"] = chain.send(
        token_channel.adjudicator.functions.deposit(token_channel.params.channel_id, coin.address, 10**6)
    )
    gas["AnchorRegistry.anchor"] = chain.send(
        chain.contracts["AnchorRegistry"].functions.anchor(secrets.randbits(32), secrets.token_bytes(32))
    )
    return gas


def main() -> None:
    gas = measure_gas()
    nitro_for = {
        "deposit": "deposit",
        "checkpoint": "checkpoint",
        "cooperative exit": "cooperative exit",
        "dispute exit": "dispute exit",
    }
    raiden_for = {"deposit": "open", "cooperative exit": "close", "dispute exit": "settle"}
    rows = []
    for step, used in gas.items():
        nitro = GO_NITRO.get(nitro_for.get(step, ""), 0)
        raiden_step = raiden_for.get(step, "")
        rows.append(
            {
                "step": step,
                "Parsec gas": used,
                "go-nitro": nitro or "",
                "vs go-nitro": f"{used / nitro:.2f}x" if nitro else "",
                "Raiden (step)": f"{RAIDEN[raiden_step]:,} ({raiden_step})" if raiden_step else "",
            }
        )
    print_table(
        "Gas per step (anvil; go-nitro and Raiden as published)",
        rows,
        ["step", "Parsec gas", "go-nitro", "vs go-nitro", "Raiden (step)"],
    )
    at_or_below = all(gas[step] <= limit for step, limit in GO_NITRO.items())
    print(f"\nat or below go-nitro on every step: {at_or_below}")
    path = write_results(
        "gas",
        {"parsec": gas, "go_nitro": GO_NITRO, "raiden": RAIDEN, "at_or_below_go_nitro": at_or_below},
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
