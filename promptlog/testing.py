"""A fake OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

It lets tests drive litellm's real HTTP path (usage, errors, 429 retries, latency) with
no network. Standard library only (and promptlog's own schemas), so importing it costs
nothing::

    with FakeOpenAIServer() as server:
        server.enqueue(status=429, headers={"retry-after": "0"})
        litellm.completion(model=server.model, api_base=server.base_url,
                           api_key="sk-fake", messages=[...])

The server stops by itself after ``max_requests`` requests or ``max_seconds`` seconds,
so one that a test forgets to stop never lingers.

For real model behaviour, ``LocalModelServer`` serves a tiny real model (SmolLM2-135M)
through llama.cpp in a child process; see :mod:`promptlog._local_model`.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._endpoint import OpenAICompatibleEndpoint
from ._local_model import LocalModelServer, fetch_test_model, find_test_model, model_cache_dir
from ._proposer import NumericProposer
from .schemas import schema_from_text

__all__ = [
    "FakeOpenAIServer",
    "FollowsExamples",
    "Keyword",
    "Proposer",
    "Reflector",
    "LocalModelServer",
    "NumericProposer",
    "fetch_test_model",
    "find_test_model",
    "model_cache_dir",
]

_MODEL = "fake-model"

# (type, code) of the error body OpenAI sends for a status; others fall back by class.
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", "service_unavailable"),
}


@dataclass
class _Scripted:
    """One queued response; ``delay=None`` means the server's ``latency`` at reply time."""

    status: int = 200
    body: Any = None
    content: str | None = None
    delay: float | None = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeOpenAIServer(OpenAICompatibleEndpoint):
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint on ``127.0.0.1``, on a free port.

    By default every request gets ``reply`` as the assistant message after ``latency``
    seconds (or, when the request asks for a JSON schema, a small object that fits it);
    ``enqueue`` scripts the next responses. Usage counts are deterministic: prompt
    tokens are the whitespace-separated words of all request messages, completion tokens
    the words of the reply.

    ``responder``, when given, writes the assistant message of every request that no
    queued response answers: ``responder(request)`` gets the request's JSON body (its
    ``messages``, ``temperature`` …) and returns the text, so a test can stand in for
    a model that reacts to its prompt (raising inside it answers with a 500).

    ``response_formats`` lists the ``response_format`` types the server takes (by default
    all); a request asking for another gets a 400 naming ``response_format``, before any
    queued response is used, as llama-cpp-python's server refuses ``json_schema``.
    """

    _served_model = _MODEL
    _dummy_key = "sk-fake"

    def __init__(
        self,
        latency: float = 0.0,
        max_requests: int = 10_000,
        max_seconds: float = 300.0,
        reply: str = "Hello from the fake server.",
        response_formats: Collection[str] | None = None,
        responder: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        self.latency = latency
        self.responder = responder
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.reply = reply
        self.response_formats = None if response_formats is None else frozenset(response_formats)
        self._lock = threading.Lock()
        self._queue: deque[_Scripted] = deque()
        self._requests: list[dict[str, Any]] = []
        self._request_headers: list[dict[str, str]] = []
        self._accepted = 0
        self._finished = 0
        self._connections: set[socket.socket] = set()
        self._stopped = threading.Event()  # set as stopping begins: refuse new work
        self._closed = threading.Event()  # set once the port and connections are closed
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        """Bind a free port and serve in a daemon thread; returns the server."""
        if self._httpd is not None or self._stopped.is_set():
            raise RuntimeError("FakeOpenAIServer can be started only once; make a new one.")
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeOpenAIServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._timer = threading.Timer(self.max_seconds, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection; safe to call more than once."""
        with self._lock:
            already_stopping = self._stopped.is_set()
            self._stopped.set()
            connections = list(self._connections)
        if already_stopping:
            self._closed.wait(5.0)  # another thread is closing it; return once it has
            return
        if self._timer is not None:
            self._timer.cancel()
        # Shutting the sockets down wakes handler threads blocked on a keep-alive read.
        for conn in connections:
            _shutdown_socket(conn)
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        self._closed.set()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Block until the server has stopped (by ``stop`` or a limit); False on timeout."""
        return self._closed.wait(timeout)

    @property
    def running(self) -> bool:
        return self._httpd is not None and not self._stopped.is_set()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- where it listens ---------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not started; call start() or use `with`.")
        return int(self._httpd.server_address[1])

    # --- scripting and inspection -------------------------------------------

    def enqueue(
        self,
        status: int = 200,
        body: Any = None,
        content: str | None = None,
        delay: float | None = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Queue the next response (``times`` copies of it); queued responses go first-in first-out.

        ``body`` (a dict, sent as JSON, or a str/bytes, sent as is) replaces the whole
        response body; without it an error status gets an OpenAI-style error object and
        200 a chat completion whose assistant message is ``content`` (default: the usual
        reply). ``delay`` defaults to the server's ``latency``.
        """
        if content is not None and status != 200:
            raise ValueError("content is the assistant message of a 200 reply; use body for errors")
        scripted = _Scripted(status, body, content, delay, dict(headers or {}))
        with self._lock:
            self._queue.extend(scripted for _ in range(times))

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of the chat-completion requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def request_headers(self) -> list[dict[str, str]]:
        """The headers (lower-cased names) of each request in ``requests``."""
        with self._lock:
            return [dict(h) for h in self._request_headers]

    @property
    def request_count(self) -> int:
        """HTTP requests served so far, on any path; ``max_requests`` bounds this."""
        with self._lock:
            return self._accepted

    # --- used by the handler threads ----------------------------------------

    def _track(self, conn: socket.socket) -> bool:
        with self._lock:
            if self._stopped.is_set():
                return False
            self._connections.add(conn)
            return True

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def _admit(self) -> bool:
        """Count a request in, unless the server has stopped or served ``max_requests``."""
        with self._lock:
            if self._stopped.is_set() or self._accepted >= self.max_requests:
                return False
            self._accepted += 1
            return True

    def _done(self) -> None:
        """Count a request out; the last one allowed stops the server."""
        with self._lock:
            self._finished += 1
            last = self._finished >= self.max_requests
        if last:
            # Not on this handler thread: stop() waits for the serving loop.
            threading.Thread(target=self.stop, daemon=True).start()

    def _record(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, _Scripted]:
        """Keep the request; return its number (from 1) and the response to give it."""
        refusal = self._refusal(body)
        with self._lock:
            self._requests.append(body)
            self._request_headers.append(headers)
            if refusal is not None:
                return len(self._requests), refusal
            scripted = self._queue.popleft() if self._queue else _Scripted()
            return len(self._requests), scripted

    def _refusal(self, body: dict[str, Any]) -> _Scripted | None:
        """The 400 for a ``response_format`` type this server does not take, if it is one."""
        response_format = body.get("response_format")
        if self.response_formats is None or not isinstance(response_format, dict):
            return None
        kind = response_format.get("type")
        if kind in self.response_formats:
            return None
        accepted = " or ".join(f'"{k}"' for k in sorted(self.response_formats)) or "nothing"
        error = _error_body(
            400, f"response_format type must be {accepted}, but got: {kind}"
        )
        error["error"]["param"] = "response_format"
        return _Scripted(status=400, body=error, delay=0.0)

    def _sleep(self, seconds: float) -> bool:
        """Sleep, cut short by ``stop``; False when the server stopped meanwhile."""
        if seconds > 0:
            return not self._stopped.wait(seconds)
        return not self._stopped.is_set()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() closes connections itself; never join handler threads
    request_queue_size = 1024

    def __init__(self, owner: FakeOpenAIServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up, or stop() closing its socket, is not worth a traceback.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API
    # Headers and body go out in two writes; with Nagle on, each keep-alive reply waits
    # ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        if not self.server.owner._track(self.connection):
            _shutdown_socket(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests and benchmarks print nothing per request

    def do_GET(self) -> None:
        self._serve(self._get)

    def do_POST(self) -> None:
        self._serve(self._post)

    def do_PUT(self) -> None:
        self._serve(self._not_found)

    do_PATCH = do_DELETE = do_PUT

    def _serve(self, handle: Callable[[], None]) -> None:
        owner = self.server.owner
        length = int(self.headers.get("content-length") or 0)
        self._body = self.rfile.read(length) if length else b""
        if not owner._admit():
            self.close_connection = True
            self._send_json(
                503,
                _error_body(503, "The fake server has stopped serving."),
                {"connection": "close"},
            )
            return
        try:
            handle()
        except Exception as exc:  # a bug here should reach the test as a 500, not hang it
            self.close_connection = True
            try:
                self._send_json(500, _error_body(500, f"Fake server error: {exc!r}"))
            except OSError:
                pass
        finally:
            owner._done()

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def _get(self) -> None:
        if self._path().endswith("/models"):
            model = {"id": _MODEL, "object": "model", "created": 0, "owned_by": "promptlog"}
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._not_found()

    def _post(self) -> None:
        if not self._path().endswith("/chat/completions"):
            self._not_found()
            return
        try:
            request = json.loads(self._body or b"{}")
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError:
            self._send_json(400, _error_body(400, "The request body is not a JSON object."))
            return
        owner = self.server.owner
        headers = {name.lower(): value for name, value in self.headers.items()}
        number, scripted = owner._record(request, headers)
        delay = owner.latency if scripted.delay is None else scripted.delay
        if not owner._sleep(delay):
            self.close_connection = True  # stopped while waiting: hang up, like a dead server
            return
        if scripted.body is not None:
            self._send_json(scripted.status, scripted.body, scripted.headers)
        elif scripted.status >= 400:
            self._send_json(scripted.status, _error_body(scripted.status), scripted.headers)
        else:
            if scripted.content is not None:
                content = scripted.content
            elif owner.responder is not None:
                try:
                    content = str(owner.responder(request))
                except Exception as e:  # the test's stand-in failed: a server error, not a hang
                    message = f"The responder raised {type(e).__name__}: {e}"
                    self._send_json(500, _error_body(500, message))
                    return
            else:
                content = _content_for(request, owner.reply)
            if request.get("stream"):
                self._send_stream(request, content, number, scripted.status, scripted.headers)
            else:
                completion = _completion(request, content, number)
                self._send_json(scripted.status, completion, scripted.headers)

    def _not_found(self) -> None:
        body = _error_body(404, f"Unknown path {self.command} {self.path} on the fake server.")
        body["error"]["code"] = None
        self._send_json(404, body)

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        if isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_stream(
        self,
        request: dict[str, Any],
        content: str,
        number: int,
        status: int,
        headers: Mapping[str, str],
    ) -> None:
        """Server-sent events: the whole content in one chunk, then the finish (and usage)."""
        completion = _completion(request, content, number)
        base = {k: completion[k] for k in ("id", "created", "model")}
        base["object"] = "chat.completion.chunk"
        chunks = [
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": content},
                        "finish_reason": None,
                    }
                ],
            },
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        ]
        if (request.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": completion["usage"]})
        events = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks] + ["data: [DONE]\n\n"]
        data = "".join(events).encode()
        self.close_connection = True
        self.send_response(status)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(data)))
        self.send_header("connection", "close")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _shutdown_socket(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _error_body(status: int, message: str | None = None) -> dict[str, Any]:
    default = ("server_error", None) if status >= 500 else ("invalid_request_error", None)
    kind, code = _ERROR_KINDS.get(status, default)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    message = message or f"Scripted {status} {phrase} from the fake server."
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _completion(request: dict[str, Any], content: str, number: int) -> dict[str, Any]:
    prompt_tokens = sum(_count_words(m.get("content")) for m in request.get("messages") or [])
    completion_tokens = _count_words(content)
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model") or _MODEL,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _count_words(content: Any) -> int:
    """Whitespace-separated words of a message's content (a string or a list of parts)."""
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):
        return sum(_count_words(part.get("text")) for part in content if isinstance(part, dict))
    return 0


def _content_for(request: dict[str, Any], reply: str) -> str:
    """The default assistant message: ``reply``, or JSON when the request asks for it
    (an object that fits the JSON schema of ``response_format``, or else of the prompt)."""
    response_format = request.get("response_format") or {}
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        return json.dumps(_example(schema, schema))
    in_prompt = _schema_in_messages(request.get("messages") or [])
    if in_prompt is not None:
        return json.dumps(_example(in_prompt, in_prompt))
    if kind == "json_object":
        return json.dumps({"reply": reply})
    return reply


def _schema_in_messages(messages: list[Any]) -> dict[str, Any] | None:
    """The JSON schema written in the last system or user message that gives one."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") in ("system", "user"):
            content = message.get("content")
            if isinstance(content, str):
                schema = schema_from_text(content)
                if schema is not None:
                    return schema
    return None


def _example(schema: Any, root: Any, depth: int = 0) -> Any:
    """A small value that satisfies a simple JSON schema (the shapes pydantic emits)."""
    if not isinstance(schema, dict) or depth > 20:
        return None
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return _example(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [
            o for o in schema.get(key) or [] if isinstance(o, dict) and o.get("type") != "null"
        ]
        if options:
            return _example(options[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        return {name: _example(sub, root, depth + 1) for name, sub in properties.items()}
    if kind == "array" and schema.get("prefixItems"):  # a tuple
        return [_example(item, root, depth + 1) for item in schema["prefixItems"]]
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        return [_example(schema.get("items") or {}, root, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        value = max(1, schema.get("minimum", 1), schema.get("exclusiveMinimum", 0) + 1)
        if "maximum" in schema:
            value = min(value, schema["maximum"])
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "string":
        text = {
            "date-time": "2024-01-01T00:00:00Z",
            "date": "2024-01-01",
            "email": "user@example.com",
            "uri": "https://example.com",
        }.get(schema.get("format", ""), "example")
        text = text.ljust(int(schema.get("minLength", 0)), "x")
        return text[: schema["maxLength"]] if "maxLength" in schema else text
    return None


# --- stand-in models for optimisers --------------------------------------------------

_DSPY_FIELD = re.compile(r"`\[\[ ## (\w+) ## \]\]`")


class FollowsExamples:
    """A stand-in model that answers an input correctly only when the request's demos
    show that input, or another sharing its first word: the few-shot task in miniature.

        server = FakeOpenAIServer(responder=FollowsExamples(dataset))

    It knows the task from ``examples`` (dicts with an ``input`` and an ``output``
    field). It reads the request as text, whatever its layout (promptlog's typed
    functions, DSPy's adapters): the known input found in the last user message is
    the question; known inputs anywhere else in the request are the demos. Zero-shot
    it always answers ``wrong``. The reply copies the layout of a demo's reply (plain
    text, JSON, DSPy's ``[[ ## field ## ]]`` markers) with the answer put in, or,
    with no demo reply to copy, fits the JSON schema or the output fields asked for.
    ``requests`` counts the requests it answered.
    """

    def __init__(
        self,
        examples: Iterable[Mapping[str, Any]],
        input: str = "question",
        output: str = "answer",
        wrong: str = "I do not know.",
    ) -> None:
        self.answers = {str(e[input]): str(e[output]) for e in examples}
        if not self.answers:
            raise ValueError("FollowsExamples needs examples to know the task")
        self.wrong = wrong
        self.requests = 0
        self._lock = threading.Lock()
        # Longest first, so that an input containing another is found whole.
        inputs = sorted(self.answers, key=len, reverse=True)
        self._pattern = re.compile(
            "|".join(rf"(?<![\w]){re.escape(text)}(?![\w])" for text in inputs)
        )

    def __call__(self, request: dict[str, Any]) -> str:
        with self._lock:
            self.requests += 1
        messages = [m for m in request.get("messages") or [] if isinstance(m, dict)]
        texts = [_text_of(m.get("content")) for m in messages]
        last = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        if last < 0:
            return self.wrong
        asked = self._pattern.findall(texts[last])
        shown = {
            found for i, text in enumerate(texts) if i != last
            for found in self._pattern.findall(text)
        }  # fmt: skip
        question = asked[0] if asked else None
        right = question is not None and self._knows(question, shown, messages, texts)
        answer = self.answers[question] if right and question is not None else self.wrong
        return self._layout(request, messages, texts, last, answer)

    def _knows(
        self, question: str, shown: set[str], messages: list[dict[str, Any]], texts: list[str]
    ) -> bool:
        """Whether the model answers ``question`` right, given the inputs its demos show."""
        return question in shown or _first_word(question) in {_first_word(s) for s in shown}

    def _layout(
        self,
        request: dict[str, Any],
        messages: list[dict[str, Any]],
        texts: list[str],
        last: int,
        answer: str,
    ) -> str:
        for i in range(last - 1, 0, -1):  # a demo's reply, to copy its layout
            if messages[i].get("role") != "assistant" or messages[i - 1].get("role") != "user":
                continue
            shown = self._pattern.findall(texts[i - 1])
            if shown and self.answers[shown[0]] in texts[i]:
                old = self.answers[shown[0]]
                inside_json = texts[i].lstrip().startswith(("{", "["))
                new = json.dumps(answer)[1:-1] if inside_json else answer
                return texts[i].replace(json.dumps(old)[1:-1] if inside_json else old, new)
        response_format = request.get("response_format") or {}
        schema = None
        if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema")
        if schema is None:
            schema = _schema_in_messages(messages)
        if isinstance(schema, dict):
            value = _example(schema, schema)
            if isinstance(value, dict):
                strings = [k for k, v in value.items() if isinstance(v, str)]
                for key in strings:
                    value[key] = "Following the examples." if key == "reasoning" else answer
                if not strings and value:
                    value[next(iter(value))] = answer
            return json.dumps(value)
        fields = [f for f in _DSPY_FIELD.findall(texts[last]) if f != "completed"]
        if fields:
            parts = [
                f"[[ ## {f} ## ]]\n{'Following the examples.' if f == 'reasoning' else answer}"
                for f in dict.fromkeys(fields)
            ]
            return "\n\n".join([*parts, "[[ ## completed ## ]]"])
        return answer


class Keyword(FollowsExamples):
    """A stand-in model that answers an input correctly only when its instructions
    contain ``word``: the instruction-search task in miniature.

        server = FakeOpenAIServer(responder=Keyword(dataset, word="carefully"))

    Like :class:`FollowsExamples` it reads the request as text, whatever its layout
    (promptlog's typed functions, DSPy's adapters): the known input in the last user
    message is the question, and the instructions are everything the request says
    but the model's own turns, so the word counts wherever the prompt puts it (a
    typed function's template, DSPy's signature instructions). It answers in the
    format the request asks for; ``requests`` counts the requests it answered.
    """

    def __init__(
        self,
        examples: Iterable[Mapping[str, Any]],
        word: str = "carefully",
        input: str = "question",
        output: str = "answer",
        wrong: str = "I do not know.",
    ) -> None:
        super().__init__(examples, input=input, output=output, wrong=wrong)
        if not word.strip():
            raise ValueError("Keyword needs a word to look for in the instructions")
        self.word = word
        self._word = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)

    def _knows(
        self, question: str, shown: set[str], messages: list[dict[str, Any]], texts: list[str]
    ) -> bool:
        return any(
            self._word.search(text)
            for message, text in zip(messages, texts, strict=True)
            if message.get("role") != "assistant"
        )


_FENCED = re.compile(r"```[^\n]*\n(.*?)\n```", re.DOTALL)
_ATTEMPT = re.compile(r"score (-?[\d.]+|nan):\s*```[^\n]*\n(.*?)\n```", re.DOTALL)
_PROPOSAL = re.compile(r"\bproposal\s+(\d+)\b", re.IGNORECASE)


class Proposer:
    """A stand-in for the model behind ``optimizers.InstructionSearch``: it reads
    promptlog's proposer prompt (the attempts so far, each ``score S:`` then its
    instructions in a fenced block, lowest score first, and the proposal's number)
    and writes ``suggestions[number - 1]`` (cycling). With ``build_on_best=True`` it
    writes the last attempt shown (the best, if the attempts come lowest first)
    followed by the suggestion, as a model improving on the best would.

        server = FakeOpenAIServer(responder=Proposer(["Be brief.", "Think carefully."]))

    ``attempts`` keeps, for each request, the (score, instructions) pairs it was shown.
    """

    def __init__(self, suggestions: Iterable[str], *, build_on_best: bool = False) -> None:
        self.suggestions = [str(s) for s in suggestions]
        if not self.suggestions:
            raise ValueError("Proposer needs at least one suggestion")
        self.build_on_best = build_on_best
        self.attempts: list[list[tuple[float, str]]] = []
        self._lock = threading.Lock()

    @property
    def requests(self) -> int:
        with self._lock:
            return len(self.attempts)

    def __call__(self, request: dict[str, Any]) -> str:
        text = _last_user_text(request)
        shown = [(float(score), body.strip()) for score, body in _ATTEMPT.findall(text)]
        with self._lock:
            self.attempts.append(shown)
        found = _PROPOSAL.search(text)
        number = int(found.group(1)) if found else 1
        suggestion = self.suggestions[(number - 1) % len(self.suggestions)]
        if self.build_on_best and shown:
            return f"{shown[-1][1]} {suggestion}"
        return suggestion


class Reflector:
    """A stand-in for the reflection model behind ``optimizers.ReflectiveSearch``: it
    reads promptlog's reflection prompt (the current instructions in its first fenced
    block, then the calls with their feedback) and, when the feedback matches
    ``failing`` (a regular expression), replies with the instructions plus
    ``addition`` (default ``"Work <word>."``); otherwise with the instructions
    unchanged, as a model that sees nothing to fix would.

        server = FakeOpenAIServer(responder=Reflector("carefully", failing="wrong"))
    """

    def __init__(self, word: str, *, failing: str = "wrong", addition: str | None = None) -> None:
        self.word = word
        self.addition = addition if addition is not None else f"Work {word}."
        self._failing = re.compile(failing, re.IGNORECASE)
        self.requests = 0
        self.failing_seen = 0
        self._lock = threading.Lock()

    def __call__(self, request: dict[str, Any]) -> str:
        text = _last_user_text(request)
        fenced = _FENCED.search(text)
        current = fenced.group(1).strip() if fenced else ""
        rest = text[fenced.end():] if fenced else text
        failing = bool(self._failing.search(rest))
        with self._lock:
            self.requests += 1
            self.failing_seen += failing
        if failing and self.word.lower() not in current.lower():
            return f"{current} {self.addition}".strip()
        return current


def _last_user_text(request: dict[str, Any]) -> str:
    messages = [m for m in request.get("messages") or [] if isinstance(m, dict)]
    users = [_text_of(m.get("content")) for m in messages if m.get("role") == "user"]
    return users[-1] if users else ""


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        )
    return ""


def _first_word(text: str) -> str:
    words = text.split()
    return words[0].lower() if words else ""
