package io.perfsink.jmeter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;

/** SampleLayout against the C header the engine generates (include/perfsink.h): no drift. */
class SampleLayoutTest {
    private static String header() throws IOException {
        String repo = System.getProperty("perfsink.repo", "..");
        return new String(Files.readAllBytes(Paths.get(repo, "include", "perfsink.h")), StandardCharsets.UTF_8);
    }

    /** The header's perfsink_jmeter_sample members with their natural-alignment offsets. */
    private static Map<String, Integer> headerOffsets(String h) {
        int start = h.indexOf("typedef struct perfsink_jmeter_sample {");
        int end = h.indexOf("} perfsink_jmeter_sample;", start);
        assertTrue(start >= 0 && end > start, "perfsink_jmeter_sample not in the header");
        String body = h.substring(start, end).replaceAll("(?s)/\\*.*?\\*/", "");
        Matcher m = Pattern.compile("\\b(u?int(32|64)_t)\\s+(\\w+);").matcher(body);
        Map<String, Integer> offsets = new LinkedHashMap<>();
        int at = 0;
        while (m.find()) {
            int size = m.group(2).equals("64") ? 8 : 4;
            at = (at + size - 1) / size * size;
            offsets.put(m.group(3), at);
            at += size;
        }
        offsets.put("SIZE", (at + 7) / 8 * 8);
        return offsets;
    }

    @Test
    void matchesTheHeader() throws Exception {
        Map<String, Integer> want = headerOffsets(header());
        // SampleLayout's constants, header name by header name (a string is its _off member).
        Map<String, Integer> ours = new LinkedHashMap<>();
        for (Field f : SampleLayout.class.getDeclaredFields()) {
            if (f.getType() != int.class || f.getName().startsWith("FLAG_")) {
                continue;
            }
            String name = f.getName().equals("SIZE") ? "SIZE" : f.getName().toLowerCase();
            int v = f.getInt(null);
            if (want.containsKey(name + "_off")) {
                ours.put(name + "_off", v);
                ours.put(name + "_len", v + 4);
            } else {
                ours.put(name, v);
            }
        }
        assertEquals(new ArrayList<>(want.entrySet()).toString(), sorted(ours, want.keySet()).toString());
    }

    private static List<Map.Entry<String, Integer>> sorted(Map<String, Integer> m, Iterable<String> order) {
        Map<String, Integer> out = new LinkedHashMap<>();
        for (String k : order) {
            if (m.containsKey(k)) {
                out.put(k, m.remove(k));
            }
        }
        out.putAll(m); // anything the header lacks shows up at the end
        return new ArrayList<>(out.entrySet());
    }

    @Test
    void closeReportMatchesTheHeader() throws Exception {
        String h = header();
        String stats = h.substring(h.indexOf("typedef struct perfsink_stats {"), h.indexOf("} perfsink_stats;"))
                .replaceAll("(?s)/\\*.*?\\*/", "");
        List<String> counters = new ArrayList<>();
        Matcher m = Pattern.compile("uint64_t\\s+(\\w+);").matcher(stats);
        while (m.find()) {
            counters.add(m.group(1));
        }
        assertEquals(8 + 4 + 4 + 8 * counters.size(), NativeListener.CLOSE_REPORT_SIZE, "sizeof(perfsink_close_report)");
        int checked = 0;
        for (Field f : CloseReport.class.getDeclaredFields()) {
            if (f.getName().startsWith("STAT_")) {
                f.setAccessible(true);
                String name = f.getName().substring(5).toLowerCase();
                assertEquals(name, counters.get(f.getInt(null)), "CloseReport." + f.getName());
                checked++;
            }
        }
        assertEquals(6, checked, "STAT_ constants checked");
    }

    @Test
    void flagBitsMatchTheHeader() throws IOException {
        String h = header();
        assertTrue(h.contains("#define PERFSINK_JMETER_SUCCESS " + SampleLayout.FLAG_SUCCESS), "SUCCESS bit");
        assertTrue(h.contains("#define PERFSINK_JMETER_SUB_RESULT " + SampleLayout.FLAG_SUB_RESULT), "SUB_RESULT bit");
        // The listener needs ABI_MINOR or any later 1.x (later minors only add).
        java.util.regex.Matcher m =
                java.util.regex.Pattern.compile("#define PERFSINK_ABI_VERSION_MINOR (\\d+)").matcher(h);
        assertTrue(m.find(), "ABI minor defined");
        assertTrue(Integer.parseInt(m.group(1)) >= PerfsinkNative.ABI_MINOR, "ABI minor");
    }
}
