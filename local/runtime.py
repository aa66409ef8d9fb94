"""In-process Lambda runtime for the offline stack.

moto runs Lambda code in Docker, which is not available here. This runtime runs a function's
handler in this process instead, the way the Lambda Python runtime would:

- the function's deployed code (the zip moto holds) is unpacked once per code version and its
  ``app.py`` is imported under a private module name (two functions may both have ``app.py``);
- layers resolve to the package roots already importable here (``layers/core``, ``layers/aws``);
- the function's environment variables are applied *while the module is imported* (cold start):
  handlers parse settings once, at import, so invocations never touch ``os.environ``;
- one invocation at a time per function (a per-function lock, like reserved concurrency 1);
- whatever the handler prints or logs goes to ``local/.state/lambda.log`` and to the function's
  CloudWatch log group in moto, never to the terminal of the demo.

Handlers must be single-file (``app.py`` plus layers): helper modules beside ``app.py`` would
collide between functions in ``sys.modules``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import sys
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

STATE_DIR = Path(__file__).resolve().parent / ".state"
REPO_ROOT = Path(__file__).resolve().parent.parent
LAYER_ROOTS = (REPO_ROOT / "layers" / "core", REPO_ROOT / "layers" / "aws")


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools and handlers read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    timeout_s: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class Invocation:
    """What one invocation returned: the JSON result (or error document) and whether it raised."""

    result: Any
    errored: bool
    logs: str
    duration_ms: float


class _ThreadRoutedStream(io.TextIOBase):
    """sys.stdout/stderr replacement: writes from an invocation's thread go to its log buffer."""

    def __init__(self, real: TextIO) -> None:
        self.real = real
        self.local = threading.local()

    def write(self, s: str) -> int:
        buf: io.StringIO | None = getattr(self.local, "buf", None)
        return (buf or self.real).write(s)

    def flush(self) -> None:
        if getattr(self.local, "buf", None) is None:
            self.real.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.real.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.real, "encoding", "utf-8")


class _Function:
    def __init__(self, name: str, module: ModuleType, handler: Callable[[Any, Any], Any]) -> None:
        self.name = name
        self.module = module
        self.handler = handler
        self.lock = threading.Lock()


class LocalRuntime:
    """Runs moto's Lambda functions in this process (see the module docstring)."""

    def __init__(self, log_path: Path | None = None) -> None:
        self._functions: dict[tuple[str, str], _Function] = {}
        self._import_lock = threading.Lock()
        self._log_lock = threading.Lock()
        self.log_path = log_path or STATE_DIR / "lambda.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.invocations: list[tuple[str, float, bool]] = []  # (function, duration ms, errored)
        self._stdout = self._route(sys, "stdout")
        self._stderr = self._route(sys, "stderr")
        for root in LAYER_ROOTS:  # what /opt/python is in Lambda
            if str(root) not in sys.path:
                sys.path.append(str(root))

    @staticmethod
    def _route(mod: Any, name: str) -> _ThreadRoutedStream:
        current = getattr(mod, name)
        if isinstance(current, _ThreadRoutedStream):
            return current
        routed = _ThreadRoutedStream(current)
        setattr(mod, name, routed)
        return routed

    # -- cold start ------------------------------------------------------------------------
    def _load(self, fn: Any) -> _Function:
        key = (fn.function_arn, fn.code_sha_256)
        loaded = self._functions.get(key)
        if loaded is not None:
            return loaded
        with self._import_lock:
            loaded = self._functions.get(key)
            if loaded is not None:
                return loaded
            code_dir = STATE_DIR / "lambda" / fn.function_name / hashlib.sha1(fn.code_bytes).hexdigest()[:12]
            if not code_dir.exists():
                code_dir.mkdir(parents=True)
                with zipfile.ZipFile(io.BytesIO(fn.code_bytes)) as zf:
                    zf.extractall(code_dir)
            module_file, _, attr = fn.handler.rpartition(".")
            path = code_dir / (module_file.replace(".", "/") + ".py")
            mod_name = f"_vigil_local_fn_{fn.function_name.replace('-', '_')}_{code_dir.name}"
            spec = importlib.util.spec_from_file_location(mod_name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import handler {fn.handler} from {path}")
            module = importlib.util.module_from_spec(spec)
            env = self._environment(fn)
            with _patched_environ(env), self._capture(fn.function_name):
                spec.loader.exec_module(module)
            sys.modules[mod_name] = module
            loaded = _Function(fn.function_name, module, getattr(module, attr))
            self._functions[key] = loaded
            return loaded

    @staticmethod
    def _environment(fn: Any) -> dict[str, str]:
        env = {
            "_HANDLER": fn.handler,
            "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_REGION": fn.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
        }
        env.update({k: str(v) for k, v in (fn.environment_vars or {}).items()})
        return env

    def warm(self, fn: Any) -> float:
        """Cold-start ``fn`` now (import its handler), like provisioned concurrency; returns ms."""
        started = time.perf_counter()
        self._load(fn)
        return (time.perf_counter() - started) * 1000

    # -- invoke ----------------------------------------------------------------------------
    def invoke(self, fn: Any, event: Any) -> Invocation:
        """Invoke moto ``LambdaFunction`` ``fn`` with ``event``; never raises for handler errors."""
        started = time.perf_counter()
        log = io.StringIO()
        errored = False
        try:
            loaded = self._load(fn)
        except Exception as exc:  # an import error is an Init error in Lambda
            return self._finish(
                fn, started, _error_doc(exc, "Runtime.ImportModuleError"), True, traceback.format_exc()
            )
        ctx = LambdaContext(
            function_name=fn.function_name,
            memory_limit_in_mb=int(fn.memory_size),
            invoked_function_arn=fn.function_arn,
            timeout_s=float(fn.timeout),
            log_group_name=f"/aws/lambda/{fn.function_name}",
        )
        with loaded.lock:
            self._stdout.local.buf = log
            self._stderr.local.buf = log
            try:
                result = loaded.handler(event, ctx)
            except Exception as exc:
                errored = True
                traceback.print_exc(file=log)
                result = _error_doc(exc, type(exc).__name__)
            finally:
                self._stdout.local.buf = None
                self._stderr.local.buf = None
        return self._finish(fn, started, result, errored, log.getvalue())

    def _finish(self, fn: Any, started: float, result: Any, errored: bool, logs: str) -> Invocation:
        ms = (time.perf_counter() - started) * 1000
        self.invocations.append((fn.function_name, ms, errored))
        header = (
            f"--- {time.strftime('%H:%M:%S')} {fn.function_name} {ms:.1f} ms{' ERROR' if errored else ''}\n"
        )
        with self._log_lock, self.log_path.open("a") as f:
            f.write(header + logs)
        # moto's CloudWatch Logs, so `aws logs tail` works too; best effort, never fails a call
        with contextlib.suppress(Exception):
            fn.save_logs(logs or header)
        return Invocation(result, errored, logs, ms)

    @contextmanager
    def _capture(self, name: str) -> Iterator[None]:
        buf = io.StringIO()
        self._stdout.local.buf = buf
        self._stderr.local.buf = buf
        try:
            yield
        finally:
            self._stdout.local.buf = None
            self._stderr.local.buf = None
            if buf.getvalue():
                with self._log_lock, self.log_path.open("a") as f:
                    f.write(f"--- {name} init\n{buf.getvalue()}")


def _error_doc(exc: BaseException, error_type: str) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": error_type,
        "stackTrace": traceback.format_exception(exc)[-5:],
    }


@contextmanager
def _patched_environ(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def result_json(inv: Invocation) -> str:
    return json.dumps(inv.result) if inv.result is not None else "null"
