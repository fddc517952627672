// The k6 part of `make demo`: a few seconds of requests against the local target
// (examples/k6_target.rs), paced, with a check, a group and a custom trend, so every kind of k6
// sample flows through perfsink. TARGET is the target's base URL.
import http from 'k6/http';
import { check, group, sleep } from 'k6';
import { Trend } from 'k6/metrics';

const think = new Trend('demo_think_time', true);

export const options = {
  vus: 4,
  duration: __ENV.DURATION || '5s',
  tags: { testid: __ENV.TESTID || 'demo' },
};

export default function () {
  group('home page', () => {
    const res = http.get(`${__ENV.TARGET}/`);
    check(res, { 'status is 200': (r) => r.status === 200 });
  });
  const t = Math.random() * 10;
  think.add(t);
  // A paced test, as real ones are: at full loopback speed k6's own influxdb output (the
  // relay path) sends bodies over InfluxDB's 25 MB limit and k6 drops them.
  sleep(t / 1000);
}
