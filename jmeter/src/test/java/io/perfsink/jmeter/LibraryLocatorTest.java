package io.perfsink.jmeter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LibraryLocatorTest {
    private static void assertMentions(String message, String... parts) {
        for (String p : parts) {
            assertTrue(message.contains(p), "message should mention \"" + p + "\": " + message);
        }
    }

    @Test
    void missingEverywhereNamesEveryPlaceLookedAt() throws IOException {
        try (URLClassLoader empty = new URLClassLoader(new URL[0], null)) {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> LibraryLocator.locate(null, "", empty));
            assertMentions(e.getMessage(), "PERFSINK_LIB", "system property", "environment",
                    "linux-x86-64/libperfsink.so", "target/release/libperfsink.so");
        }
    }

    @Test
    void anOverrideNamingNoFileIsAnErrorWithoutFallback(@TempDir Path dir) {
        String path = dir.resolve("nowhere/libperfsink.so").toString();
        IllegalStateException env = assertThrows(IllegalStateException.class,
                () -> LibraryLocator.locate(null, path, getClass().getClassLoader()));
        assertMentions(env.getMessage(), "environment variable PERFSINK_LIB", path, "not a file");
        IllegalStateException prop = assertThrows(IllegalStateException.class,
                () -> LibraryLocator.locate(path, "/also/ignored", getClass().getClassLoader()));
        assertMentions(prop.getMessage(), "system property PERFSINK_LIB", path);
    }

    @Test
    void theOverrideWinsOverTheBundledCopy(@TempDir Path dir) throws IOException {
        Path lib = Files.write(dir.resolve("libperfsink.so"), new byte[] {1});
        LibraryLocator.Found f = LibraryLocator.locate(null, lib.toString(), getClass().getClassLoader());
        assertEquals(lib.toFile(), f.file);
        assertMentions(f.describe(), "environment variable PERFSINK_LIB");
    }

    @Test
    void theBundledCopyIsOnTheClassPath() {
        // target/classes/linux-x86-64/libperfsink.so, copied from ../target/release by the build.
        LibraryLocator.Found f = LibraryLocator.locate(null, null, getClass().getClassLoader());
        assertTrue(f.file.isFile(), f.describe());
        assertMentions(f.describe(), "bundled", "linux-x86-64/libperfsink.so");
    }

    @Test
    void aFileThatIsNoLibraryIsRefusedByName(@TempDir Path dir) throws IOException {
        Path junk = Files.write(dir.resolve("libperfsink.so"), "not an ELF file".getBytes("UTF-8"));
        LibraryLocator.Found f = new LibraryLocator.Found(junk.toFile(), "environment variable PERFSINK_LIB");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> PerfsinkNative.open(f));
        assertMentions(e.getMessage(), junk.toString(), "environment variable PERFSINK_LIB", "not a libperfsink");
    }

    @Test
    void aLibraryWithoutPerfsinksFunctionsIsRefusedByName() {
        File libz = new File("/lib/x86_64-linux-gnu/libz.so.1");
        LibraryLocator.Found f = new LibraryLocator.Found(libz, "system property PERFSINK_LIB");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> PerfsinkNative.open(f));
        assertMentions(e.getMessage(), libz.toString(), "perfsink_abi_version", "not a libperfsink");
    }
}
