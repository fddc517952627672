package io.perfsink.jmeter;

import java.nio.ByteBuffer;

/** The engine's final account of a closed listener (perfsink_close_report), as one log line. */
final class CloseReport {
    final int result;
    final long keptInSpool;
    final boolean delivered;
    final long accepted;
    final long written;
    final long retried;
    final long rejected;
    final long dropped;
    final long aggregated;
    final String problem;

    // Indexes of the counters read in perfsink_stats (SampleLayoutTest checks them by name).
    static final int STAT_ACCEPTED = 0;
    static final int STAT_WRITTEN = 2;
    static final int STAT_RETRIED = 3;
    static final int STAT_REJECTED = 4;
    static final int STAT_DROPPED = 7;
    static final int STAT_AGGREGATED = 20;

    CloseReport(int result, ByteBuffer r, String problem) {
        this.result = result;
        this.problem = problem;
        keptInSpool = r.getLong(0);
        delivered = r.getInt(12) != 0;
        accepted = stat(r, STAT_ACCEPTED);
        written = stat(r, STAT_WRITTEN);
        retried = stat(r, STAT_RETRIED);
        rejected = stat(r, STAT_REJECTED);
        dropped = stat(r, STAT_DROPPED);
        aggregated = stat(r, STAT_AGGREGATED);
    }

    /** perfsink_stats follows kept_in_spool and the two flags. */
    private static long stat(ByteBuffer r, int index) {
        return r.getLong(16 + 8 * index);
    }

    /** Whether the close itself failed (not merely left points undelivered). */
    boolean failed() {
        return result != PerfsinkNative.PERFSINK_OK && result != PerfsinkNative.PERFSINK_UNDELIVERED;
    }

    @Override
    public String toString() {
        if (!problem.isEmpty()) {
            return "perfsink: closed: " + problem; // the engine's own account, counters included
        }
        StringBuilder s = new StringBuilder("perfsink: closed: ");
        s.append(aggregated).append(" samples, ");
        s.append(accepted).append(" points accepted, ").append(written).append(" written, ");
        s.append(retried).append(" retried, ").append(rejected).append(" rejected, ");
        s.append(dropped).append(" dropped, ").append(keptInSpool).append(" kept in the spool; ");
        s.append(delivered ? "every point delivered" : "NOT every point delivered");
        return s.toString();
    }
}
