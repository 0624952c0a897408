"""The one way kvplan's process-wide memo tables take a new answer: bounded, oldest out first, and safe where threads
share a table (a web server calling kvplan.api from several threads). Two threads may both find the table full
and pick the same oldest key: the second's `del` raised KeyError mid-estimate; one thread may also change the
table between another's iter() and next() (RuntimeError). Either only means the entry is gone already."""


def remember(table: dict, cap: int, key, value) -> None:
    """table[key] = value, dropping the oldest entries while the table holds `cap` or more."""
    while len(table) >= cap:
        try:
            table.pop(next(iter(table)), None)
        except (RuntimeError, StopIteration):  # changed or emptied by another thread as we looked: nothing to drop
            break
    table[key] = value


def per_object(table: dict, cap: int, obj, compute):
    """compute(obj), worked out once per `obj`: keyed by identity, `obj` kept alive with its answer so that its id is
    not reused while the entry is held (for a frozen object whose equality is dearer than the answer)."""
    held = table.get(id(obj))
    if held is not None and held[0] is obj:
        return held[1]
    answer = compute(obj)
    remember(table, cap, id(obj), (obj, answer))
    return answer
