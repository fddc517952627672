package io.perfsink.jmeter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.jmeter.samplers.SampleResult;
import org.apache.jmeter.visualizers.backend.BackendListenerContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The listener as JMeter drives it (setupTest, handleSampleResults from one thread, teardownTest),
 * with the real libperfsink bundled on the class path, against a real influxd of the test's own.
 */
class ListenerAgainstInfluxTest {
    private static Influx influx;

    @BeforeAll
    static void startInflux() throws Exception {
        influx = Influx.start();
    }

    @AfterAll
    static void stopInflux() throws Exception {
        if (influx != null) {
            influx.close();
        }
    }

    private static Map<String, String> params(String db, String application) {
        Map<String, String> p = new HashMap<>();
        for (String[] d : DefaultParameters.BUILT_IN) {
            p.put(d[0], d[1]);
        }
        p.put("influxdbUrl", influx.url() + "/write?db=" + db);
        p.put("application", application);
        p.put("percentiles", "99;95;90;50");
        p.put("testTitle", "java test");
        return p;
    }

    private long scalar(String db, String q) throws Exception {
        List<String[]> rows = influx.query(db, q);
        assertEquals(1, rows.size(), q + " -> " + rows.size() + " rows");
        String[] r = rows.get(0);
        return Math.round(Double.parseDouble(r[r.length - 1]));
    }

    @Test
    void samplesArriveAsTheBuiltInListenersSchema() throws Exception {
        String db = "jmeter_schema";
        influx.query("", "CREATE DATABASE " + db);
        String odd = "caf\u00e9 \"q\" back\\slash, a=b";
        long t0 = System.currentTimeMillis() / 5000 * 5000 - 60_000; // a whole past interval

        List<SampleResult> batch1 = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            batch1.add(Samples.sample("GET /a", t0 + i, 10 + i, true, "200", "OK"));
        }
        for (int i = 0; i < 10; i++) {
            SampleResult b = Samples.sample("GET /b", t0 + i, 5, true, "200", "OK");
            batch1.add(i < 3 ? Samples.failedAssertion(b, "body is not ok") : b);
        }
        List<SampleResult> batch2 = new ArrayList<>();
        batch2.add(Samples.sample(odd, t0 + 100, 7, true, "200", "OK"));
        batch2.add(Samples.sample("GET /c", t0 + 101, 9, false, "", null)); // empty code, no message
        SampleResult page = Samples.sample("page", t0 + 200, 30, true, "200", "OK");
        page.addRawSubResult(Samples.sample("page-0", t0 + 200, 10, true, "302", "Found"));
        page.addRawSubResult(Samples.sample("page-1", t0 + 210, 10, true, "200", "OK"));
        batch2.add(page);

        PerfsinkBackendListenerClient client = new PerfsinkBackendListenerClient();
        BackendListenerContext ctx = new BackendListenerContext(params(db, "java app"));
        client.setupTest(ctx);
        client.handleSampleResults(batch1, ctx);
        client.handleSampleResults(batch2, ctx);
        client.teardownTest(ctx);
        CloseReport report = client.lastReport;
        client.teardownTest(ctx); // a second teardown is a no-op
        assertTrue(report.delivered && !report.failed(), report.toString());
        assertEquals(43, report.aggregated, "samples counted by the engine (not the sub-results): " + report);
        assertEquals(report.accepted, report.written, report.toString());

        String where = " FROM jmeter WHERE application='java app' AND ";
        assertEquals(30, scalar(db, "SELECT sum(\"count\")" + where + "\"transaction\"='GET /a' AND statut='all'"));
        assertEquals(7, scalar(db, "SELECT sum(\"count\")" + where + "\"transaction\"='GET /b' AND statut='ok'"));
        assertEquals(3, scalar(db, "SELECT sum(\"count\")" + where + "\"transaction\"='GET /b' AND statut='ko'"));
        assertEquals(1, scalar(db, "SELECT sum(\"count\")" + where + "\"transaction\"='" + odd.replace("\\", "\\\\")
                .replace("'", "\\'") + "' AND statut='all'"));
        assertEquals(1, scalar(db, "SELECT sum(\"count\")" + where + "\"transaction\"='GET /c' AND statut='ko'"));
        // The page and its two sub-results are three hits, one sample.
        assertEquals(1, scalar(db, "SELECT sum(\"count\")" + where + "\"transaction\"='page' AND statut='all'"));
        assertEquals(3, scalar(db, "SELECT sum(hit)" + where + "\"transaction\"='page' AND statut='all'"));
        long total = 30 + 10 + 3;
        assertEquals(total, scalar(db, "SELECT sum(\"count\")" + where + "\"transaction\"='all' AND statut='all'"));
        assertEquals(4, scalar(db, "SELECT sum(countError)" + where + "\"transaction\"='all'"));
        // Error lines: the three assertion failures and the failed GET /c.
        assertEquals(4, scalar(db, "SELECT sum(\"count\")" + where + "\"responseCode\" != ''"));
        assertEquals(2, scalar(db, "SELECT count(\"text\") FROM events WHERE application='java app'"));
        // Thread lines: the samples' allThreads (3) is their maxAT.
        assertEquals(3, scalar(db, "SELECT max(maxAT)" + where + "\"transaction\"='internal'"));
    }

    @Test
    void rawSamplesWriteOnePointPerSampleAndSubResult() throws Exception {
        String db = "jmeter_raw";
        influx.query("", "CREATE DATABASE " + db);
        Map<String, String> p = params(db, "raw app");
        p.put("rawSamples", "true");
        long t0 = System.currentTimeMillis() - 30_000;
        List<SampleResult> batch = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            batch.add(Samples.sample("GET /r", t0 + i * 7, 3, i % 5 != 0, "200", "OK"));
        }
        SampleResult page = Samples.sample("page", t0 + 500, 30, true, "200", "OK");
        page.addRawSubResult(Samples.sample("page-0", t0 + 500, 10, true, "200", "OK"));
        batch.add(page);

        PerfsinkBackendListenerClient client = new PerfsinkBackendListenerClient();
        BackendListenerContext ctx = new BackendListenerContext(p);
        client.setupTest(ctx);
        client.handleSampleResults(batch, ctx);
        client.teardownTest(ctx);

        assertEquals(50, scalar(db, "SELECT count(elapsed) FROM jmeter_raw WHERE \"transaction\"='GET /r'"));
        assertEquals(1, scalar(db, "SELECT count(elapsed) FROM jmeter_raw WHERE \"transaction\"='page-0'"));
        assertEquals(50, scalar(db, "SELECT sum(\"count\") FROM jmeter WHERE \"transaction\"='GET /r' AND statut='all'"));
    }

    @Test
    void anUnreachableInfluxdbIsReportedInTheLogAndTheCloseReport() {
        Map<String, String> p = params("x", "nowhere");
        p.put("influxdbUrl", "http://127.0.0.1:1/write?db=x"); // nothing listens on port 1
        p.put("PERFSINK_CLOSE_TIMEOUT_MS", "300");
        p.put("PERFSINK_RETRY_INITIAL_MS", "20");
        PerfsinkBackendListenerClient client = new PerfsinkBackendListenerClient();
        BackendListenerContext ctx = new BackendListenerContext(p);
        long routedBefore = LogBridge.ROUTED.get();
        client.setupTest(ctx);
        client.handleSampleResults(Arrays.asList(Samples.sample("x", System.currentTimeMillis(), 1, true, "200", "OK")),
                ctx);
        client.teardownTest(ctx);
        CloseReport r = client.lastReport;
        assertTrue(!r.delivered && !r.failed() && r.toString().contains("PERFSINK_UNDELIVERED"), r.toString());
        assertEquals(1, r.aggregated, r.toString());
        assertTrue(LogBridge.ROUTED.get() > routedBefore, "the engine's warnings reach the JMeter log");
    }

    @Test
    void aBadParameterFailsSetupNamingIt() {
        Map<String, String> p = params("x", "bad");
        p.put("summaryOnly", "perhaps");
        PerfsinkBackendListenerClient client = new PerfsinkBackendListenerClient();
        BackendListenerContext ctx = new BackendListenerContext(p);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> client.setupTest(ctx));
        assertTrue(e.getMessage().contains("summaryOnly") && e.getMessage().contains("perhaps"), e.getMessage());
        // JMeter still feeds and tears down a client whose setup failed: nothing happens.
        client.handleSampleResults(Arrays.asList(Samples.sample("x", 1, 1, true, "200", "OK")), ctx);
        client.teardownTest(ctx);
    }
}
