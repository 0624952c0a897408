"""A fake Hugging Face Hub for the tests that fetch over HTTP (test_hub.py, test_s54_qcfg.py): the answer the
huggingface_hub client expects for a file (length, ETag, commit header) or an error, and a server on a free local
port. Each test module's handler picks which files and errors its repository paths get."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from http.server import ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def send_file(handler, data: bytes, body: bool) -> None:
    """A file as /resolve/ serves it: its sha256 as the ETag, the commit it was read at."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
    handler.send_header("X-Repo-Commit", COMMIT)
    handler.end_headers()
    if body:
        handler.wfile.write(data)


def send_listing(handler, repo_id: str, names, body: bool) -> None:
    """The Hub's model listing (/api/models/{repo_id}[/revision/{revision}], what HfApi.model_info and
    snapshot_download read): the repo's files as siblings, each by its path in the repo."""
    data = json.dumps({"id": repo_id, "sha": COMMIT, "siblings": [{"rfilename": name} for name in names]}).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    if body:
        handler.wfile.write(data)


def send_error(handler, status: int, code=None, retry_after=None) -> None:
    """An error answer; `code`: the Hub's X-Error-Code (EntryNotFound, RepoNotFound, GatedRepo)."""
    handler.send_response(status)
    if code:
        handler.send_header("X-Error-Code", code)
    if retry_after:
        handler.send_header("Retry-After", retry_after)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that time out hang up mid-answer: expected here


@contextlib.contextmanager
def serving(handler_class):
    """The endpoint (HF_ENDPOINT) of a server answering with `handler_class`, shut down on exit."""
    server = QuietServer(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def hub_env(tmp_path, endpoint=None, offline=False) -> dict:
    """The environment a kvplan subprocess reads the Hub with: its own cache under tmp_path, `endpoint` as the Hub."""
    env = {"HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HOME": str(tmp_path / "home"),
           "HF_HUB_OFFLINE": "1" if offline else "0", "HF_HUB_DISABLE_XET": "1", "KVPLAN_HUB_TIMEOUT": ""}
    return {**env, "HF_ENDPOINT": endpoint} if endpoint else env


def cached_repo(tmp_path, repo_id: str, files: dict) -> None:
    """A Hub cache folder as huggingface_hub writes it: refs/main -> snapshots/<commit>/<files> (JSON contents)."""
    repo = tmp_path / "cache" / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name, contents in files.items():
        (snapshot / name).write_text(json.dumps(contents))
