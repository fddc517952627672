package io.perfsink.jmeter;

import com.sun.jna.Callback;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;

/**
 * The C functions of libperfsink this listener calls (include/perfsink.h), bound by JNA direct
 * mapping: static native methods, buffers passed by address, no Structure per call. Bound only by
 * {@link #bind}, called from {@code setupTest}: JMeter's GUI instantiates every listener class
 * it lists, so nothing here may touch the native library while the class merely loads.
 * {@code size_t} is {@code long} (linux-x86-64 only: the jar carries that one library).
 */
final class PerfsinkNative {
    /** ABI major this code was written against; the minor must be at least {@link #ABI_MINOR}. */
    static final int ABI_MAJOR = 1;
    /** ABI 1.2 added the perfsink_jmeter_* functions. */
    static final int ABI_MINOR = 2;

    static final int PERFSINK_OK = 0;
    static final int PERFSINK_UNDELIVERED = 303;

    private static String boundFrom;

    private PerfsinkNative() {}

    /**
     * Binds the natives to the library {@link LibraryLocator} finds, once per class loader; later
     * calls return at once. Returns where the library came from.
     */
    static synchronized String bind() {
        if (boundFrom != null) {
            return boundFrom;
        }
        LibraryLocator.Found found = LibraryLocator.locate();
        Native.register(PerfsinkNative.class, open(found));
        boundFrom = found.describe();
        return boundFrom;
    }

    /** Every function this class binds: a library lacking one is refused before binding. */
    static final String[] FUNCTIONS = {
        "perfsink_abi_version", "perfsink_version", "perfsink_result_name", "perfsink_log_set",
        "perfsink_jmeter_open", "perfsink_jmeter_submit", "perfsink_jmeter_threads", "perfsink_jmeter_describe",
        "perfsink_jmeter_close", "perfsink_jmeter_free",
    };

    /**
     * Opens {@code found} and checks it is a libperfsink this class can bind: every function
     * present and a compatible C ABI. An IllegalStateException names the file and how it was found.
     */
    static NativeLibrary open(LibraryLocator.Found found) {
        NativeLibrary lib;
        try {
            lib = NativeLibrary.getInstance(found.file.getAbsolutePath());
            for (String f : FUNCTIONS) {
                lib.getFunction(f);
            }
        } catch (UnsatisfiedLinkError e) {
            throw new IllegalStateException("perfsink: " + found.describe()
                    + " is not a libperfsink for linux-x86-64 with the JMeter functions (C ABI " + ABI_MAJOR + "."
                    + ABI_MINOR + "): " + e.getMessage() + "; " + LibraryLocator.HINT, e);
        }
        int abi = lib.getFunction("perfsink_abi_version").invokeInt(new Object[0]);
        int major = abi >>> 16;
        int minor = abi & 0xFFFF;
        if (major != ABI_MAJOR || minor < ABI_MINOR) {
            throw new IllegalStateException("perfsink: " + found.describe() + " speaks C ABI " + major + "." + minor
                    + ", this listener needs " + ABI_MAJOR + "." + ABI_MINOR + " or a later 1.x; "
                    + LibraryLocator.HINT);
        }
        return lib;
    }

    /** perfsink_log_fn: (userdata, level, msg, len). */
    interface LogFn extends Callback {
        void invoke(Pointer userdata, int level, Pointer msg, long len);
    }

    static native int perfsink_abi_version();

    static native Pointer perfsink_version();

    static native Pointer perfsink_result_name(int result);

    static native void perfsink_log_set(LogFn cb, Pointer userdata, int maxLevel);

    // Buffers cross as Pointers (a direct buffer's base address): JNA would pass a ByteBuffer's
    // address plus its position, and the packers' buffers sit at their ends when filled.

    static native int perfsink_jmeter_open(Pointer params, long paramCount, Pointer out, Pointer err, long errLen);

    static native int perfsink_jmeter_submit(Pointer j, Pointer samples, long count, Pointer strings,
            long stringsLen, Pointer err, long errLen);

    static native int perfsink_jmeter_threads(Pointer j, long started, long finished, Pointer err, long errLen);

    static native long perfsink_jmeter_describe(Pointer j, Pointer buf, long len);

    static native int perfsink_jmeter_close(Pointer j, Pointer report, long reportSize, Pointer err, long errLen);

    static native void perfsink_jmeter_free(Pointer j);
}
