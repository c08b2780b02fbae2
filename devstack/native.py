"""`python -m devstack.native`: build Parsec's one compiled module, when its source is newer.

``settlement/protocol/_rfc9162_native.c`` hashes a whole RFC 9162 Merkle level per call (see
its header for why). It is compiled here with the compiler and flags this Python was built
with, against the system's OpenSSL, in place next to its source. ``make install`` runs this, so
``make run`` and ``make test`` always use it; a checkout where it was never built still works,
on merkle.py's pure-Python loop, which yields the same bytes.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

from devstack.services import REPO

SOURCE = REPO / "settlement" / "protocol" / "_rfc9162_native.c"


def target() -> Path:
    return SOURCE.with_name(SOURCE.stem + str(sysconfig.get_config_var("EXT_SUFFIX")))


def compile_command(output: Path) -> list[str]:
    compiler = shlex.split(str(sysconfig.get_config_var("CC") or "cc"))
    include = sysconfig.get_paths()["include"]
    return [
        *compiler,
        "-O2",
        "-Wall",
        "-Werror",
        "-fPIC",
        "-shared",
        f"-I{include}",
        str(SOURCE),
        "-o",
        str(output),
        "-lcrypto",
    ]


def build(*, force: bool = False) -> Path:
    output = target()
    if not force and output.exists() and output.stat().st_mtime >= SOURCE.stat().st_mtime:
        return output
    partial = output.with_suffix(".partial")
    subprocess.run(compile_command(partial), check=True)
    partial.replace(output)  # a half-written module is never importable
    print(f"[parsec] built {output.relative_to(REPO)}")
    return output


def main() -> int:
    try:
        build(force="--force" in sys.argv[1:])
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"[parsec] could not build {SOURCE.relative_to(REPO)}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
