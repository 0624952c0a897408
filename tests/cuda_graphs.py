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


def step_graph_replay(plan, args, pool, before, like):
    """plan.run(*args, out=...) of a decode-step kernel that updates `pool` in place, from `before` each time: run
    once on a side stream (warm-up), captured in a CUDA graph, and replayed once -> the replay's output (shaped as
    `like`)."""
    import torch

    out = torch.empty_like(like)
    pool.copy_(before)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        plan.run(*args, out=out)
    torch.cuda.synchronize()
    pool.copy_(before)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        plan.run(*args, out=out)
    pool.copy_(before)
    graph.replay()
    torch.cuda.synchronize()
    return out
