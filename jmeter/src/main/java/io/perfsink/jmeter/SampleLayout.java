package io.perfsink.jmeter;

/**
 * The byte layout of {@code perfsink_jmeter_sample} (include/perfsink.h): natural alignment,
 * native (little-endian on linux-x86-64) order. The one place Java knows it; {@code
 * SampleLayoutTest} checks it against the header so the two cannot drift.
 */
final class SampleLayout {
    static final int TIMESTAMP_MS = 0;
    static final int ELAPSED_MS = 8;
    static final int LATENCY_MS = 16;
    static final int CONNECT_MS = 24;
    static final int BYTES = 32;
    static final int SENT_BYTES = 40;
    static final int GRP_THREADS = 48;
    static final int ALL_THREADS = 52;
    static final int LABEL = 56;
    static final int CODE = 64;
    static final int MESSAGE = 72;
    static final int ASSERTION = 80;
    static final int THREAD = 88;
    static final int FLAGS = 96;
    /** All sub-results below the sample, every level (each is a hit). */
    static final int SUB_RESULTS = 100;
    /** sizeof(perfsink_jmeter_sample). */
    static final int SIZE = 104;

    /** Flag bit 0: {@code SampleResult.isSuccessful()}. */
    static final int FLAG_SUCCESS = 1;
    // Bit 1 (PERFSINK_JMETER_TRANSACTION) is reserved: the engine tells a Transaction Controller's
    // sample by its message, JMeter's own rule, so Java does not decide it too.
    /** Flag bit 2: a sub-result, following its parent (depth first) in the same batch. */
    static final int FLAG_SUB_RESULT = 4;

    private SampleLayout() {}
}
