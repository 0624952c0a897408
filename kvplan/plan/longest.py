"""The longest context below the asked one that fits as is: the length remedy of plan.fitting_remedies.

A bisection over lengths assumes what fits only shrinks as the context grows. Block rounding breaks that: a window
keeps, once prefilled, the blocks its newest tokens touch, fewest where the length is a multiple of its block and one
more just past it. DeepSeek-V4-Flash (windows paged in blocks of 64, compressor states in 4 and 8, compressed and
indexer caches in the engine's 256) keeps 151 blocks a request at 33,024 tokens, 155 at 33,022 and 156 at 33,025; a
bisection named 30,736 tokens for 200 requests on H100s at tp 4, where 31,488 hold them.

Every other term only grows with the length, in steps just past a multiple of some block (the blocks of layers that
keep every token, the admission gate, the prefill peak, the engine's block tables in the budget at that length), so
with `step` the lcm of the layers' blocks and `cycle` that of what their windows keep (page_cycles) the search is
exact:
1. at multiples of `step` every window keeps its fewest blocks, so what fits there only shrinks: bisect them (s);
2. a length that fits leaves its multiple of `step` below fitting too, so the longest is less than `step` past s;
3. past s a term grows only just past a multiple of some block, and windows only shrink in between: the longest is a
   multiple of a block or the stretch's last length (context - 1 at most);
4. those lengths `cycle` apart keep alike, so along each residue what fits only shrinks: each is bisected once its
   shortest fits (mostly nothing past s fits: one plan a residue).
DeepSeek-V4: 17 residues (multiples of 4 modulo 64, and the stretch's last), one to three plans each. One block size
(every other model): one length past s at most. No paged layer: a bisection over every length. Where the budget
shrinks token by token instead (V0's profile run over max_model_len tokens, a drafter's token history), 1 and 2
still hold: the length named fits and the longest is less than `step` past it."""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, TypeVar

from ..model.kinds import PagedKV

Answer = TypeVar("Answer")


def page_cycles(layers, block_size: int) -> tuple:
    """(blocks, cycles): the distinct blocks the paged layers page in where the engine's block is `block_size`
    (PagedKV.block), and after how many tokens what each window keeps repeats (PagedKV.kept_cycle)."""
    paged = [layer for layer in layers if isinstance(layer, PagedKV)]
    cycles = {layer.kept_cycle(block_size) for layer in paged} - {None}
    return tuple(sorted({layer.block(block_size) for layer in paged})), tuple(sorted(cycles))


def longest_fitting(context: int, fits: Callable[[int], Optional[Answer]], blocks: tuple = (),
                    cycles: tuple = ()) -> Optional[Answer]:
    """fits(length) at the longest length below `context` where it answers (None where it does not), searched as
    the module says over the layers' `blocks` and `cycles` (page_cycles); None where no length does."""
    blocks = tuple(b for b in blocks if 0 < b < context)  # a block as long as the sequence rounds nothing below it
    step = math.lcm(*blocks) if blocks else 1
    best = _longest(range(step, context, step), fits) or (0, None)
    start, end = best[0], min(best[0] + step - 1, context - 1)
    ends = sorted(length for length in {end, *(m for b in blocks for m in range(end - end % b, start, -b))}
                  if length > start)
    cycle = math.lcm(*cycles) if cycles else 1
    residues: dict = {}
    for length in ends:
        residues.setdefault(length % cycle, []).append(length)
    for lengths in sorted(residues.values(), key=lambda same: same[-1], reverse=True):
        first = fits(lengths[0]) if lengths[-1] > best[0] else None  # mostly none fits: one plan a residue
        if first:
            best = max(best, _longest(lengths[1:], fits, (lengths[0], first)), key=lambda hit: hit[0])
    return best[1]


def _longest(lengths: Sequence[int], fits: Callable[[int], Optional[Answer]],
             found: Optional[tuple] = None) -> Optional[tuple]:
    """(length, answer) for the last of ascending `lengths` where fits() answers, bisected (what fits only shrinks
    along them); `found` where none does (a length known to fit below the first, or None)."""
    low, high = -1, len(lengths) - 1  # lengths[:low + 1] fit, lengths[high + 1:] do not
    while low < high:
        mid = (low + high + 1) // 2
        answer = fits(lengths[mid])
        if answer:
            low, found = mid, (lengths[mid], answer)
        else:
            high = mid - 1
    return found
