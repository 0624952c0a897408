"""MODEL ids that are not bundled go through the real huggingface_hub client: a Hub cache folder built in a
temp dir (offline), and a loopback HTTP server standing in for the Hub (HF_ENDPOINT) for success, 404, 401
gated and a timeout. Each failure must end in one clear line on stderr and exit code 2."""

import hashlib
import json
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import run_installed
from hub_configs import LLAMA3_8B, QWEN3_14B

COMMIT = "0123456789abcdef0123456789abcdef01234567"
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


class FakeHub(BaseHTTPRequestHandler):
    """Paths: /{owner}/{name}/resolve/{revision}/{file}. The owner picks the behaviour."""

    files = {"config.json": json.dumps(TINY).encode(), "model.safetensors": safetensors_header(TENSORS)}

    def log_message(self, *args):
        pass

    def _answer(self, body: bool):
        parts = self.path.split("?")[0].strip("/").split("/")
        owner, filename = parts[0], parts[-1]
        if owner == "slow":
            time.sleep(4)
        if owner == "missing":
            return self._error(404, "RepoNotFound")
        if owner == "gated":
            return self._error(401, "GatedRepo")
        data = self.files.get(filename)
        if data is None:
            return self._error(404, "EntryNotFound")
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _error(self, status, code):
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        self._answer(body=False)

    def do_GET(self):
        self._answer(body=True)


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # clients that time out hang up mid-answer: expected here


@pytest.fixture(scope="module")
def hub():
    server = QuietServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def hub_env(tmp_path, endpoint=None, offline=False):
    env = {"HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HOME": str(tmp_path / "home"),
           "HF_HUB_OFFLINE": "1" if offline else "0", "HF_HUB_ETAG_TIMEOUT": "1", "HF_HUB_DOWNLOAD_TIMEOUT": "1",
           "HF_HUB_DISABLE_XET": "1"}
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    return env


def one_line_error(result, *words):
    assert result.returncode == 2, (result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err


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
    cached = run_installed("estimate", "acme/tiny-llama", "--kv-budget", "1GiB", env=hub_env(tmp_path, offline=True))
    assert cached.returncode == 0, cached.stderr


def test_prebuilt_hub_cache_offline(tmp_path):
    """A Hub cache folder laid out as huggingface_hub writes it: refs/main -> snapshots/<commit>/config.json."""
    repo = tmp_path / "cache" / "models--acme--qwen-like"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(QWEN3_14B))
    result = run_installed("estimate", "acme/qwen-like", "--kv-budget", "6.51GiB", "--format", "json",
                        env=hub_env(tmp_path, offline=True))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["plans"][0]["kv_capacity_tokens"] == 42_656
    assert json.loads(result.stdout)["model"]["weights_source"] == "estimated from config"


def test_offline_and_not_cached(tmp_path):
    one_line_error(run_installed("estimate", "acme/never-seen", env=hub_env(tmp_path, offline=True)),
                   "acme/never-seen", "HF_HUB_OFFLINE")


def test_404_repository_not_found(hub, tmp_path):
    one_line_error(run_installed("estimate", "missing/model", env=hub_env(tmp_path, hub)),
                   "missing/model", "not found on the Hugging Face Hub", "kvplan models")


def test_401_gated(hub, tmp_path):
    one_line_error(run_installed("estimate", "gated/model", env=hub_env(tmp_path, hub)), "gated", "HF_TOKEN")


def test_timeout(hub, tmp_path):
    started = time.monotonic()
    result = run_installed("estimate", "slow/model", env=hub_env(tmp_path, hub))
    one_line_error(result, "slow/model", "could not reach the Hugging Face Hub")
    assert time.monotonic() - started < 30


def test_no_config_in_repo(hub, tmp_path):
    FakeHub.files, saved = {}, FakeHub.files
    try:
        one_line_error(run_installed("estimate", "acme/empty", env=hub_env(tmp_path, hub)), "config.json")
    finally:
        FakeHub.files = saved
