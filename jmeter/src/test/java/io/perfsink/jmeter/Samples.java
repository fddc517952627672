package io.perfsink.jmeter;

import org.apache.jmeter.assertions.AssertionResult;
import org.apache.jmeter.samplers.SampleResult;

/** SampleResults for tests, built the way JMeter's samplers fill them. */
final class Samples {
    private Samples() {}

    static SampleResult sample(String label, long startMs, long elapsedMs, boolean ok, String code, String message) {
        SampleResult r = new SampleResult(startMs, elapsedMs);
        r.setSampleLabel(label);
        r.setSuccessful(ok);
        r.setResponseCode(code);
        r.setResponseMessage(message);
        r.setThreadName("users 1-1");
        r.setLatency(elapsedMs / 2);
        r.setConnectTime(1);
        r.setBytes(100L);
        r.setSentBytes(50L);
        r.setGroupThreads(2);
        r.setAllThreads(3);
        return r;
    }

    static SampleResult failedAssertion(SampleResult r, String message) {
        AssertionResult a = new AssertionResult("assertion");
        a.setFailure(true);
        a.setFailureMessage(message);
        r.addAssertionResult(a);
        r.setSuccessful(false);
        return r;
    }
}
