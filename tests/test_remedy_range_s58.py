"""Session 58: a release remedy that holds over a closed run of the releases kvplan models names the whole run by
its first release and the first newer one that refuses ("--engine vllm==0.11.1 (any release from 0.11.1 before
0.16.0)", refusal.remedy_range in JSON / CSV), and a search that finds no fix says what clears the refusal and what
then stops start-up, or that nothing clears it (tests/test_remedy_fixes_s58.py has the review's fixes). vLLM lines
read by hand in the unpacked sdists:
- model_executor/models/registry.py: KimiLinearForCausalLM 0.11.1:122 (absent from 0.11.0's), 0.14.1:139;
  Qwen3_5ForConditionalGeneration 0.17.0:496 (absent from 0.16.0's); RWForCausalLM 0.11.0:146, 0.28.0:205, and in
  0.29.0's removed list (:814, "0.28.0").
- config/model.py ConvertType: "reward" listed in 0.11.1:69, 0.12.0:76, 0.13.0:74, 0.14.0:78, 0.14.1:78,
  0.15.1:78; gone from 0.16.0:77 (["none", "embed", "classify"]). kvplan reads --runner / --convert from 0.11 on
  and refuses reward from 0.16.0 (vllm_runner_flag REWARD_UNTIL), so the run of 0.11.1 ends before 0.16.0, and
  Falcon's before 0.29.0 starts at 0.11.0."""

import csv
import io
import json

from conftest import deployments_file, run_kvplan

from kvplan.engines.figures import Fix, Refusal
from kvplan.engines.vllm_remedy import configuration_fixes, nothing_clears
from kvplan.plan import plan as planning

KIMI = "moonshotai/Kimi-Linear-48B-A3B-Instruct"
KIMI_REWARD = ("--gpu", "H100", "--runner", "pooling", "--convert", "reward", "--engine", "vllm==0.11.0")
QWEN35_REWARD = ("Qwen/Qwen3.5-9B", "--gpu", "H100", "-c", "8192", "--runner", "pooling", "--convert", "reward",
                 "--engine", "vllm==0.14.1")
NOTHING = "no vLLM release kvplan models clears this"
QWEN35_STOP = "--engine vllm==0.17.0 clears this, but then: vLLM 0.17.0 refuses --convert reward"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _estimate(*args, fmt: str = "table"):
    out = run_kvplan("estimate", *args, "--format", fmt)
    assert out.returncode in (0, 1), out.stderr
    return out


def _refusal(*args) -> dict:
    (plan,) = json.loads(_estimate(*args, fmt="json").stdout)["plans"]
    return plan


def _csv_row(text: str) -> dict:
    (row,) = list(csv.DictReader(io.StringIO(text)))
    return row


# the search on its own: a refused() read by hand, releases named as release_boundaries names them

RELEASES = ("0.10.2", "0.11.0", "0.11.1", "0.12.0", "0.14.1", "0.16.0", "0.28.0", "0.29.0")


def _refused_outside(passing: set):
    """refused(trial): None for a release in `passing`, else a refusal of the release."""
    def refused(trial):
        release = trial["engine"].split("==")[1]
        return None if release in passing else Refusal("no", None, configuration=True, field="engine")
    return refused


ASKED = dict(engine="vllm==0.11.0", kv_dtype="auto", context=4096, block_size=None)


def test_a_newer_release_that_holds_up_to_a_refusing_one_names_the_run():
    """0.11.1, 0.12.0 and 0.14.1 pass, 0.16.0 on refuse: the fix is any release from 0.11.1 before 0.16.0 (Kimi-Linear's
    shape)."""
    refusal = Refusal("arch", None, configuration=True, field="engine", options=("vllm==0.11.1",), onward="newer")
    fixes = configuration_fixes(_refused_outside({"0.11.1", "0.12.0", "0.14.1"}), ASKED, refusal, RELEASES)
    assert fixes == (Fix((("engine", "vllm==0.11.1"),), span=("0.11.1", "0.16.0")),)
    assert fixes[0].words(lambda field: "--" + field) == "--engine vllm==0.11.1 (any release from 0.11.1 before 0.16.0)"


def test_the_run_stops_at_the_first_refusing_release():
    """0.12.0 refuses: 0.11.1 stands alone although 0.14.1 passes again (a run is unbroken, nearest first)."""
    refusal = Refusal("arch", None, configuration=True, field="engine", options=("vllm==0.11.1",), onward="newer")
    fixes = configuration_fixes(_refused_outside({"0.11.1", "0.14.1"}), ASKED, refusal, RELEASES)
    assert fixes[0] == Fix((("engine", "vllm==0.11.1"),))


def test_every_later_release_passing_is_still_or_newer():
    refusal = Refusal("arch", None, configuration=True, field="engine", options=("vllm==0.11.1",), onward="newer")
    fixes = configuration_fixes(_refused_outside(set(RELEASES[2:])), ASKED, refusal, RELEASES)
    assert fixes == (Fix((("engine", "vllm==0.11.1"),), onward="newer"),)


def test_an_older_run_is_named_oldest_first():
    """A removed architecture (0.28.0 or older) whose flag kvplan reads from 0.11.0: 0.28.0 named, any release from
    0.11.0 before 0.29.0 (the asked-for side)."""
    refusal = Refusal("gone", None, configuration=True, field="engine", options=("vllm==0.28.0",), onward="older")
    asked = dict(ASKED, engine="vllm==0.29.0")
    fixes = configuration_fixes(_refused_outside({"0.11.0", "0.11.1", "0.12.0", "0.14.1", "0.16.0", "0.28.0"}),
                                asked, refusal, RELEASES)
    assert fixes == (Fix((("engine", "vllm==0.28.0"),), span=("0.11.0", "0.29.0")),)
    assert fixes[0].words() == "engine vllm==0.28.0 (any release from 0.11.0 before 0.29.0)"


def test_the_planner_splits_a_closed_run_by_outcome_and_plans_nothing_past_it(monkeypatch):
    """ranged_fixes on a closed run: 0.11.1 does not hold a request, 0.12.0 and 0.14.1 do; 0.16.0 (past the run)
    is never planned."""
    planned = []

    def outcome(asked, changes):
        release = changes[0][1].split("==")[1]
        planned.append(release)
        return (False, "the weights alone do not fit") if release == "0.11.1" else (True, "")

    monkeypatch.setattr(planning, "_outcome", outcome)
    fix = Fix((("engine", "vllm==0.11.1"),), span=("0.11.1", "0.16.0"))
    out = planning.ranged_fixes(None, fix, (False, "the weights alone do not fit"), RELEASES)
    assert planned == ["0.12.0", "0.14.1"]
    assert out == [Fix((("engine", "vllm==0.11.1"),), fits=False, shortfall="the weights alone do not fit"),
                   Fix((("engine", "vllm==0.12.0"),), fits=True, span=("0.12.0", "0.16.0"))]


# what a search that finds nothing says

def test_nothing_clears_says_so_per_field():
    release = Refusal("arch", None, configuration=True, field="engine", options=("vllm==0.17.0",), onward="newer")
    assert nothing_clears(release).remedy == NOTHING
    dtype = Refusal("fp8", None, configuration=True, field="kv_dtype", options=("auto",))
    said = nothing_clears(dtype)
    assert said.remedy == "no --kv-cache-dtype value kvplan tries clears this"
    assert said.advice(lambda field: field) == "no kv_dtype value kvplan tries clears this"  # a deployments key
    also = Refusal("media", None, configuration=True, field="engine", options=("vllm==0.10.1",), onward="newer",
                   also="leave it out")
    assert nothing_clears(also).remedy == f"{NOTHING}; leave it out"
    gpu = Refusal("no kernel", None, configuration=True, field="gpu")  # no field the search changes: left alone
    assert nothing_clears(gpu) == gpu


# estimate on real models: table, JSON, CSV

KIMI_RANGE = {"from": "0.11.1", "before": "0.16.0"}


def test_kimi_linear_reward_names_0_11_1_before_0_16_0():
    """Kimi-Linear asked at 0.11.0 with --runner pooling --convert reward at TP 2: registered from 0.11.1, reward a
    --convert choice up to 0.15.1 and refused from 0.16.0, so any release from 0.11.1 before 0.16.0."""
    args = (KIMI, *KIMI_REWARD, "-tp", "2", "-c", "32K")
    said = "it starts with --engine vllm==0.11.1 (any release from 0.11.1 before 0.16.0)"
    assert f"vllm==0.11.0 is older); {said}." in _flat(_estimate(*args).stdout)
    refusal = _refusal(*args)["engine"]["refusal"]
    assert refusal["remedy"] == said
    assert refusal["remedy_range"] == KIMI_RANGE and refusal["field"] == "engine"
    row = _csv_row(_estimate(*args, fmt="csv").stdout)
    assert (row["engine_refusal_remedy_range_from"], row["engine_refusal_remedy_range_before"]) == ("0.11.1", "0.16.0")
    assert row["engine_refusal_remedy"] == said


def test_kimi_linear_reward_at_tp_1_names_the_run_it_does_not_fit():
    """TP 1: 91.5 GiB of bf16 weights on an H100 at every release of the run, so the run is accepted, not started."""
    plan = _refusal(KIMI, *KIMI_REWARD)
    assert plan["engine"]["refusal"]["remedy"] == ("vLLM accepts --engine vllm==0.11.1 (any release from 0.11.1 "
                                                   "before 0.16.0), but then the weights alone do not fit")
    assert plan["engine"]["refusal"]["remedy_range"] == KIMI_RANGE
    assert "at --engine vllm==0.11.1 it would fit with --tensor-parallel-size 2" in plan["suggestion"]


def test_falcon_on_the_pooling_runner_names_0_28_0_from_0_11_0():
    """RWForCausalLM: served to 0.28.0, gone in 0.29.0; --runner is read from 0.11 on, so 0.28.0 named, any release
    from 0.11.0 before 0.29.0 (it said "0.28.0" alone before)."""
    args = ("tiiuae/falcon-7b", "--gpu", "H100", "-c", "2048", "--runner", "pooling", "--engine", "vllm==0.29.0")
    said = "it starts with --engine vllm==0.28.0 (any release from 0.11.0 before 0.29.0)."
    assert said in _flat(_estimate(*args).stdout)
    assert _refusal(*args)["engine"]["refusal"]["remedy_range"] == {"from": "0.11.0", "before": "0.29.0"}


def test_an_open_range_has_no_remedy_range():
    """Falcon without the flag: "0.28.0 or older" (every older release kvplan models serves it), no closed run."""
    refusal = _refusal("tiiuae/falcon-7b", "--gpu", "H100", "-c", "2048", "--engine", "vllm==0.29.0")["engine"][
        "refusal"]
    assert refusal["remedy"] == "it starts with --engine vllm==0.28.0 or older" and "remedy_range" not in refusal


def test_qwen3_5_reward_names_the_release_that_clears_it_and_what_then_stops_it():
    """Qwen3.5 asked at 0.14.1 with --convert reward: 0.17.0 on register its class, and none of them lists reward;
    0.14.1 and older list reward, and lack the class: the nearest release that clears the registry, then reward."""
    text = _flat(_estimate(*QWEN35_REWARD).stdout)
    assert f"vllm==0.14.1 is older); {QWEN35_STOP}." in text
    plan = _refusal(*QWEN35_REWARD)
    assert plan["engine"]["refusal"]["remedy"] == QWEN35_STOP and "remedy_range" not in plan["engine"]["refusal"]
    assert plan["suggestion"].endswith(f"vllm==0.14.1 is older); {QWEN35_STOP}")
    row = _csv_row(_estimate(*QWEN35_REWARD, fmt="csv").stdout)
    # estimate's CSV has check's engine columns whatever the rows (session 80): an empty range here
    assert row["engine_refusal_remedy"] == QWEN35_STOP and row["engine_refusal_remedy_range_from"] == ""


# check: message, JSON, CSV

BODY = """  - name: kimi-reward
    model: moonshotai/Kimi-Linear-48B-A3B-Instruct
    gpu: H100
    tp: 2
    context: 32768
    engine: vllm==0.11.0
    runner: pooling
    convert: reward
  - name: qwen35-reward
    model: Qwen/Qwen3.5-9B
    gpu: H100
    tp: 1
    context: 8192
    engine: vllm==0.14.1
    runner: pooling
    convert: reward
"""


def test_check_names_the_run_and_what_stops_the_nearest(tmp_path):
    """check's finding on the engine key, its JSON's engine.refusal and its CSV (every row has every column:
    CHECK_COLUMNS), the fields named as the deployments file spells them ("engine", "convert")."""
    path = deployments_file(tmp_path, BODY)
    out = run_kvplan("check", "--file", path, "--format", "json")
    assert out.returncode == 1, out.stderr
    kimi, qwen = json.loads(out.stdout)["results"]
    kimi_said = "it starts with engine vllm==0.11.1 (any release from 0.11.1 before 0.16.0)"
    qwen_said = "engine vllm==0.17.0 clears this, but then: vLLM 0.17.0 refuses convert reward"
    (error,) = [f for f in kimi["findings"] if f["level"] == "error"]
    assert error["key"] == "engine" and error["message"].endswith(f"{kimi_said}.")
    assert kimi["engine"]["refusal"]["remedy_range"] == KIMI_RANGE
    (error,) = [f for f in qwen["findings"] if f["level"] == "error"]
    assert error["message"].endswith(f"vllm==0.14.1 is older); {qwen_said}.")
    assert qwen["engine"]["refusal"]["remedy"] == qwen_said
    table = _flat(run_kvplan("check", "--file", path).stdout)
    assert f"{kimi_said}." in table and f"older); {qwen_said}." in table
    text = run_kvplan("check", "--file", path, "--format", "csv").stdout
    # appended after runner: every column before it keeps its place (s75's four engine keys after them)
    assert text.splitlines()[0].split(",")[-7:-4] == ["runner", "engine_refusal_remedy_range_from",
                                                      "engine_refusal_remedy_range_before"]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["engine_refusal_remedy"] for r in rows] == [kimi_said, qwen_said]
    assert [(r["engine_refusal_remedy_range_from"], r["engine_refusal_remedy_range_before"]) for r in rows] == \
        [("0.11.1", "0.16.0"), ("", "")]
