package io.perfsink.jmeter;

import org.apache.jmeter.config.Arguments;

/**
 * What the Backend Listener's GUI table is pre-filled with: the built-in
 * InfluxdbBackendListenerClient's names and defaults first, in its order (so a plan switches by
 * changing the class name only), then perfsink's own. Only names and GUI defaults live here: what
 * a value means, and the default when a name is absent, is the engine's (src/sources/jmeter).
 */
final class DefaultParameters {
    /** The built-in listener's DEFAULT_ARGS (JMeter 5.6.3), name then GUI default. */
    static final String[][] BUILT_IN = {
        {"influxdbMetricsSender", "org.apache.jmeter.visualizers.backend.influxdb.HttpMetricsSender"},
        {"influxdbUrl", "http://host_to_change:8086/write?db=jmeter"},
        {"application", "application name"},
        {"measurement", "jmeter"},
        {"summaryOnly", "false"},
        {"samplersRegex", ".*"},
        {"percentiles", "99;95;90"},
        {"testTitle", "Test name"},
        {"eventTags", ""},
    };

    /** perfsink's own: one point per sample besides the aggregated lines. */
    static final String[][] PERFSINK = {
        {"rawSamples", "false"},
    };

    private DefaultParameters() {}

    static Arguments arguments() {
        Arguments args = new Arguments();
        for (String[] p : BUILT_IN) {
            args.addArgument(p[0], p[1]);
        }
        for (String[] p : PERFSINK) {
            args.addArgument(p[0], p[1]);
        }
        return args;
    }
}
