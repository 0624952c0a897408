"""Pipeline stages refused by SupportsPP in vLLM 0.6.3-0.10.2 (kvplan/plan/sharding.py NO_PIPELINE, refuses_pipeline,
pipeline_release), checked against the wheels as read by hand:
- every release from 0.6.3 refuses pp > 1 where registry.is_pp_supported_model says no, in the same words:
  "Pipeline parallelism is not supported for this model. Supported models implement the `SupportsPP` interface."
  (config.py 0.6.3:412-418, 0.8.5:942-947; config/__init__.py 0.10.1:1313-1319; config/model.py 0.11.0:1057-1063);
- is_pp_supported_model asks the registered class (registry.py 0.6.3:386-390), True where its bases carry SupportsPP.
The scan that froze the table (benchmarks/vllm_reference/supports_pp_scan.py) is tested on a small models folder."""

import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

import kvplan.api as api
from kvplan.plan.sharding import pipeline_refusal, pipeline_release, refuses_pipeline
from tests.conftest import run_kvplan

MESSAGE = ("\"Pipeline parallelism is not supported for this model. Supported models implement the `SupportsPP` "
           "interface.\"")


def _plan(model, engine, pp=2, tp=1):
    (plan,) = api.estimate(model, max_model_len=4096, pipeline_parallel_size=pp, tensor_parallel_size=tp, gpu="H100",
                           engine=f"vllm=={engine}")
    return plan


# registered from 0.6.3 with SupportsPP among their bases: gemma2.py 0.6.3:363 / 0.8.5:363 Gemma2ForCausalLM(nn.Module,
# SupportsLoRA, SupportsPP); phi3.py 0.6.3:8 / 0.8.5:9 Phi3ForCausalLM(LlamaForCausalLM), llama.py 0.6.3:443 /
# 0.8.5:448 LlamaForCausalLM(nn.Module, SupportsLoRA, SupportsPP); mixtral.py 0.6.3:312 / 0.8.5:410 and deepseek_v2.py
# 0.6.3:479 / 0.8.5:671 (nn.Module, ..., SupportsPP)
@pytest.mark.parametrize("model, tp", [("google/gemma-2-9b", 1), ("microsoft/Phi-3-mini-4k-instruct", 1),
                                       ("mistralai/Mixtral-8x7B-v0.1", 2), ("deepseek-ai/DeepSeek-V2-Lite", 1)])
@pytest.mark.parametrize("engine", ["0.6.3", "0.8.5"])
def test_gemma2_phi3_mixtral_deepseek_v2_take_stages_from_0_6_3(model, tp, engine):
    plan = _plan(model, engine, tp=tp)
    assert not plan.pp_errors and plan.max_concurrency > 0


@pytest.mark.parametrize("model, refused, taken", [
    ("ai21labs/AI21-Jamba-1.5-Mini", "0.6.4", "0.6.5"),  # jamba.py 0.6.4:330 (nn.Module, HasInnerState, SupportsLoRA);
    # 0.6.5:364 adds SupportsPP
    ("tiiuae/falcon-mamba-7b", "0.6.4", "0.6.5"),  # registry.py 0.6.4:65 -> mamba.py 0.6.4:133 (no SupportsPP),
    # 0.6.5:156 with it
    ("openai/gpt-oss-20b", "0.10.1", "0.10.2"),  # gpt_oss.py 0.10.1:229 GptOssForCausalLM(nn.Module); 0.10.2:616
])
def test_a_class_without_supports_pp_is_refused_until_it_gains_it(model, refused, taken):
    (error,) = _plan(model, refused).pp_errors
    assert f"vLLM {refused} refuses pipeline parallelism for" in error and MESSAGE in error
    assert f"engine vllm=={taken} or newer takes it; at vllm=={refused} only pipeline_parallel_size 1 starts." in error
    assert not _plan(model, taken).pp_errors


def test_llama4_takes_stages_from_0_8_4():
    # mllama4.py 0.8.3:692 Llama4ForConditionalGeneration(nn.Module, SupportsMultiModal); 0.8.4:653 adds SupportsPP
    scout = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
    assert "does not implement SupportsPP" in _plan(scout, "0.8.3", tp=2).pp_errors[0]
    assert not _plan(scout, "0.8.4", tp=2).pp_errors


@pytest.mark.parametrize("architecture, last_refused, first_taken", [
    ("ChatGLMModel", "0.6.3", "0.6.4"),  # chatglm.py 0.6.3:565 (nn.Module, SupportsLoRA, SupportsMultiModal), 0.6.4:580
    ("MolmoForCausalLM", "0.6.3", "0.6.4"),  # molmo.py 0.6.3:1031, 0.6.4:1025
    ("MambaForCausalLM", "0.6.4", "0.6.5"),  # mamba.py 0.6.4:133, 0.6.5:156
    ("Ovis", "0.9.0", "0.9.1"),  # ovis.py 0.9.0:398 Ovis(nn.Module, SupportsMultiModal), 0.9.1:404
    ("Plamo2ForCausalLM", "0.10.0", "0.10.1"),  # plamo2.py 0.10.0:585, 0.10.1:703
    ("HunYuanMoEV1ForCausalLM", "0.10.1", "0.10.2"),  # hunyuan_v1.py 0.10.1:844 HunYuanV1Base(nn.Module,
    # SupportsLoRA), 0.10.2:844 with SupportsPP
    ("KimiVLForConditionalGeneration", "0.10.1", "0.10.2"),  # kimi_vl.py 0.10.1:273, 0.10.2:281
])
def test_boundary_releases(architecture, last_refused, first_taken):
    assert refuses_pipeline(architecture, last_refused)
    assert not refuses_pipeline(architecture, first_taken)
    assert pipeline_release(SimpleNamespace(architecture=architecture), last_refused) == first_taken


def test_never_taken_before_0_11():
    # mllama.py 0.6.3:895 ... 0.10.2:1273 MllamaForConditionalGeneration(nn.Module, SupportsMultiModal, ...) never has
    # SupportsPP, and 0.11.0 no longer lists it: no release takes its stages
    mllama = SimpleNamespace(architecture="MllamaForConditionalGeneration")
    assert refuses_pipeline("MllamaForConditionalGeneration", "0.6.3")
    assert refuses_pipeline("MllamaForConditionalGeneration", "0.10.2")
    assert pipeline_release(mllama, "0.6.3") == ""
    # mamba2.py 0.9.2:200 Mamba2ForCausalLM(nn.Module, HasInnerState, IsAttentionFree) through 0.11.0 and on
    assert refuses_pipeline("Mamba2ForCausalLM", "0.7.3") and refuses_pipeline("Mamba2ForCausalLM", "0.11.0")


def test_a_release_that_does_not_list_the_architecture_refuses_it_first():
    # gpt-oss is registered from 0.10.1 (registry.py 0.10.1:81): 0.6.4 refuses the name while reading the config,
    # before verify_with_parallel_config asks about pipeline stages
    assert not refuses_pipeline("GptOssForCausalLM", "0.6.4")
    run = run_kvplan("check", "openai/gpt-oss-20b", "-tp", "2", "-pp", "2", "--gpu", "H100", "--engine", "vllm==0.6.4")
    text = " ".join(run.stdout.split() + run.stderr.split())
    assert run.returncode == 1 and "Model architectures ['GptOssForCausalLM'] are not supported for now" in text
    assert "--engine vllm==0.10.2 or newer" in text


@pytest.mark.parametrize("engine, where", [("0.8.5", "config.py"), ("0.10.1", "config/__init__.py"),
                                           ("0.11.0", "config/model.py")])
def test_the_refusal_cites_each_releases_file(engine, where):
    refusal = pipeline_refusal(SimpleNamespace(architecture="Mamba2ForCausalLM"), engine)
    assert refusal.endswith(f"{MESSAGE}, {where} ModelConfig.verify_with_parallel_config)")


def test_checks_remedy_names_the_release_that_takes_the_stages():
    run = run_kvplan("check", "ai21labs/AI21-Jamba-1.5-Mini", "-tp", "2", "-pp", "2", "--gpu", "H100", "--engine",
                     "vllm==0.6.3")
    text = " ".join(run.stdout.split() + run.stderr.split())
    assert run.returncode == 1
    assert ("--pipeline-parallel-size 2: vLLM 0.6.3 refuses pipeline parallelism for JambaForCausalLM: its model "
            "class does not implement SupportsPP") in text
    assert "--engine vllm==0.6.5 or newer takes it; at vllm==0.6.3 only --pipeline-parallel-size 1 starts." in text


def _write(folder: Path, name: str, text: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(text))


def test_the_scan_follows_bases_across_sibling_modules(tmp_path):
    import importlib.util

    path = Path(__file__).parent.parent / "benchmarks" / "vllm_reference" / "supports_pp_scan.py"
    spec = importlib.util.spec_from_file_location("supports_pp_scan", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    models = tmp_path / "1.0.0" / "vllm" / "model_executor" / "models"
    models.mkdir(parents=True)
    _write(models, "registry", """
        _TEXT_GENERATION_MODELS = {"LlamaForCausalLM": ("llama", "LlamaForCausalLM"),
                                   "Phi3ForCausalLM": ("phi3", "Phi3ForCausalLM"),
                                   "PlainForCausalLM": ("plain", "PlainForCausalLM"),
                                   "FlagForCausalLM": ("plain", "Flagged")}
        _PREVIOUSLY_SUPPORTED_MODELS = {"GoneForCausalLM": ("gone", "Gone")}
        """)
    _write(models, "llama", """
        from torch import nn
        from .interfaces import SupportsLoRA, SupportsPP
        class LlamaForCausalLM(nn.Module, SupportsLoRA, SupportsPP):
            def forward(self, input_ids, positions, intermediate_tensors=None):
                pass
        """)
    _write(models, "phi3", """
        from vllm.model_executor.models.llama import LlamaForCausalLM
        class Phi3ForCausalLM(LlamaForCausalLM):
            pass
        """)
    _write(models, "plain", """
        from torch import nn
        class PlainForCausalLM(nn.Module):
            def forward(self, input_ids, positions):
                pass
        class Flagged(PlainForCausalLM):
            supports_pp = True
        """)
    # Phi3 inherits SupportsPP from llama.py; Flagged sets supports_pp but its forward takes no intermediate_tensors
    assert module.scan(tmp_path, "1.0.0") == {"LlamaForCausalLM": "yes", "Phi3ForCausalLM": "yes",
                                              "PlainForCausalLM": "no", "FlagForCausalLM": "no-forward"}
