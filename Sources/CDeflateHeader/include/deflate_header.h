#ifndef SLUICE_DEFLATE_HEADER_H
#define SLUICE_DEFLATE_HEADER_H

// Checks one deflate block header (RFC 1951) as zlib's inflate does, refusing exactly what zlib refuses.
//
// ISA-L's inflate refuses the same deflate data as zlib but for one thing: it accepts a dynamic block whose Huffman
// code is incomplete (code lengths that leave bit patterns unused), which zlib refuses unless the code is a single
// code of one bit. Such a block decodes under ISA-L as long as the data never uses a missing code, so a member made
// that way passes its CRC under ISA-L and fails under zlib. Sluice's reader has ISA-L stop at every block's end and
// checks the next block's header with this before ISA-L reads the block.
//
// Start a header with the bits that come before the next whole byte of the data, then feed the bytes that follow
// until the verdict is in. A header is at most a few hundred bytes; bytes past it are ignored.

#include <stddef.h>
#include <stdint.h>

enum {
    /// The header is not complete yet: feed more bytes.
    SLUICE_DEFLATE_HEADER_MORE = 0,
    /// The header is one zlib accepts.
    SLUICE_DEFLATE_HEADER_VALID = 1,
    /// zlib refuses the header: sluice_deflate_header.reason says why, in zlib's words.
    SLUICE_DEFLATE_HEADER_INVALID = -1,
};

// Large enough for the longest header (3 + 14 + 19 * 3 + 316 * 7 bits, about 286 bytes) and the leading bits.
#define SLUICE_DEFLATE_HEADER_BYTES 352

typedef struct {
    /// The verdict so far (one of the values above).
    int status;
    /// zlib's message once the status is SLUICE_DEFLATE_HEADER_INVALID, else NULL.
    const char *reason;
    /// The bits kept so far: `bits` of them, from bit `start` of `buffer` (0-7: the place of the first bit in its
    /// byte of the data, so that a stored block's header can skip to a whole byte).
    uint32_t start;
    uint32_t bits;
    uint8_t buffer[SLUICE_DEFLATE_HEADER_BYTES];
} sluice_deflate_header;

/// Starts a header whose first `count` bits (0-64; the least significant first) are in `bits`; the data's next whole
/// byte follows them. Returns the verdict: MORE unless `count` bits decide it.
int sluice_deflate_header_begin(sluice_deflate_header *header, uint64_t bits, unsigned count);

/// Adds the data's next bytes; returns the verdict. Once it is in, further bytes are ignored.
int sluice_deflate_header_feed(sluice_deflate_header *header, const uint8_t *data, size_t length);

#endif
