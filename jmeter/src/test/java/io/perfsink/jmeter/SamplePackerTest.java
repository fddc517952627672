package io.perfsink.jmeter;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

import org.apache.jmeter.samplers.SampleResult;
import org.junit.jupiter.api.Test;

class SamplePackerTest {
    /** Record {@code i}'s string at {@code field} (an offset/length pair), decoded. */
    private static String str(SamplePacker p, int i, int field) {
        ByteBuffer r = p.records();
        int off = r.getInt(i * SampleLayout.SIZE + field);
        int len = r.getInt(i * SampleLayout.SIZE + field + 4);
        byte[] b = new byte[len];
        for (int k = 0; k < len; k++) {
            b[k] = p.strings().get(off + k);
        }
        assert off + len <= p.stringsLength();
        return new String(b, StandardCharsets.UTF_8);
    }

    private static long i64(SamplePacker p, int i, int field) {
        return p.records().getLong(i * SampleLayout.SIZE + field);
    }

    private static int i32(SamplePacker p, int i, int field) {
        return p.records().getInt(i * SampleLayout.SIZE + field);
    }

    @Test
    void packsEveryFieldOfASample() {
        String label = "caf\u00e9 \"quoted\" back\\slash, tab\t=eq \u65e5\u672c 😀";
        SampleResult r = Samples.sample(label, 1_700_000_000_123L, 42, true, "200", "OK");
        r.setLatency(17);
        r.setConnectTime(5);
        r.setBytes(1234L);
        r.setSentBytes(567L);
        r.setGroupThreads(7);
        r.setAllThreads(9);
        r.setThreadName("grp 1-7");
        SamplePacker p = new SamplePacker(1, 1);
        p.pack(Collections.singletonList(r));

        assertEquals(1, p.count());
        assertEquals(1_700_000_000_123L, i64(p, 0, SampleLayout.TIMESTAMP_MS));
        assertEquals(42, i64(p, 0, SampleLayout.ELAPSED_MS));
        assertEquals(17, i64(p, 0, SampleLayout.LATENCY_MS));
        assertEquals(5, i64(p, 0, SampleLayout.CONNECT_MS));
        assertEquals(1234, i64(p, 0, SampleLayout.BYTES));
        assertEquals(567, i64(p, 0, SampleLayout.SENT_BYTES));
        assertEquals(7, i32(p, 0, SampleLayout.GRP_THREADS));
        assertEquals(9, i32(p, 0, SampleLayout.ALL_THREADS));
        assertEquals(label, str(p, 0, SampleLayout.LABEL));
        assertEquals("200", str(p, 0, SampleLayout.CODE));
        assertEquals("OK", str(p, 0, SampleLayout.MESSAGE));
        assertEquals("", str(p, 0, SampleLayout.ASSERTION));
        assertEquals("grp 1-7", str(p, 0, SampleLayout.THREAD));
        assertEquals(SampleLayout.FLAG_SUCCESS, i32(p, 0, SampleLayout.FLAGS));
        assertEquals(0, i32(p, 0, SampleLayout.SUB_RESULTS));
    }

    @Test
    void emptyAndMissingStringsAreZeroLength() {
        SampleResult r = Samples.sample("", 1, 1, false, "", null);
        r.setThreadName(null);
        SamplePacker p = new SamplePacker(4, 16);
        p.pack(Collections.singletonList(r));
        for (int field : new int[] {SampleLayout.LABEL, SampleLayout.CODE, SampleLayout.MESSAGE,
            SampleLayout.ASSERTION, SampleLayout.THREAD}) {
            assertEquals(0, i32(p, 0, field + 4), "length at " + field);
        }
        assertEquals(0, i32(p, 0, SampleLayout.FLAGS), "failed, not a transaction, not a sub-result");
        assertEquals(0, p.stringsLength());
    }

    @Test
    void firstAssertionFailureMessageIsCarried() {
        SampleResult r = Samples.failedAssertion(Samples.sample("GET /b", 1, 3, true, "200", "OK"), "body is not ok");
        SamplePacker p = new SamplePacker(4, 16);
        p.pack(Collections.singletonList(r));
        assertEquals("body is not ok", str(p, 0, SampleLayout.ASSERTION));
        assertEquals(0, i32(p, 0, SampleLayout.FLAGS) & SampleLayout.FLAG_SUCCESS);
    }

    @Test
    void subResultsFollowTheirParentDepthFirstFlagged() {
        SampleResult page = Samples.sample("page", 10, 30, true, "200", "OK");
        SampleResult redirect = Samples.sample("page-0", 10, 10, true, "302", "Found");
        SampleResult img = Samples.sample("page-1", 20, 10, false, "404", "Not Found");
        SampleResult nested = Samples.sample("page-1-0", 21, 1, true, "200", "OK");
        img.addRawSubResult(nested);
        page.addRawSubResult(redirect);
        page.addRawSubResult(img);
        SampleResult next = Samples.sample("next", 40, 5, true, "200", "OK");

        SamplePacker p = new SamplePacker(1, 1); // grows while packing
        p.pack(Arrays.asList(page, next));

        String[] labels = {"page", "page-0", "page-1", "page-1-0", "next"};
        int[] flags = {1, 1 | 4, 4, 1 | 4, 1};
        int[] subs = {3, 0, 1, 0, 0}; // every level below
        assertEquals(labels.length, p.count());
        for (int i = 0; i < labels.length; i++) {
            assertEquals(labels[i], str(p, i, SampleLayout.LABEL), "label " + i);
            assertEquals(flags[i], i32(p, i, SampleLayout.FLAGS), "flags " + i);
            assertEquals(subs[i], i32(p, i, SampleLayout.SUB_RESULTS), "sub_results " + i);
        }
        assertEquals("Not Found", str(p, 2, SampleLayout.MESSAGE));
    }

    @Test
    void aLabelOrThreadNameRepeatedAsTheSameObjectIsEncodedOncePerBatch() {
        String label = "GET /\u00e9";
        String thread = "users 1-1";
        List<SampleResult> batch = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            SampleResult r = Samples.sample(label, i, 1, true, "", "");
            r.setThreadName(thread);
            batch.add(r);
        }
        // Equal but not the same object: packed correctly all the same.
        SampleResult other = Samples.sample(new String(label.toCharArray()), 100, 1, true, "", "");
        other.setThreadName(new String(thread.toCharArray()));
        batch.add(other);
        SamplePacker p = new SamplePacker(4, 16);
        p.pack(batch);
        for (int i = 0; i <= 100; i++) {
            assertEquals(label, str(p, i, SampleLayout.LABEL), "label " + i);
            assertEquals(thread, str(p, i, SampleLayout.THREAD), "thread " + i);
        }
        assertEquals(i32(p, 0, SampleLayout.LABEL), i32(p, 99, SampleLayout.LABEL), "one range for the label");
        assertEquals(2 * (7 + 9), p.stringsLength(), "label and thread name twice (the copies), nothing else");
        p.pack(Collections.singletonList(batch.get(0)));
        assertEquals(label, str(p, 0, SampleLayout.LABEL), "the next batch encodes it again");
    }

    @Test
    void aBatchReplacesThePreviousOneAndBuffersAreReused() {
        SamplePacker p = new SamplePacker(2, 8);
        List<SampleResult> big = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            big.add(Samples.sample("label " + i, i, i, i % 3 != 0, "200", "OK"));
        }
        p.pack(big);
        assertEquals(1000, p.count());
        assertEquals("label 999", str(p, 999, SampleLayout.LABEL));
        assertEquals(999, i64(p, 999, SampleLayout.TIMESTAMP_MS));
        ByteBuffer records = p.records();
        ByteBuffer strings = p.strings();

        p.pack(Collections.singletonList(Samples.sample("only", 5, 1, true, "200", "OK")));
        assertEquals(1, p.count());
        assertEquals("only", str(p, 0, SampleLayout.LABEL));
        assertEquals(4 + 3 + 2 + 9, p.stringsLength(), "label, code, message, thread name");
        assertEquals(records, p.records(), "records buffer reused");
        assertEquals(strings, p.strings(), "string buffer reused");
    }
}
