"""Session 58, the review of the release-run remedies: a closed run is named by its first release and the first newer
one past it that does not pass alike ("--engine vllm==0.28.0 (any release from 0.11.0 before 0.29.0)"), so a patch
release inside it is in it; refusal.remedy_range ({"from", "before"}, low to high) is the run of the fix the remedy
names first, and of no other; a search that finds no fix names the value that clears the refusal and what then stops
start-up ("... clears this, but then: ..."), and says nothing clears it only where no value clears the refusal itself.

vLLM lines read by hand in the unpacked sdists (vllm-X.Y.Z/vllm/...):
- DeepSeek-V3.2 on a B200 at --block-size 1: registry.py lists DeepseekV32ForCausalLM from 0.11.0 (:73); 0.11.0 to
  0.17.1 force the sparse MLA block to 64 whatever --block-size says (platforms/cuda.py 0.11.0:181-185, 0.17.1:269-
  274: "Forcing kv cache block size to 64 for FlashMLASparse backend"); 0.18.0 validates the block against the
  kernel's 64 (v1/attention/backend.py 0.18.0:170 supports_block_size; flashmla_sparse.py 0.18.0:90-91 [64]), so
  block 1 finds no backend. Releases 0.11.2 and 0.17.1 (patch releases between boundaries) start.
- Falcon (RWForCausalLM): registry.py 0.28.0:205 serves it, 0.29.0:814 lists it removed ("0.28.0"); kvplan reads
  --runner from 0.11 on (vllm_runner_flag.FLAGS_SINCE), so with --runner pooling the run starts at 0.11.0.
- Falcon with --enable-lora on 0.14.1: FalconForCausalLM(nn.Module, SupportsPP) has no SupportsLoRA (falcon.py
  0.14.1:480), so v1/worker/lora_model_runner_mixin.py 0.14.1:38 raises "FalconForCausalLM does not support LoRA
  yet."; -c 4096 is past its 2048 (FalconConfig's default; config/model.py 0.14.1:2007 "User-specified max_model_len
  ... is greater than the derived max_model_len").
- Qwen3.5 with --convert reward on 0.14.1: Qwen3_5ForConditionalGeneration is in 0.17.0's registry.py (:496), not in
  0.16.0's; ConvertType has no "reward" in 0.16.0 (config/model.py:77) or 0.17.0 (:77).
- Kimi-Linear with --convert reward: KimiLinearForCausalLM in registry.py 0.11.1:122 (not in 0.11.0's), 0.14.1:139;
  ConvertType lists reward in 0.11.1:69, 0.14.1:78 and 0.15.1:78, not in 0.16.0 (:77) (REWARD_UNTIL)."""

import csv
import io
import json

import yaml

from conftest import deployments_file, run_kvplan

import kvplan
from kvplan.engines.figures import Fix, Refusal, first_named, release_span
from kvplan.engines.vllm_remedy import first_stop, nothing_clears

DS32 = ("deepseek-ai/DeepSeek-V3.2", "--tp", "8", "--gpu", "B200", "--block-size", "1", "-c", "4096")
FALCON_POOLING = ("tiiuae/falcon-7b", "--gpu", "H100", "-c", "2048", "--runner", "pooling", "--engine", "vllm==0.29.0")
FALCON_LORA = ("tiiuae/falcon-7b", "--gpu", "H100", "--enable-lora", "-c", "4096", "--engine", "vllm==0.14.1")
QWEN35_REWARD = ("Qwen/Qwen3.5-9B", "--gpu", "H100", "-c", "8192", "--runner", "pooling", "--convert", "reward",
                 "--engine", "vllm==0.14.1")
KIMI_REWARD = ("moonshotai/Kimi-Linear-48B-A3B-Instruct", "--gpu", "H100", "--runner", "pooling", "--convert", "reward",
               "--engine", "vllm==0.11.0", "-c", "32K")
FALCON_STOP = ("--max-model-len 2048 or less (the model's own maximum; or VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, at your own "
               "risk) clears this, but then: FalconForCausalLM does not support LoRA yet; leave --enable-lora out")


def _flat(text: str) -> str:
    return " ".join(text.split())


def _run(*args, fmt: str = "table"):
    out = run_kvplan("estimate", *args, "--format", fmt)
    assert out.returncode in (0, 1), out.stderr
    return out.stdout


def _plans(*args) -> list:
    return json.loads(_run(*args, fmt="json"))["plans"]


def _refusal(*args) -> dict:
    (plan,) = _plans(*args)
    return plan["engine"]["refusal"]


def _starts(*args) -> bool:
    (plan,) = _plans(*args)
    return plan["engine"]["starts"]


# 1. remedy_range: the run of the fix the remedy names first, low to high

def test_an_older_run_gives_its_oldest_release_then_the_asked_side():
    """Falcon with --runner pooling under 0.29.0: 0.28.0 is named (the nearest), the run is 0.11.0 up to 0.29.0,
    where it said "0.11.0 to 0.28.0" with remedy_until "0.11.0" (the low end)."""
    refusal = _refusal(*FALCON_POOLING)
    assert refusal["remedy"] == "it starts with --engine vllm==0.28.0 (any release from 0.11.0 before 0.29.0)"
    assert refusal["remedy_range"] == {"from": "0.11.0", "before": "0.29.0"}
    assert list(refusal["remedy_range"]) == ["from", "before"] and "remedy_until" not in refusal
    # the run's ends against kvplan's own plans: 0.10.2 (no --runner read) and 0.29.0 (removed) refuse
    flags = FALCON_POOLING[:-1]
    assert all(_starts(*flags, f"vllm=={r}") for r in ("0.11.0", "0.11.2", "0.17.1", "0.27.1", "0.28.0"))
    assert not _starts(*flags, "vllm==0.29.0")
    out = run_kvplan("estimate", *flags, "vllm==0.10.2")
    assert out.returncode == 2 and "reads vLLM's --runner and --convert from 0.11 on" in out.stderr


def test_the_range_is_the_first_named_fix_not_a_fallback_that_does_not_start():
    """GLM-5.2 on eight MI300X under 0.11.0: the remedy names "0.34.0 or newer" first (it starts); the closed run
    after it does not start (no KV memory is left), so no remedy_range: it said remedy_until "0.19.0". (The bf16
    checkpoint loads from 0.24.0 only: tests/test_glm52_indexers_s71.py.)"""
    refusal = _refusal("zai-org/GLM-5.2", "--tp", "8", "--gpu", "MI300X", "-c", "4096", "--engine", "vllm==0.11.0")
    assert refusal["remedy"] == ("it starts with --engine vllm==0.34.0 or newer; or vLLM accepts --engine vllm==0.24.0 "
                                 "(any release from 0.24.0 before 0.34.0), but then no KV memory is left")
    assert "remedy_range" not in refusal


def test_first_named_is_the_first_that_starts():
    nofit = Fix((("engine", "vllm==0.18.0"),), fits=False, shortfall="x", span=("0.18.0", "0.20.0"))
    fits = Fix((("engine", "vllm==0.21.0"),), fits=True, span=("0.21.0", "0.25.0"))
    assert first_named((nofit, fits)) is fits
    assert first_named((nofit,)) is nofit and first_named(()) is None


def test_release_span_names_the_next_boundary_after_the_run():
    boundaries = ("0.10.2", "0.11.0", "0.12.0", "0.17.0", "0.18.0", "0.29.0")
    assert release_span(("0.11.0", "0.12.0", "0.17.0"), boundaries) == ("0.11.0", "0.18.0")
    assert release_span(("0.17.0", "0.12.0", "0.11.0"), boundaries) == ("0.11.0", "0.18.0")  # an older run, too
    assert release_span(("0.18.0", "0.29.0"), boundaries) == ()  # nothing newer: not closed


# 4. a closed run takes in the patch releases kvplan accepts between its boundaries

def test_deepseek_v3_2_block_1_run_takes_in_0_17_1():
    """Asked under 0.10.2 (no DeepseekV32ForCausalLM): any release from 0.11.0 before 0.18.0, where it said "0.11.0 to
    0.17.0" though 0.17.1 starts."""
    refusal = _refusal(*DS32, "--engine", "vllm==0.10.2")
    assert refusal["remedy"] == "it starts with --engine vllm==0.11.0 (any release from 0.11.0 before 0.18.0)"
    assert refusal["remedy_range"] == {"from": "0.11.0", "before": "0.18.0"}
    for release in ("0.11.0", "0.11.2", "0.14.1", "0.17.0", "0.17.1"):  # published releases inside the run
        assert _starts(*DS32, "--engine", f"vllm=={release}"), release
    after = _refusal(*DS32, "--engine", "vllm==0.18.0")
    assert after["field"] == "block_size" and "block size 1" in after["reason"]


def test_kimi_linear_reward_run_ends_where_kvplan_refuses_reward():
    """0.11.1 to 0.15.x serve the class with reward (ConvertType 0.15.1 config/model.py:78); 0.16.0 drops reward, so
    the run ends before 0.16.0 and takes in the published 0.15.0 and 0.15.1."""
    refusal = _refusal(*KIMI_REWARD, "-tp", "2")
    assert refusal["remedy_range"] == {"from": "0.11.1", "before": "0.16.0"}
    flags = KIMI_REWARD[:-3]
    inside = ("0.11.1", "0.11.2", "0.14.1", "0.15.0", "0.15.1")
    assert all(_starts(*flags, f"vllm=={r}", "-c", "32K", "-tp", "2") for r in inside)
    out = run_kvplan("estimate", *flags, "vllm==0.16.0", "-c", "32K", "-tp", "2")
    assert out.returncode == 2 and "vLLM 0.16.0 refuses --convert reward" in out.stderr


# 2. a value that clears this refusal, then another refusal

def test_falcon_lora_names_the_length_and_the_lora_refusal_after_it():
    """-c 2048 clears the length refusal (the hint on VLLM_ALLOW_LONG_MAX_MODEL_LEN kept); then LoRA stops it, as
    estimate at -c 2048 says itself. It said "no --max-model-len value kvplan tries clears this"."""
    refusal = _refusal(*FALCON_LORA)
    assert refusal["field"] == "context" and refusal["remedy"] == FALCON_STOP and "remedy_range" not in refusal
    at_2048 = _refusal(*FALCON_LORA[:4], "-c", "2048", "--engine", "vllm==0.14.1")
    assert at_2048["reason"] == "FalconForCausalLM does not support LoRA yet."
    assert at_2048["remedy"] == "leave --enable-lora out"
    assert f"in model's config.json); {FALCON_STOP}." in _flat(_run(*FALCON_LORA))
    (plan,) = yaml.safe_load(_run(*FALCON_LORA, fmt="yaml"))["plans"]
    assert plan["engine"]["refusal"]["remedy"] == FALCON_STOP
    (row,) = list(csv.DictReader(io.StringIO(_run(*FALCON_LORA, fmt="csv"))))
    # estimate's CSV has check's engine columns whatever the rows (session 80): an empty range here
    assert row["engine_refusal_remedy"] == FALCON_STOP and row["engine_refusal_remedy_range_from"] == ""


def test_api_spells_the_fields_as_keywords():
    (plan,) = kvplan.estimate("tiiuae/falcon-7b", gpu="H100", enable_lora=True, max_model_len=4096,
                              engine="vllm==0.14.1")
    remedy = plan.to_dict()["engine"]["refusal"]["remedy"]
    assert remedy.startswith("max_model_len 2048 or less (") and remedy.endswith("leave enable_lora out")


def test_qwen3_5_reward_names_0_17_0_then_reward():
    said = "--engine vllm==0.17.0 clears this, but then: vLLM 0.17.0 refuses --convert reward"
    assert _refusal(*QWEN35_REWARD)["remedy"] == said


CHECK_BODY = """  - name: falcon-lora
    model: tiiuae/falcon-7b
    gpu: H100
    tp: 1
    context: 4096
    engine: vllm==0.14.1
    enable_lora: true
  - name: ds32
    model: deepseek-ai/DeepSeek-V3.2
    gpu: B200
    tp: 8
    block_size: 1
    context: 4096
    engine: vllm==0.10.2
  - name: kimi-reward
    model: moonshotai/Kimi-Linear-48B-A3B-Instruct
    gpu: H100
    tp: 2
    context: 32768
    engine: vllm==0.11.0
    runner: pooling
    convert: reward
"""


def test_check_says_both_in_its_keys_and_keeps_its_columns(tmp_path):
    path = deployments_file(tmp_path, CHECK_BODY)
    out = run_kvplan("check", "--file", path, "--format", "json")
    assert out.returncode == 1, out.stderr
    falcon, ds32, kimi = json.loads(out.stdout)["results"]
    (error,) = [f for f in falcon["findings"] if f["level"] == "error"]
    assert error["key"] == "context"
    assert error["message"].endswith("context 2048 or less (the model's own maximum; or "
                                     "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, at your own risk) clears this, but then: "
                                     "FalconForCausalLM does not support LoRA yet; leave enable_lora out.")
    assert ds32["engine"]["refusal"]["remedy_range"] == {"from": "0.11.0", "before": "0.18.0"}
    # the pooling note names the runner keys as English
    (note,) = [f["message"] for f in kimi["findings"] if f["level"] == "warning" and "pooling runner" in f["message"]]
    assert "because of runner pooling and convert reward: " in note
    text = run_kvplan("check", "--file", path, "--format", "csv").stdout
    header = text.splitlines()[0].split(",")
    assert header[-7:-4] == ["runner", "engine_refusal_remedy_range_from", "engine_refusal_remedy_range_before"]
    # s75's engine keys after them (tests/test_engine_core_s75.py)
    assert header[-4:] == ["engine_core", "engine_v0_reason", "engine_virtual_engines", "engine_watermark_blocks"]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["engine_refusal_remedy_range_from"], r["engine_refusal_remedy_range_before"]) for r in rows] == \
        [("", ""), ("0.11.0", "0.18.0"), ("0.11.1", "0.16.0")]
    (row,) = yaml.safe_load(run_kvplan("check", "--file", path, "--format", "yaml").stdout)["results"][1:2]
    assert row["engine"]["refusal"]["remedy_range"] == {"from": "0.11.0", "before": "0.18.0"}


def test_estimate_pooling_note_joins_the_flags():
    text = _flat(_run(*KIMI_REWARD, "-tp", "2"))
    assert "because of --runner pooling and --convert reward: vLLM converts it" in text


# the search on its own: refused() read by hand

def _refused(table: dict):
    """refused(trial) from {(field, value): Refusal}: the refusal of the trial's block size, else of its release (a
    block refusal named by the release, as ROCm's 0.12-0.17 ask block 1), else None."""
    def refused(trial):
        return table.get(("block_size", trial["block_size"])) or table.get(("engine", trial["engine"]))
    return refused


ASKED = dict(engine="vllm==0.10.2", kv_dtype="auto", context=4096, block_size=None)
RELEASES = ("0.10.2", "0.11.0", "0.12.0", "0.18.0")
ARCH = Refusal("arch", None, configuration=True, field="engine", options=("vllm==0.11.0",), onward="newer")


def test_first_stop_follows_the_next_field_it_changes():
    """0.11.0 clears the architecture, then needs block size 1, which clears that, then a refusal the search does not
    change (LoRA): both changes named, then that refusal."""
    block = Refusal("block", None, configuration=True, field="block_size", options=(1,))
    lora = Refusal("no LoRA yet.", None, configuration=True, field="enable_lora", remedy="leave --enable-lora out",
                   remedy_flags=(("enable_lora", "--enable-lora"),))
    table = {("engine", "vllm==0.10.2"): ARCH, ("engine", "vllm==0.11.0"): block, ("engine", "vllm==0.12.0"): block,
             ("engine", "vllm==0.18.0"): block, ("block_size", 1): lora}  # block 1 is refused for LoRA, any release
    stop = first_stop(_refused(table), ASKED, ARCH, (), RELEASES)
    assert stop == ((("engine", "vllm==0.11.0"), ("block_size", 1)), lora)
    said = nothing_clears(ARCH, _refused(table), ASKED, RELEASES)
    assert said.remedy == ("--engine vllm==0.11.0 and --block-size 1 clear this, but then: no LoRA yet; leave "
                           "--enable-lora out")
    assert said.advice(lambda field: field) == ("engine vllm==0.11.0 and block_size 1 clear this, but then: no LoRA "
                                                "yet; leave enable_lora out")


def test_nothing_clears_only_where_no_value_clears_this_refusal():
    """Every release the search tries meets the same refusal again: nothing clears it, and it says so."""
    table = {("engine", f"vllm=={r}"): ARCH for r in RELEASES}
    assert first_stop(_refused(table), ASKED, ARCH, (), RELEASES) is None
    assert nothing_clears(ARCH, _refused(table), ASKED, RELEASES).remedy == "no vLLM release kvplan models clears this"
