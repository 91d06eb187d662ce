#include "standard_streams.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static int closed_streams = 0;

// A process started without a standard stream (`<&-`, `>&-`, `2>&-`) gives that stream's number to the next file it
// opens: Swift's runtime opens descriptors of its own before any Swift code runs (libdispatch's epoll took 0 in
// `sluice run wc <&-`), and later an output file could become "standard error". So the closed ones get /dev/null here,
// in a constructor of the executable, before main; the command then says which stream is missing if a run needs it.
__attribute__((constructor)) static void sluice_reserve_standard_streams(void) {
    for (int descriptor = 0; descriptor <= 2; descriptor++) {
        if (fcntl(descriptor, F_GETFD) != -1 || errno != EBADF) continue;
        int reserved = open("/dev/null", descriptor == 0 ? O_RDONLY : O_WRONLY);
        if (reserved == descriptor) {
            closed_streams |= 1 << descriptor;
        } else if (reserved >= 0) {
            close(reserved);
        }
    }
}

int sluice_closed_standard_streams(void) { return closed_streams; }
