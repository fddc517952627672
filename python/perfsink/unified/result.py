"""What one unified item (a k6 test, a JMeter test or a workflow) reports back to the plugin."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Dict


@dataclass
class RunResult:
    """The verdict and the runner's own counts for one item.

    ``requests``/``errors`` are what the runner itself counted (k6's summary ``http_reqs``, the
    JTL's rows, the workflow's executed steps), so they can be compared with what reached InfluxDB.
    """

    passed: bool  # the item's verdict
    requests: int = 0  # what the runner itself counted (k6 summary http_reqs, JTL rows, steps executed)
    errors: int = 0  # failed requests / samples / steps
    p95_ms: Optional[float] = None
    failures: List[str] = field(default_factory=list)  # human lines for the pytest report
    details: Dict[str, Any] = field(default_factory=dict)
