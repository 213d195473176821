"""Fault injection for end-to-end tests: a JSON control file read on every invocation.

The file (``SLUICE_HOST_EXECUTOR_FAULTS``, default ``host-executor-faults.json`` in LocalStack's
working directory, which is ``test/.tmp`` when started by ``test/localstack/start.sh``) holds rules::

    {"rules": [
      {"id": "kill-one", "function": "PartitionFunction", "action": "kill", "skip": 3, "afterMs": 100},
      {"id": "hold-reduce", "function": "PartitionFunction", "action": "hold",
       "match": "\\"inputs\\":[{\\"kind\\":\\"shuffle\\"", "exclude": "\\"end\\":0}", "holdMs": 30000}
    ]}

A rule applies to invocations whose function name contains ``function`` and whose payload (the
event, as a JSON string) contains every string of ``match`` and none of ``exclude``. It lets
``skip`` of them through, counted from when the rule first appears, then fires on the next
``times`` (default 1):

- ``kill``: the handler runs for ``afterMs`` milliseconds (or until it finishes, whichever comes
  first), then the runtime process kills itself with SIGKILL without answering: a killed
  invocation. The caller gets ``Runtime.ExitError`` and the environment is discarded, as on AWS.
- ``hold``: the invocation is not handed to the runtime until the release file exists (``release``,
  default ``<faults file>.<id>.release``) or ``holdMs`` (default 30000) passes.

Every firing is appended as a JSON line to ``<faults file>.events.jsonl`` (with the payload), before
a hold starts, so a test can see which task is held and act on it. Nothing happens while the file
does not exist.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field

LOG = logging.getLogger(__name__)

DEFAULT_FILE_NAME = "host-executor-faults.json"
MAX_EVENT_PAYLOAD = 256 * 1024  # characters of the payload kept in an event


def _strings(value) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def faults_path() -> str:
    return os.environ.get("SLUICE_HOST_EXECUTOR_FAULTS") or os.path.join(os.getcwd(), DEFAULT_FILE_NAME)


@dataclass
class Rule:
    id: str
    action: str
    function: str = ""
    match: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    skip: int = 0
    times: int = 1
    after_ms: int = 0
    hold_ms: int = 30_000
    release: str | None = None


@dataclass
class Fault:
    """What to do to one invocation."""

    rule: Rule
    release_path: str

    @property
    def kill_after_ms(self) -> int | None:
        return self.rule.after_ms if self.rule.action == "kill" else None


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._rules: list[Rule] = []
        self._seen: dict[str, int] = {}
        self._fired: dict[str, int] = {}

    def _load(self, path: str) -> None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self._stamp = None
            self._rules = []
            return
        stamp = (st.st_mtime, st.st_size)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            with open(path, encoding="utf-8") as f:
                raw = json.load(f)
            rules = []
            strings = lambda v: [v] if isinstance(v, str) else [str(x) for x in v]  # noqa: E731
            for r in raw.get("rules", []):
                rules.append(
                    Rule(
                        id=str(r["id"]),
                        action=str(r["action"]),
                        function=str(r.get("function", "")),
                        match=_strings(r.get("match", [])),
                        exclude=_strings(r.get("exclude", [])),
                        skip=int(r.get("skip", 0)),
                        times=int(r.get("times", 1)),
                        after_ms=int(r.get("afterMs", 0)),
                        hold_ms=int(r.get("holdMs", 30_000)),
                        release=r.get("release"),
                    )
                )
            for rule in rules:
                if rule.action not in ("kill", "hold"):
                    raise ValueError(f"rule {rule.id}: unknown action {rule.action!r} (kill or hold)")
            self._rules = rules
            LOG.info("host executor: %d fault rule(s) loaded from %s", len(rules), path)
        except Exception as e:  # a half-written file is read again on its next change
            LOG.warning("host executor: ignoring fault file %s: %s", path, e)
            self._rules = []

    def on_invoke(self, function_name: str, payload: str) -> Fault | None:
        """Counts the invocation against the rules; returns the fault to inject, if any."""
        path = faults_path()
        with self._lock:
            self._load(path)
            for rule in self._rules:
                if rule.function not in function_name:
                    continue
                if not all(m in payload for m in rule.match) or any(x in payload for x in rule.exclude):
                    continue
                seen = self._seen.get(rule.id, 0)
                self._seen[rule.id] = seen + 1
                fired = self._fired.get(rule.id, 0)
                if seen < rule.skip or fired >= rule.times:
                    continue
                self._fired[rule.id] = fired + 1
                release = rule.release or f"{path}.{rule.id}.release"
                return Fault(rule=rule, release_path=release)
        return None

    def record(self, event: dict) -> None:
        path = faults_path() + ".events.jsonl"
        line = json.dumps({"time": time.time(), **event}, separators=(",", ":"))
        with self._lock:
            try:
                with open(path, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
            except OSError as e:
                LOG.warning("host executor: cannot record fault event in %s: %s", path, e)

    def hold(self, fault: Fault) -> float:
        """Blocks until the release file exists or the hold time passes; returns the seconds held."""
        started = time.monotonic()
        deadline = started + fault.rule.hold_ms / 1000
        while time.monotonic() < deadline and not os.path.exists(fault.release_path):
            time.sleep(0.05)
        return time.monotonic() - started


FAULTS = FaultInjector()
