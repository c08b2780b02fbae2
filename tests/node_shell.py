"""A peer node's management commands, run by one Django process kept for the test's duration.

Multi-node tests prepare and inspect each peer node (its own database, name and keys) with its
management commands: `peer_add`, the demo seeds, `shell -c` snippets. Run as `manage.py`, each
of those is a new Python process that imports Django, the apps, web3, Celery and Twisted and
derives the key that opens the node's sealed keys before doing its few milliseconds of work:
about a second on an idle 2-core machine and several on a loaded one, and a three-node test
made dozens of them. :class:`NodeShell` starts the peer's Django once, with the peer's
environment, and runs every command through ``call_command`` (what ``manage.py`` runs) on the
peer's database, answering with what the command printed.

``python -m tests.node_shell`` is that process: one JSON request a line on stdin
(``{"argv": ["peer_add", "http://..."]}``), one JSON answer a line on the file descriptor that
was its stdout. Anything else the command writes to stdout or stderr goes to the log file.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent


class NodeShell:
    """One peer node's Django, ready to run its management commands."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self._buffer = b""
        # Started now, ready later: the first command waits for Django to finish loading.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.node_shell"],
            cwd=REPO,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )

    def manage(self, *arguments: str, timeout: float = 120) -> str:
        """What ``manage.py <arguments>`` prints; RuntimeError with the traceback if it fails."""
        assert self.process.stdin is not None
        what = f"manage.py {' '.join(arguments)}"[:200]
        try:
            self.process.stdin.write(json.dumps({"argv": list(arguments)}).encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise RuntimeError(f"{what}: the node's shell has exited:\n{self.log_tail()}") from None
        answer = json.loads(self._answer(what, timeout))
        if not answer["ok"]:
            raise RuntimeError(f"{what} failed:\n{answer['error'][-3000:]}")
        return str(answer["output"])

    def _answer(self, what: str, timeout: float) -> bytes:
        assert self.process.stdout is not None
        descriptor = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise TimeoutError(f"{what} did not finish within {timeout:.0f} s:\n{self.log_tail()}")
            readable, _, _ = select.select([descriptor], [], [], remaining)
            if readable:
                chunk = os.read(descriptor, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"{what}: the node's shell has exited:\n{self.log_tail()}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def log_tail(self, characters: int = 3000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-characters:]

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()  # end of input: the shell exits after its command
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()


def _run(argv: list[str], call_command: Any) -> dict[str, Any]:
    output = io.StringIO()
    try:
        # `shell -c` prints to sys.stdout; other commands write to the stdout they are given.
        with contextlib.redirect_stdout(output):
            call_command(*argv, stdout=output)
    except SystemExit as exit_:  # a snippet that calls sys.exit(), as manage.py would see it
        if exit_.code not in (None, 0):
            return {"ok": False, "output": output.getvalue(), "error": f"exit code {exit_.code}"}
    except Exception:
        return {"ok": False, "output": output.getvalue(), "error": traceback.format_exc()}
    return {"ok": True, "output": output.getvalue()}


def serve(requests: IO[str]) -> None:
    # Answers go to a copy of stdout; stdout itself becomes the log, so that nothing a command
    # writes there (a logging handler, a C library) can land inside an answer.
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settlement.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    for line in requests:
        answer = _run(json.loads(line)["argv"], call_command)
        # Each command starts on a fresh connection, as each `manage.py` did.
        connections.close_all()
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    # End of input: the test is done with this node. Every answer is out and no connection is
    # open, so nothing is lost by skipping the interpreter's teardown (seconds, with Django and
    # its libraries loaded).
    answers.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    serve(sys.stdin)
