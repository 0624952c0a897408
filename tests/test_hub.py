"""MODEL ids that are not bundled go through the real huggingface_hub client: a Hub cache folder built in a
temp dir (offline), and a loopback HTTP server standing in for the Hub (HF_ENDPOINT, which the client reads
when it is imported: conftest.run_hub imports its constants again in this process; a fresh process where the
process itself is checked: the first fetch, the deadlines' wall time with abandoned threads, Ctrl-C). Every failure
is one line on stderr with exit 2, within the deadline: 404 and 401 at once, 429/5xx retried exactly once, a silent
or trickling server cut at --hub-timeout; a typo of a bundled id gets a 'did you mean'; Ctrl-C while waiting is one
line, exit 130."""

import json
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler

import pytest

from conftest import ROOT, run_hub, run_installed, run_kvplan
from fake_hub import cached_repo, hub_env, send_error, send_file, serving
from hub_configs import LLAMA3_8B, QWEN3_14B

TINY = {**LLAMA3_8B, "num_hidden_layers": 4, "hidden_size": 512, "intermediate_size": 1024,
        "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 1000}


def safetensors_header(tensors):
    """A safetensors file holding only its header: {name: (dtype, shape)}."""
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        size = {"BF16": 2, "F32": 4}[dtype]
        for dim in shape:
            size *= dim
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw


TENSORS = {"model.embed_tokens.weight": ("BF16", (1000, 512)), "lm_head.weight": ("BF16", (1000, 512)),
           "model.layers.0.mlp.up_proj.weight": ("BF16", (1024, 512)), "model.norm.weight": ("F32", (512,))}
ERRORS = {"missing": (404, "RepoNotFound"), "gated": (401, "GatedRepo"), "limited": (429, None),
          "broken": (500, None), "unavailable": (503, None), "empty": (404, "EntryNotFound")}


class FakeHub(BaseHTTPRequestHandler):
    """Paths: /{owner}/{name}/resolve/{revision}/{file}. The owner picks the behaviour (ERRORS, slow, trickle);
    an id with 'Instuct' in it is not there (404)."""

    protocol_version = "HTTP/1.1"
    files = {"config.json": json.dumps(TINY).encode(), "model.safetensors": safetensors_header(TENSORS)}
    requests: Counter = Counter()  # (owner, method) -> count
    asked = threading.Event()  # set when a slow owner is asked

    def log_message(self, *args):
        pass

    def _answer(self, body: bool):
        parts = self.path.split("?")[0].strip("/").split("/")
        owner, filename = ("missing" if "Instuct" in self.path else parts[0]), parts[-1]
        FakeHub.requests[owner, self.command] += 1
        if owner == "slow":
            FakeHub.asked.set()
            time.sleep(30)
        if owner == "trickle" and body:  # headers at once, then a byte a second
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(30):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(1)
            return
        if owner in ERRORS:
            status, code = ERRORS[owner]
            return send_error(self, status, code, retry_after="60" if owner == "limited" else None)
        data = self.files.get(filename)
        if data is None:
            return send_error(self, 404, "EntryNotFound")
        send_file(self, data, body)

    def do_HEAD(self):
        self._answer(body=False)

    def do_GET(self):
        self._answer(body=True)


@pytest.fixture(scope="module")
def hub():
    with serving(FakeHub) as endpoint:
        yield endpoint


def one_line_error(result, *words):
    assert result.returncode == 2, (result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err
    return err


# Runs several commands in one fresh interpreter (the client reads HF_ENDPOINT once, at import) and reports
# exit code, stderr and wall time of each: the time a user waits, start-up aside.
DRIVER = """
import contextlib, io, json, sys, time
from kvplan.cli import main
results = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(args)
    results.append({"args": args, "code": code, "stderr": err.getvalue(), "seconds": time.monotonic() - started})
print(json.dumps(results))
"""


def run_cases(env: dict, *cases) -> list:
    import os

    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps([list(c) for c in cases])], capture_output=True,
                          text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100", **env})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_fetches_config_and_exact_size_from_the_hub(hub, tmp_path):
    result = run_installed("estimate", "acme/tiny-llama", "--kv-budget", "1GiB", "--format", "json",
                           env=hub_env(tmp_path, hub))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    # 4 layers x 2 x 2 KV heads x 64 head_dim x 2 bytes
    assert data["plans"][0]["kv_bytes_per_token"] == 4 * 2 * 2 * 64 * 2
    # Exact size from the safetensors header: 3 bf16 matrices and one fp32 vector.
    assert data["model"]["weights_source"] == "safetensors metadata"
    assert data["model"]["weights_bytes"] == (1000 * 512 * 2 + 1024 * 512) * 2 + 512 * 4
    # ...and it is now in the normal Hub cache, so it works offline too.
    cached = run_hub("estimate", "acme/tiny-llama", "--kv-budget", "1GiB", env=hub_env(tmp_path, offline=True))
    assert cached.returncode == 0, cached.stderr


def test_prebuilt_hub_cache_offline(tmp_path):
    """A Hub cache folder laid out as huggingface_hub writes it: refs/main -> snapshots/<commit>/config.json."""
    cached_repo(tmp_path, "acme/qwen-like", {"config.json": QWEN3_14B})
    result = run_hub("estimate", "acme/qwen-like", "--kv-budget", "6.51GiB", "--format", "json",
                     env=hub_env(tmp_path, offline=True))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["plans"][0]["kv_capacity_tokens"] == 42_656
    assert json.loads(result.stdout)["model"]["weights_source"] == "estimated from config"


def test_error_paths_one_line_within_the_deadline(hub, tmp_path):
    FakeHub.requests.clear()
    results = run_cases(hub_env(tmp_path, hub),
                        ("estimate", "missing/model"),
                        ("estimate", "meta-llama/Llama-3.1-8B-Instuct", "--revision", "main"),
                        ("estimate", "gated/model"),
                        ("estimate", "limited/model"),
                        ("estimate", "unavailable/model"),
                        ("estimate", "broken/model"),
                        ("estimate", "slow/model", "--hub-timeout", "0.5"),  # a deadline only waited for
                        ("estimate", "trickle/model", "--hub-timeout", "0.5"),
                        ("estimate", "empty/model"))
    # (words in the one line, most seconds it may take). The bounds catch a wait, not a slow machine: each is far
    # below what honouring a Retry-After (60 s), the slow owner (30 s) or the trickle (a byte a second) would cost,
    # and far above one process's work on a loaded CI runner (the first case pays the Hub client's import; the
    # requests counted below pin the retries exactly).
    no_wait, deadline = 10, 5  # a --hub-timeout of 0.5 s: ten times it, six times under the slow owner's sleep
    expected = [
        (["missing/model was not found on the Hugging Face Hub", "kvplan models"], no_wait),
        (["not found", "Did you mean meta-llama/Llama-3.1-8B-Instruct (bundled)?"], no_wait),
        (["gated", "HF_TOKEN"], no_wait),
        (["answered 429 (rate limited) for limited/model, it asks to retry in 60 s"], no_wait),
        (["answered 503 for unavailable/model, also when asked again"], no_wait),
        (["answered 500 for broken/model, also when asked again"], no_wait),
        (["--hub-timeout (0.5 s) ran out before the Hugging Face Hub answered for slow/model"], deadline),
        (["--hub-timeout (0.5 s) ran out", "trickle/model"], deadline),
        (["empty/model has no config.json on the Hugging Face Hub"], no_wait),
    ]
    for result, (words, seconds) in zip(results, expected):
        lines = result["stderr"].strip().splitlines()
        assert result["code"] == 2 and len(lines) == 1, result
        assert all(word in lines[0] for word in words), lines[0]
        assert result["seconds"] < seconds, result
    # 404/401/429-with-a-long-Retry-After: asked once; 5xx: asked exactly twice (one retry), never more
    assert FakeHub.requests["missing", "HEAD"] == 2 and FakeHub.requests["gated", "HEAD"] == 1  # two ids
    assert FakeHub.requests["limited", "HEAD"] == 1
    assert FakeHub.requests["unavailable", "HEAD"] == 2 and FakeHub.requests["broken", "HEAD"] == 2


def test_unreachable_hub_fails_fast_with_did_you_mean(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    started = time.monotonic()
    refused = run_hub("estimate", "meta-llama/Llama-3.1-8B-Instuct", env=hub_env(tmp_path, closed))
    assert time.monotonic() - started < 5  # well inside the 10 s default timeout: refused at once, not waited out
    one_line_error(refused, "could not reach the Hugging Face Hub",
                   "Did you mean meta-llama/Llama-3.1-8B-Instruct (bundled)?")
    one_line_error(run_hub("estimate", "acme/never-seen", env=hub_env(tmp_path, offline=True)),
                   "acme/never-seen", "HF_HUB_OFFLINE")


def test_revision_cannot_leave_the_hub_cache(tmp_path):
    """`--revision ../x` used to make the client write outside its cache; now nothing is asked or written."""
    one_line_error(run_kvplan("estimate", "acme/model", "--revision", "../../../../tmp/escape",
                              env=hub_env(tmp_path)), "--revision must be a branch or tag name")
    assert not (tmp_path / "cache").exists()


def test_interrupt_while_waiting_for_the_hub(hub, tmp_path):
    import os

    FakeHub.asked.clear()
    proc = subprocess.Popen([sys.executable, "-m", "kvplan", "estimate", "slow/model"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **hub_env(tmp_path, hub)})
    assert FakeHub.asked.wait(30)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert (proc.returncode, out, err) == (130, "", "kvplan: interrupted.\n")
