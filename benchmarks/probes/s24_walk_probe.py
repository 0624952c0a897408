"""The warpgroup MLA kernel's copy pattern without its arithmetic: one CTA per SM, a ring of 2 or 3 stages of one
64-token latent page each (73,728 bytes bf16: the kvp_walk_bulk probe's K and V buffers each hold half a page), one
bulk copy per half page, a spin in place of a step's arithmetic. `python3 benchmarks/probes/s24_walk_probe.py` (GPU)."""
import sys

sys.path.insert(0, ".")
import torch  # noqa: E402

from kvplan.kernels.probes import paged_walk_bandwidth, read_bandwidth  # noqa: E402

sms = torch.cuda.get_device_properties(0).multi_processor_count
lin = read_bandwidth().bytes_per_s
print(f"linear read {lin / 1e12:.3f} TB/s")
for page, stages, per_sm in ((36864, 2, 1), (18432, 2, 1), (18432, 3, 1), (18432, 2, 2)):
    for spin in (0, 1000, 2000, 4000):
        bw = paged_walk_bandwidth(page, walkers=per_sm * sms, stages=stages, spin=spin, warps=4).bytes_per_s
        print(f"stage {2 * page:6d} B x {stages} stages, {per_sm} CTA/SM, spin {spin:5d}: {bw / 1e12:.3f} TB/s "
              f"({100 * bw / lin:.1f}% of linear)", flush=True)
