"""--gpus-per-node (the API's and a deployments file's gpus_per_node): the user's own node in place of the catalog's
(GPU.node_gpus), for the remedies only. TP degrees the remedies try stay <= N; pipeline stages go across nodes, a node
holding N // tp TP groups (plan.staged_cost: nodes = ceil(pp / (N // tp))). The JSON says the node used and where it
came from (node_gpus, node_gpus_source), the text's title the user's node. A -tp past the user's node is planned with a
note, not refused.

vLLM read by hand for that choice: 0.32.0 v1/executor/ray_utils.py:319-335 (_verify_bundles) only logs a warning when
tensor_parallel_size exceeds a node's GPUs ("Tensor parallel workers can be spread out to 2+ nodes which can degrade the
performance unless you have fast interconnect across nodes, like Infiniband"); 0.34.0 the same at :75-91;
docs/serving/parallelism_scaling.md 0.32.0:132-137 serves --tensor-parallel-size 16 over two nodes of 8; :9 and :122
advise tp = the GPUs of a node, pp = the number of nodes.

Config numbers (model_specs/*.yaml, bfloat16, head_dim 128), worked by hand:
- Llama-3.1-405B: hidden 16384, intermediate 53248, 126 layers, 128 heads, 8 KV heads, vocabulary 128256, embeddings
  not tied. One decoder layer: q and o 2 x 16384^2 = 536,870,912; k and v 2 x 16384 x 1024 = 33,554,432; gate, up,
  down 3 x 16384 x 53248 = 2,617,245,696; two norms 32,768: 3,187,703,808 parameters. Embedding (and LM head)
  128256 x 16384 = 2,101,346,304. All: 126 x layer + 2 x embedding + final norm 16384 = 405,853,388,800 (the 405.85B
  kvplan prints), 756 GiB in bf16.
- Llama-3.1-70B: hidden 8192, intermediate 28672, 80 layers, 64 heads, 8 KV heads. One layer: 2 x 8192^2 +
  2 x 8192 x 1024 + 3 x 8192 x 28672 + 2 x 8192 = 855,654,400; embedding 128256 x 8192 = 1,050,673,152.
What a GPU may use: memory as the catalog holds it x vLLM's default gpu_memory_utilization 0.92; H100 and A100-80GB
alike 79.15 GiB x 0.92 = 72.82 GiB.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kvplan.api import check, estimate
from kvplan.cli.flags import flag
from kvplan.errors import FieldError
from kvplan.plan.catalog import find_gpu, with_node_gpus
from tests.conftest import ROOT, deployments_file, one_error_line, run_kvplan

GiB = 2**30
LONG = 131072
L405, L70, L8 = "meta-llama/Llama-3.1-405B", "meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-8B"
L405_LAYER, L405_EMBEDDING = 3_187_703_808, 2_101_346_304
L70_LAYER, L70_EMBEDDING = 855_654_400, 1_050_673_152
USABLE = 79.15 * 0.92 * GiB  # H100 and A100-80GB: total_gpu_memory 79.15 GiB x 0.92


def _plan(model: str, **keywords):
    (plan,) = estimate(model, max_model_len=LONG, **keywords)
    return plan


def _row(model: str, **keywords) -> dict:
    (row,) = check(model, max_model_len=LONG, **keywords)
    return row


def _kv_per_request(layers: int, heads_per_gpu: int, kv_bytes: int = 2) -> int:
    """One 131,072-token request's K and V on one GPU: layers x heads x head_dim 128 x (K, V) x bytes."""
    return LONG * layers * heads_per_gpu * 128 * 2 * kv_bytes


def _close(measured: int, hand: int) -> bool:
    """kvplan's weights keep the norms whole on every rank (vLLM's RMSNorm is not split); the hand figure divides
    them too: a few MiB in 60 GiB."""
    return abs(measured - hand) / hand < 1e-4


# Llama-3.1-405B bf16 on H100: two nodes of 8, or three of 4 --------------------------------------------------

def test_405b_on_nodes_of_4_gets_tp_4_x_pp_3_not_tp_8_x_pp_2():
    """Any 8 GPUs hold 756 GiB / 8 = 94.5 GiB of weights a GPU, past the 72.82 GiB usable: no two nodes of 4 serve
    the model (tp 4 x pp 2, tp 2 x pp 4, tp 1 x pp 8), so three nodes of 4 are the fewest. On three, the fewest
    stages (TP = a node's GPUs, vLLM's advice) are tp 4 x pp 3: 42 layers a stage, 42 x 3,187,703,808 x 2 / 4 =
    62.34 GiB of layers + the LM head 2,101,346,304 x 2 / 4 = 0.98 GiB on the last stage, and one request's KV
    42 x 2 heads x 128 x 2 x 2 x 131,072 = 5.25 GiB within what is left. The catalog's node of 8 gives tp 8 x pp 2
    (two nodes)."""
    assert _plan(L405, gpu="H100").fitting_options == ((("tp", 8), ("pp", 2)),)
    assert (126 * L405_LAYER + 2 * L405_EMBEDDING) * 2 / 8 > USABLE
    plan = _plan(L405, gpu="H100", gpus_per_node=4)
    assert plan.fitting_options == ((("tp", 4), ("pp", 3)),)
    assert plan.suggestion() == ("no tensor_parallel_size up to 4 (one node of gpus_per_node 4) fits, even with "
                                 "kv_cache_dtype fp8; would fit with tensor_parallel_size 4 and "
                                 "pipeline_parallel_size 3")
    followed = _plan(L405, gpu="H100", tensor_parallel_size=4, pipeline_parallel_size=3)
    assert followed.pp_partition == (42, 42, 42)
    assert _close(followed.budget.weights_bytes_per_gpu, (42 * L405_LAYER + L405_EMBEDDING) * 2 // 4)
    assert followed.kv_bytes_per_sequence_per_gpu == _kv_per_request(42, 2) == 5.25 * GiB
    assert followed.kv_budget_bytes_per_gpu >= 5.25 * GiB and followed.max_concurrency == 1


def test_405b_the_cheaper_shapes_on_nodes_of_4_fall_short():
    """tp 4 x pp 2 (two nodes): 63 x 3,187,703,808 x 2 / 4 = 93.5 GiB of layers alone. tp 2 x pp 6 takes the same
    three nodes with more stages and does not hold a request: 21 layers at tp 2 are the same 62.34 GiB, but the
    embedding split two ways is 1.96 GiB, and the request the same 21 x 4 x 128 x 2 x 2 x 131,072 = 5.25 GiB."""
    two_nodes = _plan(L405, gpu="H100", tensor_parallel_size=4, pipeline_parallel_size=2)
    assert two_nodes.budget.weights_exceed and 63 * L405_LAYER * 2 / 4 > USABLE
    more_stages = _row(L405, gpu="H100", tensor_parallel_size=2, pipeline_parallel_size=6, min_concurrency=1)
    assert not more_stages["passed"] and more_stages["max_concurrency"] == 0
    assert more_stages["kv_bytes_per_sequence_per_gpu"] == _kv_per_request(21, 4) == 5.25 * GiB
    held = _row(L405, gpu="H100", tensor_parallel_size=4, pipeline_parallel_size=3, min_concurrency=1,
                gpus_per_node=4)
    assert held["passed"] and held["node_gpus"] == 4 and held["node_gpus_source"] == "gpus_per_node"


def test_405b_asked_at_tp_8_on_nodes_of_4_is_planned_noted_and_steered_to_tp_4():
    """tp 8 is past a node of 4: planned (vLLM runs it, its Ray executor warns), said in a tp warning, and the remedy
    keeps TP within the node."""
    plan = _plan(L405, gpu="H100", tensor_parallel_size=8, gpus_per_node=4)
    assert plan.tp_valid and plan.fitting_options == ((("tp", 4), ("pp", 3)),)
    assert plan.suggestion().startswith("tensor_parallel_size 8 spans more than one node of gpus_per_node 4, and "
                                        "kv_cache_dtype fp8 alone falls short; ")
    (note,) = [w for w in plan.tp_warnings if "node" in w]
    assert note.startswith("tp 8 spans more than one node of gpus_per_node 4: vLLM runs one TP group across nodes")


# Llama-3.1-70B on A100-80GB: a node of 2 ---------------------------------------------------------------------

def test_70b_on_a_2_gpu_a100_node_gets_two_nodes_of_tp_2():
    """tp 2: (80 x 855,654,400 + 2 x 1,050,673,152) x 2 / 2 = 65.71 GiB of weights a GPU, and one request of 4 KV heads
    a GPU is 80 x 4 x 128 x 2 x 2 x 131,072 = 20 GiB (10 GiB in fp8), past the few GiB left. tp 1 x pp 2, the only
    other shape one node of 2 holds, keeps the same 65.7 GiB a GPU and 40 layers of 8 heads: 20 GiB (10 in fp8). Two
    nodes: tp 2 x pp 2 (40 layers of 4 heads: 10 GiB, 32.9 GiB of weights) holds 3; tp 1 x pp 4 holds as many on the
    same two nodes with twice the stages. The catalog's node of 8 offers tp 4 (one node)."""
    assert _plan(L70, gpu="A100-80GB").fitting_options == ((("tp", 4),),)
    plan = _plan(L70, gpu="A100-80GB", gpus_per_node=2)
    assert plan.fitting_options == ((("tp", 2), ("pp", 2)),)
    tp2 = _plan(L70, gpu="A100-80GB", tensor_parallel_size=2)
    assert _close(tp2.budget.weights_bytes_per_gpu, (80 * L70_LAYER + 2 * L70_EMBEDDING) * 2 // 2)
    assert tp2.kv_bytes_per_sequence_per_gpu == _kv_per_request(80, 4) == 20 * GiB
    assert 0 < tp2.kv_budget_bytes_per_gpu < _kv_per_request(80, 4, 1) == 10 * GiB
    assert _plan(L70, gpu="A100-80GB", tensor_parallel_size=1, pipeline_parallel_size=2,
                 kv_cache_dtype="fp8").max_concurrency == 0
    held = _row(L70, gpu="A100-80GB", tensor_parallel_size=2, pipeline_parallel_size=2, min_concurrency=1)
    assert held["passed"] and held["max_concurrency"] == 3
    assert held["kv_bytes_per_sequence_per_gpu"] == _kv_per_request(40, 4) == 10 * GiB
    assert _row(L70, gpu="A100-80GB", tensor_parallel_size=1, pipeline_parallel_size=4)["max_concurrency"] == 3


def test_70b_at_tp_2_on_a_2_gpu_node_gets_stages_or_a_shorter_length():
    """At tp 2, 80 x 4 x 128 x 2 x 2 = 163,840 B a token, 2,621,440 B a block of 16: the KV budget of 5,930,474,587 B
    (5,345,285,292 with vLLM's graph term at 1.25 GiB, plus 585,189,295 at 0.705 GiB) holds 2,262 blocks; less the
    null block, 2,261 x 16 = 36,176 tokens."""
    plan = _plan(L70, gpu="A100-80GB", tensor_parallel_size=2, gpus_per_node=2)
    assert plan.fitting_options == ((("context", 36176),), (("pp", 2),))
    assert plan.suggestion() == ("no tensor_parallel_size up to 2 (one node of gpus_per_node 2) fits, even with "
                                 "kv_cache_dtype fp8; would fit with max_model_len 36176 or pipeline_parallel_size 2")
    assert "tp 2 spans" not in " ".join(plan.tp_warnings)  # tp 2 is the node: no note


def test_a_user_node_replaces_the_nvl72_domain_and_its_words():
    """Llama-3.1-405B at tp 8 on GB200, 20 requests: the NVL72 domain offers tp 16 with fp8 (test_remedies_node.py);
    a node of 8 stops TP at 8 and goes to stages, and the words name the user's node, not the domain."""
    error = _row(L405, gpu="GB200", tensor_parallel_size=8, min_concurrency=20, gpus_per_node=8)["errors"][0]
    assert "no tensor_parallel_size up to 8 (one node of gpus_per_node 8) reaches it, even with kv_cache_dtype fp8" \
        in error
    assert error.endswith(" or pipeline_parallel_size 2.") and "NVL72" not in error


# the JSON: the node used and where it came from ------------------------------------------------------------------

@pytest.mark.parametrize("gpu, node", [("H100", 8), ("GH200", 4), ("GB200", 72)])
def test_json_reports_the_catalog_node(gpu, node):
    row = json.loads(run_kvplan("estimate", L8, "--gpu", gpu, "-c", "8192", "--format", "json").stdout)["plans"][0]
    assert (row["node_gpus"], row["node_gpus_source"]) == (node, "catalog") == (find_gpu(gpu).node_gpus, "catalog")


def test_json_reports_the_users_node_in_estimate_and_check():
    r = run_kvplan("estimate", L405, "--gpu", "H100", "--gpus-per-node", "4", "--format", "json")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)["plans"][0]
    assert (row["node_gpus"], row["node_gpus_source"]) == (4, "gpus_per_node")
    assert row["suggestion"] == ("no --tensor-parallel-size up to 4 (one node of --gpus-per-node 4) fits, even with "
                                 "--kv-cache-dtype fp8; would fit with --tensor-parallel-size 4 and "
                                 "--pipeline-parallel-size 3")
    r = run_kvplan("check", L8, "-tp", "2", "--gpu", "L40S", "--gpus-per-node", "2", "--format", "json")
    (result,) = json.loads(r.stdout)["results"]
    assert r.returncode == 0 and (result["node_gpus"], result["node_gpus_source"]) == (2, "gpus_per_node")
    r = run_kvplan("check", L8, "-tp", "2", "--gpu", "L40S", "--format", "csv")
    header = r.stdout.splitlines()[0].split(",")
    assert header.index("node_gpus") == header.index("gpu") + 1 and "node_gpus_source" in header


def test_the_table_words_the_users_node():
    """The budget and the length of test_70b_at_tp_2_on_a_2_gpu_node_gets_stages_or_a_shorter_length:
    5,930,474,587 B = 5.52 GiB, 36,176 tokens."""
    out = run_kvplan("estimate", L70, "--gpu", "A100-80GB", "-tp", "2", "--gpus-per-node", "2").stdout
    text = " ".join(out.split())
    assert ("max len 131,072 bf16 tp 2 does not fit: one request needs 20.0 GiB of KV per GPU, the budget is 5.52 GiB; "
            "no --tensor-parallel-size up to 2 (one node of --gpus-per-node 2) fits, even with --kv-cache-dtype fp8; "
            "would fit with --max-model-len 36176 or --pipeline-parallel-size 2.") in text
    weights = " ".join(run_kvplan("estimate", L405, "--gpu", "H100", "--gpus-per-node", "4").stdout.split())
    assert "split or shrink them: --tensor-parallel-size 4 and --pipeline-parallel-size 3, " in weights


def test_the_title_names_the_users_node():
    """The text says which node it kept TP within where the user gave one (the JSON's node_gpus 4): "split or shrink
    them: --tensor-parallel-size 4 and --pipeline-parallel-size 3" would otherwise read as advice for the H100's node
    of 8. The catalog's node goes unsaid, as before the flag."""
    out = " ".join(run_kvplan("estimate", L405, "--gpu", "H100", "--gpus-per-node", "4").stdout.split())
    assert f"{L405} on H100-80GB-SXM, nodes of --gpus-per-node 4: 126 layers, 756 GiB weights" in out
    plain = " ".join(run_kvplan("estimate", L405, "--gpu", "H100").stdout.split())
    assert f"{L405} on H100-80GB-SXM: 126 layers, 756 GiB weights" in plain and "nodes of" not in plain
    nvl72 = " ".join(run_kvplan("estimate", L405, "--gpu", "GB200", "-tp", "8").stdout.split())
    assert f"{L405} on GB200: 126 layers" in nvl72 and "nodes of" not in nvl72


def test_the_title_speaks_the_callers_words():
    """Rendered for the API (its keyword names), the title names gpus_per_node, as its suggestion does."""
    from kvplan.commands.estimate import estimate as run_estimate
    from kvplan.render import emit

    result = run_estimate(L70, contexts=[LONG], gpu="A100-80GB", tps=[2], gpus_per_node=2)
    text = " ".join(emit(result, "table").split())
    assert f"{L70} on A100-80GB, nodes of gpus_per_node 2: 80 layers" in text
    assert "(one node of gpus_per_node 2)" in text


def test_a_gpu_words_its_own_node():
    """One place says whose node it is and names it (GPU.node_given, node_setting, node_words): the catalog's span by
    its name, the user's by their setting, whatever the catalog calls the GPU's span (GB200's NVL72 domain)."""
    h100, gb200 = find_gpu("H100"), find_gpu("GB200")
    assert (h100.node_given, h100.node_setting(flag), h100.node_words(flag)) == (False, "", "one H100-80GB-SXM node")
    assert h100.node_words(counted=True) == "one H100-80GB-SXM node (8 GPUs)"
    assert gb200.node_words(counted=True) == "one GB200 NVL72 domain (72 GPUs)"
    mine = with_node_gpus(gb200, 8)
    assert mine.node_given and (mine.node_gpus, mine.node_source) == (8, "gpus_per_node")
    assert mine.node_setting(flag) == "--gpus-per-node 8" and mine.node_setting() == "gpus_per_node 8"
    assert mine.node_words(flag) == mine.node_words(flag, counted=True) == "one node of --gpus-per-node 8"
    assert with_node_gpus(gb200, None) is gb200


# validation ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, words", [
    ("0", "--gpus-per-node must be a positive integer, got 0."),
    ("-1", "--gpus-per-node must be a positive integer, got -1."),
    ("1025", "--gpus-per-node must be at most 1,024, got 1025."),
])
@pytest.mark.parametrize("command", [["estimate", L8], ["check", L8, "-tp", "1"]])
def test_the_flag_takes_a_positive_whole_number(command, value, words):
    assert one_error_line(run_kvplan(*command, "--gpus-per-node", value)) == f"kvplan: error: {words}"


@pytest.mark.parametrize("value", ["x", "2.5", ""])
def test_the_flag_refuses_text_naming_itself(value):
    line = one_error_line(run_kvplan("estimate", L8, "--gpus-per-node", value))
    assert line == f"kvplan: error: --gpus-per-node takes a whole number, got {value!r}."


@pytest.mark.parametrize("value", [0, -1, True, "4", 4.0])
def test_the_api_takes_only_a_positive_int(value):
    """0 and -1 as the flag refuses them; True, "4" and 4.0 as the API's own: the flag's text "4" is a number typer
    parses, the keyword's "4" a str, refused as a deployments file's "4" is."""
    for call in (lambda: estimate(L8, gpus_per_node=value), lambda: check(L8, tensor_parallel_size=1,
                                                                           gpus_per_node=value)):
        with pytest.raises(FieldError) as caught:
            call()
        assert caught.value.field == "gpus_per_node"


def test_a_tp_past_the_users_node_is_a_note_not_a_refusal():
    """vLLM starts TP across nodes (ray_utils.py _verify_bundles only warns): exit 0, the plan's tp warning and check's
    warning on the tp key name --gpus-per-node and what it is."""
    r = run_kvplan("estimate", L8, "--gpu", "H100", "-c", "8192", "-tp", "8", "--gpus-per-node", "4", "--format",
                   "json")
    assert r.returncode == 0 and r.stderr == ""
    (note,) = json.loads(r.stdout)["plans"][0]["tp_warnings"]
    assert note.startswith("tp 8 spans more than one node of --gpus-per-node 4: vLLM runs one TP group across nodes")
    r = run_kvplan("check", L8, "--gpu", "H100", "-c", "8192", "-tp", "8", "--gpus-per-node", "4", "--format", "json")
    (result,) = json.loads(r.stdout)["results"]
    assert r.returncode == 0 and result["passed"]
    (finding,) = result["findings"]
    assert finding["level"] == "warning" and finding["key"] == "tp" and "--gpus-per-node 4" in finding["message"]
    within = estimate(L8, gpu="H100", max_model_len=8192, tensor_parallel_size=4, gpus_per_node=4)[0]
    assert within.tp_warnings == ()


def test_the_catalogs_node_adds_no_note():
    """The catalog's node is kvplan's guess at a host: tp 16 on H100 without the flag is planned as before (the
    remedies still keep TP within 8, test_remedies_node.py)."""
    (plan,) = estimate(L8, gpu="H100", max_model_len=8192, tensor_parallel_size=16)
    assert not any("node" in w for w in plan.tp_warnings)


def test_check_file_takes_gpus_per_node_and_refuses_bad_values_with_their_line(tmp_path):
    path = deployments_file(tmp_path, f"  - name: a\n    model: {L405}\n    tp: 8\n    gpu: H100\n"
                                      f"    context: 131072\n    gpus_per_node: 4\n")
    r = run_kvplan("check", "--file", path, "--format", "json")
    (result,) = json.loads(r.stdout)["results"]
    assert (result["node_gpus"], result["node_gpus_source"]) == (4, "gpus_per_node")
    # vLLM would not start it (not one sequence fits): an error even without min_concurrency (docs/ci.md)
    assert any("would fit with tp 4 and pp 3" in e for e in result["errors"]) and not result["passed"]
    assert any(w.startswith("tp 8 spans more than one node of gpus_per_node 4") for w in result["warnings"])
    for bad, words in (("0", "must be a positive integer, got 0."),
                       ('"4"', "must be a positive integer, unquoted, got '4'."), ("0x4", "is written '0x4'")):
        path.write_text(f"deployments:\n  - name: a\n    model: {L8}\n    tp: 1\n    gpus_per_node: {bad}\n")
        line = one_error_line(run_kvplan("check", "--file", path))
        assert f"{path}:5: deployment 'a' field 'gpus_per_node' {words}" in line


def test_check_file_with_the_flag_says_to_give_it_per_deployment(tmp_path):
    path = deployments_file(tmp_path, f"  - name: a\n    model: {L8}\n    tp: 1\n")
    line = one_error_line(run_kvplan("check", "--file", path, "--gpus-per-node", "4"))
    assert line.startswith("kvplan: error: --gpus-per-node applies to MODEL only; with --file give it on each "
                           "deployment")


# the API answers as the command line ----------------------------------------------------------------------------

def test_api_and_cli_agree():
    (plan,) = estimate(L70, gpu="A100-80GB", max_model_len=LONG, gpus_per_node=2)
    r = run_kvplan("estimate", L70, "--gpu", "A100-80GB", "-c", "131072", "--gpus-per-node", "2", "--format", "json")
    row = json.loads(r.stdout)["plans"][0]
    data = plan.to_dict()
    assert (data["node_gpus"], data["node_gpus_source"]) == (row["node_gpus"], row["node_gpus_source"]) == \
        (2, "gpus_per_node")
    assert plan.suggestion(flag) == row["suggestion"]
    assert data["kv_budget_bytes_per_gpu"] == row["kv_budget_bytes_per_gpu"]
    (api_row,) = check(L70, tensor_parallel_size=1, gpu="A100-80GB", max_model_len=LONG, min_concurrency=1,
                       gpus_per_node=2)
    r = run_kvplan("check", L70, "-tp", "1", "--gpu", "A100-80GB", "-c", "131072", "--min-concurrency", "1",
                   "--gpus-per-node", "2", "--format", "json")
    (cli_row,) = json.loads(r.stdout)["results"]
    assert {k: v for k, v in api_row.items() if k not in ("errors", "findings")} == \
        {k: v for k, v in cli_row.items() if k not in ("errors", "findings")}
    assert api_row["errors"][0].endswith("tensor_parallel_size 2 and pipeline_parallel_size 2.")
    assert cli_row["errors"][0].endswith("--tensor-parallel-size 2 and --pipeline-parallel-size 2.")


# cold start ------------------------------------------------------------------------------------------------------

HEAVY = ("torch", "numpy", "huggingface_hub", "pynvml")  # what a planning run on a named GPU never needs


def test_the_flag_imports_nothing_more():
    """`kvplan estimate` in a fresh interpreter loads the same kvplan modules with --gpus-per-node as without, and
    neither loads torch, numpy, huggingface_hub (a bundled model, offline) or pynvml (the GPU is named)."""
    code = ("import sys, json; from kvplan.cli.run import main; main(sys.argv[1:]); "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('kvplan',) + "
            f"{HEAVY!r})), file=sys.stderr)")

    def loaded(*extra) -> list:
        out = subprocess.run([sys.executable, "-c", code, "estimate", L8, "--gpu", "H100", *extra], cwd=ROOT,
                             capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
                             timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stderr.strip().splitlines()[-1])

    plain, flagged = loaded(), loaded("--gpus-per-node", "4")
    assert "kvplan.plan.catalog" in plain and plain == flagged
    assert [m for m in flagged if m.split(".")[0] in HEAVY] == []
