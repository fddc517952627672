package io.perfsink.jmeter;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;

import org.apache.jmeter.samplers.SampleResult;

import com.sun.jna.Native;
import com.sun.jna.Pointer;

/**
 * Packs a batch of JMeter samples into {@code perfsink_jmeter_sample} records plus one UTF-8
 * string arena, the two buffers of one {@code perfsink_jmeter_submit} call. Both buffers are
 * direct and reused from batch to batch (they only grow), so a batch allocates nothing per
 * sample. Everything is copied out of the SampleResults: JMeter clears the list afterwards.
 *
 * <p>Each sample's sub-results (an HTTP sampler's embedded resources and redirects, a parent-mode
 * Transaction Controller's children) follow it depth first, flagged {@link
 * SampleLayout#FLAG_SUB_RESULT}, and its {@code sub_results} counts them all (every level): the
 * engine counts them as hits as the built-in listener does, and writes them as raw samples.
 */
final class SamplePacker {
    private ByteBuffer records;
    private Pointer recordsAddress;
    private final Utf8Arena strings;
    private int count;
    // Labels and thread names repeat through a batch as the very same String objects (a
    // sampler's name, a thread's name): each is encoded once per batch, found again by identity.
    private static final int CACHE = 64;
    private final String[] cachedString = new String[CACHE];
    private final long[] cachedSpan = new long[CACHE];

    SamplePacker(int initialRecords, int initialStringBytes) {
        setRecords(Utf8Arena.allocate(Math.max(1, initialRecords) * SampleLayout.SIZE));
        strings = new Utf8Arena(initialStringBytes);
    }

    private void setRecords(ByteBuffer b) {
        records = b;
        recordsAddress = Native.getDirectBufferPointer(b);
    }

    /** Replaces the previous batch with {@code samples}. */
    void pack(List<SampleResult> samples) {
        records.clear();
        strings.clear();
        Arrays.fill(cachedString, null);
        count = 0;
        for (int i = 0, n = samples.size(); i < n; i++) {
            add(samples.get(i), 0);
        }
    }

    /** Packs {@code r} and its sub-results; returns how many records that took. */
    private int add(SampleResult r, int extraFlags) {
        int flags = extraFlags;
        if (r.isSuccessful()) {
            flags |= SampleLayout.FLAG_SUCCESS;
        }
        if (records.remaining() < SampleLayout.SIZE) {
            grow();
        }
        int at = count * SampleLayout.SIZE;
        ByteBuffer b = records;
        b.putLong(at + SampleLayout.TIMESTAMP_MS, r.getTimeStamp());
        b.putLong(at + SampleLayout.ELAPSED_MS, r.getTime());
        b.putLong(at + SampleLayout.LATENCY_MS, r.getLatency());
        b.putLong(at + SampleLayout.CONNECT_MS, r.getConnectTime());
        b.putLong(at + SampleLayout.BYTES, r.getBytesAsLong());
        b.putLong(at + SampleLayout.SENT_BYTES, r.getSentBytes());
        b.putInt(at + SampleLayout.GRP_THREADS, r.getGroupThreads());
        b.putInt(at + SampleLayout.ALL_THREADS, r.getAllThreads());
        putRepeatedString(at + SampleLayout.LABEL, r.getSampleLabel());
        putString(at + SampleLayout.CODE, r.getResponseCode());
        putString(at + SampleLayout.MESSAGE, r.getResponseMessage());
        putString(at + SampleLayout.ASSERTION, r.getFirstAssertionFailureMessage());
        putRepeatedString(at + SampleLayout.THREAD, r.getThreadName());
        b.putInt(at + SampleLayout.FLAGS, flags);
        count++;
        b.position(count * SampleLayout.SIZE);
        int descendants = 0;
        for (SampleResult sub : r.getSubResults()) {
            descendants += add(sub, SampleLayout.FLAG_SUB_RESULT);
        }
        // `records` may have grown (moved) meanwhile; offsets stay valid.
        records.putInt(at + SampleLayout.SUB_RESULTS, descendants);
        return 1 + descendants;
    }

    private void putString(int at, String s) {
        putSpan(at, strings.append(s));
    }

    private void putRepeatedString(int at, String s) {
        if (s == null) {
            putSpan(at, strings.append(null));
            return;
        }
        int slot = System.identityHashCode(s) & (CACHE - 1);
        if (cachedString[slot] != s) {
            cachedString[slot] = s;
            cachedSpan[slot] = strings.append(s);
        }
        putSpan(at, cachedSpan[slot]);
    }

    private void putSpan(int at, long offLen) {
        records.putInt(at, (int) (offLen >>> 32));
        records.putInt(at + 4, (int) offLen);
    }

    private void grow() {
        ByteBuffer bigger = Utf8Arena.allocate(Math.max(records.capacity() * 2, SampleLayout.SIZE * 64));
        records.flip();
        bigger.put(records);
        setRecords(bigger);
    }

    /** Records packed by the last {@link #pack}. */
    int count() {
        return count;
    }

    /** The records: {@code count() * SampleLayout.SIZE} bytes from address 0. */
    ByteBuffer records() {
        return records;
    }

    Pointer recordsAddress() {
        return recordsAddress;
    }

    Pointer stringsAddress() {
        return strings.address();
    }

    /** The string arena: {@code stringsLength()} bytes from address 0. */
    ByteBuffer strings() {
        return strings.buffer();
    }

    int stringsLength() {
        return strings.length();
    }
}
