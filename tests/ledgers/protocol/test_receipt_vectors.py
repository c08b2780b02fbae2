"""The committed receipt vectors (tests/vectors/receipts/) still hold, and regenerating them gives
the same documents: a change to the receipt format or its checks fails here, not in the field.
The version 2 vectors (tests/vectors/receipts/v2/, no longer generated) still give their verdicts:
receipts a relying party was handed before version 3 stay valid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ledgers.protocol.receipt import receipt_verify
from settlement.verify import RECEIPT_SECTIONS
from tests.vectors.generate_receipts import vectors

ROOT = Path(__file__).resolve().parents[3]
VECTORS = ROOT / "tests" / "vectors" / "receipts"
INDEX = json.loads((VECTORS / "index.json").read_text())
VERSION_2 = VECTORS / "v2"
INDEX_2 = json.loads((VERSION_2 / "index.json").read_text())
# Both sets, each vector with the folder it is in.
ALL = [(VECTORS, item) for item in INDEX] + [(VERSION_2, item) for item in INDEX_2]
ALL_IDS = [f"{folder.name}/{item['file']}" for folder, item in ALL]


@pytest.mark.parametrize(("folder", "vector"), ALL, ids=ALL_IDS)
def test_each_vector_gives_its_verdict_and_first_failed_check(
    folder: Path, vector: dict[str, object]
) -> None:
    document = json.loads((folder / str(vector["file"])).read_text())
    report = receipt_verify(document, sections=RECEIPT_SECTIONS)
    assert report.ok == (vector["exit_status"] == 0)
    failed = report.first_failure
    assert (failed.name if failed else None) == vector["first_failed_check"]


def test_the_valid_vectors_are_of_the_version_their_folder_says() -> None:
    for folder, vector in ALL:
        document = json.loads((folder / str(vector["file"])).read_text())
        if vector["exit_status"] == 0:
            assert document["version"] == (2 if folder == VERSION_2 else 3), vector["file"]


def test_regenerating_the_vectors_gives_the_committed_files() -> None:
    generated = {name: document for name, document, *_ in vectors()}
    assert sorted(generated) == sorted(item["file"] for item in INDEX)
    for name, document in generated.items():
        assert json.loads((VECTORS / name).read_text()) == document, name


@pytest.mark.parametrize(("folder", "vector"), ALL, ids=ALL_IDS)
def test_the_command_exits_with_the_vectors_status_and_names_the_failed_check(
    folder: Path, vector: dict[str, object]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "settlement.verify", str(folder / str(vector["file"]))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == vector["exit_status"], done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    if vector["first_failed_check"]:
        assert last.startswith(f"NOT VALID: check {vector['first_failed_check']} failed")
    else:
        assert last.startswith("VALID")
        assert all(line.split()[1] in ("ok", "not") for line in done.stdout.strip().splitlines()[:-1])


def test_an_unreadable_file_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "receipt.json"
    broken.write_text("{not json")
    done = subprocess.run(
        [sys.executable, "-m", "settlement.verify", str(broken)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "cannot read" in done.stderr


def test_pinned_keys_that_differ_fail_the_command() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "settlement.verify",
            str(VECTORS / "valid-anchored.json"),
            "--issuer",
            "00" * 32,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "check issuer-signature failed" in done.stdout
