// The `tally` executable allocates through jemalloc (Debian's libjemalloc-dev, linked by this
// target), as ClickHouse does. Under HTTP ingest glibc's malloc cost ~9.5 % of the server's CPU
// plus ~6 % waiting on its arena locks (perf); with jemalloc the server took 118–138k events/s
// against 89–106k (`tally bench ingest --spawn --connections 64 --batch 100`, BENCHMARKS.md).
//
// jemalloc reads this string at start (MALLOC_CONF in the environment still overrides it):
// - narenas:2 — one arena per core of the target machine instead of 4 per core: fewer
//   half-used arenas, lower RSS, and threads still rarely share one at a time;
// - dirty_decay_ms:1000, muzzy_decay_ms:0 — freed pages go back to the OS after a second
//   instead of ten, so a flush's or a merge's transient buffers do not stay resident.
const char *malloc_conf = "narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0";
