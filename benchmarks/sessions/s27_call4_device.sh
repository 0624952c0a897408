# session 27 call 4: the e4m3 MLA kernel's last step hands over the row sums' per-warp parts and M as its rescale
# factors are handed over (no scores-only barrier before the stores; the values sum the parts): the checks of call 3
bash benchmarks/sessions/s27_call3_device.sh
