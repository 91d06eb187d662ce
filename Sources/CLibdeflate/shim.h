#ifndef SLUICE_CLIBDEFLATE_SHIM_H
#define SLUICE_CLIBDEFLATE_SHIM_H

// libdeflate (libdeflate-dev): whole-buffer deflate at levels 0-12, the best ratio per CPU second.
#include <libdeflate.h>

#endif
