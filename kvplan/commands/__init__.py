"""The commands: inputs -> result objects (no printing). Each result has `to_dict()` (json/yaml), `rows()` (csv)
and names its table view in kvplan/render/; kvplan/render.emit turns any of them into text."""
