package io.perfsink.jmeter;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicLong;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.sun.jna.Pointer;

/**
 * Routes the engine's messages (write failures, retries, spool use) into jmeter.log instead of
 * stderr, through perfsink_log_set. Process-wide in the engine, so installed once per JVM; the
 * callback object is kept reachable for as long as the library may call it.
 */
final class LogBridge implements PerfsinkNative.LogFn {
    private static final Logger LOG = LoggerFactory.getLogger("io.perfsink.engine");
    // perfsink_log_* levels (include/perfsink.h).
    static final int ERROR = 1;
    static final int WARN = 2;
    static final int INFO = 3;
    static final int DEBUG = 4;

    private static LogBridge installed;
    /** Messages routed so far (for tests). */
    static final AtomicLong ROUTED = new AtomicLong();

    private LogBridge() {}

    static synchronized void install() {
        if (installed != null) {
            return;
        }
        installed = new LogBridge();
        int level = LOG.isDebugEnabled() ? DEBUG : LOG.isInfoEnabled() ? INFO : LOG.isWarnEnabled() ? WARN : ERROR;
        PerfsinkNative.perfsink_log_set(installed, null, level);
    }

    @Override
    public void invoke(Pointer userdata, int level, Pointer msg, long len) {
        try {
            String text = new String(msg.getByteArray(0, (int) Math.min(len, 1 << 20)), StandardCharsets.UTF_8);
            ROUTED.incrementAndGet();
            if (level <= ERROR) {
                LOG.error(text);
            } else if (level == WARN) {
                LOG.warn(text);
            } else if (level == INFO) {
                LOG.info(text);
            } else {
                LOG.debug(text);
            }
        } catch (RuntimeException e) {
            // An exception must not travel back into the engine's thread.
        }
    }
}
