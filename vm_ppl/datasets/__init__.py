"""Real circular data sets shipped with vm_ppl (values copied with attribution from the
MIT-licensed pycircstat2 0.1.15; see the header of each CSV for the primary source).

>>> from vm_ppl import datasets
>>> datasets.load_wind().shape
(310,)
"""

from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["load_milwaukee", "load_wind"]


def _read(name: str) -> np.ndarray:
    """Numeric rows of a packaged CSV: '#' lines are the source notes, then a header."""
    lines = resources.files(__package__).joinpath(name).read_text().splitlines()
    rows = [ln for ln in lines if ln and not ln.startswith("#")][1:]
    return np.array([[float(v) for v in ln.split(",")] for ln in rows])


def load_wind() -> np.ndarray:
    """Col de la Roa wind directions: 310 angles in radians, in [0, 2 pi).

    Agostinelli (2007), via Pewsey, Neuhauser & Ruxton (2013), ch. 2.2.
    """
    return _read("wind_col_de_la_roa.csv")[:, 0]


def load_milwaukee() -> dict[str, np.ndarray]:
    """Milwaukee wind direction vs ozone (Johnson & Wehrly 1977, Table 1; Fisher B.18).

    Returns ``{"direction": radians in [0, 2 pi), "ozone": ozone level}`` (19 rows),
    for circular-linear regression of direction on ozone.
    """
    data = _read("milwaukee_wind_ozone.csv")
    return {"direction": np.deg2rad(data[:, 0]), "ozone": data[:, 1]}
