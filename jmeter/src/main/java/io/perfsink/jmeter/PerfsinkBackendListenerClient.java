package io.perfsink.jmeter;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.jmeter.config.Arguments;
import org.apache.jmeter.samplers.SampleResult;
import org.apache.jmeter.threads.JMeterContextService;
import org.apache.jmeter.util.JMeterUtils;
import org.apache.jmeter.visualizers.backend.BackendListenerClient;
import org.apache.jmeter.visualizers.backend.BackendListenerContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * JMeter Backend Listener that hands every sample to perfsink's engine in-process: a drop-in for
 * JMeter's InfluxdbBackendListenerClient (same parameters, same InfluxDB schema) with per-interval
 * percentiles over all samples, retries and a disk spool. This class only adapts types: it packs
 * each batch JMeter's worker thread gives it into one native submit, which never waits on the
 * network; the engine resolves parameters, aggregates, renders and delivers.
 *
 * <p>JMeter's GUI instantiates every listener class it lists, so the constructor and class
 * loading do nothing native; the library is loaded in {@link #setupTest}.
 */
public class PerfsinkBackendListenerClient implements BackendListenerClient {
    private static final Logger LOG = LoggerFactory.getLogger(PerfsinkBackendListenerClient.class);
    /** JMeter's property for the built-in listener's interval (seconds), passed on to the engine. */
    static final String SEND_INTERVAL_PROPERTY = "backend_influxdb.send_interval";
    /** At most one warning about failed submits per this many ms (the engine counts each one). */
    private static final long WARN_EVERY_MS = 10_000;

    // Set on the test thread (setupTest/teardownTest), read on JMeter's listener worker thread.
    private volatile NativeListener engine;
    private volatile SamplePacker packer;
    private long lastWarnMs;
    private long submitFailures;
    /** The engine's report of the last teardownTest (for tests). */
    CloseReport lastReport;

    @Override
    public Arguments getDefaultParameters() {
        return DefaultParameters.arguments();
    }

    @Override
    public void setupTest(BackendListenerContext context) {
        String library = PerfsinkNative.bind();
        LogBridge.install();
        Map<String, String> params = parameters(context, sendIntervalProperty());
        packer = new SamplePacker(1024, 64 * 1024);
        engine = NativeListener.open(params);
        submitFailures = 0;
        LOG.info("perfsink: library {} ({}); {}", library,
                PerfsinkNative.perfsink_version().getString(0, "UTF-8"), engine.describe());
    }

    /** Every parameter of the element, by name, plus JMeter's interval property when it is set. */
    static Map<String, String> parameters(BackendListenerContext context, String sendInterval) {
        Map<String, String> params = new LinkedHashMap<>();
        for (Iterator<String> it = context.getParameterNamesIterator(); it.hasNext();) {
            String name = it.next();
            params.put(name, context.getParameter(name, ""));
        }
        if (sendInterval != null && !params.containsKey(SEND_INTERVAL_PROPERTY)) {
            params.put(SEND_INTERVAL_PROPERTY, sendInterval);
        }
        return params;
    }

    private static String sendIntervalProperty() {
        // Null outside a JMeter run (unit tests): JMeterUtils has no properties loaded then.
        return JMeterUtils.getJMeterProperties() == null ? null : JMeterUtils.getProperty(SEND_INTERVAL_PROPERTY);
    }

    @Override
    public void handleSampleResults(List<SampleResult> sampleResults, BackendListenerContext context) {
        NativeListener e = engine;
        if (e == null) {
            return; // setupTest failed; JMeter already reported it
        }
        JMeterContextService.ThreadCounts tc = JMeterContextService.getThreadCounts();
        int rc = e.threads(tc.startedThreads, tc.finishedThreads);
        if (rc != PerfsinkNative.PERFSINK_OK) {
            warn(rc, e);
        }
        packer.pack(sampleResults);
        rc = e.submit(packer);
        if (rc != PerfsinkNative.PERFSINK_OK) {
            warn(rc, e);
        }
    }

    private void warn(int rc, NativeListener e) {
        submitFailures++;
        long now = System.currentTimeMillis();
        if (now - lastWarnMs >= WARN_EVERY_MS) {
            lastWarnMs = now;
            LOG.warn("perfsink: a call into the engine failed ({} so far; counted in its report): {}", submitFailures,
                    e.lastError(rc));
        }
    }

    @Override
    public void teardownTest(BackendListenerContext context) {
        NativeListener e = engine;
        if (e == null) {
            return;
        }
        engine = null;
        packer = null;
        try {
            CloseReport report = e.close();
            lastReport = report;
            if (report.failed() || !report.delivered) {
                LOG.warn("{}", report);
            } else {
                LOG.info("{}", report);
            }
        } finally {
            e.free();
        }
    }
}
