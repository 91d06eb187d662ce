#include "line_scan.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

size_t sluice_find_newlines(const uint8_t *data, size_t from, size_t to, uint32_t *offsets, size_t capacity,
                            size_t *next) {
    size_t count = 0;
    size_t i = from;
#if defined(__SSE2__)
    // 16 bytes a step (SSE2 is in every x86-64): compare, take the mask of matches, walk its set bits.
    const __m128i newline = _mm_set1_epi8('\n');
    while (i + 16 <= to && count + 16 <= capacity) {
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(data + i)), newline));
        while (mask != 0) {
            offsets[count++] = (uint32_t)(i + (size_t)__builtin_ctz(mask));
            mask &= mask - 1;
        }
        i += 16;
    }
#else
    // Elsewhere 8 bytes a step: the bytes equal to '\n' found exactly (no carries between bytes).
    const uint64_t low7 = 0x7F7F7F7F7F7F7F7FULL;
    while (i + 8 <= to && count + 8 <= capacity) {
        uint64_t word;
        __builtin_memcpy(&word, data + i, 8);
        word ^= 0x0A0A0A0A0A0A0A0AULL;  // a newline becomes a zero byte
        uint64_t zeros = ~(((word & low7) + low7) | word | low7);
        while (zeros != 0) {
            offsets[count++] = (uint32_t)(i + (size_t)__builtin_ctzll(zeros) / 8);
            zeros &= zeros - 1;
        }
        i += 8;
    }
#endif
    while (i < to) {
        if (data[i] == '\n') {
            if (count == capacity) break;
            offsets[count++] = (uint32_t)i;
        }
        i++;
    }
    *next = i;
    return count;
}
