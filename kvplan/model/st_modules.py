"""A Sentence Transformers repo's modules.json: the list of modules ({"idx", "name", "path", "type"}) a
SentenceTransformer is built from. vLLM reads it beside config.json and, where it lists a Pooling module, serves the
model on its pooling runner whatever its architecture (engines/vllm_pooling.py). kvplan keeps only which Pooling
module types it lists (ModelSpec.st_pooling); the module's own config.json (its pooling mode) changes vLLM's pooler,
never its runner, so it is not read.

How vLLM reads the file (transformers_utils/config.py get_pooling_config, 0.11.0:711-762, 0.14.0:743-817,
0.32.0:949-1030, 0.34.0:1057-1138): JSON null is no file (`if modules_dict is None: return None`); otherwise it
iterates the top level and takes item["type"] of each item until a Pooling module (and a Normalize module) is
found, then the Pooling item's "path" (0.11.0:736-751, 0.34.0:1083-1106). So the top level must be a list of
objects each with a "type", and the Pooling item needs a "path": anything else stops vLLM with a KeyError or
TypeError at start-up, which kvplan says as one line naming the file. A list without a Pooling module (or []) is a
modules.json vLLM reads and then ignores for the runner (get_pooling_config returns None, 0.11.0:762,
0.34.0:1138)."""

from __future__ import annotations

from ..errors import KvplanError, json_kind

MODULES_FILE = "modules.json"
# The Pooling module's type names vLLM looks for in any release: sentence-transformers' "models.Pooling" (0.11.0:742
# to 0.29.0:858, compared with ==), and from 0.30.0 the set _ST_POOLING_MODULE_TYPES, which adds the newer module
# path (0.30.0:56-59, 0.32.0:55-58, 0.34.0:97-100); engines/vllm_pooling.py ST_POOLING_TYPES says which release
# reads which
POOLING_TYPES = ("sentence_transformers.models.Pooling",
                 "sentence_transformers.sentence_transformer.modules.pooling.Pooling")
_VALID = ('a JSON list of Sentence Transformers modules, each an object with a string "type" (and the Pooling module '
          'a "path"), as vLLM reads it')


def pooling_modules(contents, where: str) -> tuple:
    """The Pooling module types (POOLING_TYPES) `contents` (modules.json's JSON, read from `where`) lists, each once,
    in the file's order; () for none. A file vLLM cannot read is a KvplanError naming it and what is valid."""
    if contents is None:  # vLLM's `if modules_dict is None`: as if there were no file
        return ()
    if not isinstance(contents, list):
        raise KvplanError(f"{where} must be {_VALID}; got {json_kind(contents)}.")
    found = []
    for index, item in enumerate(contents):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            what = "has no string \"type\"" if isinstance(item, dict) else f"is {json_kind(item)}"
            raise KvplanError(f"{where} must be {_VALID}; its item {index} {what}.")
        kind = item["type"]
        if kind in POOLING_TYPES and "path" not in item:
            raise KvplanError(f"{where} must be {_VALID}; its Pooling module (item {index}) has no \"path\", where "
                              f"vLLM reads the module's config.json.")
        if kind in POOLING_TYPES and kind not in found:
            found.append(kind)
    return tuple(found)
