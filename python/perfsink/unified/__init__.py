"""The unified YAML runner (APT's format, re-implemented): load a file, run its k6 tests, JMeter
tests and workflows. Independent of pytest; ``perfsink.pytest_plugin`` drives it."""
