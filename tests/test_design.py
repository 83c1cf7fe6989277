"""docs/DESIGN.md describes the tree as it is: every package and public module of photokit
is named on that page, and its layer table lists the layers of the import contract."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "photokit"
DESIGN = (ROOT / "docs" / "DESIGN.md").read_text()


def test_every_package_and_public_module_is_on_the_design_page():
    missing = []
    for d in sorted(p for p in PKG.rglob("*") if p.is_dir() and (p / "__init__.py").exists()):
        rel = d.relative_to(PKG).as_posix()
        private = any(part.startswith("_") for part in rel.split("/"))
        if rel != "." and not private and f"`{rel}/`" not in DESIGN and f"`{d.name}/`" not in DESIGN:
            missing.append(f"{rel}/")
    for f in sorted(PKG.rglob("*.py")):
        rel = f.relative_to(PKG)
        if f.name == "__init__.py" or any(p.startswith("_") for p in rel.parts) or f.parent == PKG:
            continue
        if f"`{f.name}`" not in DESIGN and f"`{rel.as_posix()}`" not in DESIGN:
            missing.append(rel.as_posix())
    assert not missing, f"docs/DESIGN.md does not mention: {', '.join(missing)}"


def test_layer_table_lists_the_import_contract():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    table = DESIGN[DESIGN.index("## Layers"):DESIGN.index("## Where things go")]
    for layer in layers:
        for name in re.split(r"\s*\|\s*", layer):
            short = name.removeprefix("photokit.")
            assert f"`{short}/`" in table or f"`{short}.py`" in table, f"{name} missing from the layer table"
