#ifndef SLUICE_CISAL_SHIM_H
#define SLUICE_CISAL_SHIM_H

// ISA-L's igzip (libisal-dev): streaming inflate, and deflate at levels 1-3 (its level 0 is not stored).
#include <isa-l/igzip_lib.h>
#include <isa-l/crc.h>

// The size of the level buffer isal_deflate needs at each level (macros Swift cannot import).
static inline unsigned int CIsal_levelBufferSize(unsigned int level) {
    switch (level) {
    case 1: return ISAL_DEF_LVL1_DEFAULT;
    case 2: return ISAL_DEF_LVL2_DEFAULT;
    case 3: return ISAL_DEF_LVL3_DEFAULT;
    default: return ISAL_DEF_LVL0_DEFAULT;
    }
}

#endif
