package io.perfsink.jmeter;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Map;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;

/**
 * One {@code perfsink_jmeter} handle: Java types in, C calls out, nothing else (parameter
 * resolution, counting, statistics and delivery are the engine's). Error texts come from a
 * per-handle err buffer. submit/threads are called from JMeter's one Backend Listener worker
 * thread, open/close from the test thread, never concurrently with each other by JMeter's
 * protocol; the engine's exports are thread-safe anyway.
 */
final class NativeListener {
    static final int ERR_LEN = 1024;
    /** sizeof(perfsink_close_report) at ABI 1.2: kept_in_spool, two flags, perfsink_stats (23 counters). */
    static final int CLOSE_REPORT_SIZE = 8 + 4 + 4 + 23 * 8;
    private static final int TAG_SIZE = 32; // perfsink_tag: key, key_len, value, value_len

    private final Pointer handle;
    private final Memory err = errorBuffer();
    private boolean freed;

    private NativeListener(Pointer handle) {
        this.handle = handle;
    }

    /** Opens the engine with the listener's parameters, every one passed through by name. */
    static NativeListener open(Map<String, String> params) {
        Utf8Arena text = new Utf8Arena(256);
        long[] spans = new long[params.size() * 2];
        int i = 0;
        for (Map.Entry<String, String> e : params.entrySet()) {
            spans[i++] = text.append(e.getKey());
            spans[i++] = text.append(e.getValue());
        }
        // Addresses are taken only now: the arena may have moved while it grew.
        long base = Pointer.nativeValue(text.address());
        ByteBuffer tags = Utf8Arena.allocate(Math.max(1, params.size()) * TAG_SIZE);
        for (int t = 0; t < spans.length; t += 2) {
            int at = t / 2 * TAG_SIZE;
            tags.putLong(at, base + (spans[t] >>> 32));
            tags.putLong(at + 8, spans[t] & 0xFFFFFFFFL);
            tags.putLong(at + 16, base + (spans[t + 1] >>> 32));
            tags.putLong(at + 24, spans[t + 1] & 0xFFFFFFFFL);
        }
        Memory out = new Memory(8);
        out.setLong(0, 0);
        Memory err = errorBuffer();
        int rc = PerfsinkNative.perfsink_jmeter_open(Native.getDirectBufferPointer(tags), params.size(), out, err,
                ERR_LEN);
        if (rc != PerfsinkNative.PERFSINK_OK) {
            throw new IllegalStateException("perfsink: opening the JMeter listener failed: " + message(rc, err));
        }
        // The text buffer must live until open returns (the engine copies what it keeps).
        reachabilityFence(text);
        reachabilityFence(tags);
        return new NativeListener(out.getPointer(0));
    }

    /** One submit of the packed batch; PERFSINK_OK or the failure's code (see {@link #lastError}). */
    int submit(SamplePacker batch) {
        return PerfsinkNative.perfsink_jmeter_submit(handle, batch.recordsAddress(), batch.count(),
                batch.stringsAddress(), batch.stringsLength(), err, ERR_LEN);
    }

    int threads(long started, long finished) {
        return PerfsinkNative.perfsink_jmeter_threads(handle, started, finished, err, ERR_LEN);
    }

    /** The engine's own one-line description (destination, interval, options; secrets hidden). */
    String describe() {
        Memory buf = new Memory(1024);
        long n = PerfsinkNative.perfsink_jmeter_describe(handle, buf, buf.size());
        if (n >= buf.size()) {
            buf = new Memory(Math.min(n + 1, 1 << 20));
            n = PerfsinkNative.perfsink_jmeter_describe(handle, buf, buf.size());
        }
        return new String(buf.getByteArray(0, (int) Math.min(n, buf.size())), StandardCharsets.UTF_8);
    }

    /** Closes (idempotent in the engine): flushes the last interval and delivers or spools. */
    CloseReport close() {
        Memory report = new Memory(CLOSE_REPORT_SIZE);
        report.clear();
        int rc = PerfsinkNative.perfsink_jmeter_close(handle, report, CLOSE_REPORT_SIZE, err, ERR_LEN);
        String problem = rc == PerfsinkNative.PERFSINK_OK ? "" : message(rc, err);
        return new CloseReport(rc, report.getByteBuffer(0, CLOSE_REPORT_SIZE).order(ByteOrder.nativeOrder()), problem);
    }

    synchronized void free() {
        if (!freed) {
            freed = true;
            PerfsinkNative.perfsink_jmeter_free(handle);
        }
    }

    /** The message of the last failed call on this handle, with the code's name. */
    String lastError(int rc) {
        return message(rc, err);
    }

    private static Memory errorBuffer() {
        Memory m = new Memory(ERR_LEN);
        m.clear();
        return m;
    }

    /** The code's name and the NUL-terminated message the engine left in {@code err}. */
    static String message(int rc, Memory err) {
        String name = PerfsinkNative.perfsink_result_name(rc).getString(0, "UTF-8");
        String text = err.getString(0, "UTF-8");
        return text.isEmpty() ? name : name + ": " + text;
    }

    /** Java 8 has no Reference.reachabilityFence: a volatile write the JIT cannot drop. */
    private static volatile Object fence;

    private static void reachabilityFence(Object o) {
        fence = o;
        fence = null;
    }
}
