package io.perfsink.jmeter;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.jmeter.samplers.SampleResult;
import org.apache.jmeter.visualizers.backend.BackendListenerContext;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * What handleSampleResults costs JMeter's listener thread per sample (packing + one native submit
 * per batch), and packing alone. A measurement, not a check: excluded from `mvn verify`; run with
 * {@code mvn test -Dgroups=bench -Dtest=HandleSampleResultsCostTest}.
 */
@Tag("bench")
class HandleSampleResultsCostTest {
    private static final int BATCH = 1000;
    private static final int BATCHES = 2000;
    /** rawSamples values measured: -Dbench.raw=false,true (raw at this rate overloads one influxd). */
    private static final String[] RAW = System.getProperty("bench.raw", "false").split(",");

    @Test
    void costPerSample() throws Exception {
        List<SampleResult> batch = new ArrayList<>();
        long now = System.currentTimeMillis();
        // As in JMeter: a sampler's label and a thread's name are the same String every time.
        String[] labels = new String[8];
        String[] threads = new String[16];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = "GET /item/" + i;
        }
        for (int i = 0; i < threads.length; i++) {
            threads[i] = "users 1-" + (i + 1);
        }
        for (int i = 0; i < BATCH; i++) {
            SampleResult r = Samples.sample(labels[i % labels.length], now, 5 + i % 50, i % 10 != 0,
                    new String(new char[] {'2', '0', '0'}), "OK");
            r.setThreadName(threads[i % threads.length]);
            batch.add(r);
        }
        SamplePacker packer = new SamplePacker(16, 256);
        for (int round = 0; round < 2; round++) { // the first round warms the JIT up
            long t = System.nanoTime();
            for (int b = 0; b < BATCHES; b++) {
                packer.pack(batch);
            }
            report("pack only", t);
        }
        try (Influx influx = Influx.start()) {
            influx.query("", "CREATE DATABASE bench");
            Map<String, String> p = new HashMap<>();
            p.put("influxdbUrl", influx.url() + "/write?db=bench");
            p.put("application", "bench");
            for (String raw : RAW) {
                p.put("rawSamples", raw);
                PerfsinkBackendListenerClient client = new PerfsinkBackendListenerClient();
                BackendListenerContext ctx = new BackendListenerContext(p);
                client.setupTest(ctx);
                for (int round = 0; round < 2; round++) {
                    long t = System.nanoTime();
                    for (int b = 0; b < BATCHES; b++) {
                        client.handleSampleResults(batch, ctx);
                    }
                    report("handleSampleResults, rawSamples=" + raw, t);
                }
                client.teardownTest(ctx);
                System.out.println("  " + client.lastReport);
                assertEquals(2L * BATCH * BATCHES, client.lastReport.aggregated, "every sample counted");
            }
        }
    }

    private static void report(String what, long startNs) {
        double ns = (System.nanoTime() - startNs) / (double) (BATCH * BATCHES);
        System.out.printf("%s: %.0f ns/sample (%d batches of %d)%n", what, ns, BATCHES, BATCH);
    }
}
