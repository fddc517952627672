"""perfsink for Python: workflow steps and points streamed to InfluxDB by the perfsink engine.

>>> from perfsink import InfluxDBPublisher          # doctest: +SKIP
>>> with InfluxDBPublisher() as pub:                # INFLUXDB_URL, INFLUXDB_DB (default k6)
...     with pub.step("checkout", "login"):
...         login()

See :class:`InfluxDBPublisher` and the README's "Python" section.
"""

from ._native import LibraryError, PerfsinkError
from .publisher import CloseReport, InfluxDBPublisher, Stats, Step

try:  # the installed distribution's, which setup.py takes from Cargo.toml
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("perfsink")
except PackageNotFoundError:  # a source checkout on sys.path
    __version__ = "0+unknown"

__all__ = [
    "CloseReport",
    "InfluxDBPublisher",
    "LibraryError",
    "PerfsinkError",
    "Stats",
    "Step",
    "__version__",
]
