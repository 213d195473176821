"""A LocalStack Lambda runtime executor that runs Node.js functions as processes on the host.

LocalStack runs each Lambda execution environment in a Docker container: its Go init serves the
Lambda Runtime API to the runtime inside and talks to LocalStack over HTTP. Where there is no
Docker, this executor runs the same environment as one `node` process per execution environment,
on a small bootstrap (bootstrap.mjs, beside this file) that speaks LocalStack's side of the init's
protocol directly (`localstack/services/lambda_/invocation/executor_endpoint.py`):

- LocalStack -> runtime: ``POST http://127.0.0.1:<port>/invoke`` with
  ``{"invoke-id", "invoked-function-arn", "payload", "trace-id"}``;
- runtime -> LocalStack (``LOCALSTACK_RUNTIME_ENDPOINT``): ``/status/<id>/ready`` once the handler
  is loaded (the body carries the port the bootstrap listens on), ``/status/<id>/error`` when it
  cannot be loaded, then per invocation ``/invocations/<req>/logs`` followed by ``/response`` or
  ``/error``.

Everything else is LocalStack's own: the Lambda API, the code archive (unzipped by
``prepare_for_execution``), the environment variables and role credentials, the assignment of
invocations to environments, keep-alive, async invocation and retries, CloudWatch logs.

What the Go init does and a host process must do itself:

- the function timeout: the bootstrap exits when an invocation outlives it, and this executor
  kills the process if it does not;
- a runtime that dies mid-invocation (a crash, a SIGKILL, a timeout) answers the invocation with
  ``Runtime.ExitError`` (or ``Sandbox.Timedout``) and the environment is discarded, as on AWS: the
  executor raises ``StatusErrorException``, on which LocalStack stops the environment and returns
  the payload as the function's error;
- isolation: none beyond a separate process. The function sees the host's file system, runs as
  the LocalStack user, and reaches LocalStack at 127.0.0.1. Test infrastructure, not a sandbox;
- the Node.js version: the host's `node` (``SLUICE_NODE``, else the one on LocalStack's PATH) runs
  every nodejs* runtime. The architecture (arm64/x86_64) is ignored.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time
from collections import deque
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from pathlib import Path

from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.services.lambda_.invocation.executor_endpoint import (
    ExecutorEndpoint,
    InvokeSendError,
    ShutdownDuringStartup,
    StatusErrorException,
)
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

from sluice_localstack_executor.faults import FAULTS, MAX_EVENT_PAYLOAD

LOG = logging.getLogger(__name__)

BOOTSTRAP = Path(__file__).with_name("bootstrap.mjs")

# Exit status of the bootstrap when an invocation outlived the function's timeout.
TIMEOUT_EXIT_CODE = 124
# How long past the function timeout the executor waits before killing a runtime that did not stop
# itself (a handler blocking the event loop cannot be interrupted from inside the process).
TIMEOUT_GRACE_S = 3.0

# Host variables the runtime inherits; everything else comes from LocalStack (the function's
# configuration, role credentials, AWS_ENDPOINT_URL, ...), as in a Lambda container.
HOST_ENV = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)

MAX_KEPT_OUTPUT_CHARS = 1024 * 1024


def node_binary() -> str:
    """`SLUICE_NODE`, else `node` on LocalStack's PATH."""
    node = os.environ.get("SLUICE_NODE") or shutil.which("node")
    if not node or not os.access(node, os.X_OK):
        raise LambdaRuntimeException(
            "host executor: no node binary (set SLUICE_NODE or put node on the PATH of LocalStack)"
        )
    return node


def log_dir() -> Path:
    return Path(
        os.environ.get("SLUICE_HOST_EXECUTOR_LOG_DIR") or os.path.join(os.getcwd(), "host-executor-logs")
    )


class HostExecutorEndpoint(ExecutorEndpoint):
    """LocalStack's executor endpoint for one host process, which learns the process's port from
    its ready callback (the process listens on a port the system chose, so two environments never
    race for one)."""

    def status_ready(self, request, executor_id):
        body = request.get_json(force=True, silent=True) or {}
        try:
            self.container_port = int(body["port"])
        except (KeyError, TypeError, ValueError):
            LOG.warning("host executor %s: ready without a port: %s", executor_id, request.data)
        return super().status_ready(request, executor_id)


class HostRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.executor_endpoint = HostExecutorEndpoint(self.id, container_address="127.0.0.1", container_port=None)
        self.process: subprocess.Popen | None = None
        self.output: deque[str] = deque()
        self.output_chars = 0
        self.output_lock = threading.Lock()
        self.reader: threading.Thread | None = None
        self.log_path: Path | None = None

    # ---- where things are ------------------------------------------------------------------------

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        # The function runs on this host: LocalStack is on the loopback interface.
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        return (
            f"http://{self.get_endpoint_from_executor()}:{config.GATEWAY_LISTEN[0].port}"
            f"{self.executor_endpoint.get_endpoint_prefix()}"
        )

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self, env_vars: dict[str, str]) -> None:
        fv = self.function_version
        code_dir = fv.config.code.get_unzipped_code_location()
        env = {name: os.environ[name] for name in HOST_ENV if name in os.environ}
        env.update({k: str(v) for k, v in env_vars.items() if v is not None})
        env["LAMBDA_TASK_ROOT"] = str(code_dir)
        env["LAMBDA_RUNTIME_DIR"] = str(BOOTSTRAP.parent)
        if fv.config.runtime:
            env["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{fv.config.runtime}"
        # The host's Node.js may be older than the function's runtime (nodejs22.x on Node 20): the AWS
        # SDK's warning about that concerns the host, not the function, which on AWS runs on its runtime.
        env.setdefault("AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED", "true")

        directory = log_dir()
        directory.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / f"{fv.id.function_name}-{self.id}.log"

        self.executor_endpoint.start()
        # Same process group as LocalStack (no new session): stopping LocalStack's group
        # (test/localstack/stop.sh) stops every runtime with it.
        self.process = subprocess.Popen(
            [node_binary(), str(BOOTSTRAP)],
            cwd=str(code_dir),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        LOG.debug(
            "host executor %s: started pid %s for %s (code %s, log %s)",
            self.id,
            self.process.pid,
            fv.qualified_arn,
            code_dir,
            self.log_path,
        )
        self.reader = threading.Thread(
            target=self._read_output, name=f"lambda-host-{self.id[:8]}", daemon=True
        )
        self.reader.start()
        self._wait_for_startup()

    def _wait_for_startup(self) -> None:
        future = self.executor_endpoint.startup_future
        while True:
            try:
                future.result(timeout=0.05)
                return
            except FutureTimeoutError:
                pass
            except CancelledError as e:
                raise ShutdownDuringStartup("host executor: environment stopped during startup") from e
            code = self.process.poll()
            if code is not None:
                try:  # the error callback may have arrived just before the exit
                    future.result(timeout=0.5)
                    return
                except FutureTimeoutError:
                    pass
                except CancelledError as e:
                    raise ShutdownDuringStartup("host executor: environment stopped during startup") from e
                raise LambdaRuntimeException(
                    f"host executor: the runtime exited with status {code} during init: {self._tail()}"
                )

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        try:
            self.executor_endpoint.shutdown()
        except Exception as e:
            LOG.debug("host executor %s: error while shutting down its endpoint: %s", self.id, e)

    # ---- invocations -----------------------------------------------------------------------------

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        function_name = self.function_version.id.function_name
        request_id = payload["invoke-id"]
        body = dict(payload)

        fault = FAULTS.on_invoke(function_name, payload.get("payload") or "")
        if fault is not None:
            FAULTS.record(
                {
                    "event": "fired",
                    "id": fault.rule.id,
                    "action": fault.rule.action,
                    "function": function_name,
                    "requestId": request_id,
                    "executor": self.id,
                    "pid": self.process.pid if self.process else None,
                    "payload": (payload.get("payload") or "")[:MAX_EVENT_PAYLOAD],
                }
            )
            LOG.info("host executor: fault %s (%s) on %s %s", fault.rule.id, fault.rule.action, function_name, request_id)
            if fault.rule.action == "hold":
                held = FAULTS.hold(fault)
                FAULTS.record({"event": "released", "id": fault.rule.id, "requestId": request_id, "heldS": held})
            elif fault.kill_after_ms is not None:
                body["sluice-fault"] = {"kill": True, "afterMs": fault.kill_after_ms}

        endpoint = self.executor_endpoint
        endpoint.invocation_future = Future()
        endpoint.logs = None
        if self.process is None or self.process.poll() is not None:
            raise StatusErrorException(
                "runtime not running", payload=self._exit_payload(request_id, self.process and self.process.poll())
            )
        url = f"http://{endpoint.container_address}:{endpoint.container_port}/invoke"
        response = endpoint._perform_invoke(invocation_url=url, proxies={"http": "", "https": ""}, payload=body)
        if not response.ok:
            raise InvokeSendError(f"host executor: {url} answered {response.status_code} to invocation {request_id}")

        timeout_s = float(self.function_version.config.timeout or 3)
        deadline = time.monotonic() + timeout_s + TIMEOUT_GRACE_S
        future = endpoint.invocation_future
        while True:
            try:
                return future.result(timeout=0.05)
            except FutureTimeoutError:
                pass
            # CancelledError (the environment was stopped, e.g. the function deleted) propagates.
            code = self.process.poll()
            if code is not None:
                try:  # an answer posted just before the exit still counts
                    return future.result(timeout=0.05)
                except FutureTimeoutError:
                    pass
                LOG.info(
                    "host executor %s: runtime of %s exited with %s during invocation %s",
                    self.id,
                    function_name,
                    code,
                    request_id,
                )
                raise StatusErrorException(
                    "runtime exited during the invocation", payload=self._exit_payload(request_id, code, timeout_s)
                )
            if time.monotonic() > deadline:
                LOG.info("host executor %s: invocation %s of %s timed out; killing", self.id, request_id, function_name)
                self.process.kill()
                self.process.wait(timeout=5)
                raise StatusErrorException(
                    "invocation timed out", payload=self._exit_payload(request_id, TIMEOUT_EXIT_CODE, timeout_s)
                )

    @staticmethod
    def _exit_payload(request_id: str, code: int | None, timeout_s: float = 0) -> bytes:
        """The error AWS Lambda reports for a runtime that timed out or died mid-invocation."""
        if code == TIMEOUT_EXIT_CODE:
            error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds",
            }
        else:
            how = f"signal: {_signal_name(-code)}" if code is not None and code < 0 else f"exit status {code}"
            error = {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {how}",
            }
        return json.dumps(error).encode()

    # ---- logs ------------------------------------------------------------------------------------

    def _read_output(self) -> None:
        process = self.process
        with open(self.log_path, "a", encoding="utf-8") as log_file:
            for raw in iter(process.stdout.readline, b""):
                line = raw.decode("utf-8", errors="replace")
                log_file.write(line)
                log_file.flush()
                with self.output_lock:
                    self.output.append(line)
                    self.output_chars += len(line)
                    while self.output_chars > MAX_KEPT_OUTPUT_CHARS and len(self.output) > 1:
                        self.output_chars -= len(self.output.popleft())
            code = process.wait()
            log_file.write(f"[host executor] runtime pid {process.pid} exited with {code}\n")

    def _tail(self, lines: int = 20) -> str:
        if self.reader is not None:
            self.reader.join(timeout=1)
        with self.output_lock:
            return "".join(list(self.output)[-lines:]).strip() or "(no output)"

    def get_logs(self) -> str:
        with self.output_lock:
            return "".join(self.output)

    # ---- versions --------------------------------------------------------------------------------

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        cfg = function_version.config
        if cfg.package_type != PackageType.Zip:
            raise LambdaRuntimeException("the host executor runs zip packages only, not container images")
        if not str(cfg.runtime or "").startswith("nodejs"):
            raise LambdaRuntimeException(
                f"the host executor runs Node.js functions only, not runtime {cfg.runtime}"
            )
        if cfg.layers:
            raise LambdaRuntimeException("the host executor does not support layers")
        node_binary()
        if cfg.code:
            # Downloads the archive from LocalStack's internal bucket and unzips it (only the
            # docker executor does this itself; every executor must).
            cfg.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        # Nothing to undo: the unzipped code belongs to LocalStack (deleted with the function).
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        try:
            node = node_binary()
        except LambdaRuntimeException as e:
            LOG.warning("%s", e)
            return False
        LOG.info("Lambda runtime executor 'host': Node.js functions run as host processes (%s)", node)
        return True


def _signal_name(number: int) -> str:
    import signal

    try:
        return {signal.SIGKILL: "killed", signal.SIGTERM: "terminated", signal.SIGSEGV: "segmentation fault"}.get(
            signal.Signals(number), signal.Signals(number).name
        )
    except ValueError:
        return str(number)
