"""What a newcomer reads runs: every `kvplan ...` command in README.md and docs/*.md (code blocks and inline code)
and in `kvplan --help`'s examples is run in process, offline, and must exit as the page says (0; verify, which needs
a CUDA GPU, is run with -h here and refuses cleanly). The files the commands name are the pages' own YAML blocks.
Also: the README's first output block is what kvplan prints now, whole; the numbers in its deployments file's comments
are kvplan's; every key a deployments file takes is documented in docs/ci.md and nothing else is called a key there.
"""
import json
import re
import shlex

import pytest
import yaml

from conftest import ROOT, run_kvplan

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# a synopsis's placeholders, as a reader would fill them in (bundled model, offline)
PLACEHOLDERS = {"MODEL": "meta-llama/Llama-3.1-8B-Instruct", "N": "2", "L": "8K", "D": "fp8"}  # and X.Y.Z: 0.32.0
# inline mentions that name a command's output or a hook's call, not a command to type: their flags must exist (-h)
MENTIONS = {"kvplan check --format json", "kvplan verify --format json", "kvplan check MODEL"}
# --install-completion writes into the user's shell start-up files; `kvplan check --file` is the pre-commit hook's
# call, the changed files appended (README's `kvplan check --file deployments.yaml` runs it)
NOT_RUN = {"kvplan --install-completion", "kvplan check --file"}
BARE_NAMES = {"estimate", "check", "verify"}  # `kvplan check` alone in prose names the command


def _commands_in_block(block: str) -> list:
    found = []
    for line in block.splitlines():
        line = re.sub(r"\s#.*$", "", line.strip())  # a shell or YAML comment
        line = re.sub(r"^(\$|- run:|run:)\s*", "", line)
        for part in line.split("&&"):
            part = part.strip()
            if part.startswith("kvplan "):
                found.append(part)
    return found


def _inline_commands(text: str) -> list:
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    found = []
    for span in re.findall(r"`(kvplan [^`]+)`", prose):
        command = " ".join(span.replace("[", " ").replace("]", " ").split())
        found.append(command if command in MENTIONS else
                     " ".join(PLACEHOLDERS.get(word, word) for word in command.split()).replace("X.Y.Z", "0.32.0"))
    return found


def documented_commands() -> list:
    """(page, command) for every kvplan command the pages show, first occurrence only."""
    seen, out = set(), []
    for page in PAGES:
        text = page.read_text()
        blocks = [m.group(1) for m in re.finditer(r"```\w*\n(.*?)```", text, re.S)]
        for command in [c for b in blocks for c in _commands_in_block(b)] + _inline_commands(text):
            words = command.split()
            if command in seen or command in NOT_RUN or (len(words) == 2 and words[1] in BARE_NAMES):
                continue
            seen.add(command)
            out.append((page.name, command))
    return out


def help_examples() -> list:
    text = run_kvplan("--help", env={"COLUMNS": "200"}).stdout
    return [line.strip().split("  (")[0] for line in text.splitlines()
            if line.strip().startswith("kvplan ") and "--install-completion" not in line]


def _block_after(text: str, marker: str) -> str:
    """The code block that starts at `marker` (its fence or a heading before it), without its fence line."""
    fence = text.index("```", text.index(marker))
    start = text.index("\n", fence) + 1
    return text[start:text.index("```", start)]


def _output_after(text: str, marker: str) -> str:
    """The rest of the code block after the line `marker` (a command and the output shown under it)."""
    start = text.index("\n", text.index(marker)) + 1
    return text[start:text.index("```", start)]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The files the pages' commands name, written from the pages' own blocks: README's deployments.yaml (and as
    a.yaml, b.yaml), docs/ci.md's reference file as deploy/deployments.yaml with the local config.json it names."""
    root = tmp_path_factory.mktemp("docs")
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / "docs" / "ci.md").read_text()
    readme_file = _block_after(readme, "```yaml\n# deployments.yaml")
    for name in ("deployments.yaml", "a.yaml", "b.yaml"):
        (root / name).write_text(readme_file)
    deploy = root / "deploy"
    (deploy / "configs" / "my-model").mkdir(parents=True)
    (deploy / "deployments.yaml").write_text(_block_after(ci, "## The deployments file"))
    spec = yaml.safe_load((ROOT / "model_specs" / "meta-llama--Llama-3.1-8B.yaml").read_text())
    (deploy / "configs" / "my-model" / "config.json").write_text(json.dumps(spec["config"]))
    return root


def test_the_pages_show_the_commands_this_test_knows():
    """The extraction finds the pages' commands (a broken pattern would pass every test below vacuously)."""
    commands = {c for _, c in documented_commands()}
    assert {"kvplan estimate meta-llama/Llama-3.1-8B-Instruct --gpu L4", "kvplan check --file deployments.yaml",
            "kvplan check --suggest meta-llama/Meta-Llama-3-8B", "kvplan gpus --format json",
            "kvplan check --file deploy/deployments.yaml"} <= commands
    assert any(c.startswith("kvplan verify ") for c in commands)
    assert len(help_examples()) >= 2


@pytest.mark.parametrize("page, command", documented_commands())
def test_a_documented_command_runs(page, command, workdir):
    args = shlex.split(command)[1:]
    if command in MENTIONS or args[0] == "verify":
        r = run_kvplan(args[0], "-h", *args[1:], cwd=workdir)  # verify needs a GPU: its documented flags must exist
    else:
        r = run_kvplan(*args, cwd=workdir)
    assert r.returncode == 0, f"{page}: `{command}` exited {r.returncode}: {r.stderr.strip()}"
    assert "Traceback" not in r.stderr


def test_the_help_examples_run(workdir):
    for command in help_examples():
        args = shlex.split(command)[1:]
        if args[0] == "verify":  # never a real GPU run in the suite: the example's flags must exist
            args = [args[0], "-h", *args[1:]]
        r = run_kvplan(*args, cwd=workdir)
        assert r.returncode == 0, f"kvplan --help's `{command}` exited {r.returncode}: {r.stderr.strip()}"


def test_verify_as_documented_refuses_cleanly_without_a_gpu():
    """README's verify synopsis, filled in: without CUDA one line on stderr, exit 2, nothing on stdout."""
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: verify would run for real")
    r = run_kvplan("verify", "meta-llama/Llama-3.1-8B-Instruct", "-tp", "2", "--max-model-len", "8K",
                   "--kv-cache-dtype", "fp8", "--engine", "vllm==0.32.0")
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("kvplan: error: ") and "CUDA" in line


def test_the_readme_output_block_is_whole_what_kvplan_prints():
    """Every line of the README's example output, legend and footnotes included (test_layout checks the figures)."""
    text = (ROOT / "README.md").read_text()
    marker = "$ kvplan estimate meta-llama/Llama-3.1-8B-Instruct --gpu L4"
    shown = _output_after(text, marker)
    now = run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "L4", env={"COLUMNS": "100"})
    assert now.returncode == 0
    assert now.stdout == shown


def test_the_readme_deployments_comments_are_kvplans_numbers(workdir):
    """'14 fit on 4 x H100 at 32K' and 'fp8 weights leave 6.5 GiB more for the KV cache (55 -> 61)'."""
    text = (ROOT / "README.md").read_text()
    fit = int(re.search(r"# (\d+) fit on 4 x H100 at 32K", text).group(1))
    before, after = map(int, re.search(r"KV cache \((\d+) -> (\d+)\)", text).groups())
    r = run_kvplan("check", "--file", "deployments.yaml", "--format", "json", cwd=workdir)
    chat, chat_fp8 = json.loads(r.stdout)["results"]
    assert chat["max_concurrency"] == fit and chat_fp8["max_concurrency"] == after
    unquantised = run_kvplan("check", chat_fp8["model"], "-tp", "1", "--gpu", "h100", "-c", "8192",
                             "--max-num-seqs", "64", "--format", "json")
    assert json.loads(unquantised.stdout)["results"][0]["max_concurrency"] == before


def test_every_deployments_key_is_documented_once_in_docs_ci():
    """docs/ci.md's 'Valid keys in an entry' names every key the reader takes, and names no key it refuses."""
    from kvplan.commands.deployments import VALID_KEYS

    text = (ROOT / "docs" / "ci.md").read_text()
    paragraph = text[text.index("Valid keys in an entry"):text.index("The file is read strictly")]
    named = set(re.findall(r"`([a-z_]+)`", paragraph))
    assert set(VALID_KEYS) <= named
    assert named - set(VALID_KEYS) <= {"auto", "float32", "float16", "bfloat16", "deployments", "max_concurrency"}
    reference = yaml.safe_load(_block_after(text, "## The deployments file"))
    assert {k for entry in reference["deployments"] for k in entry} <= set(VALID_KEYS)


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    """README's first two blocks: install + estimate on a bundled model; install + the test suite, which .ci/run runs
    verbatim; and the README says torch==2.13.0 is a CPU build only on this project's machines."""
    text = (ROOT / "README.md").read_text()
    first, second = [m.group(1).strip() for m in re.finditer(r"```bash\n(.*?)```", text, re.S)][:2]
    assert first.startswith("pip install . && kvplan estimate ") and "HF_HUB_OFFLINE" not in first
    assert first.split("kvplan estimate ")[1].split()[0] == "meta-llama/Llama-3.1-8B-Instruct"  # bundled
    assert second.startswith("pip install torch==2.13.0 -e ") and " python -m pytest " in second
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert second in ci
    assert [line for line in ci if "pytest" in line and not line.startswith("#")] == [second]
    prose = " ".join(text[:text.index("## Commands")].split())
    assert "`torch==2.13.0` is a CPU build on the machines this project is developed and tested on" in prose
    assert "a CUDA build" in prose


def test_model_specs_readme_lists_every_bundled_spec_in_one_table():
    """model_specs/README.md's table: one row per bundled file, its aliases and layer count as the file has them,
    and no blank line that would cut the table in two (the rows after it would render as text)."""
    text = (ROOT / "model_specs" / "README.md").read_text()
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
    specs = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "model_specs").glob("*.yaml"))]
    assert sorted(rows) == sorted(s["id"] for s in specs)
    for spec in specs:
        cells, config = rows[spec["id"]], spec["config"].get("text_config", spec["config"])
        assert sorted(re.findall(r"`([^`]+)`", cells[1])) == sorted(spec.get("aliases") or []), spec["id"]
        layers = config.get("num_hidden_layers", config.get("n_layer"))
        assert cells[2] == str(layers), spec["id"]
    table = text[text.index("| id | aliases |"):]
    table = table[:table.index("\n\n")]
    assert len([line for line in table.splitlines() if line.startswith("| `")]) == len(specs)


def test_the_repository_paths_the_pages_name_exist():
    """Every kvplan/, benchmarks/, tests/, docs/ path README.md and docs/*.md name (README's Architecture once
    named kvplan/cli.py, a package since), and every file named bare (`vllm_graphs.py`) somewhere in the tree."""
    missing = []
    for page in PAGES:
        text = page.read_text()
        for path in set(re.findall(r"(?<![\w/.-])((?:kvplan|benchmarks|tests|docs|\.ci)/[\w./*-]+)", text)):
            path = path.rstrip(".,);:")
            if not any(ROOT.glob(path)):
                missing.append(f"{page.name}: {path}")
        here = {p.name for top in ("kvplan", "benchmarks", "tests") for p in (ROOT / top).rglob("*")}
        for name in set(re.findall(r"`([\w]+\.(?:py|cu|cuh))`", text)) - here:
            missing.append(f"{page.name}: {name}")
    assert not missing


def test_every_flag_the_pages_name_is_a_flag_of_kvplan():
    """A --flag README.md or docs/*.md names is one of kvplan's (its commands' or its own), or one of the few the
    pages name as another tool's: pip's, pytest's, a benchmark script's, or vLLM's that kvplan has no flag for."""
    from kvplan.cli.app import click_command, read_names

    ours = {"--version", "--help", "--install-completion", "--show-completion"}
    for command in click_command().commands.values():
        ours |= {o for p in command.params for o in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}
        ours |= read_names(command)  # vLLM's later and negative spellings, read as the flags themselves
    from kvplan.cli.flags import VLLM_SERVER_FLAGS  # vLLM's serve flags kvplan names as changing no plan
    from kvplan.cli.vllm_serve_flags import NO_EFFECT, UNMODELLED  # every other serve flag kvplan does not read

    others = {"--index-url", "--dist", "--ordered-pages", "--walks", "--enable-prompt-embeds", "--task",
              "--max-model", "--enable-l",  # vLLM's argparse abbreviations, which kvplan refuses (README)
              *VLLM_SERVER_FLAGS, *NO_EFFECT, *UNMODELLED}
    for page in PAGES:
        # a name with underscores (--max_model_len) is the dashed flag, as vLLM's parser and kvplan read it
        named = {name.replace("_", "-") for name in re.findall(r"(?<![\w-])(--[a-z][a-z0-9_-]+)", page.read_text())}
        assert named - ours <= others, (page.name, sorted(named - ours - others))
