package io.perfsink.jmeter;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;

import org.junit.jupiter.api.Test;

class Utf8ArenaTest {
    private static byte[] bytes(Utf8Arena a, long offLen) {
        int off = (int) (offLen >>> 32);
        int len = (int) offLen;
        byte[] b = new byte[len];
        for (int i = 0; i < len; i++) {
            b[i] = a.buffer().get(off + i);
        }
        return b;
    }

    @Test
    void encodesLikeStringGetBytes() {
        String[] cases = {
            "", "plain", "GET /a?x=1&y=2", "quote \" backslash \\ comma, eq= space",
            "é ü ß", "日本語のラベル", "emoji 😀 and 𝄞", "new\nline\ttab", "\u0000nul",
            "lone high \uD83D end", "lone low \uDE00 end", "high at end \uD83D", "\uFFFF\u0800\u07FF\u0080\u007F",
        };
        Utf8Arena a = new Utf8Arena(4); // tiny: every case grows it
        long[] spans = new long[cases.length];
        for (int i = 0; i < cases.length; i++) {
            spans[i] = a.append(cases[i]);
        }
        // Checked after all appends: growing must carry the earlier bytes over.
        int expectedOffset = 0;
        for (int i = 0; i < cases.length; i++) {
            byte[] want = cases[i].getBytes(StandardCharsets.UTF_8);
            assertEquals(expectedOffset, (int) (spans[i] >>> 32), "offset of case " + i);
            assertArrayEquals(want, bytes(a, spans[i]), "bytes of case " + i + ": " + cases[i]);
            expectedOffset += want.length;
        }
        assertEquals(expectedOffset, a.length());
    }

    @Test
    void nullIsEmptyAndClearRestarts() {
        Utf8Arena a = new Utf8Arena(16);
        a.append("abc");
        assertEquals(3L << 32, a.append(null));
        a.clear();
        assertEquals(0, a.length());
        assertEquals(2L, a.append("xy"));
    }
}
