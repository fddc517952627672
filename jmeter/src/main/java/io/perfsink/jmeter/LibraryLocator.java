package io.perfsink.jmeter;

import java.io.File;
import java.io.IOException;
import java.net.URL;
import java.security.CodeSource;

import com.sun.jna.Native;
import com.sun.jna.Platform;

/**
 * Finds libperfsink.so: {@code PERFSINK_LIB} (Java system property, then environment variable)
 * names a file and is used without fallback; otherwise the copy bundled in this jar under JNA's
 * resource path ({@code linux-x86-64/libperfsink.so}), which JNA extracts to {@code jna.tmpdir}.
 * A failure names every place looked at.
 */
final class LibraryLocator {
    static final String OVERRIDE = "PERFSINK_LIB";
    static final String HINT = "set " + OVERRIDE + " (environment or -D" + OVERRIDE
            + "=) to a libperfsink.so built by `make build` (target/release/libperfsink.so)";

    /** A library file and how it was found. */
    static final class Found {
        final File file;
        final String how;

        Found(File file, String how) {
            this.file = file;
            this.how = how;
        }

        String describe() {
            return file + " (" + how + ")";
        }
    }

    private LibraryLocator() {}

    static Found locate() {
        return locate(System.getProperty(OVERRIDE), System.getenv(OVERRIDE), LibraryLocator.class.getClassLoader());
    }

    static Found locate(String property, String env, ClassLoader loader) {
        if (property != null && !property.isEmpty()) {
            return explicit(property, "system property " + OVERRIDE);
        }
        if (env != null && !env.isEmpty()) {
            return explicit(env, "environment variable " + OVERRIDE);
        }
        String resource = Platform.RESOURCE_PREFIX + "/" + System.mapLibraryName("perfsink");
        URL url = loader.getResource(resource);
        if (url == null) {
            throw new IllegalStateException("perfsink: libperfsink not found: " + OVERRIDE
                    + " is set neither as a system property nor in the environment, and the class path resource "
                    + resource + " is not in " + whereThisClassCameFrom()
                    + " (this jar bundles the library for linux-x86-64 only; this JVM is " + Platform.RESOURCE_PREFIX
                    + "); " + HINT);
        }
        try {
            File file = Native.extractFromResourcePath("perfsink", loader);
            return new Found(file, "bundled " + url);
        } catch (IOException e) {
            throw new IllegalStateException("perfsink: could not extract " + url + " to jna.tmpdir ("
                    + System.getProperty("jna.tmpdir", System.getProperty("java.io.tmpdir")) + "): " + e.getMessage()
                    + "; " + HINT, e);
        }
    }

    private static Found explicit(String path, String how) {
        File file = new File(path);
        if (!file.isFile()) {
            throw new IllegalStateException("perfsink: " + how + " is " + path + ", which is not a file"
                    + " (the bundled library is not tried when " + OVERRIDE + " is set)");
        }
        return new Found(file, how);
    }

    private static String whereThisClassCameFrom() {
        CodeSource cs = LibraryLocator.class.getProtectionDomain().getCodeSource();
        return cs == null || cs.getLocation() == null ? "the class path" : cs.getLocation().toString();
    }
}
