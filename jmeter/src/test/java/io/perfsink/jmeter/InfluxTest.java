package io.perfsink.jmeter;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;

import org.junit.jupiter.api.Test;

/** The test helper itself: a private influxd starts, answers queries and stops. */
class InfluxTest {
    @Test
    void startsQueriesAndStops() throws Exception {
        try (Influx influx = Influx.start()) {
            influx.query("", "CREATE DATABASE t");
            List<String[]> rows = influx.query("", "SHOW DATABASES");
            assertEquals("t", rows.get(rows.size() - 1)[2], influx.toString());
        }
    }
}
