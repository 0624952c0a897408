import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# torch's CPU work in these tests is on tiny tensors: one intra-op thread each. Its default, a thread per core that
# spins while it waits, oversubscribes a 2-core machine (the gloo tests' two ranks are two more processes): on a
# busy one, test_verify_gemma4's noise-floor test took 64 s instead of 8. Set before any test module imports torch;
# the spawned ranks and subprocesses inherit it; a value the caller set wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# The test command's `-n N --dist loadfile` hands each file whole to a worker, by default the files with the most
# tests first: a long file of few tests started last and kept one worker busy while the others idled (the kernel
# compiles, minutes with an empty kernel cache as CI has it, started last of all). With xdist's reordering off, files
# go out in collection order, which puts these first, longest first (seconds in one process on 2 cores, session 69:
# warm kernel cache, the compiles' with an empty one), then the rest by number of tests as before.
LONGEST_FILES_FIRST = (
    "test_kernel_compile.py",  # ~8 s; ~450 s of NVRTC with an empty kernel cache
    "test_verify_gemma4.py",  # ~9
    "test_verify_gemma3n.py",  # ~7
    "test_verify_tp.py",  # ~5 (two launches of two spawned ranks)
    "test_verify_model.py",  # ~5
    "test_verify_attention_free.py",  # ~5
    "test_hub.py",  # ~5 (mostly the fake Hub's retry waits)
    "test_verify.py",  # ~4
    "test_kernel_mla_fragments.py",  # ~4
    "test_s60_fuzz_fixes.py",  # ~3
    "test_verify_mimo_v2.py",  # ~3
)
# Last: with an empty kernel cache these compile cubins that test_kernel_compile.py's compile_all builds in the same
# run; late, they find most of them in the cache instead of compiling them a second time alongside it.
FILES_LAST = ("test_statestep_s62.py", "test_kernel_release.py", "test_kernel_release_s65.py")


def _files_whole(config) -> bool:
    """Under xdist's --dist loadfile (or loadscope): asked in the controller, or in a worker (whose own dist option
    xdist sets to "no") through what the controller told it (pytest_configure_node)."""
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        return bool(worker.get("kvplan_files_whole"))
    return getattr(config.option, "dist", "no") in ("loadfile", "loadscope")


def pytest_configure(config):
    if _files_whole(config) and hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False  # xdist's --no-loadscope-reorder: collection order stands


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    node.workerinput["kvplan_files_whole"] = _files_whole(node.config)


def pytest_collection_modifyitems(config, items):
    """Under --dist loadfile, files in the order they should start in (LONGEST_FILES_FIRST); each file's tests keep
    their order. Other runs keep pytest's order."""
    if not _files_whole(config):
        return
    from collections import Counter

    tests_in = Counter(item.path.name for item in items)

    def rank(item):
        name = item.path.name
        if name in LONGEST_FILES_FIRST:
            return 0, LONGEST_FILES_FIRST.index(name), name
        if name in FILES_LAST:
            return 2, FILES_LAST.index(name), name
        return 1, -tests_in[name], name

    items.sort(key=rank)


class Run:
    """What a command run gave: exit code, stdout, stderr (the shape of subprocess.CompletedProcess)."""

    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@contextlib.contextmanager
def environment(env: dict, cwd=None):
    saved = dict(os.environ)
    here = os.getcwd()
    os.environ.update({k: str(v) for k, v in env.items()})
    try:
        if cwd is not None:
            os.chdir(cwd)
        yield
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(saved)


def run_kvplan(*args, env=None, cwd=None):
    """The command-line surface in this process: kvplan.cli.main(argv) with stdout and stderr captured, the
    environment patched for the call (offline Hub by default)."""
    from kvplan.cli import main

    out, err = io.StringIO(), io.StringIO()
    # GITHUB_ACTIONS cleared: a suite run on a GitHub runner gets no annotation lines beside an error's one line
    with environment({"HF_HUB_OFFLINE": "1", "COLUMNS": "100", "GITHUB_ACTIONS": "", **(env or {})}, cwd):
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    return Run(code, out.getvalue(), err.getvalue())


def one_error_line(result) -> str:
    """The one line a bad input gets: on stderr, exit 2, nothing on stdout, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("kvplan: error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    return lines[0]


def estimate_plan(*args) -> dict:
    """`kvplan estimate ... --format json` in process, which must exit 0 with one plan: that plan."""
    import json

    r = run_kvplan("estimate", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    (plan,) = json.loads(r.stdout)["plans"]
    return plan


def run_installed(*args, env=None, cwd=None):
    """The installed entry point in a fresh interpreter: for the few smoke tests that must see a real process
    (start-up imports, the Hub client's own environment handling)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "kvplan", *map(str, args)], capture_output=True, text=True,
                          env=full_env, cwd=cwd or ROOT, timeout=120)


@contextlib.contextmanager
def hub_client(env: dict):
    """huggingface_hub as an interpreter started with `env` has it: the client reads HF_ENDPOINT, HF_HUB_CACHE,
    HF_HOME, HF_HUB_OFFLINE... once, as huggingface_hub.constants is imported (and its module-level HfApi, behind
    get_safetensors_metadata and model_info, keeps the endpoint it was made with), so within the block constants is
    imported again under `env` and that HfApi pointed at its endpoint; on the way out the environment, every constant
    and that endpoint are what they were, and the client's connections to the block's server are closed."""
    import importlib

    from huggingface_hub import close_session, constants, hf_api

    saved, endpoint = dict(vars(constants)), hf_api.api.endpoint
    try:
        with environment(env):
            importlib.reload(constants)
            hf_api.api.endpoint = constants.ENDPOINT
            try:
                yield
            finally:
                close_session()
    finally:
        vars(constants).update(saved)
        hf_api.api.endpoint = endpoint


def run_hub(*args, env=None, cwd=None):
    """run_installed's command in this process, the Hub client configured from `env` as a fresh interpreter's would be
    (hub_client): for the tests of what kvplan makes of a Hub's answers, a fake Hub's or a cache folder's. A warning
    the run raises is on its stderr as an interpreter's default filters would print it (pytest would keep it)."""
    import warnings

    env = {"HF_HUB_OFFLINE": "1", **(env or {})}
    with hub_client(env), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for hidden in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", hidden)
        result = run_kvplan(*args, env=env, cwd=cwd or ROOT)
    printed = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in caught)
    return Run(result.returncode, result.stdout, result.stderr + printed)


def load_yaml(text: str):
    """yaml.safe_load's value, parsed by libyaml where PyYAML has it (a tenth of the time on the bundled specs,
    which several test modules read at collection)."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@pytest.fixture(autouse=True, scope="session")
def planned_for_the_stated_default_gpu():
    """Without --gpu, estimate and check plan for the detected GPU (gpu/detect.py choose_gpu): the suite pins the
    stated default (H100 80GB SXM) so that its figures are the same on a GPU host (the device runs of the GPU tests)
    as on CI. verify sizes its GPU through torch, not through this."""
    import kvplan.gpu.detect as detect

    patch = pytest.MonkeyPatch()
    patch.setattr(detect, "detect_gpu", lambda: None)
    yield
    patch.undo()


@pytest.fixture
def write_config(tmp_path):
    def write(config, name="config.json"):
        path = tmp_path / name
        path.write_text(config if isinstance(config, str) else json.dumps(config))
        return path
    return write


@pytest.fixture
def kernel_torch():
    """torch, where a CUDA GPU can run the bundled kernels; the test is skipped (with the reason) elsewhere."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from kvplan.kernels._runtime import kernel_unavailable_reason

    reason = kernel_unavailable_reason()
    if reason:
        pytest.skip(reason)
    return torch


def vllm_reference():
    """benchmarks/engine_vllm_reference.py (kvplan's start-up for the inputs of a vLLM reference case), loaded once."""
    import importlib.util

    module = sys.modules.get("engine_vllm_reference")
    if module is None or not hasattr(module, "kvplan_startup"):
        spec = importlib.util.spec_from_file_location("engine_vllm_reference",
                                                      ROOT / "benchmarks" / "engine_vllm_reference.py")
        module = sys.modules["engine_vllm_reference"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def deployments_file(tmp_path, body: str):
    """A deployments YAML of `body` (the entries, indented under `deployments:`) in tmp_path."""
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n" + body)
    return path


def served_refusal(tmp_path, gpu: str, serve: str) -> str:
    """`kvplan check`'s refusal of one entry on `gpu` running `serve`: exit 2, nothing on stdout, one line on stderr
    (returned, stripped)."""
    path = deployments_file(tmp_path, f"  - name: served\n    gpu: {gpu}\n    serve: {serve}\n")
    r = run_kvplan("check", "--file", path)
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr.strip()


def line_of(path, needle: str, after: str) -> int:
    """The 1-based line of the first `needle` at or after the first line holding `after` (a finding's line)."""
    lines = path.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i in range(first, len(lines)) if needle in lines[i]) + 1
