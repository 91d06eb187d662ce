#include "deflate_header.h"

#include <string.h>

// The checks and messages follow zlib's inflate.c and inftrees.c (1.2.x-1.3.x). Where zlib reports a refused header
// (its offset) is zlib's to say: the reader asks zlib when the file can be read again.

#define MAX_BITS 15

// The order in which a dynamic header gives the code lengths of the code-length code.
static const uint8_t code_length_order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

typedef struct {
    const uint8_t *buffer;
    uint64_t end;  // bits available
    uint64_t pos;
} reader;

// The next 24 bits or more at the reader, the first in the lowest bit; zeros past the end.
static inline uint32_t peek(const reader *r) {
    uint64_t byte = r->pos >> 3;
    if (r->pos + 32 + 8 <= r->end) {  // four whole bytes, all kept
        uint32_t value;
        memcpy(&value, r->buffer + byte, 4);  // little-endian hosts (x86-64, arm64)
        return value >> (r->pos & 7);
    }
    uint64_t end = (r->end + 7) >> 3;
    uint32_t value = 0;
    for (unsigned i = 0; i < 4 && byte + i < end; i++) value |= (uint32_t)r->buffer[byte + i] << (8 * i);
    value >>= r->pos & 7;
    // Bits past the end are zeros (the last byte may hold fewer than 8 kept bits).
    uint64_t left = r->pos < r->end ? r->end - r->pos : 0;
    return left >= 32 ? value : value & (uint32_t)((1ull << left) - 1);
}

// The next `n` bits (n <= 16), the first in the lowest bit; zeros past the end (the caller checks `overran`).
static inline uint32_t take(reader *r, unsigned n) {
    uint32_t value = peek(r) & ((1u << n) - 1);
    r->pos += n;
    return value;
}

static int overran(const reader *r) { return r->pos > r->end; }

enum { KIND_CODES, KIND_LENGTHS, KIND_DISTANCES };

// zlib's inflate_table verdict on a set of code lengths: refused if over-subscribed, or incomplete unless it is a
// single code of one bit in a literal/length or distance code; no codes at all is accepted (using one is an error).
static int lengths_valid(const uint8_t *lengths, unsigned n, int kind) {
    unsigned count[MAX_BITS + 1] = {0};
    for (unsigned i = 0; i < n; i++) count[lengths[i]]++;
    unsigned max = MAX_BITS;
    while (max >= 1 && count[max] == 0) max--;
    if (max == 0) return 1;
    int left = 1;
    for (unsigned len = 1; len <= MAX_BITS; len++) {
        left <<= 1;
        left -= (int)count[len];
        if (left < 0) return 0;
    }
    return !(left > 0 && (kind == KIND_CODES || max != 1));
}

// The code-length code as a lookup table: for each 7 bits, the symbol and its length (all its codes have 7 bits or
// fewer; complete, it has a symbol for every pattern).
typedef struct {
    uint8_t symbol[128];
    uint8_t length[128];
} code;

static void make_code(code *c, const uint8_t *lengths, unsigned n) {
    unsigned count[8] = {0}, next[8];
    for (unsigned i = 0; i < n; i++) count[lengths[i]]++;
    count[0] = 0;
    unsigned value = 0;
    for (unsigned len = 1; len < 8; len++) {
        value = (value + count[len - 1]) << 1;
        next[len] = value;
    }
    for (unsigned i = 0; i < n; i++) {
        unsigned len = lengths[i];
        if (len == 0) continue;
        unsigned code_bits = next[len]++, reversed = 0;
        for (unsigned b = 0; b < len; b++) reversed |= ((code_bits >> b) & 1) << (len - 1 - b);
        for (unsigned index = reversed; index < 128; index += 1u << len) {
            c->symbol[index] = (uint8_t)i;
            c->length[index] = (uint8_t)len;
        }
    }
}

static inline int decode(reader *r, const code *c) {
    unsigned index = peek(r) & 127;
    r->pos += c->length[index];
    return c->symbol[index];
}

static int refuse(sluice_deflate_header *h, const char *reason) {
    h->reason = reason;
    h->status = SLUICE_DEFLATE_HEADER_INVALID;
    return h->status;
}

// Parses the header kept so far: a verdict, or MORE when the bits run out first.
static int parse(sluice_deflate_header *h) {
    reader r = {h->buffer, (uint64_t)h->start + h->bits, h->start};
    take(&r, 1);  // BFINAL: any value
    unsigned type = take(&r, 2);
    if (overran(&r)) return SLUICE_DEFLATE_HEADER_MORE;
    if (type == 1) return h->status = SLUICE_DEFLATE_HEADER_VALID;
    if (type == 3) return refuse(h, "invalid block type");
    if (type == 0) {
        r.pos = (r.pos + 7) & ~(uint64_t)7;  // the bytes of the data are whole bytes of the buffer
        uint32_t length = take(&r, 16);
        uint32_t complement = take(&r, 16);
        if (overran(&r)) return SLUICE_DEFLATE_HEADER_MORE;
        if (length != (~complement & 0xffff)) return refuse(h, "invalid stored block lengths");
        return h->status = SLUICE_DEFLATE_HEADER_VALID;
    }
    unsigned nlen = take(&r, 5) + 257;
    unsigned ndist = take(&r, 5) + 1;
    unsigned ncode = take(&r, 4) + 4;
    if (overran(&r)) return SLUICE_DEFLATE_HEADER_MORE;
    if (nlen > 286 || ndist > 30) return refuse(h, "too many length or distance symbols");
    uint8_t code_lengths[19] = {0};
    for (unsigned i = 0; i < ncode; i++) code_lengths[code_length_order[i]] = (uint8_t)take(&r, 3);
    if (overran(&r)) return SLUICE_DEFLATE_HEADER_MORE;
    unsigned codes = 0;
    for (unsigned i = 0; i < 19; i++) codes += code_lengths[i] != 0;
    // No code-length codes at all: zlib reads every length as 0, then misses the end-of-block code.
    if (codes == 0) return refuse(h, "invalid code -- missing end-of-block");
    if (!lengths_valid(code_lengths, 19, KIND_CODES)) return refuse(h, "invalid code lengths set");
    code code_length_code;
    make_code(&code_length_code, code_lengths, 19);
    uint8_t lengths[286 + 30];
    unsigned have = 0;
    while (have < nlen + ndist) {
        int symbol = decode(&r, &code_length_code);
        if (overran(&r)) return SLUICE_DEFLATE_HEADER_MORE;
        if (symbol < 16) {
            lengths[have++] = (uint8_t)symbol;
            continue;
        }
        uint8_t length = 0;
        unsigned copy;
        if (symbol == 16) {
            if (have == 0) return refuse(h, "invalid bit length repeat");
            length = lengths[have - 1];
            copy = 3 + take(&r, 2);
        } else if (symbol == 17) {
            copy = 3 + take(&r, 3);
        } else {
            copy = 11 + take(&r, 7);
        }
        if (overran(&r)) return SLUICE_DEFLATE_HEADER_MORE;
        if (have + copy > nlen + ndist) return refuse(h, "invalid bit length repeat");
        while (copy--) lengths[have++] = length;
    }
    if (lengths[256] == 0) return refuse(h, "invalid code -- missing end-of-block");
    if (!lengths_valid(lengths, nlen, KIND_LENGTHS)) return refuse(h, "invalid literal/lengths set");
    if (!lengths_valid(lengths + nlen, ndist, KIND_DISTANCES)) return refuse(h, "invalid distances set");
    return h->status = SLUICE_DEFLATE_HEADER_VALID;
}

int sluice_deflate_header_begin(sluice_deflate_header *h, uint64_t bits, unsigned count) {
    if (count > 64) count = 64;
    h->status = SLUICE_DEFLATE_HEADER_MORE;
    h->reason = NULL;
    h->start = (8 - count % 8) % 8;
    h->bits = count;
    memset(h->buffer, 0, 9);
    for (unsigned i = 0; i < count; i++) {
        unsigned at = h->start + i;
        h->buffer[at >> 3] |= (uint8_t)(((bits >> i) & 1) << (at & 7));
    }
    return parse(h);
}

int sluice_deflate_header_feed(sluice_deflate_header *h, const uint8_t *data, size_t length) {
    if (h->status != SLUICE_DEFLATE_HEADER_MORE || length == 0) return h->status;
    size_t kept = (h->start + h->bits) / 8;  // whole bytes: the leading bits end at a byte of the data
    size_t room = SLUICE_DEFLATE_HEADER_BYTES - kept;
    size_t n = length < room ? length : room;
    memcpy(h->buffer + kept, data, n);
    h->bits += (uint32_t)(n * 8);
    int status = parse(h);
    // A header never needs all the room: still MORE with the buffer full means no header zlib reads.
    if (status == SLUICE_DEFLATE_HEADER_MORE && n == room) return refuse(h, "invalid code lengths set");
    return status;
}
