package io.perfsink.jmeter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * JMeter 5.6.3 non-GUI (scripts/jmeter-home.sh's home, examples/jmeter/run-smoke.sh and its target
 * that fails ~20 % of "GET /b") runs examples/jmeter/smoke.jmx with perfsink's listener from the
 * shaded jar against a private influxd; what arrived must equal JMeter's own JTL of the same run,
 * per transaction and per interval: counts, error counts and percentiles (exact: each interval
 * holds fewer samples than the engine keeps exactly); also with influxd away for 10 s mid-run;
 * and JMeter's built-in listener, run on the same plan, writes the same tag and field names.
 */
class JmeterEndToEndIT {
    private static final long INTERVAL_MS = 5000;

    /** (label, interval start) → values. */
    private static final class Table extends TreeMap<String, List<Long>> {
        private static final long serialVersionUID = 1L;

        void add(String label, long intervalStart, long v) {
            computeIfAbsent(label + " @" + intervalStart, k -> new ArrayList<>()).add(v);
        }

        Map<String, Long> counts() {
            Map<String, Long> m = new TreeMap<>();
            forEach((k, v) -> m.put(k, (long) v.size()));
            return m;
        }
    }

    private static final String BUILT_IN = "org.apache.jmeter.visualizers.backend.influxdb.InfluxdbBackendListenerClient";

    /**
     * Runs smoke.jmx (3 threads, {@code seconds}) into database {@code db} of {@code influx}, with
     * {@code during} run on another thread meanwhile; returns the output directory.
     */
    private static Path runSmoke(Path out, Influx influx, String db, int seconds, Callable<Void> during,
            String... properties) throws Exception {
        Path repo = Paths.get(System.getProperty("perfsink.repo", "..")).toRealPath();
        File jar = new File(System.getProperty("perfsink.jar", "target/perfsink-jmeter-0.1.0.jar"));
        assertTrue(jar.isFile(), jar + " (run through mvn verify)");
        influx.query("", "CREATE DATABASE " + db);
        List<String> cmd = new ArrayList<>(Arrays.asList("bash", repo.resolve("examples/jmeter/run-smoke.sh").toString(),
                out.toString(), "-Juser.classpath=" + jar.getAbsolutePath(),
                "-JinfluxdbUrl=" + influx.url() + "/write?db=" + db, "-Japplication=e2e", "-Jthreads=3",
                "-Jduration=" + seconds));
        cmd.addAll(Arrays.asList(properties));
        Files.createDirectories(out);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.resolve("run.log").toFile())
                .start();
        ExecutorService side = Executors.newSingleThreadExecutor();
        try {
            Future<Void> f = side.submit(during);
            assertTrue(p.waitFor(seconds + 120L, TimeUnit.SECONDS), "JMeter run did not end in time");
            f.get();
        } finally {
            p.destroyForcibly();
            side.shutdownNow();
        }
        assertEquals(0, p.exitValue(), "run-smoke.sh: " + new String(Files.readAllBytes(out.resolve("run.log")),
                StandardCharsets.UTF_8));
        return out;
    }

    private static String jmeterLog(Path out) throws IOException {
        return new String(Files.readAllBytes(out.resolve("jmeter.log")), StandardCharsets.UTF_8);
    }

    /** Counts, error counts and percentiles per transaction and interval: InfluxDB's equal the JTL's. */
    private static void assertInfluxMatchesJtl(Influx influx, String db, Path out) throws IOException {
        Table all = new Table();
        Table ko = new Table();
        Table okElapsed = new Table();
        readJtl(out.resolve("smoke.jtl"), all, ko, okElapsed);
        assertTrue(ko.size() > 0 && all.size() >= 6, "the run had errors and several intervals: " + all.counts());

        assertEquals(all.counts(), fromInflux(influx, db, "count", "all"), "count per transaction and interval");
        assertEquals(ko.counts(), fromInflux(influx, db, "count", "ko"), "errors per transaction and interval");
        Map<String, Long> total = new TreeMap<>();
        all.forEach((k, v) -> total.merge("all" + k.substring(k.indexOf(" @")), (long) v.size(), Long::sum));
        assertEquals(total, fromInflux(influx, db, "count", "all", "all"), "transaction=all per interval");
        for (double pct : new double[] {50, 90, 95, 99}) {
            Map<String, Long> want = new TreeMap<>();
            okElapsed.forEach((k, v) -> want.put(k, nearestRank(v, pct)));
            assertEquals(want, fromInflux(influx, db, "pct" + pct, "ok"), "pct" + pct + " of ok samples");
        }
        assertEquals(2, influx.query(db, "SELECT \"text\" FROM events").size(), "start and end annotations");
    }

    @Test
    void whatArrivesEqualsTheJtl(@TempDir Path tmp) throws Exception {
        try (Influx influx = Influx.start()) {
            Path out = runSmoke(tmp, influx, "jmeter", 12, () -> null);
            String log = jmeterLog(out);
            assertTrue(log.contains("perfsink: closed:") && log.contains("every point delivered"),
                    "jmeter.log has perfsink's close report");
            assertInfluxMatchesJtl(influx, "jmeter", out);
            assertDashboardQueriesReturnData(influx, "jmeter");
        }
    }

    /**
     * Every query of Grafana dashboard 4026 and those known of 5496 (reference jmeter.md §6: its two
     * quoted queries, which 4026 shares, and its network-traffic fields sb/rb), variables filled in.
     */
    private static void assertDashboardQueriesReturnData(Influx influx, String db) throws IOException {
        String m = "\"jmeter\"";
        String t = "time > now() - 1h";
        String app = "\"application\" =~ /^e2e$/";
        String tr = "\"transaction\" =~ /^(GET \\/a|GET \\/b|flow)$/";
        String[] queries = {
            "SHOW TAG VALUES FROM " + m + " WITH KEY = \"application\"",
            "SHOW TAG VALUES FROM " + m + " WITH KEY = \"transaction\" WHERE " + app
                    + " AND \"transaction\" != 'internal' AND \"transaction\" != 'all'",
            "SELECT \"text\" FROM \"events\" WHERE " + t,
            "SELECT sum(\"count\") FROM " + m + " WHERE " + app + " AND \"transaction\" = 'all' AND " + t,
            "SELECT sum(\"countError\") FROM " + m + " WHERE " + app + " AND \"transaction\" = 'all' AND " + t,
            "SELECT sum(\"countError\") / sum(\"count\") FROM (SELECT \"count\", \"countError\" FROM " + m
                    + " WHERE " + app + " AND \"transaction\" = 'all' AND " + t + ")",
            "SELECT mean(\"count\") / 5 FROM " + m + " WHERE " + app + " AND \"transaction\" = 'all' AND " + t
                    + " GROUP BY time(5s) fill(none)",
            "SELECT last(\"maxAT\") FROM " + m + " WHERE " + app + " AND \"transaction\" = 'internal' AND " + t
                    + " GROUP BY time(5s) fill(none)",
            "SELECT mean(\"pct95.0\") FROM " + m + " WHERE " + app + " AND \"statut\" = 'ok' AND " + t
                    + " GROUP BY \"transaction\"",
            "SELECT sum(\"count\") FROM " + m + " WHERE " + app + " AND \"statut\" = 'ko' AND " + t
                    + " GROUP BY \"transaction\"",
            "SELECT sum(\"count\") FROM " + m + " WHERE " + app + " AND \"responseCode\" !~ /^$/ AND " + t
                    + " GROUP BY \"responseCode\", \"responseMessage\"",
            "SELECT sum(\"count\") FROM " + m + " WHERE " + app + " AND \"statut\" = 'all' AND " + tr + " AND " + t
                    + " GROUP BY \"transaction\"",
            "SELECT last(\"count\") / 5 FROM " + m + " WHERE " + app + " AND \"statut\" = 'ok' AND " + tr + " AND "
                    + t + " GROUP BY time(5s), \"transaction\" fill(none)",
            "SELECT last(\"avg\"), last(\"pct50.0\"), last(\"pct90.0\"), last(\"pct95.0\"), last(\"pct99.0\"),"
                    + " last(\"max\") FROM " + m + " WHERE " + app + " AND \"statut\" = 'ok' AND " + tr + " AND " + t
                    + " GROUP BY \"transaction\"",
            // 5496: throughput and pct95 per transaction as above; network traffic per interval.
            "SELECT sum(\"sb\") / 5, sum(\"rb\") / 5 FROM " + m + " WHERE " + app + " AND \"transaction\" = 'all' AND "
                    + t + " GROUP BY time(5s) fill(none)",
            "SELECT last(\"sb\"), last(\"rb\") FROM " + m + " WHERE " + app + " AND \"statut\" = 'all' AND " + tr
                    + " AND " + t + " GROUP BY \"transaction\"",
        };
        for (String q : queries) {
            assertTrue(!influx.query(db, q).isEmpty(), "dashboard 4026/5496 query returns data: " + q);
        }
    }

    @Test
    void influxdbAwayForTenSecondsLosesNothing(@TempDir Path tmp) throws Exception {
        try (Influx influx = Influx.start()) {
            Path out = runSmoke(tmp, influx, "jmeter", 24, () -> {
                Thread.sleep(7_000);
                influx.stop();
                Thread.sleep(10_000);
                influx.startAgain();
                return null;
            });
            String log = jmeterLog(out);
            assertTrue(log.contains("every point delivered"), "close report says delivered");
            assertInfluxMatchesJtl(influx, "jmeter", out);
        }
    }

    @Test
    void theBuiltInListenerWritesTheSameTagAndFieldNames(@TempDir Path tmp) throws Exception {
        try (Influx influx = Influx.start()) {
            runSmoke(tmp.resolve("ours"), influx, "ours", 8, () -> null);
            runSmoke(tmp.resolve("builtin"), influx, "builtin", 8, () -> null, "-Jlistener=" + BUILT_IN);
            // The dashboards' measurements; perfsink also writes its self-metrics (measurement perfsink).
            for (String q : new String[] {"SHOW TAG KEYS FROM jmeter, events", "SHOW FIELD KEYS FROM jmeter, events"}) {
                List<String> ours = keys(influx, "ours", q);
                if (q.startsWith("SHOW TAG KEYS")) {
                    // The one added tag key: the generator's identity (lines are stamped at
                    // interval starts; two generators must not overwrite each other).
                    assertTrue(ours.remove("jmeter instance"), "jmeter lines carry instance");
                    assertTrue(ours.remove("events instance"), "events lines carry instance");
                }
                assertEquals(keys(influx, "builtin", q), ours, q);
            }
            assertEquals(tagValues(influx, "builtin"), tagValues(influx, "ours"), "statut and transaction values");
        }
    }

    private static List<String> keys(Influx influx, String db, String q) throws IOException {
        List<String> k = new ArrayList<>();
        for (String[] r : influx.query(db, q)) { // name,tags,key[,type]
            k.add(r[0] + " " + String.join(" ", Arrays.asList(r).subList(2, r.length)));
        }
        Collections.sort(k);
        return k;
    }

    private static List<String> tagValues(Influx influx, String db) throws IOException {
        List<String> k = new ArrayList<>();
        for (String[] r : influx.query(db, "SHOW TAG VALUES FROM jmeter WITH KEY IN (\"statut\", \"transaction\")")) {
            k.add(r[2] + "=" + r[3]);
        }
        Collections.sort(k);
        return k;
    }

    private static void readJtl(Path jtl, Table all, Table ko, Table okElapsed) throws IOException {
        List<String> lines = Files.readAllLines(jtl, StandardCharsets.UTF_8);
        List<String> head = csv(lines.get(0));
        int ts = head.indexOf("timeStamp");
        int elapsed = head.indexOf("elapsed");
        int label = head.indexOf("label");
        int success = head.indexOf("success");
        for (String line : lines.subList(1, lines.size())) {
            List<String> r = csv(line);
            long start = Long.parseLong(r.get(ts)) / INTERVAL_MS * INTERVAL_MS;
            long ms = Long.parseLong(r.get(elapsed));
            all.add(r.get(label), start, ms);
            if ("true".equals(r.get(success))) {
                okElapsed.add(r.get(label), start, ms);
            } else {
                ko.add(r.get(label), start, ms);
            }
        }
    }

    /** A CSV JTL line: JMeter quotes a field with a comma or quote in it, doubling quotes. */
    static List<String> csv(String line) {
        List<String> out = new ArrayList<>();
        StringBuilder f = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (quoted) {
                if (c == '"' && i + 1 < line.length() && line.charAt(i + 1) == '"') {
                    f.append('"');
                    i++;
                } else if (c == '"') {
                    quoted = false;
                } else {
                    f.append(c);
                }
            } else if (c == '"') {
                quoted = true;
            } else if (c == ',') {
                out.add(f.toString());
                f.setLength(0);
            } else {
                f.append(c);
            }
        }
        out.add(f.toString());
        return out;
    }

    private static long nearestRank(List<Long> values, double pct) {
        List<Long> v = new ArrayList<>(values);
        Collections.sort(v);
        int rank = (int) Math.ceil(pct / 100 * v.size());
        return v.get(Math.max(0, rank - 1));
    }

    /** field per "label @intervalStart" of the lines with statut={@code statut}, other than transaction=all. */
    private static Map<String, Long> fromInflux(Influx influx, String db, String field, String statut)
            throws IOException {
        Map<String, Long> m = fromInflux(influx, db, field, statut, null);
        m.keySet().removeIf(k -> k.startsWith("all @"));
        return m;
    }

    private static Map<String, Long> fromInflux(Influx influx, String db, String field, String statut,
            String transaction) throws IOException {
        String q = "SELECT \"" + field + "\", \"transaction\" FROM jmeter WHERE application='e2e' AND statut='" + statut
                + "'" + (transaction == null ? "" : " AND \"transaction\"='" + transaction + "'");
        Map<String, Long> m = new TreeMap<>();
        for (String[] r : influx.query(db, q)) { // name,tags,time,field,transaction
            m.put(r[4] + " @" + r[2], Math.round(Double.parseDouble(r[3])));
        }
        return m;
    }

}
