#!/usr/bin/env python3
"""Smoke test of a built `bootstrap` (gateway-lambda) outside AWS: a local fake of the Lambda
Runtime API (the four endpoints a custom runtime uses) hands the binary API Gateway REST (v1)
and HTTP API (v2) events and checks its answers; the gateway runs on the embedded backend in a
temporary data dir. Used by `scripts/build-lambda.sh --smoke`.

Usage: lambda-smoke.py [--timeout SECS] -- [RUNNER...] BOOTSTRAP
  RUNNER    e.g. qemu-aarch64, to run a foreign-architecture binary under qemu-user
  GATEWAY_CLI=path/to/gateway (a host build of the `gateway` CLI) adds a chat completion with
            a token it mints from the same data dir's embedded issuer.

Checks, in order: started without AWS_LAMBDA_RUNTIME_API the binary exits non-zero with its
own message (no panic); with the fake it polls for an invocation, and answers GET /healthz
(v2), GET /prod/readyz (REST, stage stripped), GET /v1/models without a token (401) and, with
GATEWAY_CLI, GET /v1/models and POST /v1/chat/completions with one (200, the e-mail address
in the prompt redacted by the default guardrail). Prints the time to
the first poll (cold start) and each invocation's time. Exits 1 on any mismatch.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"
# The largest body the fake accepts from the binary (a response or an error report).
MAX_BODY = 8 * 1024 * 1024


def rest_v1(method, path, headers=None, body=None):
    """An API Gateway REST API proxy event for stage `prod` (path as the client sent it)."""
    headers = {"Host": "abc123.execute-api.eu-west-1.amazonaws.com", **(headers or {})}
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "httpMethod": method,
            "identity": {"sourceIp": "203.0.113.9", "userAgent": "lambda-smoke"},
            "path": "/prod" + path,
            "protocol": "HTTP/1.1",
            "requestId": "smoke-" + path.strip("/").replace("/", "-"),
            "requestTimeEpoch": int(time.time() * 1000),
            "resourceId": "abc123",
            "resourcePath": "/{proxy+}",
            "stage": "prod",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def http_v2(method, path):
    """An API Gateway HTTP API (payload 2.0) event on the `$default` stage."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "abc123.execute-api.eu-west-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "lambda-smoke",
            },
            "requestId": "smoke-v2",
            "routeKey": "$default",
            "stage": "$default",
            "time": "24/Nov/2026:03:00:00 +0000",
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": False,
    }


class Runtime:
    """The fake Runtime API's state: the events to hand out and what came back."""

    def __init__(self, events):
        self.events = events  # [(name, event, expected status)]
        self.next_index = 0
        self.handed_at = {}
        self.results = {}  # request id -> (kind, body, seconds)
        self.first_poll = None
        self.init_error = None
        self.lock = threading.Lock()
        self.done = threading.Event()


def handler_for(rt):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path != PREFIX + "/invocation/next":
                self.send_error(404)
                return
            with rt.lock:
                if rt.first_poll is None:
                    rt.first_poll = time.monotonic()
                index = rt.next_index
                rt.next_index += 1
            if index >= len(rt.events):
                rt.done.set()
                # Hold the poll, as Lambda does between invocations; the test then stops it.
                time.sleep(3600)
                return
            body = json.dumps(rt.events[index][1]).encode()
            request_id = f"req-{index}"
            rt.handed_at[request_id] = time.monotonic()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
            self.send_header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:eu-west-1:123456789012:function:golden-path-gateway",
            )
            self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.send_error(413)
                return
            body = self.rfile.read(length)
            parts = self.path[len(PREFIX) :].strip("/").split("/")
            if parts == ["init", "error"]:
                rt.init_error = body.decode(errors="replace")[:2000]
                rt.done.set()
            elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                seconds = time.monotonic() - rt.handed_at.get(parts[1], time.monotonic())
                rt.results[parts[1]] = (parts[2], body, seconds)
            else:
                self.send_error(404)
                return
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def main():
    args = sys.argv[1:]
    timeout = 180.0
    if args[:1] == ["--timeout"]:
        timeout = float(args[1])
        args = args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.exit(__doc__)
    command = args
    failures = []

    data_dir = tempfile.mkdtemp(prefix="lambda-smoke.")
    base_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GOLDEN_PATH_DATA_DIR": data_dir,
        "RUST_LOG": "warn",
    }
    if os.environ.get("QEMU_LD_PREFIX"):
        base_env["QEMU_LD_PREFIX"] = os.environ["QEMU_LD_PREFIX"]

    # 1. Outside Lambda: a clear error and a non-zero exit, not a panic.
    started = time.monotonic()
    out = subprocess.run(command, env=base_env, capture_output=True, text=True, timeout=timeout)
    text = out.stdout + out.stderr
    print(f"  without the Runtime API: exit {out.returncode} in {time.monotonic() - started:.2f} s: "
          f"{text.strip().splitlines()[-1] if text.strip() else '(no output)'}")
    if out.returncode == 0 or "AWS_LAMBDA_RUNTIME_API" not in text or "panicked" in text:
        failures.append("did not fail cleanly without AWS_LAMBDA_RUNTIME_API")

    # 2. Under the fake Runtime API.
    events = [
        ("GET /healthz (HTTP API v2)", http_v2("GET", "/healthz"), 200),
        ("GET /prod/readyz (REST v1)", rest_v1("GET", "/readyz"), 200),
        ("GET /v1/models, no token", rest_v1("GET", "/v1/models"), 401),
    ]
    cli = os.environ.get("GATEWAY_CLI")
    if cli:
        token = subprocess.run(
            [cli, "token", "--sub", "smoke@example.com", "--feature", "default", "--ttl", "10m"],
            env=base_env, capture_output=True, text=True, check=True, timeout=60,
        ).stdout.strip()
        auth = {"Authorization": "Bearer " + token}
        chat = json.dumps({"messages": [{"role": "user", "content": "Reply to jane.doe@example.com"}]})
        events += [
            ("GET /v1/models, token", rest_v1("GET", "/v1/models", auth), 200),
            ("POST /v1/chat/completions", rest_v1(
                "POST", "/v1/chat/completions", {**auth, "Content-Type": "application/json"}, chat), 200),
        ]
    rt = Runtime(events)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(rt))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **base_env,
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "golden-path-gateway",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "smoke",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/golden-path-gateway",
        "AWS_REGION": "eu-west-1",
        "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH": "true",
    }
    started = time.monotonic()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    finished = rt.done.wait(timeout)
    exited = proc.poll()
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    server.shutdown()

    if rt.first_poll is not None:
        print(f"  first poll for an invocation {rt.first_poll - started:.2f} s after exec (cold start)")
    if rt.init_error:
        failures.append(f"init error reported: {rt.init_error}")
    if not finished:
        failures.append(f"not every event was answered within {timeout:.0f} s")
    if exited is not None:
        failures.append(f"the binary exited (status {exited}) instead of waiting for invocations")
    for index, (name, _, want) in enumerate(events):
        kind, body, seconds = rt.results.get(f"req-{index}", (None, b"", 0.0))
        status = None
        if kind == "response":
            try:
                status = json.loads(body).get("statusCode")
            except ValueError:
                pass
        print(f"  {name}: {kind or 'no answer'} status {status} in {seconds * 1000:.1f} ms")
        if status != want:
            failures.append(f"{name}: wanted status {want}, got {kind} {status}")
        if name.startswith("POST /v1/chat") and status == 200:
            # The development model quotes what it received: the input guard's redaction.
            answer = json.loads(body).get("body") or ""
            if "{EMAIL}" not in answer or "jane.doe@example.com" in answer:
                failures.append(f"{name}: the e-mail address was not redacted on the way in")
    if failures:
        log.seek(0)
        print("  --- bootstrap output (last 3000 bytes) ---")
        print(log.read()[-3000:].decode(errors="replace"))
        for f in failures:
            print("  FAILED: " + f)
        sys.exit(1)
    print(f"  ok: {len(events)} invocations answered as expected")


if __name__ == "__main__":
    main()
