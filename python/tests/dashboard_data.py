"""What the dashboard tests (queries and pictures) write through ``perfsink k6``: one k6 script
with named requests, a failing one and checks, and the CLI that runs it."""

from __future__ import annotations


K6_SCRIPT = """
import http from 'k6/http';
import { check, sleep } from 'k6';
export const options = { vus: 2, duration: '3s' };
export default function () {
  const ok = http.get(`${__ENV.TARGET_URL}/api/items`, { tags: { name: 'items' } });
  check(ok, { 'status 200': (r) => r.status === 200 });
  const missing = http.get(`${__ENV.TARGET_URL}/api/missing`, { tags: { name: 'missing' } });
  check(missing, { 'status 200': (r) => r.status === 200 });
  sleep(0.1);
}
"""


def perfsink_bin() -> str:
    from perfsink.tools import perfsink_cli

    return str(perfsink_cli())
