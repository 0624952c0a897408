"""`kvplan verify` refuses bad input that no GPU would change before it probes CUDA (verify/stand_in.py: the plan
verify makes after detecting the GPU, verify/planned.py plan_for_gpu, worked out first on the catalog's CUDA GPUs),
in estimate's words; a refusal whose words depend on the GPU (defaults by memory class, backends by capability)
still waits for the detected GPU.

Without a GPU: import_stack answers as a machine without one (test_verify_engine_flags.no_gpu), so an input that
reaches the CUDA probe says "needs a CUDA GPU (stand-in)"."""

import pytest

from conftest import one_error_line, run_kvplan
from test_verify_engine_flags import JAMBA, LLAMA_8B, no_gpu  # noqa: F401 (fixture)
from kvplan import api
from kvplan.errors import FieldError
from kvplan.plan.catalog import find_gpu

PROBE = "kvplan: error: kvplan verify needs a CUDA GPU (stand-in)."
GEMMA2, GEMMA3 = "google/gemma-2-9b", "google/gemma-3-12b-it"


def _estimate_line(*args) -> str:
    run = run_kvplan("estimate", *args)
    assert run.returncode == 2
    return one_error_line(run)


# vLLM's SchedulerConfig refuses fewer batched tokens than max_model_len without chunked prefill
# ("max_num_batched_tokens (8192) is smaller than max_model_len (131072)": config/scheduler.py 0.32.0:316-332,
# config.py 0.6.0:1015-1024);
# 0.6.0 turns chunked prefill on by default only past 32,768 tokens (engine/arg_utils.py 0.6.0:843-848), so 16,384 runs
# with it off. Jamba's model class asserts "Jamba currently does not support chunked prefill" (model_executor/models/
# jamba.py 0.6.0:573). None of them reads the GPU.
REFUSED_ANYWHERE = [
    (("-c", "131072", "--no-enable-chunked-prefill", "--max-num-batched-tokens", "8192"), LLAMA_8B,
     '("max_num_batched_tokens (8192) is smaller than max_model_len (131072)")'),
    (("-c", "8192", "--engine", "vllm==0.6.0", "--enable-chunked-prefill"), JAMBA,
     '("Jamba currently does not support chunked prefill")'),
    (("-c", "16384", "--engine", "vllm==0.6.0", "--max-num-batched-tokens", "8192"), LLAMA_8B,
     '("max_num_batched_tokens (8192) is smaller than max_model_len (16384)")'),
]


@pytest.mark.parametrize("args, model, said", REFUSED_ANYWHERE)
def test_refused_before_the_probe_in_estimates_words(no_gpu, args, model, said):
    run = run_kvplan("verify", model, *args)
    line = one_error_line(run)
    assert run.returncode == 2 and said in line and line != PROBE
    assert line == _estimate_line(model, *args)  # the same sentence, flags and all


def test_the_api_names_its_keyword_before_the_probe(no_gpu):
    with pytest.raises(FieldError) as raised:
        api.verify(LLAMA_8B, max_model_len=131072, enable_chunked_prefill=False, max_num_batched_tokens=8192)
    assert raised.value.field == "max_num_batched_tokens" and "needs a CUDA GPU" not in str(raised.value)


def test_a_configuration_refused_on_every_cuda_gpu(no_gpu):
    """vLLM 0.34's CUDA attention backends take blocks of a multiple of 16 tokens (platforms/cuda.py 0.34.0:505-517
    raises "No valid attention backend found" when none is left): --block-size 8 (one the bundled kernel reads) is
    refused on every CUDA GPU of the catalog, so before the probe, naming the flag, its value and what vLLM accepts."""
    line = one_error_line(run_kvplan("verify", LLAMA_8B, "-c", "8192", "--block-size", "8", "--engine",
                                     "vllm==0.34.0"))
    assert line.startswith('kvplan: error: --block-size 8: vLLM 0.34.0 refuses it on any GPU ("No valid attention '
                           'backend found for block size 8")')
    assert "--block-size 16" in line


def test_a_multimodal_model_before_skip_mm_profiling_names_the_release(no_gpu):
    """verify plans a multimodal model as vLLM with --skip-mm-profiling (its text forward only); before 0.10.1 vLLM's
    profile run always runs the encoder (v1/worker/gpu_model_runner.py 0.10.0:2343-2346): refused on --engine, not on
    a flag the caller never gave."""
    line = one_error_line(run_kvplan("verify", GEMMA3, "-c", "8192", "--engine", "vllm==0.8.0"))
    assert line.startswith("kvplan: error: --engine vllm==0.8.0's profile run of 'google/gemma-3-12b-it' runs its "
                           "media encoder")
    assert "--engine vllm==0.10.1 or later" in line and "needs vLLM 0.10.1" not in line


# vLLM 0.9.0 picks max_num_seqs by the GPU (engine/arg_utils.py 0.9.0:1492-1508): 1,024 on 70 GiB or more but an A100,
# 256 elsewhere, and refuses a max_num_batched_tokens below it, so 200 is refused everywhere, in words that name the
# GPU's default. A max_num_seqs past the default batched tokens (8,192 / 2,048 / 16,384 by GPU in 0.32) alike. Gemma
# 2's soft capping with fp8 on 0.6.0 falls to XFormers, which refuses it; kvplan blames the cache dtype where
# FlashAttention would take the model, and the release on a T4, where it takes none.
GPU_WORDS = [
    (LLAMA_8B, ("-c", "8192", "--engine", "vllm==0.9.0", "--max-num-batched-tokens", "200")),
    (LLAMA_8B, ("-c", "8192", "--max-num-seqs", "100000")),
    (GEMMA2, ("-c", "4096", "--engine", "vllm==0.6.0", "--kv-cache-dtype", "fp8")),
]


@pytest.mark.parametrize("model, args", GPU_WORDS)
def test_refusals_in_the_gpus_words_wait_for_it(no_gpu, model, args):
    assert one_error_line(run_kvplan("verify", model, *args)) == PROBE


def _options(model: str, version: str, **given):
    from kvplan.commands.verify import verify_flags
    from kvplan.engines.vllm_versions import release_transformers
    from kvplan.model.sources import resolve
    from kvplan.verify.planned import Options

    values = dict(tp=1, context=8192, kv_dtype="auto", gpu_util=None, block_size=None, max_num_seqs=None,
                  max_num_batched_tokens=None, engine=f"vllm=={version}", flags=verify_flags())
    return resolve(model, None, transformers=release_transformers(version)), Options(**{**values, **given})


def test_the_detected_gpu_says_its_own_default():
    """After detection the same plan (plan_for_gpu) names that GPU's default: 1,024 sequences on an H100, 256 on a
    40 GB A100 (arg_utils.py 0.9.0:1495-1508)."""
    from kvplan.verify.planned import plan_for_gpu

    spec, opts = _options(LLAMA_8B, "0.9.0", max_num_batched_tokens=200)
    for gpu, seqs in (("H100", 1024), ("A100-40GB", 256)):
        device = find_gpu(gpu)
        with pytest.raises(FieldError, match=f"is less than max_num_seqs {seqs}, vLLM 0.9.0's default here"):
            plan_for_gpu(spec, opts, device, device.memory_bytes)


def test_a_valid_run_plans_one_stand_in(monkeypatch):
    """The cost of the early check on input it passes: one plan, on the H100 estimate states as its default, with
    no speeds or remedies; refused input is planned on the other stand-ins, CUDA GPUs only (NVML and NVRTC: no
    ROCm GPU runs verify)."""
    from kvplan.verify import stand_in

    planned = []
    real = stand_in.plan_for_gpu
    monkeypatch.setattr(stand_in, "plan_for_gpu", lambda spec, opts, gpu, total, bare: planned.append(
        (gpu.name, bare)) or real(spec, opts, gpu, total, bare=bare))
    stand_in.refuse_on_every_gpu(*_options(LLAMA_8B, "0.32.0"))
    assert planned == [("H100-80GB-SXM", True)]
    planned.clear()
    with pytest.raises(FieldError):
        stand_in.refuse_on_every_gpu(*_options(LLAMA_8B, "0.6.0", context=16384, max_num_batched_tokens=8192))
    names = [name for name, _ in planned]
    assert names[0] == "H100-80GB-SXM" and len(names) == len(set(names)) == len(stand_in.stand_ins())
    assert not any(name.startswith("MI") for name in names)
    assert all(find_gpu(name).compute_capability for name in names)


def test_good_input_still_reaches_the_probe(no_gpu):
    assert one_error_line(run_kvplan("verify", LLAMA_8B, "-c", "16384", "--engine", "vllm==0.6.0")) == PROBE
    assert one_error_line(run_kvplan("verify", JAMBA, "-c", "8192", "--engine", "vllm==0.6.0")) == PROBE


def test_the_plan_handed_on_has_the_release_s_length(tmp_path, no_gpu, monkeypatch):
    """A dynamic RoPE factor of 2 makes vLLM 0.32 derive 4,096 x 2 = 8,192 tokens (config/model.py 0.32.0:2583-2615),
    which verify's length check took (test_fuzz_verify_s66.py) while the plan it handed the GPU run, on the config's
    own 4,096, refused -c 8192 once the GPU was detected (the stand-ins now would before the probe). The plan handed
    on is estimate's: no refusal, the same concurrency on an H100."""
    import json

    import yaml
    from conftest import ROOT, estimate_plan
    from kvplan.commands import verify as verify_command
    from kvplan.verify.planned import plan_for_gpu

    config = yaml.safe_load((ROOT / "model_specs" / "meta-llama--Llama-3.2-1B-Instruct.yaml").read_text())["config"]
    config.update(max_position_embeddings=4096, rope_scaling={"rope_type": "dynamic", "factor": 2.0})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    handed = []
    real = verify_command.refuse_on_every_gpu
    monkeypatch.setattr(verify_command, "refuse_on_every_gpu", lambda spec, opts: handed.append((spec, opts))
                        or real(spec, opts))
    assert one_error_line(run_kvplan("verify", path, "-c", "8192")) == PROBE
    gpu = find_gpu("H100")
    _, _, _, plan = plan_for_gpu(*handed[0], gpu, gpu.memory_bytes)
    assert plan.engine.refusal is None
    assert plan.max_concurrency == estimate_plan(path, "-c", "8192", "--gpu", "H100")["max_concurrency"]
