"""Session 63 (coldpaths): estimate's and check's JSON give one deployment alike on the fields they share, and the
speed-ups of the remedy search keep each answer (checked against hand arithmetic and vLLM's get_pp_indices)."""

import json

import pytest
from typer.testing import CliRunner

from kvplan.cli.app import app
from kvplan.commands.check.served import other_engine
from kvplan.model.sources import resolve
from kvplan.model.spec import identical
from kvplan.plan.catalog import find_gpu
from kvplan.plan.sharding import Stage, pp_stages, stage_cache_layers, stage_weights

# the fields an estimate plan and a check row both carry for the same deployment
SHARED = ("tp", "pp_partition", "kv_heads_per_gpu", "context", "kv_dtype", "kv_bytes_per_token",
          "kv_bytes_per_token_per_gpu", "kv_bytes_per_sequence_per_gpu", "max_concurrency",
          "max_concurrency_limited_by", "runner", "node_gpus")

# (model, flags): valid, an invalid TP (heads not divisible), a TP the KV heads allow but the query heads do not
# (Falcon-7B: 71 heads, 1 KV head), pp given as 1, a pipeline longer than the model, MLA
DEPLOYMENTS = (
    ("meta-llama/Llama-3.1-8B", ["--tp", "2"]),
    ("meta-llama/Llama-3.1-8B", ["--tp", "3"]),
    ("meta-llama/Llama-3.1-8B", ["--tp", "2", "-pp", "1"]),
    ("meta-llama/Llama-3.1-8B", ["--tp", "3", "-pp", "2"]),
    ("tiiuae/falcon-7b", ["--tp", "2"]),
    ("meta-llama/Llama-3.2-1B-Instruct", ["--tp", "2", "-pp", "32"]),
    ("deepseek-ai/DeepSeek-V2-Lite", ["--tp", "2", "-pp", "3"]),
    ("google/gemma-3-12b-it", ["--tp", "4", "-c", "32768"]),
)


def _json(args: list):
    result = CliRunner().invoke(app, [*args, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("model,flags", DEPLOYMENTS)
def test_estimate_and_check_give_one_deployment_alike(model, flags):
    plan = _json(["estimate", model, *flags])["plans"][0]
    row = _json(["check", model, *flags])["results"][0]
    assert {k: plan[k] for k in SHARED} == {k: row[k] for k in SHARED}


def test_the_shared_forms_as_chosen():
    """pp_partition: [num_hidden_layers] at pp 1 (Llama-3.1-8B has 32 layers), vLLM's get_pp_indices split at pp 2
    (32 // 2 = 16 each), null where pp exceeds the layers (Llama-3.2-1B: 16); kv_heads_per_gpu null wherever vLLM
    refuses the sharding, though Falcon-7B's one KV head would divide tp 2 (71 query heads do not), and 8 / 2 = 4."""
    rows = {}
    for model, flags in DEPLOYMENTS[:6]:
        plan, row = _json(["estimate", model, *flags])["plans"][0], _json(["check", model, *flags])["results"][0]
        assert plan["pp_partition"] == row["pp_partition"]
        rows[" ".join([model, *flags])] = row
    llama = "meta-llama/Llama-3.1-8B --tp"
    assert rows[f"{llama} 2"]["pp_partition"] == [32] and rows[f"{llama} 2"]["kv_heads_per_gpu"] == 4
    assert rows[f"{llama} 2 -pp 1"]["pp_partition"] == [32]
    assert rows[f"{llama} 3 -pp 2"]["pp_partition"] == [16, 16] and rows[f"{llama} 3 -pp 2"]["kv_heads_per_gpu"] is None
    deep = rows["meta-llama/Llama-3.2-1B-Instruct --tp 2 -pp 32"]
    assert deep["pp_partition"] is None and deep["kv_heads_per_gpu"] is None
    falcon = _json(["check", "tiiuae/falcon-7b", "--tp", "2"])["results"][0]
    assert not falcon["passed"] and falcon["kv_heads_per_gpu"] is None


def test_stage_cache_layers_deal_each_layer_to_its_stage():
    """Falcon-40B's 60 layers at pp 16 as vLLM's get_pp_indices splits them: 60 // 16 = 3 each and the remainder
    12 one each to the stages before the last, from the second-to-last back (stages 3-14 hold 4); every cache layer
    is dealt once, in order."""
    spec = resolve("tiiuae/falcon-40b", None)
    stages = pp_stages(spec.num_hidden_layers, 16)
    held = stage_cache_layers(spec, stages)
    assert [len(s) for s in held] == [3, 3, 3] + [4] * 12 + [3]
    assert sorted(i for s in held for i in s) == list(range(60))
    assert held[3] == {9, 10, 11, 12}


def test_stage_weights_by_hand():
    """Llama-3.1-8B's last of 2 stages at tp 1, from its parameter groups: half the decoder layers plus the LM head
    (untied), of the checkpoint's bytes; asked twice (the sums' memo) the same."""
    spec = resolve("meta-llama/Llama-3.1-8B", None)
    groups = {g.name: g.bytes for g in spec.params}
    estimated = sum(groups.values())
    layers = sum(b for name, b in groups.items() if name not in ("embed", "lm_head", "vision"))
    share = (layers * 16 / 32 + groups["lm_head"]) / estimated
    last = Stage(1, 2, 16, 32)
    expected = int(spec.resident_weight_bytes * share)
    assert stage_weights(spec, 1, last) == expected == stage_weights(spec, 1, last)


def test_catalog_names_stay_the_catalogs():
    assert find_gpu("h100").name == find_gpu("H100 80GB SXM").name == "H100-80GB-SXM"
    with pytest.raises(Exception):
        find_gpu("no such gpu")


def test_check_shares_one_spec_among_releases_that_serve_it_alike():
    """check's other_engine gives the releases of a remedy search one spec object where they build the model alike
    (Falcon-40B at 0.10.2 and 0.28.0: no release_view change), so identity-keyed memos hit; a spec differing only
    in a field equality leaves out (a layer's heads_field) is not taken for another."""
    from dataclasses import replace

    from kvplan.commands.deployments import model_deployments

    deps = model_deployments("tiiuae/falcon-40b", [1])
    build = other_engine(replace(deps[0], context=2048), {})
    first, second = build("vllm==0.10.2", 2048)[0], build("vllm==0.28.0", 2048)[0]
    assert first is second
    spec = resolve("tiiuae/falcon-40b", None)
    renamed = replace(spec, layers=tuple(replace(layer, heads_field="other") for layer in spec.layers))
    assert renamed == spec and not identical(renamed, spec) and identical(spec, spec)


def test_identical_looks_into_a_drafters_spec():
    """A drafter's ModelSpec is compared as the target's (its layers' heads_field words the drafter's sharding errors,
    engines/vllm_budget.py shard(drafter.model, tp)), so two targets whose drafts differ only there are not one."""
    from dataclasses import replace

    from kvplan.engines.vllm_speculative import Drafter

    target, draft = resolve("meta-llama/Llama-3.1-8B", None), resolve("meta-llama/Llama-3.2-1B-Instruct", None)
    renamed = replace(draft, layers=tuple(replace(layer, heads_field="other") for layer in draft.layers))
    one, other = (replace(target, draft=Drafter(config=None, modules=0, params=(), layers=(), model=m))
                  for m in (draft, renamed))
    assert one == other and not identical(one, other)
    same = replace(target, draft=Drafter(config=None, modules=0, params=(), layers=(), model=draft))
    assert identical(one, same)
