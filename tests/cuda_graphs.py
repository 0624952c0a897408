"""A plan's run captured in a CUDA graph (the GPU kernel tests: what a graph replays must equal the eager run)."""


def graph_replay(plan, case):
    """plan.run(*case) captured in a CUDA graph and replayed once into a NaN-poisoned output."""
    import torch

    out = torch.full_like(case[0], float("nan"))
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        plan.run(*case, out=out)
    g.replay()
    torch.cuda.synchronize()
    return out
