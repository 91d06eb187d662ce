#ifndef SLUICE_LINE_SCAN_H
#define SLUICE_LINE_SCAN_H

// Finds the newlines of a buffer, many at a time: the line framer's hot loop, where calling memchr once per line
// costs more than the scan itself when lines are short (log and text lines are tens of bytes).

#include <stddef.h>
#include <stdint.h>

/// Writes the offsets of the `\n` bytes in `data[from..<to]`, in order, to `offsets` (at most `capacity` of them);
/// returns how many, and sets `*next` to the first byte not scanned (`to` unless `offsets` filled up first).
///
/// The fastest scan the CPU runs: AVX2 where the processor and the kernel support it, else the portable one.
size_t sluice_find_newlines(const uint8_t *data, size_t from, size_t to, uint32_t *offsets, size_t capacity,
                            size_t *next);

/// The scans behind `sluice_find_newlines`, each with its contract, for tests that check every one the machine has.
/// 0: portable (SSE2 on x86-64, 8 bytes a step elsewhere), always there; 1: AVX2, there if
/// `sluice_line_scan_available(1)`.
int sluice_line_scan_available(int implementation);
size_t sluice_find_newlines_using(int implementation, const uint8_t *data, size_t from, size_t to, uint32_t *offsets,
                                  size_t capacity, size_t *next);

#endif
