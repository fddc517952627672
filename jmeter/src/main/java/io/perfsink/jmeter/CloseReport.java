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

    CloseReport(int result, ByteBuffer r, String problem) {
        this.result = result;
        this.problem = problem;
        keptInSpool = r.getLong(0);
        delivered = r.getInt(12) != 0;
        int stats = 16; // perfsink_stats: accepted, replayed, written, retried, rejected, ... dropped (7th), ... aggregated (20th)
        accepted = r.getLong(stats);
        written = r.getLong(stats + 2 * 8);
        retried = r.getLong(stats + 3 * 8);
        rejected = r.getLong(stats + 4 * 8);
        dropped = r.getLong(stats + 7 * 8);
        aggregated = r.getLong(stats + 20 * 8);
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
