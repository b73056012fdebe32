#ifndef TALLY_CJEMALLOC_H
#define TALLY_CJEMALLOC_H

/// jemalloc's options for the `tally` executable (see malloc_conf.c). Nothing to call: linking
/// this target makes jemalloc the process's allocator.
extern const char *malloc_conf;

#endif
