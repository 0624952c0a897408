"""What vLLM's V1 sampler holds over the profile run's dummy requests (v1/worker/gpu_model_runner.py
_dummy_sampler_run: bf16 logits from the LM head, temperature 0.5, top-p 0.9, top-k vocab - 1), counted as
benchmarks/vllm_reference/vision_profile_peak.py counts: the logits the run makes and every operator output's
storage until freed. vLLM 0.32.0's V1 `Sampler` with its PyTorch top-k / top-p (`forward_native`,
apply_top_k_top_p_pytorch: the same function as 0.17-0.20's for fewer than 8 requests, and their only one on a GPU
without Triton), on the CPU; kvplan's vllm_profile.sampler_pass_bytes holds it per logit.

    /work/vllm-venv/bin/python benchmarks/vllm_reference/sampler_profile_peak.py --out tests/data/vllm_sampler_profile_peak.json
"""

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from vision_profile_peak import LiveBytes  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", default="4,16")
    ap.add_argument("--vocab", type=int, default=201088)
    ap.add_argument("--out")
    args = ap.parse_args()
    import vllm
    from vllm.v1.sample.logits_processor import LogitsProcessors
    from vllm.v1.sample.metadata import SamplingMetadata
    from vllm.v1.sample.sampler import Sampler

    sampler = Sampler()
    sampler.topk_topp_sampler.forward = sampler.topk_topp_sampler.forward_native
    cases = []
    for n in (int(v) for v in args.requests.split(",")):
        full = lambda v: torch.full((n,), v)  # noqa: E731
        meta = SamplingMetadata(temperature=full(0.5), all_greedy=False, all_random=False, top_p=full(0.9),
                                top_k=full(args.vocab - 1), generators={}, max_num_logprobs=None,
                                logprob_token_ids=None, no_penalties=True, prompt_token_ids=None,
                                frequency_penalties=full(0.1), presence_penalties=full(0.1),
                                repetition_penalties=full(0.1), output_token_ids=[[] for _ in range(n)],
                                spec_token_ids=[[] for _ in range(n)], allowed_token_ids_mask=None,
                                bad_words_token_ids={}, logitsprocs=LogitsProcessors())
        logits = torch.randn(n, args.vocab, dtype=torch.bfloat16)
        with torch.inference_mode(), LiveBytes([], [logits]) as live:
            out = sampler(logits=logits, sampling_metadata=meta)
            del out
        cases.append({"requests": n, "vocab": args.vocab, "peak_bytes": live.peak,
                      "bytes_per_logit": live.peak / (n * args.vocab)})
        print(json.dumps(cases[-1]), flush=True)
    if args.out:
        result = {"vllm": vllm.__version__, "torch": torch.__version__, "logits_dtype": "bfloat16",
                  "path": "v1/sample/sampler.py Sampler, topk_topp_sampler forward_native, "
                          "apply_top_k_top_p_pytorch (sort, in-place scatter_)",
                  "script": "benchmarks/vllm_reference/sampler_profile_peak.py", "cases": cases}
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
