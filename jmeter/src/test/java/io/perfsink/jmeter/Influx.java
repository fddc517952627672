package io.perfsink.jmeter;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A throw-away InfluxDB 1.x for a test, as tests/common/influx.rs starts them for the Rust tests:
 * its own temp dir, loopback listeners on port 0, the HTTP port read from influxd's log line
 * {@code msg="Listening on HTTP" ... addr=127.0.0.1:PORT}. {@code $PERFSINK_INFLUXD} or
 * /usr/bin/influxd. {@link #stop}/{@link #startAgain} take it away and bring it back on the
 * same port with the same data. Queries answer CSV ({@code Accept: application/csv}).
 */
final class Influx implements AutoCloseable {
    private static final Pattern LISTENING = Pattern.compile("Listening on HTTP.*addr=127\\.0\\.0\\.1:(\\d+)");

    private final Path dir;
    private final String binary;
    private Process process;
    private int port;

    private Influx(Path dir, String binary) {
        this.dir = dir;
        this.binary = binary;
    }

    static Influx start() throws IOException, InterruptedException {
        String env = System.getenv("PERFSINK_INFLUXD");
        String binary = env != null && !env.isEmpty() ? env : "/usr/bin/influxd";
        Influx influx = new Influx(Files.createTempDirectory("perfsink-jmeter-influx"), binary);
        influx.spawn(0);
        return influx;
    }

    /** Stops influxd (SIGTERM, then SIGKILL after 10 s); {@link #startAgain} brings it back. */
    void stop() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor();
        }
    }

    /** Starts influxd again on the same port with the same data. */
    void startAgain() throws IOException, InterruptedException {
        spawn(port);
    }

    private void spawn(int httpPort) throws IOException, InterruptedException {
        Path config = dir.resolve("influxdb.conf");
        String d = dir.toString().replace("\\", "\\\\").replace("\"", "\\\"");
        Files.write(config, String.join("\n",
                "reporting-enabled = false",
                "bind-address = \"127.0.0.1:0\"",
                "[meta]", "  dir = \"" + d + "/meta\"", "  logging-enabled = false",
                "[data]", "  dir = \"" + d + "/data\"", "  wal-dir = \"" + d + "/wal\"",
                "  index-version = \"inmem\"", "  query-log-enabled = false",
                "[monitor]", "  store-enabled = false",
                "[http]", "  bind-address = \"127.0.0.1:" + httpPort + "\"", "  log-enabled = false",
                "  suppress-write-log = true", "  pprof-enabled = false",
                "[logging]", "  format = \"logfmt\"", "  level = \"info\"", "  suppress-logo = true",
                "[subscriber]", "  enabled = false",
                "[continuous_queries]", "  enabled = false", "").getBytes(StandardCharsets.UTF_8));
        File log = dir.resolve("influxd.log").toFile();
        long logStart = log.length();
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (true) {
            ProcessBuilder pb = new ProcessBuilder(binary, "run", "-config", config.toString())
                    .directory(dir.toFile()).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log));
            pb.environment().keySet().removeIf(k -> k.startsWith("INFLUXDB_"));
            Process p = pb.start();
            // Not left running when the test JVM exits without close() (a failed or killed run).
            Runtime.getRuntime().addShutdownHook(new Thread(p::destroyForcibly));
            process = p;
            while (p.isAlive() && System.nanoTime() < deadline) {
                if (port == 0) {
                    String text = new String(Files.readAllBytes(log.toPath()), StandardCharsets.UTF_8);
                    Matcher m = LISTENING.matcher(text.substring((int) Math.min(logStart, text.length())));
                    if (m.find()) {
                        port = Integer.parseInt(m.group(1));
                    }
                }
                if (port != 0 && ping()) {
                    return;
                }
                Thread.sleep(25);
            }
            if (p.isAlive() || httpPort == 0 || System.nanoTime() >= deadline) {
                p.destroyForcibly();
                throw new IOException("influxd did not start (exit " + (p.isAlive() ? "none" : p.exitValue())
                        + "): " + tail(log));
            }
            Thread.sleep(200); // the old port still busy: try again until the deadline
        }
    }

    private static String tail(File log) throws IOException {
        List<String> lines = Files.readAllLines(log.toPath());
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
    }

    String url() {
        return "http://127.0.0.1:" + port;
    }

    private boolean ping() {
        try {
            HttpURLConnection c = (HttpURLConnection) new URL(url() + "/ping").openConnection();
            c.setConnectTimeout(500);
            return c.getResponseCode() == 204;
        } catch (IOException e) {
            return false;
        }
    }

    /** Runs {@code q} (POST, so CREATE/DROP work too) and returns the CSV rows after the header. */
    List<String[]> query(String db, String q) throws IOException {
        String qs = "db=" + URLEncoder.encode(db, "UTF-8") + "&epoch=ms&q=" + URLEncoder.encode(q, "UTF-8");
        HttpURLConnection c = (HttpURLConnection) new URL(url() + "/query?" + qs).openConnection();
        c.setRequestMethod("POST");
        c.setRequestProperty("Accept", "application/csv");
        int status = c.getResponseCode();
        String body = read(status < 400 ? c.getInputStream() : c.getErrorStream());
        if (status != 200 || body.startsWith("error")) {
            throw new IOException("query " + q + ": " + status + " " + body);
        }
        List<String[]> rows = new ArrayList<>();
        String[] lines = body.split("\n");
        for (int i = 1; i < lines.length; i++) { // line 0: the header
            if (!lines[i].isEmpty() && !lines[i].startsWith("name,tags,")) {
                rows.add(lines[i].split(",", -1));
            }
        }
        return rows;
    }

    private static String read(InputStream in) throws IOException {
        if (in == null) {
            return "";
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] b = new byte[8192];
        for (int n; (n = in.read(b)) > 0;) {
            out.write(b, 0, n);
        }
        in.close();
        return new String(out.toByteArray(), StandardCharsets.UTF_8);
    }

    @Override
    public void close() throws IOException {
        try {
            stop();
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        if (System.getenv("PERFSINK_KEEP_INFLUX_DIR") == null) {
            try (Stream<Path> s = Files.walk(dir)) {
                s.sorted(Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
            }
        }
    }

    @Override
    public String toString() {
        return "influxd " + url() + " in " + dir;
    }
}
