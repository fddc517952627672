package io.perfsink.jmeter;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import com.sun.jna.Native;
import com.sun.jna.Pointer;

/**
 * A growable direct buffer of UTF-8 text that strings are appended to; a record refers to a
 * string by (offset, length) into it. Encodes by hand so packing allocates nothing per string
 * (String.getBytes would); an unpaired surrogate becomes '?' as String.getBytes makes it.
 */
final class Utf8Arena {
    private ByteBuffer buf;
    private Pointer address;

    Utf8Arena(int initialCapacity) {
        setBuffer(allocate(initialCapacity));
    }

    private void setBuffer(ByteBuffer b) {
        buf = b;
        address = Native.getDirectBufferPointer(b);
    }

    static ByteBuffer allocate(int capacity) {
        return ByteBuffer.allocateDirect(capacity).order(ByteOrder.nativeOrder());
    }

    void clear() {
        buf.clear();
    }

    /** The bytes written so far: positions 0..length() of {@link #buffer()}. */
    int length() {
        return buf.position();
    }

    ByteBuffer buffer() {
        return buf;
    }

    /** The address of {@link #buffer()}'s first byte (valid until the next append). */
    Pointer address() {
        return address;
    }

    /**
     * Appends {@code s} (null counts as empty) and returns its offset in the high 32 bits and
     * its byte length in the low 32 bits.
     */
    long append(String s) {
        int start = buf.position();
        if (s == null || s.isEmpty()) {
            return ((long) start) << 32;
        }
        ensureRemaining(s.length() * 3); // at most 3 bytes per UTF-16 unit
        ByteBuffer b = buf;
        int n = s.length();
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                b.put((byte) c);
            } else if (c < 0x800) {
                b.put((byte) (0xC0 | (c >> 6)));
                b.put((byte) (0x80 | (c & 0x3F)));
            } else if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(s.charAt(i + 1))) {
                int cp = Character.toCodePoint(c, s.charAt(++i));
                b.put((byte) (0xF0 | (cp >> 18)));
                b.put((byte) (0x80 | ((cp >> 12) & 0x3F)));
                b.put((byte) (0x80 | ((cp >> 6) & 0x3F)));
                b.put((byte) (0x80 | (cp & 0x3F)));
            } else if (Character.isSurrogate(c)) {
                b.put((byte) '?');
            } else {
                b.put((byte) (0xE0 | (c >> 12)));
                b.put((byte) (0x80 | ((c >> 6) & 0x3F)));
                b.put((byte) (0x80 | (c & 0x3F)));
            }
        }
        return (((long) start) << 32) | (buf.position() - start);
    }

    private void ensureRemaining(int needed) {
        if (buf.remaining() >= needed) {
            return;
        }
        long want = Math.max((long) buf.capacity() * 2, (long) buf.position() + needed);
        if (want > Integer.MAX_VALUE) {
            throw new IllegalStateException("perfsink: a batch's strings exceed 2 GiB");
        }
        ByteBuffer bigger = allocate((int) want);
        buf.flip();
        bigger.put(buf);
        setBuffer(bigger);
    }
}
