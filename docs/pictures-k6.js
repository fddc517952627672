// The k6 run behind the README's k6 pictures (scripts/readme-pictures.py runs it through
// `perfsink k6` with PERFSINK_MODE=both against the demo target, python -m perfsink.target):
// named requests, a slow one, a missing item that fails (404), checks, and VUs ramping up and
// down, so every panel of the k6 dashboards has something to show. TARGET is the target's URL.
import http from 'k6/http';
import { check, sleep } from 'k6';

export const options = {
  stages: [
    { duration: '8s', target: 6 },
    { duration: '12s', target: 6 },
    { duration: '5s', target: 0 },
  ],
};

export default function () {
  const base = __ENV.TARGET;
  const home = http.get(`${base}/`, { tags: { name: 'home' } });
  const items = http.get(`${base}/api/items`, { tags: { name: 'items' } });
  const item = http.get(`${base}/api/items/2`, { tags: { name: 'item' } });
  check(home, { 'status is 200': (r) => r.status === 200 });
  check(items, { 'status is 200': (r) => r.status === 200 });
  check(item, { 'status is 200': (r) => r.status === 200 });
  // The target answers /delay/<ms> after that many milliseconds: a slow search.
  const search = http.get(`${base}/delay/${5 + Math.floor(Math.random() * 30)}`, { tags: { name: 'search' } });
  check(search, { 'search under 25 ms': (r) => r.timings.duration < 25 });
  if (Math.random() < 0.2) {
    // An item that does not exist: 404, counted in http_req_failed.
    const missing = http.get(`${base}/api/items/999999`, { tags: { name: 'missing item' } });
    check(missing, { 'status is 200': (r) => r.status === 200 });
  }
  sleep(0.1 + Math.random() * 0.1);
}
