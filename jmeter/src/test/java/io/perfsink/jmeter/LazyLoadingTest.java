package io.perfsink.jmeter;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URL;
import java.net.URLClassLoader;
import java.util.HashMap;

import org.apache.jmeter.config.Arguments;
import org.apache.jmeter.visualizers.backend.BackendListenerClient;
import org.apache.jmeter.visualizers.backend.BackendListenerContext;
import org.junit.jupiter.api.Test;

/**
 * JMeter's GUI loads and instantiates every listener class it lists: that must not touch the
 * native library, which loads in setupTest. Checked on fresh copies of the listener's classes
 * (their own class loader, so no earlier test has bound the library) with PERFSINK_LIB naming no
 * file: listing works, setupTest fails naming it.
 */
class LazyLoadingTest {
    /** Loads io.perfsink.* itself (from the test's class path), everything else from its parent. */
    private static final class FreshListenerLoader extends URLClassLoader {
        FreshListenerLoader() {
            super(new URL[] {PerfsinkBackendListenerClient.class.getProtectionDomain().getCodeSource().getLocation()},
                    LazyLoadingTest.class.getClassLoader());
        }

        @Override
        protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
            synchronized (getClassLoadingLock(name)) {
                if (!name.startsWith("io.perfsink.")) {
                    return super.loadClass(name, resolve);
                }
                Class<?> c = findLoadedClass(name);
                return c != null ? c : findClass(name);
            }
        }
    }

    @Test
    void listingTheClassLoadsNoLibrarySetupTestDoes() throws Exception {
        String missing = "/nonexistent/lazy/libperfsink.so";
        String before = System.getProperty(LibraryLocator.OVERRIDE);
        System.setProperty(LibraryLocator.OVERRIDE, missing);
        try (FreshListenerLoader loader = new FreshListenerLoader()) {
            Class<?> c = Class.forName(PerfsinkBackendListenerClient.class.getName(), true, loader);
            assertTrue(c != PerfsinkBackendListenerClient.class, "a fresh copy of the class");
            BackendListenerClient client = (BackendListenerClient) c.getDeclaredConstructor().newInstance();
            Arguments defaults = client.getDefaultParameters(); // what the GUI does
            assertTrue(defaults.getArgumentCount() > 0);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> client.setupTest(new BackendListenerContext(new HashMap<String, String>())));
            assertTrue(e.getMessage().contains(missing), e.getMessage());
        } finally {
            if (before == null) {
                System.clearProperty(LibraryLocator.OVERRIDE);
            } else {
                System.setProperty(LibraryLocator.OVERRIDE, before);
            }
        }
    }
}
