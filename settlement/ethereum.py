"""The Ethereum gateway every app shares: the RPC connection, the deployed contracts, sending
transactions with the node's (or a custodial) key, and reading events from a block range.

Nonces are taken under a Redis lock per sending address, held from reading the pending
nonce until the signed transaction is handed to the RPC, so two workers of one node never sign
two transactions with the same nonce. What a transaction is *for*, and following it until it
is final, belongs to the app that sends it (``channels_app.models.OnChainTransaction``).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from eth_account import Account
from eth_utils import to_checksum_address
from web3 import HTTPProvider, Web3

from settlement.health import redis_client

BUILD_DIR = Path(settings.BASE_DIR) / "contracts" / "build"
# Used when gas estimation fails (a pending transaction the call depends on is not mined
# yet): the transaction then pays at most this and, if it does revert, is recorded as such.
FALLBACK_GAS = 600_000
NONCE_LOCK_SECONDS = 30


class EthereumError(Exception):
    """The RPC refused or failed a request; the message names what and why."""


@dataclass(frozen=True)
class SentTransaction:
    tx_hash: str
    nonce: int
    sender: str


@dataclass(frozen=True)
class BlockRef:
    number: int
    hash: str
    timestamp: int


@dataclass(frozen=True)
class ChainEvent:
    name: str
    args: dict[str, Any]
    block_number: int
    block_hash: str
    transaction_hash: str
    log_index: int


@functools.lru_cache(maxsize=8)
def _web3_for(url: str, timeout: float) -> Web3:
    return Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}))


def web3() -> Web3:
    """The process's connection to ``ETH_RPC_URL`` (kept, so HTTP connections are reused)."""
    return _web3_for(settings.ETH_RPC_URL, max(10.0, float(settings.ETH_RPC_TIMEOUT_SECONDS)))


@functools.lru_cache(maxsize=8)
def _chain_id_of(url: str) -> int:
    return int(web3().eth.chain_id)


def chain_id() -> int:
    """The chain's id, asked once per RPC URL and process (it is fixed for a chain)."""
    return _chain_id_of(settings.ETH_RPC_URL)


@functools.lru_cache(maxsize=8)
def _record_at(path: str, modified: float) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(Path(path).read_text())
    return record


def contracts_record() -> dict[str, Any]:
    """The deployed contracts' addresses; read again whenever the file changes."""
    path = Path(settings.CONTRACTS_FILE)
    try:
        return _record_at(str(path), path.stat().st_mtime)
    except FileNotFoundError as error:
        raise EthereumError(
            f"{path} is missing: the contracts are not deployed (make run deploys them)"
        ) from error


def contract_address(name: str) -> str:
    try:
        return to_checksum_address(contracts_record()["contracts"][name]["address"])
    except KeyError as error:
        raise EthereumError(
            f"{name} is not deployed on this chain (see {settings.CONTRACTS_FILE})"
        ) from error


def contract_deploy_block(name: str) -> int:
    return int(contracts_record()["contracts"][name].get("block", 0))


@functools.lru_cache(maxsize=16)
def contract_abi(name: str) -> list[dict[str, Any]]:
    abi: list[dict[str, Any]] = json.loads((BUILD_DIR / f"{name}.json").read_text())["abi"]
    return abi


def contract(name: str) -> Any:
    return web3().eth.contract(address=contract_address(name), abi=contract_abi(name))  # type: ignore[call-overload]


def encode_call(name: str, function: str, *args: Any) -> str:
    data: str = contract(name).encode_abi(function, args=list(args))
    return data


def address_of(private_key: bytes) -> str:
    return str(Account.from_key(private_key).address)


def node_private_key() -> bytes:
    from settlement.keystore import node_ethereum_private_key

    return node_ethereum_private_key()


def transaction_send(
    *,
    to: str,
    data: str,
    value: int = 0,
    private_key: bytes | None = None,
    gas: int | None = None,
) -> SentTransaction:
    """Sign and send one transaction (with the node's key unless another is given)."""
    key = private_key if private_key is not None else node_private_key()
    sender = address_of(key)
    eth = web3().eth
    lock = redis_client().lock(
        f"{settings.REDIS_KEY_PREFIX}:eth-nonce:{sender.lower()}",
        timeout=NONCE_LOCK_SECONDS,
        blocking_timeout=20,
    )
    if not lock.acquire():
        raise EthereumError(f"could not take the nonce lock of {sender} within 20 s")
    try:
        nonce = eth.get_transaction_count(sender, "pending")  # type: ignore[arg-type]
        call = {"from": sender, "to": to_checksum_address(to), "data": data, "value": value}
        if gas is None:
            try:
                gas = int(eth.estimate_gas(call)) * 12 // 10 + 10_000  # type: ignore[arg-type]
            except Exception:  # any refusal: send with a cap and record the outcome
                gas = FALLBACK_GAS
        transaction = {**call, "nonce": nonce, "gas": gas, "chainId": chain_id(), **_fee_fields(eth)}
        signed = Account.sign_transaction(transaction, key)
        try:
            tx_hash = eth.send_raw_transaction(signed.raw_transaction)
        except Exception as error:
            raise EthereumError(f"the RPC refused the transaction: {_one_line(error)}") from error
    finally:
        lock.release()
    return SentTransaction("0x" + bytes(tx_hash).hex(), nonce, sender)


def _fee_fields(eth: Any) -> dict[str, int]:
    """EIP-1559 fees: room for the base fee to double, and the tip the node suggests.

    A legacy price of twice ``eth_gasPrice`` compounded: a node's suggestion follows the tips
    recently paid, so paying double made the next suggestion double (on anvil every deposit
    stalled on "insufficient funds" after some thirty sends). The tip here is the suggestion
    itself, so what we pay never feeds back into it."""
    base_fee = eth.get_block("latest").get("baseFeePerGas")
    if base_fee is None:  # a chain before London: legacy pricing
        return {"gasPrice": int(eth.gas_price)}
    tip = int(eth.max_priority_fee)
    return {"maxFeePerGas": 2 * int(base_fee) + tip, "maxPriorityFeePerGas": tip, "type": 2}


def receipt(tx_hash: str) -> dict[str, Any] | None:
    try:
        found = web3().eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    except Exception:  # web3 raises TransactionNotFound for "not (or no longer) mined"
        return None
    return dict(found)


def block(number: int | str = "latest") -> BlockRef | None:
    try:
        found = web3().eth.get_block(number)  # type: ignore[arg-type]
    except Exception:  # BlockNotFound: a block a reorg took away
        return None
    return BlockRef(int(found["number"]), "0x" + bytes(found["hash"]).hex(), int(found["timestamp"]))


def events(name: str, from_block: int, to_block: int) -> list[ChainEvent]:
    """Every event of contract ``name`` in ``[from_block, to_block]``, decoded, in chain order."""
    instance = contract(name)
    by_topic = {
        _as_bytes(getattr(instance.events, item["name"]).topic): getattr(instance.events, item["name"])
        for item in contract_abi(name)
        if item["type"] == "event"
    }
    logs = web3().eth.get_logs({"address": instance.address, "fromBlock": from_block, "toBlock": to_block})
    found = []
    for log in logs:
        event = by_topic.get(_as_bytes(log["topics"][0]))
        if event is None:
            continue
        decoded = event().process_log(log)
        found.append(
            ChainEvent(
                name=decoded["event"],
                args=dict(decoded["args"]),
                block_number=int(log["blockNumber"]),
                block_hash="0x" + bytes(log["blockHash"]).hex(),
                transaction_hash="0x" + bytes(log["transactionHash"]).hex(),
                log_index=int(log["logIndex"]),
            )
        )
    return found


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:250]
