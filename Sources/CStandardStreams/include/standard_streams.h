#ifndef SLUICE_STANDARD_STREAMS_H
#define SLUICE_STANDARD_STREAMS_H

/// Which standard streams (bit 0: input, 1: output, 2: error) the process started without, each of which was then
/// given /dev/null before anything else could take its number (see standard_streams.c).
int sluice_closed_standard_streams(void);

#endif
