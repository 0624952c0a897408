"""Session 80's review of the library results (Plans / Checks), check's `serve:` reading and estimate's CSV: each
defect found, held to what it should do. Figures by hand: Llama-3.1-8B has 32 layers, 8 KV heads of 128 dims, bf16
(2 B), so 32 x 2 x 8 x 128 x 2 = 131072 B a token, 65536 a GPU at tp 2."""

import json

import pytest

import kvplan
from conftest import run_kvplan, served_refusal
from kvplan.cli.serve_command import serve_arguments
from test_api_review_s80 import cli_json, offline  # noqa: F401 (offline: the autouse fixture, offline Hub)

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
KV_PER_GPU_TP2 = 32 * 2 * 8 * 128 * 2 // 2  # the 8 KV heads split over 2 GPUs: 65536 B a token a GPU


# ---- Plans / Checks: what the list holds is what renders ----------------------------------------------------------

def test_a_slice_of_plans_is_the_document_of_the_plans_it_holds():
    # before: plans[1:] was a plain list (no to_dict, refused by emit), and after `del plans[0]` or a sort, to_dict()
    # and emit() still rendered the run's plans in the run's order
    plans = kvplan.estimate(MODEL, gpu="L4", max_model_len=8192, tensor_parallel_size=[1, 2])
    wide = plans[1:]
    assert isinstance(wide, kvplan.Plans) and wide[0].kv_bytes_per_token_per_gpu == KV_PER_GPU_TP2
    assert wide.to_dict() == cli_json("estimate", MODEL, "--gpu", "L4", "--max-model-len", "8192", "-tp", "2")
    assert kvplan.emit(wide, "csv") == run_kvplan("estimate", MODEL, "--gpu", "L4", "--max-model-len", "8192", "-tp",
                                                   "2", "--format", "csv").stdout
    whole = plans.to_dict()["plans"]
    plans.reverse()
    assert plans.to_dict()["plans"] == whole[::-1]
    del plans[0]
    assert [row["tp"] for row in plans.to_dict()["plans"]] == [1]


def test_auto_fit_records_follow_their_plans_through_a_slice_and_a_sort():
    # auto-fit's record was kept by plan index: a reordered or cut list would give a plan another plan's record
    plans = kvplan.estimate(MODEL, gpu="L4", max_model_len="auto", tensor_parallel_size=[1, 2])
    for i, tp in enumerate(("1", "2")):
        alone = cli_json("estimate", MODEL, "--gpu", "L4", "--max-model-len", "auto", "-tp", tp)
        assert plans[i:i + 1].to_dict() == alone
        assert kvplan.emit(plans[i:i + 1], "table") == kvplan.emit(
            kvplan.estimate(MODEL, gpu="L4", max_model_len="auto", tensor_parallel_size=int(tp)), "table")
    rows = plans.to_dict()["plans"]
    plans.sort(key=lambda p: -p.tp)
    assert plans.to_dict()["plans"] == rows[::-1]


def test_an_empty_slice_is_refused_by_emit_in_one_sentence():
    plans = kvplan.estimate(MODEL, gpu="L4", max_model_len=8192)
    assert plans[5:].to_dict()["plans"] == []
    with pytest.raises(kvplan.FieldError, match=r"^result holds no plans; "):
        kvplan.emit(plans[5:], "table")


def test_checks_ok_and_document_are_the_deployments_it_holds():
    deployments = [
        {"name": "chat", "model": MODEL, "tp": 1, "gpu": "L4", "context": 8192, "min_concurrency": 2},
        # 1000 sequences of 8192 tokens need 1000 x 8192 x 65536 B = 537 GB a GPU: more than an L4's 24 GB
        {"name": "wide", "model": MODEL, "tp": 2, "gpu": "L4", "context": 8192, "min_concurrency": 1000},
    ]
    checks = kvplan.check_deployments(deployments)
    assert checks.ok is False
    chat = checks[:1]  # before: a plain list, no .ok
    assert isinstance(chat, kvplan.Checks) and chat.ok is True and chat.to_dict()["ok"] is True
    assert chat.to_dict() == kvplan.check_deployments(deployments[:1]).to_dict()
    checks.pop()  # before: ok stayed False and to_dict() kept the failed deployment
    assert checks.ok is True and [r["name"] for r in checks.to_dict()["results"]] == ["chat"]


# ---- check's serve: a shell's comment -----------------------------------------------------------------------------

@pytest.mark.parametrize("serve", [
    # a comment after the command in a block scalar (YAML keeps it; a shell drops it): its words were read as MODELs,
    # "holds 4 words where `vllm serve` takes one MODEL ('meta-llama/...', '#', 'two', 'GPUs')"
    f"|\n      vllm serve {MODEL} -tp 2  # two GPUs\n",
    f"|\n      # the chat deployment\n      vllm serve {MODEL} \\\n        -tp 2\n",
])
def test_a_shell_comment_in_a_serve_block_is_not_read(tmp_path, serve):
    path = tmp_path / "deployments.yaml"
    path.write_text(f"deployments:\n  - name: served\n    gpu: H100\n    serve: {serve}")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 0, r.stderr
    (result,) = json.loads(r.stdout)["results"]
    assert result["tp"] == 2 and result["kv_bytes_per_token_per_gpu"] == KV_PER_GPU_TP2


def test_a_hash_inside_a_word_or_quoted_is_the_words_not_a_comment():
    # a shell starts a comment only at a word's beginning: a#b and '#1' are words (shlex's comments=True cut a#b)
    assert serve_arguments(f"vllm serve {MODEL} --served-model-name a#b '# 1' \"x #y\" z\\ #w #c d") == [
        "vllm", "serve", MODEL, "--served-model-name", "a#b", "# 1", "x #y", "z #w"]
    with pytest.raises(kvplan.KvplanError, match=r"^holds only a comment; give the `vllm serve` command"):
        serve_arguments("# vllm serve, to come\n")


def test_an_assignment_of_a_path_is_named_as_the_environment(tmp_path):
    # before: the basename of 'HF_HOME=/data/hf' ('hf') was tested, so it was "runs 'HF_HOME=/data/hf' before
    # `vllm serve`" where 'VLLM_ALLOW_LONG_MAX_MODEL_LEN=1' was named as the environment
    line = served_refusal(tmp_path, "H100", f"HF_HOME=/data/hf vllm serve {MODEL} -tp 2")
    assert "sets 'HF_HOME=/data/hf' in the command's environment, which kvplan does not read" in line, line


# ---- check_deployments: which entry ---------------------------------------------------------------------------------

def test_check_deployments_names_the_entry_whose_model_or_serve_is_refused():
    chat = {"name": "chat", "model": MODEL, "tp": 1, "gpu": "L4", "context": 8192}
    # before: "model no/such-model is not bundled ..." with no word of which of the entries holds it
    with pytest.raises(kvplan.KvplanError) as caught:
        kvplan.check_deployments([chat, {"name": "lost", "model": "no/such-model", "tp": 1}])
    assert str(caught.value).startswith("deployment 'lost': model no/such-model is not bundled"), caught.value
    # before: "has unknown key 'serve'", a key every deployments file may hold
    with pytest.raises(kvplan.KvplanError) as caught:
        kvplan.check_deployments([chat, {"name": "served", "model": MODEL, "tp": 1, "serve": "vllm serve x"}])
    assert str(caught.value).startswith("deployment 'served' holds 'serve', which only `kvplan check --file` reads")
