"""Map pictures for ``photokit measure --maps DIR``: each map as a PNG with a colour bar
in real units, skin outside the analysed region greyed out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path

#: name -> (title, unit, colormap)
MAPS = {
    "a_star": ("CIELAB a* (redness)", "a*", "magma"),
    "erythema_index": ("Erythema index 100 log10(R/G)", "EI", "magma"),
    "melanin_index": ("Melanin index 100 log10(1/R)", "MI", "copper_r"),
    "haemoglobin": ("Haemoglobin (shading-free, EI units)", "EI", "magma"),
    "melanin": ("Melanin (shading-free, MI units)", "MI", "copper_r"),
}


def measurement_maps(m) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The colour maps of a `Measurement` at its colour working resolution, and the mask."""
    from ..colour.chromophores import chromophore_maps
    from ..metrics.pigment import melanin_map
    from ..metrics.redness import a_star_map, colour_level, erythema_map

    an = m.analysis
    lv = colour_level(an)
    mel, hb = chromophore_maps(lv.linear)
    return {"a_star": a_star_map(an), "erythema_index": erythema_map(an),
            "melanin_index": melanin_map(an), "haemoglobin": hb, "melanin": mel}, lv.mask


def save_measurement_maps(m, outdir) -> list[Path]:
    """Write every map of `MAPS` and the analysed-skin mask as PNG files in `outdir`."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    maps, mask = measurement_maps(m)
    stem = Path(m.image).stem
    written = []
    for key, values in maps.items():
        title, unit, cmap = MAPS[key]
        inside = values[mask]
        lo, hi = (np.percentile(inside, [2, 98]) if inside.size else (0.0, 1.0))
        shown = np.where(mask, values, np.nan)
        h, w = values.shape
        fig = Figure(figsize=(7, 7 * h / w + 1.2), dpi=120)
        ax = fig.add_axes((0.02, 0.16, 0.96, 0.76))
        ax.set_facecolor("#d9d9d9")
        im = ax.imshow(shown, cmap=cmap, vmin=lo, vmax=hi, interpolation="antialiased")
        ax.set_axis_off()
        ax.set_title(f"{title}\n{stem}", fontsize=9)
        cax = fig.add_axes((0.15, 0.09, 0.70, 0.025))
        fig.colorbar(im, cax=cax, orientation="horizontal").set_label(unit, fontsize=8)
        target = outdir / f"{stem}_{key}.png"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format="png")
        written.append(target)
    from ..io.atomic import write_image

    written.append(write_image(outdir / f"{stem}_mask.png", (mask * 255).astype(np.uint8)))
    return written
