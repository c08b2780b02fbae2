"""Compile the contracts and deploy the network's shared ones to the local chain."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from devstack.services import REPO, ServiceError, json_rpc

BUILD_DIR = REPO / "contracts" / "build"
# Contracts every node of a local network shares, deployed once per chain.
SHARED_CONTRACTS = ("AnchorRegistry", "Adjudicator", "DemoStableCoin")


def compile_contracts() -> None:
    try:
        subprocess.run(
            ["node", str(REPO / "contracts" / "build.mjs")], check=True, capture_output=True, text=True
        )
    except FileNotFoundError as error:
        raise ServiceError("node is not installed: apt-get install nodejs npm") from error
    except subprocess.CalledProcessError as error:
        raise ServiceError(f"the contracts do not compile:\n{error.stderr}") from error


def artifact(name: str) -> dict[str, object]:
    path = BUILD_DIR / f"{name}.json"
    if not path.exists():
        raise ServiceError(f"{path} is missing: run `make contracts`")
    result: dict[str, object] = json.loads(path.read_text())
    return result


def _wait_for_receipt(rpc_url: str, tx_hash: str) -> dict[str, str]:
    for _ in range(200):
        receipt = json_rpc(rpc_url, "eth_getTransactionReceipt", [tx_hash])
        if receipt:
            return receipt  # type: ignore[return-value]
        json_rpc(rpc_url, "evm_mine")  # anvil with a block time mines anyway; without one, we must
    raise ServiceError(f"deployment transaction {tx_hash} was never mined")


def deploy_shared_contracts(rpc_url: str, record: Path) -> dict[str, object]:
    """Deploy each shared contract unless the record names an address that still holds code.

    The record survives restarts with anvil's state file; a fresh chain gets fresh contracts.
    """
    chain_id = int(str(json_rpc(rpc_url, "eth_chainId")), 16)
    known: dict[str, Any] = json.loads(record.read_text()) if record.exists() else {}
    contracts: dict[str, dict[str, Any]] = dict(known.get("contracts", {}))
    deployer = json_rpc(rpc_url, "eth_accounts")[0]  # type: ignore[index]
    changed = known.get("chain_id") != chain_id
    for name in SHARED_CONTRACTS:
        entry = contracts.get(name)
        if (
            not changed
            and entry
            and json_rpc(rpc_url, "eth_getCode", [entry["address"], "latest"]) not in ("0x", None)
        ):
            continue
        built = artifact(name)
        tx_hash = json_rpc(rpc_url, "eth_sendTransaction", [{"from": deployer, "data": built["bytecode"]}])
        receipt = _wait_for_receipt(rpc_url, str(tx_hash))
        if receipt.get("status") != "0x1":
            raise ServiceError(f"deploying {name} failed: {receipt}")
        contracts[name] = {
            "address": to_checksum_address(receipt["contractAddress"]),
            "block": int(receipt["blockNumber"], 16),
            "transaction": tx_hash,
        }
        changed = True
    result = {"chain_id": chain_id, "contracts": contracts}
    if changed or not record.exists():
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Deploy the shared contracts to an Ethereum node.")
    parser.add_argument("--rpc", required=True, help="JSON-RPC URL, e.g. http://anvil:8545")
    parser.add_argument("--record", type=Path, required=True, help="where the addresses are written")
    arguments = parser.parse_args()
    compile_contracts()
    deployed = deploy_shared_contracts(arguments.rpc, arguments.record)
    print(json.dumps(deployed, indent=2))


if __name__ == "__main__":
    main()
