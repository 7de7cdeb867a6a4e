"""A TCP proxy that breaks the link between a kiosk and the server on purpose (issue 15 item 5).

`FaultProxy` listens on a free port of 127.0.0.1 and forwards each connection to the server.
It reads the client's HTTP/1.1 requests (headers + ``Content-Length`` body) so that it can
injure a request as a whole, and relays the server's answers as raw bytes. Per request it
draws one fault, with the probabilities of a `FaultPlan`:

``cut_request``
    forward a random prefix of the request (so mostly in the middle of a blob chunk's body),
    then reset both connections: the server sees half a request;
``cut_response``
    forward the request whole, then reset the link after a random number (0..400) of the
    answer's bytes: the server did the work, the client never hears of it;
``delay``
    wait a random 0..``max_delay_s`` before forwarding;
``duplicate``
    deliver a copy of the request on a connection of its own first (its answer is dropped),
    then the request itself: the server receives it twice (the second with a nonce it has
    seen: ``nonce_replayed``, so the kiosk signs it again and sends it a third time);
``reorder``
    hold the request back and reset the client's connection; deliver the held request
    ``reorder_delay_s`` later on a connection of its own, after the kiosk's retry of it went
    through: an older request arrives after a newer one.

Every fault is counted by kind (`FaultProxy.counts`). Used by tests/sync/test_faults.py and
benchmarks/sync_faults.py; a ``FaultPlan()`` with all probabilities 0 is a plain proxy.

    with FaultProxy(server_port, FaultPlan(cut_request=0.1, seed=3)) as proxy:
        ... talk to proxy.url ...
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import socket
import struct
import threading
import time
from collections import Counter

KINDS = ("cut_request", "cut_response", "delay", "duplicate", "reorder")
MAX_HEADER = 64 << 10


@dataclasses.dataclass
class FaultPlan:
    """The probability of each fault per request (their sum at most 1), and its sizes."""

    cut_request: float = 0.0
    cut_response: float = 0.0
    delay: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    max_delay_s: float = 0.3
    reorder_delay_s: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        if sum(getattr(self, k) for k in KINDS) > 1.0 + 1e-9:
            raise ValueError("the fault probabilities add up to more than 1")


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees 'connection reset', as on a cut link."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)        # wakes a thread blocked in recv on it
    with contextlib.suppress(OSError):
        sock.close()


def _read_request(sock: socket.socket, buf: bytearray) -> bytes | None:
    """One whole HTTP request from ``sock`` (``buf`` keeps what was read past it); None at
    the end of the stream."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None
        buf.extend(data)
        if len(buf) > MAX_HEADER and b"\r\n\r\n" not in buf:
            raise ValueError("request header too long")
    end = buf.index(b"\r\n\r\n") + 4
    length = 0
    for line in bytes(buf[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(buf) < end + length:
        data = sock.recv(65536)
        if not data:
            return None
        buf.extend(data)
    request = bytes(buf[:end + length])
    del buf[:end + length]
    return request


def _send_alone(port: int, request: bytes, timeout: float = 30.0) -> None:
    """Deliver ``request`` on a connection of its own and read (drop) the answer."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port),
                                                                timeout=timeout) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass


class FaultProxy:
    """The proxy (see the module docstring); ``upstream_port`` on 127.0.0.1."""

    def __init__(self, upstream_port: int, plan: FaultPlan | None = None) -> None:
        self.upstream_port = upstream_port
        self.plan = plan or FaultPlan()
        self.rng = random.Random(self.plan.seed)
        self.counts: Counter[str] = Counter()
        self.requests = 0
        self.enabled = True
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()
        self._stopping = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ life
    def start(self) -> FaultProxy:
        t = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)   # wakes the accept (close alone does not)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            socks = list(self._open)
        for s in socks:
            _reset(s)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def cut_all(self) -> None:
        """Reset every open connection now (the Wi-Fi dropped)."""
        with self._lock:
            socks = list(self._open)
        for s in socks:
            _reset(s)
        with self._lock:
            self.counts["cut_all"] += 1

    # ------------------------------------------------------------------ plumbing
    def _draw(self) -> str | None:
        with self._lock:
            self.requests += 1
            if not self.enabled:
                return None
            x = self.rng.random()
            for kind in KINDS:
                p = getattr(self.plan, kind)
                if x < p:
                    self.counts[kind] += 1
                    return kind
                x -= p
            return None

    def _uniform(self, a: float, b: float) -> float:
        with self._lock:
            return self.rng.uniform(a, b)

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(client,), daemon=True)
            t.start()

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._open.update(socks)

    def _untrack(self, *socks: socket.socket) -> None:
        with self._lock:
            self._open.difference_update(socks)

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=60)
        except OSError:
            _reset(client)            # the server is down: the kiosk sees a reset
            return
        upstream.settimeout(None)
        self._track(client, upstream)
        state = {"s2c": 0, "cut_at": None}
        pump = threading.Thread(target=self._pump, args=(upstream, client, state), daemon=True)
        pump.start()
        buf = bytearray()
        try:
            while True:
                request = _read_request(client, buf)
                if request is None:
                    break
                if not self._forward(request, client, upstream, state):
                    break
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_WR)
            pump.join(timeout=60)
            _reset(client)
            _reset(upstream)
            self._untrack(client, upstream)

    def _forward(self, request: bytes, client: socket.socket, upstream: socket.socket,
                 state: dict) -> bool:
        kind = self._draw()
        if kind == "cut_request":
            upstream.sendall(request[:int(self._uniform(0, len(request)))])
            time.sleep(0.02)
            _reset(upstream)
            _reset(client)
            return False
        if kind == "reorder":
            late = threading.Timer(self.plan.reorder_delay_s, _send_alone,
                                   args=(self.upstream_port, request))
            late.daemon = True
            late.start()
            _reset(client)
            _reset(upstream)
            return False
        if kind == "delay":
            time.sleep(self._uniform(0, self.plan.max_delay_s))
        elif kind == "duplicate":
            _send_alone(self.upstream_port, request)
        elif kind == "cut_response":
            state["cut_at"] = state["s2c"] + int(self._uniform(0, 400))
        upstream.sendall(request)
        return True

    def _pump(self, upstream: socket.socket, client: socket.socket, state: dict) -> None:
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                cut = state["cut_at"]
                if cut is not None and state["s2c"] + len(data) > cut:
                    client.sendall(data[:max(0, cut - state["s2c"])])
                    _reset(client)
                    _reset(upstream)
                    return
                client.sendall(data)
                state["s2c"] += len(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_WR)
