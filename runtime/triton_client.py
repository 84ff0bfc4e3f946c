"""A Triton Inference Server as a backend: ``dpanet deblur --server URL`` (torch-free;
docs/serving.md).

:class:`TritonBackend` is a backend like the local ones (:mod:`dpanet.runtime.pipeline`): it takes
the network's N x 3 x H x W float32 arrays and returns its output, sending them to the server with
``tritonclient``. Reading, channel order, padding, tiling and writing are the local code, so a pair
deblurred through a server is written exactly as a local run writes it.

The server tells the channel order its inputs are in: the ``dpanet.channel_order`` parameter of
the model configuration (repositories from ``dpanet triton-repo``), else BGR, the order ``dpanet
serve`` takes (:data:`dpanet.runtime.triton_serve.WIRE_CHANNEL_ORDER`).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import numpy as np

from dpanet.errors import DPANetError
from dpanet.runtime.model_info import INPUT_NAMES, OUTPUT_NAME
from dpanet.runtime.triton_serve import ERROR_MARK, INSTALL_HINT, WIRE_CHANNEL_ORDER

CHANNEL_ORDER_PARAMETER = "dpanet.channel_order"
DEFAULT_TIMEOUT_S = 600.0  # one large frame on a CPU server takes minutes


def split_url(url: str) -> tuple[str, str]:
    """(protocol, host:port) of ``http://host:port``, ``grpc://host:port`` or ``host:port`` (HTTP)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "grpc") or not parts.hostname or parts.port is None:
        raise DPANetError(f"--server {url}: give http://HOST:PORT or grpc://HOST:PORT")
    if parts.path not in ("", "/"):
        raise DPANetError(f"--server {url}: a server address has no path")
    return parts.scheme, parts.netloc


class TritonBackend:
    """Callable ``(left, right) -> output`` on N x 3 x H x W float32 arrays, run by model ``name``
    of the Triton server at ``url``. Checks the server and the model at construction."""

    def __init__(self, url: str, name: str = "dpanet", timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        protocol, address = split_url(url)
        try:
            if protocol == "grpc":
                import tritonclient.grpc as client
            else:
                import tritonclient.http as client
        except ImportError as exc:
            raise DPANetError(f"{INSTALL_HINT} ({exc})") from None
        self._client_module = client
        self.url, self.name, self._grpc = url, name, protocol == "grpc"
        self._timeout_s = timeout_s
        if self._grpc:
            self._client = client.InferenceServerClient(address)
        else:
            self._client = client.InferenceServerClient(
                address, connection_timeout=timeout_s, network_timeout=timeout_s
            )
        self._check_model()
        self.channel_order = self._channel_order()

    def _ask(self, what: str, call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except Exception as exc:  # tritonclient and its transports raise many types
            raise DPANetError(f"--server {self.url}: {what} ({_first_line(exc)})") from None

    def _check_model(self) -> None:
        if not self._ask("no Triton server answers", self._client.is_server_live):
            raise DPANetError(f"--server {self.url}: the Triton server is not live")
        if not self._ask("no Triton server answers", self._client.is_model_ready, self.name):
            raise DPANetError(f"--server {self.url}: no model {self.name!r} ready{self._served()}")

    def _served(self) -> str:
        """`` (served: A, B)``, or nothing where the server keeps its index to itself (PyTriton)."""
        try:
            index = self._client.get_model_repository_index()
        except Exception:
            return ""
        entries = index.models if self._grpc else index
        names = sorted({e.name if self._grpc else e["name"] for e in entries})
        return f" (served: {', '.join(names) or 'none'})"

    def _channel_order(self) -> str:
        config = self._ask("cannot read the model configuration", self._client.get_model_config, self.name)
        if self._grpc:
            parameters = {k: v.string_value for k, v in config.config.parameters.items()}
        else:
            parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        return parameters.get(CHANNEL_ORDER_PARAMETER, WIRE_CHANNEL_ORDER)

    def __call__(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        client = self._client_module
        inputs = []
        for name, array in zip(INPUT_NAMES, (left, right), strict=True):
            port = client.InferInput(name, list(array.shape), "FP32")
            port.set_data_from_numpy(np.ascontiguousarray(array, dtype=np.float32))
            inputs.append(port)
        outputs = [client.InferRequestedOutput(OUTPUT_NAME)]
        timeout = {"client_timeout": self._timeout_s} if self._grpc else {}
        try:
            result = self._client.infer(self.name, inputs, outputs=outputs, **timeout)
        except Exception as exc:
            raise DPANetError(f"--server {self.url}: {_server_message(exc)}") from None
        return result.as_numpy(OUTPUT_NAME)

    def close(self) -> None:
        self._client.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _server_message(exc: BaseException) -> str:
    """The one line a failed request means: ours (after :data:`ERROR_MARK` in PyTriton's
    traceback), else the server's first line (Triton's own checks: shapes outside an engine's
    profile, a model that went away)."""
    text = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
    ours = re.findall(re.escape(ERROR_MARK) + r"(.+)", text or "")
    return ours[-1].strip() if ours else _first_line(exc)
