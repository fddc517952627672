package io.perfsink.jmeter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;

import org.apache.jmeter.config.Argument;
import org.apache.jmeter.config.Arguments;
import org.apache.jmeter.visualizers.backend.BackendListenerClient;
import org.apache.jmeter.visualizers.backend.influxdb.InfluxdbBackendListenerClient;
import org.junit.jupiter.api.Test;

class DefaultParametersTest {
    private static Map<String, String> asMap(Arguments args) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < args.getArgumentCount(); i++) {
            Argument a = args.getArgument(i);
            m.put(a.getName(), a.getValue());
        }
        return m;
    }

    @Test
    void startWithTheBuiltInListenersNamesAndDefaultsInItsOrder() {
        // The real thing, from ApacheJMeter_components 5.6.3, not a copy of it.
        Map<String, String> builtIn = asMap(new InfluxdbBackendListenerClient().getDefaultParameters());
        Map<String, String> ours = asMap(new PerfsinkBackendListenerClient().getDefaultParameters());

        List<Map.Entry<String, String>> head = new ArrayList<>(ours.entrySet()).subList(0, builtIn.size());
        assertEquals(new ArrayList<>(builtIn.entrySet()), head);
    }

    @Test
    void theGuiFindsTheClassThroughItsServiceEntry() {
        // BackendListenerGui lists implementations with ServiceLoader (plus a jar scan) and
        // instantiates each: that must work without the native library (it loads in setupTest).
        List<String> found = new ArrayList<>();
        for (BackendListenerClient c : ServiceLoader.load(BackendListenerClient.class)) {
            found.add(c.getClass().getName());
        }
        assertTrue(found.contains(PerfsinkBackendListenerClient.class.getName()), found.toString());
    }

    @Test
    void thenPerfsinksOwn() {
        Map<String, String> builtIn = asMap(new InfluxdbBackendListenerClient().getDefaultParameters());
        Map<String, String> ours = asMap(new PerfsinkBackendListenerClient().getDefaultParameters());
        ours.keySet().removeAll(builtIn.keySet());
        Map<String, String> want = new LinkedHashMap<>();
        for (String[] p : DefaultParameters.PERFSINK) {
            want.put(p[0], p[1]);
        }
        assertEquals(want, ours);
        assertEquals("false", ours.get("rawSamples"));
    }
}
