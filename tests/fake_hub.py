"""A fake Hugging Face Hub for the tests that fetch over HTTP (test_hub.py, test_s54_qcfg.py,
test_sampler_quant_s55.py): the answer the huggingface_hub client expects for a file (length, ETag, commit header),
the model listing or an error, and a server on a free local port. test_hub.py's handler picks which files and
errors its repository paths get; a repository of plain files is repo_handler's."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _send(handler, data: bytes, headers: dict, body: bool) -> None:
    """A 200 answer of `data` (sent only when `body`: a GET, not a HEAD) with its length and `headers`."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(data)))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    if body:
        handler.wfile.write(data)


def send_file(handler, data: bytes, body: bool) -> None:
    """A file as /resolve/ serves it: its sha256 as the ETag, the commit it was read at."""
    _send(handler, data, {"ETag": '"' + hashlib.sha256(data).hexdigest() + '"', "X-Repo-Commit": COMMIT}, body)


def send_listing(handler, repo_id: str, names, body: bool) -> None:
    """The Hub's model listing (/api/models/{repo_id}[/revision/{revision}], what HfApi.model_info and
    snapshot_download read): the repo's files as siblings, each by its path in the repo."""
    data = json.dumps({"id": repo_id, "sha": COMMIT, "siblings": [{"rfilename": name} for name in names]}).encode()
    _send(handler, data, {"Content-Type": "application/json"}, body)


def send_error(handler, status: int, code=None, retry_after=None, commit=None) -> None:
    """An error answer; `code`: the Hub's X-Error-Code (EntryNotFound, RepoNotFound, GatedRepo); `commit`: the
    X-Repo-Commit the Hub sends with a file missing from a repo that exists (huggingface_hub records the absence
    under it: .no_exist/<commit>/<file>)."""
    handler.send_response(status)
    if code:
        handler.send_header("X-Error-Code", code)
    if commit:
        handler.send_header("X-Repo-Commit", commit)
    if retry_after:
        handler.send_header("Retry-After", retry_after)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


class RepoHandler(BaseHTTPRequestHandler):
    """A Hub holding one repository's `files` ({path in the repo: bytes}): each at /{owner}/{name}/resolve/{revision}/
    {path}, their listing at /api/models/{owner}/{name}[...]; anything else 404 EntryNotFound. `asked` counts the
    requests by the last component of their path. Make one with repo_handler."""

    protocol_version = "HTTP/1.1"
    files: dict = {}
    asked: Counter = Counter()

    def log_message(self, *args):
        pass

    def _answer(self, body: bool):
        path = self.path.split("?")[0]
        self.asked[path.rstrip("/").split("/")[-1]] += 1
        if path.startswith("/api/models/"):
            return send_listing(self, "/".join(path.split("/")[3:5]), self.files, body)
        name = path.split("/resolve/", 1)[1].split("/", 1)[-1] if "/resolve/" in path else None
        if name not in self.files:
            return send_error(self, 404, "EntryNotFound", commit=COMMIT if name else None)
        send_file(self, self.files[name], body)

    def do_HEAD(self):
        self._answer(False)

    def do_GET(self):
        self._answer(True)

    @classmethod
    def hold(cls, files: dict) -> None:
        """Serve `files` ({path: bytes, or a value written as JSON}) from now on."""
        cls.files = {name: data if isinstance(data, bytes) else json.dumps(data).encode()
                     for name, data in files.items()}


def repo_handler(files: dict) -> type:
    """A RepoHandler class of its own (its own `asked`) holding `files` (RepoHandler.hold)."""
    handler = type("Repo", (RepoHandler,), {"asked": Counter()})
    handler.hold(files)
    return handler


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that time out hang up mid-answer: expected here


@contextlib.contextmanager
def serving(handler_class):
    """The endpoint (HF_ENDPOINT) of a server answering with `handler_class`, shut down on exit (its loop looks for
    the shutdown every 20 ms, not serve_forever's default 0.5 s that every test using one would wait out)."""
    server = QuietServer(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def hub_env(tmp_path, endpoint=None, offline=False) -> dict:
    """The environment a kvplan run reads the Hub with (conftest.run_hub in this process, or a subprocess): its own
    cache under tmp_path, `endpoint` as the Hub."""
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
